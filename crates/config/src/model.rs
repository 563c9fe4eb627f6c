//! The validated configuration: what the daemon acts on. Every value here has
//! passed validation; defaults are filled in exactly as zrepl fills them.
//! Keys marked *zrelay extension* are not zrepl's; a plain zrepl config never
//! needs them.

use std::path::PathBuf;
use std::time::Duration;

use zrelay_endpoint::{FsFilter, JobId, Protection, RecvOptions, SendOptions};
use zrelay_planner::InitialPolicy;
use zrelay_transport::{ConnectOptions, ServeOptions};
use zrelay_zfs::DatasetPath;

/// A whole configuration (the main file plus its includes).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from (the main file).
    pub origin: PathBuf,
    /// `global`.
    pub global: Global,
    /// `jobs`, in file order (includes after the main file's jobs).
    pub jobs: Vec<Job>,
    /// Hazards zrepl accepts, found while validating (main file first,
    /// then the included files). Diagnostics about the text, not part of
    /// the configuration: equality ignores them.
    pub warnings: Vec<crate::ConfigWarning>,
}

impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        self.origin == other.origin && self.global == other.global && self.jobs == other.jobs
    }
}

impl Eq for Config {}

impl Config {
    /// The job named `name`.
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name.as_str() == name)
    }

    /// Install the environment knobs read at startup: kept in
    /// `global.knobs`, and copied to where each job reads them (every push
    /// and pull job's [`ReplicationConfig::max_attempts`]).
    pub fn set_knobs(&mut self, knobs: crate::Knobs) {
        self.global.knobs = knobs;
        for job in &mut self.jobs {
            match &mut job.kind {
                JobKind::Push(p) => p.replication.max_attempts = knobs.replication_max_attempts,
                JobKind::Pull(p) => p.replication.max_attempts = knobs.replication_max_attempts,
                JobKind::Sink(_) | JobKind::Source(_) | JobKind::Snap(_) => {}
            }
        }
    }
}

/// `global`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// `logging`: outlets (default: one stdout outlet, level warn, human).
    pub logging: Vec<LogOutlet>,
    /// `monitoring`: at most one prometheus listener.
    pub monitoring: Vec<Monitoring>,
    /// `control.sockpath` (default `/var/run/zrelay/control`).
    pub control_sockpath: PathBuf,
    /// `serve.stdinserver.sockdir` (default `/var/run/zrelay/stdinserver`).
    pub stdinserver_sockdir: PathBuf,
    /// *zrelay extension* `history.path`: the durable record of replication
    /// attempts (default `/var/lib/zrelay/history.sqlite`).
    pub history_path: PathBuf,
    /// *zrelay extension* `history.max_age`: older records are trimmed
    /// (default 30d).
    pub history_max_age: std::time::Duration,
    /// *zrelay extension* `queue`: the durable work queue.
    pub queue: QueueConfig,
    /// *zrelay extension* `notify`: told about failed invocations and dead
    /// work records.
    pub notify: Option<crate::Notify>,
    /// zrepl's environment knobs, read once at startup
    /// ([`crate::Knobs::from_env`]; not YAML keys).
    pub knobs: crate::Knobs,
}

/// *zrelay extension* `global.queue`: the durable work queue of
/// replication (one record per job, target and filesystem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// `path` (default: `queue.sqlite` beside the history).
    pub path: PathBuf,
    /// `lease` (default 60s): a step's record is re-driven when its worker
    /// has not renewed the lease for this long (a killed daemon).
    pub lease: Duration,
    /// `backoff_start` (default 10s): the wait after a record's first
    /// failure; doubles per consecutive failure.
    pub backoff_start: Duration,
    /// `backoff_max` (default 10m).
    pub backoff_max: Duration,
    /// `max_attempts` (default 8): consecutive failures after which a
    /// record is dead (waits for `zrelay queue retry`).
    pub max_attempts: u32,
}

