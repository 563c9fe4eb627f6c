//! What `zrelay status` shows (the schema of `--mode raw`,
//! docs/status-schema.md) and what a signal answers.
//!
//! Every value here is a copy: workers publish their own status and the
//! supervisor reads it by value ([`crate::worker::Worker::status`]); nothing
//! in this module is shared or locked.

use serde::{Deserialize, Serialize};
use zrelay_replication::Report;

/// What a job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its schedule or a wakeup.
    Idle,
    /// Replicating (an invocation runs).
    Replicating,
    /// A fan-out target waiting for a free lane (`fan_out.concurrency`).
    Waiting,
    /// Serving clients (passive jobs).
    Serving,
    /// Could not start or stopped on an error (see `last_error`); the
    /// supervisor restarts it at `restart_at` when retrying can help.
    Failed,
    /// Stopped (daemon shutdown).
    Stopped,
}

/// A job's status as the control socket reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job's name.
    pub name: String,
    /// Its type (`push`, `sink`, …).
    pub kind: String,
    /// What it does now.
    pub state: JobState,
    /// The peer (active jobs) or listener (passive jobs).
    pub endpoint: String,
    /// Invocations started so far (active jobs).
    pub invocations: u64,
    /// The running invocation's live report.
    pub current: Option<Report>,
    /// The last finished invocation's report.
    pub last: Option<Report>,
    /// The last job-level error.
    pub last_error: Option<String>,
    /// When the next scheduled invocation starts (unix seconds).
    pub next_run_at: Option<u64>,
    /// Connections accepted (passive jobs).
    pub connections: u64,
    /// The last pruning, one report per side.
    pub last_pruning: Vec<zrelay_pruning::PruneReport>,
    /// The snapshotter (push, source and snap jobs).
    pub snapshotter: Option<zrelay_snapshot::SnapshotterStatus>,
    /// How often the supervisor restarted the job after a failure.
    #[serde(default)]
    pub restarts: u64,
    /// When the supervisor restarts the failed job (unix seconds).
    #[serde(default)]
    pub restart_at: Option<u64>,
    /// A fan-out push job (zrelay extension `targets`): every target, in
    /// configuration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetStatus>,
    /// A push or pull job (and each target of a fan-out job): how far each
    /// of the sender's filesystems is replicated, as of the last pruning's
    /// listing (after every invocation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicated: Vec<FsReplicated>,
}

/// How far one filesystem is replicated to one receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsReplicated {
    /// The sender's filesystem.
    pub fs: String,
    /// The creation time (unix seconds) of the newest sender snapshot the
    /// receiver has; `None`: the receiver has none of its snapshots.
    pub through: Option<u64>,
}

/// One target of a fan-out push job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetStatus {
    /// The target's name.
    pub name: String,
    /// The job name its cursor and holds carry (`<job>:<target>`).
    pub cursor_job: String,
    /// Its address.
    pub endpoint: String,
    /// What its lane does now.
    pub state: JobState,
    /// Health checks and backoff.
    pub health: crate::jobs::health::HealthStatus,
    /// Invocations started so far.
    pub invocations: u64,
    /// The running invocation's live report.
    pub current: Option<Report>,
    /// The last finished invocation's report.
    pub last: Option<Report>,
    /// The last error, or why the last wakeup skipped it.
    pub last_error: Option<String>,
    /// The last pruning of this target (the sender and its receiver).
    pub last_pruning: Vec<zrelay_pruning::PruneReport>,
    /// Seconds since the newest snapshot this target has of the
    /// filesystem that lags most was created (from the last report).
    pub lag_seconds: Option<u64>,
    /// How far each filesystem is replicated to this target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicated: Vec<FsReplicated>,
}

/// What a waited-for wakeup did to one target of a fan-out job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetSignalled {
    /// The target's name.
    pub target: String,
    /// Why it was not attempted.
    pub skipped: Option<String>,
    /// The invocation's report.
    pub report: Option<Report>,
    /// The pruning that followed.
    pub pruning: Vec<zrelay_pruning::PruneReport>,
}

impl JobStatus {
    /// A job that has not run yet.
    pub fn new(name: &str, kind: &str, endpoint: String) -> JobStatus {
        JobStatus {
            name: name.to_string(),
            kind: kind.to_string(),
            state: JobState::Idle,
            endpoint,
            invocations: 0,
            current: None,
            last: None,
            last_error: None,
            next_run_at: None,
            connections: 0,
            last_pruning: Vec::new(),
            snapshotter: None,
            restarts: 0,
            restart_at: None,
            targets: Vec::new(),
            replicated: Vec::new(),
        }
    }
}

/// A periodic chore of the daemon (zfs command observation, history trim,
/// the metrics endpoint).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChoreStatus {
    /// The chore's name.
    pub name: String,
    /// Runs completed.
    pub runs: u64,
    /// The last error, if the last run failed.
    pub last_error: Option<String>,
}

/// A zfs or zpool command running now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunningCommand {
    /// The command line.
    pub cmdline: String,
    /// When it started (unix seconds).
    pub started_at: u64,
}

/// What `zrelay status` shows: the schema of `--mode raw`
/// (docs/status-schema.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// zrelay's version.
    pub version: String,
    /// When the daemon started (unix seconds).
    pub started_at: u64,
    /// Every job, in config order.
    pub jobs: Vec<JobStatus>,
    /// The zfs/zpool commands running now, oldest first.
    pub zfs_running: Vec<RunningCommand>,
    /// The daemon's chores.
    #[serde(default)]
    pub chores: Vec<ChoreStatus>,
}

/// What a signal did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signalled {
    /// For the user.
    pub message: String,
    /// A waited-for wakeup: the invocation's replication report.
    pub report: Option<Report>,
    /// A waited-for snapshot: the round's report.
    pub snapshot: Option<zrelay_snapshot::SnapshotReport>,
    /// Pruning that ran as part of the signal.
    pub pruning: Vec<zrelay_pruning::PruneReport>,
    /// A waited-for wakeup of a fan-out job: what each target did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetSignalled>,
}

impl Signalled {
    /// A signal answered with a message only.
    pub fn message(message: String) -> Signalled {
        Signalled {
            message,
            report: None,
            snapshot: None,
            pruning: Vec::new(),
            targets: Vec::new(),
        }
    }
}
