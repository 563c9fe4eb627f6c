//! [`HistoryError`]: every failure names the database file.

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;
use zrelay_zfs::{Classify, ErrorClass};

use crate::model::State;

/// A failure of the history database.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Creating the directory or file, or reading its metadata, failed.
    #[error("history database {}: {op}: {source}", path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not an SQLite database, or is damaged.
    #[error(
        "history database {} is corrupt or not an SQLite database ({source}); \
         move it away and zrelay starts a new one",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer zrelay.
    #[error(
        "history database {} has schema version {found}, newer than version {supported} \
         that this zrelay understands; run a newer zrelay or move the file away",
        path.display()
    )]
    FutureSchema {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A read-only open found a file that still needs migrating.
    #[error(
        "history database {} has schema version {found}, older than version {supported}; \
         it is migrated when the daemon opens it",
        path.display()
    )]
    OldSchema {
        /// The database file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build writes.
        supported: i64,
    },
    /// A read-only open found no database file.
    #[error("history database {} does not exist (the daemon creates it)", path.display())]
    Missing {
        /// The database file.
        path: PathBuf,
    },
    /// Any other SQLite failure.
    #[error("history database {}: {op}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// An id that the database does not hold (never handed out, or trimmed).
    #[error("history database {}: no {what} with id {id}", path.display())]
    NotFound {
        /// The database file.
        path: PathBuf,
        /// `invocation`, `attempt` or `step`.
        what: &'static str,
        /// The id.
        id: i64,
    },
    /// `end_*`/`step_finished` was given a state that does not end anything.
    #[error("{state} does not end an invocation, attempt or step (use completed, failed or dead)")]
    NotFinal {
        /// The state given.
        state: State,
    },
    /// The database thread has stopped (it panicked, or could not start).
    #[error("history database {}: the database thread has stopped", path.display())]
    Closed {
        /// The database file.
        path: PathBuf,
    },
}

/// The crate's result type.
pub type Result<T, E = HistoryError> = std::result::Result<T, E>;

impl Classify for HistoryError {
    /// Temporary when trying again later may succeed: the database was busy
    /// or locked by another process, or an I/O call was interrupted or timed
    /// out. Corruption, a newer schema, permissions and bad ids are permanent.
    fn class(&self) -> ErrorClass {
        let temporary = match self {
            HistoryError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
            HistoryError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            _ => false,
        };
        ErrorClass::from_temporary(temporary)
    }
}

impl HistoryError {
    /// The database file the error is about, where it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            HistoryError::Io { path, .. }
            | HistoryError::Corrupt { path, .. }
            | HistoryError::FutureSchema { path, .. }
            | HistoryError::OldSchema { path, .. }
            | HistoryError::Missing { path }
            | HistoryError::Sqlite { path, .. }
            | HistoryError::NotFound { path, .. }
            | HistoryError::Closed { path } => Some(path),
            HistoryError::NotFinal { .. } => None,
        }
    }

    /// Classifies an SQLite error: corruption apart from the rest.
    pub(crate) fn sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> Self {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => HistoryError::Corrupt {
                path: path.to_owned(),
                source,
            },
            _ => HistoryError::Sqlite {
                path: path.to_owned(),
                op,
                source,
            },
        }
    }

    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        HistoryError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_is_temporary_corruption_is_not() {
        let p = Path::new("/x/history.db");
        let busy = HistoryError::sqlite(p, "write", failure(rusqlite::ffi::SQLITE_BUSY));
        assert!(busy.is_temporary(), "{busy}");
        let locked = HistoryError::sqlite(p, "write", failure(rusqlite::ffi::SQLITE_LOCKED));
        assert!(locked.is_temporary());
        let corrupt = HistoryError::sqlite(p, "read", failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(matches!(corrupt, HistoryError::Corrupt { .. }));
        assert!(!corrupt.is_temporary());
        assert!(corrupt.to_string().contains("/x/history.db"), "{corrupt}");
        let notadb = HistoryError::sqlite(p, "open", failure(rusqlite::ffi::SQLITE_NOTADB));
        assert!(matches!(notadb, HistoryError::Corrupt { .. }));
        let perm = HistoryError::io(p, "open", io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!perm.is_temporary());
        assert_eq!(perm.path(), Some(p));
    }
}