impl QueueConfig {
    /// The defaults, the database beside `history_path`.
    pub fn beside(history_path: &std::path::Path) -> QueueConfig {
        QueueConfig {
            path: history_path.with_file_name("queue.sqlite"),
            lease: Duration::from_secs(60),
            backoff_start: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            max_attempts: 8,
        }
    }
}

/// Default of `global.history.path` (zrelay extension).
pub const DEFAULT_HISTORY_PATH: &str = "/var/lib/zrelay/history.sqlite";
/// Default of `global.history.max_age` (zrelay extension): 30 days.
pub const DEFAULT_HISTORY_MAX_AGE: std::time::Duration =
    std::time::Duration::from_secs(30 * 86_400);

/// Log levels of an outlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `error`.
    Error,
    /// `warn`.
    Warn,
    /// `info`.
    Info,
    /// `debug`.
    Debug,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `human`.
    Human,
    /// `logfmt`.
    Logfmt,
    /// `json`.
    Json,
}

/// One `logging` outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOutlet {
    /// `level`.
    pub level: LogLevel,
    /// `format`.
    pub format: LogFormat,
    /// The outlet kind and its keys.
    pub kind: OutletKind,
}

/// TLS files of a tcp log outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `ca`.
    pub ca: PathBuf,
    /// `cert`.
    pub cert: PathBuf,
    /// `key`.
    pub key: PathBuf,
}

/// The kinds of log outlets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutletKind {
    /// `type: stdout`.
    Stdout {
        /// `time` (default true).
        time: bool,
        /// `color` (default true).
        color: bool,
    },
    /// `type: syslog`.
    Syslog {
        /// `facility` (default local0).
        facility: String,
        /// `retry_interval` (default 10s).
        retry_interval: Duration,
    },
    /// `type: tcp`.
    Tcp {
        /// `address`.
        address: String,
        /// `net` (default tcp).
        net: String,
        /// `retry_interval` (default 10s).
        retry_interval: Duration,
        /// `tls`.
        tls: Option<TlsFiles>,
    },
}

/// A `monitoring` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Monitoring {
    /// `type: prometheus`.
    Prometheus {
        /// `listen`.
        listen: String,
        /// `listen_freebind`.
        listen_freebind: bool,
        /// *zrelay extension* `metric_names: zrepl`: export zrepl's
        /// families under zrepl's names and labels (`zrepl_…`,
        /// `zrepl_job`, `jobid`) for zrepl's Grafana dashboard and alerts;
        /// zrelay's own families keep their names. Default: `zrelay`.
        zrepl_names: bool,
    },
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `name` (unique, not starting with `_`).
    pub name: JobId,
    /// The job type and its keys.
    pub kind: JobKind,
}

/// The five job types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// `type: push`.
    Push(PushJob),
    /// `type: sink`.
    Sink(SinkJob),
    /// `type: pull`.
    Pull(PullJob),
    /// `type: source`.
    Source(SourceJob),
    /// `type: snap`.
    Snap(SnapJob),
}

impl JobKind {
    /// zrepl's spelling of the type.
    pub fn type_name(&self) -> &'static str {
        match self {
            JobKind::Push(_) => "push",
            JobKind::Sink(_) => "sink",
            JobKind::Pull(_) => "pull",
            JobKind::Source(_) => "source",
            JobKind::Snap(_) => "snap",
        }
    }
}

/// `send` of push and source jobs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendConfig {
    /// `encrypted` and the flags.
    pub options: SendOptions,
    /// `bandwidth_limit`.
    pub bandwidth_limit: Option<BandwidthLimit>,
}

/// `recv` of sink and pull jobs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecvConfig {
    /// `properties`, `placeholder` (and the zrelay extension `force_overwrite`).
    pub options: RecvOptions,
    /// `bandwidth_limit`.
    pub bandwidth_limit: Option<BandwidthLimit>,
}

