//! [`Queue`]: the SQLite store. Every operation is one `BEGIN IMMEDIATE`
//! transaction (the write lock is taken before the read, so two
//! connections, even in two processes, serialise), which loads the record,
//! applies the pure transition of [`crate::machine`] and writes it back with
//! a guarded `UPDATE` (the row must still be as read). The blocking SQLite
//! calls run on tokio's blocking pool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Transaction, TransactionBehavior};
use serde::Serialize;
use zrelay_zfs::DatasetPath;

use crate::clock::Clock;
use crate::error::{QueueError, Result};
use crate::machine::{EnqueueOutcome, Policy};
use crate::model::{
    Claim, JobId, LastError, Record, RecordKey, State, TargetName, TargetSnapshot, WorkerId,
};
use crate::{schema, sql};

/// Which records a query, or an acquire, considers. `Default` is all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this job.
    pub job: Option<JobId>,
    /// Only this target.
    pub target: Option<TargetName>,
    /// Only this filesystem.
    pub filesystem: Option<DatasetPath>,
    /// Only this state (ignored by [`Queue::acquire`]).
    pub state: Option<State>,
}

impl Filter {
    /// Only records of `target` (a per-target worker's scope).
    pub fn target(target: TargetName) -> Filter {
        Filter {
            target: Some(target),
            ..Filter::default()
        }
    }
}

/// The number of records per state (the queue-depth metric).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Depth {
    /// Ready records.
    pub ready: u64,
    /// In-progress records.
    pub in_progress: u64,
    /// Completed records.
    pub completed: u64,
    /// Failed records (in backoff or eligible).
    pub failed: u64,
    /// Dead records.
    pub dead: u64,
}

impl Depth {
    /// The count for `state`.
    pub fn get(&self, state: State) -> u64 {
        match state {
            State::Ready => self.ready,
            State::InProgress => self.in_progress,
            State::Completed => self.completed,
            State::Failed => self.failed,
            State::Dead => self.dead,
        }
    }

    fn slot(&mut self, state: State) -> &mut u64 {
        match state {
            State::Ready => &mut self.ready,
            State::InProgress => &mut self.in_progress,
            State::Completed => &mut self.completed,
            State::Failed => &mut self.failed,
            State::Dead => &mut self.dead,
        }
    }

    /// All records.
    pub fn total(&self) -> u64 {
        State::ALL.iter().map(|&s| self.get(s)).sum()
    }
}

/// A record just acquired, with the claim that proves the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// Pass this to heartbeat, complete and fail.
    pub claim: Claim,
    /// The record, in_progress.
    pub record: Record,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
    clock: Arc<dyn Clock>,
    policy: Policy,
}

/// A handle on the queue database. Cheap to clone. Several handles (or
/// processes) may open the same file; they never take the same record.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.inner.path)
            .field("policy", &self.inner.policy)
            .finish()
    }
}

/// The context a database call runs in.
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a Path,
    pub(crate) now: SystemTime,
    policy: &'a Policy,
}

impl Ctx<'_> {
    pub(crate) fn sql(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> QueueError + '_ {
        move |e| QueueError::sqlite(self.path, op, e)
    }

    fn load(&self, tx: &Transaction<'_>, key: &RecordKey) -> Result<Record> {
        sql::load(tx, key)
            .map_err(self.sql("read a record"))?
            .ok_or_else(|| QueueError::NotFound {
                path: self.path.to_owned(),
                key: key.clone(),
            })
    }
}

impl Queue {
    /// Opens (creating and migrating if need be) the database at `path`.
    pub async fn open(
        path: impl AsRef<Path>,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Result<Queue> {
        let path = path.as_ref().to_owned();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || schema::open(&p))
            .await
            .map_err(|e| QueueError::Task {
                path: path.clone(),
                reason: e.to_string(),
            })??;
        Ok(Queue {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
                clock,
                policy,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The policy the queue applies.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Runs `f` in one immediate transaction on the blocking pool; commits
    /// when `f` succeeds. The work completes even if the future is dropped.
    pub(crate) async fn tx<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Ctx<'_>) -> Result<T> + Send + 'static,
    {
        self.run(op, TransactionBehavior::Immediate, f).await
    }

    /// Like [`Queue::tx`] for reading only: a deferred transaction (one
    /// consistent snapshot, no write lock).
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Ctx<'_>) -> Result<T> + Send + 'static,
    {
        self.run(op, TransactionBehavior::Deferred, f).await
    }

    async fn run<T, F>(&self, op: &'static str, behavior: TransactionBehavior, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Ctx<'_>) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let now = sql::truncate(inner.clock.now());
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let ctx = Ctx {
                path: &inner.path,
                now,
                policy: &inner.policy,
            };
            let tx = conn
                .transaction_with_behavior(behavior)
                .map_err(ctx.sql(op))?;
            let out = f(&tx, &ctx)?;
            tx.commit().map_err(ctx.sql(op))?;
            Ok(out)
        })
        .await
        .map_err(|e| QueueError::Task {
            path: self.inner.path.clone(),
            reason: e.to_string(),
        })?
    }

