//! Snapshots, bookmarks and holds of the fake, and destroying them.

use std::collections::{BTreeSet, HashSet};

use zrelay_zfs::api::{DestroyReport, DestroyTarget, VersionRef};
use zrelay_zfs::error::{Result, ZfsError};
use zrelay_zfs::name::{BookmarkName, DatasetPath, SnapshotName};
use zrelay_zfs::parse::{DestroyFailure, DestroyReason};

use super::state::{cmd_err, missing, Mark, Snap, State};

impl State {
    pub fn snapshot(&mut self, snaps: &[SnapshotName]) -> Result<()> {
        if snaps.is_empty() {
            return Ok(());
        }
        let cmd = format!(
            "zfs snapshot {}",
            snaps
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut seen = HashSet::new();
        for s in snaps {
            if s.fs().pool() != snaps[0].fs().pool() {
                return Err(cmd_err(
                    cmd,
                    "cannot create snapshots : cross-pool snapshots are not allowed",
                ));
            }
            if !seen.insert(s.fs()) {
                let msg = format!(
                    "cannot create snapshot '{s}': multiple snapshots of same fs not allowed"
                );
                return Err(cmd_err(cmd, msg));
            }
            let Some(ds) = self.datasets.get(s.fs()) else {
                return Err(cmd_err(
                    cmd,
                    format!("cannot create snapshot '{s}': dataset does not exist"),
                ));
            };
            if ds.snaps.contains_key(s.name()) {
                return Err(cmd_err(
                    cmd,
                    format!("cannot create snapshot '{s}': dataset already exists"),
                ));
            }
            if ds.incomplete {
                return Err(cmd_err(
                    cmd,
                    format!("cannot create snapshot '{s}': dataset is busy"),
                ));
            }
        }
        let txg = self.next_txg();
        for s in snaps {
            let guid = self.new_guid();
            let ds = self.ds_mut(s.fs())?;
            let snap = Snap {
                guid,
                createtxg: txg,
                creation: State::creation_of(txg),
                data: ds.data,
                holds: BTreeSet::new(),
            };
            ds.snaps.insert(s.name().to_string(), snap);
        }
        Ok(())
    }

    pub fn bookmark(&mut self, from: &VersionRef, guid: u64, bm: &BookmarkName) -> Result<()> {
        let ds = self.datasets.get(from.fs()).ok_or_else(|| missing(from))?;
        let src = match from {
            VersionRef::Snapshot(s) => ds.snaps.get(s.name()).map(|s| Mark {
                guid: s.guid,
                createtxg: s.createtxg,
                creation: s.creation,
                data: s.data,
            }),
            VersionRef::Bookmark(b) => ds.marks.get(b.name()).cloned(),
        }
        .ok_or_else(|| missing(from))?;
        if bm.fs() != from.fs() {
            let msg = format!("cannot create bookmark '{bm}': bookmarks must be in the same filesystem as the source");
            return Err(cmd_err(format!("zfs bookmark {from} {bm}"), msg));
        }
        let ds = self.ds_mut(bm.fs())?;
        if let Some(existing) = ds.marks.get(bm.name()) {
            if existing.guid == guid {
                return Ok(());
            }
            return Err(ZfsError::BookmarkExists {
                bookmark: bm.to_string(),
                existing: existing.guid,
                expected: guid,
            });
        }
        ZfsError::check_guid(&from.to_string(), src.guid, guid)?;
        ds.marks.insert(bm.name().to_string(), src);
        Ok(())
    }

    fn snap_mut(&mut self, snap: &SnapshotName) -> Result<&mut Snap> {
        let ds = self
            .datasets
            .get_mut(snap.fs())
            .ok_or_else(|| missing(snap))?;
        ds.snaps.get_mut(snap.name()).ok_or_else(|| missing(snap))
    }

    pub fn hold(&mut self, snap: &SnapshotName, tag: &str) -> Result<()> {
        self.snap_mut(snap)?.holds.insert(tag.to_string());
        Ok(())
    }

    pub fn release(&mut self, snap: &SnapshotName, tag: &str) {
        if let Ok(s) = self.snap_mut(snap) {
            s.holds.remove(tag);
        }
    }

    pub fn holds(&mut self, snap: &SnapshotName) -> Result<Vec<String>> {
        Ok(self.snap_mut(snap)?.holds.iter().cloned().collect())
    }

    /// `zfs destroy fs@a,b,c` followed by `RealZfs`'s retry of the destroyable ones.
    pub fn destroy_snapshots(
        &mut self,
        fs: &DatasetPath,
        names: &[String],
    ) -> Result<DestroyReport> {
        if names.is_empty() {
            return Ok(DestroyReport::default());
        }
        for n in names {
            SnapshotName::new(fs, n)?;
        }
        zrelay_zfs::api::check_destroy_batch(fs, names)?;
        let cmd = format!("zfs destroy {fs}@{}", names.join(","));
        let Some(ds) = self.datasets.get_mut(fs) else {
            return Err(cmd_err(
                cmd,
                format!("cannot open '{fs}': dataset does not exist"),
            ));
        };
        let existing: Vec<&String> = names.iter().filter(|n| ds.snaps.contains_key(*n)).collect();
        if existing.is_empty() {
            return Err(cmd_err(
                cmd,
                "could not find any snapshots to destroy; check snapshot names.",
            ));
        }
        let held: Vec<String> = existing
            .iter()
            .filter(|n| !ds.snaps[n.as_str()].holds.is_empty())
            .map(|n| n.to_string())
            .collect();
        if held.is_empty() {
            for n in names {
                ds.snaps.remove(n);
            }
            return Ok(DestroyReport {
                destroyed: names.to_vec(),
                failed: Vec::new(),
            });
        }
        // zfs destroys nothing when one fails; RealZfs retries the others
        let rest: Vec<String> = names
            .iter()
            .filter(|n| !held.contains(n))
            .cloned()
            .collect();
        let mut report = if rest.is_empty() {
            DestroyReport::default()
        } else {
            self.destroy_snapshots(fs, &rest)?
        };
        report
            .failed
            .extend(held.into_iter().map(|n| DestroyFailure {
                snapshot: format!("{fs}@{n}"),
                reason: DestroyReason::Held,
            }));
        Ok(report)
    }

    pub fn destroy(&mut self, target: &DestroyTarget) -> Result<()> {
        target.check_no_range()?;
        let cmd = format!("zfs destroy {target}");
        match target {
            DestroyTarget::Dataset(fs) => {
                self.ds(fs)?;
                if fs.is_pool() {
                    let msg = format!(
                        "cannot destroy '{fs}': operation does not apply to pools\nuse 'zfs destroy -r {fs}' to \
                         destroy all datasets in the pool\nuse 'zpool destroy {fs}' to destroy the pool itself"
                    );
                    return Err(cmd_err(cmd, msg));
                }
                let ds = self.ds(fs)?;
                let mut deps: Vec<String> = self
                    .datasets
                    .keys()
                    .filter(|p| p.parent().as_ref() == Some(fs))
                    .map(|p| p.to_string())
                    .collect();
                deps.extend(ds.snaps.keys().map(|s| format!("{fs}@{s}")));
                if !deps.is_empty() {
                    let msg = format!(
                        "cannot destroy '{fs}': filesystem has children\nuse '-r' to destroy the following datasets:\n{}",
                        deps.join("\n")
                    );
                    return Err(cmd_err(cmd, msg));
                }
                self.datasets.remove(fs);
                Ok(())
            }
            DestroyTarget::Snapshot(s) => {
                let held = !self.snap_mut(s)?.holds.is_empty();
                if held {
                    let msg = format!("cannot destroy snapshot {s}: it's being held. Run 'zfs holds -r {s}' to see holders.");
                    return Err(cmd_err(cmd, msg));
                }
                self.ds_mut(s.fs())?.snaps.remove(s.name());
                Ok(())
            }
            DestroyTarget::Bookmark(b) => {
                let ds = self.datasets.get_mut(b.fs()).ok_or_else(|| missing(b))?;
                ds.marks
                    .remove(b.name())
                    .map(drop)
                    .ok_or_else(|| missing(b))
            }
        }
    }

    pub fn rollback(&mut self, snap: &SnapshotName) -> Result<()> {
        let ds = self
            .datasets
            .get_mut(snap.fs())
            .ok_or_else(|| missing(snap))?;
        let s = ds.snaps.get(snap.name()).ok_or_else(|| missing(snap))?;
        let txg = s.createtxg;
        let data = s.data;
        let mut later: Vec<(u64, String)> = ds
            .snaps
            .iter()
            .filter(|(_, o)| o.createtxg > txg)
            .map(|(n, o)| (o.createtxg, format!("{}@{n}", snap.fs())))
            .collect();
        later.extend(
            ds.marks
                .iter()
                .filter(|(_, m)| m.createtxg > txg)
                .map(|(n, m)| (m.createtxg, format!("{}#{n}", snap.fs()))),
        );
        if !later.is_empty() {
            later.sort();
            let names: Vec<String> = later.into_iter().map(|(_, n)| n).collect();
            let msg = format!(
                "cannot rollback to '{snap}': more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the \
                 following snapshots and bookmarks:\n{}",
                names.join("\n")
            );
            return Err(cmd_err(format!("zfs rollback {snap}"), msg));
        }
        ds.data = data;
        Ok(())
    }

    /// `zfs rename from to`: the filesystem and its descendants move; GUIDs,
    /// snapshots, bookmarks and holds go with them.
    pub fn rename(&mut self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        for d in [from, to] {
            DestroyTarget::Dataset(d.clone()).check_no_range()?;
        }
        let cmd = format!("zfs rename {from} {to}");
        self.ds(from)?;
        if from.pool() != to.pool() {
            return Err(cmd_err(
                cmd,
                format!("cannot rename to '{to}': datasets must be within same pool"),
            ));
        }
        if from.is_pool() || from.is_ancestor_of(to) {
            return Err(cmd_err(
                cmd,
                format!("cannot rename '{from}': New dataset name cannot be a descendant of current dataset name"),
            ));
        }
        if self.datasets.contains_key(to) {
            return Err(cmd_err(
                cmd,
                format!("cannot rename to '{to}': dataset already exists"),
            ));
        }
        match to.parent() {
            Some(p) if self.datasets.contains_key(&p) => {}
            _ => {
                return Err(cmd_err(
                    cmd,
                    format!("cannot rename to '{to}': parent does not exist"),
                ))
            }
        }
        let moving: Vec<DatasetPath> = self
            .datasets
            .keys()
            .filter(|p| p.has_prefix(from))
            .cloned()
            .collect();
        for old in moving {
            let rel = old.strip_prefix(from).unwrap_or_default();
            let new = to
                .join(&rel)
                .map_err(|e| cmd_err(format!("zfs rename {from} {to}"), e.to_string()))?;
            if let Some(ds) = self.datasets.remove(&old) {
                self.datasets.insert(new, ds);
            }
        }
        Ok(())
    }
}