/// `bandwidth_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandwidthLimit {
    /// `max`, in bytes per second.
    pub max_bytes_per_sec: u64,
    /// `bucket_capacity`, in bytes (default 128 KiB).
    pub bucket_capacity: u64,
}

/// `replication` and `conflict_resolution` of push and pull jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replication.protection`.
    pub protection: Protection,
    /// `conflict_resolution.initial_replication`.
    pub initial: InitialPolicy,
    /// `replication.concurrency.steps` (default
    /// [`zrelay_replication::DEFAULT_STEPS`]; zrepl's default is 1).
    pub steps: usize,
    /// `replication.concurrency.size_estimates`. Set: dry-run sends for the
    /// size estimates, this many at once (zrepl's behaviour). Not set: no
    /// dry run; the sizes come from the properties send validation reads.
    pub size_estimates: Option<usize>,
    /// *zrelay extension* `replication.snapshot_filter`: replicate only the
    /// snapshots whose name matches (zrepl #403).
    pub snapshot_filter: Option<SnapshotFilter>,
    /// *zrelay extension* `replication.schedule` (push only): replicate on
    /// this schedule, independent of snapshotting (zrepl #397).
    pub schedule: Option<Schedule>,
    /// *zrelay extension* `replication.wire_compression`: zstd on the wire.
    pub wire_compression: WireCompression,
    /// Attempts of one replication invocation: not a YAML key but zrepl's
    /// `ZREPL_REPLICATION_MAX_ATTEMPTS` knob (default 3), set by
    /// [`Config::set_knobs`].
    pub max_attempts: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            protection: Protection::default(),
            initial: InitialPolicy::default(),
            steps: zrelay_replication::DEFAULT_STEPS,
            size_estimates: None,
            snapshot_filter: None,
            schedule: None,
            wire_compression: WireCompression::default(),
            max_attempts: crate::knobs::REPLICATION_MAX_ATTEMPTS_DEFAULT,
        }
    }
}

/// *zrelay extension* `replication.wire_compression`: whether a push or
/// pull job's data streams are zstd-compressed on the wire (negotiated with
/// the peer, which compresses a pull's streams; chunks that do not compress
/// go out raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WireCompression {
    /// `type: auto` (the default): zstd at [`WireCompression::DEFAULT_LEVEL`]
    /// over tcp, tls and ssh; off for local jobs, where it would only cost CPU.
    #[default]
    Auto,
    /// `type: off`.
    Off,
    /// `type: zstd` with `level` (1 to 9).
    Zstd {
        /// The zstd level.
        level: u8,
    },
}

impl WireCompression {
    /// The level of `auto` and of `zstd` without a `level`.
    pub const DEFAULT_LEVEL: u8 = 1;
    /// The highest level accepted (the peer clamps to the same).
    pub const MAX_LEVEL: u8 = 9;

    /// The zstd level for a job connecting with `connect`, or `None` for off.
    pub fn level_for(self, connect: &ConnectOptions) -> Option<u8> {
        match self {
            WireCompression::Off => None,
            WireCompression::Zstd { level } => Some(level),
            WireCompression::Auto => match connect {
                ConnectOptions::Local { .. } => None,
                _ => Some(Self::DEFAULT_LEVEL),
            },
        }
    }
}

/// *zrelay extension*: which snapshots replication considers (the
/// driver's own type, its regex compiled once here).
pub use zrelay_replication::SnapshotFilter;

/// When something runs on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every interval.
    Interval(Duration),
    /// A cron expression (parsed once, with its time zone; optional seconds
    /// field).
    Cron(zrelay_snapshot::CronSchedule),
}

/// A pull job's `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullInterval {
    /// Every duration.
    Every(Duration),
    /// `manual`: only on `zrelay signal wakeup`.
    Manual,
}

/// `pruning` of push and pull jobs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruningConfig {
    /// `keep_sender` (compiled).
    pub keep_sender: KeepRules,
    /// `keep_receiver` (compiled).
    pub keep_receiver: KeepRules,
}

