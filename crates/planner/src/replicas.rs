//! Replicas whose source is no longer replicated under its name: renamed
//! (found again by snapshot GUID), gone (destroyed), or merely no longer
//! matched, and what a job's `replicas` rules make of each.
//!
//! Invariants (pure, like the rest of the planner; `now` is an argument):
//! - Only receiver filesystems whose name the job no longer replicates are
//!   judged; nothing else ever gets an action.
//! - A filesystem that still exists on the sender under its name, or whose
//!   snapshots (by GUID) still live anywhere on the sender, is never
//!   [`Fate::Gone`]: a filter change or a rename never deletes a replica.
//! - Nothing is judged gone while the sender's pool of it is missing from
//!   the sender's listing (an exported pool is not a destroyed one), or when
//!   the sender lists no filesystem at all for the job.
//! - A rename is followed only to a matched sender filesystem whose replica
//!   does not exist, and only when exactly one sender filesystem holds the
//!   replica's snapshots; two replicas never rename onto one name.
//! - Destroys come deepest first, after every rename, so a parent goes only
//!   after its children.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use zrelay_endpoint::FsListing;
use zrelay_zfs::DatasetPath;

/// The sender as a replica judgement needs it.
#[derive(Debug, Clone, Copy)]
pub struct SourceSide<'a> {
    /// What the job replicates (its `filesystems`), with versions.
    pub matched: &'a [FsListing],
    /// Every dataset of the sender's pools concerned, matched or not, with versions.
    pub everywhere: &'a [FsListing],
}

/// What became of a replica's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum Fate {
    /// The source was renamed to `to`, which the job replicates and whose
    /// replica does not exist yet.
    Renamed {
        /// The source's new name.
        to: DatasetPath,
    },
    /// The source is gone: nothing on the sender has its name or its snapshots.
    Gone,
    /// Left alone, and why.
    Kept {
        /// Why, for status and the dry run.
        reason: String,
    },
}

/// One receiver filesystem's [`Fate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaFate {
    /// The replica, in the sender's namespace.
    pub fs: DatasetPath,
    /// What became of its source.
    #[serde(flatten)]
    pub fate: Fate,
}

fn kept(fs: &DatasetPath, reason: impl Into<String>) -> ReplicaFate {
    ReplicaFate {
        fs: fs.clone(),
        fate: Fate::Kept {
            reason: reason.into(),
        },
    }
}

/// The fate of every receiver filesystem the job no longer replicates under
/// its name, parents first. Placeholders that still exist on the sender
/// (parents of what is replicated) are left out: they are expected.
pub fn replica_fates(src: SourceSide<'_>, receiver: &[FsListing]) -> Vec<ReplicaFate> {
    let matched: BTreeSet<&DatasetPath> = src.matched.iter().map(|f| &f.path).collect();
    let everywhere: BTreeSet<&DatasetPath> = src.everywhere.iter().map(|f| &f.path).collect();
    let pools: BTreeSet<&str> = src.everywhere.iter().map(|f| f.path.pool()).collect();
    let replicas: BTreeSet<&DatasetPath> = receiver.iter().map(|f| &f.path).collect();
    let mut sorted: Vec<&FsListing> = receiver
        .iter()
        .filter(|r| !matched.contains(&r.path))
        .collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out: Vec<ReplicaFate> = Vec::new();
    let mut renamed_from: Vec<DatasetPath> = Vec::new();
    let mut taken: BTreeSet<DatasetPath> = BTreeSet::new();
    for r in sorted {
        if renamed_from.iter().any(|a| a.is_ancestor_of(&r.path)) {
            continue; // moves with its renamed ancestor
        }
        if everywhere.contains(&r.path) {
            if !r.placeholder {
                out.push(kept(
                    &r.path,
                    "exists on the sender but filesystems does not match it; never touched",
                ));
            }
            continue;
        }
        if src.matched.is_empty() {
            out.push(kept(
                &r.path,
                "the sender lists no filesystem for this job; nothing is judged gone",
            ));
            continue;
        }
        if !pools.contains(r.path.pool()) {
            out.push(kept(
                &r.path,
                format!(
                    "the sender's pool {} is not there; nothing is judged gone while it is missing",
                    r.path.pool()
                ),
            ));
            continue;
        }
        let mut guids: BTreeSet<u64> = r
            .versions
            .iter()
            .filter(|v| v.is_snapshot())
            .map(|v| v.guid)
            .collect();
        if let Some(resume) = &r.resume {
            guids.insert(resume.to_guid);
        }
        if guids.is_empty() {
            // A placeholder or an empty filesystem: gone once nothing under
            // it is kept or renamed (decided below, children first).
            out.push(ReplicaFate {
                fs: r.path.clone(),
                fate: Fate::Gone,
            });
            continue;
        }
        let holders: Vec<&FsListing> = src
            .everywhere
            .iter()
            .filter(|s| s.versions.iter().any(|v| guids.contains(&v.guid)))
            .collect();
        let fate = match holders.as_slice() {
            [] => ReplicaFate {
                fs: r.path.clone(),
                fate: Fate::Gone,
            },
            [one] if !matched.contains(&one.path) => kept(
                &r.path,
                format!(
                    "its snapshots live on as {} on the sender, which filesystems does not match",
                    one.path
                ),
            ),
            [one] if replicas.contains(&one.path) => kept(
                &r.path,
                format!(
                    "its snapshots live on as {} on the sender, whose replica exists already",
                    one.path
                ),
            ),
            [one] if taken.contains(&one.path) => kept(
                &r.path,
                format!("another replica is renamed to {} already", one.path),
            ),
            [one] => {
                taken.insert(one.path.clone());
                renamed_from.push(r.path.clone());
                ReplicaFate {
                    fs: r.path.clone(),
                    fate: Fate::Renamed {
                        to: one.path.clone(),
                    },
                }
            }
            many => kept(
                &r.path,
                format!(
                    "ambiguous: its snapshots live on in {} filesystems on the sender ({}, …)",
                    many.len(),
                    many[0].path
                ),
            ),
        };
        out.push(fate);
    }
    settle_empty(&mut out, receiver);
    out
}

