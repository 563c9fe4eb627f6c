//! Protecting and committing steps: this job's step holds, tentative
//! cursors and cursors, batched over many filesystems.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tracing::debug;
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::{BookmarkName, DatasetPath, SnapshotName, VersionRef};

use super::LocalSender;
use crate::abstractions::AbstractionKind;
use crate::error::{EndpointError, Result};
use crate::types::{BatchResult, CommitReq, Guarantee, PrepareReq};

/// Per-filesystem errors of a batch, keyed by filesystem; first error wins.
#[derive(Default)]
struct Errors(BTreeMap<DatasetPath, EndpointError>);

impl Errors {
    fn add(&mut self, fs: &DatasetPath, e: EndpointError) {
        self.0.entry(fs.clone()).or_insert(e);
    }

    fn into_results(
        mut self,
        fss: impl Iterator<Item = DatasetPath>,
    ) -> BatchResult<EndpointError> {
        fss.map(|fs| match self.0.remove(&fs) {
            Some(e) => Err(e),
            None => Ok(()),
        })
        .collect()
    }
}

fn snap(fs: &DatasetPath, name: &str) -> Option<SnapshotName> {
    SnapshotName::new(fs, name).ok()
}

fn bm(fs: &DatasetPath, name: &str) -> Option<BookmarkName> {
    BookmarkName::new(fs, name).ok()
}

