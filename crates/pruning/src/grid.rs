//! The retention grid, as zrepl fits snapshots into it
//! (`pruning/retentiongrid/retentiongrid.go`, `FitEntries` and
//! `fitEntriesWithNow`; `pruning/keep_grid.go`, `KeepGrid.KeepRule`).
//!
//! - Only snapshots matching the rule's regex take part; the others are not
//!   kept by the grid.
//! - `now` is the creation time of the youngest matching snapshot.
//! - The grid's segments are expanded into `count` buckets each, youngest
//!   first. Bucket `k` (global) covers the times `t` with
//!   `now - end(k) < t <= now - start(k)`: it contains its younger edge and
//!   not its older edge ("left-inclusive" reading the time axis backwards
//!   from `now`). A snapshot exactly on the edge between two buckets
//!   therefore falls into the older bucket, and one exactly at
//!   `now - total length` is outside the grid.
//! - Snapshots older than the grid are not kept.
//! - Within a bucket the oldest `keep` snapshots survive (`keep=all`: all).
//!
//! zrepl orders equal creation times by input order (a stable sort); zrelay
//! orders them by `createtxg`, then name, so the outcome does not depend on
//! the listing order.

use std::collections::BTreeMap;

use regex::Regex;

use crate::evaluate::{order_key, Snap};
use crate::rules::GridInterval;

const NANOS: i128 = 1_000_000_000;

/// The bucket of a snapshot `age` nanoseconds older than `now`: the segment
/// index and the bucket's index within that segment.
fn locate(intervals: &[GridInterval], age: i128) -> Option<(usize, u64)> {
    let mut start: i128 = 0;
    for (seg, g) in intervals.iter().enumerate() {
        let len = i128::try_from(g.length.as_nanos()).unwrap_or(i128::MAX);
        let span = len.saturating_mul(i128::from(g.count));
        if age < start.saturating_add(span) {
            let idx = (age - start) / len.max(1);
            return Some((seg, u64::try_from(idx).unwrap_or(u64::MAX)));
        }
        start = start.saturating_add(span);
    }
    None
}

/// The indices into `snaps` the grid keeps, each with its reason
/// (`grid 24x1h bucket 3`: the segment as zrepl writes it and the bucket's
/// index within that segment, 0 being the youngest).
pub(crate) fn keep(intervals: &[GridInterval], re: &Regex, snaps: &[Snap]) -> Vec<(usize, String)> {
    let matching: Vec<usize> = (0..snaps.len())
        .filter(|&i| re.is_match(&snaps[i].name))
        .collect();
    let Some(now) = matching.iter().map(|&i| snaps[i].creation).max() else {
        return Vec::new();
    };
    let now = i128::from(now) * NANOS;
    let mut buckets: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
    for &i in &matching {
        let age = now - i128::from(snaps[i].creation) * NANOS;
        if let Some(b) = locate(intervals, age) {
            buckets.entry(b).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for ((seg, idx), mut members) in buckets {
        // oldest first: the oldest `keep` survive
        members.sort_by(|&a, &b| order_key(&snaps[a]).cmp(&order_key(&snaps[b])));
        let n = intervals[seg]
            .keep
            .map_or(members.len(), |k| members.len().min(k as usize));
        let reason = format!("grid {} bucket {idx}", intervals[seg]);
        out.extend(members[..n].iter().map(|&m| (m, reason.clone())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn g(count: u32, secs: u64, keep: Option<u32>) -> GridInterval {
        GridInterval {
            count,
            length: Duration::from_secs(secs),
            keep,
        }
    }

    #[test]
    fn locate_is_left_inclusive_from_now() {
        let grid = [g(1, 10, None), g(2, 100, Some(1))];
        let s = |x: i128| x * NANOS;
        assert_eq!(locate(&grid, 0), Some((0, 0)));
        assert_eq!(locate(&grid, s(10) - 1), Some((0, 0)));
        assert_eq!(locate(&grid, s(10)), Some((1, 0)));
        assert_eq!(locate(&grid, s(110)), Some((1, 1)));
        assert_eq!(locate(&grid, s(210) - 1), Some((1, 1)));
        assert_eq!(locate(&grid, s(210)), None);
    }
}
