//! zrelay extension: renaming and destroying whole replicas, asked for by the
//! sending job when its filesystem was renamed or destroyed.
//!
//! Invariants, each checked here on the receiving side whatever the sender
//! says:
//! - Each operation is off unless this side allows it ([`ReplicaPolicy`],
//!   `recv.replicas`).
//! - Every dataset is confined under the receiver's root ([`LocalReceiver::target`]).
//! - Only this job's replicas are touched: a filesystem one of whose
//!   snapshots carries this job's last-received hold, or a placeholder.
//! - A rename never replaces anything (`zfs rename` without `-f`, and the
//!   new name must not exist); a destroy never recurses: a replica with child
//!   datasets, or with a snapshot held by anyone else, is refused and left whole.

use serde::{Deserialize, Serialize};
use tracing::info;
use zrelay_zfs::api::DestroyTarget;
use zrelay_zfs::name::{BookmarkName, VersionKind};
use zrelay_zfs::parse::ListedDataset;
use zrelay_zfs::{DatasetPath, SnapshotName};

use super::LocalReceiver;
use crate::error::{EndpointError, Result};

/// `recv.replicas`: what the sending job may do to whole replicas here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaPolicy {
    /// Rename a replica whose source filesystem was renamed.
    pub rename: bool,
    /// Destroy a replica whose source filesystem was destroyed.
    pub destroy: bool,
}

/// At most this many names are listed in a refusal.
const NAMES_SHOWN: usize = 5;

fn refuse(fs: &DatasetPath, reason: impl Into<String>) -> EndpointError {
    EndpointError::ReplicaRefused {
        fs: fs.to_string(),
        reason: reason.into(),
    }
}

fn some_names(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        s.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    s
}

/// What a replica is made of, as one `zfs list` and one `zfs holds` saw it.
struct Replica {
    /// The replica and its descendants (the replica first).
    listed: Vec<ListedDataset>,
    /// Each snapshot's hold tags.
    holds: Vec<(SnapshotName, Vec<String>)>,
}

impl LocalReceiver {
    /// `target` as it is, or `None` when it does not exist; refused when it
    /// is not this job's replica.
    async fn replica(&self, target: &DatasetPath) -> Result<Option<Replica>> {
        let listed = match self.zfs.list(target).await {
            Ok(l) => l,
            Err(e) if e.is_does_not_exist() => return Ok(None),
            Err(e) => return Err(EndpointError::zfs(format!("list {target}"), e)),
        };
        let Some(me) = listed.iter().find(|d| &d.path == target) else {
            return Ok(None);
        };
        let snaps: Vec<SnapshotName> = me
            .versions
            .iter()
            .filter(|v| v.kind == VersionKind::Snapshot)
            .filter_map(|v| SnapshotName::new(target, &v.name).ok())
            .collect();
        let holds = self
            .zfs
            .holds_many(&snaps)
            .await
            .map_err(|e| EndpointError::zfs(format!("read the holds of {target}"), e))?;
        let tag = self.job.last_received_hold_tag();
        let ours = holds.iter().any(|(_, tags)| tags.contains(&tag));
        let placeholder = self
            .placeholders(std::slice::from_ref(target))
            .await?
            .get(target)
            .copied()
            .unwrap_or(false);
        if !ours && !placeholder {
            return Err(refuse(
                target,
                format!("not a replica of this job: no snapshot holds {tag} and it is not a placeholder; zrelay leaves it alone"),
            ));
        }
        Ok(Some(Replica { listed, holds }))
    }

    pub(super) async fn rename_replica_impl(
        &self,
        from: &DatasetPath,
        to: &DatasetPath,
    ) -> Result<()> {
        let src = self.target(from)?;
        let dst = self.target(to)?;
        if !self.opts.replicas.rename {
            return Err(refuse(
                &src,
                "this receiver does not rename replicas (recv.replicas.rename is off)",
            ));
        }
        if src.has_prefix(&dst) || dst.has_prefix(&src) {
            return Err(refuse(
                &src,
                format!("cannot rename to {dst}: one contains the other"),
            ));
        }
        if self.replica(&src).await?.is_none() {
            return Err(refuse(&src, "does not exist"));
        }
        match self.zfs.guid(dst.as_str()).await {
            Ok(_) => {
                return Err(refuse(
                    &src,
                    format!("cannot rename to {dst}: it exists (a rename never replaces anything)"),
                ))
            }
            Err(e) if e.is_does_not_exist() => {}
            Err(e) => return Err(EndpointError::zfs(format!("inspect {dst}"), e)),
        }
        self.ensure_parents(&dst).await?;
        self.zfs
            .rename(&src, &dst)
            .await
            .map_err(|e| EndpointError::zfs(format!("rename {src} to {dst}"), e))?;
        self.versions.lock().unwrap().clear();
        info!(from = %src, to = %dst, "renamed a replica: its source was renamed");
        Ok(())
    }

