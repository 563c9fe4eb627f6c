//! `zrelay-daemon`: runs the jobs of a configuration as workers under a
//! supervisor, and serves the control socket.
//!
//! Invariants:
//! - Every job and every chore (zfs command observation, history trim, the
//!   metrics endpoint) is a [`worker::Worker`] run by one
//!   [`supervisor::Supervisor`] under a child of the daemon's cancellation
//!   token; cancelling it (SIGINT/SIGTERM in the binary) stops them all: a
//!   running step stops its stream so that `zfs recv -s` keeps a resumable
//!   state, and passive jobs abort their receives the same way.
//! - Passive jobs start (listen, or fail) before active jobs dial, so a
//!   `local` connect finds its listener in the same daemon.
//! - A job that cannot be set up, or whose listener cannot bind, is
//!   reported as failed in `zrelay status` while the other jobs run; the
//!   supervisor restarts it when retrying can help.
//! - One job's failure never stops another job.
//! - Everything the daemon depends on is injected ([`Daemon`]'s builder):
//!   the ZFS, the clock, the metrics, the zfs command log; limits come from
//!   the validated configuration. The daemon reads no environment variable.

pub mod chores;
pub mod control;
pub mod error;
pub mod jobs;
pub mod status;
pub mod supervisor;
pub mod worker;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zrelay_config::{Config, JobKind};
use zrelay_history::History;
use zrelay_rpc::RpcConfig;
use zrelay_snapshot::{Clock, SystemClock};
use zrelay_zfs::Zfs;

pub use error::DaemonError;
pub use jobs::build::driver_config;
pub use jobs::Jobs;
pub use supervisor::Policy;

/// A daemon for one configuration.
pub struct Daemon {
    config: Config,
    zfs: Arc<dyn Zfs>,
    rpc: RpcConfig,
    zfs_log: Option<zrelay_zfs::cmd::InvocationLog>,
    metrics: Option<Arc<zrelay_metrics::Metrics>>,
    clock: Arc<dyn Clock>,
    policy: Policy,
    control_socket: bool,
}

/// A started daemon: its jobs for in-process control, and its end.
pub struct Running {
    /// The jobs, as the control socket reaches them.
    pub jobs: Arc<Jobs>,
    /// Resolves when the daemon has stopped.
    pub done: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// A daemon running `config`'s jobs against `zfs`, on the system clock.
    pub fn new(config: Config, zfs: Arc<dyn Zfs>) -> Self {
        Daemon {
            config,
            zfs,
            rpc: RpcConfig::default(),
            zfs_log: None,
            metrics: None,
            clock: Arc::new(SystemClock),
            policy: Policy::default(),
            control_socket: true,
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

    /// Snapshot and schedule replication by `clock` instead of the system
    /// clock (tests: a paused tokio clock; the platform suite: a file).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Restart and stop workers by `policy`.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The protocol settings of active jobs (and the base of passive ones').
    pub fn with_rpc(mut self, rpc: RpcConfig) -> Self {
        self.rpc = rpc;
        self
    }

    /// Do not serve the control socket (in-process use through
    /// [`Running::jobs`]).
    pub fn without_control_socket(mut self) -> Self {
        self.control_socket = false;
        self
    }

    /// Open the durable history and mark what was in flight when the daemon
    /// last stopped as stale (it is taken up again by resumption).
    async fn open_history(&self) -> Result<History, DaemonError> {
        let path = &self.config.global.history_path;
        let clock = self.clock.clone();
        let history = History::open(path)
            .await
            .map_err(|e| DaemonError::Config(format!("history {}: {e}", path.display())))?
            .with_clock(Arc::new(move || clock.now()));
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
        Ok(history)
    }

    /// Open the durable work queue (`global.queue`). Without it the jobs
    /// still replicate, but nothing re-drives a killed daemon's steps: the
    /// failure is logged, not fatal.
    async fn open_queue(&self) -> Option<zrelay_queue::Queue> {
        let q = &self.config.global.queue;
        let policy = match zrelay_queue::Policy::new(
            q.lease,
            q.backoff_start,
            q.backoff_max,
            q.max_attempts,
        ) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "queue: invalid policy; running without the work queue");
                return None;
            }
        };
        let clock: Arc<dyn zrelay_queue::Clock> = Arc::new(zrelay_queue::SystemClock);
        match zrelay_queue::Queue::open(&q.path, policy, clock).await {
            Ok(queue) => Some(queue),
            Err(e) => {
                warn!(error = %e, "queue: cannot open; running without the work queue");
                None
            }
        }
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