    /// Notes work for `key`: the target should reach `snapshot` (`None`:
    /// whatever is newest). Creates the record or updates it as the state
    /// machine says ([`Record::enqueue`]).
    pub async fn enqueue(
        &self,
        key: RecordKey,
        snapshot: Option<TargetSnapshot>,
    ) -> Result<EnqueueOutcome> {
        self.tx("enqueue", move |tx, ctx| {
            match sql::load(tx, &key).map_err(ctx.sql("read a record"))? {
                None => {
                    sql::write(tx, ctx.path, None, &Record::new(key, snapshot, ctx.now))?;
                    Ok(EnqueueOutcome::Created)
                }
                Some(old) => {
                    let mut new = old.clone();
                    let outcome = new.enqueue(snapshot, ctx.now);
                    if new != old {
                        sql::write(tx, ctx.path, Some(&old), &new)?;
                    }
                    Ok(outcome)
                }
            }
        })
        .await
    }

    /// Takes the longest-waiting eligible record in `scope` (ready, or
    /// failed past its backoff) for `worker`; `None` when there is none.
    /// Atomic: no two callers, in any process, get the same record.
    pub async fn acquire(&self, worker: &WorkerId, scope: &Filter) -> Result<Option<Acquired>> {
        let (worker, scope) = (
            worker.clone(),
            Filter {
                state: None,
                ..scope.clone()
            },
        );
        self.tx("acquire", move |tx, ctx| {
            let (cond, values) = sql::filter_sql(&scope, 2);
            let query = format!(
                "SELECT {} FROM records WHERE (state = 'ready' OR (state = 'failed' \
                 AND (next_eligible IS NULL OR next_eligible <= ?1))){cond} \
                 ORDER BY updated, job, target, filesystem LIMIT 1",
                sql::COLUMNS
            );
            let params = std::iter::once(Value::Integer(sql::to_ms(ctx.now)))
                .chain(values.into_iter().map(Value::Text));
            let mut stmt = tx
                .prepare(&query)
                .map_err(ctx.sql("find a record to acquire"))?;
            let found = stmt
                .query_map(params_from_iter(params), sql::read)
                .map_err(ctx.sql("find a record to acquire"))?
                .next()
                .transpose()
                .map_err(ctx.sql("find a record to acquire"))?;
            let Some(old) = found else { return Ok(None) };
            let mut record = old.clone();
            let claim = record.acquire(&worker, ctx.now, ctx.policy)?;
            sql::write(tx, ctx.path, Some(&old), &record)?;
            Ok(Some(Acquired { claim, record }))
        })
        .await
    }

    /// Runs a claim-checked transition on the claimed record.
    async fn with_claim<T, F>(&self, op: &'static str, claim: &Claim, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Record, &Claim, &Ctx<'_>) -> Result<T> + Send + 'static,
    {
        let claim = claim.clone();
        self.tx(op, move |tx, ctx| {
            let old = ctx.load(tx, &claim.key)?;
            let mut new = old.clone();
            let out = f(&mut new, &claim, ctx)?;
            sql::write(tx, ctx.path, Some(&old), &new)?;
            Ok(out)
        })
        .await
    }

    /// Renews the claim's lease; returns the new expiry. Fails with a lost
    /// lease once the record was re-driven, retried or ended.
    pub async fn heartbeat(&self, claim: &Claim) -> Result<SystemTime> {
        self.with_claim("heartbeat", claim, |r, c, ctx| {
            Ok(r.heartbeat(c, ctx.now, ctx.policy)?)
        })
        .await
    }

    /// Ends the claim's step successfully; returns the record (completed,
    /// or ready when newer work arrived meanwhile).
    pub async fn complete(&self, claim: &Claim) -> Result<Record> {
        self.with_claim("complete", claim, |r, c, ctx| {
            r.complete(c, ctx.now)?;
            Ok(r.clone())
        })
        .await
    }

    /// Ends the claim's step with `error`; returns the record (failed with
    /// backoff, or dead).
    pub async fn fail(&self, claim: &Claim, error: LastError) -> Result<Record> {
        self.with_claim("fail", claim, move |r, c, ctx| {
            r.fail(c, error, ctx.now, ctx.policy)?;
            Ok(r.clone())
        })
        .await
    }

