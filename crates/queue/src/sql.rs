//! Records to and from rows, and the guarded write that every transition
//! ends with. Runs inside the store's transactions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{ToSql, Type};
use rusqlite::{params, Connection, OptionalExtension, Row};
use zrelay_zfs::DatasetPath;

use crate::error::QueueError;
use crate::model::{
    class_serde, DeadReason, JobId, LastError, Lease, PendingWork, Record, RecordKey, State,
    TargetName, TargetSnapshot, WorkerId,
};
use crate::store::Filter;

/// The columns, in the order [`read`] expects.
pub(crate) const COLUMNS: &str = "job, target, filesystem, state, attempts, \
    snapshot_name, snapshot_guid, pending, pending_name, pending_guid, error, error_class, \
    dead_reason, lease_owner, lease_expires, generation, next_eligible, enqueued, updated";

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

/// `t` cut to what the database stores (whole milliseconds).
pub(crate) fn truncate(t: SystemTime) -> SystemTime {
    from_ms(to_ms(t))
}

fn guid_to_sql(g: u64) -> i64 {
    i64::from_ne_bytes(g.to_ne_bytes())
}

fn guid_from_sql(g: i64) -> u64 {
    u64::from_ne_bytes(g.to_ne_bytes())
}

pub(crate) fn bad<E: std::error::Error + Send + Sync + 'static>(i: usize, e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e))
}

#[derive(Debug, thiserror::Error)]
#[error("unknown value {0:?}")]
struct Unknown(String);

fn snapshot(r: &Row<'_>, name: usize) -> rusqlite::Result<Option<TargetSnapshot>> {
    let n: Option<String> = r.get(name)?;
    let g: Option<i64> = r.get(name + 1)?;
    match (n, g) {
        (Some(n), Some(g)) => TargetSnapshot::new(&n, guid_from_sql(g))
            .map(Some)
            .map_err(|e| bad(name, e)),
        _ => Ok(None),
    }
}

fn time(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<SystemTime>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(from_ms))
}

/// Reads a record from the [`COLUMNS`].
pub(crate) fn read(r: &Row<'_>) -> rusqlite::Result<Record> {
    let text = |i: usize| r.get::<_, String>(i);
    let key = RecordKey {
        job: JobId::new(&text(0)?).map_err(|e| bad(0, e))?,
        target: TargetName::new(&text(1)?).map_err(|e| bad(1, e))?,
        filesystem: DatasetPath::parse(&text(2)?).map_err(|e| bad(2, e))?,
    };
    let state: State = text(3)?.parse().map_err(|e| bad(3, e))?;
    let attempts = u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX);
    let pending = if r.get::<_, bool>(7)? {
        Some(PendingWork {
            snapshot: snapshot(r, 8)?,
        })
    } else {
        None
    };
    let last_error = match (
        r.get::<_, Option<String>>(10)?,
        r.get::<_, Option<String>>(11)?,
    ) {
        (Some(message), Some(c)) => Some(LastError {
            message,
            class: class_serde::parse(&c).ok_or_else(|| bad(11, Unknown(c)))?,
        }),
        _ => None,
    };
    let dead_reason = match r.get::<_, Option<String>>(12)? {
        Some(s) => Some(DeadReason::parse(&s).ok_or_else(|| bad(12, Unknown(s)))?),
        None => None,
    };
    let lease = match (r.get::<_, Option<String>>(13)?, time(r, 14)?) {
        (Some(owner), Some(expires)) => Some(Lease {
            owner: WorkerId::new(&owner).map_err(|e| bad(13, e))?,
            expires,
        }),
        _ => None,
    };
    Ok(Record {
        key,
        state,
        attempts,
        snapshot: snapshot(r, 5)?,
        pending,
        last_error,
        dead_reason,
        lease,
        generation: u64::try_from(r.get::<_, i64>(15)?).unwrap_or(0),
        next_eligible: time(r, 16)?,
        enqueued: from_ms(r.get(17)?),
        updated: from_ms(r.get(18)?),
    })
}