/// An empty filesystem judged gone stays gone only when every receiver
/// filesystem below it is gone too; otherwise it is a parent to keep.
fn settle_empty(out: &mut [ReplicaFate], receiver: &[FsListing]) {
    let gone: BTreeSet<DatasetPath> = out
        .iter()
        .filter(|f| f.fate == Fate::Gone)
        .map(|f| f.fs.clone())
        .collect();
    let empty: BTreeSet<&DatasetPath> = receiver
        .iter()
        .filter(|r| !r.versions.iter().any(|v| v.is_snapshot()) && r.resume.is_none())
        .map(|r| &r.path)
        .collect();
    for f in out.iter_mut() {
        if f.fate != Fate::Gone || !empty.contains(&f.fs) {
            continue;
        }
        let below_kept = receiver
            .iter()
            .any(|r| f.fs.is_ancestor_of(&r.path) && !gone.contains(&r.path));
        if below_kept {
            f.fate = Fate::Kept {
                reason: "a parent of replicas that stay".into(),
            };
        }
    }
}

/// A job's `replicas` rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaRules {
    /// Rename a replica whose source was renamed.
    pub follow_renames: bool,
    /// Destroy a replica whose source has been gone this long; `None`: never.
    pub delete_after: Option<Duration>,
}

/// What to do about one replica now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaAction {
    /// Rename the replica of `fs` to that of `to`.
    Rename {
        /// The replica.
        fs: DatasetPath,
        /// Its source's new name.
        to: DatasetPath,
    },
    /// Destroy the replica of `fs`: its source has been gone since `since`.
    Destroy {
        /// The replica.
        fs: DatasetPath,
        /// When its source was first seen gone.
        since: SystemTime,
    },
    /// The source is gone; the replica goes at `due` unless it comes back.
    Wait {
        /// The replica.
        fs: DatasetPath,
        /// When its source was first seen gone.
        since: SystemTime,
        /// When it will be destroyed.
        due: SystemTime,
    },
    /// Nothing is done.
    Keep {
        /// The replica.
        fs: DatasetPath,
        /// Why.
        reason: String,
    },
}

/// Apply `rules` to `fates`: renames first, then destroys deepest first,
/// then what waits or is kept. `gone_since` says when each gone source was
/// first seen gone (missing: `now`).
pub fn replica_actions(
    fates: &[ReplicaFate],
    rules: ReplicaRules,
    gone_since: &BTreeMap<DatasetPath, SystemTime>,
    now: SystemTime,
) -> Vec<ReplicaAction> {
    let (mut renames, mut destroys, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for f in fates {
        let fs = f.fs.clone();
        match &f.fate {
            Fate::Renamed { to } if rules.follow_renames => {
                renames.push(ReplicaAction::Rename { fs, to: to.clone() })
            }
            Fate::Renamed { to } => rest.push(ReplicaAction::Keep {
                fs,
                reason: format!("its source was renamed to {to}; follow_renames is off"),
            }),
            Fate::Gone => {
                let since = gone_since.get(&fs).copied().unwrap_or(now);
                match rules.delete_after {
                    None => rest.push(ReplicaAction::Keep {
                        fs,
                        reason: "its source is gone; delete_after is not set".into(),
                    }),
                    Some(grace) if now >= since + grace => destroys.push((fs, since)),
                    Some(grace) => rest.push(ReplicaAction::Wait {
                        fs,
                        since,
                        due: since + grace,
                    }),
                }
            }
            Fate::Kept { reason } => rest.push(ReplicaAction::Keep {
                fs,
                reason: reason.clone(),
            }),
        }
    }
    destroys.sort_by_key(|(fs, _)| std::cmp::Reverse(fs.depth()));
    renames.extend(
        destroys
            .into_iter()
            .map(|(fs, since)| ReplicaAction::Destroy { fs, since }),
    );
    renames.extend(rest);
    renames
}

/// The filesystems judged gone, for [`replica_actions`]'s `gone_since` store.
pub fn gone(fates: &[ReplicaFate]) -> Vec<DatasetPath> {
    fates
        .iter()
        .filter(|f| f.fate == Fate::Gone)
        .map(|f| f.fs.clone())
        .collect()
}
