//! Turning compiled job configurations into workers: endpoints, transports,
//! snapshotter and pruner per job type, and the channels the control socket
//! reaches them by. One function per job type; the only dispatch on the
//! type is [`Ctx::build`].

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use zrelay_config::{
    Job, JobKind, Limits, PullInterval, PullJob, PushJob, PushTargets, ReplicationConfig, Schedule,
    SinkJob, SnapJob, SourceJob,
};
use zrelay_endpoint::{
    throttle_receiver, throttle_sender, Bucket, FsFilter, JobId, LocalReceiver, LocalSender,
    RateLimit, Receiver, SendOptions, Sender,
};
use zrelay_pruning::JobPruner;
use zrelay_replication::DriverConfig;
use zrelay_rpc::{MemoryBudget, RemoteReceiver, RemoteSender, RpcConfig};
use zrelay_snapshot::{Clock, SnapshotPlan, Snapshotter};
use zrelay_transport::{ConnectOptions, ServeOptions};
use zrelay_zfs::Zfs;

use super::active::{ActiveParts, ActiveWorker, Every};
use super::caps::ConnLimits;
use super::passive::{PassiveWorker, Serves};
use super::snap::{After, SnapPart, SnapWorker};
use super::Control;
use crate::error::DaemonError;
use crate::status::{JobState, JobStatus};
use crate::worker::{Publisher, Worker, WorkerStatus};

/// The driver settings of a push or pull job.
pub fn driver_config(r: &ReplicationConfig) -> DriverConfig {
    DriverConfig {
        protection: r.protection,
        initial: r.initial,
        steps: r.steps,
        size_estimates: r.size_estimates.unwrap_or(0),
        snapshot_filter: r.snapshot_filter.clone(),
        max_attempts: r.max_attempts,
        ..DriverConfig::default()
    }
}

