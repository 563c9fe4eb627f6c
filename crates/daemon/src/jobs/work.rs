//! A lane's durable work records (`zrelay-queue`): one record per (job,
//! target, filesystem), kept in step with what the driver does.
//!
//! - Before an invocation, the filesystems whose record is **dead** are
//!   handed to the driver as skipped (they wait for `zrelay queue retry`
//!   and block nothing else).
//! - When a filesystem's first step starts, its record is enqueued and
//!   **acquired** (in_progress, with a lease that a heartbeat renews every
//!   third of the lease while the invocation runs).
//! - When the invocation ends, each held record **completes** (the
//!   filesystem is done) or **fails** (temporary: backoff; permanent, or too
//!   many failures: dead). A filesystem that could not be planned (a
//!   conflict: diverged, no common snapshot, a newer snapshot on the
//!   receiver) fails permanently: its record is dead with the conflict, and
//!   the target is never rolled back. A filesystem found up to date
//!   completes a record that was waiting (ready or failed) as a no-op.
//! - A cancelled invocation (reset, shutdown) leaves its records
//!   in_progress: their leases expire and the re-drive chore
//!   ([`super::redrive`]) brings them back, so a killed daemon's work is
//!   resumed, from the receiver's resume token, with no wakeup.
//!
//! Every queue call is logged on failure and never fails the invocation:
//! the queue records replication, it does not gate it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};
use zrelay_queue::{
    Claim, Filter, JobId, LastError, Queue, Record, RecordKey, State, TargetName, WorkerId,
};
use zrelay_replication::{FsState, Observer, Report, StepEnd, StepReport};
use zrelay_zfs::{DatasetPath, ErrorClass};

/// The queue as one lane sees it.
#[derive(Clone)]
pub(crate) struct WorkPart {
    pub queue: Queue,
    pub job: JobId,
    pub target: TargetName,
    pub worker: WorkerId,
    /// Steps in flight and their latency, per target.
    pub metrics: Option<Arc<zrelay_metrics::Metrics>>,
    /// Told when a record goes dead.
    pub notifier: Option<Arc<super::notify::Notifier>>,
}

/// The target name of a job with one target (push with `connect`, pull).
pub(crate) const DEFAULT_TARGET: &str = "default";

/// A worker id for this process and lane: `<pid>.<job>.<target>`, cut to
/// the queue's limit, characters outside `[A-Za-z0-9_.:-]` replaced.
pub(crate) fn worker_id(job: &str, target: &str) -> Option<WorkerId> {
    let raw = format!("{}.{job}.{target}", std::process::id());
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(zrelay_queue::MAX_NAME_LEN)
        .collect();
    WorkerId::new(&clean).ok()
}

fn log<T>(what: &str, r: zrelay_queue::Result<T>) -> Option<T> {
    r.map_err(|e| warn!(error = %e, "queue: cannot {what}"))
        .ok()
}

impl WorkPart {
    fn scope(&self) -> Filter {
        Filter {
            job: Some(self.job.clone()),
            target: Some(self.target.clone()),
            ..Filter::default()
        }
    }

    fn key(&self, fs: &str) -> Option<RecordKey> {
        let fs = DatasetPath::parse(fs).ok()?;
        Some(RecordKey::new(self.job.clone(), self.target.clone(), fs))
    }

    /// The lane's records, by filesystem.
    pub async fn records(&self) -> BTreeMap<String, Record> {
        log("list records", self.queue.list(&self.scope()).await)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.key.filesystem.to_string(), r))
            .collect()
    }

    /// The driver's skip list: dead records, with the reason.
    pub fn dead(
        records: &BTreeMap<String, Record>,
        job: &str,
        target: &str,
    ) -> BTreeMap<String, String> {
        records
            .iter()
            .filter(|(_, r)| r.state == State::Dead)
            .map(|(fs, r)| {
                let why = r
                    .last_error
                    .as_ref()
                    .map_or_else(String::new, |e| e.message.clone());
                (
                    fs.clone(),
                    format!(
                        "dead in the work queue ({}): {why}; {}",
                        r.dead_reason.map_or("dead", |d| d.as_str()),
                        retry_hint(job, target, fs)
                    ),
                )
            })
            .collect()
    }

    /// Start journaling one invocation; `records` as listed before it.
    pub fn journal(&self, records: BTreeMap<String, Record>) -> Journal {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(self.clone(), records, rx));
        Journal {
            observer: Arc::new(JournalObserver { tx: tx.clone() }),
            tx,
            task,
        }
    }
}

