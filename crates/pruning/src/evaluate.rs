//! Pure evaluation of keep rules over the snapshots of one filesystem
//! (zrepl's `pruning.PruneSnapshots` in `internal/pruning/pruning.go`).
//!
//! A snapshot is destroyed unless some rule keeps it (the union of what the
//! rules keep survives). With no rules at all nothing is destroyed, as in
//! zrepl 0.7 (`if len(keepRules) == 0 { return []Snapshot{} }`).

use serde::{Deserialize, Serialize};
use zrelay_endpoint::FsVersion;

use crate::error::PruneError;
use crate::grid;
use crate::rules::{compile, Compiled, KeepRule};

/// A snapshot, as the rules see it. Bookmarks are never subjects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snap {
    /// The short name after `@`; regexes match against it.
    pub name: String,
    /// `guid`.
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation`, seconds since the epoch (zrepl's `Date()`).
    pub creation: i64,
}

impl From<&FsVersion> for Snap {
    fn from(v: &FsVersion) -> Self {
        Snap {
            name: v.name.clone(),
            guid: v.guid,
            createtxg: v.createtxg,
            creation: v.creation,
        }
    }
}

/// The replication cursor: the newest snapshot the receiver is known to
/// have, as the sender's `#zrepl_CURSOR_G_<guid>_J_<job>` bookmark records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// GUID of the snapshot the cursor points at.
    pub guid: u64,
    /// `createtxg` of that snapshot (in the pool of the snapshots evaluated).
    pub createtxg: u64,
}

/// What happens to one snapshot, and which rules keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The snapshot's short name.
    pub name: String,
    /// Some rule keeps it.
    pub keep: bool,
    /// One human reason per rule that keeps it, e.g. `last_n 10`,
    /// `grid 1x1h(keep=all) bucket 0`, `not_replicated: newer than the cursor`.
    pub kept_by: Vec<String>,
}

/// The reason given when there are no rules.
pub const NO_RULES: &str = "no keep rules (zrepl destroys nothing without rules)";

/// Younger sorts greater: creation time, then `createtxg`, then name.
pub(crate) fn order_key(s: &Snap) -> (i64, u64, &str) {
    (s.creation, s.createtxg, s.name.as_str())
}

/// `last_n`'s order, younger greater: `createtxg` first, then creation
/// time, then name. zrepl orders by creation time alone, which is the wall
/// clock at snapshot time: after the clock stepped back, every new snapshot
/// would sort older than those taken before the step, and `last_n` would
/// destroy each new one in favour of the stale ones until the clock caught
/// up. `createtxg` only grows in a pool, and snapshots are received in the
/// order they were taken, so without a clock step both orders agree.
fn last_n_key(s: &Snap) -> (u64, i64, &str) {
    (s.createtxg, s.creation, s.name.as_str())
}

/// Evaluate `rules` over the snapshots of one filesystem. One decision per
/// snapshot, in input order; the input order does not change any decision.
///
/// `cursor` is needed only by `not_replicated` (without it: [`PruneError::NoCursor`]).
///
/// # Errors
/// An invalid rule ([`crate::check_rules`]), or `not_replicated` without a cursor.
pub fn evaluate(
    rules: &[KeepRule],
    snaps: &[Snap],
    cursor: Option<&Cursor>,
) -> Result<Vec<Decision>, PruneError> {
    evaluate_compiled(&compile(rules)?, snaps, cursor)
}

/// [`evaluate`] with rules compiled once.
pub(crate) fn evaluate_compiled(
    rules: &[Compiled],
    snaps: &[Snap],
    cursor: Option<&Cursor>,
) -> Result<Vec<Decision>, PruneError> {
    let mut kept_by: Vec<Vec<String>> = vec![Vec::new(); snaps.len()];
    if rules.is_empty() {
        for k in &mut kept_by {
            k.push(NO_RULES.to_string());
        }
    }
    // zrepl (`daemon/pruner/pruner.go`, `NewPrunerFactory`) decides once for
    // all `not_replicated` rules: the snapshot at the cursor counts as
    // replicated if any of them has `keep_snapshot_at_cursor: false`.
    let at_cursor_replicated = rules
        .iter()
        .any(|r| matches!(r, Compiled::NotReplicated { keep_at_cursor } if !keep_at_cursor));
    for rule in rules {
        match rule {
            Compiled::NotReplicated { .. } => {
                let c = cursor.ok_or(PruneError::NoCursor)?;
                for (i, s) in snaps.iter().enumerate() {
                    if s.guid == c.guid {
                        if !at_cursor_replicated {
                            kept_by[i].push(
                                "not_replicated: at the cursor (keep_snapshot_at_cursor)".into(),
                            );
                        }
                    } else if s.createtxg >= c.createtxg {
                        kept_by[i].push("not_replicated: newer than the cursor".into());
                    }
                }
            }
            Compiled::LastN { count, re } => {
                let mut matching: Vec<usize> = (0..snaps.len())
                    .filter(|&i| re.as_ref().is_none_or(|re| re.is_match(&snaps[i].name)))
                    .collect();
                // youngest first (keep_last_n.go sorts by date; see last_n_key)
                matching.sort_by(|&a, &b| last_n_key(&snaps[b]).cmp(&last_n_key(&snaps[a])));
                let reason = match re {
                    None => format!("last_n {count}"),
                    Some(re) => format!("last_n {count} regex {:?}", re.as_str()),
                };
                for &i in matching.iter().take(*count) {
                    kept_by[i].push(reason.clone());
                }
            }
            Compiled::Grid { intervals, re } => {
                for (i, reason) in grid::keep(intervals, re, snaps) {
                    kept_by[i].push(reason);
                }
            }
            Compiled::Regex { re, negate } => {
                let reason = if *negate {
                    format!("regex {:?} negate: does not match", re.as_str())
                } else {
                    format!("regex {:?}", re.as_str())
                };
                for (i, s) in snaps.iter().enumerate() {
                    if re.is_match(&s.name) != *negate {
                        kept_by[i].push(reason.clone());
                    }
                }
            }
        }
    }
    Ok(snaps
        .iter()
        .zip(kept_by)
        .map(|(s, kept_by)| Decision {
            name: s.name.clone(),
            keep: !kept_by.is_empty(),
            kept_by,
        })
        .collect())
}
