//! Opening the file: directory and file modes, pragmas, the schema version
//! check and the migrations (the same scheme as the history database).

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{QueueError, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[V1, V2];

/// How long a connection waits for another one's write lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1: the records. Times are milliseconds since the Unix epoch;
/// GUIDs are stored as the i64 with the same bits.
const V1: &str = r#"
CREATE TABLE records (
    job              TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    filesystem       TEXT    NOT NULL,
    state            TEXT    NOT NULL
                     CHECK (state IN ('ready', 'in_progress', 'completed', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    snapshot_name    TEXT,
    snapshot_guid    INTEGER,
    pending          INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),
    pending_name     TEXT,
    pending_guid     INTEGER,
    error            TEXT,
    error_class      TEXT    CHECK (error_class IN ('temporary', 'permanent')),
    dead_reason      TEXT    CHECK (dead_reason IN ('permanent_error', 'attempts_exhausted')),
    lease_owner      TEXT,
    lease_expires    INTEGER,
    generation       INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    next_eligible    INTEGER,
    enqueued         INTEGER NOT NULL,
    updated          INTEGER NOT NULL,
    PRIMARY KEY (job, target, filesystem),
    CHECK ((state = 'in_progress') = (lease_owner IS NOT NULL AND lease_expires IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_reason IS NOT NULL)),
    CHECK (pending = 0 OR state = 'in_progress'),
    CHECK ((snapshot_name IS NULL) = (snapshot_guid IS NULL)),
    CHECK ((error IS NULL) = (error_class IS NULL))
) WITHOUT ROWID;
CREATE INDEX records_eligible ON records (state, next_eligible, updated);
CREATE INDEX records_target ON records (target, state);
CREATE INDEX records_lease ON records (state, lease_expires);
"#;

/// Version 2: when each receiver-only filesystem of a job's target was first
/// seen with its source gone (the grace of replica deletion counts from it).
const V2: &str = r#"
CREATE TABLE gone_sources (
    job        TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    filesystem TEXT    NOT NULL,
    since      INTEGER NOT NULL,
    PRIMARY KEY (job, target, filesystem)
) WITHOUT ROWID;
"#;

/// Opens (creating if need be) the database read-write and migrates it.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    prepare_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| QueueError::sqlite(path, "open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| QueueError::sqlite(path, "set busy timeout", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| QueueError::sqlite(path, "enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "queue database: WAL mode refused");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| QueueError::sqlite(path, "set synchronous", e))?;
    migrate(conn, path)
}

/// Creates the directory (0700) and the file (0600); tightens a file that
/// others can read.
fn prepare_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| QueueError::io(path, "create the directory", e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| QueueError::io(path, "open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| QueueError::io(path, "read metadata", e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| QueueError::io(path, "chmod 0600", e))?;
    }
    Ok(())
}

/// The version in the file; 0 for a new (empty) database.
fn read_version(conn: &Connection, path: &Path) -> Result<i64> {
    let err = |e| QueueError::sqlite(path, "read the schema version", e);
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'schema_version')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !has_table {
        return Ok(0);
    }
    let v: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(err)?
        .flatten();
    Ok(v.unwrap_or(0))
}

fn check_not_future(path: &Path, found: i64) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(QueueError::FutureSchema {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Applies the missing migrations, each in its own immediate transaction
/// (so two processes opening a new file at once do not both migrate).
fn migrate(mut conn: Connection, path: &Path) -> Result<Connection> {
    let sql = |e| QueueError::sqlite(path, "migrate the schema", e);
    check_not_future(path, read_version(&conn, path)?)?;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let found = read_version(&tx, path)?;
        check_not_future(path, found)?;
        let Some(step) = usize::try_from(found).ok().and_then(|i| MIGRATIONS.get(i)) else {
            tx.commit().map_err(sql)?;
            return Ok(conn);
        };
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL); \
             DELETE FROM schema_version;",
        )
        .map_err(sql)?;
        tx.execute_batch(step).map_err(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [found + 1],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        tracing::info!(path = %path.display(), version = found + 1, "queue database migrated");
    }
}