/// `type: push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushJob {
    /// `connect`, or the zrelay extension `targets`.
    pub to: PushTargets,
    /// `filesystems`.
    pub filesystems: FsFilter,
    /// `send`.
    pub send: SendConfig,
    /// `snapshotting`.
    pub snapshotting: SnapshotPlan,
    /// `pruning`.
    pub pruning: PruningConfig,
    /// `replication` and `conflict_resolution`.
    pub replication: ReplicationConfig,
    /// *zrelay extension* `replicas`: what happens to the replicas of
    /// filesystems renamed or destroyed here. Off by default.
    pub replicas: Replicas,
    /// *zrelay extension* `hooks`: commands around invocations and pruning.
    pub hooks: Vec<crate::JobHook>,
}

/// *zrelay extension* `replicas` of a push job. Both need the receiving
/// side's consent (`recv.replicas` of its sink).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replicas {
    /// `follow_renames`: when a replicated filesystem is renamed here (its
    /// snapshots' GUIDs show up under the new name, whose replica does not
    /// exist yet), rename its replica on each target before replicating, so
    /// replication goes on incrementally.
    pub follow_renames: bool,
    /// `delete_after`: when a replicated filesystem is destroyed here (its
    /// name exists no more; one merely no longer matched by `filesystems`
    /// never counts), destroy its replica on each target once it has been
    /// gone this long. `None`: never.
    pub delete_after: Option<Duration>,
}

/// Where a push job replicates to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTargets {
    /// zrepl's `connect`: one target. Cursors, step holds and the
    /// last-received hold keep zrepl's names (`…_J_<job>`).
    One(ConnectOptions),
    /// *zrelay extension* `targets` (with `fan_out`): each target has its
    /// own cursor, step holds and last-received hold, named after
    /// `<job>:<target>`, and is driven on its own.
    Many {
        /// `targets`, in file order; names are unique.
        targets: Vec<PushTarget>,
        /// `fan_out`.
        fan_out: FanOut,
    },
}

impl PushTargets {
    /// Every target's `connect`.
    pub fn connects(&self) -> Vec<&ConnectOptions> {
        match self {
            PushTargets::One(c) => vec![c],
            PushTargets::Many { targets, .. } => targets.iter().map(|t| &t.connect).collect(),
        }
    }

    /// zrepl's single `connect`, when the job has one.
    pub fn single(&self) -> Option<&ConnectOptions> {
        match self {
            PushTargets::One(c) => Some(c),
            PushTargets::Many { .. } => None,
        }
    }
}

/// *zrelay extension*: one entry of a push job's `targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// `name`: `[A-Za-z0-9_.-]`, at most 64 bytes, unique in the job.
    pub name: String,
    /// `connect`.
    pub connect: ConnectOptions,
    /// `bandwidth_limit`: overrides `send.bandwidth_limit` for this target
    /// (each target has its own bucket).
    pub bandwidth_limit: Option<BandwidthLimit>,
    /// `protection`: overrides `replication.protection`.
    pub protection: Option<Protection>,
}

/// *zrelay extension* `fan_out`: how a push job drives its `targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// `concurrency`: targets replicated at once (default: all).
    pub concurrency: usize,
    /// `health_check_interval` (default 30s): how often each target is
    /// pinged.
    pub health_check_interval: Duration,
    /// `health_check_timeout` (default 10s): a ping that takes longer
    /// fails.
    pub health_check_timeout: Duration,
    /// `backoff_start` (default 10s): the wait after a target's first
    /// failed invocation; doubles per failure.
    pub backoff_start: Duration,
    /// `backoff_max` (default 10m).
    pub backoff_max: Duration,
    /// `protection_grace` (default: none, protect forever): a target
    /// unhealthy for longer stops keeping snapshots on the sender.
    pub protection_grace: Option<Duration>,
}

