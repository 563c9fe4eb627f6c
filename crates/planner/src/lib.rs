//! `zrelay-planner`: decides, per filesystem, which replication steps bring a
//! receiver up to date with a sender (zrepl's `replication/logic` planning and
//! `diff.IncrementalPath`).
//!
//! Invariants:
//! - Pure: no I/O, no async, no clock, no randomness. The output depends only on the
//!   listings and the policy, never on the order of filesystems or versions in the
//!   input (versions are sorted by `(createtxg, bookmark before snapshot, name)` first).
//! - Steps chain by GUID: step `i + 1`'s `from` has the GUID of step `i`'s `to`. Every
//!   `to` is a sender snapshot, with strictly increasing `createtxg`, and the last `to`
//!   is the sender's newest snapshot. Only the first `from` may be a bookmark (the
//!   replication cursor when the common snapshot was destroyed on the sender).
//! - An incremental plan starts from the receiver's *newest* snapshot. The planner never
//!   plans to overwrite a receiver: unrelated history is
//!   [`Conflict::NoCommonAncestor`], receiver snapshots newer than the most recent
//!   common one are [`Conflict::Diverged`], and neither ever yields a step.
//! - Only the receiver's snapshots take part in the diff (a receive needs a snapshot as
//!   its base); receiver bookmarks are ignored.
//! - A partial receive (resume token) on the receiver always wins: it is resumed first.

use std::fmt;

use serde::{Deserialize, Serialize};
use zrelay_endpoint::{FsVersion, ResumeState};
use zrelay_zfs::{Classify, DatasetPath, ErrorClass};

mod diff;
mod plan;
mod replicas;

pub use diff::{incremental_path, sort_versions};
pub use plan::{plan, plan_fs};
pub use replicas::{
    gone, replica_actions, replica_fates, Fate, ReplicaAction, ReplicaFate, ReplicaRules,
    SourceSide,
};

/// What to do when the receiver has no snapshot of a filesystem yet
/// (zrepl's `conflict_resolution.initial_replication`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialPolicy {
    /// Send only the sender's newest snapshot (full).
    #[default]
    MostRecent,
    /// Send the oldest snapshot (full), then every later snapshot incrementally.
    All,
    /// Refuse: report [`Conflict::InitialReplicationRefused`].
    Fail,
}

impl InitialPolicy {
    /// zrepl's config spelling: `most_recent`, `all` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            InitialPolicy::MostRecent => "most_recent",
            InitialPolicy::All => "all",
            InitialPolicy::Fail => "fail",
        }
    }
}

impl fmt::Display for InitialPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One planned send: `to`, incrementally from `from` (or full), possibly resuming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The incremental source (a sender snapshot, or for the first step possibly a
    /// bookmark); `None` for a full send.
    pub from: Option<FsVersion>,
    /// The sender snapshot to send.
    pub to: FsVersion,
    /// The receiver's partial receive this step resumes (first step only).
    pub resume: Option<ResumeState>,
}

impl PlannedStep {
    /// Whether this is an incremental send.
    pub fn is_incremental(&self) -> bool {
        self.from.is_some()
    }
}

impl fmt::Display for PlannedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(f, "{from} => {}", self.to)?,
            None => write!(f, "full {}", self.to)?,
        }
        if self.resume.is_some() {
            f.write_str(" (resuming)")?;
        }
        Ok(())
    }
}

/// What the receiver has of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverState {
    /// The receiver has no such filesystem.
    Absent,
    /// A placeholder (only created so that children can be received); counts as
    /// having no versions.
    Placeholder,
    /// A real filesystem.
    Present,
}

/// The plan for one sender filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsPlan {
    /// The filesystem, in the sender's namespace.
    pub fs: DatasetPath,
    /// What the receiver has of it.
    pub receiver: ReceiverState,
    /// `Ok` with at least one step, or why nothing (more) can be sent.
    /// [`Conflict::is_up_to_date`] distinguishes "nothing to do" from real conflicts.
    pub result: Result<Vec<PlannedStep>, Conflict>,
    /// The sender's cursor ([`zrelay_endpoint::FsListing::cursor_guid`]) is not at
    /// the receiver's newest snapshot, which the sender still has as a snapshot:
    /// `Some(that sender snapshot)`, so that the driver moves the cursor (and the
    /// receiver's last-received hold) to it. Either up to date, or the planned
    /// steps start from it (not when they resume: the receiver's resume state
    /// keeps their protection). The cursor lags after a run whose steps were
    /// received but whose commit failed; until it moves, the receiver's newest
    /// snapshot is protected on the sender only by a step hold, which a failed
    /// later attempt may release, and once pruning destroyed it the two sides
    /// would have diverged (campaign bug 9).
    pub reconcile: Option<FsVersion>,
}

