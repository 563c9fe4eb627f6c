//! Committing finished filesystems in batches, and the end-of-run cleanup
//! that keeps failed filesystems from leaking step holds.

use std::sync::Mutex;
use std::time::Instant;

use tracing::{debug, warn};
use zrelay_endpoint::CommitReq;
use zrelay_zfs::DatasetPath;

use super::{Driver, Shared, UnitState};
use crate::config::DriverConfig;
use crate::report::{FsReport, FsState};

impl Driver {
    pub(super) fn queue_commit(g: &mut Shared, i: usize, cfg: &DriverConfig) {
        let u = &g.units[i];
        if let Some((to, incremental)) = &u.last_to {
            g.commits.push(CommitReq {
                fs: u.fs.clone(),
                to: to.clone(),
                protection: cfg.protection,
                incremental: *incremental,
            });
            g.first_commit_at.get_or_insert_with(Instant::now);
        }
    }

    pub(super) async fn maybe_flush(&self, shared: &Mutex<Shared>) {
        let due = {
            let g = shared.lock().unwrap();
            g.first_commit_at
                .is_some_and(|t| t.elapsed() >= self.cfg.commit_window || g.commits.len() >= 256)
        };
        if due {
            self.flush(shared).await;
        }
    }

    /// Commit the finished filesystems: receiver first (verify GUIDs, move
    /// the last-received hold), then the sender (move the cursor, release
    /// step protection) for those the receiver confirmed.
    pub(super) async fn flush(&self, shared: &Mutex<Shared>) {
        let batch = {
            let mut g = shared.lock().unwrap();
            g.first_commit_at = None;
            std::mem::take(&mut g.commits)
        };
        if batch.is_empty() {
            return;
        }
        debug!(n = batch.len(), "committing");
        let fail = |fs: &DatasetPath, msg: String| {
            warn!(%fs, error = %msg, "commit failed");
            self.uncommitted.lock().unwrap().insert(fs.clone());
            self.report.fs(fs.as_str(), |r: &mut FsReport| {
                r.state = FsState::Failed;
                r.error_count += 1;
                r.last_error = Some(msg);
            });
            let mut g = shared.lock().unwrap();
            if let Some(u) = g.units.iter_mut().find(|u| &u.fs == fs) {
                u.state = UnitState::Failed { temporary: true };
            }
        };
        let confirmed: Vec<CommitReq> = match self.receiver.commit(&batch).await {
            Ok(results) => batch
                .into_iter()
                .zip(results)
                .filter_map(|(c, r)| match r {
                    Ok(()) => Some(c),
                    Err(e) => {
                        fail(&c.fs, format!("receiver commit: {e}"));
                        None
                    }
                })
                .collect(),
            Err(e) => {
                for c in &batch {
                    fail(&c.fs, format!("receiver commit: {e}"));
                }
                return;
            }
        };
        if confirmed.is_empty() {
            return;
        }
        match self.sender.commit(&confirmed).await {
            Ok(results) => {
                for (c, r) in confirmed.iter().zip(results) {
                    if let Err(e) = r {
                        fail(&c.fs, format!("sender commit: {e}"));
                    }
                }
            }
            Err(e) => {
                for c in &confirmed {
                    fail(&c.fs, format!("sender commit: {e}"));
                }
            }
        }
    }

    /// After the last attempt: a failed filesystem that left nothing to
    /// resume must not keep step holds on the sender. A filesystem whose
    /// steps succeeded but whose commit failed keeps them: they protect the
    /// received snapshot on the sender until a later run commits it (zrepl's
    /// lost `SendCompleted`).
    pub(super) async fn cleanup(&self) {
        if self.cancel.is_cancelled() {
            return;
        }
        let failed: Vec<String> = self
            .report
            .snapshot()
            .failed()
            .map(|f| f.fs.clone())
            .collect();
        if failed.is_empty() {
            return;
        }
        let listing = match self.receiver.list_filesystems().await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot list the receiver to release step holds");
                return;
            }
        };
        let uncommitted = self.uncommitted.lock().unwrap().clone();
        let abort: Vec<DatasetPath> = failed
            .iter()
            .filter_map(|f| DatasetPath::parse(f).ok())
            .filter(|fs| !uncommitted.contains(fs))
            .filter(|fs| !listing.iter().any(|l| &l.path == fs && l.resume.is_some()))
            .collect();
        if abort.is_empty() {
            return;
        }
        match self.sender.abort(&abort).await {
            Ok(results) => {
                for (fs, r) in abort.iter().zip(results) {
                    if let Err(e) = r {
                        warn!(%fs, error = %e, "cannot release step holds");
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot release step holds"),
        }
    }
}
