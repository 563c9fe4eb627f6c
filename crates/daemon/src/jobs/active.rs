//! Push and pull jobs: the active side. Each invocation runs the replication
//! driver between a local and a remote endpoint, then prunes both sides.
//! Invocations start on a wakeup or the job's schedule, one at a time;
//! wakeups that arrive during an invocation start the next one right after
//! it. A push job's snapshotter runs inside the same worker, and each of its
//! rounds wakes replication (unless `replication.schedule` is set).
//!
//! Invariants:
//! - The worker is the only writer of its status.
//! - `signal reset` cancels the running invocation's token: the running
//!   step stops its stream, `zfs recv -s` keeps a resumable state, and the
//!   step's holds stay for the resume (the driver's guarantees).
//! - Pruning follows every invocation that was not cancelled, always with a
//!   fresh listing of the sender (its cursors protect the receiver).
//! - As one target (lane) of a fan-out push job ([`super::fanout`]), the
//!   worker never attempts its target while the target's [`Gate`] says
//!   unhealthy or backing off: the invocation is skipped, and runs as soon
//!   as the gate opens; at most `fan_out.concurrency` lanes of a job run
//!   invocations at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};
use zrelay_config::HookEvent;
use zrelay_endpoint::{FsListing, JobId, Receiver, Sender};
use zrelay_pruning::JobPruner;
use zrelay_replication::report::unix;
use zrelay_replication::{Driver, DriverConfig, Report};
use zrelay_snapshot::{Clock, CronSchedule};

use super::health::{Gate, Skip};
use super::record::InvocationRecord;
use super::snap::SnapPart;
use super::{Command, Woken};
use crate::error::DaemonError;
use crate::status::{FsReplicated, JobState, JobStatus};
use crate::worker::{Publisher, Worker, WorkerStatus};

/// When an active job runs on its own.
#[derive(Debug, Clone)]
pub enum Every {
    /// Only on wakeup signals.
    Manual,
    /// At start, then every interval (measured from each start).
    Interval(Duration),
    /// At each fire time of a cron schedule (zrelay extension
    /// `replication.schedule` for push jobs), on the daemon's clock.
    Cron(Box<CronSchedule>),
}

/// The next scheduled start.
#[derive(Debug, Clone, Copy)]
enum Next {
    Never,
    At(Instant),
    Wall(SystemTime),
}

/// What a push or pull job is made of.
pub(crate) struct ActiveParts {
    pub name: JobId,
    pub kind: &'static str,
    pub sender: Arc<dyn Sender>,
    pub receiver: Arc<dyn Receiver>,
    pub driver: DriverConfig,
    pub every: Every,
    pub pruner: Arc<JobPruner>,
    pub history: Option<zrelay_history::History>,
    pub metrics: Option<Arc<zrelay_metrics::Metrics>>,
    pub clock: Arc<dyn Clock>,
    pub snap: Option<SnapPart>,
    /// As one target of a fan-out push job.
    pub target: Option<TargetPart>,
    /// The durable work queue's records of this job (and target).
    pub work: Option<super::work::WorkPart>,
    /// A push job's `replicas` rules for this target.
    pub replicas: Option<Arc<super::replicas::ReplicaPart>>,
    /// A push job's `filesystems`, for the unmatched-dataset metric.
    pub filter: Option<zrelay_endpoint::FsFilter>,
    /// The job's `hooks` (none: empty).
    pub hooks: Option<Arc<super::hooks::JobHooks>>,
    /// `global.notify`.
    pub notifier: Option<Arc<super::notify::Notifier>>,
}

/// What makes a worker one target (lane) of a fan-out push job.
pub(crate) struct TargetPart {
    /// The target's name.
    pub name: String,
    /// Its health and backoff.
    pub gate: Arc<Gate>,
    /// The job's lanes that may run at once.
    pub workers: Arc<tokio::sync::Semaphore>,
}

/// One push or pull job.
pub(crate) struct ActiveWorker {
    p: ActiveParts,
    commands: Mutex<mpsc::UnboundedReceiver<Command>>,
    status: Publisher,
    /// The creation time (unix seconds, 0: unknown) of the newest snapshot
    /// the receiver has of the filesystem that lags most, as of the last
    /// pruning's listing.
    replicated_through: std::sync::atomic::AtomicU64,
}

