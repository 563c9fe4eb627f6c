//! Which filesystem steps next. Pure bookkeeping, no I/O.
//!
//! - Ready filesystems go before retrying ones; among ready ones, the one
//!   whose next step's snapshot is oldest goes first, so every filesystem
//!   reaches T1 before any reaches T2.
//! - Retrying filesystems wait for their backoff, then go by error count.
//! - A filesystem whose initial replication has not started waits until every
//!   ancestor that also needs its initial replication has done its first
//!   step; if such an ancestor fails, the child fails too.
//!
//! Each unit knows its ancestors among the units ([`link`], once per
//! attempt), so a scheduling decision costs O(units × depth), not
//! O(units²): with thousands of filesystems waiting for their parent's
//! initial step, the old scan made an attempt cubic in the filesystems.

use std::collections::VecDeque;
use std::time::Instant;

use zrelay_endpoint::{FsVersion, StepReq};
use zrelay_zfs::DatasetPath;

/// A filesystem's progress through its planned steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitState {
    /// Has steps left; may be waiting for a retry time or a parent.
    Pending,
    /// A step is running.
    Running,
    /// All steps done.
    Done,
    /// Failed for this attempt; `temporary` says whether another attempt may help.
    Failed {
        /// Another attempt may succeed.
        temporary: bool,
    },
}

/// One filesystem in the schedule.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The filesystem.
    pub fs: DatasetPath,
    /// Steps not yet done, in order.
    pub steps: VecDeque<StepReq>,
    /// The estimate of each remaining step.
    pub estimates: VecDeque<Option<u64>>,
    /// The first planned step is a full send.
    pub initial: bool,
    /// Steps done so far.
    pub done_steps: usize,
    /// Errors so far.
    pub errors: u32,
    /// Not before this instant (after an error).
    pub retry_at: Option<Instant>,
    /// The newest snapshot received so far, and whether its step was incremental.
    pub last_to: Option<(FsVersion, bool)>,
    /// Where it stands.
    pub state: UnitState,
    /// The indexes of the units that are its ancestors ([`link`]).
    pub ancestors: Vec<usize>,
    /// Reported as waiting for its parent (so it is reported once).
    pub waiting: bool,
}

impl Unit {
    /// A pending unit with `steps` and their estimates.
    pub fn new(fs: DatasetPath, steps: Vec<StepReq>, estimates: Vec<Option<u64>>) -> Self {
        let initial = steps.first().is_some_and(|s| s.from.is_none());
        Unit {
            fs,
            steps: steps.into(),
            estimates: estimates.into(),
            initial,
            done_steps: 0,
            errors: 0,
            retry_at: None,
            last_to: None,
            state: UnitState::Pending,
            ancestors: Vec::new(),
            waiting: false,
        }
    }

    fn awaiting_initial(&self) -> bool {
        self.initial && self.done_steps == 0
    }

    fn next_key(&self) -> (i64, u64) {
        self.steps
            .front()
            .map(|s| (s.to.creation, s.to.createtxg))
            .unwrap_or((i64::MAX, u64::MAX))
    }
}

/// What the scheduler says to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Run the next step of unit `i`.
    Run(usize),
    /// Nothing runnable now; wake up at this instant (or on any change).
    Wait(Option<Instant>),
    /// Every unit is done or failed.
    Finished,
}

/// Fill in each unit's [`Unit::ancestors`]: one lookup per path component.
pub fn link(units: &mut [Unit]) {
    let index: std::collections::HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.fs.as_str(), i))
        .collect();
    let links: Vec<Vec<usize>> = units
        .iter()
        .map(|u| {
            let path = u.fs.as_str();
            path.match_indices('/')
                .filter_map(|(at, _)| index.get(&path[..at]).copied())
                .collect()
        })
        .collect();
    for (u, a) in units.iter_mut().zip(links) {
        u.ancestors = a;
    }
}

