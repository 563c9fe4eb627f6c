//! Snapshotting as the daemon runs it. Push, source and snap jobs have a
//! snapshotter ([`SnapPart`]); what follows each round depends on the job,
//! as in zrepl:
//! - push: the round wakes replication (which then prunes);
//! - snap: the round is followed by pruning with the job's `keep` rules
//!   ([`SnapWorker`], whose wakeup prunes too);
//! - source: nothing (the pulling side replicates and prunes).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};
use zrelay_endpoint::JobId;
use zrelay_pruning::JobPruner;
use zrelay_snapshot::{SnapshotReport, Snapshotter, SnapshotterStatus};

use super::{Command, Woken};
use crate::error::DaemonError;
use crate::status::{JobState, JobStatus};
use crate::worker::{Publisher, Worker, WorkerStatus};

/// What follows a snapshot round.
pub(crate) enum After {
    /// Wake the push job's replication.
    Replicate(mpsc::UnboundedSender<Command>),
    /// Hand the report to the snap job's worker (which prunes).
    Report(mpsc::Sender<SnapshotReport>),
    /// Nothing (source jobs, and push jobs with `replication.schedule`).
    Nothing,
}

/// A job's snapshotter, its trigger queue and what follows its rounds.
pub(crate) struct SnapPart {
    snapshotter: Snapshotter,
    triggers: Mutex<mpsc::Receiver<zrelay_snapshot::Trigger>>,
    after: After,
    /// Where each round is recorded (an invocation of kind `snapshot`).
    pub history: Option<zrelay_history::History>,
}

impl SnapPart {
    /// The part and the sender of its triggers (`zrelay signal snapshot`).
    pub fn new(
        snapshotter: Snapshotter,
        after: After,
        history: Option<zrelay_history::History>,
    ) -> (SnapPart, mpsc::Sender<zrelay_snapshot::Trigger>) {
        let (tx, rx) = mpsc::channel(16);
        let p = SnapPart {
            snapshotter,
            triggers: Mutex::new(rx),
            after,
            history,
        };
        (p, tx)
    }

    /// The snapshotter's live status.
    pub fn status(&self) -> watch::Receiver<SnapshotterStatus> {
        self.snapshotter.status()
    }

    /// Run the snapshotter until `cancel` fires, following each round.
    pub async fn run(&self, cancel: CancellationToken) {
        let Ok(mut triggers) = self.triggers.try_lock() else {
            warn!(job = %self.snapshotter.job(), "snapshotter already running");
            return;
        };
        let span = tracing::info_span!("snapshotter", job = %self.snapshotter.job());
        let (done_tx, mut done_rx) = mpsc::channel::<SnapshotReport>(16);
        let rounds = self
            .snapshotter
            .clone()
            .run(cancel, &mut triggers, done_tx)
            .instrument(span.clone());
        let follow = async {
            while let Some(report) = done_rx.recv().await {
                log(&report);
                let job = self.snapshotter.job().to_string();
                let run = super::record::RunRecord::begin(
                    self.history.as_ref(),
                    &job,
                    zrelay_history::Kind::Snapshot,
                )
                .await;
                if let Some(r) = run {
                    let error = report.error.clone().or_else(|| {
                        let failed = report.filesystems.iter().filter(|f| !f.ok).count();
                        (failed > 0).then(|| format!("{failed} filesystem(s) not snapshotted"))
                    });
                    r.end(error).await;
                }
                match &self.after {
                    After::Replicate(tx) => {
                        if tx.send(Command::Wakeup(None)).is_err() {
                            break;
                        }
                    }
                    After::Report(tx) => {
                        if tx.send(report).await.is_err() {
                            break;
                        }
                    }
                    After::Nothing => {}
                }
            }
        }
        .instrument(span);
        tokio::join!(rounds, follow);
        info!(job = %self.snapshotter.job(), "snapshotter stopped");
    }
}

fn log(r: &SnapshotReport) {
    let done = r.snapshotted().count();
    if let Some(e) = &r.error {
        warn!(name = %r.name, error = %e, "snapshot round failed");
    } else if r.ok() {
        info!(name = %r.name, filesystems = done, "snapshots taken");
    } else {
        let failed = r.filesystems.iter().filter(|f| !f.ok).count();
        warn!(name = %r.name, done, failed, "snapshot round finished with failures");
    }
}

/// A snap job: snapshots, each round followed by pruning with `keep`; a
/// wakeup prunes now.
pub(crate) struct SnapWorker {
    name: JobId,
    snap: SnapPart,
    rounds: Mutex<mpsc::Receiver<SnapshotReport>>,
    commands: Mutex<mpsc::UnboundedReceiver<Command>>,
    pruner: Arc<JobPruner>,
    status: Publisher,
}

impl SnapWorker {
    /// The worker, the sender of its commands and of its snapshot triggers.
    pub fn new(
        name: JobId,
        snapshotter: Snapshotter,
        pruner: Arc<JobPruner>,
        history: Option<zrelay_history::History>,
    ) -> (
        SnapWorker,
        mpsc::UnboundedSender<Command>,
        mpsc::Sender<zrelay_snapshot::Trigger>,
    ) {
        let (rounds_tx, rounds_rx) = mpsc::channel(16);
        let (snap, triggers) = SnapPart::new(snapshotter, After::Report(rounds_tx), history);
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Publisher::new(
            JobStatus::new(name.as_str(), "snap", "local".into()),
            Some(snap.status()),
        );
        let w = SnapWorker {
            name,
            snap,
            rounds: Mutex::new(rounds_rx),
            commands: Mutex::new(rx),
            pruner,
            status,
        };
        (w, tx, triggers)
    }

    async fn prune(&self) -> Vec<zrelay_pruning::PruneReport> {
        let run = super::record::RunRecord::begin(
            self.snap.history.as_ref(),
            self.name.as_str(),
            zrelay_history::Kind::Prune,
        )
        .await;
        let pruned = self.pruner.run(false, None).await;
        if let Some(r) = run {
            r.end(super::record::pruning_error(&pruned)).await;
        }
        self.status.update(|s| s.last_pruning = pruned.clone());
        pruned
    }
}

#[async_trait]
impl Worker for SnapWorker {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus::Job(Box::new(self.status.read()))
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let busy = || DaemonError::Config(format!("job {} is already running", self.name));
        let mut commands = self.commands.try_lock().map_err(|_| busy())?;
        let mut rounds = self.rounds.try_lock().map_err(|_| busy())?;
        self.status.update(|s| s.state = JobState::Idle);
        let follow = async {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = rounds.recv() => match r {
                        Some(_) => {
                            self.prune().await;
                        }
                        None => break,
                    },
                    c = commands.recv() => match c {
                        Some(Command::Wakeup(reply)) => {
                            let pruning = self.prune().await;
                            if let Some(reply) = reply {
                                let _ = reply.send(Woken { pruning, ..Woken::default() });
                            }
                        }
                        Some(Command::Reset(reply)) => {
                            let _ = reply.send(false);
                        }
                        // a snap job has no work records to re-drive
                        Some(Command::Nudge) => {}
                        None => break,
                    },
                }
            }
        };
        tokio::join!(self.snap.run(cancel.clone()), follow);
        self.status.update(|s| s.state = JobState::Stopped);
        info!(job = %self.name, "job stopped");
        Ok(())
    }
}