/// When a push job replicates on its own: on `replication.schedule`
/// (zrelay extension), else only when woken (by its snapshotter).
pub(crate) fn push_every(r: &ReplicationConfig) -> Every {
    match &r.schedule {
        Some(Schedule::Interval(d)) => Every::Interval(*d),
        Some(Schedule::Cron(c)) => Every::Cron(Box::new(c.clone())),
        None => Every::Manual,
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

/// The protocol settings of a push or pull job reaching `connect`: the
/// daemon's, with the job's `wire_compression` (`auto`: zstd over the
/// network, off for local jobs).
pub fn client_rpc(
    base: &RpcConfig,
    r: &zrelay_config::ReplicationConfig,
    connect: &ConnectOptions,
) -> RpcConfig {
    RpcConfig {
        compression: match r.wire_compression.level_for(connect) {
            Some(level) => zrelay_rpc::Compression::Zstd {
                level: level.into(),
            },
            None => zrelay_rpc::Compression::Off,
        },
        ..base.clone()
    }
}

/// A job-wide token bucket for `bandwidth_limit` (shared by the job's
/// concurrent steps, as in zrepl), or `None` without a limit.
pub(super) fn bucket(limit: &Option<zrelay_config::BandwidthLimit>) -> Option<Arc<Bucket>> {
    limit.map(|l| {
        Arc::new(Bucket::new(RateLimit {
            bytes_per_sec: l.max_bytes_per_sec,
            bucket_capacity: l.bucket_capacity,
        }))
    })
}

/// A job, ready to be started by the supervisor.
pub(crate) struct Built {
    pub worker: Arc<dyn Worker>,
    pub kind: &'static str,
    pub control: Control,
    /// Sink and source jobs start first: their listeners must exist
    /// before active jobs dial.
    pub passive: bool,
    /// The lanes the work queue's re-drive chore wakes (push and pull
    /// jobs: one, or one per target).
    pub lanes: Vec<super::redrive::LaneHandle>,
}

/// What every builder needs: the daemon's injected dependencies.
pub(crate) struct Ctx {
    pub zfs: Arc<dyn Zfs>,
    pub rpc: RpcConfig,
    pub sockdir: PathBuf,
    pub history: Option<zrelay_history::History>,
    pub metrics: Option<Arc<zrelay_metrics::Metrics>>,
    pub clock: Arc<dyn Clock>,
    /// The durable work queue (when it could be opened).
    pub queue: Option<zrelay_queue::Queue>,
    /// At most this many snapshots per destroy (0: one per filesystem).
    pub destroy_batch: usize,
    /// Bytes of hook output kept.
    pub hook_log_max: usize,
    /// `global.notify`.
    pub notifier: Option<Arc<super::notify::Notifier>>,
}

fn none() -> Control {
    Control {
        commands: None,
        pruners: Vec::new(),
        snapshots: None,
        replicas: Vec::new(),
    }
}

impl Ctx {
    /// The worker of `job`. A job that cannot be set up (unreadable TLS or
    /// key files, say) becomes a worker that reports why it failed to start,
    /// so that the other jobs run.
    pub fn build(&self, job: &Job) -> Built {
        let kind = job.kind.type_name();
        let built = match &job.kind {
            JobKind::Push(p) => self.push(&job.name, p),
            JobKind::Pull(p) => self.pull(&job.name, p),
            JobKind::Sink(s) => Ok(self.sink(&job.name, s)),
            JobKind::Source(s) => Ok(self.source(&job.name, s)),
            JobKind::Snap(s) => Ok(self.snap(&job.name, s)),
        };
        built.unwrap_or_else(|error| Built {
            worker: Arc::new(NotStarted::new(&job.name, kind, error)),
            kind,
            control: none(),
            passive: false,
            lanes: Vec::new(),
        })
    }

    pub(super) fn local_sender(
        &self,
        job: &JobId,
        filter: &FsFilter,
        send: &SendOptions,
    ) -> Arc<dyn Sender> {
        Arc::new(LocalSender::new(
            self.zfs.clone(),
            job.clone(),
            filter.clone(),
            send.clone(),
        ))
    }

    pub(super) fn snapshotter(
        &self,
        job: &JobId,
        filter: &FsFilter,
        plan: &SnapshotPlan,
    ) -> Snapshotter {
        Snapshotter::from_plan(job.as_str(), filter.clone(), plan.clone(), self.zfs.clone())
            .with_clock(self.clock.clone())
            .with_hook_log_max(self.hook_log_max)
    }

    pub(super) fn connector(
        &self,
        job: &JobId,
        connect: &ConnectOptions,
    ) -> Result<Arc<dyn zrelay_transport::Connector>, DaemonError> {
        zrelay_transport::connector(connect).map_err(|source| DaemonError::Transport {
            job: job.to_string(),
            source,
        })
    }

    fn serve_options(&self, serve: &ServeOptions) -> ServeOptions {
        match serve {
            ServeOptions::Stdinserver {
                client_identities, ..
            } => ServeOptions::Stdinserver {
                client_identities: client_identities.clone(),
                sockdir: self.sockdir.clone(),
            },
            other => other.clone(),
        }
    }

    fn push(&self, name: &JobId, p: &PushJob) -> Result<Built, DaemonError> {
        let connect = match &p.to {
            PushTargets::One(c) => c,
            PushTargets::Many { targets, fan_out } => {
                return self.push_fan_out(name, p, targets, fan_out)
            }
        };
        let connector = self.connector(name, connect)?;
        let endpoint = connector.describe();
        let sender = throttle_sender(
            self.local_sender(name, &p.filesystems, &p.send.options),
            bucket(&p.send.bandwidth_limit),
        );
        let receiver: Arc<dyn Receiver> = Arc::new(RemoteReceiver::new(
            connector,
            client_rpc(&self.rpc, &p.replication, connect),
        ));
        let every = push_every(&p.replication);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (snap, triggers) = self.push_snap(name, p, &tx);
        let replicas = self.replica_part(
            name,
            super::work::DEFAULT_TARGET,
            name.as_str(),
            &p.replicas,
            sender.clone(),
            receiver.clone(),
        );
        let parts = self.active_parts(
            name,
            "push",
            sender,
            receiver,
            &p.replication,
            every,
            &p.pruning,
        );
        let worker = ActiveWorker::with_channel(
            ActiveParts {
                snap: Some(snap),
                replicas,
                filter: Some(p.filesystems.clone()),
                hooks: self.job_hooks(name, &p.hooks),
                ..parts
            },
            endpoint,
            tx,
            rx,
        );
        Ok(self.active_built(worker, Some(triggers)))
    }

    fn pull(&self, name: &JobId, p: &PullJob) -> Result<Built, DaemonError> {
        let connector = self.connector(name, &p.connect)?;
        let endpoint = connector.describe();
        let sender: Arc<dyn Sender> = Arc::new(RemoteSender::new(
            connector,
            client_rpc(&self.rpc, &p.replication, &p.connect),
        ));
        let receiver = throttle_receiver(
            Arc::new(LocalReceiver::new(
                self.zfs.clone(),
                name.clone(),
                p.root_fs.clone(),
                p.recv.options.clone(),
            )),
            bucket(&p.recv.bandwidth_limit),
        );
        let every = match p.interval {
            PullInterval::Manual => Every::Manual,
            PullInterval::Every(d) => Every::Interval(d),
        };
        let parts = self.active_parts(
            name,
            "pull",
            sender,
            receiver,
            &p.replication,
            every,
            &p.pruning,
        );
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let parts = ActiveParts {
            hooks: self.job_hooks(name, &p.hooks),
            ..parts
        };
        let worker = ActiveWorker::with_channel(parts, endpoint, tx, rx);
        Ok(self.active_built(worker, None))
    }

    /// A push job's snapshotter, whose rounds wake the job through
    /// `commands`, unless `replication.schedule` (zrelay extension) gives
    /// replication its own schedule.
    pub(super) fn push_snap(
        &self,
        name: &JobId,
        p: &PushJob,
        commands: &tokio::sync::mpsc::UnboundedSender<super::Command>,
    ) -> (
        SnapPart,
        tokio::sync::mpsc::Sender<zrelay_snapshot::Trigger>,
    ) {
        let after = match p.replication.schedule {
            None => After::Replicate(commands.clone()),
            Some(_) => After::Nothing,
        };
        SnapPart::new(
            self.snapshotter(name, &p.filesystems, &p.snapshotting),
            after,
            self.history.clone(),
        )
    }

    /// The queue as the lane (`job`, `target`) sees it.
    pub(super) fn work_part(&self, job: &str, target: &str) -> Option<super::work::WorkPart> {
        let queue = self.queue.clone()?;
        Some(super::work::WorkPart {
            queue,
            job: zrelay_queue::JobId::new(job).ok()?,
            target: zrelay_queue::TargetName::new(target).ok()?,
            worker: super::work::worker_id(job, target)?,
            metrics: self.metrics.clone(),
            notifier: self.notifier.clone(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn active_parts(
        &self,
        name: &JobId,
        kind: &'static str,
        sender: Arc<dyn Sender>,
        receiver: Arc<dyn Receiver>,
        repl: &ReplicationConfig,
        every: Every,
        pruning: &zrelay_config::PruningConfig,
    ) -> ActiveParts {
        let pruner = Arc::new(JobPruner::pair(
            sender.clone(),
            receiver.clone(),
            pruning.keep_sender.clone(),
            pruning.keep_receiver.clone(),
            self.destroy_batch,
        ));
        ActiveParts {
            name: name.clone(),
            kind,
            sender,
            receiver,
            driver: driver_config(repl),
            every,
            pruner,
            history: self.history.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
            snap: None,
            target: None,
            work: self.work_part(name.as_str(), super::work::DEFAULT_TARGET),
            replicas: None,
            filter: None,
            hooks: None,
            notifier: self.notifier.clone(),
        }
    }

    /// A job's `hooks`, `None` when it has none.
    pub(super) fn job_hooks(
        &self,
        job: &JobId,
        hooks: &[zrelay_config::JobHook],
    ) -> Option<Arc<super::hooks::JobHooks>> {
        (!hooks.is_empty()).then(|| {
            Arc::new(super::hooks::JobHooks {
                job: job.to_string(),
                hooks: hooks.to_vec(),
                log_max: self.hook_log_max,
            })
        })
    }

    /// A lane's `replicas` handling, `None` when the rules are off.
    pub(super) fn replica_part(
        &self,
        job: &JobId,
        target: &str,
        lane: &str,
        rules: &zrelay_config::model::Replicas,
        sender: Arc<dyn Sender>,
        receiver: Arc<dyn Receiver>,
    ) -> Option<Arc<super::replicas::ReplicaPart>> {
        let rules = zrelay_planner::ReplicaRules {
            follow_renames: rules.follow_renames,
            delete_after: rules.delete_after,
        };
        if rules == zrelay_planner::ReplicaRules::default() {
            return None;
        }
        let store = self.queue.clone().and_then(|q| {
            Some((
                q,
                zrelay_queue::JobId::new(job.as_str()).ok()?,
                zrelay_queue::TargetName::new(target).ok()?,
            ))
        });
        Some(Arc::new(super::replicas::ReplicaPart {
            lane: lane.to_string(),
            rules,
            zfs: self.zfs.clone(),
            sender,
            receiver,
            clock: self.clock.clone(),
            store,
            memory: Default::default(),
            running: Default::default(),
        }))
    }

    fn active_built(
        &self,
        (worker, tx): (
            ActiveWorker,
            tokio::sync::mpsc::UnboundedSender<super::Command>,
        ),
        snapshots: Option<tokio::sync::mpsc::Sender<zrelay_snapshot::Trigger>>,
    ) -> Built {
        let pruner = worker.pruner();
        let replicas = worker.replicas().into_iter().collect();
        let lanes = vec![super::redrive::LaneHandle {
            job: worker.name().to_string(),
            target: super::work::DEFAULT_TARGET.to_string(),
            commands: tx.clone(),
            gate: None,
        }];
        Built {
            kind: worker.kind(),
            worker: Arc::new(worker),
            control: Control {
                commands: Some(tx),
                pruners: vec![pruner],
                snapshots,
                replicas,
            },
            passive: false,
            lanes,
        }
    }

    fn passive(
        &self,
        name: &JobId,
        kind: &'static str,
        serve: &ServeOptions,
        serves: Serves,
        limits: &Limits,
        snap: Option<(
            SnapPart,
            tokio::sync::mpsc::Sender<zrelay_snapshot::Trigger>,
        )>,
    ) -> Built {
        let serve = self.serve_options(serve);
        let (snap, snapshots) = match snap {
            Some((s, t)) => (Some(s), Some(t)),
            None => (None, None),
        };
        let status = Publisher::new(
            JobStatus::new(name.as_str(), kind, describe(&serve)),
            snap.as_ref().map(SnapPart::status),
        );
        let worker = PassiveWorker {
            name: name.clone(),
            serve,
            serves: Arc::new(serves),
            rpc: serving_rpc(&self.rpc, limits),
            limits: ConnLimits {
                max: limits.max_connections,
                per_client: limits.max_connections_per_client,
            },
            snap,
            status,
        };
        Built {
            worker: Arc::new(worker),
            kind,
            control: Control {
                commands: None,
                pruners: Vec::new(),
                snapshots,
                replicas: Vec::new(),
            },
            passive: true,
            lanes: Vec::new(),
        }
    }

    fn sink(&self, name: &JobId, s: &SinkJob) -> Built {
        let serves = Serves::Sink {
            zfs: self.zfs.clone(),
            root_fs: s.root_fs.clone(),
            recv: s.recv.options.clone(),
            bandwidth: bucket(&s.recv.bandwidth_limit),
        };
        self.passive(name, "sink", &s.serve, serves, &s.limits, None)
    }

    fn source(&self, name: &JobId, s: &SourceJob) -> Built {
        let serves = if s.per_client_cursors {
            Serves::SourcePerClient {
                zfs: self.zfs.clone(),
                filter: s.filesystems.clone(),
                send: s.send.options.clone(),
                bandwidth: bucket(&s.send.bandwidth_limit),
            }
        } else {
            Serves::Source(throttle_sender(
                self.local_sender(name, &s.filesystems, &s.send.options),
                bucket(&s.send.bandwidth_limit),
            ))
        };
        let snap = SnapPart::new(
            self.snapshotter(name, &s.filesystems, &s.snapshotting),
            After::Nothing,
            self.history.clone(),
        );
        self.passive(name, "source", &s.serve, serves, &s.limits, Some(snap))
    }

    fn snap(&self, name: &JobId, s: &SnapJob) -> Built {
        let pruner = Arc::new(JobPruner::local(
            self.local_sender(name, &s.filesystems, &SendOptions::default()),
            s.keep.clone(),
            self.destroy_batch,
        ));
        let snapshotter = self.snapshotter(name, &s.filesystems, &s.snapshotting);
        let (worker, commands, snapshots) = SnapWorker::new(
            name.clone(),
            snapshotter,
            pruner.clone(),
            self.history.clone(),
        );
        Built {
            worker: Arc::new(worker),
            kind: "snap",
            control: Control {
                commands: Some(commands),
                pruners: vec![pruner],
                snapshots: Some(snapshots),
                replicas: Vec::new(),
            },
            passive: false,
            lanes: Vec::new(),
        }
    }
}

/// Where a passive job will listen (until it does; then the listener's own
/// description).
fn describe(serve: &ServeOptions) -> String {
    match serve {
        ServeOptions::Tcp { listen, .. } => format!("tcp {listen}"),
        ServeOptions::Tls { listen, .. } => format!("tls {listen}"),
        ServeOptions::Stdinserver { sockdir, .. } => format!("stdinserver {}", sockdir.display()),
        ServeOptions::Local { listener_name } => format!("local {listener_name}"),
    }
}

/// A job that could not be set up: it reports why, and does nothing.
struct NotStarted {
    name: String,
    status: Publisher,
    error: String,
}

impl NotStarted {
    fn new(name: &JobId, kind: &str, error: DaemonError) -> NotStarted {
        let status = Publisher::new(JobStatus::new(name.as_str(), kind, String::new()), None);
        status.failed(&error);
        NotStarted {
            name: name.to_string(),
            status,
            error: error.to_string(),
        }
    }
}

#[async_trait]
impl Worker for NotStarted {
    fn name(&self) -> &str {
        &self.name
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus::Job(Box::new(self.status.read()))
    }

    async fn run(&self, _cancel: CancellationToken) -> Result<(), DaemonError> {
        debug_assert_eq!(self.status.read().state, JobState::Failed);
        Err(DaemonError::NotStarted {
            job: self.name.clone(),
            error: self.error.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[test]
    fn clients_compress_over_the_network_unless_told_otherwise() {
        use zrelay_config::{ReplicationConfig, WireCompression};
        use zrelay_rpc::Compression;
        let d = RpcConfig::default();
        let tcp = ConnectOptions::Tcp {
            address: "h:1".into(),
            dial_timeout: Duration::from_secs(1),
        };
        let local = ConnectOptions::Local {
            listener_name: "l".into(),
            client_identity: "c".into(),
            dial_timeout: Duration::from_secs(1),
        };
        let with = |w| ReplicationConfig {
            wire_compression: w,
            ..ReplicationConfig::default()
        };
        let c = |w, to: &ConnectOptions| client_rpc(&d, &with(w), to).compression;
        assert_eq!(
            c(WireCompression::Auto, &tcp),
            Compression::Zstd { level: 1 }
        );
        assert_eq!(c(WireCompression::Auto, &local), Compression::Off);
        assert_eq!(c(WireCompression::Off, &tcp), Compression::Off);
        // The config accepts no level the peer would clamp.
        assert_eq!(
            i32::from(WireCompression::MAX_LEVEL),
            zrelay_rpc::MAX_COMPRESSION_LEVEL
        );
        let z5 = WireCompression::Zstd { level: 5 };
        assert_eq!(c(z5, &local), Compression::Zstd { level: 5 });
        let r = client_rpc(&d, &with(z5), &tcp);
        assert_eq!(
            RpcConfig {
                compression: Compression::Off,
                ..r
            },
            d
        );
    }
}
