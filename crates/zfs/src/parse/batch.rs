//! Parsers for the batched commands: `zfs get -Hp -o name,property,value,source` of several
//! names, the per-name errors that `zfs get|hold|release|holds` print while they continue past
//! a failing argument, and the JSON that `zfs program -j` prints.
//!
//! Formats (OpenZFS 2.3, checked on the real system):
//! - `zfs get -H -o name,property,value,source`: `<name>\t<property>\t<value>\t<source>` per
//!   row (`print_one_property`); a bookmark's `encryption` is `-` with source `-`. Names and
//!   property names never contain a tab, the source column never does, so a tab inside a
//!   (user property) value stays in the value.
//! - Per-name errors (`zfs_verror`): `cannot open '<name>': dataset does not exist`,
//!   `cannot open '<fs#bm>': no such pool or dataset`, `cannot hold snapshot '<snap>': tag
//!   already exists on this dataset`, `cannot release hold from snapshot '<snap>': no such
//!   tag on this dataset`. `zfs hold`/`release` of a snapshot whose filesystem is missing
//!   name the filesystem (`cannot open '<fs>': …`). `zfs holds` adds `no datasets
//!   available` when no argument could be opened.
//! - `zfs program -j`: `{"return": <the Lua return value as JSON>}`; a Lua table with string
//!   keys is a JSON object.

use std::collections::BTreeMap;

use super::{classify, excerpt, numbered_lines, ParseError, StderrKind};

/// One row of `zfs get -H -o name,property,value,source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetRow {
    /// The dataset, snapshot or bookmark, as given on the command line.
    pub name: String,
    /// The property.
    pub property: String,
    /// Its value.
    pub value: String,
    /// The source column (`-`, `default`, `local`, `inherited from …`, …).
    pub source: String,
}

/// Parses `zfs get -H[p] -o name,property,value,source` output.
pub fn parse_get_rows(stdout: &str) -> Result<Vec<GetRow>, ParseError> {
    let mut rows = Vec::new();
    for (line_no, line) in numbered_lines(stdout) {
        if line.is_empty() {
            continue;
        }
        let mut left = line.splitn(3, '\t');
        let (Some(name), Some(property), Some(rest)) = (left.next(), left.next(), left.next())
        else {
            return Err(ParseError::field_count(
                line_no,
                line,
                4,
                line.split('\t').count(),
            ));
        };
        let Some((value, source)) = rest.rsplit_once('\t') else {
            return Err(ParseError::field_count(line_no, line, 4, 3));
        };
        if name.is_empty() || property.is_empty() {
            return Err(ParseError::InvalidField {
                line_no,
                line: line.to_string(),
                field: if name.is_empty() { "name" } else { "property" },
                value: String::new(),
                reason: "empty",
            });
        }
        rows.push(GetRow {
            name: name.to_string(),
            property: property.to_string(),
            value: value.to_string(),
            source: source.to_string(),
        });
    }
    Ok(rows)
}

/// The stderr of a command that continued past failing arguments, split into errors that
/// name their object and lines that could not be attributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedErrors {
    /// `(name quoted in the message, what the message says)`, in stderr order.
    pub by_name: Vec<(String, StderrKind)>,
    /// Non-empty lines in no known per-name form (usage text, unknown messages).
    pub unexplained: Vec<String>,
}

impl NamedErrors {
    /// What the messages naming exactly `name` say.
    pub fn kinds_for(&self, name: &str) -> Vec<StderrKind> {
        self.by_name
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, k)| *k)
            .collect()
    }

    /// Whether every line was attributed to a name.
    pub fn all_explained(&self) -> bool {
        self.unexplained.is_empty()
    }
}

/// Splits stderr into `cannot <action> '<name>': <message>` errors and the rest. A line is
/// attributed only when it has exactly that form (names never contain `'`); `no datasets
/// available` is known noise and ignored.
pub fn named_errors(stderr: &str) -> NamedErrors {
    let mut out = NamedErrors::default();
    for line in stderr.lines().map(str::trim_end) {
        if line.is_empty() || line == "no datasets available" {
            continue;
        }
        match attribute(line) {
            Some((name, message)) => out.by_name.push((name.to_string(), classify(message))),
            None => out.unexplained.push(line.to_string()),
        }
    }
    out
}

