//! Per-filesystem planning: zrepl's `Filesystem.doPlanning` and
//! `tryAutoresolveConflict`, without the I/O.

use std::collections::HashMap;

use zrelay_endpoint::{FsListing, FsVersion, ResumeState};
use zrelay_zfs::DatasetPath;

use crate::diff::{extend_with_snapshots, incremental_path, sort_versions, sorted_snapshots};
use crate::{Conflict, FsPlan, InitialPolicy, PlannedStep, ReceiverState};

/// Plans every sender filesystem: one [`FsPlan`] per entry of `sender`, sorted by path
/// (component-wise, so parents come before their children).
///
/// Both listings are in the sender's namespace and are matched by path. Receiver
/// filesystems without a sender counterpart are ignored. For each filesystem, in order:
/// 1. A partial receive on the receiver (`resume`) is resumed, followed by incrementals
///    over the sender's later snapshots; the receiver's versions are not consulted.
/// 2. A receiver that is absent, a placeholder, or has no snapshots gets an initial
///    replication according to `policy`.
/// 3. Otherwise the steps follow [`incremental_path`].
///
/// The result does not depend on the order of filesystems or versions in the input.
pub fn plan(sender: &[FsListing], receiver: &[FsListing], policy: InitialPolicy) -> Vec<FsPlan> {
    let mut senders: Vec<&FsListing> = sender.iter().collect();
    senders.sort_by(|a, b| a.path.cmp(&b.path));
    // The first receiver listing of each path (as a linear search would find).
    let mut by_path: HashMap<&DatasetPath, &FsListing> = HashMap::with_capacity(receiver.len());
    for r in receiver {
        by_path.entry(&r.path).or_insert(r);
    }
    senders
        .into_iter()
        .map(|s| plan_fs(s, by_path.get(&s.path).copied(), policy))
        .collect()
}

/// Plans one filesystem; `receiver` is the receiver's listing of the same path, if any.
pub fn plan_fs(sender: &FsListing, receiver: Option<&FsListing>, policy: InitialPolicy) -> FsPlan {
    let state = match receiver {
        None => ReceiverState::Absent,
        Some(r) if r.placeholder => ReceiverState::Placeholder,
        Some(_) => ReceiverState::Present,
    };
    let sender_versions = sort_versions(&sender.versions);

    let result = if let Some(resume) = receiver.and_then(|r| r.resume.as_ref()) {
        resume_steps(&sender_versions, resume)
    } else {
        let receiver_snaps = match (state, receiver) {
            (ReceiverState::Present, Some(r)) => sorted_snapshots(&r.versions),
            _ => Vec::new(),
        };
        if receiver_snaps.is_empty() {
            initial_steps(&sender_versions, policy)
        } else {
            incremental_path(&receiver_snaps, &sender_versions).map(|path| steps_from_path(&path))
        }
    };

    // The receiver's newest snapshot, when the sender still has it as a
    // snapshot and its cursor is elsewhere: up to date, or the base of
    // fresh (not resumed) incremental steps.
    let common = match &result {
        Err(Conflict::MostRecentAlreadyPresent { newest }) => Some(newest),
        Ok(steps) => steps
            .first()
            .filter(|s| s.resume.is_none())
            .and_then(|s| s.from.as_ref()),
        Err(_) => None,
    };
    let reconcile = common
        .filter(|c| sender.cursor_guid != Some(c.guid))
        .and_then(|c| {
            sender_versions
                .iter()
                .rev()
                .find(|v| v.is_snapshot() && v.guid == c.guid)
                .cloned()
        });

    FsPlan {
        fs: sender.path.clone(),
        receiver: state,
        result,
        reconcile,
    }
}

/// Consecutive pairs of an incremental path, as steps without resume state.
fn steps_from_path(path: &[FsVersion]) -> Vec<PlannedStep> {
    path.windows(2)
        .map(|w| PlannedStep {
            from: Some(w[0].clone()),
            to: w[1].clone(),
            resume: None,
        })
        .collect()
}

/// The receiver has no snapshot: a full send, by policy. `sender` is sorted.
fn initial_steps(
    sender: &[FsVersion],
    policy: InitialPolicy,
) -> Result<Vec<PlannedStep>, Conflict> {
    let snaps: Vec<&FsVersion> = sender.iter().filter(|v| v.is_snapshot()).collect();
    let (Some(&oldest), Some(&newest)) = (snaps.first(), snaps.last()) else {
        return Err(Conflict::NoSenderSnapshots);
    };
    match policy {
        InitialPolicy::MostRecent => Ok(vec![full_step(newest)]),
        InitialPolicy::All => {
            let mut path = vec![oldest.clone()];
            extend_with_snapshots(&mut path, snaps.iter().copied());
            let mut steps = vec![full_step(oldest)];
            steps.extend(steps_from_path(&path));
            Ok(steps)
        }
        InitialPolicy::Fail => Err(Conflict::InitialReplicationRefused {
            sender_newest: newest.clone(),
        }),
    }
}

fn full_step(to: &FsVersion) -> PlannedStep {
    PlannedStep {
        from: None,
        to: to.clone(),
        resume: None,
    }
}

/// Resume the receiver's partial receive, then continue over the sender's later
/// snapshots. `sender` is sorted.
fn resume_steps(sender: &[FsVersion], resume: &ResumeState) -> Result<Vec<PlannedStep>, Conflict> {
    let Some(to_idx) = sender
        .iter()
        .rposition(|v| v.is_snapshot() && v.guid == resume.to_guid)
    else {
        return Err(Conflict::ResumeTokenNotOnSender {
            to_guid: resume.to_guid,
            to_name: resume.to_name.clone(),
        });
    };
    if resume.from_guid == Some(resume.to_guid) {
        return Err(Conflict::ResumeTokenFromIsTo {
            guid: resume.to_guid,
        });
    }
    // Newest match first: by the sort order, a snapshot before a same-GUID bookmark.
    // A source the sender no longer has is left `None`, as zrepl does: `zfs send -t`
    // then reports that the incremental source no longer exists.
    let from = resume
        .from_guid
        .and_then(|g| sender.iter().rev().find(|v| v.guid == g))
        .cloned();
    let to = &sender[to_idx];

    let mut steps = vec![PlannedStep {
        from,
        to: to.clone(),
        resume: Some(resume.clone()),
    }];
    let mut path = vec![to.clone()];
    extend_with_snapshots(&mut path, &sender[to_idx + 1..]);
    steps.extend(steps_from_path(&path));
    Ok(steps)
}
