//! Errors of the snapshotter, each temporary (the next round may succeed)
//! or permanent (a configuration problem that needs a human).

use zrelay_zfs::{Classify, ErrorClass, ZfsError};

/// Why the snapshotter could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The snapshotting configuration cannot be used (unknown time zone,
    /// cron expression, hook DSN, ...).
    #[error("invalid snapshotting configuration: {0}")]
    Config(String),
    /// Listing the filesystems failed.
    #[error("cannot list filesystems under {root}: {source}")]
    List {
        /// The listing root.
        root: String,
        /// The ZFS error.
        #[source]
        source: Box<ZfsError>,
    },
    /// No matched filesystem could be examined for the periodic sync-up.
    #[error("cannot determine the sync point: {0}")]
    SyncPoint(String),
    /// A snapshot is from the future, so the sync-up cannot trust it.
    #[error(
        "snapshot {snapshot} is from the future: created {created}s after the epoch, now is {now}s"
    )]
    FromTheFuture {
        /// The snapshot's full name.
        snapshot: String,
        /// Its `creation`, seconds since the epoch.
        created: i64,
        /// The clock's now, seconds since the epoch.
        now: i64,
    },
    /// The snapshotter's task is gone.
    #[error("the snapshotter has stopped")]
    Stopped,
}

impl Classify for SnapshotError {
    /// Temporary when the next round may succeed; permanent when a human
    /// must change the configuration or state first.
    fn class(&self) -> ErrorClass {
        match self {
            SnapshotError::Config(_) | SnapshotError::Stopped => ErrorClass::Permanent,
            SnapshotError::List { source, .. } => source.class(),
            SnapshotError::SyncPoint(_) | SnapshotError::FromTheFuture { .. } => {
                ErrorClass::Temporary
            }
        }
    }
}

/// Result with [`SnapshotError`].
pub type Result<T, E = SnapshotError> = std::result::Result<T, E>;