impl FanOut {
    /// The defaults, for a job with `targets` of `n` entries.
    pub fn defaults(n: usize) -> FanOut {
        FanOut {
            concurrency: n.max(1),
            health_check_interval: Duration::from_secs(30),
            health_check_timeout: Duration::from_secs(10),
            backoff_start: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            protection_grace: None,
        }
    }
}

/// `type: sink`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkJob {
    /// `serve`.
    pub serve: ServeOptions,
    /// `root_fs`: clients are received under `root_fs/<identity>`.
    pub root_fs: DatasetPath,
    /// `recv`.
    pub recv: RecvConfig,
    /// `limits` (zrelay extension).
    pub limits: Limits,
}

/// `type: pull`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullJob {
    /// `connect`.
    pub connect: ConnectOptions,
    /// `root_fs`: received under `root_fs/<sender path>`.
    pub root_fs: DatasetPath,
    /// `interval`.
    pub interval: PullInterval,
    /// `recv`.
    pub recv: RecvConfig,
    /// `pruning`.
    pub pruning: PruningConfig,
    /// `replication` and `conflict_resolution`.
    pub replication: ReplicationConfig,
    /// *zrelay extension* `hooks`: commands around invocations and pruning.
    pub hooks: Vec<crate::JobHook>,
}

/// `type: source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceJob {
    /// `serve`.
    pub serve: ServeOptions,
    /// `filesystems`.
    pub filesystems: FsFilter,
    /// `send`.
    pub send: SendConfig,
    /// `snapshotting`.
    pub snapshotting: SnapshotPlan,
    /// `limits` (zrelay extension).
    pub limits: Limits,
    /// *zrelay extension* `per_client_cursors` (default false): each client
    /// (puller) gets its own replication cursor and step holds, named for
    /// the job and the client (`<job>:<client>`), and a client's pruning
    /// never destroys a snapshot another client has not received yet
    /// (zrepl #380). Off, every client shares the job's names, as in zrepl.
    pub per_client_cursors: bool,
}

/// `type: snap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapJob {
    /// `filesystems`.
    pub filesystems: FsFilter,
    /// `snapshotting`.
    pub snapshotting: SnapshotPlan,
    /// `pruning.keep` (compiled).
    pub keep: KeepRules,
}

/// `limits` of a sink or source job (zrelay extension): what the serving side accepts from
/// its clients. Every key is optional; [`Limits::default`] holds the defaults, which match
/// the protocol's (`zrelay-rpc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once by the job; more are closed at once (default 64).
    pub max_connections: usize,
    /// Connections served at once per client identity (default 16).
    pub max_connections_per_client: usize,
    /// The hello must arrive within this (default 10s).
    pub handshake_timeout: Duration,
    /// A connection on which no request starts for this long is closed (default 2m).
    pub idle_timeout: Duration,
    /// A frame must complete within this once it started (default 1m).
    pub frame_timeout: Duration,
    /// Largest request accepted, in bytes (default 8 MiB).
    pub max_request_size: usize,
    /// Bytes the request buffers of all the job's connections may hold together
    /// (default 64 MiB).
    pub max_request_memory: usize,
    /// Most size estimates run at once for one request (default 4).
    pub max_estimate_concurrency: usize,
    /// Most steps, commits, filesystems or snapshot names in one request (default 10000).
    pub max_steps_per_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            max_connections_per_client: 16,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            frame_timeout: Duration::from_secs(60),
            max_request_size: 8 << 20,
            max_request_memory: 64 << 20,
            max_estimate_concurrency: 4,
            max_steps_per_request: 10_000,
        }
    }
}

// The `snapshotting` types are the snapshotter's own (`zrelay-snapshot`).
pub use zrelay_snapshot::model::{Hook, HookKind, Snapshotting, TimestampFormat};
/// `snapshotting`, compiled for the snapshotter.
pub use zrelay_snapshot::SnapshotPlan;

// Keep rules are the pruner's own types (`zrelay-pruning`).
pub use zrelay_pruning::{GridInterval, KeepRule, KeepRules};
