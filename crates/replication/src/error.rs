//! The driver's error type: an endpoint error, a planning conflict, or a
//! driver-level failure, each with its retry class.

use zrelay_endpoint::EndpointError;
use zrelay_planner::Conflict;
use zrelay_zfs::{Classify, ErrorClass};

/// Why a filesystem (or the whole attempt) did not replicate.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// An endpoint call failed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),

    /// The planner found a conflict that needs the operator.
    #[error("{0}")]
    Conflict(#[from] Conflict),

    /// A step made no progress for the watchdog's whole timeout.
    #[error("no progress for {0:?}: step aborted by the watchdog")]
    Stalled(std::time::Duration),

    /// A parent's initial replication failed, so this child cannot start.
    #[error("parent {0} failed its initial replication; not replicating its child")]
    ParentFailed(String),

    /// The step was retried as often as allowed.
    #[error("gave up after {attempts} tries of a temporary error (the next invocation tries again); last error: {last}")]
    RetriesExhausted {
        /// Tries made.
        attempts: u32,
        /// The last error's message.
        last: String,
    },

    /// The replication was cancelled.
    #[error("cancelled")]
    Cancelled,

    /// The driver's configuration is invalid.
    #[error("{0}")]
    Config(String),
}

impl Classify for ReplicationError {
    /// Whether retrying can help: an endpoint error's own class; stalls and
    /// cancellations are temporary, the rest needs a change first.
    fn class(&self) -> ErrorClass {
        match self {
            ReplicationError::Endpoint(e) => e.class(),
            ReplicationError::Stalled(_) | ReplicationError::Cancelled => ErrorClass::Temporary,
            ReplicationError::Conflict(c) => c.class(),
            ReplicationError::ParentFailed(_)
            | ReplicationError::RetriesExhausted { .. }
            | ReplicationError::Config(_) => ErrorClass::Permanent,
        }
    }
}

impl ReplicationError {
    /// Whether a failed step left a resumable state on the receiver.
    pub fn resumable(&self) -> bool {
        matches!(self, ReplicationError::Endpoint(e) if e.resumable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SnapshotFilter;

    #[test]
    fn snapshot_filter_error_names_the_regex_and_classes_hold() {
        let Err(e) = SnapshotFilter::regex("(a") else {
            panic!("an unclosed group must be refused");
        };
        assert!(
            e.to_string()
                .starts_with("invalid replication.snapshot_filter regex \"(a\": "),
            "{e}"
        );
        assert!(ReplicationError::Config("x".into()).is_permanent());
        assert!(ReplicationError::Cancelled.is_temporary());
    }
}
