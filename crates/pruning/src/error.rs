//! The pruning error type. Every error says whether retrying can help.

use zrelay_endpoint::EndpointError;
use zrelay_zfs::{Classify, ErrorClass};

/// zrepl's message when pruning needs a replication cursor that does not
/// exist yet (`daemon/pruner/pruner.go`).
pub const NO_CURSOR: &str = "replication cursor bookmark does not exist (one successful replication is required before pruning works)";

/// Everything that can go wrong while pruning.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A keep rule is invalid (bad regex, `count: 0`, malformed grid).
    #[error("keep rule #{index} ({rule}): {reason}")]
    InvalidRule {
        /// Position of the rule in its list.
        index: usize,
        /// The rule, as configured.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A rule needs the replication cursor but the filesystem has none:
    /// one successful replication is required before pruning the sender.
    #[error("{}", NO_CURSOR)]
    NoCursor,

    /// The rules cannot be used on this side (e.g. `not_replicated` when
    /// nothing is replicated).
    #[error("{0}")]
    Unsupported(String),

    /// The listing contradicts itself (e.g. the cursor's GUID is on no
    /// version of the filesystem).
    #[error("{0}")]
    Inconsistent(String),

    /// An endpoint call failed.
    #[error("{context}: {source}")]
    Endpoint {
        /// What the pruner was doing.
        context: String,
        /// The endpoint's error (carries its retry class).
        #[source]
        source: EndpointError,
    },
}

impl PruneError {
    /// Wrap an endpoint error with what the pruner was doing.
    pub fn endpoint(context: impl Into<String>, source: EndpointError) -> Self {
        PruneError::Endpoint {
            context: context.into(),
            source,
        }
    }
}

impl Classify for PruneError {
    /// Whether the same call may succeed later (only endpoint errors can be
    /// temporary; rule and cursor errors need a change first).
    fn class(&self) -> ErrorClass {
        match self {
            PruneError::Endpoint { source, .. } => source.class(),
            PruneError::InvalidRule { .. }
            | PruneError::NoCursor
            | PruneError::Unsupported(_)
            | PruneError::Inconsistent(_) => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporary_endpoint_errors_are_temporary() {
        assert!(PruneError::endpoint("x", EndpointError::Transport("down".into())).is_temporary());
        assert!(
            !PruneError::endpoint("x", EndpointError::InvalidRequest("bad".into())).is_temporary()
        );
        assert!(!PruneError::NoCursor.is_temporary());
        assert!(PruneError::NoCursor
            .to_string()
            .contains("one successful replication is required"));
    }
}
