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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zrelay_config::{Config, JobKind, PullInterval, ReplicationConfig, Snapshotting};
use zrelay_endpoint::{LocalReceiver, LocalSender, Receiver, Sender};
use zrelay_replication::{DriverConfig, SnapshotFilter};
use zrelay_rpc::{RemoteReceiver, RemoteSender, RpcConfig};
use zrelay_transport::ServeOptions;
use zrelay_zfs::Zfs;

pub use error::DaemonError;
use jobs::active::{ActiveJob, Every};
use jobs::passive::{PassiveJob, Serves};
use jobs::{status_cell, ActiveControl, Entry, Jobs};

/// The driver settings of a push or pull job.
pub fn driver_config(r: &ReplicationConfig) -> DriverConfig {
    DriverConfig {
        protection: r.protection,
        initial: r.initial,
        steps: r.steps,
        size_estimates: r.size_estimates,
        snapshot_filter: r.snapshot_filter.as_ref().map(|f| match f {
            zrelay_config::SnapshotFilter::Prefix(p) => SnapshotFilter::Prefix(p.clone()),
            zrelay_config::SnapshotFilter::Regex(r) => SnapshotFilter::Regex(r.clone()),
        }),
        ..DriverConfig::default()
    }
}

/// A daemon for one configuration.
pub struct Daemon {
    config: Config,
    zfs: Arc<dyn Zfs>,
    rpc: RpcConfig,
}

impl Daemon {
    /// A daemon running `config`'s jobs against `zfs`.
    pub fn new(config: Config, zfs: Arc<dyn Zfs>) -> Self {
        Daemon {
            config,
            zfs,
            rpc: RpcConfig::default(),
        }
    }

    /// Run until `cancel` fires, then stop every job and wait for them
    /// (at most 60 s).
    pub async fn run(self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let mut tasks = JoinSet::new();
        let mut jobs = Jobs::default();
        let jobs_cancel = cancel.child_token();
        // Passive jobs first: their listeners must exist before active jobs dial.
        let mut order: Vec<_> = self.config.jobs.iter().collect();
        order.sort_by_key(|j| !matches!(j.kind, JobKind::Sink(_) | JobKind::Source(_)));
        for job in order {
            let name = job.name.clone();
            let kind = job.kind.type_name();
            let terr = |source| DaemonError::Transport {
                job: name.to_string(),
                source,
            };
            match &job.kind {
                JobKind::Sink(_) | JobKind::Source(_) => {
                    let (serve, serves) = match &job.kind {
                        JobKind::Sink(s) => (
                            &s.serve,
                            Serves::Sink {
                                zfs: self.zfs.clone(),
                                root_fs: s.root_fs.clone(),
                                recv: s.recv.options.clone(),
                                receivers: Mutex::new(Default::default()),
                            },
                        ),
                        JobKind::Source(s) => {
                            let sender: Arc<dyn Sender> = Arc::new(LocalSender::new(
                                self.zfs.clone(),
                                name.clone(),
                                s.filesystems.clone(),
                                s.send.options.clone(),
                            ));
                            if !matches!(s.snapshotting, Snapshotting::Manual) {
                                warn!(job = %name, "snapshotting of source jobs is not implemented yet; take snapshots yourself");
                            }
                            (&s.serve, Serves::Source(sender))
                        }
                        _ => unreachable!(),
                    };
                    let serve = match serve {
                        ServeOptions::Stdinserver {
                            client_identities, ..
                        } => ServeOptions::Stdinserver {
                            client_identities: client_identities.clone(),
                            sockdir: self.config.global.stdinserver_sockdir.clone(),
                        },
                        other => other.clone(),
                    };
                    let listener = zrelay_transport::listen(&serve).await.map_err(terr)?;
                    let status = status_cell(name.as_str(), kind, listener.describe());
                    jobs.entries.push(Entry {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        status: status.clone(),
                        control: None,
                    });
                    let job = PassiveJob {
                        name,
                        listener,
                        serves: Arc::new(serves),
                        rpc: self.rpc.clone(),
                        status,
                    };
                    tasks.spawn(job.run(jobs_cancel.child_token()));
                }
                JobKind::Push(_) | JobKind::Pull(_) => {
                    let (connect, repl, every) = match &job.kind {
                        JobKind::Push(p) => (&p.connect, &p.replication, Every::Manual),
                        JobKind::Pull(p) => (
                            &p.connect,
                            &p.replication,
                            match p.interval {
                                PullInterval::Manual => Every::Manual,
                                PullInterval::Every(d) => Every::Interval(d),
                            },
                        ),
                        _ => unreachable!(),
                    };
                    let connector = zrelay_transport::connector(connect).map_err(terr)?;
                    let endpoint = connector.describe();
                    let (sender, receiver): (Arc<dyn Sender>, Arc<dyn Receiver>) = match &job.kind {
                        JobKind::Push(p) => {
                            if !matches!(p.snapshotting, Snapshotting::Manual) {
                                warn!(job = %name, "snapshotting is not implemented yet; replication runs on `zrelay signal wakeup`");
                            }
                            (
                                Arc::new(LocalSender::new(
                                    self.zfs.clone(),
                                    name.clone(),
                                    p.filesystems.clone(),
                                    p.send.options.clone(),
                                )),
                                Arc::new(RemoteReceiver::new(connector, self.rpc.clone())),
                            )
                        }
                        JobKind::Pull(p) => (
                            Arc::new(RemoteSender::new(connector, self.rpc.clone())),
                            Arc::new(LocalReceiver::new(
                                self.zfs.clone(),
                                name.clone(),
                                p.root_fs.clone(),
                                p.recv.options.clone(),
                            )),
                        ),
                        _ => unreachable!(),
                    };
                    let status = status_cell(name.as_str(), kind, endpoint);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let running = Arc::new(Mutex::new(None));
                    jobs.entries.push(Entry {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        status: status.clone(),
                        control: Some(ActiveControl {
                            triggers: tx,
                            running: running.clone(),
                        }),
                    });
                    let job = ActiveJob {
                        name,
                        sender,
                        receiver,
                        driver: driver_config(repl),
                        every,
                        status,
                        triggers: rx,
                        running,
                    };
                    tasks.spawn(job.run(jobs_cancel.child_token()));
                }
                JobKind::Snap(_) => {
                    warn!(job = %name, "snap jobs are not implemented yet; this job does nothing");
                    jobs.entries.push(Entry {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        status: status_cell(name.as_str(), kind, "local".into()),
                        control: None,
                    });
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
        let stopped = tokio::time::timeout(Duration::from_secs(60), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            warn!("jobs did not stop within 60s; exiting anyway");
        }
        control_cancel.cancel();
        let _ = control_task.await;
        info!("daemon stopped");
        Ok(())
    }
}
