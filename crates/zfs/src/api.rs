//! The [`Zfs`] trait: every ZFS operation zrelay performs, implemented by the
//! real command wrapper ([`crate::real::RealZfs`]) and the in-memory fake
//! (`zrelay_fake::FakeZfs`). Both pass the same behavioural suite
//! (`zrelay_testing::conformance`); both crates are test-only.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ZfsError};
use crate::name::{BookmarkName, DatasetPath, SnapshotName};
use crate::parse::{DestroyFailure, ListedDataset, ResumeTokenInfo, SendEstimate, Version};
use crate::process::{RecvSink, SendStream};
use crate::send_args::ValidatedSendArgs;

/// A snapshot or a bookmark, by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VersionRef {
    /// `fs@name`
    Snapshot(SnapshotName),
    /// `fs#name`
    Bookmark(BookmarkName),
}

impl VersionRef {
    /// The filesystem the version belongs to.
    pub fn fs(&self) -> &DatasetPath {
        match self {
            VersionRef::Snapshot(s) => s.fs(),
            VersionRef::Bookmark(b) => b.fs(),
        }
    }
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionRef::Snapshot(s) => s.fmt(f),
            VersionRef::Bookmark(b) => b.fmt(f),
        }
    }
}

/// Anything `zfs destroy` can take (one at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyTarget {
    /// A filesystem or volume, never recursively.
    Dataset(DatasetPath),
    /// A snapshot.
    Snapshot(SnapshotName),
    /// A bookmark.
    Bookmark(BookmarkName),
}

impl std::fmt::Display for DestroyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DestroyTarget::Dataset(d) => d.fmt(f),
            DestroyTarget::Snapshot(s) => s.fmt(f),
            DestroyTarget::Bookmark(b) => b.fmt(f),
        }
    }
}

impl DestroyTarget {
    /// Defence in depth, checked before any `zfs destroy` command is built: a destroy
    /// target never holds a `%`. In `zfs destroy`, `fs@a%b` is a range of snapshots and
    /// `fs@%` all of them, and ZFS never creates a name with `%` (see
    /// [`validate_peer`](crate::name::validate_peer)).
    pub fn check_no_range(&self) -> std::result::Result<(), crate::name::NameError> {
        let kind = match self {
            DestroyTarget::Dataset(_) => crate::name::NameKind::Dataset,
            DestroyTarget::Snapshot(_) => crate::name::NameKind::Snapshot,
            DestroyTarget::Bookmark(_) => crate::name::NameKind::Bookmark,
        };
        crate::name::validate_peer(&self.to_string(), kind)
    }
}

/// [`DestroyTarget::check_no_range`] for a batched snapshot destroy (`fs@a,b,c`): neither
/// the filesystem nor any short name may hold a `%`.
pub fn check_destroy_batch(
    fs: &DatasetPath,
    names: &[String],
) -> std::result::Result<(), crate::name::NameError> {
    use crate::name::{validate_peer, NameKind};
    validate_peer(fs.as_str(), NameKind::Dataset)?;
    for n in names {
        if n.contains('%') {
            validate_peer(&format!("{fs}@{n}"), NameKind::Snapshot)?;
        }
    }
    Ok(())
}

/// Outcome of a batched snapshot destroy: what went, and what stayed and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestroyReport {
    /// Short names destroyed.
    pub destroyed: Vec<String>,
    /// Snapshots that could not be destroyed, with their reasons.
    pub failed: Vec<DestroyFailure>,
}

/// A property's value and where it comes from (`local`, `default`, `inherited from …`, `-`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyValue {
    /// The value, as `zfs get -Hp` prints it.
    pub value: String,
    /// The source column.
    pub source: String,
}

/// Options for `zfs recv` (never `-F`: see [`Zfs::recv_force_rollback`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvArgs {
    /// The filesystem to receive into.
    pub fs: DatasetPath,
    /// `-s`: save a resumable partial state on interruption.
    pub resumable: bool,
    /// `-u`: do not mount.
    pub unmounted: bool,
    /// `-o prop=value` for each entry.
    pub override_props: Vec<(String, String)>,
    /// `-x prop` for each entry.
    pub inherit_props: Vec<String>,
    /// The snapshot the stream must produce, and its GUID; checked after the receive.
    pub expect: Option<(String, u64)>,
}

impl RecvArgs {
    /// Plain resumable, unmounted receive into `fs`.
    pub fn new(fs: DatasetPath) -> Self {
        RecvArgs {
            fs,
            resumable: true,
            unmounted: true,
            override_props: Vec::new(),
            inherit_props: Vec::new(),
            expect: None,
        }
    }
}

