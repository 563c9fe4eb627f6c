//! The driver: attempts of plan → estimate → protect → step → commit, with
//! retries, ordering, a watchdog, batched commits and a live report.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};
use zrelay_endpoint::{CommitReq, PrepareReq, Receiver, Sender, StepReq};
use zrelay_planner::{plan, Conflict, FsPlan};
use zrelay_zfs::{Classify, DatasetPath, ErrorClass};

mod commit;

use crate::config::DriverConfig;
use crate::error::ReplicationError;
use crate::report::{unix, AttemptState, FsState, Report, ReportHandle, StepReport};
use crate::schedule::{fail_orphans, next, Next, Unit, UnitState};
use crate::step::run_step;

/// One replication run between a sender and a receiver.
pub struct Driver {
    cfg: DriverConfig,
    sender: Arc<dyn Sender>,
    receiver: Arc<dyn Receiver>,
    report: ReportHandle,
    cancel: CancellationToken,
    /// Filesystems of this attempt whose steps were received but whose commit
    /// failed: their step holds still protect the received snapshot.
    uncommitted: Mutex<BTreeSet<DatasetPath>>,
    observer: Arc<dyn crate::Observer>,
}

struct Shared {
    units: Vec<Unit>,
    commits: Vec<CommitReq>,
    first_commit_at: Option<Instant>,
}

fn step_report(step: &StepReq, estimate: Option<u64>) -> StepReport {
    StepReport {
        from: step.from.as_ref().map(|f| f.rel_name()),
        to: step.to.rel_name(),
        resumed: step.resume_token.is_some(),
        bytes_expected: estimate,
        bytes_replicated: 0,
        to_created: u64::try_from(step.to.creation).ok().filter(|c| *c > 0),
    }
}

impl Driver {
    /// A driver; nothing runs until [`Driver::run`].
    pub fn new(
        cfg: DriverConfig,
        sender: Arc<dyn Sender>,
        receiver: Arc<dyn Receiver>,
        cancel: CancellationToken,
    ) -> Self {
        Driver {
            cfg,
            sender,
            receiver,
            report: ReportHandle::new(),
            cancel,
            uncommitted: Mutex::new(BTreeSet::new()),
            observer: Arc::new(crate::NoObserver),
        }
    }