enum Event {
    Started(String, Option<u64>),
    Finished(String, std::time::Instant),
    Dead(String, String),
    End(Report, oneshot::Sender<()>),
}

/// The driver's observer: forwards step events to the journal's task.
pub(crate) struct JournalObserver {
    tx: mpsc::UnboundedSender<Event>,
}

impl Observer for JournalObserver {
    fn step_started(&self, fs: &str, step: &StepReport) -> u64 {
        let _ = self
            .tx
            .send(Event::Started(fs.to_string(), step.to_created));
        0
    }
    fn step_finished(&self, _id: u64, fs: &str, _bytes: u64, end: StepEnd) {
        let _ = self
            .tx
            .send(Event::Finished(fs.to_string(), std::time::Instant::now()));
        if let StepEnd::Dead(e) = end {
            let _ = self.tx.send(Event::Dead(fs.to_string(), e));
        }
    }
}

/// One invocation's journal.
pub(crate) struct Journal {
    pub observer: Arc<JournalObserver>,
    tx: mpsc::UnboundedSender<Event>,
    task: tokio::task::JoinHandle<()>,
}

impl Journal {
    /// Settle every record by the invocation's final report; returns once
    /// the queue has them.
    pub async fn finish(self, report: &Report) {
        let Journal { observer, tx, task } = self;
        // The task ends when every sender is gone: the driver's copy went
        // with the driver, these are the last.
        drop(observer);
        let (done, wait) = oneshot::channel();
        if tx.send(Event::End(report.clone(), done)).is_ok() {
            let _ = wait.await;
        }
        drop(tx);
        let _ = task.await;
    }
}

async fn run(
    w: WorkPart,
    records: BTreeMap<String, Record>,
    mut rx: mpsc::UnboundedReceiver<Event>,
) {
    let mut claims: HashMap<String, Claim> = HashMap::new();
    let mut running: HashMap<String, std::time::Instant> = HashMap::new();
    let (job, target) = (w.job.to_string(), w.target.to_string());
    let beat = (w.queue.policy().lease() / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(beat);
    ticker.tick().await;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            _ = ticker.tick() => {
                let mut lost = Vec::new();
                for (fs, c) in &claims {
                    if let Err(e) = w.queue.heartbeat(c).await {
                        warn!(error = %e, fs = %fs, "queue: lease not renewed");
                        lost.push(fs.clone());
                    }
                }
                for fs in lost {
                    claims.remove(&fs);
                }
                continue;
            }
        };
        match ev {
            Event::Started(fs, created) => {
                if let Some(m) = &w.metrics {
                    let now = zrelay_replication::report::unix(std::time::SystemTime::now());
                    let delay = created.map(|c| now.saturating_sub(c) as f64);
                    m.step_started(&job, &target, delay);
                }
                running.insert(fs.clone(), std::time::Instant::now());
                if let std::collections::hash_map::Entry::Vacant(e) = claims.entry(fs) {
                    if let Some(c) = acquire(&w, e.key()).await {
                        e.insert(c);
                    }
                }
            }
            Event::Finished(fs, at) => {
                if let (Some(m), Some(t0)) = (&w.metrics, running.remove(&fs)) {
                    m.step_finished(&job, &target, at.duration_since(t0).as_secs_f64());
                }
            }
            Event::Dead(fs, e) => {
                if let Some(c) = claims.remove(&fs) {
                    fail(&w, &c, e, ErrorClass::Permanent).await;
                }
            }
            Event::End(report, done) => {
                if let Some(m) = &w.metrics {
                    for (_, t0) in running.drain() {
                        m.step_finished(&job, &target, t0.elapsed().as_secs_f64());
                    }
                }
                settle(&w, &records, &mut claims, &report).await;
                let _ = done.send(());
            }
        }
    }
}

