//! Turning configured jobs into running tasks: endpoints, transports,
//! snapshotter and pruner per job type, registered for the control socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use zrelay_config::{
    Job, JobKind, Limits, PullInterval, ReplicationConfig, Schedule, Snapshotting,
};
use zrelay_endpoint::{
    throttle_receiver, throttle_sender, Bucket, FsFilter, LocalReceiver, LocalSender, RateLimit,
    Receiver, SendOptions, Sender,
};
use zrelay_replication::{DriverConfig, SnapshotFilter};
use zrelay_rpc::{MemoryBudget, RemoteReceiver, RemoteSender, RpcConfig};
use zrelay_snapshot::CronSchedule;
use zrelay_transport::ServeOptions;
use zrelay_zfs::Zfs;

use super::active::{ActiveJob, Every};
use super::passive::{ConnLimits, PassiveJob, Serves};
use super::prune::Pruner;
use super::snap::{self, After};
use super::{status_cell, ActiveControl, Entry, Jobs};
use crate::error::DaemonError;

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

/// The protocol settings of a serving job: the daemon's, with the job's `limits`.
pub fn serving_rpc(base: &RpcConfig, l: &Limits) -> RpcConfig {
    RpcConfig {
        handshake_timeout: l.handshake_timeout,
        request_idle_timeout: l.idle_timeout,
        frame_timeout: l.frame_timeout,
        max_request: l.max_request_size,
        max_request_items: l.max_steps_per_request,
        max_estimate_concurrency: l.max_estimate_concurrency,
        request_memory: Some(MemoryBudget::new(l.max_request_memory)),
        ..base.clone()
    }
}

/// A job-wide token bucket for `bandwidth_limit` (shared by the job's
/// concurrent steps, as in zrepl), or `None` without a limit.
fn bucket(limit: &Option<zrelay_config::BandwidthLimit>) -> Option<Arc<Bucket>> {
    limit.map(|l| {
        Arc::new(Bucket::new(RateLimit {
            bytes_per_sec: l.max_bytes_per_sec,
            bucket_capacity: l.bucket_capacity,
        }))
    })
}

/// What every builder needs.
pub(crate) struct Ctx<'a> {
    pub zfs: Arc<dyn Zfs>,
    pub rpc: RpcConfig,
    pub sockdir: &'a std::path::Path,
    pub tasks: &'a mut JoinSet<()>,
    pub jobs: &'a mut Jobs,
    pub cancel: &'a CancellationToken,
    pub history: Option<zrelay_history::History>,
    pub metrics: Option<Arc<zrelay_metrics::Metrics>>,
}

