//! Push and pull jobs: the active side. Each invocation runs the replication
//! driver between a local and a remote endpoint; the pruner follows it (its
//! own issue). Invocations start on a wakeup signal or the job's schedule,
//! one at a time; wakeups that arrive during an invocation start the next.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};
use zrelay_endpoint::{JobId, Receiver, Sender};
use zrelay_replication::{Driver, DriverConfig, Report};

use super::{JobState, StatusCell, Trigger};

/// When an active job runs on its own.
#[derive(Debug, Clone)]
pub enum Every {
    /// Only on wakeup signals.
    Manual,
    /// At start, then every interval (measured from each start).
    Interval(Duration),
    /// At each fire time of a cron schedule (zrelay extension
    /// `replication.schedule` for push jobs).
    Cron(Box<zrelay_snapshot::CronSchedule>),
}

impl Every {
    /// The first scheduled start.
    fn first(&self) -> Option<Instant> {
        match self {
            Every::Manual => None,
            Every::Interval(_) => Some(Instant::now()),
            Every::Cron(c) => cron_next(c),
        }
    }

    /// The start after an invocation that started at `started`.
    fn after(&self, started: Instant) -> Option<Instant> {
        match self {
            Every::Manual => None,
            Every::Interval(d) => Some((started + *d).max(Instant::now())),
            Every::Cron(c) => cron_next(c),
        }
    }
}

fn cron_next(c: &zrelay_snapshot::CronSchedule) -> Option<Instant> {
    let now = SystemTime::now();
    let at = c.next_after(now)?;
    Some(Instant::now() + at.duration_since(now).unwrap_or_default())
}

/// One push or pull job, ready to run.
pub struct ActiveJob {
    pub(crate) name: JobId,
    pub(crate) sender: Arc<dyn Sender>,
    pub(crate) receiver: Arc<dyn Receiver>,
    pub(crate) driver: DriverConfig,
    pub(crate) every: Every,
    pub(crate) status: StatusCell,
    pub(crate) triggers: mpsc::UnboundedReceiver<Trigger>,
    pub(crate) running: Arc<Mutex<Option<CancellationToken>>>,
    pub(crate) pruner: Arc<super::prune::Pruner>,
}

fn unix(t: SystemTime) -> u64 {
    zrelay_replication::report::unix(t)
}

impl ActiveJob {
    /// Run invocations until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut next = self.every.first();
        loop {
            self.set_next(next);
            let mut waiters = Vec::new();
            tokio::select! {
                _ = cancel.cancelled() => break,
                t = self.triggers.recv() => match t {
                    Some(t) => waiters.extend(t.reply),
                    None => break,
                },
                _ = sleep_until(next) => {}
            }
            while let Ok(t) = self.triggers.try_recv() {
                waiters.extend(t.reply);
            }
            let started = Instant::now();
            let report = self.invocation(&cancel).await;
            for w in waiters {
                let _ = w.send(report.clone());
            }
            if !matches!(self.every, Every::Manual) {
                next = self.every.after(started);
            }
        }
        self.status.lock().unwrap().status.state = JobState::Stopped;
        info!(job = %self.name, "job stopped");
    }

    fn set_next(&self, next: Option<Instant>) {
        let at = next.map(|n| {
            let wait = n.saturating_duration_since(Instant::now());
            unix(SystemTime::now() + wait)
        });
        self.status.lock().unwrap().status.next_run_at = at;
    }

    /// One invocation: replicate, then prune both sides (unless cancelled).
    async fn invocation(&mut self, cancel: &CancellationToken) -> Report {
        let token = cancel.child_token();
        *self.running.lock().unwrap() = Some(token.clone());
        let driver = Driver::new(
            self.driver.clone(),
            self.sender.clone(),
            self.receiver.clone(),
            token.clone(),
        );
        let n = {
            let mut g = self.status.lock().unwrap();
            g.status.invocations += 1;
            g.status.state = JobState::Replicating;
            g.status.next_run_at = None;
            g.live = Some(driver.report());
            g.status.invocations
        };
        let span = info_span!("job", job = %self.name, invocation = n);
        let report = async {
            info!(
                sender = %self.sender.describe(),
                receiver = %self.receiver.describe(),
                "replication starts"
            );
            let report = driver.run().await;
            let failed = report.failed().count();
            if let Some(e) = &report.planning_error {
                warn!(error = %e, "replication failed before any filesystem was replicated");
            } else if failed > 0 {
                warn!(
                    failed,
                    filesystems = report.filesystems.len(),
                    "replication finished with failures"
                );
            } else {
                info!(
                    filesystems = report.filesystems.len(),
                    "replication finished"
                );
            }
            if !token.is_cancelled() {
                let pruned = self.pruner.run(false).await;
                self.status.lock().unwrap().status.last_pruning = pruned;
            }
            report
        }
        .instrument(span)
        .await;
        *self.running.lock().unwrap() = None;
        let mut g = self.status.lock().unwrap();
        g.live = None;
        g.status.state = JobState::Idle;
        g.status.last_error = report.planning_error.clone().or_else(|| {
            report
                .failed()
                .next()
                .map(|f| format!("{}: {}", f.fs, f.last_error.clone().unwrap_or_default()))
        });
        g.status.last = Some(report.clone());
        report
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
