//! The daemon's jobs: each runs as its own task with its own cancellation
//! token, and publishes a status the control socket reads at any time.
//!
//! - Active jobs (push, pull) run invocations: replication now, then (issue
//!   of the pruner) pruning, on wakeup signals or their schedule.
//! - Passive jobs (sink, source) serve their endpoints to authenticated
//!   clients.
//! - Snap jobs take and prune snapshots (the snapshotter's slot).

pub mod active;
pub mod build;
pub mod passive;
pub mod prune;
pub(crate) mod record;
pub(crate) mod snap;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use zrelay_replication::{Report, ReportHandle};

use crate::control::Signal;
use crate::error::DaemonError;

/// What a job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its schedule or a wakeup.
    Idle,
    /// Replicating (an invocation runs).
    Replicating,
    /// Serving clients (passive jobs).
    Serving,
    /// Could not start or stopped on an error (see `last_error`).
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
}

/// The mutable part of a job's status.
pub(crate) struct Shared {
    pub status: JobStatus,
    pub live: Option<ReportHandle>,
}

/// The status cell a job task writes and the control socket reads.
pub(crate) type StatusCell = Arc<Mutex<Shared>>;

pub(crate) fn status_cell(name: &str, kind: &str, endpoint: String) -> StatusCell {
    Arc::new(Mutex::new(Shared {
        status: JobStatus {
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
        },
        live: None,
    }))
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
}

/// A wakeup; `reply` receives the report of the invocation it triggered.
pub(crate) struct Trigger {
    pub reply: Option<oneshot::Sender<Report>>,
}

/// How the control socket reaches an active job.
pub(crate) struct ActiveControl {
    pub triggers: mpsc::UnboundedSender<Trigger>,
    /// The running invocation's token (reset cancels it).
    pub running: Arc<Mutex<Option<CancellationToken>>>,
}

/// One registered job.
pub(crate) struct Entry {
    pub name: String,
    pub kind: String,
    pub status: StatusCell,
    pub control: Option<ActiveControl>,
    pub pruner: Option<Arc<prune::Pruner>>,
    pub snap: Option<snap::SnapControl>,
}

/// All jobs of the daemon, for the control socket.
#[derive(Default)]
pub struct Jobs {
    pub(crate) entries: Vec<Entry>,
    /// The ZFS layer's record of commands, when the daemon has one.
    pub(crate) zfs_log: Option<zrelay_zfs::cmd::InvocationLog>,
    pub(crate) started_at: u64,
}

impl Jobs {
    /// `zrelay prune [--dry-run] JOB`: prune now (or say what would go).
    pub async fn prune(
        &self,
        job: &str,
        dry_run: bool,
    ) -> Result<Vec<zrelay_pruning::PruneReport>, DaemonError> {
        let e = self.entry(job)?;
        let p = e.pruner.as_ref().ok_or_else(|| DaemonError::BadSignal {
            job: e.name.clone(),
            kind: e.kind.clone(),
            signal: "prune".into(),
            why: "only push, pull and snap jobs prune".into(),
        })?;
        Ok(p.run(dry_run).await)
    }

    /// The whole daemon's status.
    pub fn daemon_status(&self) -> DaemonStatus {
        let mut zfs_running: Vec<RunningCommand> = self
            .zfs_log
            .as_ref()
            .map(|l| {
                l.active()
                    .into_iter()
                    .map(|a| RunningCommand {
                        cmdline: a.cmdline,
                        started_at: zrelay_replication::report::unix(a.started),
                    })
                    .collect()
            })
            .unwrap_or_default();
        zfs_running.sort_by_key(|c| c.started_at);
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            jobs: self.statuses(),
            zfs_running,
        }
    }

    /// Every job's status, with live reports of running invocations.
    pub fn statuses(&self) -> Vec<JobStatus> {
        self.entries
            .iter()
            .map(|e| {
                let g = e.status.lock().unwrap();
                let mut s = g.status.clone();
                s.current = g.live.as_ref().map(|h| h.snapshot());
                s.snapshotter = e.snap.as_ref().map(|c| c.status.borrow().clone());
                s
            })
            .collect()
    }

    fn entry(&self, job: &str) -> Result<&Entry, DaemonError> {
        self.entries
            .iter()
            .find(|e| e.name == job)
            .ok_or_else(|| DaemonError::NoSuchJob {
                job: job.to_string(),
                known: self
                    .entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Deliver `signal` to `job`. With `wait`, a wakeup answers with the
    /// report of the invocation it triggered, a snapshot with the round's.
    pub async fn signal(
        &self,
        job: &str,
        signal: Signal,
        wait: bool,
    ) -> Result<Signalled, DaemonError> {
        let e = self.entry(job)?;
        let bad = |why: &str| DaemonError::BadSignal {
            job: e.name.clone(),
            kind: e.kind.clone(),
            signal: format!("{signal:?}").to_lowercase(),
            why: why.to_string(),
        };
        let done = |message: String| Signalled {
            message,
            report: None,
            snapshot: None,
            pruning: Vec::new(),
        };
        match signal {
            Signal::Snapshot => {
                let ctl = e
                    .snap
                    .as_ref()
                    .ok_or_else(|| bad("only push, source and snap jobs take snapshots"))?;
                let (tx, rx) = oneshot::channel();
                ctl.triggers
                    .send(zrelay_snapshot::Trigger {
                        reply: wait.then_some(tx),
                    })
                    .await
                    .map_err(|_| bad("the snapshotter has stopped"))?;
                if !wait {
                    return Ok(done(format!("job {job}: snapshot requested")));
                }
                let report = rx
                    .await
                    .map_err(|_| bad("the snapshotter stopped before the round finished"))?;
                Ok(Signalled {
                    snapshot: Some(report),
                    ..done(format!("job {job}: snapshot round finished"))
                })
            }
            Signal::Wakeup if e.control.is_none() && e.pruner.is_some() => {
                // A snap job: wakeup prunes now.
                let pruning = e.pruner.as_ref().expect("checked").run(false).await;
                e.status.lock().unwrap().status.last_pruning = pruning.clone();
                Ok(Signalled {
                    pruning,
                    ..done(format!("job {job}: pruned"))
                })
            }
            Signal::Wakeup => {
                let ctl = e
                    .control
                    .as_ref()
                    .ok_or_else(|| bad("only push, pull and snap jobs take wakeups"))?;
                let (tx, rx) = oneshot::channel();
                ctl.triggers
                    .send(Trigger {
                        reply: wait.then_some(tx),
                    })
                    .map_err(|_| bad("the job has stopped"))?;
                if !wait {
                    return Ok(done(format!("woke up job {job}")));
                }
                let report = rx
                    .await
                    .map_err(|_| bad("the job stopped before the invocation finished"))?;
                let pruning = e.status.lock().unwrap().status.last_pruning.clone();
                Ok(Signalled {
                    report: Some(report),
                    pruning,
                    ..done(format!("job {job}: invocation finished"))
                })
            }
            Signal::Reset => {
                let ctl = e
                    .control
                    .as_ref()
                    .ok_or_else(|| bad("only push and pull jobs run invocations"))?;
                let running = ctl.running.lock().unwrap().clone();
                match running {
                    Some(token) => {
                        token.cancel();
                        Ok(done(format!("job {job}: aborting the current invocation")))
                    }
                    None => Ok(done(format!("job {job}: no invocation is running"))),
                }
            }
        }
    }
}
