//! The diff of two version lists: zrepl's `diff.IncrementalPath`.

use std::cmp::Ordering;

use zrelay_endpoint::FsVersion;

use crate::Conflict;

/// The planner's total order on versions: `createtxg`, then bookmarks before snapshots
/// (so that walking from the newest end finds a snapshot before a bookmark with the same
/// GUID), then name; GUID and creation only break ties between otherwise equal versions.
pub(crate) fn version_order(a: &FsVersion, b: &FsVersion) -> Ordering {
    a.createtxg
        .cmp(&b.createtxg)
        .then_with(|| a.is_snapshot().cmp(&b.is_snapshot()))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.guid.cmp(&b.guid))
        .then_with(|| a.creation.cmp(&b.creation))
}

/// Returns `versions` sorted oldest first by `(createtxg, bookmark before snapshot, name)`.
/// The input order does not matter.
pub fn sort_versions(versions: &[FsVersion]) -> Vec<FsVersion> {
    let mut sorted = versions.to_vec();
    sorted.sort_by(version_order);
    sorted
}

/// The sorted snapshots of `versions`.
pub(crate) fn sorted_snapshots(versions: &[FsVersion]) -> Vec<FsVersion> {
    let mut snaps: Vec<FsVersion> = versions
        .iter()
        .filter(|v| v.is_snapshot())
        .cloned()
        .collect();
    snaps.sort_by(version_order);
    snaps
}

/// Appends to `path` every snapshot of the sorted `rest` whose GUID differs from the
/// last element of `path`: the incremental chain after `path`'s last version.
pub(crate) fn extend_with_snapshots<'a>(
    path: &mut Vec<FsVersion>,
    rest: impl IntoIterator<Item = &'a FsVersion>,
) {
    for v in rest {
        if v.is_snapshot() && path.last().is_none_or(|last| last.guid != v.guid) {
            path.push(v.clone());
        }
    }
}

/// The incremental path from the receiver's newest snapshot to the sender's newest
/// snapshot: `[common, s1, s2, ...]`, where `common` is the sender's version with the
/// GUID of the receiver's newest snapshot (a snapshot if the sender has one, otherwise a
/// bookmark such as the replication cursor) and `s1, s2, ...` are the later sender
/// snapshots. Consecutive pairs are the steps. On success the path has at least two
/// elements.
///
/// Only the receiver's snapshots are considered; its bookmarks are ignored. The input
/// order of either list does not matter.
///
/// Errors:
/// - [`Conflict::NoCommonAncestor`]: no receiver snapshot shares a GUID with any sender
///   version.
/// - [`Conflict::Diverged`]: the most recent common snapshot is not the receiver's newest.
/// - [`Conflict::MostRecentAlreadyPresent`]: nothing newer to send.
/// - With no receiver snapshot at all this is initial replication, which needs a policy
///   ([`plan`](crate::plan()) has one); here it behaves like [`crate::InitialPolicy::Fail`]:
///   [`Conflict::NoSenderSnapshots`] or [`Conflict::InitialReplicationRefused`].
pub fn incremental_path(
    receiver: &[FsVersion],
    sender: &[FsVersion],
) -> Result<Vec<FsVersion>, Conflict> {
    let receiver = sorted_snapshots(receiver);
    let sender = sort_versions(sender);

    let Some(receiver_newest) = receiver.last() else {
        return Err(match sender.iter().rev().find(|v| v.is_snapshot()) {
            Some(newest) => Conflict::InitialReplicationRefused {
                sender_newest: newest.clone(),
            },
            None => Conflict::NoSenderSnapshots,
        });
    };

    // Most recent common ancestor: the newest receiver snapshot with a GUID on the
    // sender; on the sender side the newest match, which by the sort order is a
    // snapshot when there is both a snapshot and a bookmark with that GUID.
    let mrca = receiver.iter().enumerate().rev().find_map(|(r, rv)| {
        sender
            .iter()
            .rposition(|sv| sv.guid == rv.guid)
            .map(|s| (r, s))
    });
    let Some((r, s)) = mrca else {
        return Err(Conflict::NoCommonAncestor {
            sender_newest: sender.last().cloned(),
            receiver_newest: receiver_newest.clone(),
        });
    };
    if r != receiver.len() - 1 {
        return Err(Conflict::Diverged {
            common: receiver[r].clone(),
            receiver_newer: receiver[r + 1..].to_vec(),
        });
    }

    let mut path = vec![sender[s].clone()];
    extend_with_snapshots(&mut path, &sender[s + 1..]);
    if path.len() == 1 {
        return Err(Conflict::MostRecentAlreadyPresent {
            newest: path.remove(0),
        });
    }
    Ok(path)
}