    /// Start every job and chore; stop them when `cancel` fires.
    ///
    /// # Errors
    /// The history cannot be opened, or the control socket cannot be bound.
    pub async fn start(self, cancel: CancellationToken) -> Result<Running, DaemonError> {
        let history = self.open_history().await?;
        let metrics = self.metrics.clone().unwrap_or_else(|| {
            Arc::new(zrelay_metrics::Metrics::new(
                env!("CARGO_PKG_VERSION"),
                concat!("zrelay ", env!("CARGO_PKG_VERSION")),
            ))
        });
        self.restore_metrics(&history, &metrics).await;
        let mut sup = supervisor::Supervisor::new(cancel.child_token(), self.policy);
        let mut jobs = Jobs {
            zfs_log: self.zfs_log.clone(),
            started_at: zrelay_replication::report::unix(std::time::SystemTime::now()),
            ..Jobs::default()
        };
        let g = &self.config.global;
        for m in &g.monitoring {
            let zrelay_config::Monitoring::Prometheus {
                listen,
                listen_freebind,
                zrepl_names,
            } = m;
            metrics.set_zrepl_names(*zrepl_names);
            let w = chores::MetricsEndpoint::new(metrics.clone(), listen.clone(), *listen_freebind);
            jobs.chores.push(sup.start(Arc::new(w)));
        }
        if let Some(log) = &self.zfs_log {
            let w = chores::ZfsObserver::new(metrics.clone(), log.clone());
            jobs.chores.push(sup.start(Arc::new(w)));
        }
        let trim = chores::HistoryTrim::new(history.clone(), g.history_max_age);
        jobs.chores.push(sup.start(Arc::new(trim)));
        // Only push and pull jobs have work records.
        let active = self.config.jobs.iter().any(|j| {
            matches!(
                j.kind,
                zrelay_config::JobKind::Push(_) | zrelay_config::JobKind::Pull(_)
            )
        });
        let queue = if active {
            self.open_queue().await
        } else {
            None
        };

        let ctx = jobs::build::Ctx {
            zfs: self.zfs.clone(),
            rpc: self.rpc.clone(),
            sockdir: g.stdinserver_sockdir.clone(),
            history: Some(history),
            metrics: Some(metrics.clone()),
            clock: self.clock.clone(),
            queue: queue.clone(),
            destroy_batch: g.knobs.destroy_max_batch,
            hook_log_max: g.knobs.max_hook_log_size,
            notifier: g.notify.clone().map(|cfg| {
                Arc::new(jobs::notify::Notifier {
                    cfg,
                    clock: self.clock.clone(),
                    log_max: g.knobs.max_hook_log_size,
                    limiter: Default::default(),
                })
            }),
        };
        let mut built: Vec<_> = self.config.jobs.iter().map(|j| (j, ctx.build(j))).collect();
        let lanes: Vec<_> = built
            .iter_mut()
            .flat_map(|(_, b)| std::mem::take(&mut b.lanes))
            .collect();
        if let Some(q) = queue {
            let w = jobs::redrive::Redrive::new(q, lanes, self.clock.clone(), Some(metrics));
            jobs.chores.push(sup.start(Arc::new(w)));
        }
        // Passive jobs first: their listeners must exist before active jobs
        // dial. Entries stay in configuration order.
        let mut entries: Vec<Option<jobs::Entry>> = Vec::new();
        let mut later = Vec::new();
        for (i, (job, b)) in built.into_iter().enumerate() {
            entries.push(None);
            if b.passive {
                let worker = sup.start(b.worker.clone());
                wait_started(&worker).await;
                entries[i] = Some(jobs::Entry {
                    name: job.name.to_string(),
                    kind: b.kind,
                    worker,
                    control: b.control,
                });
            } else {
                later.push((i, job, b));
            }
        }
        for (i, job, b) in later {
            entries[i] = Some(jobs::Entry {
                name: job.name.to_string(),
                kind: b.kind,
                worker: sup.start(b.worker),
                control: b.control,
            });
        }
        jobs.entries = entries.into_iter().flatten().collect();
        let jobs = Arc::new(jobs);
        let control = if self.control_socket {
            let sockpath = self.config.global.control_sockpath.clone();
            Some((control::bind(&sockpath)?, sockpath))
        } else {
            None
        };
        info!(jobs = jobs.entries.len(), "daemon running");
        let served = jobs.clone();
        let done = tokio::spawn(async move {
            let control_cancel = CancellationToken::new();
            let control_task = control.map(|(l, path)| {
                tokio::spawn(control::serve(l, path, served, control_cancel.clone()))
            });
            sup.run().await;
            info!("jobs stopped");
            control_cancel.cancel();
            if let Some(t) = control_task {
                let _ = t.await;
            }
            info!("daemon stopped");
        });
        Ok(Running { jobs, done })
    }

    /// Run until `cancel` fires, then stop every job and wait for them
    /// (at most [`Policy::stop_timeout`]).
    ///
    /// # Errors
    /// See [`Daemon::start`].
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let running = self.start(cancel).await?;
        let _ = running.done.await;
        Ok(())
    }
}

/// Wait (at most 10 s) until a just-started passive job listens or failed.
async fn wait_started(w: &supervisor::Supervised) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let started = match w.status() {
            worker::WorkerStatus::Job(s) => s.state != status::JobState::Idle,
            worker::WorkerStatus::Chore(_) => true,
        };
        if started || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
