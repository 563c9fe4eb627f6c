//! The daemon's errors. Configuration and protocol errors are permanent;
//! I/O errors name what was being done.

use zrelay_zfs::{Classify, ErrorClass};

/// A daemon failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration cannot be acted on (names the job or key).
    #[error("{0}")]
    Config(String),
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path or address.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A job's transport could not be set up.
    #[error("job {job}: {source}")]
    Transport {
        /// The job.
        job: String,
        /// The cause.
        #[source]
        source: zrelay_transport::TransportError,
    },
    /// A job could not be set up; the other jobs run.
    #[error("job {job} did not start: {error}")]
    NotStarted {
        /// The job.
        job: String,
        /// Why.
        error: String,
    },
    /// The durable history failed.
    #[error("history: {0}")]
    History(#[from] zrelay_history::HistoryError),
    /// The metrics endpoint failed.
    #[error("monitoring: {0}")]
    Monitoring(String),
    /// The control protocol was violated.
    #[error("control protocol: {0}")]
    Protocol(String),
    /// A signal names no job of this daemon.
    #[error("no job named \"{job}\" (jobs: {known})")]
    NoSuchJob {
        /// The requested name.
        job: String,
        /// The jobs that exist.
        known: String,
    },
    /// The job cannot take this signal.
    #[error("job {job} ({kind}) cannot be signalled with {signal}: {why}")]
    BadSignal {
        /// The job.
        job: String,
        /// Its type.
        kind: String,
        /// The signal.
        signal: String,
        /// Why.
        why: String,
    },
}

impl Classify for DaemonError {
    /// I/O errors and the metrics endpoint are temporary, a transport or
    /// history error keeps its class, the rest needs a change of
    /// configuration or request.
    fn class(&self) -> ErrorClass {
        match self {
            DaemonError::Io { .. } | DaemonError::Monitoring(_) => ErrorClass::Temporary,
            DaemonError::Transport { source, .. } => source.class(),
            DaemonError::History(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
}
