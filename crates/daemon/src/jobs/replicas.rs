//! A push job's `replicas` rules in the daemon: before each invocation (and
//! on `zrelay prune [--dry-run]`), judge the target's filesystems that the
//! job no longer replicates under their names ([`zrelay_planner::replica_fates`]),
//! follow renames and destroy replicas of sources gone longer than
//! `delete_after` ([`zrelay_planner::replica_actions`]).
//!
//! The sender is local (push jobs only), so the whole sender pool is listed
//! here, unfiltered: a source merely no longer matched by `filesystems`, or
//! whose snapshots live on under another name, is never judged gone. When
//! each source was first seen gone is kept in the work queue, so the grace
//! period survives restarts (without a queue: in memory). The receiving side
//! checks again and refuses unless its `recv.replicas` allows the operation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use zrelay_endpoint::abstractions::{parse_hold_tag, AbstractionKind};
use zrelay_endpoint::{FsListing, FsVersion, Receiver, Sender};
use zrelay_planner::{
    gone, replica_actions, replica_fates, ReplicaAction, ReplicaRules, SourceSide,
};
use zrelay_replication::report::unix;
use zrelay_snapshot::Clock;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

/// One replica's judgement and what was done, for `zrelay prune` and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaLine {
    /// The replica, in the sender's namespace.
    pub fs: String,
    /// `rename`, `destroy`, `wait` or `keep`.
    pub action: String,
    /// The new name, when and why.
    pub detail: String,
    /// The rename or destroy was carried out.
    pub done: bool,
    /// Why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The replica judgement of one job's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    /// `<job>` or `<job>:<target>`.
    pub lane: String,
    /// Nothing was changed on purpose.
    pub dry_run: bool,
    /// A failure before any replica was judged (listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each replica the job no longer replicates under its name.
    pub replicas: Vec<ReplicaLine>,
}

impl ReplicaReport {
    /// Human text for `zrelay prune`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "replicas of {}{}:\n",
            self.lane,
            if self.dry_run { " (dry run)" } else { "" }
        );
        if let Some(e) = &self.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        if self.replicas.is_empty() && self.error.is_none() {
            out.push_str("  every replica's source is replicated under its name\n");
        }
        for l in &self.replicas {
            let verb = match (l.action.as_str(), self.dry_run, l.done) {
                ("rename", true, _) => "would rename",
                ("destroy", true, _) => "would destroy",
                ("rename", false, true) => "renamed",
                ("destroy", false, true) => "destroyed",
                ("rename", false, false) => "rename failed",
                ("destroy", false, false) => "destroy failed",
                (a, _, _) => a,
            };
            out.push_str(&format!("  {}: {verb} {}", l.fs, l.detail));
            if let Some(e) = &l.error {
                out.push_str(&format!(": {e}"));
            }
            out.push('\n');
        }
        out
    }
}

/// One lane's replica handling.
pub(crate) struct ReplicaPart {
    pub lane: String,
    pub rules: ReplicaRules,
    pub zfs: Arc<dyn Zfs>,
    pub sender: Arc<dyn Sender>,
    pub receiver: Arc<dyn Receiver>,
    pub clock: Arc<dyn Clock>,
    /// Where first sightings are kept: (queue, job, target).
    pub store: Option<(
        zrelay_queue::Queue,
        zrelay_queue::JobId,
        zrelay_queue::TargetName,
    )>,
    /// First sightings without a queue.
    pub memory: std::sync::Mutex<BTreeMap<DatasetPath, SystemTime>>,
    /// Renames and destroys run one lane at a time.
    pub running: tokio::sync::Mutex<()>,
}

impl ReplicaPart {
    /// Judge, and unless `dry_run`, act.
    pub async fn run(&self, dry_run: bool) -> ReplicaReport {
        let _one = self.running.lock().await;
        let mut report = ReplicaReport {
            lane: self.lane.clone(),
            dry_run,
            error: None,
            replicas: Vec::new(),
        };
        let actions = match self.judge().await {
            Ok(a) => a,
            Err(e) => {
                warn!(lane = %self.lane, error = %e, "cannot judge the target's replicas");
                report.error = Some(e);
                return report;
            }
        };
        for a in actions {
            report.replicas.push(self.act(a, dry_run).await);
        }
        report
    }

