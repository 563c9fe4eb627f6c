//! [`ConfigWarning`]: a hazard in a configuration that zrepl 0.7 accepts.
//!
//! zrelay accepts every configuration zrepl accepts, and refuses only what
//! zrepl refuses or what would lose data. Where it sees a hazard that zrepl
//! allows (a keep rule list that keeps none of the job's snapshots, a
//! `dial_timeout` of 10 nanoseconds, two jobs serving one listener, …) the
//! configuration is accepted and carries a warning: `zrelay configcheck`
//! prints it and exits 0, the daemon logs it at startup. Warnings name the
//! file, line, column and key path like errors do, with the same escaping
//! and truncation of text from the file.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{locate, KeyPath};
use crate::yaml::Node;

/// A hazard zrepl allows, found while validating a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file the offending key is in.
    pub file: PathBuf,
    /// 1-based line of the offending key.
    pub line: usize,
    /// 1-based column of the offending key.
    pub column: usize,
    /// The key path, e.g. `jobs[0] (name "backup").connect.dial_timeout`.
    pub key: String,
    /// What the hazard is.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// The warnings of one file, collected while it is validated.
#[derive(Debug, Default)]
pub(crate) struct Warnings(RefCell<Vec<ConfigWarning>>);

impl Warnings {
    /// Record a warning about the key at `path` of the document `root`.
    pub(crate) fn push(
        &self,
        file: &Path,
        root: Option<&Node>,
        path: &KeyPath,
        message: impl fmt::Display,
    ) {
        let (mark, key) = locate(root, path);
        self.0.borrow_mut().push(ConfigWarning {
            file: file.to_path_buf(),
            line: mark.line,
            column: mark.col,
            key,
            message: message.to_string(),
        });
    }

    /// The warnings recorded so far, in order.
    pub(crate) fn take(&self) -> Vec<ConfigWarning> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}
