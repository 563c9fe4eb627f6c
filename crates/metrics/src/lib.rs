//! zrelay's Prometheus metrics: zrepl's metric families under the `zrelay_`
//! namespace, per-filesystem replication lag, and the `/metrics` endpoint.
//!
//! # Schema
//!
//! Every family is registered by [`Metrics::new`]; a family with labels shows
//! up in the output once a first value was recorded for some label set.
//! OpenMetrics counters are exposed with the `_total` suffix on the sample
//! (`zrelay_replication_bytes_replicated_total{…}`), as Prometheus stores
//! them. Durations are seconds, timestamps unix seconds, sizes bytes.
//!
//! | family | type | labels | meaning |
//! |---|---|---|---|
//! | `zrelay_start_time` | gauge | `raw`, `version_info` | daemon start time; the labels carry the version (zrepl's `start_time`) |
//! | `zrelay_replication_state_time` | histogram | `zrelay_job`, `state` | seconds a finished replication run spent in each attempt state (`planning`, `planning-error`, `working`, `working-wait`, `completed`, `cancelled`) |
//! | `zrelay_replication_bytes_replicated` | counter | `zrelay_job`, `filesystem` | bytes sent per filesystem (sender namespace) |
//! | `zrelay_replication_filesystem_errors` | gauge | `zrelay_job` | filesystems that failed in the last finished run; −1 when the run failed before enumerating filesystems |
//! | `zrelay_replication_last_successful` | gauge | `zrelay_job` | when the last fully successful run finished |
//! | `zrelay_pruning_time` | histogram | `zrelay_job`, `prune_side` (`sender`/`receiver`) | seconds one pruning run took |
//! | `zrelay_daemon_log_entries` | counter | `zrelay_job`, `level` | log entries emitted, by level (`error`, `warn`, `info`, `debug`) |
//! | `zrelay_zfscmd_runtime` | histogram | `zfsbinary`, `zfsverb` | wall time of finished `zfs`/`zpool` commands |
//! | `zrelay_filesystem_last_replicated_snapshot_timestamp` | gauge | `zrelay_job`, `filesystem`, `side` (`sender`/`receiver`) | creation time of the newest snapshot present on both sides (replication lag = now − value) |
//! | `zrelay_filesystem_bytes_pending` | gauge | `zrelay_job`, `filesystem` | bytes the next replication must still send: the sum of step estimates minus what was sent; 0 when up to date |
//! | `zrelay_control_request_begin` | counter | `endpoint` | control-socket requests started |
//! | `zrelay_control_request_finished` | histogram | `endpoint` | seconds control-socket requests took |
//! | `zrelay_snapshotter_snapshots` | counter | `zrelay_job`, `result` (`ok`/`error`) | snapshots the snapshotter tried to take |
//!
//! | `zrelay_zfs_list_unmatched_user_specified_dataset_count` | counter | `zrelay_job` | include rules of a push job's `filesystems` whose dataset a listing did not find |
//!
//! The replication manager's families (targets and the work queue) are
//! listed in [`manager`]. With `metric_names: zrepl`, the endpoint serves
//! zrepl's names for the families zrelay shares with zrepl (`zrepl` module).
//!
//! # Invariants
//!
//! - Label values are stored raw and escaped (`\\`, `\"`, `\n`) when encoded,
//!   so any job or filesystem name yields valid exposition text.
//! - [`Metrics::observe_report`] is idempotent: observing the same report (or
//!   a later snapshot of the same run) again never counts bytes twice and
//!   never observes a run's state times twice. A run is identified by
//!   `(job, report.started_at)`; within a run, bytes are counted as deltas.
//! - [`Metrics::observe_zfs_log`] records each finished invocation once, as
//!   long as fewer than the log's capacity (256) finished between two calls.
//! - Run-level gauges (`filesystem_errors`, `last_successful`) and state-time
//!   histograms change only when a report is final (the run completed or was
//!   cancelled); byte counters and `bytes_pending` follow live reports.
//! - [`Metrics::encode`] is OpenMetrics 1.0 text ending in `# EOF`;
//!   [`Metrics::encode_text`] is the same data in the classic Prometheus text
//!   format 0.0.4 (what `promtool check metrics` reads).
//! - [`serve`] answers `GET`/`HEAD /metrics` with OpenMetrics
//!   (`Content-Type: application/openmetrics-text; version=1.0.0;
//!   charset=utf-8`), or the 0.0.4 format when `Accept` names `text/plain`
//!   but not OpenMetrics; every other path is 404. One request per
//!   connection.

mod families;
mod http;
pub mod manager;
mod observe;
mod text;
mod zrepl;

pub use families::{Metrics, Side};
pub use http::{bind, serve, serve_on, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT};

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address is not `host:port` / `:port`.
    #[error("metrics listen address \"{listen}\": {why}")]
    BadAddress {
        /// The configured address.
        listen: String,
        /// What is wrong with it.
        why: String,
    },
    /// The listen address could not be resolved.
    #[error("metrics listen address \"{listen}\": cannot resolve: {source}")]
    Resolve {
        /// The configured address.
        listen: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// Binding or listening failed.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address that failed.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// Accepting connections failed with a non-transient error.
    #[error("metrics endpoint {addr}: accept failed: {source}")]
    Accept {
        /// The listening address.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
}

impl zrelay_zfs::Classify for MetricsError {
    /// A resolver failure may pass; a bad address, a failed bind and a
    /// non-transient accept failure need a change first.
    fn class(&self) -> zrelay_zfs::ErrorClass {
        match self {
            MetricsError::Resolve { .. } => zrelay_zfs::ErrorClass::Temporary,
            MetricsError::BadAddress { .. }
            | MetricsError::Bind { .. }
            | MetricsError::Accept { .. } => zrelay_zfs::ErrorClass::Permanent,
        }
    }
}
