//! Pruning as a job runs it: on the active side, for both sides, after each
//! replication invocation (zrepl's order), and on demand (`zrelay prune
//! --dry-run JOB`, a zrelay extension that says why each survivor survives).
//!
//! The receiver is pruned only with the sender's replication cursors in hand:
//! they locate what the receiver must keep as the next incremental's base.

use std::sync::Arc;

use tracing::{info, warn};
use zrelay_config::KeepRule;
use zrelay_endpoint::{FsListing, Receiver, Sender};
use zrelay_pruning::{prune, PruneOptions, PruneReport, Side, SideKind};

/// `ZREPL_DESTROY_MAX_BATCH_SIZE` (0 = one destroy per filesystem).
fn max_batch() -> usize {
    std::env::var("ZREPL_DESTROY_MAX_BATCH_SIZE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn failed(side: SideKind, dry_run: bool, error: String) -> PruneReport {
    PruneReport {
        side,
        dry_run,
        error: Some(error),
        filesystems: Vec::new(),
    }
}

/// Prune the sender by `keep_sender` and the receiver by `keep_receiver`.
/// `listing` is a fresh listing of the sender, when the caller has one (its
/// cursors protect the receiver's incremental bases); else one is made.
pub async fn prune_both(
    sender: &Arc<dyn Sender>,
    receiver: &Arc<dyn Receiver>,
    keep_sender: &[KeepRule],
    keep_receiver: &[KeepRule],
    dry_run: bool,
    listing: Option<Vec<FsListing>>,
) -> Vec<PruneReport> {
    let listing = match listing {
        Some(l) => Ok(l),
        None => sender.list_filesystems().await,
    };
    let protect = match listing {
        Ok(l) => l
            .into_iter()
            .filter_map(|f| f.cursor_guid.map(|g| (f.path, g)))
            .collect::<Vec<_>>(),
        Err(e) => {
            let msg = format!("cannot list the sender's replication cursors: {e}");
            warn!(error = %e, "pruning skipped");
            return vec![
                failed(SideKind::Sender, dry_run, msg.clone()),
                failed(SideKind::Receiver, dry_run, msg),
            ];
        }
    };
    let opts = |protect| PruneOptions {
        dry_run,
        max_batch: max_batch(),
        protect,
    };
    let s = prune(
        &Side::Sender(sender.clone()),
        keep_sender,
        &opts(Vec::new()),
    )
    .await;
    log(&s);
    let r = prune(
        &Side::Receiver(receiver.clone()),
        keep_receiver,
        &opts(protect),
    )
    .await;
    log(&r);
    vec![s, r]
}

/// Prune a snap job's own filesystems by `keep`.
pub async fn prune_local(
    sender: &Arc<dyn Sender>,
    keep: &[KeepRule],
    dry_run: bool,
) -> PruneReport {
    let opts = PruneOptions {
        dry_run,
        max_batch: max_batch(),
        protect: Vec::new(),
    };
    let r = prune(&Side::Local(sender.clone()), keep, &opts).await;
    log(&r);
    r
}

fn log(r: &PruneReport) {
    let destroyed: usize = r.filesystems.iter().map(|f| f.destroyed.len()).sum();
    let errors = r.filesystems.iter().filter(|f| f.error.is_some()).count();
    if let Some(e) = &r.error {
        warn!(side = ?r.side, error = %e, "pruning failed");
    } else if errors > 0 {
        warn!(side = ?r.side, destroyed, errors, "pruning finished with errors");
    } else if !r.dry_run {
        info!(side = ?r.side, destroyed, "pruning finished");
    }
}

/// A job's pruning: both sides of a push or pull job, or a snap job's own
/// filesystems (`receiver` is `None`; `keep_sender` holds its `keep`).
pub struct Pruner {
    /// The sending side (a snap job's local filesystems).
    pub sender: Arc<dyn Sender>,
    /// The receiving side; `None` for a snap job.
    pub receiver: Option<Arc<dyn Receiver>>,
    /// `keep_sender` (or a snap job's `keep`).
    pub keep_sender: Vec<KeepRule>,
    /// `keep_receiver`.
    pub keep_receiver: Vec<KeepRule>,
}

impl Pruner {
    /// Prune (or, with `dry_run`, say what pruning would do).
    pub async fn run(&self, dry_run: bool) -> Vec<PruneReport> {
        self.run_with(dry_run, None).await
    }

    /// [`Pruner::run`] reusing a fresh listing of the sender, if any.
    pub async fn run_with(
        &self,
        dry_run: bool,
        listing: Option<Vec<FsListing>>,
    ) -> Vec<PruneReport> {
        match &self.receiver {
            Some(r) => {
                prune_both(
                    &self.sender,
                    r,
                    &self.keep_sender,
                    &self.keep_receiver,
                    dry_run,
                    listing,
                )
                .await
            }
            None => vec![prune_local(&self.sender, &self.keep_sender, dry_run).await],
        }
    }
}
