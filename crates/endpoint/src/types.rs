//! The messages that pass between the replication engine and its endpoints.
//! They carry names in the *sender's* namespace: a receiver maps them under its
//! root and never shows its own root to the planner. All types are plain data
//! (serde), so the same messages later travel over the network unchanged.

use serde::{Deserialize, Serialize};
use zrelay_zfs::name::{NameError, VersionKind};
use zrelay_zfs::parse::Version;
use zrelay_zfs::{BookmarkName, DatasetPath, SnapshotName, VersionRef};

/// A snapshot or bookmark of a filesystem, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FsVersion {
    /// Snapshot or bookmark.
    pub kind: VersionKind,
    /// The short name after `@` or `#`.
    pub name: String,
    /// `guid` (a bookmark has the guid of its snapshot).
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation`, seconds since the epoch.
    pub creation: i64,
}

impl FsVersion {
    /// Whether this is a snapshot.
    pub fn is_snapshot(&self) -> bool {
        self.kind == VersionKind::Snapshot
    }

    /// `@name` or `#name`.
    pub fn rel_name(&self) -> String {
        format!("{}{}", self.kind.delimiter(), self.name)
    }

    /// `fs@name` or `fs#name`.
    pub fn full_name(&self, fs: &DatasetPath) -> String {
        format!("{fs}{}", self.rel_name())
    }

    /// This version of `fs` as a validated snapshot or bookmark name.
    pub fn version_ref(&self, fs: &DatasetPath) -> Result<VersionRef, NameError> {
        Ok(match self.kind {
            VersionKind::Snapshot => VersionRef::Snapshot(SnapshotName::new(fs, &self.name)?),
            VersionKind::Bookmark => VersionRef::Bookmark(BookmarkName::new(fs, &self.name)?),
        })
    }
}

impl From<&Version> for FsVersion {
    fn from(v: &Version) -> Self {
        FsVersion {
            kind: v.kind,
            name: v.name.clone(),
            guid: v.guid,
            createtxg: v.createtxg,
            creation: v.creation,
        }
    }
}

impl std::fmt::Display for FsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.rel_name())
    }
}

/// A partial receive on the receiver, its token decoded by `zrelay_zfs::resume_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    /// The raw `receive_resume_token`.
    pub token: String,
    /// `toguid` of the interrupted stream.
    pub to_guid: u64,
    /// `fromguid`; `None` for an interrupted full send.
    pub from_guid: Option<u64>,
    /// `toname` as the sender named it (for messages only).
    pub to_name: String,
    /// Bytes already received.
    pub bytes: u64,
}

/// One filesystem of an endpoint, with everything planning needs, from one listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsListing {
    /// The path in the sender's namespace.
    pub path: DatasetPath,
    /// Receiver only: this is a placeholder (created by zrelay/zrepl so that
    /// children can be received); it counts as having no versions.
    pub placeholder: bool,
    /// The filesystem is encrypted.
    pub encrypted: bool,
    /// Receiver only: a partial receive that can be resumed.
    pub resume: Option<ResumeState>,
    /// Sender only: the GUID this job's replication cursor points at.
    pub cursor_guid: Option<u64>,
    /// Snapshots and bookmarks, oldest first (createtxg, bookmarks before snapshots).
    pub versions: Vec<FsVersion>,
}

impl FsListing {
    /// A listing with no versions and no special state.
    pub fn new(path: DatasetPath) -> Self {
        FsListing {
            path,
            placeholder: false,
            encrypted: false,
            resume: None,
            cursor_guid: None,
            versions: Vec::new(),
        }
    }
}

/// What a replication step must guarantee while and after it runs (zrepl's
/// `replication.protection` kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Step holds on `from` and `to`: an interrupted step can always be resumed.
    #[default]
    GuaranteeResumability,
    /// A tentative cursor bookmark on `from`: an incremental step from `from`
    /// stays possible, though an interrupted step may have to restart.
    GuaranteeIncremental,
    /// No abstractions at all.
    GuaranteeNothing,
}

impl Guarantee {
    /// zrepl's config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::GuaranteeResumability => "guarantee_resumability",
            Guarantee::GuaranteeIncremental => "guarantee_incremental",
            Guarantee::GuaranteeNothing => "guarantee_nothing",
        }
    }
}

/// `replication.protection`: one guarantee for initial (full) steps, one for incremental steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Protection {
    /// For full sends.
    pub initial: Guarantee,
    /// For incremental sends.
    pub incremental: Guarantee,
}

impl Protection {
    /// The guarantee that applies to a step (full when `from` is `None`).
    pub fn for_step(&self, incremental: bool) -> Guarantee {
        if incremental {
            self.incremental
        } else {
            self.initial
        }
    }
}

/// One replication step: send `to` (from `from`, or full), possibly resuming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReq {
    /// Filesystem, in the sender's namespace.
    pub fs: DatasetPath,
    /// Incremental source; `None` for a full send.
    pub from: Option<FsVersion>,
    /// The snapshot to send.
    pub to: FsVersion,
    /// Resume this token instead of starting over.
    pub resume_token: Option<String>,
    /// The guarantees of the job.
    pub protection: Protection,
}

impl StepReq {
    /// The guarantee of this step.
    pub fn guarantee(&self) -> Guarantee {
        self.protection.for_step(self.from.is_some())
    }
}

impl std::fmt::Display for StepReq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{}: {} => {}", self.fs, from, self.to)?,
            None => write!(f, "{}: full {}", self.fs, self.to)?,
        }
        if self.resume_token.is_some() {
            write!(f, " (resuming)")?;
        }
        Ok(())
    }
}

/// Protect all the steps planned for one filesystem before any of them runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareReq {
    /// Filesystem, in the sender's namespace.
    pub fs: DatasetPath,
    /// The steps, in order.
    pub steps: Vec<StepReq>,
}

/// A filesystem whose steps are done up to `to`: move the receiver's
/// last-received hold and the sender's cursor to it, release step protection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReq {
    /// Filesystem, in the sender's namespace.
    pub fs: DatasetPath,
    /// The newest snapshot now on the receiver, with its GUID.
    pub to: FsVersion,
    /// The guarantees of the job (decides which abstractions stay).
    pub protection: Protection,
    /// Whether the last step was incremental (picks the guarantee).
    pub incremental: bool,
}

/// Per-request outcomes of a batched call, in request order.
pub type BatchResult<E> = Vec<Result<(), E>>;

/// Outcome of destroying snapshots of one filesystem (pruning): what went,
/// and what stayed and why (held snapshots are reported, never forced).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyOutcome {
    /// Short names destroyed.
    pub destroyed: Vec<String>,
    /// Short names kept, with the reason.
    pub kept: Vec<(String, String)>,
}