impl Ctx<'_> {
    fn local_sender(&self, job: &Job, filter: &FsFilter, send: &SendOptions) -> Arc<dyn Sender> {
        Arc::new(LocalSender::new(
            self.zfs.clone(),
            job.name.clone(),
            filter.clone(),
            send.clone(),
        ))
    }

    fn snapshotter(
        &mut self,
        job: &Job,
        filter: &FsFilter,
        snapshotting: &Snapshotting,
        after: After,
    ) -> Result<snap::SnapControl, DaemonError> {
        snap::spawn(
            self.tasks,
            &job.name,
            filter.clone(),
            snapshotting.clone(),
            self.zfs.clone(),
            after,
            self.cancel.child_token(),
        )
    }

    /// A sink or source job: listen now, serve in a task.
    pub async fn passive(&mut self, job: &Job) -> Result<(), DaemonError> {
        let terr = |source| DaemonError::Transport {
            job: job.name.to_string(),
            source,
        };
        let (serve, serves, snapshotting, limits) = match &job.kind {
            JobKind::Sink(s) => (
                &s.serve,
                Serves::Sink {
                    zfs: self.zfs.clone(),
                    root_fs: s.root_fs.clone(),
                    recv: s.recv.options.clone(),
                    receivers: Mutex::new(Default::default()),
                    bandwidth: bucket(&s.recv.bandwidth_limit),
                },
                None,
                &s.limits,
            ),
            JobKind::Source(s) => (
                &s.serve,
                Serves::Source(throttle_sender(
                    self.local_sender(job, &s.filesystems, &s.send.options),
                    bucket(&s.send.bandwidth_limit),
                )),
                Some((&s.filesystems, &s.snapshotting)),
                &s.limits,
            ),
            _ => unreachable!("passive jobs only"),
        };
        let serve = match serve {
            ServeOptions::Stdinserver {
                client_identities, ..
            } => ServeOptions::Stdinserver {
                client_identities: client_identities.clone(),
                sockdir: self.sockdir.to_path_buf(),
            },
            other => other.clone(),
        };
        let listener = zrelay_transport::listen(&serve).await.map_err(terr)?;
        let kind = job.kind.type_name();
        let status = status_cell(job.name.as_str(), kind, listener.describe());
        let snap = match snapshotting {
            Some((f, s)) => Some(self.snapshotter(job, f, s, After::Nothing)?),
            None => None,
        };
        self.jobs.entries.push(Entry {
            name: job.name.to_string(),
            kind: kind.to_string(),
            status: status.clone(),
            control: None,
            pruner: None,
            snap,
        });
        let task = PassiveJob {
            name: job.name.clone(),
            listener,
            serves: Arc::new(serves),
            rpc: serving_rpc(&self.rpc, limits),
            limits: ConnLimits {
                max: limits.max_connections,
                per_client: limits.max_connections_per_client,
            },
            status,
        };
        self.tasks.spawn(task.run(self.cancel.child_token()));
        Ok(())
    }

    /// A push or pull job.
    pub fn active(&mut self, job: &Job) -> Result<(), DaemonError> {
        let terr = |source| DaemonError::Transport {
            job: job.name.to_string(),
            source,
        };
        let (connect, repl, pruning) = match &job.kind {
            JobKind::Push(p) => (&p.connect, &p.replication, &p.pruning),
            JobKind::Pull(p) => (&p.connect, &p.replication, &p.pruning),
            _ => unreachable!("active jobs only"),
        };
        let every = match (&job.kind, &repl.schedule) {
            (JobKind::Pull(p), _) => match p.interval {
                PullInterval::Manual => Every::Manual,
                PullInterval::Every(d) => Every::Interval(d),
            },
            (_, Some(Schedule::Interval(d))) => Every::Interval(*d),
            (_, Some(Schedule::Cron(c))) => {
                Every::Cron(Box::new(CronSchedule::parse(c).map_err(|e| {
                    DaemonError::Config(format!("job {}: replication.schedule: {e}", job.name))
                })?))
            }
            (_, None) => Every::Manual,
        };
        let connector = zrelay_transport::connector(connect).map_err(terr)?;
        let endpoint = connector.describe();
        let (sender, receiver): (Arc<dyn Sender>, Arc<dyn Receiver>) = match &job.kind {
            JobKind::Push(p) => (
                throttle_sender(
                    self.local_sender(job, &p.filesystems, &p.send.options),
                    bucket(&p.send.bandwidth_limit),
                ),
                Arc::new(RemoteReceiver::new(connector, self.rpc.clone())),
            ),
            JobKind::Pull(p) => (
                Arc::new(RemoteSender::new(connector, self.rpc.clone())),
                throttle_receiver(
                    Arc::new(LocalReceiver::new(
                        self.zfs.clone(),
                        job.name.clone(),
                        p.root_fs.clone(),
                        p.recv.options.clone(),
                    )),
                    bucket(&p.recv.bandwidth_limit),
                ),
            ),
            _ => unreachable!(),
        };
        let kind = job.kind.type_name();
        let status = status_cell(job.name.as_str(), kind, endpoint);
        let pruner = Arc::new(Pruner {
            sender: sender.clone(),
            receiver: Some(receiver.clone()),
            keep_sender: pruning.keep_sender.clone(),
            keep_receiver: pruning.keep_receiver.clone(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let snap = match &job.kind {
            // With `replication.schedule` (zrelay extension), replication
            // follows its own schedule, not the snapshotter.
            JobKind::Push(p) => Some(self.snapshotter(
                job,
                &p.filesystems,
                &p.snapshotting,
                match repl.schedule {
                    None => After::Replicate(tx.clone()),
                    Some(_) => After::Nothing,
                },
            )?),
            _ => None,
        };
        let running = Arc::new(Mutex::new(None));
        self.jobs.entries.push(Entry {
            name: job.name.to_string(),
            kind: kind.to_string(),
            status: status.clone(),
            control: Some(ActiveControl {
                triggers: tx,
                running: running.clone(),
            }),
            pruner: Some(pruner.clone()),
            snap,
        });
        let task = ActiveJob {
            name: job.name.clone(),
            sender,
            receiver,
            driver: driver_config(repl),
            every,
            status,
            triggers: rx,
            running,
            pruner,
            history: self.history.clone(),
            metrics: self.metrics.clone(),
        };
        self.tasks.spawn(task.run(self.cancel.child_token()));
        Ok(())
    }

    /// A snap job: snapshots, each round followed by pruning with `keep`.
    pub fn snap(&mut self, job: &Job) -> Result<(), DaemonError> {
        let JobKind::Snap(s) = &job.kind else {
            unreachable!("snap jobs only")
        };
        let status = status_cell(job.name.as_str(), "snap", "local".into());
        let pruner = Arc::new(Pruner {
            sender: self.local_sender(job, &s.filesystems, &SendOptions::default()),
            receiver: None,
            keep_sender: s.keep.clone(),
            keep_receiver: Vec::new(),
        });
        let snap = self.snapshotter(
            job,
            &s.filesystems,
            &s.snapshotting,
            After::Prune(pruner.clone(), status.clone()),
        )?;
        status.lock().unwrap().status.state = super::JobState::Idle;
        self.jobs.entries.push(Entry {
            name: job.name.to_string(),
            kind: "snap".into(),
            status,
            control: None,
            pruner: Some(pruner),
            snap: Some(snap),
        });
        Ok(())
    }
}

/// How long the daemon waits for its jobs to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_the_protocol_defaults() {
        let d = RpcConfig::default();
        let r = serving_rpc(&d, &Limits::default());
        assert_eq!(
            r.request_memory.as_ref().map(MemoryBudget::limit),
            Some(zrelay_rpc::DEFAULT_REQUEST_MEMORY)
        );
        assert_eq!(
            RpcConfig {
                request_memory: None,
                ..r
            },
            d
        );
        let l = Limits {
            idle_timeout: Duration::from_secs(3),
            max_request_size: 5000,
            ..Limits::default()
        };
        let r = serving_rpc(&d, &l);
        assert_eq!(r.request_idle_timeout, Duration::from_secs(3));
        assert_eq!(r.max_request, 5000);
    }
}
