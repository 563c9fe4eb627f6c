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
}

impl Daemon {
    /// A daemon running `config`'s jobs against `zfs`.
    pub fn new(config: Config, zfs: Arc<dyn Zfs>) -> Self {
        Daemon {
            config,
            zfs,
            rpc: RpcConfig::default(),
            zfs_log: None,
        }
    }

    /// Show the commands of this record as running in `zrelay status`.
    pub fn with_invocation_log(mut self, log: zrelay_zfs::cmd::InvocationLog) -> Self {
        self.zfs_log = Some(log);
        self
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
        {
            let mut cx = Ctx {
                zfs: self.zfs.clone(),
                rpc: self.rpc.clone(),
                sockdir: &self.config.global.stdinserver_sockdir,
                tasks: &mut tasks,
                jobs: &mut jobs,
                cancel: &jobs_cancel,
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