fn attribute(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("cannot ")?;
    let open = rest.find('\'')?;
    let after = &rest[open + 1..];
    let close = after.find("': ")?;
    let name = &after[..close];
    let message = &after[close + 3..];
    (!name.is_empty() && !name.contains('\'') && !message.is_empty()).then_some((name, message))
}

/// Parses `zfs program -j` output whose Lua program returned a table of string keys to
/// string values.
pub fn parse_program_table(stdout: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let bad = || ParseError::Unrecognized {
        command: "zfs program -j",
        output: excerpt(stdout, 2000),
    };
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|_| bad())?;
    let table = v
        .get("return")
        .and_then(|r| r.as_object())
        .ok_or_else(bad)?;
    table
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(bad)?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use StderrKind::*;

    #[test]
    fn parses_get_rows_of_several_names() {
        let out = "p/a b\tencryption\toff\tdefault\n\
                   p/a b\tguid\t15335977771925927939\t-\n\
                   p/a b#bm1\tencryption\t-\t-\n\
                   p/a b#bm1\tguid\t6545852586101088742\t-\n\
                   p/c\tzrelay:x\ttab\tinside\tlocal\n";
        let rows = parse_get_rows(out).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[2].name, "p/a b#bm1");
        assert_eq!(
            (rows[2].value.as_str(), rows[2].source.as_str()),
            ("-", "-")
        );
        assert_eq!(rows[4].value, "tab\tinside");
        assert_eq!(rows[4].source, "local");
        assert!(parse_get_rows("p/a\tguid\t1\n").is_err());
        assert!(parse_get_rows("\tguid\t1\t-\n").is_err());
        assert_eq!(parse_get_rows("").unwrap(), vec![]);
    }

    #[test]
    fn attributes_real_messages() {
        let stderr = "cannot hold snapshot 'p/a b@1': tag already exists on this dataset\n\
                      cannot hold snapshot 'p/a b@missing': dataset does not exist\n\
                      cannot open 'p/nofs': dataset does not exist\n\
                      cannot open 'p/a b#missing': no such pool or dataset\n\
                      cannot release hold from snapshot 'p/c@2': no such tag on this dataset\n\
                      no datasets available\n";
        let e = named_errors(stderr);
        assert!(e.all_explained(), "{e:?}");
        assert_eq!(e.kinds_for("p/a b@1"), vec![AlreadyExists]);
        assert_eq!(e.kinds_for("p/a b@missing"), vec![DatasetDoesNotExist]);
        assert_eq!(e.kinds_for("p/nofs"), vec![DatasetDoesNotExist]);
        assert_eq!(e.kinds_for("p/a b#missing"), vec![DatasetDoesNotExist]);
        assert_eq!(e.kinds_for("p/c@2"), vec![NoSuchHoldTag]);
        assert!(e.kinds_for("p/c@1").is_empty());
    }

    #[test]
    fn keeps_unattributable_lines() {
        let e = named_errors("cannot hold: permission denied\ninvalid option 'x'\nusage:\n");
        assert!(e.by_name.is_empty());
        assert_eq!(e.unexplained.len(), 3);
        assert!(!named_errors("cannot open '': x\n").all_explained());
    }

    #[test]
    fn parses_program_tables() {
        let t = parse_program_table("{\"return\":{\"2\":\"exists\",\"1\":\"ok\"}}").unwrap();
        assert_eq!(t.get("1").map(String::as_str), Some("ok"));
        assert_eq!(t.get("2").map(String::as_str), Some("exists"));
        for bad in [
            "",
            "{\"return\":\"x\"}",
            "{\"return\":{\"1\":2}}",
            "Channel program fully executed",
        ] {
            assert!(parse_program_table(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "(\\PC|\t|\n|')*") {
            let _ = parse_get_rows(&s);
            let _ = named_errors(&s);
            let _ = parse_program_table(&s);
        }
    }
}