    /// Report attempts and steps to `observer` as they start and end.
    pub fn with_observer(mut self, observer: Arc<dyn crate::Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The live report (readable while `run` runs).
    pub fn report(&self) -> ReportHandle {
        self.report.clone()
    }

    /// Replicate until every filesystem is done or failed permanently, the
    /// attempts are used up, or the run is cancelled.
    pub async fn run(&self) -> Report {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.report.update(|r| {
                r.attempt = attempt;
                r.next_attempt_at = None;
            });
            let span = info_span!("attempt", n = attempt);
            self.observer.attempt_started(attempt);
            let outcome = self.attempt().instrument(span).await;
            let planning_error = outcome.as_ref().err().map(|e| e.to_string());
            let end_state = if self.cancel.is_cancelled() {
                AttemptState::Cancelled
            } else if planning_error.is_some() {
                AttemptState::PlanningError
            } else {
                AttemptState::Completed
            };
            self.observer
                .attempt_finished(attempt, end_state, planning_error.as_deref());
            if self.cancel.is_cancelled() {
                self.report.set_state(AttemptState::Cancelled);
                return self.report.snapshot();
            }
            let (retry, wait, state) = match outcome {
                Ok(temporary_failures) => (
                    temporary_failures,
                    self.cfg.backoff(attempt),
                    AttemptState::WorkingWait,
                ),
                Err(e) => {
                    warn!(error = %e, "planning failed");
                    let retry = e.class() == ErrorClass::Temporary;
                    self.report
                        .update(|r| r.planning_error = Some(e.to_string()));
                    (retry, self.cfg.planning_retry, AttemptState::PlanningError)
                }
            };
            if !retry || attempt >= self.cfg.max_attempts {
                self.cleanup().await;
                self.report.set_state(AttemptState::Completed);
                return self.report.snapshot();
            }
            self.report.set_state(state);
            self.report.update(|r| {
                r.next_attempt_at = Some(unix(SystemTime::now() + wait));
            });
            info!(?wait, "waiting before the next attempt");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => {
                    self.report.set_state(AttemptState::Cancelled);
                    return self.report.snapshot();
                }
            }
        }
    }

    /// One attempt. `Ok(true)` when some filesystem failed temporarily.
    async fn attempt(&self) -> Result<bool, ReplicationError> {
        self.report.set_state(AttemptState::Planning);
        self.uncommitted.lock().unwrap().clear();
        let (s, r) = tokio::select! {
            r = async { tokio::join!(self.sender.list_filesystems(), self.receiver.list_filesystems()) } => r,
            _ = self.cancel.cancelled() => return Err(ReplicationError::Cancelled),
        };
        let (mut s, r) = (s?, r?);
        if let Some(f) = &self.cfg.snapshot_filter {
            filter_snapshots(&mut s, &r, &|n| f.matches(n));
        }
        let plans = plan(&s, &r, self.cfg.initial);
        self.report.update(|r| {
            r.planning_error = None;
            r.filesystems.clear();
        });
        let mut units = Vec::new();
        let mut reconciles = Vec::new();
        for p in plans {
            if let Some(why) = self.cfg.skip.get(p.fs.as_str()) {
                self.report.fs(p.fs.as_str(), |r| {
                    r.state = FsState::Skipped;
                    r.info = Some(why.clone());
                    r.blocked = true;
                });
                continue;
            }
            self.add_plan(p, &mut units, &mut reconciles);
        }
        if !reconciles.is_empty() {
            // Move lagging cursors to the receiver's newest snapshot before
            // the steps are protected (the sender's commit releases the
            // filesystem's step holds): from now on that snapshot survives
            // on the sender as the cursor, whatever this attempt's steps do.
            // A filesystem whose cursor could not move is left uncommitted,
            // so the end-of-run cleanup keeps its step holds.
            let pre = Mutex::new(Shared {
                units: Vec::new(),
                commits: reconciles,
                first_commit_at: None,
            });
            self.flush(&pre).await;
        }
        self.estimate(&mut units).await;
        self.protect(&mut units).await;
        self.report.set_state(AttemptState::Working);
        crate::schedule::link(&mut units);
        let shared = Mutex::new(Shared {
            units,
            first_commit_at: None,
            commits: Vec::new(),
        });
        let notify = Notify::new();
        let workers = (0..self.cfg.steps.max(1)).map(|_| self.worker(&shared, &notify));
        futures_util::future::join_all(workers).await;
        if !self.cancel.is_cancelled() {
            self.flush(&shared).await;
        }
        let g = shared.lock().unwrap();
        Ok(g.units
            .iter()
            .any(|u| u.state == UnitState::Failed { temporary: true }))
    }

    fn add_plan(&self, p: FsPlan, units: &mut Vec<Unit>, reconciles: &mut Vec<CommitReq>) {
        let fs = p.fs.to_string();
        // A lagging cursor (up to date, or fresh steps from the receiver's
        // newest snapshot) is committed again, before anything else runs.
        if let Some(to) = p.reconcile {
            if self.cfg.protection.incremental != zrelay_endpoint::Guarantee::GuaranteeNothing {
                reconciles.push(CommitReq {
                    fs: p.fs.clone(),
                    to,
                    protection: self.cfg.protection,
                    incremental: true,
                });
            }
        }
        match p.result {
            Ok(steps) => {
                let steps: Vec<StepReq> = steps
                    .into_iter()
                    .map(|s| StepReq {
                        fs: p.fs.clone(),
                        from: s.from,
                        to: s.to,
                        resume_token: s.resume.map(|r| r.token),
                        protection: self.cfg.protection,
                    })
                    .collect();
                let n = steps.len();
                self.report.fs(&fs, |r| {
                    r.steps_total = n;
                    r.current_step = steps.first().map(|s| step_report(s, None));
                });
                units.push(Unit::new(p.fs, steps, vec![None; n]));
            }
            Err(c) if c.is_up_to_date() => {
                self.report.fs(&fs, |r| {
                    r.state = FsState::Done;
                    r.info = Some(c.to_string());
                });
            }
            Err(c @ Conflict::NoSenderSnapshots) => {
                self.report.fs(&fs, |r| {
                    r.state = FsState::Skipped;
                    r.info = Some(c.to_string());
                });
            }
            Err(c) => {
                warn!(%fs, conflict = %c, "cannot plan");
                self.report.fs(&fs, |r| {
                    r.state = FsState::Failed;
                    r.error_count += 1;
                    r.last_error = Some(c.to_string());
                });
            }
        }
    }

    async fn estimate(&self, units: &mut [Unit]) {
        let all: Vec<StepReq> = units.iter().flat_map(|u| u.steps.iter().cloned()).collect();
        if all.is_empty() {
            return;
        }
        let res = tokio::select! {
            r = self.sender.estimate(&all, self.cfg.size_estimates) => r,
            _ = self.cancel.cancelled() => return,
        };
        let sizes: Vec<Option<u64>> = match res {
            Ok(v) => v
                .into_iter()
                .map(|r| {
                    r.map_err(|e| debug!(error = %e, "size estimate failed"))
                        .ok()
                })
                .collect(),
            Err(e) => {
                warn!(error = %e, "size estimates failed");
                vec![None; all.len()]
            }
        };
        let mut it = sizes.into_iter();
        for u in units.iter_mut() {
            let est: Vec<Option<u64>> = u.steps.iter().map(|_| it.next().flatten()).collect();
            let total = est.iter().flatten().sum();
            let first = est.first().copied().flatten();
            self.report.fs(u.fs.as_str(), |r| {
                r.bytes_expected = total;
                if let Some(s) = &mut r.current_step {
                    s.bytes_expected = first;
                }
            });
            u.estimates = est.into();
        }
    }

    async fn protect(&self, units: &mut [Unit]) {
        let reqs: Vec<PrepareReq> = units
            .iter()
            .map(|u| PrepareReq {
                fs: u.fs.clone(),
                steps: u.steps.iter().cloned().collect(),
            })
            .collect();
        if reqs.is_empty() {
            return;
        }
        let results = match self.sender.prepare(&reqs).await {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                let temporary = e.class() == ErrorClass::Temporary;
                for u in units.iter_mut() {
                    self.fail_unit(u, &msg, temporary);
                }
                return;
            }
        };
        for (u, r) in units.iter_mut().zip(results) {
            if let Err(e) = r {
                let temporary = e.class() == ErrorClass::Temporary;
                self.fail_unit(u, &format!("protecting the steps: {e}"), temporary);
            }
        }
    }

    fn fail_unit(&self, u: &mut Unit, msg: &str, temporary: bool) {
        u.state = UnitState::Failed { temporary };
        self.report.fs(u.fs.as_str(), |r| {
            r.state = FsState::Failed;
            r.temporary = temporary;
            r.error_count += 1;
            r.last_error = Some(msg.to_string());
            r.next_retry_at = None;
        });
    }

    async fn worker(&self, shared: &Mutex<Shared>, notify: &Notify) {
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let picked = {
                let mut g = shared.lock().unwrap();
                for (i, parent) in fail_orphans(&mut g.units) {
                    let e = ReplicationError::ParentFailed(parent);
                    self.report.fs(g.units[i].fs.as_str(), |r| {
                        r.state = FsState::Failed;
                        r.last_error = Some(e.to_string());
                    });
                }
                for i in 0..g.units.len() {
                    let u = &g.units[i];
                    if !u.waiting
                        && u.state == UnitState::Pending
                        && crate::schedule::waits_for_parent(&g.units, i)
                    {
                        self.report
                            .fs(u.fs.as_str(), |r| r.state = FsState::WaitingForParent);
                        g.units[i].waiting = true;
                    }
                }
                match next(&g.units, Instant::now()) {
                    Next::Run(i) => {
                        let u = &mut g.units[i];
                        u.state = UnitState::Running;
                        let step = u.steps.front().cloned().expect("pending unit has a step");
                        let est = u.estimates.front().copied().flatten();
                        // a retry of this same step (cleared on success)
                        let retry = u.retry_at.is_some();
                        Some(Ok((i, u.fs.clone(), step, est, retry)))
                    }
                    Next::Wait(t) => Some(Err(t)),
                    Next::Finished => None,
                }
            };
            match picked {
                None => {
                    notify.notify_waiters();
                    return;
                }
                Some(Err(wake)) => {
                    let sleep = async {
                        match wake {
                            Some(t) => tokio::time::sleep_until(t.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = notify.notified() => {}
                        _ = sleep => {}
                        _ = self.cancel.cancelled() => return,
                    }
                }
                Some(Ok((i, fs, step, est, retry))) => {
                    let span = info_span!("filesystem", fs = %fs);
                    let res = self.one_step(&fs, &step, est, retry).instrument(span).await;
                    self.after_step(shared, i, res);
                    notify.notify_waiters();
                    self.maybe_flush(shared).await;
                }
            }
        }
    }

    async fn one_step(
        &self,
        fs: &DatasetPath,
        step: &StepReq,
        est: Option<u64>,
        retry: bool,
    ) -> Result<(), ReplicationError> {
        let name = fs.as_str();
        self.report.fs(name, |r| {
            r.state = FsState::Stepping;
            r.next_retry_at = None;
            r.current_step = Some(step_report(step, est));
        });
        let counter = self.report.start_counter(name);
        let obs_id = self.observer.step_started(name, &step_report(step, est));
        let span = info_span!("step", %step);
        let started = Instant::now();
        let res = if retry && self.received_before(fs, step).await {
            Ok(())
        } else {
            run_step(
                self.sender.as_ref(),
                self.receiver.as_ref(),
                step,
                counter,
                self.cfg.watchdog,
                &self.cancel,
            )
            .instrument(span)
            .await
        };
        let bytes = self.report.stop_counter(name);
        match &res {
            Ok(()) => info!(%step, bytes, secs = started.elapsed().as_secs_f64(), "step done"),
            Err(e) => warn!(%step, bytes, error = %e, "step failed"),
        }
        let end = match &res {
            Ok(()) => crate::StepEnd::Completed,
            Err(e) if worth_retrying(e) => crate::StepEnd::Failed(e.to_string()),
            Err(e) => crate::StepEnd::Dead(e.to_string()),
        };
        self.observer.step_finished(obs_id, name, bytes, end);
        res
    }

    /// Before retrying a step without a resume token: whether the receiver
    /// already has its `to` (by GUID), because the previous try's receive
    /// completed and only its reply was lost (the connection broke after
    /// the stream's end). Sending it again would fail for good: a full
    /// receive onto a filesystem that now exists is refused, an incremental
    /// one finds its snapshot there. Any doubt (an error) means no.
    async fn received_before(&self, fs: &DatasetPath, step: &StepReq) -> bool {
        if step.resume_token.is_some() {
            return false;
        }
        let Ok(versions) = self.receiver.list_versions(fs).await else {
            return false;
        };
        let there = versions
            .iter()
            .any(|v| v.is_snapshot() && v.guid == step.to.guid);
        if there {
            info!(%step, "the receiver already has the step's snapshot: the previous try's receive completed before its reply was lost; the step is done");
        }
        there
    }

    fn after_step(&self, shared: &Mutex<Shared>, i: usize, res: Result<(), ReplicationError>) {
        let mut g = shared.lock().unwrap();
        let g = &mut *g;
        let u = &mut g.units[i];
        let name = u.fs.to_string();
        match res {
            Ok(()) => {
                let step = u.steps.pop_front().expect("ran a step");
                u.estimates.pop_front();
                u.retry_at = None;
                u.done_steps += 1;
                u.last_to = Some((step.to.clone(), step.from.is_some()));
                let next_step = u
                    .steps
                    .front()
                    .map(|s| step_report(s, u.estimates.front().copied().flatten()));
                let finished = u.steps.is_empty();
                if finished {
                    u.state = UnitState::Done;
                } else {
                    u.state = UnitState::Pending;
                }
                self.report.fs(&name, |r| {
                    r.steps_done += 1;
                    if finished {
                        r.state = FsState::Done;
                    } else {
                        r.state = FsState::Ready;
                        r.current_step = next_step;
                    }
                });
                if finished {
                    Self::queue_commit(g, i, &self.cfg);
                }
            }
            Err(e) => {
                u.errors += 1;
                let token = e_token(&e);
                // A failure that left a resumable partial receive is worth
                // retrying whatever its class: the retry resumes it. (E.g. a
                // daemon restarted while the receiver was still saving the
                // state of the previous run's interrupted receive plans a
                // full send, which fails with the token in hand.)
                if let (Some(token), Some(s)) = (token, u.steps.front_mut()) {
                    s.resume_token = Some(token);
                }
                let temporary = worth_retrying(&e);
                let exhausted = u.errors >= self.cfg.max_step_tries;
                let msg = e.to_string();
                // After a stall the receive was dropped, so whether a partial
                // state exists is unknown; a step whose snapshot vanished
                // cannot succeed as planned: leave both to the next
                // attempt's planning.
                let replan = matches!(
                    e,
                    ReplicationError::Stalled(_)
                        | ReplicationError::Endpoint(zrelay_endpoint::EndpointError::Vanished(_))
                );
                if temporary && !exhausted && !replan && !self.cancel.is_cancelled() {
                    let wait = self.cfg.backoff(u.errors);
                    u.retry_at = Some(Instant::now() + wait);
                    u.state = UnitState::Pending;
                    self.report.fs(&name, |r| {
                        r.state = FsState::RetryWait;
                        r.error_count += 1;
                        r.last_error = Some(msg);
                        r.next_retry_at = Some(unix(SystemTime::now() + wait));
                    });
                } else {
                    let msg = if temporary && exhausted {
                        ReplicationError::RetriesExhausted {
                            attempts: u.errors,
                            last: msg,
                        }
                        .to_string()
                    } else {
                        msg
                    };
                    self.fail_unit(u, &msg, temporary);
                    // Commit the steps done so far, unless the failed step may
                    // have left a partial receive: its `to` must stay held for
                    // the resume, and a commit would release it.
                    let maybe_partial = e.resumable() || replan;
                    if u.last_to.is_some() && !maybe_partial {
                        Self::queue_commit(g, i, &self.cfg);
                    }
                }
            }
        }
    }
}

