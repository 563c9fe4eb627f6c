//! The daemon's periodic chores, each a worker of its own:
//! - [`ZfsObserver`]: every second, the running zfs commands' durations go
//!   into the metrics;
//! - [`HistoryTrim`]: at start and then daily, history records older than
//!   `history.max_age` are trimmed;
//! - [`MetricsEndpoint`]: the Prometheus endpoint (`global.monitoring`); a
//!   listener that cannot bind is a failure the supervisor retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zrelay_history::History;
use zrelay_metrics::Metrics;

use crate::error::DaemonError;
use crate::status::ChoreStatus;
use crate::worker::{Worker, WorkerStatus};

/// How often the zfs command durations are observed.
pub const OBSERVE_EVERY: Duration = Duration::from_secs(1);
/// How often the history is trimmed.
pub const TRIM_EVERY: Duration = Duration::from_secs(86_400);

/// A chore's counters: written by the chore, read by value.
pub(crate) struct Counters {
    pub(crate) name: &'static str,
    runs: AtomicU64,
    last_error: watch::Sender<Option<String>>,
}

impl Counters {
    pub(crate) fn new(name: &'static str) -> Counters {
        Counters {
            name,
            runs: AtomicU64::new(0),
            last_error: watch::Sender::new(None),
        }
    }

    pub(crate) fn ran(&self, error: Option<String>) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.last_error.send_replace(error);
    }

    pub(crate) fn status(&self) -> WorkerStatus {
        WorkerStatus::Chore(ChoreStatus {
            name: self.name.to_string(),
            runs: self.runs.load(Ordering::Relaxed),
            last_error: self.last_error.borrow().clone(),
        })
    }
}

/// Observes the zfs commands' durations into the metrics.
pub struct ZfsObserver {
    metrics: Arc<Metrics>,
    log: zrelay_zfs::cmd::InvocationLog,
    counters: Counters,
}

impl ZfsObserver {
    /// Observe `log` into `metrics`.
    pub fn new(metrics: Arc<Metrics>, log: zrelay_zfs::cmd::InvocationLog) -> ZfsObserver {
        ZfsObserver {
            metrics,
            log,
            counters: Counters::new("zfs-commands"),
        }
    }
}

#[async_trait]
impl Worker for ZfsObserver {
    fn name(&self) -> &str {
        self.counters.name
    }

    fn status(&self) -> WorkerStatus {
        self.counters.status()
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let mut tick = tokio::time::interval(OBSERVE_EVERY);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            self.metrics.observe_zfs_log(&self.log);
            self.counters.ran(None);
        }
    }
}

/// Trims the history.
pub struct HistoryTrim {
    history: History,
    max_age: Duration,
    counters: Counters,
}

impl HistoryTrim {
    /// Trim `history` of records older than `max_age`.
    pub fn new(history: History, max_age: Duration) -> HistoryTrim {
        HistoryTrim {
            history,
            max_age,
            counters: Counters::new("history-trim"),
        }
    }
}

#[async_trait]
impl Worker for HistoryTrim {
    fn name(&self) -> &str {
        self.counters.name
    }

    fn status(&self) -> WorkerStatus {
        self.counters.status()
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            match self.history.trim(self.max_age).await {
                Ok(n) => {
                    if n > 0 {
                        info!(invocations = n, "history: trimmed old records");
                    }
                    self.counters.ran(None);
                }
                Err(e) => {
                    warn!(error = %e, "history: cannot trim");
                    self.counters.ran(Some(e.to_string()));
                }
            }
        }
    }
}

/// The Prometheus endpoint.
pub struct MetricsEndpoint {
    metrics: Arc<Metrics>,
    listen: String,
    freebind: bool,
    counters: Counters,
}

impl MetricsEndpoint {
    /// Serve `metrics` at `listen`.
    pub fn new(metrics: Arc<Metrics>, listen: String, freebind: bool) -> MetricsEndpoint {
        MetricsEndpoint {
            metrics,
            listen,
            freebind,
            counters: Counters::new("metrics-endpoint"),
        }
    }
}

#[async_trait]
impl Worker for MetricsEndpoint {
    fn name(&self) -> &str {
        self.counters.name
    }

    fn status(&self) -> WorkerStatus {
        self.counters.status()
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let l = zrelay_metrics::bind(&self.listen, self.freebind)
            .await
            .map_err(|e| DaemonError::Monitoring(format!("{}: {e}", self.listen)))?;
        info!(listen = %self.listen, "prometheus metrics at /metrics");
        self.counters.ran(None);
        zrelay_metrics::serve_on(self.metrics.clone(), l, cancel)
            .await
            .map_err(|e| DaemonError::Monitoring(format!("{}: {e}", self.listen)))
    }
}
