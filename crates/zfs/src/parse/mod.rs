//! Pure parsers for the output of `zfs` commands.
//!
//! Invariants:
//! - Every function here is a pure function of the text it is given: none runs a command,
//!   reads the environment or panics on any input (property tests feed arbitrary strings).
//! - Formats are those of OpenZFS 2.x (`zfs list -Hp`, `zfs send -nvP`, `zfs send -nvt`,
//!   `zfs holds -H`, libzfs error messages); each module names the C code its format comes from.
//! - Names found in output are validated with [`crate::name`] before they are returned.
//! - Malformed output is an error quoting the offending line or text, never silently skipped;
//!   the exceptions are documented (e.g. unrecognised stderr classifies as `Other`).

pub mod batch;
pub mod destroy;
pub mod features;
pub mod holds;
pub mod list;
pub mod send_dry;
pub mod stderr;

pub use crate::resume_token::{ResumeTokenError, ResumeTokenInfo};
pub use batch::{named_errors, parse_get_rows, parse_program_table, GetRow, NamedErrors};
pub use destroy::{parse_destroy_stderr, DestroyFailure, DestroyReason};
pub use features::{parse_pool_features, FeatureState, PoolFeatures};
pub use holds::parse_holds;
pub use list::{
    is_placeholder_value, legacy_placeholder_value, parse_list, parse_placeholder_get, DatasetKind,
    ListedDataset, Version, LIST_PROPS,
};
pub use send_dry::{parse_send_dry, SendEstimate};
pub use stderr::{classify, recv_resume_token, StderrKind};

use crate::name::NameError;

/// Why command output could not be parsed. Messages quote the offending line or text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A row has the wrong number of tab-separated fields.
    #[error("line {line_no} {line:?}: expected {expected} tab-separated fields, found {found}")]
    FieldCount {
        /// 1-based line number.
        line_no: usize,
        /// The whole line.
        line: String,
        /// How many fields were expected.
        expected: usize,
        /// How many were found.
        found: usize,
    },
    /// A field's value is not what the column allows.
    #[error("line {line_no} {line:?}: field {field:?} has invalid value {value:?}: {reason}")]
    InvalidField {
        /// 1-based line number.
        line_no: usize,
        /// The whole line.
        line: String,
        /// The column or field name.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A name in the output is not a valid ZFS name of the expected kind.
    #[error("line {line_no} {line:?}: {source}")]
    InvalidName {
        /// 1-based line number.
        line_no: usize,
        /// The whole line.
        line: String,
        /// The validation failure.
        source: NameError,
    },
    /// The same dataset, snapshot or bookmark is listed twice.
    #[error("line {line_no} {line:?}: {name:?} is listed more than once")]
    Duplicate {
        /// 1-based line number of the second occurrence.
        line_no: usize,
        /// The whole line.
        line: String,
        /// The repeated name.
        name: String,
    },
    /// A snapshot or bookmark is listed but its filesystem or volume is not.
    #[error("{version:?} is listed but its dataset {fs:?} is not")]
    MissingDataset {
        /// The snapshot or bookmark.
        version: String,
        /// Its dataset.
        fs: String,
    },
    /// The output as a whole is in no recognised form.
    #[error("unrecognised output of {command}: {output:?}")]
    Unrecognized {
        /// Which command's output, e.g. `zfs send -nvP`.
        command: &'static str,
        /// The output (truncated to 2000 bytes).
        output: String,
    },
}

impl ParseError {
    pub(crate) fn field_count(line_no: usize, line: &str, expected: usize, found: usize) -> Self {
        ParseError::FieldCount {
            line_no,
            line: line.to_string(),
            expected,
            found,
        }
    }

    pub(crate) fn duplicate(line_no: usize, line: &str, name: &str) -> Self {
        ParseError::Duplicate {
            line_no,
            line: line.to_string(),
            name: name.to_string(),
        }
    }

    pub(crate) fn invalid_name(line_no: usize, line: &str, source: NameError) -> Self {
        ParseError::InvalidName {
            line_no,
            line: line.to_string(),
            source,
        }
    }
}

/// `s` truncated to at most `max` bytes on a char boundary, with `…` when cut.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The lines of `s` with 1-based numbers, without `\n` (or `\r\n`) terminators.
pub(crate) fn numbered_lines(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.lines().enumerate().map(|(i, l)| (i + 1, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_truncates_on_char_boundary() {
        assert_eq!(excerpt("abc", 5), "abc");
        assert_eq!(excerpt("aéb", 2), "a…");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }

    #[test]
    fn errors_quote_the_line() {
        let e = ParseError::FieldCount {
            line_no: 3,
            line: "a\tb".into(),
            expected: 3,
            found: 2,
        };
        assert_eq!(
            e.to_string(),
            r#"line 3 "a\tb": expected 3 tab-separated fields, found 2"#
        );
    }
}