    pub(super) async fn destroy_replica_impl(&self, fs: &DatasetPath) -> Result<()> {
        let target = self.target(fs)?;
        if !self.opts.replicas.destroy {
            return Err(refuse(
                &target,
                "this receiver does not destroy replicas (recv.replicas.destroy is off)",
            ));
        }
        if !target.has_prefix(&self.root) || target == self.root {
            return Err(refuse(&target, "not below this receiver's root"));
        }
        let Some(replica) = self.replica(&target).await? else {
            return Ok(()); // already gone
        };
        let children: Vec<String> = replica
            .listed
            .iter()
            .filter(|d| d.path != target)
            .map(|d| d.path.to_string())
            .collect();
        if !children.is_empty() {
            return Err(refuse(
                &target,
                format!(
                    "has child datasets ({}); a replica is destroyed only without children",
                    some_names(&children)
                ),
            ));
        }
        let tag = self.job.last_received_hold_tag();
        let foreign: Vec<String> = replica
            .holds
            .iter()
            .filter(|(_, tags)| tags.iter().any(|t| *t != tag))
            .map(|(s, tags)| format!("{s} (held by {})", tags.join(" ")))
            .collect();
        if !foreign.is_empty() {
            return Err(refuse(
                &target,
                format!("snapshots held by others: {}", some_names(&foreign)),
            ));
        }
        let me = &replica.listed[0];
        if me.resume_token.is_some() {
            self.zfs.recv_abort(&target).await.map_err(|e| {
                EndpointError::zfs(format!("abort the partial receive of {target}"), e)
            })?;
        }
        let ours: Vec<SnapshotName> = replica
            .holds
            .iter()
            .filter(|(_, tags)| tags.contains(&tag))
            .map(|(s, _)| s.clone())
            .collect();
        for r in self
            .zfs
            .release_many(&ours, &tag)
            .await
            .map_err(|e| EndpointError::zfs(format!("release {tag} on {target}"), e))?
        {
            r.map_err(|e| EndpointError::zfs(format!("release {tag} on {target}"), e))?;
        }
        let snaps: Vec<String> = replica
            .holds
            .iter()
            .map(|(s, _)| s.name().to_string())
            .collect();
        if !snaps.is_empty() {
            let report = self
                .zfs
                .destroy_snapshots(&target, &snaps)
                .await
                .map_err(|e| EndpointError::zfs(format!("destroy the snapshots of {target}"), e))?;
            if !report.failed.is_empty() {
                let failed: Vec<String> = report
                    .failed
                    .iter()
                    .map(|f| format!("{} ({:?})", f.snapshot, f.reason))
                    .collect();
                return Err(refuse(
                    &target,
                    format!("could not destroy snapshots: {}", some_names(&failed)),
                ));
            }
        }
        let marks: Vec<BookmarkName> = me
            .versions
            .iter()
            .filter(|v| v.kind == VersionKind::Bookmark)
            .filter_map(|v| BookmarkName::new(&target, &v.name).ok())
            .collect();
        for r in self
            .zfs
            .destroy_bookmarks(&marks)
            .await
            .map_err(|e| EndpointError::zfs(format!("destroy the bookmarks of {target}"), e))?
        {
            r.map_err(|e| EndpointError::zfs(format!("destroy a bookmark of {target}"), e))?;
        }
        self.zfs
            .destroy(&DestroyTarget::Dataset(target.clone()))
            .await
            .map_err(|e| EndpointError::zfs(format!("destroy {target}"), e))?;
        self.versions.lock().unwrap().clear();
        info!(fs = %target, "destroyed a replica: its source was destroyed");
        Ok(())
    }
}
