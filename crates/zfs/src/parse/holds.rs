//! Parser for `zfs holds -H [-p] [-r] <snapshot>...`.
//!
//! `print_holds` (zfs_main.c) prints one `<snapshot>\t<tag>\t<timestamp>` line per hold: the
//! timestamp is `strftime("%a %b %e %H:%M %Y")` (seconds with `-p`) and never contains a tab,
//! names never do, so the tag is everything between the first and the last tab (tags are free
//! text). A snapshot without holds prints nothing.

use super::{numbered_lines, ParseError};
use crate::name::SnapshotName;

/// Parses `zfs holds -H` output into `(snapshot full name, tag)` pairs, in output order.
pub fn parse_holds(stdout: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    for (line_no, line) in numbered_lines(stdout) {
        if line.is_empty() {
            continue;
        }
        let Some((name, rest)) = line.split_once('\t') else {
            return Err(ParseError::field_count(line_no, line, 3, 1));
        };
        let Some((tag, _timestamp)) = rest.rsplit_once('\t') else {
            return Err(ParseError::field_count(line_no, line, 3, 2));
        };
        let snapshot =
            SnapshotName::parse(name).map_err(|e| ParseError::invalid_name(line_no, line, e))?;
        out.push((snapshot.to_string(), tag.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_output() {
        let out = "zroot/a b@zrepl_1\tzrepl_last_received_J_push\tThu Jan  4 12:05 2024\n\
                   zroot/a b@zrepl_1\tkeep me\tThu Jan  4 12:06 2024\n\
                   zroot/c@2\tzrepl_STEP_J_push\t1704369960\n";
        assert_eq!(
            parse_holds(out).unwrap(),
            vec![
                (
                    "zroot/a b@zrepl_1".to_string(),
                    "zrepl_last_received_J_push".to_string()
                ),
                ("zroot/a b@zrepl_1".to_string(), "keep me".to_string()),
                ("zroot/c@2".to_string(), "zrepl_STEP_J_push".to_string()),
            ]
        );
        assert_eq!(parse_holds("").unwrap(), vec![]);
        assert_eq!(
            parse_holds("p/a@b\tta\tg\tMon Jan  1 00:00 2024\n").unwrap()[0].1,
            "ta\tg"
        );
    }

    #[test]
    fn rejects_malformed_lines() {
        let err = parse_holds("NAME  TAG  TIMESTAMP\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"NAME  TAG  TIMESTAMP\""), "{err}");
        assert!(parse_holds("p/a@b\ttag\n").is_err());
        assert!(parse_holds("p/a\ttag\tMon Jan  1 00:00 2024\n").is_err());
    }

    proptest! {
        #[test]
        fn round_trip(rows in prop::collection::vec(("[a-z]{1,5}/[a-z0-9 ]{1,5}@[a-zA-Z0-9_.: -]{1,8}", "[ -~]{1,20}"), 0..5)) {
            let rows: Vec<(String, String)> =
                rows.into_iter().filter(|(s, _)| SnapshotName::parse(s).is_ok()).collect();
            let text: String = rows.iter().map(|(s, t)| format!("{s}\t{t}\tThu Jan  4 12:05 2024\n")).collect();
            prop_assert_eq!(parse_holds(&text).unwrap(), rows);
        }

        #[test]
        fn arbitrary_output_never_panics(s in "(\\PC|\t|\n)*") {
            let _ = parse_holds(&s);
        }
    }
}