impl FsPlan {
    /// The planned steps; empty when up to date or in conflict.
    pub fn steps(&self) -> &[PlannedStep] {
        self.result.as_deref().unwrap_or(&[])
    }

    /// Whether the receiver already has the sender's newest version.
    pub fn is_up_to_date(&self) -> bool {
        matches!(&self.result, Err(c) if c.is_up_to_date())
    }

    /// The conflict that prevents replication (not counting "up to date").
    pub fn conflict(&self) -> Option<&Conflict> {
        self.result.as_ref().err().filter(|c| !c.is_up_to_date())
    }
}

/// Why no (more) steps can be planned for a filesystem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The receiver has snapshots, but none shares a GUID with any sender version.
    #[error("{}", fmt_no_common(.sender_newest.as_ref(), .receiver_newest))]
    NoCommonAncestor {
        /// The sender's newest version, `None` if the sender has none at all.
        sender_newest: Option<FsVersion>,
        /// The receiver's newest snapshot.
        receiver_newest: FsVersion,
    },
    /// The receiver has snapshots newer than the most recent common ancestor.
    #[error(
        "diverged: receiver has snapshot{} {} newer than the most recent common snapshot \
         {common}; the sender does not have them. Nothing will be overwritten; to \
         continue, destroy them on the receiver (`zfs rollback -r` to {common})",
        if .receiver_newer.len() == 1 { "" } else { "s" },
        fmt_list(.receiver_newer)
    )]
    Diverged {
        /// The most recent common snapshot, as the receiver has it.
        common: FsVersion,
        /// The receiver's snapshots after `common`, oldest first (never empty).
        receiver_newer: Vec<FsVersion>,
    },
    /// Nothing to do: the receiver already has the sender's newest version (the driver
    /// treats this as success).
    #[error("up to date: the receiver already has the sender's most recent version {newest} (guid {})", .newest.guid)]
    MostRecentAlreadyPresent {
        /// The sender's version (usually a snapshot) that the receiver has as its newest.
        newest: FsVersion,
    },
    /// The sender has no snapshot of the filesystem.
    #[error("the sender has no snapshots of this filesystem: nothing to replicate")]
    NoSenderSnapshots,
    /// The receiver has no snapshot and the initial replication policy is `fail`.
    #[error(
        "initial replication refused: the receiver has no snapshots of this filesystem and \
         conflict_resolution.initial_replication is `fail` (the sender's newest snapshot is \
         {sender_newest})"
    )]
    InitialReplicationRefused {
        /// The sender's newest snapshot.
        sender_newest: FsVersion,
    },
    /// The receiver's partial receive targets a snapshot the sender no longer has.
    #[error(
        "the receiver has a partial receive of {to_name} (guid {to_guid}), but the sender no \
         longer has that snapshot; abort the partial receive on the receiver \
         (`zfs receive -A`) to replicate again"
    )]
    ResumeTokenNotOnSender {
        /// `toguid` of the resume token.
        to_guid: u64,
        /// `toname` of the resume token.
        to_name: String,
    },
    /// The receiver's resume token has the same GUID for its source and its target.
    #[error(
        "invalid resume token on the receiver: its incremental source and target are the \
         same version (guid {guid}); abort the partial receive (`zfs receive -A`)"
    )]
    ResumeTokenFromIsTo {
        /// The GUID of both ends.
        guid: u64,
    },
}

impl Classify for Conflict {
    /// Always permanent: the same listings plan the same conflict (the
    /// driver treats "up to date" as success before it asks).
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

impl Conflict {
    /// Whether this is not a conflict but "nothing to do".
    pub fn is_up_to_date(&self) -> bool {
        matches!(self, Conflict::MostRecentAlreadyPresent { .. })
    }
}

fn fmt_no_common(sender_newest: Option<&FsVersion>, receiver_newest: &FsVersion) -> String {
    match sender_newest {
        Some(sender_newest) => format!(
            "no common snapshot: none of the receiver's snapshots (newest: {receiver_newest}) \
             has the GUID of a snapshot or bookmark on the sender (newest: {sender_newest}), so \
             the receiver's filesystem has unrelated history. Nothing will be overwritten; to \
             replicate, rename or destroy the receiver's filesystem so that an initial \
             replication starts over"
        ),
        None => format!(
            "no common snapshot: the sender has no snapshots or bookmarks of this filesystem, \
             while the receiver has snapshots (newest: {receiver_newest}). Nothing will be \
             overwritten on the receiver"
        ),
    }
}

fn fmt_list(vs: &[FsVersion]) -> String {
    vs.iter()
        .map(FsVersion::rel_name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