/// The OpenZFS version and what it supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZfsVersion {
    /// Userland version, e.g. `2.3.2`.
    pub userland: String,
    /// Kernel module version, when it is loaded.
    pub kmod: Option<String>,
    /// `(major, minor, patch)` of the userland.
    pub numeric: (u32, u32, u32),
}

impl ZfsVersion {
    /// Parse `zfs version` output (`zfs-2.3.2-2~bpo12+2` / `zfs-kmod-2.3.2-…`).
    pub fn parse(out: &str) -> Option<ZfsVersion> {
        let mut userland = None;
        let mut kmod = None;
        for line in out.lines().map(str::trim) {
            if let Some(v) = line.strip_prefix("zfs-kmod-") {
                kmod = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("zfs-") {
                userland = Some(v.to_string());
            }
        }
        let userland = userland?;
        let numeric = numeric_version(&userland)?;
        Some(ZfsVersion {
            userland,
            kmod,
            numeric,
        })
    }

    /// `X.Y.Z` without the packaging suffix.
    pub fn short(&self) -> String {
        let (a, b, c) = self.numeric;
        format!("{a}.{b}.{c}")
    }

    /// `(major, minor, patch)` of the kernel module, when it is loaded and
    /// its version reads as one.
    pub fn kmod_numeric(&self) -> Option<(u32, u32, u32)> {
        numeric_version(self.kmod.as_deref()?)
    }

    /// The older of the userland and the loaded module, as
    /// `(major, minor, patch)`: what a command can rely on, since it needs
    /// both.
    pub fn oldest(&self) -> (u32, u32, u32) {
        self.kmod_numeric()
            .map_or(self.numeric, |k| k.min(self.numeric))
    }

    /// Whether the userland and the loaded module are different releases
    /// (an upgrade waiting for a reboot or a module reload).
    pub fn mismatched(&self) -> bool {
        self.kmod_numeric().is_some_and(|k| k != self.numeric)
    }

    /// What zrelay relies on, as far as the versions tell: the older of the
    /// userland and the loaded module decides, since a command needs both.
    pub fn features(&self) -> Features {
        let have = self.oldest();
        let at_least = |v: (u32, u32, u32)| have >= v;
        Features {
            resumable_send_recv: at_least((0, 7, 0)),
            bookmarks: at_least((0, 6, 4)),
            encryption: at_least((0, 8, 0)),
            bookmark_copy: at_least((2, 0, 0)),
        }
    }
}

/// `(major, minor, patch)` of a version string such as `2.3.2-2~bpo12+2`;
/// missing minor or patch parts are 0.
fn numeric_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut nums = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    Some((
        nums.next()?,
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
    ))
}

/// Feature flags derived from the OpenZFS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// `zfs recv -s` / `zfs send -t`.
    pub resumable_send_recv: bool,
    /// Bookmarks, and incremental sends from them.
    pub bookmarks: bool,
    /// Native encryption and raw sends.
    pub encryption: bool,
    /// `zfs bookmark fs#a fs#b`.
    pub bookmark_copy: bool,
}

/// The GUID in `props`, the `zfs get` result of `name`, as [`Zfs::guid`] reads it.
pub(crate) fn guid_in(name: &str, props: &BTreeMap<String, PropertyValue>) -> Result<u64> {
    let v = props
        .get("guid")
        .map(|p| p.value.clone())
        .unwrap_or_default();
    v.parse()
        .map_err(|_| ZfsError::SendValidation(format!("{name:?} has no numeric guid ({v:?})")))
}

/// Every ZFS operation zrelay performs.
#[async_trait]
pub trait Zfs: Send + Sync {
    /// The whole subtree at `root` (included) in ONE listing: filesystems and
    /// volumes with their properties and all their snapshots and bookmarks.
    ///
    /// # Errors
    /// [`ZfsError::DatasetDoesNotExist`] when `root` is missing.
    async fn list(&self, root: &DatasetPath) -> Result<Vec<ListedDataset>>;

    /// The imported pools (`zpool list -H -o name`), sorted. Used for
    /// zrepl's `<` filter pattern (every dataset of every pool).
    ///
    /// The default says [`ZfsError::Unsupported`], for wrappers that do not
    /// need it; `RealZfs` and `FakeZfs` implement it.
    async fn pools(&self) -> Result<Vec<DatasetPath>> {
        Err(ZfsError::Unsupported(
            "listing pools is not implemented by this ZFS".into(),
        ))
    }

    /// The feature flags of `pool` (`zpool get all`, the `feature@` rows).
    ///
    /// The default says [`ZfsError::Unsupported`]: callers then assume the
    /// features they need are there, and the command that needs one says so.
    async fn pool_features(&self, pool: &str) -> Result<crate::parse::PoolFeatures> {
        Err(ZfsError::Unsupported(format!(
            "reading the feature flags of pool {pool} is not implemented by this ZFS"
        )))
    }