impl LocalSender {
    /// The requested filesystems this sender serves; each other one gets a
    /// `NotAllowed` error in `errors`.
    fn allowed<'a>(
        &self,
        fss: impl Iterator<Item = &'a DatasetPath>,
        errors: &mut Errors,
    ) -> Vec<DatasetPath> {
        let mut ok = Vec::new();
        for fs in fss {
            match self.check_allowed(fs) {
                Ok(()) => ok.push(fs.clone()),
                Err(e) => errors.add(fs, e),
            }
        }
        ok
    }

    pub(super) async fn prepare_impl(
        &self,
        reqs: &[PrepareReq],
    ) -> Result<BatchResult<EndpointError>> {
        let mut errors = Errors::default();
        let fss = self.allowed(reqs.iter().map(|r| &r.fs), &mut errors);
        self.discover_step_holds(&fss).await?;
        let tag = self.job.step_hold_tag();
        let mut to_hold: Vec<SnapshotName> = Vec::new();
        let mut to_release: Vec<SnapshotName> = Vec::new();
        let mut tentatives: Vec<(VersionRef, u64, BookmarkName)> = Vec::new();
        let mut stale_bookmarks: Vec<BookmarkName> = Vec::new();
        {
            let state = self.state.lock().unwrap();
            for r in reqs.iter().filter(|r| fss.contains(&r.fs)) {
                let fs = &r.fs;
                let Some(st) = state.get(fs) else { continue };
                let mut live_holds = BTreeSet::new();
                let mut live_tentatives = BTreeSet::new();
                let mut froms = BTreeSet::new();
                let cursors: BTreeSet<u64> = st
                    .job_bookmarks(&self.job)
                    .filter(|(k, _)| *k == AbstractionKind::CursorV2)
                    .map(|(_, v)| v.guid)
                    .collect();
                for step in &r.steps {
                    if let Some(f) = &step.from {
                        froms.insert(f.rel_name());
                    }
                    match step.guarantee() {
                        Guarantee::GuaranteeResumability => {
                            if let Some(f) = step.from.as_ref().filter(|f| f.is_snapshot()) {
                                live_holds.insert(f.name.clone());
                            }
                            live_holds.insert(step.to.name.clone());
                        }
                        Guarantee::GuaranteeIncremental => {
                            let Some(f) = &step.from else { continue };
                            if cursors.contains(&f.guid) {
                                continue;
                            }
                            let name = self.job.tentative_cursor_bookmark(f.guid);
                            match (f.version_ref(fs).ok(), bm(fs, &name)) {
                                (Some(src), Some(b)) => {
                                    live_tentatives.insert(name);
                                    tentatives.push((src, f.guid, b));
                                }
                                _ => errors.add(
                                    fs,
                                    EndpointError::InvalidRequest(format!(
                                        "cannot name a tentative cursor for {}",
                                        f.full_name(fs)
                                    )),
                                ),
                            }
                        }
                        Guarantee::GuaranteeNothing => {}
                    }
                }
                for h in &live_holds {
                    if !st.step_held.contains(h) {
                        to_hold.extend(snap(fs, h));
                    }
                }
                for h in st.step_held.difference(&live_holds) {
                    to_release.extend(snap(fs, h));
                }
                for (kind, v) in st.job_bookmarks(&self.job) {
                    let rel = format!("#{}", v.name);
                    // Never destroy a bookmark a planned step starts from (zrepl #714).
                    if kind == AbstractionKind::TentativeCursor
                        && !live_tentatives.contains(&v.name)
                        && !froms.contains(&rel)
                    {
                        stale_bookmarks.extend(bm(fs, &v.name));
                    }
                }
            }
        }
        debug!(
            hold = to_hold.len(),
            release = to_release.len(),
            tentative = tentatives.len(),
            stale_bookmarks = stale_bookmarks.len(),
            "prepare"
        );
        if !to_hold.is_empty() {
            let res = self
                .zfs
                .hold_many(&to_hold, &tag)
                .await
                .map_err(|e| Self::zfs_err("hold step snapshots", e))?;
            let mut state = self.state.lock().unwrap();
            for (s, r) in to_hold.iter().zip(res) {
                match r {
                    Ok(()) => {
                        if let Some(st) = state.get_mut(s.fs()) {
                            st.step_held.insert(s.name().to_string());
                        }
                    }
                    Err(zrelay_zfs::ZfsError::DatasetDoesNotExist { .. }) => {
                        errors.add(s.fs(), EndpointError::Vanished(s.to_string()))
                    }
                    Err(e) => errors.add(s.fs(), EndpointError::zfs(format!("hold {s}"), e)),
                }
            }
        }
        if !tentatives.is_empty() {
            let res = self
                .zfs
                .bookmark_many(&tentatives)
                .await
                .map_err(|e| Self::zfs_err("create tentative cursors", e))?;
            for ((_, _, b), r) in tentatives.iter().zip(res) {
                if let Err(e) = r {
                    errors.add(b.fs(), EndpointError::zfs(format!("bookmark {b}"), e));
                }
            }
        }
        self.release_and_destroy(&tag, &to_release, &stale_bookmarks, &mut errors)
            .await?;
        Ok(errors.into_results(reqs.iter().map(|r| r.fs.clone())))
    }

    pub(super) async fn commit_impl(
        &self,
        reqs: &[CommitReq],
    ) -> Result<BatchResult<EndpointError>> {
        let mut errors = Errors::default();
        let fss = self.allowed(reqs.iter().map(|r| &r.fs), &mut errors);
        self.discover_step_holds(&fss).await?;
        let mut cursors = Vec::new();
        for r in reqs.iter().filter(|r| fss.contains(&r.fs)) {
            if r.protection.for_step(r.incremental) == Guarantee::GuaranteeNothing {
                continue;
            }
            let name = self.job.cursor_bookmark(r.to.guid);
            // The cursor is made from the snapshot, or copied from a bookmark of it.
            match (r.to.version_ref(&r.fs).ok(), bm(&r.fs, &name)) {
                (Some(s), Some(b)) => cursors.push((s, r.to.guid, b)),
                _ => errors.add(
                    &r.fs,
                    EndpointError::InvalidRequest(format!("cannot name the cursor of {}", r.fs)),
                ),
            }
        }
        let mut new_cursor: HashMap<DatasetPath, String> = HashMap::new();
        if !cursors.is_empty() {
            let res = self
                .zfs
                .bookmark_many(&cursors)
                .await
                .map_err(|e| Self::zfs_err("create replication cursors", e))?;
            for ((_, _, b), r) in cursors.iter().zip(res) {
                match r {
                    Ok(()) => {
                        new_cursor.insert(b.fs().clone(), b.name().to_string());
                    }
                    Err(e) => errors.add(
                        b.fs(),
                        EndpointError::zfs(format!("move replication cursor to {b}"), e),
                    ),
                }
            }
        }
        let tag = self.job.step_hold_tag();
        let mut to_release = Vec::new();
        let mut stale = Vec::new();
        {
            let state = self.state.lock().unwrap();
            for r in reqs.iter().filter(|r| fss.contains(&r.fs)) {
                let fs = &r.fs;
                let Some(st) = state.get(fs) else { continue };
                let cursor_ok = new_cursor.contains_key(fs)
                    || r.protection.for_step(r.incremental) == Guarantee::GuaranteeNothing;
                if !cursor_ok {
                    continue; // keep everything: the old cursor still protects the base
                }
                to_release.extend(st.step_held.iter().filter_map(|h| snap(fs, h)));
                for (kind, v) in st.job_bookmarks(&self.job) {
                    let keep = new_cursor.get(fs) == Some(&v.name);
                    if !keep
                        && matches!(
                            kind,
                            AbstractionKind::CursorV2 | AbstractionKind::TentativeCursor
                        )
                    {
                        stale.extend(bm(fs, &v.name));
                    }
                }
            }
        }
        self.release_and_destroy(&tag, &to_release, &stale, &mut errors)
            .await?;
        // The listing is now out of date for these filesystems: forget it.
        {
            let mut state = self.state.lock().unwrap();
            for fs in &fss {
                state.remove(fs);
            }
        }
        Ok(errors.into_results(reqs.iter().map(|r| r.fs.clone())))
    }

    pub(super) async fn abort_impl(
        &self,
        fss: &[DatasetPath],
    ) -> Result<BatchResult<EndpointError>> {
        let mut errors = Errors::default();
        let allowed = self.allowed(fss.iter(), &mut errors);
        self.discover_step_holds(&allowed).await?;
        let to_release: Vec<SnapshotName> = {
            let state = self.state.lock().unwrap();
            allowed
                .iter()
                .filter_map(|fs| state.get(fs).map(|st| (fs, st)))
                .flat_map(|(fs, st)| st.step_held.iter().filter_map(|h| snap(fs, h)))
                .collect()
        };
        let tag = self.job.step_hold_tag();
        self.release_and_destroy(&tag, &to_release, &[], &mut errors)
            .await?;
        Ok(errors.into_results(fss.iter().cloned()))
    }

    /// Learn which snapshots of `fss` carry this job's step hold: one
    /// `zfs holds` over every snapshot with holds whose tags are not yet known.
    async fn discover_step_holds(&self, fss: &[DatasetPath]) -> Result<()> {
        let mut ask: Vec<SnapshotName> = Vec::new();
        for fs in fss {
            let st = self.state_of(fs).await?;
            if st.holds_known {
                continue;
            }
            for v in &st.versions {
                if v.kind == VersionKind::Snapshot && v.userrefs.unwrap_or(0) > 0 {
                    if let Ok(s) = SnapshotName::new(fs, &v.name) {
                        ask.push(s);
                    }
                }
            }
        }
        let found = if ask.is_empty() {
            Vec::new()
        } else {
            self.zfs
                .holds_many(&ask)
                .await
                .map_err(|e| EndpointError::zfs("list holds", e))?
        };
        let tag = self.job.step_hold_tag();
        let mut state = self.state.lock().unwrap();
        for fs in fss {
            if let Some(st) = state.get_mut(fs) {
                st.holds_known = true;
            }
        }
        for (snap, tags) in found {
            if tags.iter().any(|t| t == &tag) {
                if let Some(st) = state.get_mut(snap.fs()) {
                    st.step_held.insert(snap.name().to_string());
                }
            }
        }
        Ok(())
    }

    async fn release_and_destroy(
        &self,
        tag: &str,
        to_release: &[SnapshotName],
        bookmarks: &[BookmarkName],
        errors: &mut Errors,
    ) -> Result<()> {
        if !to_release.is_empty() {
            let res = self
                .zfs
                .release_many(to_release, tag)
                .await
                .map_err(|e| Self::zfs_err("release step holds", e))?;
            let mut state = self.state.lock().unwrap();
            for (s, r) in to_release.iter().zip(res) {
                match r {
                    Ok(()) => {
                        if let Some(st) = state.get_mut(s.fs()) {
                            st.step_held.remove(s.name());
                        }
                    }
                    Err(e) => errors.add(s.fs(), EndpointError::zfs(format!("release {s}"), e)),
                }
            }
        }
        if !bookmarks.is_empty() {
            let res = self
                .zfs
                .destroy_bookmarks(bookmarks)
                .await
                .map_err(|e| Self::zfs_err("destroy stale bookmarks", e))?;
            let mut state = self.state.lock().unwrap();
            for (b, r) in bookmarks.iter().zip(res) {
                match r {
                    Ok(()) => {
                        if let Some(st) = state.get_mut(b.fs()) {
                            st.versions.retain(|v| {
                                !(v.kind == VersionKind::Bookmark && v.name == b.name())
                            });
                        }
                    }
                    Err(e) => errors.add(b.fs(), EndpointError::zfs(format!("destroy {b}"), e)),
                }
            }
        }
        Ok(())
    }
}
