//! `zrelay-daemon`: runs the jobs of a configuration and serves the control
//! socket.
//!
//! Invariants:
//! - Every job runs as its own task under a child of the daemon's
//!   cancellation token; cancelling it (SIGINT/SIGTERM in the binary) stops
//!   every job: a running step stops its stream so that `zfs recv -s` keeps a
//!   resumable state, and passive jobs abort their receives the same way.
//! - Passive jobs start listening before active jobs dial, so a `local`
//!   connect finds its listener in the same daemon.
//! - Startup fails, naming the job, if any job cannot be set up (listen
//!   address in use, unreadable TLS files, invalid identities); nothing runs
//!   half-configured.
//! - One job's failure never stops another job.

pub mod control;
pub mod error;
pub mod jobs;

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zrelay_config::{Config, JobKind};
use zrelay_history::History;
use zrelay_rpc::RpcConfig;
use zrelay_zfs::Zfs;

pub use error::DaemonError;
pub use jobs::build::driver_config;
use jobs::build::{Ctx, STOP_TIMEOUT};
use jobs::Jobs;

/// A daemon for one configuration.
pub struct Daemon {
    config: Config,
    zfs: Arc<dyn Zfs>,
    rpc: RpcConfig,
    zfs_log: Option<zrelay_zfs::cmd::InvocationLog>,
    metrics: Option<Arc<zrelay_metrics::Metrics>>,
}

impl Daemon {
    /// A daemon running `config`'s jobs against `zfs`.
    pub fn new(config: Config, zfs: Arc<dyn Zfs>) -> Self {
        Daemon {
            config,
            zfs,
            rpc: RpcConfig::default(),
            zfs_log: None,
            metrics: None,
        }
    }

    /// Record metrics into `metrics` (the binary shares it with its log
    /// outlets, which count log entries).
    pub fn with_metrics(mut self, metrics: Arc<zrelay_metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Show the commands of this record as running in `zrelay status`.
    pub fn with_invocation_log(mut self, log: zrelay_zfs::cmd::InvocationLog) -> Self {
        self.zfs_log = Some(log);
        self
    }

    /// Open the durable history, mark what was in flight when the daemon
    /// last stopped as stale (it is taken up again by resumption), and trim
    /// old records.
    async fn open_history(&self) -> Result<History, DaemonError> {
        let path = &self.config.global.history_path;
        let history = History::open(path)
            .await
            .map_err(|e| DaemonError::Config(format!("history {}: {e}", path.display())))?;
        match history.mark_stale_on_start().await {
            Ok(stale) => {
                for s in stale {
                    warn!(
                        job = %s.job,
                        fs = %s.step.filesystem,
                        to = %s.step.to_snapshot,
                        bytes = s.step.bytes,
                        "a step was in flight when the daemon stopped: marked stale; the next replication resumes it"
                    );
                }
            }
            Err(e) => warn!(error = %e, "history: cannot mark stale steps"),
        }
        match history.trim(self.config.global.history_max_age).await {
            Ok(n) if n > 0 => info!(invocations = n, "history: trimmed old records"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "history: cannot trim"),
        }
        Ok(history)
    }

    /// After a restart, last-successful and lag metrics come from the history.
    async fn restore_metrics(&self, history: &History, metrics: &zrelay_metrics::Metrics) {
        for job in &self.config.jobs {
            if !matches!(job.kind, JobKind::Push(_) | JobKind::Pull(_)) {
                continue;
            }
            if let Ok(Some(t)) = history.last_successful(job.name.as_str()).await {
                metrics.last_successful(job.name.as_str(), zrelay_replication::report::unix(t));
            }
            let rows = history
                .query(zrelay_history::Filter {
                    job: Some(job.name.to_string()),
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap_or_default();
            let mut seen = std::collections::BTreeSet::new();
            for r in rows {
                let Some(step) = &r.step else { continue };
                if !seen.insert(step.filesystem.clone()) {
                    continue;
                }
                if let Ok(Some((_, t))) = history
                    .last_replicated(job.name.as_str(), &step.filesystem)
                    .await
                {
                    let ts = zrelay_replication::report::unix(t);
                    for side in [zrelay_metrics::Side::Sender, zrelay_metrics::Side::Receiver] {
                        metrics.fs_lag(job.name.as_str(), &step.filesystem, side, ts);
                    }
                }
            }
        }
    }

    /// The Prometheus endpoint (`global.monitoring`), the zfs command
    /// durations, and the daily history trim.
    async fn spawn_monitoring(
        &self,
        tasks: &mut JoinSet<()>,
        metrics: &Arc<zrelay_metrics::Metrics>,
        history: &History,
        cancel: &CancellationToken,
    ) -> Result<(), DaemonError> {
        for m in &self.config.global.monitoring {
            let zrelay_config::Monitoring::Prometheus {
                listen,
                listen_freebind,
            } = m;
            let l = zrelay_metrics::bind(listen, *listen_freebind)
                .await
                .map_err(|e| DaemonError::Config(format!("monitoring: {e}")))?;
            info!(%listen, "prometheus metrics at /metrics");
            let (m, c) = (metrics.clone(), cancel.clone());
            tasks.spawn(async move {
                if let Err(e) = zrelay_metrics::serve_on(m, l, c).await {
                    warn!(error = %e, "metrics endpoint stopped");
                }
            });
        }
        let (m, c, log) = (metrics.clone(), cancel.clone(), self.zfs_log.clone());
        let (h, max_age) = (history.clone(), self.config.global.history_max_age);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Some(log) = &log {
                    m.observe_zfs_log(log);
                }
                n += 1;
                if n.is_multiple_of(86_400) {
                    if let Err(e) = h.trim(max_age).await {
                        warn!(error = %e, "history: cannot trim");
                    }
                }
            }
        });
        Ok(())
    }

