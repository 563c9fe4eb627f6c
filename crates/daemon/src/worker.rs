//! The worker layer: every job and every periodic chore of the daemon is a
//! [`Worker`], owned and run by the [`crate::supervisor::Supervisor`]
//! (garage's `Worker`/`WorkerProcessor` is the model).
//!
//! Invariants:
//! - A worker is started with [`Worker::run`] and stops when its
//!   cancellation token fires; `run` returns `Err` only for a failure it
//!   cannot recover from itself (a listener that cannot bind, say), and the
//!   supervisor decides whether to restart it.
//! - A worker is the only writer of its status ([`Publisher`]); anyone reads
//!   it by value at any time with [`Worker::status`]. No status is written
//!   from outside the worker, and nothing is shared behind a lock.
//! - Control reaches a worker through its own channels (commands, snapshot
//!   triggers), never by mutating its state.

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zrelay_replication::ReportHandle;
use zrelay_snapshot::SnapshotterStatus;

use crate::error::DaemonError;
use crate::status::{ChoreStatus, JobState, JobStatus};

/// What a worker reports.
#[derive(Debug, Clone)]
pub enum WorkerStatus {
    /// A job (push, sink, pull, source, snap).
    Job(Box<JobStatus>),
    /// A chore of the daemon.
    Chore(ChoreStatus),
}

/// A job or a chore, run by the supervisor.
#[async_trait]
pub trait Worker: Send + Sync + 'static {
    /// The name in status and logs (the job's name for jobs).
    fn name(&self) -> &str;

    /// The status now, by value.
    fn status(&self) -> WorkerStatus;

    /// Run until `cancel` fires. Called again after a failure when the
    /// supervisor restarts the worker.
    ///
    /// # Errors
    /// A failure the worker cannot recover from; its class tells the
    /// supervisor whether a restart can help.
    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError>;
}

/// A job's status as its worker publishes it: the worker writes, readers
/// get copies. The live report of a running invocation and the
/// snapshotter's status are folded in when read.
pub(crate) struct Publisher {
    status: watch::Sender<JobStatus>,
    live: watch::Sender<Option<ReportHandle>>,
    snapshotter: Option<watch::Receiver<SnapshotterStatus>>,
}

impl Publisher {
    /// A job's publisher, starting from `status`.
    pub fn new(
        status: JobStatus,
        snapshotter: Option<watch::Receiver<SnapshotterStatus>>,
    ) -> Publisher {
        Publisher {
            status: watch::Sender::new(status),
            live: watch::Sender::new(None),
            snapshotter,
        }
    }

    /// Change the status (the worker only).
    pub fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        self.status.send_modify(f);
    }

    /// Show (or stop showing) a running invocation's live report.
    pub fn set_live(&self, live: Option<ReportHandle>) {
        self.live.send_replace(live);
    }

    /// Mark the job failed with `error` (before `run` returns it).
    pub fn failed(&self, error: &DaemonError) {
        self.update(|s| {
            s.state = JobState::Failed;
            s.last_error = Some(error.to_string());
        });
    }

    /// The status now.
    pub fn read(&self) -> JobStatus {
        let mut s = self.status.borrow().clone();
        s.current = self.live.borrow().as_ref().map(ReportHandle::snapshot);
        s.snapshotter = self.snapshotter.as_ref().map(|r| r.borrow().clone());
        s
    }
}
