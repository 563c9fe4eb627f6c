//! The endpoint error type. Every error says whether retrying can help.

use zrelay_zfs::{Classify, DatasetPath, ErrorClass, ZfsError};

/// Everything that can go wrong at an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A ZFS operation failed.
    #[error("{context}: {source}")]
    Zfs {
        /// What the endpoint was doing, naming the dataset.
        context: String,
        /// The ZFS layer's error (carries its own retry class).
        #[source]
        source: Box<ZfsError>,
    },

    /// A request names a filesystem this endpoint does not serve.
    #[error("filesystem '{fs}' is not allowed here: {reason}")]
    NotAllowed {
        /// The requested filesystem.
        fs: String,
        /// Why (filter, confinement).
        reason: String,
    },

    /// The request itself is malformed or inconsistent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The receiver's root filesystem is missing.
    #[error("receiver root filesystem '{0}' does not exist; create it first")]
    RootMissing(DatasetPath),

    /// A pool lacks a feature flag zrelay needs of it.
    #[error("pool '{pool}' has feature@{feature} disabled, and {needed_for}: enable it with `zpool set feature@{feature}=enabled {pool}` (this cannot be undone; older OpenZFS may no longer import the pool)")]
    PoolFeature {
        /// The pool.
        pool: String,
        /// The feature, without `feature@`.
        feature: &'static str,
        /// What needs it.
        needed_for: &'static str,
    },

    /// A full receive would overwrite a filesystem that is not a placeholder.
    #[error("refusing to overwrite '{fs}' with a full receive: it exists and is not a placeholder (zrelay never uses `zfs recv -F` on it unless you opt in)")]
    WouldOverwrite {
        /// The receiving filesystem.
        fs: DatasetPath,
    },

    /// A placeholder could not be created as configured.
    #[error("cannot create placeholder '{fs}': {reason}")]
    Placeholder {
        /// The placeholder to be.
        fs: DatasetPath,
        /// Why.
        reason: String,
    },

    /// The byte stream of a step failed.
    #[error("stream of '{fs}' failed: {reason}")]
    Stream {
        /// The filesystem being replicated.
        fs: DatasetPath,
        /// What happened.
        reason: String,
        /// Retrying can help.
        temporary: bool,
    },

    /// A receive failed. `resume_token` is the partial state it kept, if any.
    #[error("receive into '{fs}' failed{}: {source}", if resume_token.is_some() { " (resumable)" } else { "" })]
    Receive {
        /// The receiving filesystem.
        fs: DatasetPath,
        /// The cause.
        #[source]
        source: Box<EndpointError>,
        /// The receiver's `receive_resume_token` after the failure.
        resume_token: Option<String>,
    },

    /// A replica rename or destroy (zrelay extension) was refused: not
    /// allowed by this side's `recv.replicas`, not this job's replica, or not
    /// safe as it stands. Nothing was changed.
    #[error("replica '{fs}': {reason}")]
    ReplicaRefused {
        /// The replica, as the receiver names it.
        fs: String,
        /// Why.
        reason: String,
    },

    /// A snapshot a planned step needs was destroyed after the planning (by
    /// another job's pruning or by hand). Temporary: the next attempt plans
    /// again from what is left (an incremental base survives as the cursor
    /// bookmark).
    #[error("{0}: destroyed after planning (by another job?); the next attempt plans again")]
    Vanished(String),

    /// The peer could not be reached or broke the connection.
    #[error("transport: {0}")]
    Transport(String),

    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,

    /// The peer's endpoint failed; the message is the peer's error, as it
    /// logged it, with its retry class.
    #[error("{peer}: {message}")]
    Remote {
        /// Who answered (for messages).
        peer: String,
        /// The peer's error message.
        message: String,
        /// Whether the peer classified it as temporary.
        temporary: bool,
    },
}

impl EndpointError {
    /// Wrap a ZFS error with what the endpoint was doing.
    pub fn zfs(context: impl Into<String>, source: ZfsError) -> Self {
        EndpointError::Zfs {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// Whether a failed receive left a resumable state.
    pub fn resumable(&self) -> bool {
        self.resume_token().is_some()
    }

    /// The resume token a failed receive left, if any.
    pub fn resume_token(&self) -> Option<&str> {
        match self {
            EndpointError::Receive { resume_token, .. } => resume_token.as_deref(),
            _ => None,
        }
    }
}

impl Classify for EndpointError {
    /// The retry class the driver acts on: a wrapped ZFS or receive error's
    /// own, a remote error's as the peer classed it.
    fn class(&self) -> ErrorClass {
        match self {
            EndpointError::Zfs { source, .. } => source.class(),
            EndpointError::Stream { temporary, .. } | EndpointError::Remote { temporary, .. } => {
                ErrorClass::from_temporary(*temporary)
            }
            EndpointError::Receive { source, .. } => source.class(),
            EndpointError::Transport(_) | EndpointError::Vanished(_) | EndpointError::Cancelled => {
                ErrorClass::Temporary
            }
            EndpointError::NotAllowed { .. }
            | EndpointError::InvalidRequest(_)
            | EndpointError::RootMissing(_)
            | EndpointError::WouldOverwrite { .. }
            | EndpointError::PoolFeature { .. }
            | EndpointError::Placeholder { .. }
            | EndpointError::ReplicaRefused { .. } => ErrorClass::Permanent,
        }
    }
}

/// Result alias for endpoints.
pub type Result<T, E = EndpointError> = std::result::Result<T, E>;