    /// Snapshots and bookmarks of `fs` alone, oldest first. None is an empty list.
    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<Version>> {
        let all = self.list_depth1(fs).await?;
        Ok(all
            .into_iter()
            .find(|d| &d.path == fs)
            .map(|d| d.versions)
            .unwrap_or_default())
    }

    /// `fs` and its direct children, with versions (used by `list_versions`).
    async fn list_depth1(&self, fs: &DatasetPath) -> Result<Vec<ListedDataset>>;

    /// `zfs get` of some properties of a dataset, snapshot or bookmark (full name).
    async fn get(&self, name: &str, props: &[&str]) -> Result<BTreeMap<String, PropertyValue>>;

    /// The GUID of a dataset, snapshot or bookmark (full name).
    async fn guid(&self, name: &str) -> Result<u64> {
        guid_in(name, &self.get(name, &["guid"]).await?)
    }

    /// `zfs set`.
    async fn set(&self, ds: &DatasetPath, props: &[(String, String)]) -> Result<()>;

    /// `zfs inherit`.
    async fn inherit(&self, ds: &DatasetPath, prop: &str) -> Result<()>;

    /// `zfs create` (never `-p`), with properties.
    async fn create(&self, fs: &DatasetPath, props: &[(String, String)]) -> Result<()>;

    /// Snapshot several datasets atomically, in one `zfs snapshot` call.
    async fn snapshot(&self, snaps: &[SnapshotName]) -> Result<()>;

    /// Create `bookmark` from `from` (a snapshot, or a bookmark to copy) whose
    /// GUID must be `guid`. Idempotent: an existing bookmark with that GUID is
    /// success; one with another GUID is [`ZfsError::BookmarkExists`].
    ///
    /// Checked in this order: a missing `from` is [`ZfsError::DatasetDoesNotExist`]
    /// naming `from`; then an existing `bookmark` is compared as above; then a `from`
    /// whose GUID is not `guid` is [`ZfsError::GuidMismatch`] naming `from`, and
    /// nothing is created.
    async fn bookmark(&self, from: &VersionRef, guid: u64, bookmark: &BookmarkName) -> Result<()>;

    /// Hold `snap` with `tag`; idempotent.
    async fn hold(&self, snap: &SnapshotName, tag: &str) -> Result<()>;

    /// Release `tag` from `snap`; idempotent (an absent tag or snapshot is fine).
    async fn release(&self, snap: &SnapshotName, tag: &str) -> Result<()>;

    /// The hold tags on `snap`.
    async fn holds(&self, snap: &SnapshotName) -> Result<Vec<String>>;

    /// Destroy snapshots of `fs` in one batched call (`fs@a,b,c`), reporting
    /// each one that could not be destroyed with its reason.
    async fn destroy_snapshots(&self, fs: &DatasetPath, names: &[String]) -> Result<DestroyReport>;

    /// Destroy one dataset (never recursive), snapshot or bookmark.
    async fn destroy(&self, target: &DestroyTarget) -> Result<()>;

    /// [`Zfs::destroy`] that treats "does not exist" as success.
    async fn destroy_idempotent(&self, target: &DestroyTarget) -> Result<()> {
        match self.destroy(target).await {
            Err(e) if e.is_does_not_exist() => Ok(()),
            other => other,
        }
    }

    /// `zfs rollback` to the most recent snapshot `snap` (never `-r`).
    async fn rollback(&self, snap: &SnapshotName) -> Result<()>;