    /// Takes back every lease past its expiry (a crashed or killed worker):
    /// those records are ready at once. Returns them, re-driven. Call at
    /// startup and periodically.
    pub async fn expire_leases(&self) -> Result<Vec<Record>> {
        self.tx("expire leases", |tx, ctx| {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {} FROM records WHERE state = 'in_progress' AND lease_expires <= ?1 \
                     ORDER BY lease_expires",
                    sql::COLUMNS
                ))
                .map_err(ctx.sql("find expired leases"))?;
            let expired = stmt
                .query_map([sql::to_ms(ctx.now)], sql::read)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(ctx.sql("find expired leases"))?;
            let mut out = Vec::with_capacity(expired.len());
            for old in expired {
                let mut new = old.clone();
                let owner = new.expire(ctx.now)?;
                sql::write(tx, ctx.path, Some(&old), &new)?;
                tracing::info!(record = %new.key, %owner, "queue: lease expired; re-driven");
                out.push(new);
            }
            Ok(out)
        })
        .await
    }

    /// The operator's retry: a dead or failed record is ready at once,
    /// attempts reset.
    pub async fn retry(&self, key: &RecordKey) -> Result<Record> {
        let key = key.clone();
        self.tx("retry", move |tx, ctx| {
            let old = ctx.load(tx, &key)?;
            let mut new = old.clone();
            new.retry(ctx.now)?;
            sql::write(tx, ctx.path, Some(&old), &new)?;
            Ok(new)
        })
        .await
    }

    /// The operator's drop: removes the record (refused while in_progress);
    /// returns what was removed. Enqueueing the key again starts afresh.
    pub async fn drop_record(&self, key: &RecordKey) -> Result<Record> {
        let key = key.clone();
        self.tx("drop", move |tx, ctx| {
            let old = ctx.load(tx, &key)?;
            old.check_drop()?;
            tx.execute(
                "DELETE FROM records WHERE job = ?1 AND target = ?2 AND filesystem = ?3",
                [
                    key.job.as_str(),
                    key.target.as_str(),
                    key.filesystem.as_str(),
                ],
            )
            .map_err(ctx.sql("drop a record"))?;
            Ok(old)
        })
        .await
    }

    /// The record with `key`, if any.
    pub async fn get(&self, key: &RecordKey) -> Result<Option<Record>> {
        let key = key.clone();
        self.read("read a record", move |tx, ctx| {
            sql::load(tx, &key).map_err(ctx.sql("read a record"))
        })
        .await
    }

    /// The records matching `filter`, by job, target and filesystem
    /// (`zrelay queue list`).
    pub async fn list(&self, filter: &Filter) -> Result<Vec<Record>> {
        let filter = filter.clone();
        self.read("list", move |tx, ctx| {
            let (cond, values) = sql::filter_sql(&filter, 1);
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {} FROM records WHERE 1{cond} ORDER BY job, target, filesystem",
                    sql::COLUMNS
                ))
                .map_err(ctx.sql("list records"))?;
            let rows = stmt
                .query_map(params_from_iter(values), sql::read)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(ctx.sql("list records"))?;
            Ok(rows)
        })
        .await
    }

    /// The number of records per state among those matching `filter`.
    pub async fn depth(&self, filter: &Filter) -> Result<Depth> {
        let by = self.depth_by_target(filter).await?;
        let mut total = Depth::default();
        for d in by.values() {
            for s in State::ALL {
                *total.slot(s) += d.get(s);
            }
        }
        Ok(total)
    }

    /// [`Queue::depth`] per target (for the metric labelled by target).
    pub async fn depth_by_target(&self, filter: &Filter) -> Result<BTreeMap<TargetName, Depth>> {
        let filter = filter.clone();
        self.read("count records", move |tx, ctx| {
            let (cond, values) = sql::filter_sql(&filter, 1);
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT target, state, count(*) FROM records WHERE 1{cond} \
                     GROUP BY target, state"
                ))
                .map_err(ctx.sql("count records"))?;
            let rows = stmt
                .query_map(params_from_iter(values), |r| {
                    let target =
                        TargetName::new(&r.get::<_, String>(0)?).map_err(|e| sql::bad(0, e))?;
                    let state: State =
                        r.get::<_, String>(1)?.parse().map_err(|e| sql::bad(1, e))?;
                    Ok((target, state, r.get::<_, i64>(2)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(ctx.sql("count records"))?;
            let mut out: BTreeMap<TargetName, Depth> = BTreeMap::new();
            for (target, state, n) in rows {
                *out.entry(target).or_default().slot(state) += u64::try_from(n).unwrap_or(0);
            }
            Ok(out)
        })
        .await
    }

    /// The earliest time a failed record in `scope` becomes eligible (for a
    /// worker that found nothing to do and wants to sleep until then).
    pub async fn next_eligible(&self, scope: &Filter) -> Result<Option<SystemTime>> {
        let scope = Filter {
            state: None,
            ..scope.clone()
        };
        self.read("find the next eligible time", move |tx, ctx| {
            let (cond, values) = sql::filter_sql(&scope, 1);
            let ms: Option<i64> = tx
                .query_row(
                    &format!("SELECT min(next_eligible) FROM records WHERE state = 'failed'{cond}"),
                    params_from_iter(values),
                    |r| r.get(0),
                )
                .map_err(ctx.sql("find the next eligible time"))?;
            Ok(ms.map(sql::from_ms))
        })
        .await
    }
}
