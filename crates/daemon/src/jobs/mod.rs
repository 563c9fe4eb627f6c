//! The daemon's jobs: each runs as its own task with its own cancellation
//! token, and publishes a status the control socket reads at any time.
//!
//! - Active jobs (push, pull) run invocations: replication now, then (issue
//!   of the pruner) pruning, on wakeup signals or their schedule.
//! - Passive jobs (sink, source) serve their endpoints to authenticated
//!   clients.
//! - Snap jobs take and prune snapshots (the snapshotter's slot).

pub mod active;
pub mod passive;

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
        },
        live: None,
    }))
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
}

/// All jobs of the daemon, for the control socket.
#[derive(Default)]
pub struct Jobs {
    pub(crate) entries: Vec<Entry>,
}

impl Jobs {
    /// Every job's status, with live reports of running invocations.
    pub fn statuses(&self) -> Vec<JobStatus> {
        self.entries
            .iter()
            .map(|e| {
                let g = e.status.lock().unwrap();
                let mut s = g.status.clone();
                s.current = g.live.as_ref().map(|h| h.snapshot());
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

    /// Deliver `signal` to `job`; with `wait`, return the report of the
    /// invocation a wakeup triggered once it finished.
    pub async fn signal(
        &self,
        job: &str,
        signal: Signal,
        wait: bool,
    ) -> Result<(String, Option<Report>), DaemonError> {
        let e = self.entry(job)?;
        let bad = |why: &str| DaemonError::BadSignal {
            job: e.name.clone(),
            kind: e.kind.clone(),
            signal: format!("{signal:?}").to_lowercase(),
            why: why.to_string(),
        };
        let ctl = e
            .control
            .as_ref()
            .ok_or_else(|| bad("only push and pull jobs take signals"))?;
        match signal {
            Signal::Wakeup => {
                let (tx, rx) = oneshot::channel();
                let reply = wait.then_some(tx);
                ctl.triggers
                    .send(Trigger { reply })
                    .map_err(|_| bad("the job has stopped"))?;
                if !wait {
                    return Ok((format!("woke up job {job}"), None));
                }
                let report = rx
                    .await
                    .map_err(|_| bad("the job stopped before the invocation finished"))?;
                Ok((format!("job {job}: invocation finished"), Some(report)))
            }
            Signal::Reset => {
                let running = ctl.running.lock().unwrap().clone();
                match running {
                    Some(token) => {
                        token.cancel();
                        Ok((format!("job {job}: aborting the current invocation"), None))
                    }
                    None => Ok((format!("job {job}: no invocation is running"), None)),
                }
            }
        }
    }
}
