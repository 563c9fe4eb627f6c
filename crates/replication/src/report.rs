//! The live report of a replication run. The driver updates it as it goes;
//! anyone holding a [`ReportHandle`] can take a consistent snapshot at any
//! time, including the bytes of the steps running right now.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// zrepl's attempt states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptState {
    /// Listing both sides and planning steps.
    Planning,
    /// Planning failed; waiting to plan again.
    PlanningError,
    /// Running steps.
    Working,
    /// Some filesystems failed temporarily; waiting for the next attempt.
    WorkingWait,
    /// Finished (each filesystem completed or failed permanently).
    Completed,
    /// Cancelled.
    Cancelled,
}

/// Where one filesystem stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsState {
    /// Planned, waiting for its turn.
    Ready,
    /// Waiting for its parent's initial replication.
    WaitingForParent,
    /// A step is running.
    Stepping,
    /// A temporary error; waiting until `next_retry_at`.
    RetryWait,
    /// All planned steps done (or nothing to do).
    Done,
    /// Failed; `last_error` says why.
    Failed,
    /// Nothing to replicate (e.g. no snapshots on the sender).
    Skipped,
}

impl FsState {
    /// The state's name as the report's JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FsState::Ready => "ready",
            FsState::WaitingForParent => "waiting-for-parent",
            FsState::Stepping => "stepping",
            FsState::RetryWait => "retry-wait",
            FsState::Done => "done",
            FsState::Failed => "failed",
            FsState::Skipped => "skipped",
        }
    }
}

impl AttemptState {
    /// The state's name as the report's JSON spells it (zrepl's names).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Planning => "planning",
            AttemptState::PlanningError => "planning-error",
            AttemptState::Working => "working",
            AttemptState::WorkingWait => "working-wait",
            AttemptState::Completed => "completed",
            AttemptState::Cancelled => "cancelled",
        }
    }
}

/// One step as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// `@from`/`#from`, or `None` for a full send.
    pub from: Option<String>,
    /// `@to`.
    pub to: String,
    /// Resuming a partial receive.
    pub resumed: bool,
    /// Estimated size, when known.
    pub bytes_expected: Option<u64>,
    /// Bytes moved so far.
    pub bytes_replicated: u64,
    /// When the `to` snapshot was created (unix seconds), when known: the
    /// step's delay is its start minus this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_created: Option<u64>,
}

/// One filesystem as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsReport {
    /// The filesystem (sender namespace).
    pub fs: String,
    /// Its state.
    pub state: FsState,
    /// Steps planned.
    pub steps_total: usize,
    /// Steps done.
    pub steps_done: usize,
    /// Sum of the planned steps' estimates.
    pub bytes_expected: u64,
    /// Bytes moved, including the running step.
    pub bytes_replicated: u64,
    /// The running (or next) step.
    pub current_step: Option<StepReport>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Errors in this run.
    pub error_count: u32,
    /// When the next retry starts (unix seconds).
    pub next_retry_at: Option<u64>,
    /// A note, e.g. why nothing was done.
    pub info: Option<String>,
    /// Skipped because the work queue holds it dead (see `info`): not in
    /// step until an operator retries it.
    #[serde(default)]
    pub blocked: bool,
    /// The failure (`state` failed) is temporary: a later attempt or
    /// invocation may succeed with no one's help (e.g. a snapshot pruned by
    /// another job after planning). False for a conflict or a permanent error.
    #[serde(default)]
    pub temporary: bool,
}