/// The record with `key`, if any.
pub(crate) fn load(conn: &Connection, key: &RecordKey) -> rusqlite::Result<Option<Record>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM records WHERE job = ?1 AND target = ?2 AND filesystem = ?3"
        ),
        params![
            key.job.as_str(),
            key.target.as_str(),
            key.filesystem.as_str()
        ],
        read,
    )
    .optional()
}

/// Writes `new`. With `old`, the update is guarded: it applies only if the
/// row still has `old`'s state, generation and update time, so a write
/// based on a stale read changes nothing and fails with
/// [`QueueError::Conflict`]. Without `old`, the row is inserted.
pub(crate) fn write(
    conn: &Connection,
    path: &std::path::Path,
    old: Option<&Record>,
    new: &Record,
) -> Result<(), QueueError> {
    if let Err(broken) = new.check_invariants() {
        return Err(QueueError::Invariant {
            key: new.key.clone(),
            broken,
        });
    }
    let snap = |s: Option<&TargetSnapshot>| {
        (
            s.map(|s| s.name().to_owned()),
            s.map(|s| guid_to_sql(s.guid())),
        )
    };
    let (sn, sg) = snap(new.snapshot.as_ref());
    let (pn, pg) = snap(new.pending.as_ref().and_then(|p| p.snapshot.as_ref()));
    let values: [&dyn ToSql; 19] = [
        &new.key.job.as_str(),
        &new.key.target.as_str(),
        &new.key.filesystem.as_str(),
        &new.state.as_str(),
        &i64::from(new.attempts),
        &sn,
        &sg,
        &new.pending.is_some(),
        &pn,
        &pg,
        &new.last_error.as_ref().map(|e| e.message.as_str()),
        &new.last_error
            .as_ref()
            .map(|e| class_serde::as_str(e.class)),
        &new.dead_reason.map(DeadReason::as_str),
        &new.lease.as_ref().map(|l| l.owner.as_str()),
        &new.lease.as_ref().map(|l| to_ms(l.expires)),
        &i64::try_from(new.generation).unwrap_or(i64::MAX),
        &new.next_eligible.map(to_ms),
        &to_ms(new.enqueued),
        &to_ms(new.updated),
    ];
    let sql_err = |e| QueueError::sqlite(path, "write a record", e);
    let Some(old) = old else {
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("?{i}")).collect();
        conn.execute(
            &format!(
                "INSERT INTO records ({COLUMNS}) VALUES ({})",
                placeholders.join(", ")
            ),
            &values[..],
        )
        .map_err(sql_err)?;
        return Ok(());
    };
    let sets: Vec<String> = COLUMNS
        .split(", ")
        .enumerate()
        .skip(3)
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let guard: [&dyn ToSql; 3] = [
        &old.state.as_str(),
        &i64::try_from(old.generation).unwrap_or(i64::MAX),
        &to_ms(old.updated),
    ];
    let all: Vec<&dyn ToSql> = values.iter().chain(guard.iter()).copied().collect();
    let changed = conn
        .execute(
            &format!(
                "UPDATE records SET {} WHERE job = ?1 AND target = ?2 AND filesystem = ?3 \
                 AND state = ?20 AND generation = ?21 AND updated = ?22",
                sets.join(", ")
            ),
            &all[..],
        )
        .map_err(sql_err)?;
    if changed != 1 {
        return Err(QueueError::Conflict {
            path: path.to_owned(),
            key: new.key.clone(),
        });
    }
    Ok(())
}

/// `WHERE` conditions and their values for a [`Filter`] (each starting
/// with `AND`), with placeholders numbered from `first`.
pub(crate) fn filter_sql(f: &Filter, first: usize) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    let mut add = |col: &str, v: Option<&str>| {
        if let Some(v) = v {
            values.push(v.to_owned());
            sql.push_str(&format!(" AND {col} = ?{}", first + values.len() - 1));
        }
    };
    add("job", f.job.as_ref().map(JobId::as_str));
    add("target", f.target.as_ref().map(TargetName::as_str));
    add("filesystem", f.filesystem.as_ref().map(DatasetPath::as_str));
    add("state", f.state.map(State::as_str));
    (sql, values)
}
