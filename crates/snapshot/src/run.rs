//! [`Snapshotter::run`]: the schedule loop (zrepl's `daemon/snapper/periodic.go`
//! state machine and `daemon/snapper/cron.go` loop, plus on-demand triggers).

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::clock::{Clock, WALLCLOCK_MAX_DELAY};
use crate::report::{RoundCause, SnapshotReport, SnapshotterState, SnapshotterStatus};
use crate::schedule::{sync_point, Schedule};
use crate::snapshotter::{Snapshotter, Trigger};

/// The most cron fire times counted as skipped after one long round.
const MAX_SKIP_COUNT: u64 = 100_000;

impl Snapshotter {
    /// Run the schedule until `cancel`:
    /// - periodic: sync-up first (see [`sync_point`]), then a round every
    ///   `interval` measured from the start of the previous scheduled round;
    ///   after a failed sync-up, the first round is one interval after it.
    /// - cron: a round at each fire time; fire times that pass while a round
    ///   runs are skipped and counted in the status.
    /// - manual: no scheduled rounds.
    ///
    /// A [`Trigger`] starts an extra round at once (triggers that arrive
    /// meanwhile share the next one); it does not move the schedule. Every
    /// round's report goes to `done` without blocking (a full channel drops
    /// it with a warning, as zrepl's `snapshotsTaken`). Cancelling lets the
    /// current round finish its post hooks (see `round`), then returns.
    pub async fn run(
        self,
        cancel: CancellationToken,
        trigger: &mut mpsc::Receiver<Trigger>,
        done: mpsc::Sender<SnapshotReport>,
    ) {
        let inner = self.inner.clone();
        let clock = inner.clock.clone();
        let set = |f: &dyn Fn(&mut SnapshotterStatus)| inner.status.send_modify(|s| f(s));
        let job = inner.job.as_str();
        debug!(job, "snapshotter start");

        let mut next: Option<SystemTime> = match &inner.schedule {
            Schedule::Periodic { interval } => {
                set(&|s| s.state = SnapshotterState::SyncUp);
                let started = clock.now();
                let found = match self.list_filesystems().await {
                    Ok(fss) => sync_point(&fss, inner.namer.prefix(), *interval, clock.now()),
                    Err(e) => Err(e),
                };
                match found {
                    Ok(t) => {
                        set(&|s| s.state = SnapshotterState::Waiting);
                        Some(t)
                    }
                    Err(e) => {
                        error!(job, error = %e, "snapshotting sync-up failed");
                        let msg = e.to_string();
                        set(&|s| {
                            s.state = SnapshotterState::ErrorWait;
                            s.last_error = Some(msg.clone());
                        });
                        Some(started + *interval)
                    }
                }
            }
            Schedule::Cron(c) => {
                set(&|s| s.state = SnapshotterState::Waiting);
                c.next_after(clock.now())
            }
            Schedule::Manual => {
                set(&|s| s.state = SnapshotterState::Waiting);
                None
            }
        };
        let mut triggers_open = true;

        loop {
            set(&|s| s.next_run = next);
            let (wake, sleeper) = (next, clock.clone());
            let period = match &inner.schedule {
                Schedule::Periodic { interval } => Some(*interval),
                _ => None,
            };
            let sleep = async move {
                match (wake, period) {
                    (Some(t), Some(interval)) => {
                        sleep_periodic(sleeper.as_ref(), t, interval, job).await
                    }
                    (Some(t), None) => sleeper.sleep_until(t).await,
                    (None, _) => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                t = trigger.recv(), if triggers_open => {
                    let Some(t) = t else {
                        triggers_open = false;
                        continue;
                    };
                    let mut waiting = vec![t];
                    while let Ok(t) = trigger.try_recv() {
                        waiting.push(t);
                    }
                    info!(job, requests = waiting.len(), "snapshotting on demand");
                    let report = self.counted_round(RoundCause::OnDemand, &cancel).await;
                    for t in waiting {
                        if let Some(reply) = t.reply {
                            let _ = reply.send(report.clone());
                        }
                    }
                    deliver(job, &done, report);
                }
                _ = sleep => {
                    let fired = next.unwrap_or_else(|| clock.now());
                    let started = clock.now();
                    let report = self.counted_round(RoundCause::Schedule, &cancel).await;
                    deliver(job, &done, report);
                    next = match &inner.schedule {
                        Schedule::Periodic { interval } => Some(started + *interval),
                        Schedule::Cron(c) => {
                            let now = clock.now();
                            let mut skipped = 0u64;
                            let mut t = c.next_after(fired);
                            while let Some(x) = t.filter(|x| *x <= now && skipped < MAX_SKIP_COUNT) {
                                skipped += 1;
                                t = c.next_after(x);
                            }
                            if skipped > 0 {
                                warn!(job, skipped, "snapshotting triggered according to cron rules but previous snapshotting is not done; not taking a snapshot this time");
                            }
                            set(&|s| s.skipped_while_running = skipped);
                            let n = c.next_after(now);
                            if n.is_none() {
                                warn!(job, "the cron expression has no fire time within five years");
                            }
                            n
                        }
                        Schedule::Manual => None,
                    };
                }
            }
        }
        set(&|s| {
            s.state = SnapshotterState::Stopped;
            s.next_run = None;
        });
        debug!(job, "snapshotter stop");
    }

    /// A round with the state kept in the status.
    async fn counted_round(&self, cause: RoundCause, cancel: &CancellationToken) -> SnapshotReport {
        let status = &self.inner.status;
        status.send_modify(|s| s.state = SnapshotterState::Snapshotting);
        let report = self.round(cause, cancel).await;
        let ok = report.ok();
        status.send_modify(|s| {
            s.state = if ok {
                SnapshotterState::Waiting
            } else {
                SnapshotterState::ErrorWait
            }
        });
        report
    }
}

/// Sleep until the periodic round due at `due`, but never longer than one
/// `interval` from now: when the wall clock steps back, the round due at
/// `due` would otherwise wait for the clock to catch up (an hour's step
/// back would cost an hour of snapshots), so it is taken one interval after
/// the step is noticed instead. A step forward makes the round due at once
/// (one round, not one per missed interval: the next is an interval after
/// it starts). Steps are noticed within [`WALLCLOCK_MAX_DELAY`].
async fn sleep_periodic(clock: &dyn Clock, mut due: SystemTime, interval: Duration, job: &str) {
    loop {
        let now = clock.now();
        let Ok(left) = due.duration_since(now) else {
            return;
        };
        if left.is_zero() {
            return;
        }
        if left > interval {
            let stepped = left - interval;
            warn!(
                job,
                stepped_back_secs = stepped.as_secs(),
                "the wall clock stepped back: taking the next periodic snapshot one interval from now"
            );
            due = now + interval;
        }
        // A clock's own sleep waits for its time to reach the target, which
        // a step back moves away: look again after a bounded real delay.
        tokio::select! {
            _ = clock.sleep_until(due) => {}
            _ = tokio::time::sleep(WALLCLOCK_MAX_DELAY) => {}
        }
    }
}

fn deliver(job: &str, done: &mpsc::Sender<SnapshotReport>, report: SnapshotReport) {
    match done.try_send(report) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            warn!(
                job,
                "callback channel is full, discarding snapshot update event"
            )
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}