    /// Run until `cancel` fires, then stop every job and wait for them
    /// (at most [`STOP_TIMEOUT`]).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let mut tasks = JoinSet::new();
        let mut jobs = Jobs {
            zfs_log: self.zfs_log.clone(),
            started_at: zrelay_replication::report::unix(std::time::SystemTime::now()),
            ..Jobs::default()
        };
        let jobs_cancel = cancel.child_token();
        let history = self.open_history().await?;
        let metrics = self.metrics.clone().unwrap_or_else(|| {
            Arc::new(zrelay_metrics::Metrics::new(
                env!("CARGO_PKG_VERSION"),
                concat!("zrelay ", env!("CARGO_PKG_VERSION")),
            ))
        });
        self.restore_metrics(&history, &metrics).await;
        self.spawn_monitoring(&mut tasks, &metrics, &history, &jobs_cancel)
            .await?;
        {
            let mut cx = Ctx {
                zfs: self.zfs.clone(),
                rpc: self.rpc.clone(),
                sockdir: &self.config.global.stdinserver_sockdir,
                tasks: &mut tasks,
                jobs: &mut jobs,
                cancel: &jobs_cancel,
                history: Some(history.clone()),
                metrics: Some(metrics.clone()),
            };
            // Passive jobs first: their listeners must exist before active jobs dial.
            let mut order: Vec<_> = self.config.jobs.iter().collect();
            order.sort_by_key(|j| !matches!(j.kind, JobKind::Sink(_) | JobKind::Source(_)));
            for job in order {
                match &job.kind {
                    JobKind::Sink(_) | JobKind::Source(_) => cx.passive(job).await?,
                    JobKind::Push(_) | JobKind::Pull(_) => cx.active(job)?,
                    JobKind::Snap(_) => cx.snap(job)?,
                }
            }
        }
        let sockpath = self.config.global.control_sockpath.clone();
        let control = control::bind(&sockpath)?;
        let jobs = Arc::new(jobs);
        let control_cancel = CancellationToken::new();
        let control_task = tokio::spawn(control::serve(
            control,
            sockpath,
            jobs.clone(),
            control_cancel.clone(),
        ));
        info!(jobs = jobs.entries.len(), "daemon running");
        cancel.cancelled().await;
        info!("shutting down: stopping jobs");
        jobs_cancel.cancel();
        let stopped = tokio::time::timeout(STOP_TIMEOUT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            warn!("jobs did not stop within {STOP_TIMEOUT:?}; exiting anyway");
        }
        control_cancel.cancel();
        let _ = control_task.await;
        info!("daemon stopped");
        Ok(())
    }
}
