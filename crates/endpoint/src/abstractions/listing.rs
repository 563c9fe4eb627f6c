//! Listing, staleness and removal of zrepl's abstractions, as zrepl's
//! `zfs-abstraction list|release-all|release-stale` do it
//! (`endpoint/endpoint_zfs_abstraction.go`, v0.7).
//!
//! Staleness follows zrepl's `listStaleFiltering`, per (filesystem, job):
//! - step holds: if there is a v2 replication cursor, those on snapshots at or
//!   before the newest cursor (by `createtxg`) are stale, newer ones are live
//!   (they protect an in-flight step); without a cursor (an initial
//!   replication), all but the newest step hold are stale;
//! - v2 replication cursors and last-received holds: all but the newest are stale;
//! - tentative cursors and the legacy v1 cursor are always live.
//!
//! The job is taken from the name only; whether it is in some configuration
//! does not matter (zrepl's `release-stale` needs no configuration).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::{ListedDataset, Version};
use zrelay_zfs::{BookmarkName, DatasetPath, SnapshotName, Zfs, ZfsError};

use super::{parse_bookmark, parse_hold_tag, AbstractionKind};

/// One abstraction found on ZFS: a hold on a snapshot, or a bookmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abstraction {
    /// Its kind.
    pub kind: AbstractionKind,
    /// The filesystem.
    pub fs: DatasetPath,
    /// Short name of the held snapshot or of the bookmark.
    pub version: String,
    /// The hold tag (holds only).
    pub hold_tag: Option<String>,
    /// The job named in the tag or bookmark (`None` for the legacy v1 cursor).
    pub job: Option<String>,
    /// GUID of the snapshot or bookmark.
    pub guid: u64,
    /// `createtxg` of the snapshot or bookmark.
    pub createtxg: u64,
}

impl Abstraction {
    /// `fs@snapshot` or `fs#bookmark`.
    pub fn full_path(&self) -> String {
        let delim = if self.hold_tag.is_some() { '@' } else { '#' };
        format!("{}{delim}{}", self.fs, self.version)
    }

    fn sort_key(&self) -> (&DatasetPath, u64, AbstractionKind, &str, Option<&str>) {
        (
            &self.fs,
            self.createtxg,
            self.kind,
            &self.version,
            self.hold_tag.as_deref(),
        )
    }
}

/// zrepl's rendering: `step-hold "zrepl_STEP_J_j" on pool/fs@s` for holds,
/// `replication-cursor-bookmark-v2 pool/fs#zrepl_CURSOR_…` for bookmarks.
impl std::fmt::Display for Abstraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hold_tag {
            Some(tag) => write!(f, "{} {tag:?} on {}", self.kind.as_str(), self.full_path()),
            None => write!(f, "{} {}", self.kind.as_str(), self.full_path()),
        }
    }
}

/// The bookmark `v` of `fs` as an abstraction. A cursor whose name carries
/// another GUID than the bookmark's is not one (zrepl ignores it too).
pub fn bookmark_abstraction(fs: &DatasetPath, v: &Version) -> Option<Abstraction> {
    if v.kind != VersionKind::Bookmark {
        return None;
    }
    let parsed = parse_bookmark(&v.name)?;
    if parsed.guid.is_some_and(|g| g != v.guid) {
        return None;
    }
    Some(Abstraction {
        kind: parsed.kind,
        fs: fs.clone(),
        version: v.name.clone(),
        hold_tag: None,
        job: parsed.job,
        guid: v.guid,
        createtxg: v.createtxg,
    })
}

/// The hold `tag` on snapshot `v` of `fs` as an abstraction, if it is one.
pub fn hold_abstraction(fs: &DatasetPath, v: &Version, tag: &str) -> Option<Abstraction> {
    if v.kind != VersionKind::Snapshot {
        return None;
    }
    let (kind, job) = parse_hold_tag(tag)?;
    Some(Abstraction {
        kind,
        fs: fs.clone(),
        version: v.name.clone(),
        hold_tag: Some(tag.to_string()),
        job: Some(job),
        guid: v.guid,
        createtxg: v.createtxg,
    })
}