/// Whether a failed step is retried (and, for the observer and the work
/// queue, failed rather than dead): a temporary error, or any error that
/// left a resumable partial receive, whatever its class, because the retry
/// resumes it. (E.g. a retry planned while the receiver was still saving the
/// state of the interrupted receive sends a fresh stream, which `zfs recv`
/// refuses as permanent, with the token in hand.) One rule for both, so the
/// queue never marks dead a step the driver goes on to retry.
pub(crate) fn worth_retrying(e: &ReplicationError) -> bool {
    e.class() == ErrorClass::Temporary || e.resumable()
}

fn e_token(e: &ReplicationError) -> Option<String> {
    match e {
        ReplicationError::Endpoint(ep) => ep.resume_token().map(str::to_string),
        _ => None,
    }
}

/// Hide the sender snapshots `matches` rejects, except those the receiver
/// already has (they anchor the incremental path): they are never sent, and
/// the planner never mistakes the receiver's history for a divergence.
/// Bookmarks stay visible.
pub(crate) fn filter_snapshots(
    sender: &mut [zrelay_endpoint::FsListing],
    receiver: &[zrelay_endpoint::FsListing],
    matches: &dyn Fn(&str) -> bool,
) {
    use std::collections::{HashMap, HashSet};
    let on_receiver: HashMap<_, HashSet<u64>> = receiver
        .iter()
        .map(|l| (&l.path, l.versions.iter().map(|v| v.guid).collect()))
        .collect();
    for l in sender.iter_mut() {
        let have = on_receiver.get(&l.path);
        l.versions.retain(|v| {
            !v.is_snapshot() || matches(&v.name) || have.is_some_and(|h| h.contains(&v.guid))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zrelay_endpoint::EndpointError;

    fn refused(resume_token: Option<&str>) -> ReplicationError {
        ReplicationError::Endpoint(EndpointError::Receive {
            fs: DatasetPath::parse("sink/a").unwrap(),
            source: Box::new(EndpointError::Remote {
                peer: "tcp 127.0.0.1:1".into(),
                message: "destination sink/a contains partially-complete state".into(),
                temporary: false,
            }),
            resume_token: resume_token.map(str::to_string),
        })
    }

    #[test]
    fn a_permanent_error_with_a_resumable_state_is_retried_not_dead() {
        assert_eq!(refused(Some("1-abc")).class(), ErrorClass::Permanent);
        assert!(worth_retrying(&refused(Some("1-abc"))));
        assert!(!worth_retrying(&refused(None)));
        assert!(worth_retrying(&ReplicationError::Stalled(
            std::time::Duration::from_secs(1)
        )));
    }
}
