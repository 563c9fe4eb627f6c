//! The queue's errors: refused transitions ([`TransitionError`], from the
//! pure state machine) and store failures ([`QueueError`], which name the
//! database file). All implement [`Classify`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::ErrorCode;
use zrelay_zfs::{Classify, ErrorClass};

use crate::model::{RecordKey, State, WorkerId};

/// A name longer than allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name {name:?}… is {len} bytes long, the limit is {max}")]
pub struct NameTooLong {
    /// The start of the name.
    pub name: String,
    /// Its length in bytes.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

/// A queue operation, as named in refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Take a record for a worker.
    Acquire,
    /// Renew a lease.
    Heartbeat,
    /// End a step successfully.
    Complete,
    /// End a step with an error.
    Fail,
    /// Take back an expired lease.
    Expire,
    /// The operator's `zrelay queue retry`.
    Retry,
    /// The operator's `zrelay queue drop`.
    Drop,
}

impl Op {
    /// The states the operation is allowed from.
    pub fn allowed_from(self) -> &'static [State] {
        match self {
            Op::Acquire => &[State::Ready, State::Failed],
            Op::Heartbeat | Op::Complete | Op::Fail | Op::Expire => &[State::InProgress],
            Op::Retry => &[State::Failed, State::Dead],
            Op::Drop => &[State::Ready, State::Completed, State::Failed, State::Dead],
        }
    }

    /// The operation's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Acquire => "acquire",
            Op::Heartbeat => "heartbeat",
            Op::Complete => "complete",
            Op::Fail => "fail",
            Op::Expire => "expire the lease of",
            Op::Retry => "retry",
            Op::Drop => "drop",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

struct States(&'static [State]);

impl fmt::Display for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// A transition the state machine refuses. Always names the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The operation is not allowed from the record's state.
    #[error(
        "queue record {key}: cannot {op} a record that is {state} (allowed from: {allowed})",
        allowed = States(op.allowed_from())
    )]
    NotAllowed {
        /// The record.
        key: RecordKey,
        /// What was asked.
        op: Op,
        /// The record's state.
        state: State,
    },
    /// A failed record's backoff has not passed yet.
    #[error("queue record {key}: failed, not eligible before {until:?} (backoff)")]
    NotEligible {
        /// The record.
        key: RecordKey,
        /// When it becomes eligible.
        until: SystemTime,
    },
    /// The caller's lease is gone: the record was re-driven (and maybe taken
    /// by another worker), retried, or ended.
    #[error(
        "queue record {key}: cannot {op}: the lease of {owner} (generation {generation}) \
         was lost; the record is {state} at generation {current}"
    )]
    LeaseLost {
        /// The record.
        key: RecordKey,
        /// What was asked.
        op: Op,
        /// The caller.
        owner: WorkerId,
        /// The caller's generation.
        generation: u64,
        /// The record's state now.
        state: State,
        /// The record's generation now.
        current: u64,
    },
    /// `expire` on a lease that is still valid.
    #[error("queue record {key}: lease of {owner} is valid until {expires:?}")]
    NotExpired {
        /// The record.
        key: RecordKey,
        /// The holder.
        owner: WorkerId,
        /// When it expires.
        expires: SystemTime,
    },
}

impl TransitionError {
    /// The record the refusal is about.
    pub fn key(&self) -> &RecordKey {
        match self {
            TransitionError::NotAllowed { key, .. }
            | TransitionError::NotEligible { key, .. }
            | TransitionError::LeaseLost { key, .. }
            | TransitionError::NotExpired { key, .. } => key,
        }
    }
}

impl Classify for TransitionError {
    /// A backoff or a valid lease passes with time (temporary); a wrong
    /// state or a lost lease does not (permanent: the caller must stop).
    fn class(&self) -> ErrorClass {
        ErrorClass::from_temporary(matches!(
            self,
            TransitionError::NotEligible { .. } | TransitionError::NotExpired { .. }
        ))
    }
}

/// A queue policy that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A duration that must be positive is zero.
    #[error("queue policy: {what} must be longer than zero")]
    Zero {
        /// Which setting.
        what: &'static str,
    },
    /// The backoff's start exceeds its maximum.
    #[error("queue policy: backoff start {start:?} exceeds the maximum {max:?}")]
    BackoffOrder {
        /// The start.
        start: Duration,
        /// The maximum.
        max: Duration,
    },
    /// `max_attempts` is zero.
    #[error("queue policy: max attempts must be at least 1")]
    NoAttempts,
}

impl Classify for PolicyError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// A failure of the queue store. Every variant but `Transition` names the file.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Creating the directory or file failed.
    #[error("queue database {}: {op}: {source}", path.display())]
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
    #[error("queue database {} is corrupt or not an SQLite database ({source})", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer zrelay.
    #[error(
        "queue database {} has schema version {found}, newer than version {supported} \
         that this zrelay understands",
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
    /// Any other SQLite failure (including a row that does not decode).
    #[error("queue database {}: {op}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// No record with that key.
    #[error("queue database {}: no record {key}", path.display())]
    NotFound {
        /// The database file.
        path: PathBuf,
        /// The key asked for.
        key: RecordKey,
    },
    /// A guarded write found the record changed since it was read (another
    /// connection got there first).
    #[error("queue database {}: record {key} changed under the operation; try again", path.display())]
    Conflict {
        /// The database file.
        path: PathBuf,
        /// The record.
        key: RecordKey,
    },
    /// A transition produced a record that breaks an invariant (a bug);
    /// nothing was written.
    #[error("queue record {key}: refusing to write a record that breaks an invariant: {broken}")]
    Invariant {
        /// The record.
        key: RecordKey,
        /// The invariant.
        broken: &'static str,
    },
    /// The state machine refused the operation.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The blocking task running the database call panicked or was cancelled.
    #[error("queue database {}: the database task failed: {reason}", path.display())]
    Task {
        /// The database file.
        path: PathBuf,
        /// The join error's text.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

impl Classify for QueueError {
    /// Busy/locked databases and interrupted I/O are temporary; a refused
    /// transition keeps its own class; everything else is permanent.
    fn class(&self) -> ErrorClass {
        match self {
            QueueError::Sqlite { source, .. } => ErrorClass::from_temporary(matches!(
                source.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            )),
            QueueError::Io { source, .. } => ErrorClass::from_temporary(matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            )),
            QueueError::Transition(t) => t.class(),
            QueueError::Conflict { .. } => ErrorClass::Temporary,
            _ => ErrorClass::Permanent,
        }
    }
}

impl QueueError {
    /// Classifies an SQLite error: corruption apart from the rest.
    pub(crate) fn sqlite(path: &Path, op: &'static str, source: rusqlite::Error) -> Self {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => QueueError::Corrupt {
                path: path.to_owned(),
                source,
            },
            _ => QueueError::Sqlite {
                path: path.to_owned(),
                op,
                source,
            },
        }
    }

    pub(crate) fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        QueueError::Io {
            path: path.to_owned(),
            op,
            source,
        }
    }
}
