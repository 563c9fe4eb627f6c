//! The ZFS layer's error type, and the retry class every zrelay error has.
//!
//! # The convention
//!
//! Every crate's error type implements [`Classify`]: `class()` says whether
//! the same call may succeed later ([`ErrorClass::Temporary`]: busy dataset,
//! network trouble, a killed child) or not before something changes
//! ([`ErrorClass::Permanent`]: bad configuration, missing dataset, policy).
//! The layer that sees the cause decides (the ZFS layer from `zfs`'s stderr,
//! the transport from the socket error, ...); wrapping errors pass their
//! source's class on and never re-guess it. Retry loops act on the class
//! only, generically through `impl Classify`. Across the wire an error
//! travels as its message plus its class, so the caller retries a remote
//! error exactly as it would a local one.

use crate::name::NameError;
use crate::parse::{ParseError, StderrKind};

/// Whether retrying the failed operation later can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The same call may succeed later (busy dataset, I/O trouble, a killed child).
    Temporary,
    /// Retrying cannot help until something changes (bad name, missing dataset, policy).
    Permanent,
}

impl ErrorClass {
    /// `Temporary` when `temporary`, else `Permanent` (for classes that
    /// crossed the wire or a boundary as a flag).
    pub fn from_temporary(temporary: bool) -> Self {
        if temporary {
            ErrorClass::Temporary
        } else {
            ErrorClass::Permanent
        }
    }
}

/// An error that knows its retry class: implemented by every zrelay
/// crate's error type (see the module documentation).
pub trait Classify {
    /// Whether retrying the failed operation later can succeed.
    fn class(&self) -> ErrorClass;

    /// `class() == Temporary`.
    fn is_temporary(&self) -> bool {
        self.class() == ErrorClass::Temporary
    }

    /// `class() == Permanent`.
    fn is_permanent(&self) -> bool {
        self.class() == ErrorClass::Permanent
    }
}

/// Everything that can go wrong in the ZFS layer.
#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    /// A name failed validation before any command ran.
    #[error(transparent)]
    Name(#[from] NameError),

    /// The dataset, snapshot or bookmark does not exist.
    #[error("dataset does not exist: {path:?}")]
    DatasetDoesNotExist {
        /// Full name of the missing dataset, snapshot or bookmark.
        path: String,
    },

    /// A bookmark with this name exists but points at another snapshot.
    #[error("bookmark {bookmark:?} exists with guid {existing:#x}, expected {expected:#x}")]
    BookmarkExists {
        /// The bookmark's full name.
        bookmark: String,
        /// GUID of the existing bookmark.
        existing: u64,
        /// GUID the caller wanted it to have.
        expected: u64,
    },

    /// A dataset exists but its GUID is not the one the caller named.
    #[error("{name:?} has guid {actual:#x}, expected {expected:#x}")]
    GuidMismatch {
        /// Full name of the version.
        name: String,
        /// GUID found on disk.
        actual: u64,
        /// GUID the caller expected.
        expected: u64,
    },

    /// `zfs recv -F` refused to destroy or overwrite an encrypted filesystem.
    #[error("cannot force-receive into encrypted filesystem {fs:?}: {stderr}")]
    RecvDestroyOrOverwriteEncrypted {
        /// The receiving filesystem.
        fs: String,
        /// zfs's own words.
        stderr: String,
    },

    /// A command ran and failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the operator.
        cmd: String,
        /// How it ended, e.g. "exit code 1" or "killed by signal 9".
        status: String,
        /// The tail of its stderr.
        stderr: String,
        /// What the stderr says, as far as it is recognised.
        kind: StderrKind,
    },

    /// A command could not be started at all.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A command's output could not be parsed.
    #[error("cannot parse the output of `{cmd}`: {source}")]
    Parse {
        /// The command line.
        cmd: String,
        /// What was wrong with the output.
        #[source]
        source: ParseError,
    },

    /// Send arguments or a resume token were refused by validation.
    #[error("send refused: {0}")]
    SendValidation(String),

    /// Reading or writing a send/receive stream failed.
    #[error("stream I/O on {what}: {source}")]
    Stream {
        /// Which stream.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The stream was closed before this operation.
    #[error("stream {0} is already closed")]
    Closed(String),

    /// An injected fault (fake ZFS only).
    #[error("injected fault: {0}")]
    Injected(String),

    /// The installed OpenZFS lacks something zrelay needs.
    #[error("not supported by this OpenZFS: {0}")]
    Unsupported(String),
}

impl Classify for ZfsError {
    /// The retry class the driver acts on.
    fn class(&self) -> ErrorClass {
        use ErrorClass::*;
        match self {
            ZfsError::Command { kind, .. } => match kind {
                StderrKind::Busy | StderrKind::Held | StderrKind::Other => Temporary,
                _ => Permanent,
            },
            ZfsError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Permanent
            }
            ZfsError::Spawn { .. } | ZfsError::Stream { .. } | ZfsError::Injected(_) => Temporary,
            ZfsError::Name(_)
            | ZfsError::DatasetDoesNotExist { .. }
            | ZfsError::BookmarkExists { .. }
            | ZfsError::GuidMismatch { .. }
            | ZfsError::RecvDestroyOrOverwriteEncrypted { .. }
            | ZfsError::Parse { .. }
            | ZfsError::SendValidation(_)
            | ZfsError::Closed(_)
            | ZfsError::Unsupported(_) => Permanent,
        }
    }
}

impl ZfsError {
    /// `Ok` when `actual == expected`, else [`ZfsError::GuidMismatch`] naming `name`.
    pub fn check_guid(name: &str, actual: u64, expected: u64) -> Result<()> {
        if actual == expected {
            return Ok(());
        }
        Err(ZfsError::GuidMismatch {
            name: name.to_string(),
            actual,
            expected,
        })
    }

    /// Whether this error says the named thing does not exist.
    pub fn is_does_not_exist(&self) -> bool {
        matches!(
            self,
            ZfsError::DatasetDoesNotExist { .. }
                | ZfsError::Command {
                    kind: StderrKind::DatasetDoesNotExist,
                    ..
                }
        )
    }
}

/// Result alias for the ZFS layer.
pub type Result<T, E = ZfsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let busy = ZfsError::Command {
            cmd: "zfs destroy p/a@b".into(),
            status: "exit code 1".into(),
            stderr: "dataset is busy".into(),
            kind: StderrKind::Busy,
        };
        assert_eq!(busy.class(), ErrorClass::Temporary);
        let missing = ZfsError::DatasetDoesNotExist { path: "p/x".into() };
        assert_eq!(missing.class(), ErrorClass::Permanent);
        assert!(missing.is_does_not_exist());
        assert!(missing.to_string().contains("\"p/x\""));
        let no_binary = ZfsError::Spawn {
            cmd: "zfs list".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(no_binary.class(), ErrorClass::Permanent);
        assert!(busy.is_temporary() && !busy.is_permanent());
        assert!(no_binary.is_permanent());
        assert_eq!(ErrorClass::from_temporary(true), ErrorClass::Temporary);
        assert_eq!(ErrorClass::from_temporary(false), ErrorClass::Permanent);
    }
}
