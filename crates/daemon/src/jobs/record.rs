//! The durable history of an invocation: the driver's observer events go
//! through a channel to one task that writes them to SQLite
//! (`zrelay-history`), so the driver never waits for the disk. The same task
//! copies the live byte counts of running steps into the history every
//! second, so a step that was in flight when the daemon died shows how far
//! it got.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;
use zrelay_history::{AttemptId, History, InvocationId, Kind, State, StepId};
use zrelay_replication::{AttemptState, Observer, Report, ReportHandle, StepEnd, StepReport};

enum Event {
    AttemptStarted,
    AttemptFinished(AttemptState, Option<String>),
    StepStarted(u64, String, StepReport),
    StepFinished(u64, u64, StepEnd),
}

/// The driver's observer: forwards events to the recording task.
pub(crate) struct Recorder {
    tx: mpsc::UnboundedSender<Event>,
    next: std::sync::atomic::AtomicU64,
}

impl Observer for Recorder {
    fn attempt_started(&self, _n: u32) {
        let _ = self.tx.send(Event::AttemptStarted);
    }
    fn attempt_finished(&self, _n: u32, state: AttemptState, error: Option<&str>) {
        let _ = self
            .tx
            .send(Event::AttemptFinished(state, error.map(str::to_string)));
    }
    fn step_started(&self, fs: &str, step: &StepReport) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self
            .tx
            .send(Event::StepStarted(id, fs.to_string(), step.clone()));
        id
    }
    fn step_finished(&self, id: u64, _fs: &str, bytes: u64, end: StepEnd) {
        let _ = self.tx.send(Event::StepFinished(id, bytes, end));
    }
}

/// One invocation's record: the observer for its driver and the task that
/// writes. `finish` ends the invocation in the history.
pub(crate) struct InvocationRecord {
    pub observer: Arc<Recorder>,
    task: tokio::task::JoinHandle<()>,
    history: History,
    invocation: Option<InvocationId>,
}

fn log_err<T>(what: &str, r: zrelay_history::Result<T>) -> Option<T> {
    r.map_err(|e| warn!(error = %e, "history: cannot record {what}"))
        .ok()
}

impl InvocationRecord {
    /// Begin recording a replication invocation of `job`; `live` is the
    /// driver's report (for byte progress).
    pub async fn begin(history: &History, job: &str, live: ReportHandle) -> InvocationRecord {
        let invocation = log_err(
            "an invocation",
            history.begin_invocation(job, Kind::Replication).await,
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let h = history.clone();
        let task = tokio::spawn(async move {
            let Some(inv) = invocation else {
                while rx.recv().await.is_some() {}
                return;
            };
            let mut attempt: Option<AttemptId> = None;
            let mut steps: HashMap<u64, (StepId, String)> = HashMap::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => match ev { Some(ev) => ev, None => break },
                    _ = tick.tick() => {
                        progress(&h, &steps, &live.snapshot());
                        continue;
                    }
                };
                match ev {
                    Event::AttemptStarted => {
                        attempt = log_err("an attempt", h.begin_attempt(inv).await);
                    }
                    Event::AttemptFinished(state, error) => {
                        if let Some(a) = attempt.take() {
                            let st = match (state, &error) {
                                (AttemptState::Completed, None) => State::Completed,
                                _ => State::Failed,
                            };
                            let error = error.or_else(|| {
                                (state == AttemptState::Cancelled).then(|| "cancelled".to_string())
                            });
                            log_err(
                                "an attempt's end",
                                h.end_attempt(a, st, error.as_deref()).await,
                            );
                        }
                    }
                    Event::StepStarted(id, fs, step) => {
                        let Some(a) = attempt else { continue };
                        let r = h
                            .step_started(
                                a,
                                &fs,
                                step.from.as_deref(),
                                &step.to,
                                step.resumed,
                                step.bytes_expected,
                            )
                            .await;
                        if let Some(sid) = log_err("a step", r) {
                            steps.insert(id, (sid, fs));
                        }
                    }
                    Event::StepFinished(id, bytes, end) => {
                        let Some((sid, _)) = steps.remove(&id) else {
                            continue;
                        };
                        let (st, err) = match end {
                            StepEnd::Completed => (State::Completed, None),
                            StepEnd::Failed(e) => (State::Failed, Some(e)),
                            StepEnd::Dead(e) => (State::Dead, Some(e)),
                        };
                        log_err(
                            "a step's end",
                            h.step_finished(sid, st, bytes, err.as_deref()).await,
                        );
                    }
                }
            }
        });
        InvocationRecord {
            observer: Arc::new(Recorder {
                tx,
                next: Default::default(),
            }),
            task,
            history: history.clone(),
            invocation,
        }
    }

    /// End the invocation with the driver's final report.
    pub async fn finish(self, report: &Report) {
        let InvocationRecord {
            observer,
            task,
            history,
            invocation,
        } = self;
        drop(observer);
        let _ = task.await;
        let Some(inv) = invocation else { return };
        let (state, error) = if report.state == AttemptState::Cancelled {
            (State::Failed, Some("cancelled".to_string()))
        } else if let Some(e) = &report.planning_error {
            (State::Failed, Some(e.clone()))
        } else if let Some(f) = report.failed().next() {
            let n = report.failed().count();
            let e = f.last_error.clone().unwrap_or_default();
            (
                State::Failed,
                Some(format!("{n} filesystem(s) failed; {}: {e}", f.fs)),
            )
        } else {
            (State::Completed, None)
        };
        log_err(
            "an invocation's end",
            history.end_invocation(inv, state, error.as_deref()).await,
        );
    }
}

/// Copy the running steps' byte counts into the history.
fn progress(h: &History, steps: &HashMap<u64, (StepId, String)>, r: &Report) {
    for (sid, fs) in steps.values() {
        if let Some(f) = r.filesystems.iter().find(|f| &f.fs == fs) {
            if let Some(s) = &f.current_step {
                h.step_progress(*sid, s.bytes_replicated);
            }
        }
    }
}

/// A snapshot round or a pruning run in the history: an invocation of its
/// kind, begun when the run starts and ended with its outcome.
pub(crate) struct RunRecord {
    history: History,
    id: InvocationId,
}

impl RunRecord {
    /// Begin recording a run of `kind` for `job` (`None` without a history
    /// or when it cannot be written; the failure is logged).
    pub async fn begin(history: Option<&History>, job: &str, kind: Kind) -> Option<RunRecord> {
        let history = history?;
        let id = log_err("an invocation", history.begin_invocation(job, kind).await)?;
        Some(RunRecord {
            history: history.clone(),
            id,
        })
    }

    /// End it: completed, or failed with `error`.
    pub async fn end(self, error: Option<String>) {
        let state = if error.is_none() {
            State::Completed
        } else {
            State::Failed
        };
        log_err(
            "an invocation's end",
            self.history
                .end_invocation(self.id, state, error.as_deref())
                .await,
        );
    }
}

/// The error of a pruning run for the history: the failed sides' errors
/// (`None` when every side succeeded).
pub(crate) fn pruning_error(reports: &[zrelay_pruning::PruneReport]) -> Option<String> {
    let errors: Vec<String> = reports
        .iter()
        .filter(|r| !r.succeeded())
        .map(|r| {
            let why = r.error.clone().unwrap_or_else(|| {
                let n = r.filesystems.iter().filter(|f| f.error.is_some()).count();
                format!("{n} filesystem(s) failed")
            });
            format!("{:?}: {why}", r.side)
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}
