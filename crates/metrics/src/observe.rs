//! Recording from the other crates' reports without double counting:
//! replication [`Report`]s and the zfs [`InvocationLog`].

use std::collections::HashMap;
use std::time::SystemTime;

use zrelay_replication::report::unix;
use zrelay_replication::{AttemptState, FsState, Report};
use zrelay_zfs::cmd::{Invocation, InvocationLog};

use crate::Metrics;

/// Where one run's counters stood at the last observation.
#[derive(Debug, Default)]
pub(crate) struct ObserveState {
    /// `(job, fs)` → the attempt last seen and its byte count then.
    bytes: HashMap<(String, String), Seen>,
    /// `job` → the newest run whose final values were recorded.
    finalized: HashMap<String, u64>,
    /// The invocation log's `recent()` at the last call.
    zfs_seen: Vec<Invocation>,
}

/// An attempt of a run: `(started_at, attempt)`. The driver clears the
/// filesystem list at each attempt's planning, so bytes restart from 0.
type AttemptKey = (u64, u32);

#[derive(Debug, Clone, Copy)]
struct Seen {
    attempt: AttemptKey,
    bytes: u64,
}

fn is_final(r: &Report) -> bool {
    matches!(r.state, AttemptState::Completed | AttemptState::Cancelled)
}

fn same(a: &Invocation, b: &Invocation) -> bool {
    a.duration == b.duration
        && a.success == b.success
        && a.verb == b.verb
        && a.program == b.program
        && a.cmdline == b.cmdline
}

/// How many leading entries of `cur` were already in `prev`: the longest
/// suffix of `prev` that is a prefix of `cur` (the log is a ring that drops
/// its oldest entries and appends new ones).
fn already_seen(prev: &[Invocation], cur: &[Invocation]) -> usize {
    (0..=prev.len())
        .map(|j| &prev[j..])
        .find(|tail| tail.len() <= cur.len() && tail.iter().zip(cur).all(|(a, b)| same(a, b)))
        .map_or(0, <[Invocation]>::len)
}

impl Metrics {
    /// Record a replication report of `job`: live or final, once or many
    /// times. Records:
    /// - `replication_bytes_replicated`: bytes per filesystem, as deltas
    ///   against the last observation of the same attempt;
    /// - `filesystem_bytes_pending`: `bytes_expected − bytes_replicated`
    ///   per filesystem (0 once it is done or skipped);
    /// - on a final report (completed or cancelled), once per run:
    ///   `replication_state_time` for each non-terminal state,
    ///   `replication_filesystem_errors` (−1 when the last attempt failed at
    ///   planning) and, if it [succeeded](Report::succeeded),
    ///   `replication_last_successful`.
    ///
    /// Reports of a run older than one already observed are ignored.
    /// Bytes an attempt moved after its last observation are missed if the
    /// next attempt's planning clears them first: observe at least between
    /// attempts (the `working-wait` state) and at the end.
    pub fn observe_report(&self, job: &str, report: &Report) {
        let mut st = self.observed.lock().unwrap();
        let attempt = (report.started_at, report.attempt);
        for f in &report.filesystems {
            let key = (job.to_string(), f.fs.clone());
            let now = Seen {
                attempt,
                bytes: f.bytes_replicated,
            };
            let delta = match st.bytes.get(&key) {
                Some(s) if s.attempt > attempt => continue, // stale report
                Some(s) if s.attempt == attempt && s.bytes <= f.bytes_replicated => {
                    f.bytes_replicated - s.bytes
                }
                // A new attempt, or an attempt that restarted within the same
                // second: everything it shows is new.
                _ => f.bytes_replicated,
            };
            st.bytes.insert(key, now);
            // inc_by(0) still creates the series, so every planned fs shows up.
            self.bytes_replicated(job, &f.fs, delta);
            let pending = match f.state {
                FsState::Done | FsState::Skipped => 0,
                _ => f.bytes_expected.saturating_sub(f.bytes_replicated),
            };
            self.bytes_pending(job, &f.fs, pending);
        }
        if !is_final(report) {
            return;
        }
        if st
            .finalized
            .get(job)
            .is_some_and(|&run| run >= report.started_at)
        {
            return;
        }
        st.finalized.insert(job.to_string(), report.started_at);
        drop(st);
        for (state, secs) in &report.state_seconds {
            // Time "in" a terminal state only grows while the report is kept.
            if !matches!(state, AttemptState::Completed | AttemptState::Cancelled) {
                self.replication_state_time(job, state.as_str(), *secs);
            }
        }
        let errors = if report.planning_error.is_some() {
            -1
        } else {
            i64::try_from(report.failed().count()).unwrap_or(i64::MAX)
        };
        self.filesystem_errors(job, errors);
        if report.succeeded() {
            let ts = report
                .finished_at
                .unwrap_or_else(|| unix(SystemTime::now()));
            self.last_successful(job, ts);
        }
    }

    /// Record the zfs commands that finished since the last call into
    /// `zrelay_zfscmd_runtime`; returns how many were recorded.
    ///
    /// The log keeps only its 256 most recent finished invocations and gives
    /// them no sequence number, so new ones are found by overlap with the
    /// previous call's view; more than 256 finishing between two calls are
    /// partly missed. Call it often (e.g. on every scrape).
    pub fn observe_zfs_log(&self, log: &InvocationLog) -> usize {
        let cur = log.recent();
        let mut st = self.observed.lock().unwrap();
        let skip = already_seen(&st.zfs_seen, &cur);
        for inv in &cur[skip..] {
            self.zfs_command(&inv.program, &inv.verb, inv.duration.as_secs_f64());
        }
        let n = cur.len() - skip;
        st.zfs_seen = cur;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inv(ms: u64) -> Invocation {
        Invocation {
            program: "zfs".into(),
            verb: "list".into(),
            cmdline: "zfs list".into(),
            duration: Duration::from_millis(ms),
            success: true,
        }
    }

    fn v(ms: &[u64]) -> Vec<Invocation> {
        ms.iter().copied().map(inv).collect()
    }

    #[test]
    fn overlap_of_ring_views() {
        assert_eq!(already_seen(&[], &v(&[1, 2])), 0);
        assert_eq!(already_seen(&v(&[1, 2]), &v(&[1, 2])), 2);
        assert_eq!(already_seen(&v(&[1, 2]), &v(&[1, 2, 3])), 2);
        // The ring dropped 1 and appended 3 and 4.
        assert_eq!(already_seen(&v(&[1, 2]), &v(&[2, 3, 4])), 1);
        // Everything seen was dropped.
        assert_eq!(already_seen(&v(&[1, 2]), &v(&[5, 6])), 0);
        // Equal neighbours are not confused.
        assert_eq!(already_seen(&v(&[7, 7]), &v(&[7, 7, 7])), 2);
        assert_eq!(already_seen(&v(&[1, 2]), &v(&[2, 1, 2])), 1);
    }
}
