//! Which filesystem steps next. Pure bookkeeping, no I/O.
//!
//! - Ready filesystems go before retrying ones; among ready ones, the one
//!   whose next step's snapshot is oldest goes first, so every filesystem
//!   reaches T1 before any reaches T2.
//! - Retrying filesystems wait for their backoff, then go by error count.
//! - A filesystem whose initial replication has not started waits until every
//!   ancestor that also needs its initial replication has done its first
//!   step; if such an ancestor fails, the child fails too.

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

/// Units whose parent failed; returns their indexes and the parent's name.
pub fn fail_orphans(units: &mut [Unit]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for i in 0..units.len() {
        if units[i].state != UnitState::Pending || !units[i].awaiting_initial() {
            continue;
        }
        let failed_parent = units.iter().find(|p| {
            p.fs != units[i].fs
                && units[i].fs.has_prefix(&p.fs)
                && p.awaiting_initial()
                && matches!(p.state, UnitState::Failed { .. })
        });
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
        && units.iter().any(|p| {
            p.fs != u.fs
                && u.fs.has_prefix(&p.fs)
                && p.awaiting_initial()
                && matches!(p.state, UnitState::Pending | UnitState::Running)
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