/// Units whose parent failed; returns their indexes and the parent's name.
pub fn fail_orphans(units: &mut [Unit]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, u) in units.iter().enumerate() {
        if u.state != UnitState::Pending || !u.awaiting_initial() {
            continue;
        }
        let failed_parent = u
            .ancestors
            .iter()
            .map(|&j| &units[j])
            .find(|p| p.awaiting_initial() && matches!(p.state, UnitState::Failed { .. }));
        if let Some(p) = failed_parent {
            out.push((i, p.fs.to_string()));
        }
    }
    for (i, _) in &out {
        units[*i].state = UnitState::Failed { temporary: false };
    }
    out
}

/// Whether unit `i` waits for an ancestor's initial replication.
pub fn waits_for_parent(units: &[Unit], i: usize) -> bool {
    let u = &units[i];
    u.awaiting_initial()
        && u.ancestors.iter().any(|&j| {
            let p = &units[j];
            p.awaiting_initial() && matches!(p.state, UnitState::Pending | UnitState::Running)
        })
}

/// Pick the next unit to step.
pub fn next(units: &[Unit], now: Instant) -> Next {
    let mut best_ready: Option<usize> = None;
    let mut best_retry: Option<usize> = None;
    let mut wake: Option<Instant> = None;
    let mut unfinished = false;
    for (i, u) in units.iter().enumerate() {
        match u.state {
            UnitState::Running => {
                unfinished = true;
                continue;
            }
            UnitState::Pending => unfinished = true,
            UnitState::Done | UnitState::Failed { .. } => continue,
        }
        if waits_for_parent(units, i) {
            continue;
        }
        if let Some(t) = u.retry_at.filter(|t| *t > now) {
            wake = Some(wake.map_or(t, |w| w.min(t)));
            continue;
        }
        if u.errors == 0 {
            if best_ready.is_none_or(|b| u.next_key() < units[b].next_key()) {
                best_ready = Some(i);
            }
        } else if best_retry
            .is_none_or(|b| (u.errors, u.next_key()) < (units[b].errors, units[b].next_key()))
        {
            best_retry = Some(i);
        }
    }
    match best_ready.or(best_retry) {
        Some(i) => Next::Run(i),
        None if unfinished => Next::Wait(wake),
        None => Next::Finished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zrelay_endpoint::Guarantee;

    fn unit(fs: &str, initial: bool) -> Unit {
        let fs = DatasetPath::parse(fs).unwrap();
        let v = |n: &str, g| FsVersion {
            kind: zrelay_zfs::name::VersionKind::Snapshot,
            name: n.into(),
            guid: g,
            createtxg: g,
            creation: g as i64,
        };
        let step = StepReq {
            fs: fs.clone(),
            from: (!initial).then(|| v("a", 1)),
            to: v("b", 2),
            resume_token: None,
            protection: zrelay_endpoint::Protection {
                initial: Guarantee::GuaranteeResumability,
                incremental: Guarantee::GuaranteeResumability,
            },
        };
        Unit::new(fs, vec![step], vec![None])
    }

    #[test]
    fn a_child_waits_for_its_ancestors_initial_step_only() {
        let mut units = vec![
            unit("p/a/b/c", true),
            unit("p/ab", true),
            unit("p/a", true),
            unit("p", false),
            unit("p/a/b", false),
        ];
        link(&mut units);
        let ancestors: Vec<&[usize]> = units.iter().map(|u| u.ancestors.as_slice()).collect();
        assert_eq!(ancestors, [&[3, 2, 4][..], &[3], &[3], &[], &[3, 2]]);
        // p/a/b/c waits for p/a (initial); p/ab is not a child of p/a
        assert!(waits_for_parent(&units, 0));
        assert!(!waits_for_parent(&units, 1));
        assert_eq!(next(&units, Instant::now()), Next::Run(1));
        units[2].state = UnitState::Failed { temporary: true };
        assert_eq!(fail_orphans(&mut units), [(0, "p/a".to_string())]);
    }
}