async fn acquire(w: &WorkPart, fs: &str) -> Option<Claim> {
    let key = w.key(fs)?;
    log("enqueue", w.queue.enqueue(key.clone(), None).await)?;
    let scope = Filter {
        filesystem: Some(key.filesystem.clone()),
        ..w.scope()
    };
    match log("acquire", w.queue.acquire(&w.worker, &scope).await)? {
        Some(a) => Some(a.claim),
        None => {
            info!(record = %key, "queue: record held by another worker (a lease of a previous run?); it is re-driven when that lease expires");
            None
        }
    }
}

/// What an operator runs once a dead record's cause is fixed.
fn retry_hint(job: &str, target: &str, fs: &str) -> String {
    format!("after fixing it, run `zrelay queue retry {job} {target} {fs}`")
}

async fn fail(w: &WorkPart, c: &Claim, message: String, class: ErrorClass) {
    if let Some(r) = log(
        "record a failure",
        w.queue.fail(c, LastError { message, class }).await,
    ) {
        if r.state == State::Dead {
            warn!(record = %r.key, reason = r.dead_reason.map_or("", |d| d.as_str()), "queue: record dead; `zrelay queue retry` once fixed");
            if let Some(n) = &w.notifier {
                let message = format!(
                    "{} is dead in the work queue ({}); {}",
                    r.key,
                    r.dead_reason.map_or("dead", |d| d.as_str()),
                    retry_hint(
                        r.key.job.as_str(),
                        r.key.target.as_str(),
                        r.key.filesystem.as_str()
                    )
                );
                let json = serde_json::to_value(&r).unwrap_or_default();
                n.notify(
                    w.job.as_str(),
                    super::notify::NotifyEvent::RecordDead,
                    message,
                    json,
                );
            }
        }
    }
}

async fn settle(
    w: &WorkPart,
    records: &BTreeMap<String, Record>,
    claims: &mut HashMap<String, Claim>,
    report: &Report,
) {
    if report.state == zrelay_replication::AttemptState::Cancelled {
        // Leave the leases: they expire and the work is re-driven.
        claims.clear();
        return;
    }
    for f in &report.filesystems {
        let error = || f.last_error.clone().unwrap_or_else(|| "failed".into());
        match (claims.remove(&f.fs), f.state) {
            (Some(c), FsState::Done) => {
                log("complete a record", w.queue.complete(&c).await);
            }
            (Some(c), _) => fail(w, &c, error(), ErrorClass::Temporary).await,
            // Failed before its first step: a conflict (permanent), or a
            // temporary failure while protecting the steps (a snapshot
            // another job pruned after planning), which is retried.
            (None, FsState::Failed) if f.steps_done == 0 => {
                if let Some(c) = acquire(w, &f.fs).await {
                    fail(w, &c, error(), ErrorClass::from_temporary(f.temporary)).await;
                }
            }
            (None, FsState::Done) => {
                let waiting = records
                    .get(&f.fs)
                    .is_some_and(|r| matches!(r.state, State::Ready | State::Failed));
                if waiting {
                    if let Some(c) = acquire(w, &f.fs).await {
                        log("complete a record", w.queue.complete(&c).await);
                    }
                }
            }
            _ => {}
        }
    }
    // Waiting records of filesystems the sender no longer has (or no
    // longer replicates): nothing will ever complete them.
    if report.planning_error.is_none() {
        for (fs, r) in records {
            let gone = !report.filesystems.iter().any(|f| &f.fs == fs);
            if gone && matches!(r.state, State::Ready | State::Failed) {
                if let Some(d) = log("drop a record", w.queue.drop_record(&r.key).await) {
                    info!(record = %d.key, "queue: dropped: the filesystem is no longer replicated");
                }
            }
        }
    }
    // Claims of filesystems the report does not name (should not happen):
    // release them as failures so they are retried.
    for (_, c) in claims.drain() {
        fail(
            w,
            &c,
            "not in the invocation's report".into(),
            ErrorClass::Temporary,
        )
        .await;
    }
}