/// Which abstractions a command is about: `--type` and `--job`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbstractionFilter {
    /// The kinds; empty means all.
    pub kinds: BTreeSet<AbstractionKind>,
    /// The jobs; empty means any. As in zrepl, an abstraction without a job
    /// (the legacy cursor) passes any job filter.
    pub jobs: BTreeSet<String>,
}

impl AbstractionFilter {
    /// The kinds asked for (all when none was named).
    pub fn effective_kinds(&self) -> BTreeSet<AbstractionKind> {
        if self.kinds.is_empty() {
            AbstractionKind::ALL.into_iter().collect()
        } else {
            self.kinds.clone()
        }
    }

    /// Whether `a` passes.
    pub fn matches(&self, a: &Abstraction) -> bool {
        let kind = self.kinds.is_empty() || self.kinds.contains(&a.kind);
        let job = self.jobs.is_empty() || a.job.as_ref().is_none_or(|j| self.jobs.contains(j));
        kind && job
    }

    fn wants_holds(&self) -> bool {
        self.effective_kinds().iter().any(|k| k.is_hold())
    }
}

/// The snapshots of `datasets` that may carry holds (`userrefs` not 0).
pub fn snapshots_with_holds(datasets: &[ListedDataset]) -> Result<Vec<SnapshotName>, ZfsError> {
    let mut out = Vec::new();
    for d in datasets {
        for v in &d.versions {
            if v.kind == VersionKind::Snapshot && v.userrefs != Some(0) {
                out.push(SnapshotName::new(&d.path, &v.name)?);
            }
        }
    }
    Ok(out)
}

/// The abstractions in `datasets` (with `holds`, the hold tags of their
/// snapshots) that pass `filter`, sorted by filesystem, then `createtxg`.
pub fn collect_abstractions(
    datasets: &[ListedDataset],
    holds: &[(SnapshotName, Vec<String>)],
    filter: &AbstractionFilter,
) -> Vec<Abstraction> {
    let tags: HashMap<String, &Vec<String>> =
        holds.iter().map(|(s, t)| (s.to_string(), t)).collect();
    let mut out = Vec::new();
    for d in datasets {
        for v in &d.versions {
            match v.kind {
                VersionKind::Bookmark => out.extend(bookmark_abstraction(&d.path, v)),
                VersionKind::Snapshot => {
                    let full = v.full_name(&d.path);
                    for t in tags.get(&full).map(|t| t.as_slice()).unwrap_or_default() {
                        out.extend(hold_abstraction(&d.path, v, t));
                    }
                }
            }
        }
    }
    out.retain(|a| filter.matches(a));
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out.dedup();
    out
}

/// [`collect_abstractions`] on the live system: one [`Zfs::holds_many`] for
/// every snapshot with holds (none when no hold kind is asked for).
pub async fn list_abstractions(
    zfs: &dyn Zfs,
    datasets: &[ListedDataset],
    filter: &AbstractionFilter,
) -> Result<Vec<Abstraction>, ZfsError> {
    let held = if filter.wants_holds() {
        snapshots_with_holds(datasets)?
    } else {
        Vec::new()
    };
    let holds = if held.is_empty() {
        Vec::new()
    } else {
        zfs.holds_many(&held).await?
    };
    Ok(collect_abstractions(datasets, &holds, filter))
}

/// A filter that asks for step holds without replication cursors or the
/// other way round ([`check_stale_kinds`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "finding stale abstractions needs both types {} and {} (or neither): step holds are judged by the replication cursors",
    AbstractionKind::StepHold.as_str(),
    AbstractionKind::CursorV2.as_str()
)]
pub struct StaleKindsError;

/// zrepl's precondition of `release-stale`: step holds are judged by the
/// replication cursors, so asking for one of the two needs the other.
pub fn check_stale_kinds(filter: &AbstractionFilter) -> Result<(), StaleKindsError> {
    let kinds = filter.effective_kinds();
    let step = kinds.contains(&AbstractionKind::StepHold);
    let cursor = kinds.contains(&AbstractionKind::CursorV2);
    if step != cursor {
        return Err(StaleKindsError);
    }
    Ok(())
}

/// Abstractions split into those still needed and the stale ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staleness {
    /// Still needed.
    pub live: Vec<Abstraction>,
    /// Safe to remove.
    pub stale: Vec<Abstraction>,
}

