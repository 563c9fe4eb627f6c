//! The plan for one filesystem of a side: the rules' decisions plus the
//! protection of what replication still needs. Pure; [`crate::prune`]
//! executes it.
//!
//! Cursor, after zrepl's `daemon/pruner/pruner.go` (`doOneAttempt`):
//! - **sender**: the filesystem's replication cursor (`FsListing::cursor_guid`)
//!   is required, whatever the rules; without it the filesystem is not pruned
//!   ("one successful replication is required before pruning works"). zrelay
//!   does not report this for a filesystem without snapshots (nothing to prune). Its
//!   `createtxg` is that of the cursor bookmark (= of its snapshot). zrepl
//!   instead looks for the cursor's snapshot and, when it is gone, treats every
//!   snapshot as not replicated; comparing `createtxg` with the bookmark gives
//!   the same answer while the snapshot exists and the right one after it is
//!   destroyed.
//! - **receiver**: zrepl uses the *sender's* cursor GUID, located among the
//!   receiver's snapshots (createtxgs of two pools do not compare). zrelay gets
//!   those GUIDs as `protect`. If the receiver lacks that snapshot, nothing
//!   counts as replicated (as in zrepl). The snapshot at the cursor never
//!   counts as replicated on the receiver (zrepl: "senseless here anyways").
//!   Unlike zrepl, a receiver filesystem without a cursor GUID is still pruned
//!   when no rule needs the cursor: the receiver's newest snapshot is kept anyway.
//! - **local** (snap jobs): no cursor; `not_replicated` is refused, as zrepl's
//!   single-site pruner does.
//!
//! Protection (zrelay; in zrepl only holds protect these):
//! - on every side, each snapshot whose GUID is in `protect` for this
//!   filesystem: `protected: incremental base (replication cursor GUID)`;
//! - on the receiver, the newest snapshot (`protected: newest snapshot (base of
//!   the next incremental)`), and the base of a resumable partial receive.
//! - On the sender nothing more: the cursor bookmark is the incremental base
//!   and step holds protect steps in flight; the snapshot at the cursor stays
//!   only if `not_replicated` keeps it (`keep_snapshot_at_cursor`).

use zrelay_endpoint::FsListing;

use crate::error::PruneError;
use crate::evaluate::{evaluate_compiled, order_key, Cursor, Decision, Snap};
use crate::report::SideKind;
use crate::rules::{compile, Compiled, KeepRule};

/// Reason for a snapshot whose GUID the caller protects.
pub const PROTECTED_BASE: &str = "protected: incremental base (replication cursor GUID)";
/// Reason for the receiver's newest snapshot.
pub const PROTECTED_NEWEST: &str = "protected: newest snapshot (base of the next incremental)";
/// Reason for the `from` of a resumable partial receive.
pub const PROTECTED_RESUME: &str = "protected: base of the resumable partial receive";

/// Rules compiled for one side.
pub(crate) fn compile_for(side: SideKind, rules: &[KeepRule]) -> Result<Vec<Compiled>, PruneError> {
    for_side(side, compile(rules)?)
}

/// Compiled rules as `side` applies them: a snap job cannot use
/// `not_replicated`; the receiver always keeps the snapshot at the cursor.
pub(crate) fn for_side(
    side: SideKind,
    mut compiled: Vec<Compiled>,
) -> Result<Vec<Compiled>, PruneError> {
    let has_not_replicated = compiled
        .iter()
        .any(|r| matches!(r, Compiled::NotReplicated { .. }));
    match side {
        SideKind::Local if has_not_replicated => Err(PruneError::Unsupported(
            "single-site pruner cannot support `not_replicated` keep rule".into(),
        )),
        SideKind::Receiver => {
            for r in &mut compiled {
                if let Compiled::NotReplicated { keep_at_cursor } = r {
                    *keep_at_cursor = true;
                }
            }
            Ok(compiled)
        }
        _ => Ok(compiled),
    }
}

/// The snapshots of `listing`, oldest first (bookmarks are never subjects).
pub(crate) fn snapshots(listing: &FsListing) -> Vec<Snap> {
    let mut snaps: Vec<Snap> = listing
        .versions
        .iter()
        .filter(|v| v.is_snapshot())
        .map(Snap::from)
        .collect();
    snaps.sort_by(|a, b| (a.createtxg, order_key(a)).cmp(&(b.createtxg, order_key(b))));
    snaps
}

fn cursor_of(
    side: SideKind,
    listing: &FsListing,
    snaps: &[Snap],
    protect: &[u64],
) -> Result<Option<Cursor>, PruneError> {
    match side {
        SideKind::Local => Ok(None),
        SideKind::Sender => {
            let guid = listing.cursor_guid.ok_or(PruneError::NoCursor)?;
            let v = listing.versions.iter().find(|v| v.guid == guid).ok_or_else(|| {
                PruneError::Inconsistent(format!(
                    "replication cursor (guid {guid:#018x}) not found in prune target filesystem versions"
                ))
            })?;
            Ok(Some(Cursor {
                guid,
                createtxg: v.createtxg,
            }))
        }
        SideKind::Receiver => {
            let here = snaps
                .iter()
                .filter(|s| protect.contains(&s.guid))
                .max_by_key(|s| s.createtxg);
            Ok(match (here, protect.first()) {
                (Some(s), _) => Some(Cursor {
                    guid: s.guid,
                    createtxg: s.createtxg,
                }),
                // the cursor's snapshot is not here: nothing counts as replicated
                (None, Some(&guid)) => Some(Cursor { guid, createtxg: 0 }),
                (None, None) => None,
            })
        }
    }
}

/// The decisions for one filesystem of `side`, with protection applied, in
/// the order of [`snapshots`] (oldest first). `protect` are the GUIDs the
/// caller protects on this filesystem.
///
/// # Errors
/// Invalid rules, a missing cursor (see the module docs), an inconsistent listing.
pub fn plan_filesystem(
    side: SideKind,
    rules: &[KeepRule],
    listing: &FsListing,
    protect: &[u64],
) -> Result<Vec<Decision>, PruneError> {
    plan_compiled(side, &compile_for(side, rules)?, listing, protect)
}

pub(crate) fn plan_compiled(
    side: SideKind,
    rules: &[Compiled],
    listing: &FsListing,
    protect: &[u64],
) -> Result<Vec<Decision>, PruneError> {
    let snaps = snapshots(listing);
    if snaps.is_empty() {
        // nothing to prune; zrepl would still demand a cursor on the sender
        return Ok(Vec::new());
    }
    let cursor = cursor_of(side, listing, &snaps, protect)?;
    let mut decisions = evaluate_compiled(rules, &snaps, cursor.as_ref())?;
    let newest = snaps.iter().map(|s| s.createtxg).max();
    let resume_from = listing.resume.as_ref().and_then(|r| r.from_guid);
    for (d, s) in decisions.iter_mut().zip(&snaps) {
        let mut why = Vec::new();
        if protect.contains(&s.guid) {
            why.push(PROTECTED_BASE);
        }
        if side == SideKind::Receiver {
            if Some(s.createtxg) == newest {
                why.push(PROTECTED_NEWEST);
            }
            if Some(s.guid) == resume_from {
                why.push(PROTECTED_RESUME);
            }
        }
        if !why.is_empty() {
            d.keep = true;
            d.kept_by.extend(why.into_iter().map(String::from));
        }
    }
    Ok(decisions)
}