    /// `zfs rename from to` of a filesystem (never `-p`, `-r` or `-f`): its
    /// children, snapshots and bookmarks move with it, and GUIDs and holds are
    /// kept. Fails when `to` exists or its parent does not.
    async fn rename(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()>;

    /// Decode a resume token. Pure ([`crate::resume_token::decode`]): no
    /// command runs, and implementations should not override it.
    async fn resume_token_info(&self, token: &str) -> Result<ResumeTokenInfo> {
        crate::resume_token::decode(token).map_err(|e| ZfsError::SendValidation(e.to_string()))
    }

    /// Size estimate for a validated send (`zfs send -nvP`).
    async fn send_dry(&self, args: &ValidatedSendArgs) -> Result<SendEstimate>;

    /// Start a validated send.
    async fn send(&self, args: &ValidatedSendArgs) -> Result<Box<dyn SendStream>>;

    /// Start a receive (`zfs recv`, with `-s`/`-u`/`-o`/`-x` as asked, never `-F`).
    async fn recv(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>>;

    /// Start a receive with `-F`, which rolls back and may destroy what is on
    /// the target. Only for zrelay's own placeholders or a user's explicit opt-in.
    async fn recv_force_rollback(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>>;

    /// Discard a partial receive state (`zfs recv -A`).
    async fn recv_abort(&self, fs: &DatasetPath) -> Result<()>;

    /// OpenZFS version of userland and kernel module.
    async fn version(&self) -> Result<ZfsVersion>;

    // ---- Batched operations. The defaults loop over the single-item calls;
    // `RealZfs` overrides them with one command for the whole batch, falling
    // back to the loop when that command fails, so the results are the same.
    // Exception: `destroy_bookmarks` stays a loop on the real system, since
    // `zfs destroy` takes one bookmark per call (OpenZFS 2.3) and channel
    // programs cannot destroy bookmarks.

    /// `zfs get` of `props` on several datasets, snapshots or bookmarks (full
    /// names) at once. Each name maps to its own result, so one missing name
    /// does not hide the others. `RealZfs` refuses a name that fails validation
    /// with [`ZfsError::Name`] without running anything for it.
    async fn get_many(
        &self,
        names: &[String],
        props: &[&str],
    ) -> Result<Vec<(String, Result<BTreeMap<String, PropertyValue>>)>> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push((n.clone(), self.get(n, props).await));
        }
        Ok(out)
    }

    /// Hold each snapshot with `tag`; idempotent per snapshot. Returns one
    /// result per snapshot, in order.
    async fn hold_many(&self, snaps: &[SnapshotName], tag: &str) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(snaps.len());
        for s in snaps {
            out.push(self.hold(s, tag).await);
        }
        Ok(out)
    }

    /// Release `tag` from each snapshot; idempotent per snapshot.
    async fn release_many(&self, snaps: &[SnapshotName], tag: &str) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(snaps.len());
        for s in snaps {
            out.push(self.release(s, tag).await);
        }
        Ok(out)
    }

    /// The hold tags of several snapshots. A snapshot that vanished maps to no tags.
    async fn holds_many(&self, snaps: &[SnapshotName]) -> Result<Vec<(SnapshotName, Vec<String>)>> {
        let mut out = Vec::with_capacity(snaps.len());
        for s in snaps {
            match self.holds(s).await {
                Ok(tags) => out.push((s.clone(), tags)),
                Err(e) if e.is_does_not_exist() => out.push((s.clone(), Vec::new())),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Create several bookmarks, each from `(from, guid)` like [`Zfs::bookmark`].
    /// One result per request, in order. `RealZfs` runs one `zfs program` per
    /// pool (plus one `zfs get` when some sources are bookmarks and one when some
    /// bookmarks already exist).
    async fn bookmark_many(
        &self,
        reqs: &[(VersionRef, u64, BookmarkName)],
    ) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(reqs.len());
        for (from, guid, bm) in reqs {
            out.push(self.bookmark(from, *guid, bm).await);
        }
        Ok(out)
    }

    /// Destroy several bookmarks (of any filesystems); idempotent per bookmark.
    async fn destroy_bookmarks(&self, bookmarks: &[BookmarkName]) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(bookmarks.len());
        for b in bookmarks {
            out.push(
                self.destroy_idempotent(&DestroyTarget::Bookmark(b.clone()))
                    .await,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parse() {
        let v = ZfsVersion::parse("zfs-2.3.2-2~bpo12+2\nzfs-kmod-2.3.2-2~bpo12+2\n").unwrap();
        assert_eq!(v.numeric, (2, 3, 2));
        assert_eq!(v.short(), "2.3.2");
        assert_eq!(v.kmod.as_deref(), Some("2.3.2-2~bpo12+2"));
        assert!(v.features().bookmark_copy);
        let old = ZfsVersion::parse("zfs-0.7.13-1\n").unwrap();
        assert!(!old.features().encryption);
        assert!(old.features().resumable_send_recv);
        assert!(ZfsVersion::parse("garbage").is_none());
    }

    #[test]
    fn the_older_of_userland_and_module_decides() {
        let v = ZfsVersion::parse("zfs-2.1.11-1+deb12u1\nzfs-kmod-2.1.11-1+deb12u1\n").unwrap();
        assert!(!v.mismatched());
        // an upgraded userland over a module still at 0.7: no encryption yet
        let v = ZfsVersion::parse("zfs-2.3.2-2\nzfs-kmod-0.7.13-1\n").unwrap();
        assert!(v.mismatched());
        assert_eq!(v.kmod_numeric(), Some((0, 7, 13)));
        assert!(!v.features().encryption && v.features().resumable_send_recv);
        // no module loaded: the userland decides
        let v = ZfsVersion::parse("zfs-2.3.2-2\n").unwrap();
        assert!(!v.mismatched() && v.features().bookmark_copy);
    }
}