/// Split `abs` as zrepl's `listStaleFiltering` does (see the module docs).
/// Both halves come out sorted like [`collect_abstractions`].
pub fn partition_stale(abs: Vec<Abstraction>) -> Staleness {
    type Key = (DatasetPath, String);
    let mut newest_cursor: HashMap<Key, u64> = HashMap::new();
    let mut newest_step: HashMap<Key, u64> = HashMap::new();
    let mut groups: BTreeMap<(Key, AbstractionKind), Vec<Abstraction>> = BTreeMap::new();
    let mut out = Staleness::default();
    for a in abs {
        let Some(job) = a.job.clone() else {
            out.live.push(a);
            continue;
        };
        let key = (a.fs.clone(), job);
        let newest = match a.kind {
            AbstractionKind::CursorV2 => Some(&mut newest_cursor),
            AbstractionKind::StepHold => Some(&mut newest_step),
            _ => None,
        };
        if let Some(m) = newest {
            let e = m.entry(key.clone()).or_insert(a.createtxg);
            *e = (*e).max(a.createtxg);
        }
        groups.entry((key, a.kind)).or_default().push(a);
    }
    for ((key, kind), mut list) in groups {
        match kind {
            AbstractionKind::StepHold => {
                let cursor = newest_cursor.get(&key).copied();
                let step = newest_step.get(&key).copied();
                for a in list {
                    let stale = match (cursor, step) {
                        (Some(c), _) => a.createtxg <= c,
                        (None, Some(s)) => a.createtxg < s,
                        (None, None) => true,
                    };
                    if stale {
                        out.stale.push(a);
                    } else {
                        out.live.push(a);
                    }
                }
            }
            AbstractionKind::CursorV2 | AbstractionKind::LastReceivedHold => {
                list.sort_by(|a, b| b.sort_key().cmp(&a.sort_key()));
                let mut it = list.into_iter();
                out.live.extend(it.next());
                out.stale.extend(it);
            }
            AbstractionKind::TentativeCursor | AbstractionKind::CursorV1 => out.live.extend(list),
        }
    }
    out.live.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out.stale.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}

/// Remove `abs`: release the holds (one [`Zfs::release_many`] per tag) and
/// destroy the bookmarks (one [`Zfs::destroy_bookmarks`]). One result per
/// abstraction, in order; the outer error is a batch that could not run.
pub async fn release_abstractions(
    zfs: &dyn Zfs,
    abs: &[Abstraction],
) -> Result<Vec<Result<(), ZfsError>>, ZfsError> {
    let mut out: Vec<Option<Result<(), ZfsError>>> = abs.iter().map(|_| None).collect();
    let mut by_tag: BTreeMap<&str, Vec<(usize, SnapshotName)>> = BTreeMap::new();
    let mut bookmarks: Vec<(usize, BookmarkName)> = Vec::new();
    for (i, a) in abs.iter().enumerate() {
        let named = match &a.hold_tag {
            Some(tag) => SnapshotName::new(&a.fs, &a.version)
                .map(|s| by_tag.entry(tag.as_str()).or_default().push((i, s))),
            None => BookmarkName::new(&a.fs, &a.version).map(|b| bookmarks.push((i, b))),
        };
        if let Err(e) = named {
            out[i] = Some(Err(e.into()));
        }
    }
    for (tag, items) in by_tag {
        let snaps: Vec<SnapshotName> = items.iter().map(|(_, s)| s.clone()).collect();
        let results = zfs.release_many(&snaps, tag).await?;
        for ((i, _), r) in items.into_iter().zip(results) {
            out[i] = Some(r);
        }
    }
    if !bookmarks.is_empty() {
        let names: Vec<BookmarkName> = bookmarks.iter().map(|(_, b)| b.clone()).collect();
        let results = zfs.destroy_bookmarks(&names).await?;
        for ((i, _), r) in bookmarks.into_iter().zip(results) {
            out[i] = Some(r);
        }
    }
    Ok(out
        .into_iter()
        .zip(abs)
        .map(|(r, a)| {
            r.unwrap_or_else(|| {
                Err(ZfsError::Unsupported(format!(
                    "the ZFS layer returned no result for {a}"
                )))
            })
        })
        .collect())
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
