//! The SQL behind each operation, run on the database thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row as SqlRow, Transaction};

use crate::error::{HistoryError, Result};
use crate::model::{
    AttemptId, AttemptRecord, Filter, InvocationId, InvocationRecord, Kind, Row, StaleStep, State,
    StepId, StepRecord,
};

/// The error recorded on rows found queued or in flight at startup.
pub const STALE_ERROR: &str =
    "queued or in flight when the daemon stopped; marked stale at startup";
/// The error recorded on children still running when their parent ended.
const ORPHAN_ERROR: &str = "still running when its parent ended";

/// What [`Db::step_insert`] records about a new step.
#[derive(Debug, Clone)]
pub(crate) struct StepSpec {
    pub filesystem: String,
    pub from: Option<String>,
    pub to: String,
    pub resumed: bool,
    pub bytes_expected: Option<u64>,
}

/// The connection and the path its errors name.
pub(crate) struct Db {
    pub conn: Connection,
    pub path: PathBuf,
}

pub(crate) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn parse_col<T: std::str::FromStr>(r: &SqlRow<'_>, i: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let s: String = r.get(i)?;
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn opt_u64(r: &SqlRow<'_>, i: usize) -> rusqlite::Result<Option<u64>> {
    Ok(r.get::<_, Option<i64>>(i)?
        .map(|v| u64::try_from(v).unwrap_or(0)))
}

/// Reads a step from 11 columns starting at `at`: id, filesystem,
/// from_snapshot, to_snapshot, resumed, started, finished, bytes_expected,
/// bytes, state, error.
fn read_step(r: &SqlRow<'_>, at: usize) -> rusqlite::Result<StepRecord> {
    Ok(StepRecord {
        id: StepId(r.get(at)?),
        filesystem: r.get(at + 1)?,
        from_snapshot: r.get(at + 2)?,
        to_snapshot: r.get(at + 3)?,
        resumed: r.get(at + 4)?,
        started: from_ms(r.get(at + 5)?),
        finished: r.get::<_, Option<i64>>(at + 6)?.map(from_ms),
        bytes_expected: opt_u64(r, at + 7)?,
        bytes: opt_u64(r, at + 8)?.unwrap_or(0),
        state: parse_col(r, at + 9)?,
        error: r.get(at + 10)?,
    })
}

const STEP_COLS: &str = "s.id, s.filesystem, s.from_snapshot, s.to_snapshot, s.resumed, \
     s.started, s.finished, s.bytes_expected, s.bytes, s.state, s.error";

impl Db {
    fn err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        move |e| HistoryError::sqlite(&self.path, op, e)
    }

    fn not_found(&self, what: &'static str, id: i64) -> HistoryError {
        HistoryError::NotFound {
            path: self.path.clone(),
            what,
            id,
        }
    }

    fn tx(&mut self, op: &'static str) -> Result<Transaction<'_>> {
        let path = &self.path;
        self.conn
            .transaction()
            .map_err(|e| HistoryError::sqlite(path, op, e))
    }

    pub fn begin_invocation(&self, job: &str, kind: Kind, now: SystemTime) -> Result<InvocationId> {
        self.conn
            .execute(
                "INSERT INTO invocations (job, kind, started, state) VALUES (?1, ?2, ?3, 'in_flight')",
                params![job, kind.as_str(), to_ms(now)],
            )
            .map_err(self.err("begin an invocation"))?;
        Ok(InvocationId(self.conn.last_insert_rowid()))
    }

    /// Ends the invocation; its attempts and steps still running end as failed.
    pub fn end_invocation(
        &mut self,
        id: InvocationId,
        state: State,
        error: Option<&str>,
        now: SystemTime,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, "end an invocation", e);
        let tx = self.tx("end an invocation")?;
        let n = tx
            .execute(
                "UPDATE invocations SET state = ?2, error = ?3, finished = ?4 WHERE id = ?1",
                params![id.0, state.as_str(), error, to_ms(now)],
            )
            .map_err(e)?;
        tx.execute(
            "UPDATE steps SET state = 'failed', error = coalesce(error, ?2), finished = ?3 \
             WHERE state IN ('queued', 'in_flight') \
             AND attempt IN (SELECT id FROM attempts WHERE invocation = ?1)",
            params![id.0, ORPHAN_ERROR, to_ms(now)],
        )
        .map_err(e)?;
        tx.execute(
            "UPDATE attempts SET state = 'failed', error = coalesce(error, ?2), finished = ?3 \
             WHERE invocation = ?1 AND state IN ('queued', 'in_flight')",
            params![id.0, ORPHAN_ERROR, to_ms(now)],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        if n == 0 {
            return Err(self.not_found("invocation", id.0));
        }
        Ok(())
    }

    pub fn begin_attempt(&self, inv: InvocationId, now: SystemTime) -> Result<AttemptId> {
        let n = self
            .conn
            .execute(
                "INSERT INTO attempts (invocation, n, started, state) \
                 SELECT id, (SELECT count(*) + 1 FROM attempts WHERE invocation = ?1), ?2, 'in_flight' \
                 FROM invocations WHERE id = ?1",
                params![inv.0, to_ms(now)],
            )
            .map_err(self.err("begin an attempt"))?;
        if n == 0 {
            return Err(self.not_found("invocation", inv.0));
        }
        Ok(AttemptId(self.conn.last_insert_rowid()))
    }

    /// Ends the attempt; its steps still running end as failed.
    pub fn end_attempt(
        &mut self,
        id: AttemptId,
        state: State,
        error: Option<&str>,
        now: SystemTime,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, "end an attempt", e);
        let tx = self.tx("end an attempt")?;
        let n = tx
            .execute(
                "UPDATE attempts SET state = ?2, error = ?3, finished = ?4 WHERE id = ?1",
                params![id.0, state.as_str(), error, to_ms(now)],
            )
            .map_err(e)?;
        tx.execute(
            "UPDATE steps SET state = 'failed', error = coalesce(error, ?2), finished = ?3 \
             WHERE attempt = ?1 AND state IN ('queued', 'in_flight')",
            params![id.0, ORPHAN_ERROR, to_ms(now)],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        if n == 0 {
            return Err(self.not_found("attempt", id.0));
        }
        Ok(())
    }

    /// Records a new step, in `state` (queued or in flight).
    pub fn step_insert(
        &self,
        attempt: AttemptId,
        spec: &StepSpec,
        state: State,
        now: SystemTime,
    ) -> Result<StepId> {
        let n = self
            .conn
            .execute(
                "INSERT INTO steps (attempt, job, filesystem, from_snapshot, to_snapshot, resumed, \
                 started, bytes_expected, bytes, state) \
                 SELECT a.id, i.job, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8 \
                 FROM attempts a JOIN invocations i ON i.id = a.invocation WHERE a.id = ?1",
                params![
                    attempt.0,
                    spec.filesystem,
                    spec.from,
                    spec.to,
                    spec.resumed,
                    to_ms(now),
                    spec.bytes_expected.map(to_i64),
                    state.as_str(),
                ],
            )
            .map_err(self.err("record a step"))?;
        if n == 0 {
            return Err(self.not_found("attempt", attempt.0));
        }
        Ok(StepId(self.conn.last_insert_rowid()))
    }

    /// Moves a queued step to in flight, restarting its clock.
    pub fn step_begin(&self, id: StepId, now: SystemTime) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE steps SET state = 'in_flight', started = ?2 WHERE id = ?1 AND state = 'queued'",
                params![id.0, to_ms(now)],
            )
            .map_err(self.err("start a step"))?;
        if n == 0 {
            return Err(self.not_found("queued step", id.0));
        }
        Ok(())
    }

    pub fn step_finished(
        &self,
        id: StepId,
        state: State,
        bytes: u64,
        error: Option<&str>,
        now: SystemTime,
    ) -> Result<()> {
        let n = self
            .conn
            .execute(
                "UPDATE steps SET state = ?2, bytes = ?3, error = ?4, finished = ?5 WHERE id = ?1",
                params![id.0, state.as_str(), to_i64(bytes), error, to_ms(now)],
            )
            .map_err(self.err("finish a step"))?;
        if n == 0 {
            return Err(self.not_found("step", id.0));
        }
        Ok(())
    }

    /// Writes coalesced progress of running steps, in one transaction.
    pub fn flush_progress(&mut self, progress: &HashMap<StepId, u64>) -> Result<()> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, "record step progress", e);
        let tx = self.tx("record step progress")?;
        {
            let mut st = tx
                .prepare_cached(
                    "UPDATE steps SET bytes = ?2 WHERE id = ?1 AND state IN ('queued', 'in_flight')",
                )
                .map_err(e)?;
            for (id, bytes) in progress {
                st.execute(params![id.0, to_i64(*bytes)]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Marks everything queued or in flight as stale; returns the steps.
    pub fn mark_stale(&mut self) -> Result<Vec<StaleStep>> {
        let path = self.path.clone();
        let e = |e| HistoryError::sqlite(&path, "mark stale rows", e);
        let tx = self.tx("mark stale rows")?;
        let sql = format!(
            "SELECT i.job, i.id, a.id, {STEP_COLS} FROM steps s \
             JOIN attempts a ON a.id = s.attempt JOIN invocations i ON i.id = a.invocation \
             WHERE s.state IN ('queued', 'in_flight') ORDER BY s.id"
        );
        let mut stale: Vec<StaleStep> = {
            let mut st = tx.prepare(&sql).map_err(e)?;
            let rows = st
                .query_map([], |r| {
                    Ok(StaleStep {
                        job: r.get(0)?,
                        invocation: InvocationId(r.get(1)?),
                        attempt: AttemptId(r.get(2)?),
                        step: read_step(r, 3)?,
                    })
                })
                .map_err(e)?;
            rows.collect::<rusqlite::Result<_>>().map_err(e)?
        };
        let mut counts = [0usize; 3];
        for (i, table) in ["steps", "attempts", "invocations"].into_iter().enumerate() {
            counts[i] = tx
                .execute(
                    &format!(
                        "UPDATE {table} SET state = 'stale', error = coalesce(error, ?1) \
                         WHERE state IN ('queued', 'in_flight')"
                    ),
                    [STALE_ERROR],
                )
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        for s in &mut stale {
            s.step.state = State::Stale;
            s.step.error.get_or_insert_with(|| STALE_ERROR.to_owned());
        }
        if counts.iter().any(|&c| c > 0) {
            tracing::info!(
                steps = counts[0],
                attempts = counts[1],
                invocations = counts[2],
                "history: marked rows left running by the previous daemon as stale"
            );
        }
        Ok(stale)
    }

    pub fn query(&self, f: &Filter) -> Result<Vec<Row>> {
        let sql = format!(
            "SELECT i.id, i.job, i.kind, i.started, i.finished, i.state, i.error, \
                    a.id, a.n, a.started, a.finished, a.state, a.error, {STEP_COLS}, \
                    coalesce(s.started, a.started, i.started) AS t \
             FROM invocations i \
             LEFT JOIN attempts a ON a.invocation = i.id \
             LEFT JOIN steps s ON s.attempt = a.id \
             WHERE (?1 IS NULL OR i.job = ?1) \
               AND (?2 IS NULL OR s.filesystem = ?2 \
                    OR substr(s.filesystem, 1, length(?2) + 1) = ?2 || '/') \
               AND (?3 IS NULL OR t >= ?3) \
             ORDER BY t DESC, i.id DESC, a.id DESC, s.id DESC \
             LIMIT ?4"
        );
        let limit = f.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut st = self.conn.prepare_cached(&sql).map_err(self.err("query"))?;
        let rows = st
            .query_map(params![f.job, f.fs, f.since.map(to_ms), limit], |r| {
                let invocation = InvocationRecord {
                    id: InvocationId(r.get(0)?),
                    job: r.get(1)?,
                    kind: parse_col(r, 2)?,
                    started: from_ms(r.get(3)?),
                    finished: r.get::<_, Option<i64>>(4)?.map(from_ms),
                    state: parse_col(r, 5)?,
                    error: r.get(6)?,
                };
                let attempt = match r.get::<_, Option<i64>>(7)? {
                    None => None,
                    Some(id) => Some(AttemptRecord {
                        id: AttemptId(id),
                        n: r.get(8)?,
                        started: from_ms(r.get(9)?),
                        finished: r.get::<_, Option<i64>>(10)?.map(from_ms),
                        state: parse_col(r, 11)?,
                        error: r.get(12)?,
                    }),
                };
                let step = match r.get::<_, Option<i64>>(13)? {
                    None => None,
                    Some(_) => Some(read_step(r, 13)?),
                };
                Ok(Row {
                    invocation,
                    attempt,
                    step,
                })
            })
            .map_err(self.err("query"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.err("query"))
    }

    pub fn last_successful(&self, job: &str, kind: Kind) -> Result<Option<SystemTime>> {
        let ms: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(finished) FROM invocations \
                 WHERE job = ?1 AND kind = ?2 AND state = 'completed'",
                params![job, kind.as_str()],
                |r| r.get(0),
            )
            .map_err(self.err("read the last success"))?;
        Ok(ms.map(from_ms))
    }

    pub fn last_replicated(&self, job: &str, fs: &str) -> Result<Option<(String, SystemTime)>> {
        self.conn
            .query_row(
                "SELECT to_snapshot, finished FROM steps \
                 WHERE job = ?1 AND filesystem = ?2 AND state = 'completed' AND finished IS NOT NULL \
                 ORDER BY finished DESC, id DESC LIMIT 1",
                params![job, fs],
                |r| Ok((r.get::<_, String>(0)?, from_ms(r.get(1)?))),
            )
            .optional()
            .map_err(self.err("read the last replicated snapshot"))
    }

    /// Deletes invocations (with their attempts and steps) that ended
    /// before `cutoff`. Never deletes running ones, the newest completed
    /// invocation of each job and kind, nor the invocation holding the newest
    /// completed step of each job and filesystem: the metrics read those.
    pub fn trim_before(&self, cutoff: SystemTime) -> Result<usize> {
        self.conn
            .execute(
                "DELETE FROM invocations \
                 WHERE coalesce(finished, started) < ?1 \
                   AND state NOT IN ('queued', 'in_flight') \
                   AND id NOT IN (SELECT max(id) FROM invocations \
                                  WHERE state = 'completed' GROUP BY job, kind) \
                   AND id NOT IN (SELECT a.invocation FROM attempts a JOIN steps s ON s.attempt = a.id \
                                  WHERE s.id IN (SELECT max(id) FROM steps \
                                                 WHERE state = 'completed' GROUP BY job, filesystem))",
                [to_ms(cutoff)],
            )
            .map_err(self.err("trim"))
    }
}

/// Opens a [`Db`] on `path` with `open` (read-write or read-only).
pub(crate) fn open_db(path: &Path, read_only: bool) -> Result<Db> {
    let conn = if read_only {
        crate::schema::open_read_only(path)?
    } else {
        crate::schema::open_read_write(path)?
    };
    Ok(Db {
        conn,
        path: path.to_owned(),
    })
}
