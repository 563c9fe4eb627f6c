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
use zrelay_replication::report::unix;
use zrelay_replication::{Driver, DriverConfig, Report};

use super::record::InvocationRecord;
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
    pub(crate) history: Option<zrelay_history::History>,
    pub(crate) metrics: Option<Arc<zrelay_metrics::Metrics>>,
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
        let mut driver = Driver::new(
            self.driver.clone(),
            self.sender.clone(),
            self.receiver.clone(),
            token.clone(),
        );
        let record = match &self.history {
            Some(h) => Some(InvocationRecord::begin(h, self.name.as_str(), driver.report()).await),
            None => None,
        };
        if let Some(r) = &record {
            driver = driver.with_observer(r.observer.clone());
        }
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
            let ticker = self.metrics.clone().map(|m| {
                let (live, job) = (driver.report(), self.name.to_string());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        m.observe_report(&job, &live.snapshot());
                    }
                })
            });
            let report = driver.run().await;
            if let Some(t) = ticker {
                t.abort();
            }
            drop(driver);
            if let Some(r) = record {
                r.finish(&report).await;
            }
            if let Some(m) = &self.metrics {
                m.observe_report(self.name.as_str(), &report);
            }
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
                let listing = self.record_lag().await;
                let started = std::time::Instant::now();
                let pruned = self.pruner.run_with(false, listing).await;
                if let Some(m) = &self.metrics {
                    // Both sides are pruned in one pass; the time is shared.
                    let secs = started.elapsed().as_secs_f64() / pruned.len().max(1) as f64;
                    for p in &pruned {
                        let side = match p.side {
                            zrelay_pruning::SideKind::Receiver => zrelay_metrics::Side::Receiver,
                            _ => zrelay_metrics::Side::Sender,
                        };
                        m.pruning_time(self.name.as_str(), side, secs);
                    }
                }
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

impl ActiveJob {
    /// Per-filesystem lag metrics: the creation time of the newest snapshot
    /// both sides have (zrepl #516, #875). Returns the sender's listing for
    /// the pruner that follows.
    async fn record_lag(&self) -> Option<Vec<zrelay_endpoint::FsListing>> {
        let Some(m) = &self.metrics else {
            return None;
        };
        let (s, r) = tokio::join!(
            self.sender.list_filesystems(),
            self.receiver.list_filesystems()
        );
        let (Ok(s), Ok(r)) = (s, r) else {
            return None;
        };
        let received: std::collections::HashMap<_, _> = r.iter().map(|l| (&l.path, l)).collect();
        for l in &s {
            let Some(rl) = received.get(&l.path) else {
                continue;
            };
            let on_receiver: std::collections::HashSet<u64> = rl
                .versions
                .iter()
                .filter(|v| v.is_snapshot())
                .map(|v| v.guid)
                .collect();
            let newest = l
                .versions
                .iter()
                .filter(|v| v.is_snapshot() && on_receiver.contains(&v.guid))
                .max_by_key(|v| v.createtxg);
            if let Some(v) = newest {
                let ts = u64::try_from(v.creation).unwrap_or(0);
                for side in [zrelay_metrics::Side::Sender, zrelay_metrics::Side::Receiver] {
                    m.fs_lag(self.name.as_str(), l.path.as_str(), side, ts);
                }
            }
        }
        Some(s)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
