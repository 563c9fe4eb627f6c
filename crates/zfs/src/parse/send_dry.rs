//! Parser for the output of `zfs send -nvP ...` and `zfs send -nvPt <token>`.
//!
//! libzfs (`send_print_verbose`, `estimate_size` in libzfs_sendrecv.c) prints one line per
//! stream, `full\t<to>\t<size>` or `incremental\t<from>\t<to>\t<size>`, then `size\t<total>`.
//! With `-t` the lines follow the resume token contents (see [`super::resume_token`]); the
//! resumed size is what remains to be sent. ZoL 0.7 omitted both the size field and the size
//! line for zero-sized streams (zrepl issue 289), which parses as size 0.

use super::{excerpt, ParseError};

/// The estimated size of a send stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendEstimate {
    /// Estimated stream size in bytes.
    pub size: u64,
}

/// Parses dry-run send output. The `size` line wins; without one, the sizes of the `full` and
/// `incremental` lines are added up (one line per stream for `-I`).
pub fn parse_send_dry(output: &str) -> Result<SendEstimate, ParseError> {
    let mut total: Option<u64> = None;
    for (line_no, line) in super::numbered_lines(output) {
        let fields: Vec<&str> = line.split('\t').collect();
        let invalid = |field: &'static str, value: &str| ParseError::InvalidField {
            line_no,
            line: line.to_string(),
            field,
            value: value.to_string(),
            reason: "expected a size in bytes",
        };
        match fields[..] {
            ["size", n] => {
                return n
                    .parse()
                    .map(|size| SendEstimate { size })
                    .map_err(|_| invalid("size", n))
            }
            ["full", _] | ["incremental", _, _] => {
                total.get_or_insert(0);
            }
            ["full", _, n] | ["incremental", _, _, n] => {
                let field = if fields[0] == "full" {
                    "full"
                } else {
                    "incremental"
                };
                let n: u64 = n.parse().map_err(|_| invalid(field, n))?;
                total = Some(total.unwrap_or(0).saturating_add(n));
            }
            _ => {}
        }
    }
    total
        .map(|size| SendEstimate { size })
        .ok_or_else(|| ParseError::Unrecognized {
            command: "zfs send -nvP",
            output: excerpt(output, 2000),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn size(s: &str) -> u64 {
        parse_send_dry(s).unwrap().size
    }

    #[test]
    fn openzfs_2_outputs() {
        // `zfs send -nvP zroot/test/a@3` and `zfs send -nvP -i @1 zroot/test/a@2` (zrepl's tests)
        assert_eq!(
            size("full\tzroot/test/a@3\t10518512\nsize\t10518512\n"),
            10518512
        );
        assert_eq!(
            size("incremental\t1\tzroot/test/a@2\t10511856\nsize\t10511856\n"),
            10511856
        );
        assert_eq!(
            size("\nfull\tpool1/otherjob/ds with spaces@blaffoo\t12912\nsize\t12912\n"),
            12912
        );
        assert_eq!(
            size("incremental\tblaffoo\tpool1/otherjob/another ds with spaces/childfs@blaffoo2\t624\nsize\t624\n"),
            624
        );
        // -I: one line per snapshot, one total
        let multi = "incremental\tp/a@1\tp/a@2\t100\nincremental\tp/a@2\tp/a@3\t50\nsize\t150\n";
        assert_eq!(size(multi), 150);
        assert_eq!(
            size("incremental\tp/a@1\tp/a@2\t100\nincremental\tp/a@2\tp/a@3\t50\n"),
            150
        );
    }

    #[test]
    fn resume_token_outputs() {
        // `zfs send -nvP -t <token>` on a full and an incremental stream (zrepl's tests)
        let full = "resume token contents:\nnvlist version: 0\n\tobject = 0x2\n\toffset = 0x4c0000\n\tbytes = 0x4e4228\n\ttoguid = 0x52f9c212c71e60cd\n\ttoname = zroot/test/a@1\nfull\tzroot/test/a@1\t5389768\n";
        assert_eq!(size(full), 5389768);
        let inc = "resume token contents:\nnvlist version: 0\n\tfromguid = 0x52f9c212c71e60cd\n\tobject = 0x2\n\toffset = 0x4c0000\n\tbytes = 0x4e3ef0\n\ttoguid = 0xcfae0ae671723c16\n\ttoname = zroot/test/a@2\nincremental\tzroot/test/a#1\tzroot/test/a@2\t5383312\n\n";
        assert_eq!(size(inc), 5383312);
        assert_eq!(size(&format!("{inc}size\t5383312\n")), 5383312);
    }

    #[test]
    fn zol_0_7_zero_sized_streams() {
        assert_eq!(
            size(
                "\nincremental\tp1 with/ spaces d1@1 with space\tp1 with/ spaces d1@2 with space\n"
            ),
            0
        );
        assert_eq!(size("\nfull\tp1 with/ spaces d1@2 with space\n"), 0);
    }

    #[test]
    fn errors() {
        let err = parse_send_dry("total estimated size is 1.2M\n").unwrap_err();
        assert!(
            err.to_string().contains("total estimated size is 1.2M"),
            "{err}"
        );
        let err = parse_send_dry("size\t12K\n").unwrap_err().to_string();
        assert!(
            err.contains(r#"field "size" has invalid value "12K""#),
            "{err}"
        );
        assert!(parse_send_dry("").is_err());
        assert!(parse_send_dry("full\tp@a\tx\n").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_output_never_panics(s in "(\\PC|\t|\n)*") {
            let _ = parse_send_dry(&s);
        }

        #[test]
        fn size_line_wins(parts in prop::collection::vec(0u64..1 << 40, 1..5)) {
            let mut out = String::new();
            for (i, n) in parts.iter().enumerate() {
                out += &format!("incremental\tp/a@{i}\tp/a@{}\t{n}\n", i + 1);
            }
            let sum: u64 = parts.iter().sum();
            prop_assert_eq!(size(&out), sum);
            prop_assert_eq!(size(&format!("{out}size\t{}\n", sum + 1)), sum + 1);
        }
    }
}