impl FsReport {
    /// A fresh report for `fs`.
    pub fn new(fs: String) -> Self {
        FsReport {
            fs,
            state: FsState::Ready,
            steps_total: 0,
            steps_done: 0,
            bytes_expected: 0,
            bytes_replicated: 0,
            current_step: None,
            last_error: None,
            error_count: 0,
            next_retry_at: None,
            info: None,
            blocked: false,
            temporary: false,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The current attempt state.
    pub state: AttemptState,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// Seconds spent in each state so far.
    pub state_seconds: BTreeMap<AttemptState, f64>,
    /// When the run started (unix seconds).
    pub started_at: u64,
    /// When it finished (unix seconds).
    pub finished_at: Option<u64>,
    /// Planning's last error.
    pub planning_error: Option<String>,
    /// When the next attempt or planning retry starts (unix seconds).
    pub next_attempt_at: Option<u64>,
    /// Per filesystem, in plan order.
    pub filesystems: Vec<FsReport>,
}

impl Report {
    /// Filesystems that failed.
    pub fn failed(&self) -> impl Iterator<Item = &FsReport> {
        self.filesystems
            .iter()
            .filter(|f| f.state == FsState::Failed)
    }

    /// Filesystems skipped because the work queue holds them dead.
    pub fn blocked(&self) -> impl Iterator<Item = &FsReport> {
        self.filesystems.iter().filter(|f| f.blocked)
    }

    /// Whether the run completed with no failed filesystem and no planning error.
    pub fn succeeded(&self) -> bool {
        self.state == AttemptState::Completed
            && self.planning_error.is_none()
            && self.failed().next().is_none()
    }
}

/// Unix seconds of `t`.
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Inner {
    report: Report,
    since: Instant,
    live: HashMap<String, Arc<AtomicU64>>,
    /// Where each filesystem's report is in `report.filesystems`, so that
    /// finding one is not a scan of thousands. Kept by [`ReportHandle::fs`],
    /// which adds to the list, and rebuilt after [`ReportHandle::update`],
    /// the only other way the list changes.
    index: HashMap<String, usize>,
}

impl Inner {
    fn reindex(&mut self) {
        self.index = (self.report.filesystems.iter().enumerate())
            .map(|(i, r)| (r.fs.clone(), i))
            .collect();
    }
}

/// A shared, readable-while-running report.
#[derive(Clone)]
pub struct ReportHandle {
    inner: Arc<Mutex<Inner>>,
}

impl Default for ReportHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl ReportHandle {
    /// A report in the planning state.
    pub fn new() -> Self {
        ReportHandle {
            inner: Arc::new(Mutex::new(Inner {
                report: Report {
                    state: AttemptState::Planning,
                    attempt: 1,
                    state_seconds: BTreeMap::new(),
                    started_at: unix(SystemTime::now()),
                    finished_at: None,
                    planning_error: None,
                    next_attempt_at: None,
                    filesystems: Vec::new(),
                },
                since: Instant::now(),
                live: HashMap::new(),
                index: HashMap::new(),
            })),
        }
    }

    /// A consistent copy, with running steps' bytes and the time in the current state.
    pub fn snapshot(&self) -> Report {
        let g = self.inner.lock().unwrap();
        let mut r = g.report.clone();
        *r.state_seconds.entry(r.state).or_default() += g.since.elapsed().as_secs_f64();
        for f in &mut r.filesystems {
            if let Some(c) = g.live.get(&f.fs) {
                let n = c.load(Ordering::Relaxed);
                f.bytes_replicated += n;
                if let Some(s) = &mut f.current_step {
                    s.bytes_replicated = n;
                }
            }
        }
        r
    }

    /// Enter `state`, accounting the time spent in the previous one.
    pub fn set_state(&self, state: AttemptState) {
        let mut g = self.inner.lock().unwrap();
        let spent = g.since.elapsed().as_secs_f64();
        let prev = g.report.state;
        *g.report.state_seconds.entry(prev).or_default() += spent;
        g.since = Instant::now();
        g.report.state = state;
        if matches!(state, AttemptState::Completed | AttemptState::Cancelled) {
            g.report.finished_at = Some(unix(SystemTime::now()));
            g.report.next_attempt_at = None;
        }
    }

    /// Change the report under the lock.
    pub fn update<T>(&self, f: impl FnOnce(&mut Report) -> T) -> T {
        let mut g = self.inner.lock().unwrap();
        let out = f(&mut g.report);
        g.reindex();
        out
    }

    /// Change one filesystem's report (created when missing).
    pub fn fs<T>(&self, fs: &str, f: impl FnOnce(&mut FsReport) -> T) -> T {
        let mut g = self.inner.lock().unwrap();
        let i = match g.index.get(fs).copied() {
            Some(i) => i,
            None => {
                let list = &mut g.report.filesystems;
                list.push(FsReport::new(fs.to_string()));
                let i = list.len() - 1;
                g.index.insert(fs.to_string(), i);
                i
            }
        };
        f(&mut g.report.filesystems[i])
    }

    /// Register the byte counter of `fs`'s running step.
    pub fn start_counter(&self, fs: &str) -> Arc<AtomicU64> {
        let c = Arc::new(AtomicU64::new(0));
        self.inner
            .lock()
            .unwrap()
            .live
            .insert(fs.to_string(), c.clone());
        c
    }

    /// Fold the running step's bytes into the filesystem's total.
    pub fn stop_counter(&self, fs: &str) -> u64 {
        let mut g = self.inner.lock().unwrap();
        let n = g
            .live
            .remove(fs)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0);
        if let Some(f) = g
            .index
            .get(fs)
            .copied()
            .map(|i| &mut g.report.filesystems[i])
        {
            f.bytes_replicated += n;
            if let Some(s) = &mut f.current_step {
                s.bytes_replicated = n;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystems_are_found_again_after_the_list_changes_under_update() {
        let h = ReportHandle::new();
        for fs in ["p/a", "p/b", "p/c"] {
            h.fs(fs, |r| r.steps_total = fs.len());
        }
        h.fs("p/b", |r| r.steps_done = 1);
        h.update(|r| r.filesystems.reverse());
        h.fs("p/b", |r| r.steps_done += 1);
        h.fs("p/a", |r| r.steps_done += 5);
        h.update(|r| r.filesystems.remove(0));
        h.fs("p/d", |r| r.steps_done = 7);
        let got: Vec<(String, usize)> = h
            .snapshot()
            .filesystems
            .into_iter()
            .map(|r| (r.fs, r.steps_done))
            .collect();
        assert_eq!(
            got,
            [("p/b".into(), 2), ("p/a".into(), 5), ("p/d".into(), 7)]
        );
        h.update(|r| r.filesystems.clear());
        h.fs("p/a", |_| ());
        assert_eq!(h.snapshot().filesystems.len(), 1);
    }
}
