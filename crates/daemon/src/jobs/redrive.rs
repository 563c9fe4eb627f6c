//! The re-drive chore of the work queue: at start and then every
//! `min(lease / 2, 10 s)`, leases that expired (a killed or crashed
//! daemon's steps) are taken back, and every lane that has eligible work
//! (ready records, or failed ones past their backoff) is woken. So work
//! resumes after a crash with no wakeup and no new snapshot, and an
//! operator's `zrelay queue retry` takes effect within one tick.
//!
//! Invariants:
//! - A lane whose target may not run (unhealthy or backing off) is not
//!   woken: its gate wakes it when it may.
//! - Records of jobs or targets this daemon does not run are left alone.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zrelay_queue::{Filter, Queue, State};
use zrelay_snapshot::Clock;

use super::health::Gate;
use super::Command;
use crate::chores::Counters;
use crate::error::DaemonError;
use crate::worker::{Worker, WorkerStatus};

/// One lane the chore can wake.
pub(crate) struct LaneHandle {
    pub job: String,
    pub target: String,
    pub commands: mpsc::UnboundedSender<Command>,
    pub gate: Option<Arc<Gate>>,
}

/// The chore.
pub(crate) struct Redrive {
    pub queue: Queue,
    pub lanes: Vec<LaneHandle>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Option<Arc<zrelay_metrics::Metrics>>,
    counters: Counters,
}

impl Redrive {
    pub fn new(
        queue: Queue,
        lanes: Vec<LaneHandle>,
        clock: Arc<dyn Clock>,
        metrics: Option<Arc<zrelay_metrics::Metrics>>,
    ) -> Redrive {
        Redrive {
            queue,
            lanes,
            clock,
            metrics,
            counters: Counters::new("queue-redrive"),
        }
    }

    fn every(&self) -> Duration {
        (self.queue.policy().lease() / 2).clamp(Duration::from_millis(100), Duration::from_secs(10))
    }

    /// One tick: expire leases, wake lanes with eligible work.
    async fn tick(&self) -> Result<usize, zrelay_queue::QueueError> {
        let redriven = self.queue.expire_leases().await?;
        for r in &redriven {
            info!(record = %r.key, "queue: re-driving work whose lease expired");
        }
        let now = self.clock.now();
        let mut eligible = BTreeSet::new();
        for state in [State::Ready, State::Failed] {
            let f = Filter {
                state: Some(state),
                ..Filter::default()
            };
            for r in self.queue.list(&f).await? {
                if r.is_eligible(now) {
                    eligible.insert((r.key.job.to_string(), r.key.target.to_string()));
                }
            }
        }
        let mut woken = 0;
        for l in &self.lanes {
            if !eligible.contains(&(l.job.clone(), l.target.clone())) {
                continue;
            }
            if let Some(g) = &l.gate {
                if g.read().may_run(now).is_err() {
                    continue;
                }
            }
            if l.commands.send(Command::Nudge).is_ok() {
                woken += 1;
            }
        }
        if let Some(m) = &self.metrics {
            for l in &self.lanes {
                let (Ok(job), Ok(target)) = (
                    zrelay_queue::JobId::new(&l.job),
                    zrelay_queue::TargetName::new(&l.target),
                ) else {
                    continue;
                };
                let f = Filter {
                    job: Some(job),
                    target: Some(target),
                    ..Filter::default()
                };
                let d = self.queue.depth(&f).await?;
                for s in [
                    State::Ready,
                    State::InProgress,
                    State::Completed,
                    State::Failed,
                    State::Dead,
                ] {
                    m.queue_depth(&l.job, &l.target, s.as_str(), d.get(s));
                }
                if let Some(g) = &l.gate {
                    let h = g.read().status(now);
                    let healthy = h.health == super::health::Health::Healthy;
                    m.target_health(&l.job, &l.target, healthy, h.protecting);
                }
            }
        }
        Ok(woken)
    }
}

#[async_trait]
impl Worker for Redrive {
    fn name(&self) -> &str {
        self.counters.name
    }

    fn status(&self) -> WorkerStatus {
        self.counters.status()
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        loop {
            let r = self.tick().await;
            if let Err(e) = &r {
                warn!(error = %e, "queue: re-drive failed");
            }
            self.counters.ran(r.err().map(|e| e.to_string()));
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.every()) => {}
            }
        }
    }
}