impl ActiveWorker {
    /// The worker, reached through `commands` (whose receiving end is
    /// `rx`; the sender is returned for the control socket).
    pub fn with_channel(
        p: ActiveParts,
        endpoint: String,
        commands: mpsc::UnboundedSender<Command>,
        rx: mpsc::UnboundedReceiver<Command>,
    ) -> (ActiveWorker, mpsc::UnboundedSender<Command>) {
        let status = Publisher::new(
            JobStatus::new(p.name.as_str(), p.kind, endpoint),
            p.snap.as_ref().map(SnapPart::status),
        );
        let w = ActiveWorker {
            p,
            commands: Mutex::new(rx),
            status,
            replicated_through: std::sync::atomic::AtomicU64::new(0),
        };
        (w, commands)
    }

    /// The job's pruning.
    pub fn pruner(&self) -> Arc<JobPruner> {
        self.p.pruner.clone()
    }

    /// The job's `replicas` rules, when set.
    pub(crate) fn replicas(&self) -> Option<Arc<super::replicas::ReplicaPart>> {
        self.p.replicas.clone()
    }

    /// `push` or `pull`.
    pub fn kind(&self) -> &'static str {
        self.p.kind
    }

    /// The job status now (a fan-out job reads its targets' this way).
    pub fn job_status(&self) -> JobStatus {
        self.status.read()
    }

    /// See the field; `None` before the first pruning.
    pub fn replicated_through(&self) -> Option<u64> {
        match self
            .replicated_through
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            t => Some(t),
        }
    }

    fn first(&self) -> Next {
        match &self.p.every {
            Every::Manual => Next::Never,
            Every::Interval(_) => Next::At(Instant::now()),
            Every::Cron(c) => self.cron_next(c),
        }
    }

    fn after(&self, started: Instant) -> Next {
        match &self.p.every {
            Every::Manual => Next::Never,
            Every::Interval(d) => Next::At((started + *d).max(Instant::now())),
            Every::Cron(c) => self.cron_next(c),
        }
    }

    fn cron_next(&self, c: &CronSchedule) -> Next {
        c.next_after(self.p.clock.now())
            .map_or(Next::Never, Next::Wall)
    }

    async fn sleep(&self, next: Next) {
        match next {
            Next::Never => std::future::pending().await,
            Next::At(at) => tokio::time::sleep_until(at).await,
            Next::Wall(at) => self.p.clock.sleep_until(at).await,
        }
    }

    fn publish_next(&self, next: Next) {
        let at = match next {
            Next::Never => None,
            Next::At(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                Some(unix(self.p.clock.now() + wait))
            }
            Next::Wall(at) => Some(unix(at)),
        };
        self.status.update(|s| s.next_run_at = at);
    }

    /// Invocations until `cancel` fires or the commands close.
    async fn invocations(
        &self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        cancel: &CancellationToken,
    ) {
        let mut next = self.first();
        let mut waiters = Vec::new();
        let mut again = false;
        // A skipped invocation (target unhealthy or backing off) runs as
        // soon as the target's gate opens.
        let mut pending = false;
        loop {
            if !again {
                self.publish_next(next);
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    c = commands.recv() => match c {
                        Some(Command::Wakeup(w)) => waiters.extend(w),
                        Some(Command::Nudge) => {}
                        Some(Command::Reset(reply)) => {
                            let _ = reply.send(false);
                            continue;
                        }
                        None => break,
                    },
                    _ = self.sleep(next) => {}
                    _ = self.eligible(), if pending => {}
                }
            }
            while let Ok(c) = commands.try_recv() {
                match c {
                    Command::Wakeup(w) => waiters.extend(w),
                    Command::Nudge => {}
                    Command::Reset(reply) => {
                        let _ = reply.send(false);
                    }
                }
            }
            let started = Instant::now();
            let token = cancel.child_token();
            let run = self.invocation(&token);
            tokio::pin!(run);
            let mut queued = Vec::new();
            again = false;
            let woken = loop {
                tokio::select! {
                    w = &mut run => break w,
                    Some(c) = commands.recv() => match c {
                        Command::Wakeup(w) => {
                            again = true;
                            queued.extend(w);
                        }
                        // this invocation takes the re-driven work itself
                        Command::Nudge => {}
                        Command::Reset(reply) => {
                            info!(job = %self.p.name, "reset: aborting the current invocation");
                            token.cancel();
                            let _ = reply.send(true);
                        }
                    },
                }
            };
            // Wait for the gate only when it is what skipped this one (a
            // fatal pre_replication hook waits for the next wakeup).
            pending = woken.skipped.is_some()
                && self
                    .p
                    .target
                    .as_ref()
                    .is_some_and(|t| t.gate.read().may_run(self.p.clock.now()).is_err());
            for w in waiters.drain(..) {
                let _ = w.send(woken.clone());
            }
            waiters = queued;
            if cancel.is_cancelled() {
                break;
            }
            if !matches!(self.p.every, Every::Manual) {
                next = self.after(started);
            }
        }
    }

    /// Count a failure against the target (its backoff grows) and say so.
    fn failed_on(&self, t: &TargetPart, what: &str) {
        let now = self.p.clock.now();
        t.gate.invocation_ended(now, false);
        let h = t.gate.read().status(now);
        warn!(
            job = %self.p.name,
            target = %t.name,
            failures = h.failures,
            backoff_seconds = h.backoff_seconds,
            "{what}"
        );
    }

    /// Returns once the target's gate lets it run (never for a job that is
    /// not a fan-out target).
    async fn eligible(&self) {
        let Some(t) = &self.p.target else {
            return std::future::pending().await;
        };
        let mut rx = t.gate.subscribe();
        loop {
            let h = rx.borrow_and_update().clone();
            match h.may_run(self.p.clock.now()) {
                Ok(()) => return,
                Err(Skip::Backoff { until, .. }) => tokio::select! {
                    _ = self.p.clock.sleep_until(until) => {}
                    r = rx.changed() => if r.is_err() { std::future::pending::<()>().await },
                },
                Err(Skip::Unhealthy { .. }) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// One invocation: replicate, then prune both sides (unless cancelled).
    /// A fan-out target that may not run now is skipped, and waits for a
    /// free lane of its job otherwise.
    async fn invocation(&self, token: &CancellationToken) -> Woken {
        let p = &self.p;
        let mut _permit = None;
        if let Some(t) = &p.target {
            if let Err(skip) = t.gate.read().may_run(p.clock.now()) {
                if matches!(skip, Skip::Unhealthy { .. }) {
                    self.failed_on(t, &skip.to_string());
                } else {
                    info!(job = %p.name, target = %t.name, "{skip}");
                }
                return self.skip(skip.to_string());
            }
            self.status.update(|s| s.state = JobState::Waiting);
            _permit = tokio::select! {
                p = t.workers.clone().acquire_owned() => p.ok(),
                _ = token.cancelled() => None,
            };
            if token.is_cancelled() {
                self.status.update(|s| s.state = JobState::Idle);
                return Woken::default();
            }
        }
        if let Some(h) = &p.hooks {
            if let Err(why) = h.run(HookEvent::PreReplication, None).await {
                return self.skip(why);
            }
        }
        if let Some(r) = &p.replicas {
            // Renames first, so a renamed filesystem's next step is incremental.
            r.run(false).await;
        }
        let mut cfg = p.driver.clone();
        let journal = match &p.work {
            Some(w) => {
                let records = w.records().await;
                cfg.skip = super::work::WorkPart::dead(&records, w.job.as_str(), w.target.as_str());
                Some(w.journal(records))
            }
            None => None,
        };
        let mut driver = Driver::new(cfg, p.sender.clone(), p.receiver.clone(), token.clone());
        let record = match &p.history {
            Some(h) => Some(InvocationRecord::begin(h, p.name.as_str(), driver.report()).await),
            None => None,
        };
        let observer: Option<Arc<dyn zrelay_replication::Observer>> = match (&record, &journal) {
            (Some(r), Some(j)) => Some(Arc::new(zrelay_replication::Tee {
                primary: r.observer.clone(),
                secondary: j.observer.clone(),
            })),
            (Some(r), None) => Some(r.observer.clone()),
            (None, Some(j)) => Some(j.observer.clone()),
            (None, None) => None,
        };
        if let Some(o) = observer {
            driver = driver.with_observer(o);
        }
        let mut n = 0;
        self.status.update(|s| {
            s.invocations += 1;
            s.state = JobState::Replicating;
            s.next_run_at = None;
            n = s.invocations;
        });
        self.status.set_live(Some(driver.report()));
        let span = info_span!("job", job = %p.name, invocation = n);
        let (report, pruning) = async {
            info!(
                sender = %p.sender.describe(),
                receiver = %p.receiver.describe(),
                "replication starts"
            );
            let ticker = p.metrics.clone().map(|m| {
                let (live, job) = (driver.report(), p.name.to_string());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
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
            if let Some(j) = journal {
                j.finish(&report).await;
            }
            log_report(&report);
            if let Some(m) = &p.metrics {
                m.observe_report(p.name.as_str(), &report);
            }
            self.tell(&report, token.is_cancelled()).await;
            let pruning = if token.is_cancelled() {
                Vec::new()
            } else {
                self.prune().await
            };
            (report, pruning)
        }
        .instrument(span)
        .await;
        self.status.set_live(None);
        if let (Some(t), false) = (&p.target, token.is_cancelled()) {
            let progressed = report.planning_error.is_none()
                && (report.failed().next().is_none()
                    || report.filesystems.iter().any(|f| f.steps_done > 0));
            if progressed {
                t.gate.invocation_ended(p.clock.now(), true);
            } else {
                self.failed_on(t, "target backs off after a failed invocation");
            }
        }
        self.status.update(|s| {
            s.state = JobState::Idle;
            s.last_error = report.planning_error.clone().or_else(|| {
                report
                    .failed()
                    .next()
                    .map(|f| format!("{}: {}", f.fs, f.last_error.clone().unwrap_or_default()))
            });
            s.last = Some(report.clone());
            if !pruning.is_empty() {
                s.last_pruning = pruning.clone();
            }
        });
        Woken {
            report: Some(report),
            pruning,
            skipped: None,
            targets: Vec::new(),
        }
    }

    /// An invocation that did not run: why, in the status and for waiters.
    fn skip(&self, why: String) -> Woken {
        self.status.update(|s| {
            s.state = JobState::Idle;
            s.last_error = Some(why.clone());
        });
        Woken {
            skipped: Some(why),
            ..Woken::default()
        }
    }

    /// After an invocation: the notifier (when it failed) and the
    /// post_replication hooks, from one serialisation of the report.
    async fn tell(&self, report: &Report, cancelled: bool) {
        let p = &self.p;
        let notifier = p
            .notifier
            .as_ref()
            .filter(|_| !report.succeeded() && !cancelled);
        if notifier.is_none() && p.hooks.is_none() {
            return;
        }
        let json = serde_json::to_value(report).unwrap_or_default();
        if let Some(n) = notifier {
            let message = report.planning_error.clone().unwrap_or_else(|| {
                let failed: Vec<String> = report
                    .failed()
                    .map(|f| format!("{}: {}", f.fs, f.last_error.clone().unwrap_or_default()))
                    .collect();
                format!("failed: {}", failed.join("; "))
            });
            n.notify(
                p.name.as_str(),
                super::notify::NotifyEvent::InvocationFailed,
                message,
                json.clone(),
            );
        }
        if let Some(h) = &p.hooks {
            let outcome = super::hooks::Outcome {
                success: report.succeeded(),
                failed: report.failed().map(|f| f.fs.clone()).collect(),
                json: &json,
            };
            let _ = h.run(HookEvent::PostReplication, Some(outcome)).await;
        }
    }

    /// Prune both sides with one fresh listing of the sender, which also
    /// gives the lag metrics.
    async fn prune(&self) -> Vec<zrelay_pruning::PruneReport> {
        let p = &self.p;
        let listing = p.sender.list_filesystems().await.ok();
        if let (Some(l), Some(m), Some(f)) = (&listing, &p.metrics, &p.filter) {
            m.unmatched_user_specified(p.name.as_str(), unmatched(f, l));
        }
        if let Some(l) = &listing {
            if let Some(per_fs) =
                replicated_through(p.metrics.as_deref(), p.name.as_str(), l, &*p.receiver).await
            {
                let oldest = per_fs.iter().filter_map(|f| f.through).min();
                self.replicated_through
                    .store(oldest.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                self.status.update(|s| s.replicated = per_fs);
            }
        }
        let started = std::time::Instant::now();
        let run = super::record::RunRecord::begin(
            p.history.as_ref(),
            p.name.as_str(),
            zrelay_history::Kind::Prune,
        )
        .await;
        if let Some(h) = &p.hooks {
            if let Err(why) = h.run(HookEvent::PrePruning, None).await {
                warn!(job = %p.name, "pruning skipped: {why}");
                return Vec::new();
            }
        }
        let pruned = p.pruner.run(false, listing).await;
        if let Some(h) = &p.hooks {
            let json = serde_json::to_value(&pruned).unwrap_or_default();
            let outcome = super::hooks::Outcome {
                success: pruned.iter().all(|r| r.succeeded()),
                failed: pruned
                    .iter()
                    .flat_map(|r| r.filesystems.iter())
                    .filter(|f| f.error.is_some())
                    .map(|f| f.fs.to_string())
                    .collect(),
                json: &json,
            };
            let _ = h.run(HookEvent::PostPruning, Some(outcome)).await;
        }
        if let Some(r) = run {
            r.end(super::record::pruning_error(&pruned)).await;
        }
        if let Some(m) = &p.metrics {
            // Both sides are pruned in one pass; the time is shared.
            let secs = started.elapsed().as_secs_f64() / pruned.len().max(1) as f64;
            for r in &pruned {
                let side = match r.side {
                    zrelay_pruning::SideKind::Receiver => zrelay_metrics::Side::Receiver,
                    _ => zrelay_metrics::Side::Sender,
                };
                m.pruning_time(p.name.as_str(), side, secs);
            }
        }
        pruned
    }
}

#[async_trait]
impl Worker for ActiveWorker {
    fn name(&self) -> &str {
        self.p.name.as_str()
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus::Job(Box::new(self.status.read()))
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let mut commands = self
            .commands
            .try_lock()
            .map_err(|_| DaemonError::Config(format!("job {} is already running", self.p.name)))?;
        self.status.update(|s| s.state = JobState::Idle);
        let snap = async {
            if let Some(s) = &self.p.snap {
                s.run(cancel.clone()).await;
            }
        };
        tokio::join!(snap, self.invocations(&mut commands, &cancel));
        self.status.update(|s| {
            s.state = JobState::Stopped;
            s.next_run_at = None;
        });
        info!(job = %self.p.name, "job stopped");
        Ok(())
    }
}

fn log_report(report: &Report) {
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
}

/// How many datasets the filter names in an include rule that the sender's
/// listing did not find (zrepl's unmatched user-specified datasets).
fn unmatched(filter: &zrelay_endpoint::FsFilter, listing: &[FsListing]) -> u64 {
    let listed: std::collections::HashSet<&zrelay_zfs::DatasetPath> =
        listing.iter().map(|l| &l.path).collect();
    filter
        .rules()
        .iter()
        .filter(|r| r.include && r.path.dataset().is_some_and(|d| !listed.contains(d)))
        .count() as u64
}

/// Per-filesystem lag metrics: the creation time of the newest snapshot
/// both sides have (zrepl #516, #875), for each of the sender's
/// filesystems (`None` where the receiver has none); `None` when the
/// receiver cannot be listed.
async fn replicated_through(
    m: Option<&zrelay_metrics::Metrics>,
    job: &str,
    sender: &[FsListing],
    receiver: &dyn Receiver,
) -> Option<Vec<FsReplicated>> {
    let Ok(r) = receiver.list_filesystems().await else {
        return None;
    };
    let mut out = Vec::with_capacity(sender.len());
    let received: std::collections::HashMap<_, _> = r.iter().map(|l| (&l.path, l)).collect();
    for l in sender {
        if !l.versions.iter().any(|v| v.is_snapshot()) {
            continue; // nothing to replicate, no lag
        }
        let Some(rl) = received.get(&l.path) else {
            out.push(FsReplicated {
                fs: l.path.to_string(),
                through: None,
            });
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
        out.push(FsReplicated {
            fs: l.path.to_string(),
            through: newest.map(|v| u64::try_from(v.creation).unwrap_or(0)),
        });
        if let Some(v) = newest {
            let ts = u64::try_from(v.creation).unwrap_or(0);
            if let Some(m) = m {
                for side in [zrelay_metrics::Side::Sender, zrelay_metrics::Side::Receiver] {
                    m.fs_lag(job, l.path.as_str(), side, ts);
                }
            }
        }
    }
    Some(out)
}
