//! zrelay's durable replication work queue (the model is Praefect's
//! replication queue), in embedded SQLite.
//!
//! # Records
//!
//! One [`Record`] per [`RecordKey`] = (job, target, filesystem): the key is
//! the table's primary key, so there is never a second record, and so never
//! two steps in flight, for one filesystem of one job to one target. A
//! record holds its [`State`], the consecutive-failure count (`attempts`),
//! the last error's text and [class](zrelay_zfs::ErrorClass), the snapshot
//! the step should reach (name + GUID, optional), the lease, the
//! next-eligible time of a failed record, a [`DeadReason`] when dead, and
//! when it was enqueued and last updated.
//!
//! # States and transitions
//!
//! `ready`, `in_progress`, `completed`, `failed`, `dead`; the table of every
//! transition is in [`machine`]. In short:
//! - **enqueue** creates a ready record, or points an existing one at the
//!   newest snapshot: a completed record becomes ready again (unless it
//!   already reached that snapshot); an in_progress record is not disturbed
//!   but remembers the pending work, taken up when its step ends; a failed
//!   record keeps its backoff; a dead record stays dead.
//! - **acquire**: ready, or failed past its backoff → in_progress, with a
//!   lease for one worker.
//! - **heartbeat** renews the lease; **complete** → completed (attempts 0);
//!   **fail** → failed with exponential backoff (attempts + 1), or dead.
//! - **expire**: in_progress past its lease → ready at once (re-driven).
//! - **retry** (operator): failed or dead → ready, attempts 0.
//!   **drop** (operator): removes any record that is not in_progress.
//!
//! Every refused transition is a typed [`TransitionError`] naming the
//! record, the operation and the state.
//!
//! # Leases
//!
//! Acquiring grants a lease until now + [`Policy::lease`] and returns a
//! [`Claim`] (owner + generation, the record's acquisition count). Only the
//! current claim can heartbeat, complete or fail the record: once the
//! record was re-driven, retried or ended, the old claim gets
//! [`TransitionError::LeaseLost`], and a re-acquired record has a new
//! generation, so a worker that stalled past its lease can never complete
//! another worker's step. Expiry only makes a lease *reclaimable*: until
//! [`Queue::expire_leases`] takes it back, its holder may still renew it.
//! Acquire is atomic across connections and processes (`BEGIN IMMEDIATE`
//! plus a guarded `UPDATE`): **two workers never hold the same record**.
//!
//! # Dead
//!
//! Dead means a human is needed: the step failed with a permanent error (a
//! diverged target, a refused overwrite...) or failed temporarily
//! [`Policy::max_attempts`] times in a row. A dead record is never acquired,
//! and since acquiring looks only at ready and eligible failed records, a
//! dead record never blocks any other filesystem or target. It leaves that
//! state only by `zrelay queue retry` or `drop`.
//!
//! # Durability
//!
//! Everything in a record survives a restart (one SQLite file, WAL,
//! `synchronous = NORMAL`, schema versioned and migrated on open, 0600).
//! An in_progress record of a daemon that died keeps its lease until it
//! expires; [`Queue::expire_leases`] at startup and periodically then
//! re-drives it, with no wakeup or new snapshot needed.
//!
//! # Time
//!
//! The state machine never reads a clock. The store asks its injected
//! [`Clock`] once per operation ([`SystemClock`] in production,
//! [`ManualClock`] or [`TokioClock`] under a paused tokio clock in tests).
//! Times are stored to the millisecond.

mod clock;
mod error;
mod gone;
pub mod machine;
mod model;
mod schema;
mod sql;
mod store;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use error::{NameTooLong, Op, PolicyError, QueueError, Result, TransitionError};
pub use machine::{EnqueueOutcome, Policy, REDRIVE_ERROR};
pub use model::{
    Claim, DeadReason, InvalidName, JobId, LastError, Lease, PendingWork, Record, RecordKey, State,
    TargetName, TargetSnapshot, UnknownState, WorkerId, MAX_NAME_LEN,
};
pub use schema::SCHEMA_VERSION;
pub use store::{Acquired, Depth, Filter, Queue};

/// Timestamps as RFC 3339 strings (UTC) in JSON.
pub(crate) mod serde_time {
    use std::time::SystemTime;

    use serde::Serializer;

    fn to_string(t: SystemTime) -> String {
        match jiff::Timestamp::try_from(t) {
            Ok(ts) => ts.to_string(),
            Err(_) => format!("{t:?}"),
        }
    }

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_string(*t))
    }

    pub(crate) mod option {
        use std::time::SystemTime;

        use serde::Serializer;

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&super::to_string(*t)),
                None => s.serialize_none(),
            }
        }
    }
}
