//! The queue's typed vocabulary: validated names, the record key, states and
//! the record itself. Everything here is plain data; the transitions live in
//! [`crate::machine`].
//!
//! Invariants of a [`Record`] (checked by [`Record::check_invariants`]):
//! a lease is held exactly when the state is `in_progress`; pending work is
//! only noted while `in_progress`; a dead reason exists exactly when the
//! state is `dead`; a next-eligible time exists only when `failed`.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::Serialize;
use zrelay_zfs::name::{validate_component, NameError};
use zrelay_zfs::{DatasetPath, ErrorClass};

pub use zrelay_endpoint::JobId;

use crate::error::NameTooLong;

/// The longest target name or worker id, in bytes.
pub const MAX_NAME_LEN: usize = 128;

fn bounded(s: &str) -> Result<(), NameTooLong> {
    if s.len() > MAX_NAME_LEN {
        return Err(NameTooLong {
            name: s.chars().take(32).collect(),
            len: s.len(),
            max: MAX_NAME_LEN,
        });
    }
    Ok(())
}

/// Why a target name, worker id or snapshot name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Not a valid ZFS name component.
    #[error(transparent)]
    Component(#[from] NameError),
    /// Longer than [`MAX_NAME_LEN`].
    #[error(transparent)]
    TooLong(#[from] NameTooLong),
}

/// A replication target's name, as the job's configuration names it: a
/// valid ZFS name component (no `/`, `@`, `#`, `%`, control characters) of
/// at most [`MAX_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TargetName(String);

impl TargetName {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<TargetName, InvalidName> {
        bounded(s)?;
        validate_component(s)?;
        Ok(TargetName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who holds a lease: one worker of one daemon (for example
/// `host:pid:worker-3`). Same rules as [`TargetName`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkerId(String);

impl WorkerId {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<WorkerId, InvalidName> {
        bounded(s)?;
        validate_component(s)?;
        Ok(WorkerId(s.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(TargetName, WorkerId);

/// The key of a record: one filesystem of one job replicated to one target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RecordKey {
    /// The job.
    pub job: JobId,
    /// The target.
    pub target: TargetName,
    /// The (sender's) filesystem.
    pub filesystem: DatasetPath,
}

impl RecordKey {
    /// Builds a key from validated parts.
    pub fn new(job: JobId, target: TargetName, filesystem: DatasetPath) -> RecordKey {
        RecordKey {
            job,
            target,
            filesystem,
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}: {}",
            self.job.as_str(),
            self.target,
            self.filesystem
        )
    }
}

/// The snapshot a record's step should bring the target to: its short name
/// (after `@`) and its GUID, which identifies it across renames.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TargetSnapshot {
    name: String,
    guid: u64,
}

impl TargetSnapshot {
    /// Validates the short name (a ZFS name component).
    pub fn new(name: &str, guid: u64) -> Result<TargetSnapshot, InvalidName> {
        validate_component(name)?;
        Ok(TargetSnapshot {
            name: name.to_owned(),
            guid,
        })
    }

    /// The short name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The GUID.
    pub fn guid(&self) -> u64 {
        self.guid
    }
}

/// A record's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for a worker; eligible at once.
    Ready,
    /// A worker holds the lease and runs the step.
    InProgress,
    /// The last step succeeded; nothing to do until new work is enqueued.
    Completed,
    /// The last step failed temporarily; eligible again after its backoff.
    Failed,
    /// A human is needed (`zrelay queue retry` or `drop`).
    Dead,
}

impl State {
    /// All states, in lifecycle order.
    pub const ALL: [State; 5] = [
        State::Ready,
        State::InProgress,
        State::Completed,
        State::Failed,
        State::Dead,
    ];

    /// The name used in the database, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::InProgress => "in_progress",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Dead => "dead",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown queue state {0:?} (ready, in_progress, completed, failed, dead)")]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<State, UnknownState> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Why a record is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// The step failed with a permanent error (a conflict, a refused
    /// overwrite, a missing dataset): retrying cannot help until someone acts.
    PermanentError,
    /// The step failed temporarily as many times in a row as the policy allows.
    AttemptsExhausted,
}

impl DeadReason {
    /// The name used in the database and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::PermanentError => "permanent_error",
            DeadReason::AttemptsExhausted => "attempts_exhausted",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<DeadReason> {
        [DeadReason::PermanentError, DeadReason::AttemptsExhausted]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The last error a record's step ended with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// The error's text.
    pub message: String,
    /// Its class, as the layer that saw the cause decided.
    #[serde(with = "class_serde")]
    pub class: ErrorClass,
}

impl LastError {
    /// The text and class of any classified error.
    pub fn of<E: zrelay_zfs::Classify + fmt::Display + ?Sized>(e: &E) -> LastError {
        LastError {
            message: e.to_string(),
            class: e.class(),
        }
    }
}

/// The lease on an `in_progress` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The worker holding it.
    pub owner: WorkerId,
    /// When it expires unless renewed; after that the record may be re-driven.
    #[serde(with = "crate::serde_time")]
    pub expires: SystemTime,
}

/// Work enqueued while a record was `in_progress`: taken up when the running
/// step ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingWork {
    /// The newer snapshot to reach (`None`: whatever is newest).
    pub snapshot: Option<TargetSnapshot>,
}

/// A worker's proof of holding a record's lease. The generation fences
/// stale holders: a record re-driven and acquired again has a new one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Claim {
    /// The record.
    pub key: RecordKey,
    /// The holder.
    pub owner: WorkerId,
    /// The record's acquisition count when this lease was granted.
    pub generation: u64,
}

/// One unit of replication work: a row of `zrelay queue list`.
///
/// Invariants ([`Record::check_invariants`]): a lease exactly when
/// `in_progress`; pending work only while `in_progress`; a dead reason
/// exactly when `dead`; a next-eligible time only when `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// (job, target, filesystem).
    pub key: RecordKey,
    /// Where the record is in its lifecycle.
    pub state: State,
    /// Consecutive failures; 0 after a success or a retry.
    pub attempts: u32,
    /// The snapshot the step should reach (`None`: whatever is newest).
    pub snapshot: Option<TargetSnapshot>,
    /// Newer work that arrived while `in_progress`.
    pub pending: Option<PendingWork>,
    /// The last failure (kept after a retry, for the operator).
    pub last_error: Option<LastError>,
    /// Why the record is dead; `Some` exactly when `dead`.
    pub dead_reason: Option<DeadReason>,
    /// The lease; `Some` exactly when `in_progress`.
    pub lease: Option<Lease>,
    /// How many times the record was acquired (the current lease's fence).
    pub generation: u64,
    /// When a `failed` record becomes eligible again.
    #[serde(with = "crate::serde_time::option")]
    pub next_eligible: Option<SystemTime>,
    /// When the record was first enqueued.
    #[serde(with = "crate::serde_time")]
    pub enqueued: SystemTime,
    /// When the record last changed.
    #[serde(with = "crate::serde_time")]
    pub updated: SystemTime,
}

/// `ErrorClass` as `"temporary"` / `"permanent"`.
pub(crate) mod class_serde {
    use serde::Serializer;
    use zrelay_zfs::ErrorClass;

    pub(crate) fn as_str(c: ErrorClass) -> &'static str {
        match c {
            ErrorClass::Temporary => "temporary",
            ErrorClass::Permanent => "permanent",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ErrorClass> {
        match s {
            "temporary" => Some(ErrorClass::Temporary),
            "permanent" => Some(ErrorClass::Permanent),
            _ => None,
        }
    }

    pub(crate) fn serialize<S: Serializer>(c: &ErrorClass, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(as_str(*c))
    }
}
