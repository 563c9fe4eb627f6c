//! A job's snapshotter, as the daemon runs it: push, source and snap jobs
//! have one. What follows each round depends on the job, as in zrepl:
//! - push: the round wakes replication (which then prunes);
//! - snap: the round is followed by pruning with the job's `keep` rules;
//! - source: nothing (the pulling side replicates and prunes).

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};
use zrelay_endpoint::{FsFilter, JobId};
use zrelay_snapshot::{SnapshotReport, Snapshotter, SnapshotterStatus, Snapshotting};
use zrelay_zfs::Zfs;

use super::prune::Pruner;
use super::{StatusCell, Trigger};
use crate::error::DaemonError;

/// A test hook: when set, snapshotters read the time (Unix seconds) from
/// this file instead of the system clock.
pub const TEST_CLOCK_ENV: &str = "ZRELAY_TEST_CLOCK_FILE";

/// What follows a snapshot round.
pub(crate) enum After {
    /// Wake the push job's replication.
    Replicate(mpsc::UnboundedSender<Trigger>),
    /// Prune the snap job's filesystems.
    Prune(Arc<Pruner>, StatusCell),
    /// Nothing (source jobs).
    Nothing,
}

/// How the control socket reaches a snapshotter.
pub(crate) struct SnapControl {
    /// Take a snapshot now (`zrelay signal snapshot`).
    pub triggers: mpsc::Sender<zrelay_snapshot::Trigger>,
    /// The snapshotter's live status.
    pub status: watch::Receiver<SnapshotterStatus>,
}

/// Start `job`'s snapshotter on `tasks`, with `after` following each round.
pub(crate) fn spawn(
    tasks: &mut JoinSet<()>,
    job: &JobId,
    filesystems: FsFilter,
    snapshotting: Snapshotting,
    zfs: Arc<dyn Zfs>,
    after: After,
    cancel: CancellationToken,
) -> Result<SnapControl, DaemonError> {
    let mut snapshotter = Snapshotter::new(job.as_str(), filesystems, snapshotting, zfs)
        .map_err(|e| DaemonError::Config(format!("job {job}: snapshotting: {e}")))?;
    if let Some(path) = std::env::var_os(TEST_CLOCK_ENV) {
        warn!(job = %job, clock = ?path, "{TEST_CLOCK_ENV} is set: the snapshotter follows that file's time, not the system clock (a test hook)");
        snapshotter = snapshotter.with_clock(Arc::new(zrelay_snapshot::FileClock::new(path)));
    }
    let status = snapshotter.status();
    let (triggers, trigger_rx) = mpsc::channel(16);
    let (done_tx, mut done_rx) = mpsc::channel::<SnapshotReport>(16);
    let span = tracing::info_span!("snapshotter", job = %job);
    tasks.spawn(
        snapshotter
            .run(cancel, trigger_rx, done_tx)
            .instrument(span.clone()),
    );
    let job = job.clone();
    tasks.spawn(
        async move {
            while let Some(report) = done_rx.recv().await {
                log(&report);
                match &after {
                    After::Replicate(tx) => {
                        if tx.send(Trigger { reply: None }).is_err() {
                            break;
                        }
                    }
                    After::Prune(pruner, status) => {
                        let pruned = pruner.run(false).await;
                        status.lock().unwrap().status.last_pruning = pruned;
                    }
                    After::Nothing => {}
                }
            }
            info!(job = %job, "snapshotter stopped");
        }
        .instrument(span),
    );
    Ok(SnapControl { triggers, status })
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