    async fn judge(&self) -> Result<Vec<ReplicaAction>, String> {
        let matched = self
            .sender
            .list_filesystems()
            .await
            .map_err(|e| format!("list the sender: {e}"))?;
        let receiver = self
            .receiver
            .list_filesystems()
            .await
            .map_err(|e| format!("list the receiver: {e}"))?;
        let names: BTreeSet<&DatasetPath> = matched.iter().map(|f| &f.path).collect();
        let pools: BTreeSet<&str> = receiver
            .iter()
            .filter(|r| !names.contains(&r.path))
            .map(|r| r.path.pool())
            .collect();
        let mut everywhere = Vec::new();
        for pool in pools {
            let Ok(root) = DatasetPath::parse(pool) else {
                continue;
            };
            match self.zfs.list(&root).await {
                Ok(listed) => everywhere.extend(listed.into_iter().map(|d| FsListing {
                    versions: d.versions.iter().map(FsVersion::from).collect(),
                    ..FsListing::new(d.path)
                })),
                Err(e) if e.is_does_not_exist() => {}
                Err(e) => return Err(format!("list the sender's pool {pool}: {e}")),
            }
        }
        self.drop_replicas_here(&mut everywhere, &names, &receiver)
            .await?;
        let fates = replica_fates(
            SourceSide {
                matched: &matched,
                everywhere: &everywhere,
            },
            &receiver,
        );
        let gone_now = gone(&fates);
        // One time for the first sightings and the grace: the daemon's.
        let now = self.clock.now();
        let since = match &self.store {
            Some((q, job, target)) => q
                .observe_gone(job, target, &gone_now, now)
                .await
                .map_err(|e| format!("record gone sources: {e}"))?,
            None => {
                let mut m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                m.retain(|fs, _| gone_now.contains(fs));
                for fs in &gone_now {
                    m.entry(fs.clone()).or_insert(now);
                }
                m.clone()
            }
        };
        Ok(replica_actions(&fates, self.rules, &since, now))
    }

    /// Leave out of the sender's listing the datasets that are themselves
    /// replicas received here (a sink or pull job on the same pool): a
    /// snapshot carrying a last-received hold says so. They would otherwise
    /// look like the sources of the very replicas being judged.
    async fn drop_replicas_here(
        &self,
        everywhere: &mut Vec<FsListing>,
        matched: &BTreeSet<&DatasetPath>,
        receiver: &[FsListing],
    ) -> Result<(), String> {
        let guids: BTreeSet<u64> = receiver
            .iter()
            .filter(|r| !matched.contains(&r.path))
            .flat_map(|r| {
                r.versions
                    .iter()
                    .filter(|v| v.is_snapshot())
                    .map(|v| v.guid)
            })
            .collect();
        let mut received = BTreeSet::new();
        for d in everywhere.iter().filter(|d| !matched.contains(&d.path)) {
            let snaps: Vec<SnapshotName> = d
                .versions
                .iter()
                .filter(|v| v.is_snapshot() && guids.contains(&v.guid))
                .filter_map(|v| SnapshotName::new(&d.path, &v.name).ok())
                .collect();
            if snaps.is_empty() {
                continue;
            }
            let holds = self
                .zfs
                .holds_many(&snaps)
                .await
                .map_err(|e| format!("read the holds of {}: {e}", d.path))?;
            let is_replica = holds.iter().any(|(_, tags)| {
                tags.iter().any(|t| {
                    matches!(
                        parse_hold_tag(t),
                        Some((AbstractionKind::LastReceivedHold, _))
                    )
                })
            });
            if is_replica {
                received.insert(d.path.clone());
            }
        }
        everywhere.retain(|d| !received.contains(&d.path));
        Ok(())
    }

    async fn act(&self, a: ReplicaAction, dry_run: bool) -> ReplicaLine {
        let line = |fs: &DatasetPath, action: &str, detail: String| ReplicaLine {
            fs: fs.to_string(),
            action: action.into(),
            detail,
            done: false,
            error: None,
        };
        match a {
            ReplicaAction::Rename { fs, to } => {
                let mut l = line(&fs, "rename", format!("to {to} (its source was renamed)"));
                if !dry_run {
                    match self.receiver.rename_replica(&fs, &to).await {
                        Ok(()) => {
                            info!(lane = %self.lane, from = %fs, to = %to, "renamed the replica of a renamed source");
                            l.done = true;
                        }
                        Err(e) => {
                            warn!(lane = %self.lane, fs = %fs, to = %to, error = %e, "cannot rename a replica");
                            l.error = Some(e.to_string());
                        }
                    }
                }
                l
            }
            ReplicaAction::Destroy { fs, since } => {
                let mut l = line(
                    &fs,
                    "destroy",
                    format!("(its source has been gone since unix {})", unix(since)),
                );
                if !dry_run {
                    match self.receiver.destroy_replica(&fs).await {
                        Ok(()) => {
                            info!(lane = %self.lane, fs = %fs, "destroyed the replica of a destroyed source");
                            l.done = true;
                        }
                        Err(e) => {
                            warn!(lane = %self.lane, fs = %fs, error = %e, "cannot destroy a replica");
                            l.error = Some(e.to_string());
                        }
                    }
                }
                l
            }
            ReplicaAction::Wait { fs, since, due } => line(
                &fs,
                "wait",
                format!(
                    "its source is gone since unix {}; destroyed at unix {} unless it comes back",
                    unix(since),
                    unix(due)
                ),
            ),
            ReplicaAction::Keep { fs, reason } => line(&fs, "keep", reason),
        }
    }
}
