//! A job's pruning ([`JobPruner`]): both sides of a push or pull job after
//! each replication invocation (zrepl's order) or on demand, or a snap
//! job's own filesystems.
//!
//! Invariants:
//! - The receiver is pruned only with the sender's listing in hand: its
//!   replication cursors ([`receiver_protection`]) name what the receiver
//!   must keep as the next incremental's base, whatever the rules say. The
//!   other two receiver protections (its newest snapshot and the base of a
//!   resumable partial receive) are applied per filesystem by
//!   [`crate::plan_filesystem`]. All three hold whoever calls: a caller
//!   that has no fresh listing gets one made here.
//! - If the sender cannot be listed, neither side is pruned, and both
//!   reports say why.

use std::sync::Arc;

use tracing::{info, warn};
use zrelay_endpoint::{FsListing, Receiver, Sender};
use zrelay_zfs::DatasetPath;

use crate::exec::{prune, PruneOptions, Side};
use crate::report::{PruneReport, SideKind};
use crate::rules::KeepRules;

/// The snapshots the receiver keeps for the sender's sake: per filesystem
/// (in the sender's namespace), the GUID of the sender's replication
/// cursor, which is the base of the next incremental step.
pub fn receiver_protection(sender: &[FsListing]) -> Vec<(DatasetPath, u64)> {
    sender
        .iter()
        .filter_map(|f| f.cursor_guid.map(|g| (f.path.clone(), g)))
        .collect()
}

/// What a job prunes, with which rules.
pub struct JobPruner {
    sender: Arc<dyn Sender>,
    receiver: Option<Arc<dyn Receiver>>,
    keep_sender: KeepRules,
    keep_receiver: KeepRules,
    max_batch: usize,
}

impl JobPruner {
    /// A push or pull job: `keep_sender` on the sender, `keep_receiver` on
    /// the receiver; at most `max_batch` snapshots per destroy (0: one
    /// destroy per filesystem).
    pub fn pair(
        sender: Arc<dyn Sender>,
        receiver: Arc<dyn Receiver>,
        keep_sender: KeepRules,
        keep_receiver: KeepRules,
        max_batch: usize,
    ) -> JobPruner {
        JobPruner {
            sender,
            receiver: Some(receiver),
            keep_sender,
            keep_receiver,
            max_batch,
        }
    }

    /// A snap job: `keep` on its own filesystems.
    pub fn local(sender: Arc<dyn Sender>, keep: KeepRules, max_batch: usize) -> JobPruner {
        JobPruner {
            sender,
            receiver: None,
            keep_sender: keep,
            keep_receiver: KeepRules::default(),
            max_batch,
        }
    }

    /// Prune (or, with `dry_run`, say what pruning would do): one report
    /// per side. `sender_listing` is a fresh listing of the sender if the
    /// caller has one; without it, one is made.
    pub async fn run(
        &self,
        dry_run: bool,
        sender_listing: Option<Vec<FsListing>>,
    ) -> Vec<PruneReport> {
        let opts = |protect| PruneOptions {
            dry_run,
            max_batch: self.max_batch,
            protect,
        };
        let Some(receiver) = &self.receiver else {
            let r = prune(
                &Side::Local(self.sender.clone()),
                &self.keep_sender,
                &opts(Vec::new()),
            )
            .await;
            log(&r);
            return vec![r];
        };
        let listing = match sender_listing {
            Some(l) => Ok(l),
            None => self.sender.list_filesystems().await,
        };
        let protect = match listing {
            Ok(l) => receiver_protection(&l),
            Err(e) => {
                let msg = format!("cannot list the sender's replication cursors: {e}");
                warn!(error = %e, "pruning skipped");
                return [SideKind::Sender, SideKind::Receiver]
                    .into_iter()
                    .map(|side| PruneReport {
                        side,
                        dry_run,
                        error: Some(msg.clone()),
                        filesystems: Vec::new(),
                    })
                    .collect();
            }
        };
        let s = prune(
            &Side::Sender(self.sender.clone()),
            &self.keep_sender,
            &opts(Vec::new()),
        )
        .await;
        log(&s);
        let r = prune(
            &Side::Receiver(receiver.clone()),
            &self.keep_receiver,
            &opts(protect),
        )
        .await;
        log(&r);
        vec![s, r]
    }
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
