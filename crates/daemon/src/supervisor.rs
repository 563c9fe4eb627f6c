//! The supervisor: owns the daemon's workers, runs each as a task under a
//! child of its cancellation token, restarts a failed one after a backoff
//! or reports it, and stops them all on shutdown.
//!
//! Invariants:
//! - One worker's failure never stops another.
//! - A worker that fails with a temporary error is restarted after an
//!   exponential backoff (from [`Policy::first_backoff`] to
//!   [`Policy::max_backoff`], reset once a run lasted [`Policy::healthy_after`]);
//!   one that fails permanently stays failed and is reported, with its error,
//!   until the daemon restarts.
//! - The supervisor is the only writer of its [`Supervision`] records; the
//!   status of a job is its worker's, overlaid with them.
//! - On shutdown every worker is cancelled and awaited for at most
//!   [`Policy::stop_timeout`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use zrelay_zfs::{Classify, ErrorClass};

use crate::status::JobState;
use crate::worker::{Worker, WorkerStatus};

/// How the supervisor treats failures and shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The wait before the first restart.
    pub first_backoff: Duration,
    /// The longest wait between restarts.
    pub max_backoff: Duration,
    /// A run this long resets the backoff.
    pub healthy_after: Duration,
    /// How long shutdown waits for the workers.
    pub stop_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            healthy_after: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(60),
        }
    }
}

impl Policy {
    /// The wait before restart number `n` (from 1).
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// What the supervisor knows of one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supervision {
    /// Restarts after failures so far.
    pub restarts: u64,
    /// The last failure, while the worker is not running again.
    pub failure: Option<String>,
    /// When the worker is restarted (unix seconds); `None` when it is not.
    pub restart_at: Option<u64>,
}

/// A registered worker and its supervision record.
#[derive(Clone)]
pub struct Supervised {
    /// The worker.
    pub worker: Arc<dyn Worker>,
    /// The supervisor's record of it.
    pub supervision: watch::Receiver<Supervision>,
}

impl Supervised {
    /// The worker's status with the supervisor's record folded in.
    pub fn status(&self) -> WorkerStatus {
        let sup = self.supervision.borrow().clone();
        match self.worker.status() {
            WorkerStatus::Job(mut s) => {
                s.restarts = sup.restarts;
                s.restart_at = sup.restart_at;
                if let Some(f) = sup.failure {
                    s.state = JobState::Failed;
                    s.last_error = Some(f);
                }
                WorkerStatus::Job(s)
            }
            WorkerStatus::Chore(mut c) => {
                if let Some(f) = sup.failure {
                    c.last_error = Some(f);
                }
                WorkerStatus::Chore(c)
            }
        }
    }
}

struct Slot {
    worker: Arc<dyn Worker>,
    record: watch::Sender<Supervision>,
    failures: u32,
    started: Instant,
    restart: Option<Instant>,
}

/// Owns and runs the workers.
pub struct Supervisor {
    slots: Vec<Slot>,
    tasks: JoinSet<(usize, Result<(), crate::DaemonError>)>,
    cancel: CancellationToken,
    policy: Policy,
}

impl Supervisor {
    /// A supervisor whose workers stop when `cancel` fires.
    pub fn new(cancel: CancellationToken, policy: Policy) -> Supervisor {
        Supervisor {
            slots: Vec::new(),
            tasks: JoinSet::new(),
            cancel,
            policy,
        }
    }

    /// Start `worker` now; the returned handle reads its status.
    pub fn start(&mut self, worker: Arc<dyn Worker>) -> Supervised {
        let (record, supervision) = watch::channel(Supervision::default());
        let i = self.slots.len();
        self.slots.push(Slot {
            worker: worker.clone(),
            record,
            failures: 0,
            started: Instant::now(),
            restart: None,
        });
        self.spawn(i);
        Supervised {
            worker,
            supervision,
        }
    }

    fn spawn(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.started = Instant::now();
        slot.restart = None;
        slot.record.send_modify(|r| {
            r.failure = None;
            r.restart_at = None;
        });
        let (w, c) = (slot.worker.clone(), self.cancel.child_token());
        self.tasks.spawn(async move { (i, w.run(c).await) });
    }

    /// Run until `cancel` fires: restart failed workers as the policy says.
    /// Then stop every worker and wait for them.
    pub async fn run(mut self) {
        loop {
            let next_restart = self.slots.iter().filter_map(|s| s.restart).min();
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    info!("shutting down: stopping workers");
                    break;
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match joined {
                        Ok((i, r)) => self.ended(i, r),
                        Err(e) => error!(error = %e, "a worker task panicked or was aborted"),
                    }
                }
                _ = sleep_until(next_restart) => {
                    let now = Instant::now();
                    let due: Vec<usize> = (0..self.slots.len())
                        .filter(|&i| self.slots[i].restart.is_some_and(|t| t <= now))
                        .collect();
                    for i in due {
                        info!(worker = %self.slots[i].worker.name(), "restarting");
                        self.slots[i].record.send_modify(|r| r.restarts += 1);
                        self.spawn(i);
                    }
                }
            }
        }
        let stopped = tokio::time::timeout(self.policy.stop_timeout, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            warn!(
                "workers did not stop within {:?}; exiting anyway",
                self.policy.stop_timeout
            );
        }
    }

    fn ended(&mut self, i: usize, r: Result<(), crate::DaemonError>) {
        let policy = self.policy;
        let cancelled = self.cancel.is_cancelled();
        let slot = &mut self.slots[i];
        let name = slot.worker.name().to_string();
        let e = match r {
            Ok(()) => return,
            Err(_) if cancelled => return,
            Err(e) => e,
        };
        if slot.started.elapsed() >= policy.healthy_after {
            slot.failures = 0;
        }
        slot.failures += 1;
        let temporary = e.class() == ErrorClass::Temporary;
        let wait = policy.backoff(slot.failures);
        if temporary {
            warn!(worker = %name, error = %e, retry_in = ?wait, "worker failed; restarting after a backoff");
            slot.restart = Some(Instant::now() + wait);
        } else {
            error!(worker = %name, error = %e, "worker failed permanently; not restarting (fix the cause and restart the daemon)");
        }
        let at = temporary.then(|| zrelay_replication::report::unix(SystemTime::now() + wait));
        slot.record.send_modify(|s| {
            s.failure = Some(e.to_string());
            s.restart_at = at;
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Policy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..Policy::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(p.backoff(1000), Duration::from_secs(10));
    }
}
