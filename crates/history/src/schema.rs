//! Opening the file: directory and file modes, pragmas, the schema version
//! check and the migrations.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::error::{HistoryError, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[V1];

/// Version 1: invocations, attempts, steps.
const V1: &str = r#"
CREATE TABLE invocations (
    id       INTEGER PRIMARY KEY,
    job      TEXT    NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('replication', 'snapshot', 'prune')),
    started  INTEGER NOT NULL,
    finished INTEGER,
    state    TEXT    NOT NULL
             CHECK (state IN ('queued', 'in_flight', 'completed', 'failed', 'dead', 'stale')),
    error    TEXT
);
CREATE INDEX invocations_job_started ON invocations (job, started);
CREATE INDEX invocations_state ON invocations (state);

CREATE TABLE attempts (
    id         INTEGER PRIMARY KEY,
    invocation INTEGER NOT NULL REFERENCES invocations (id) ON DELETE CASCADE,
    n          INTEGER NOT NULL CHECK (n >= 1),
    started    INTEGER NOT NULL,
    finished   INTEGER,
    state      TEXT    NOT NULL
               CHECK (state IN ('queued', 'in_flight', 'completed', 'failed', 'dead', 'stale')),
    error      TEXT,
    UNIQUE (invocation, n)
);
CREATE INDEX attempts_state ON attempts (state);

CREATE TABLE steps (
    id             INTEGER PRIMARY KEY,
    attempt        INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    job            TEXT    NOT NULL,
    filesystem     TEXT    NOT NULL,
    from_snapshot  TEXT,
    to_snapshot    TEXT    NOT NULL,
    resumed        INTEGER NOT NULL CHECK (resumed IN (0, 1)),
    started        INTEGER NOT NULL,
    finished       INTEGER,
    bytes_expected INTEGER,
    bytes          INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL
                   CHECK (state IN ('queued', 'in_flight', 'completed', 'failed', 'dead', 'stale')),
    error          TEXT
);
CREATE INDEX steps_attempt ON steps (attempt);
CREATE INDEX steps_job_fs_finished ON steps (job, filesystem, finished);
CREATE INDEX steps_state ON steps (state);
"#;

/// Opens (creating if need be) the database read-write and migrates it.
pub(crate) fn open_read_write(path: &Path) -> Result<Connection> {
    prepare_file(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| HistoryError::sqlite(path, "open", e))?;
    configure(&conn, path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| HistoryError::sqlite(path, "enable WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "history database: WAL mode refused");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| HistoryError::sqlite(path, "set synchronous", e))?;
    migrate(conn, path)
}

/// Opens an existing, current database read-only (for `zrelay history`).
pub(crate) fn open_read_only(path: &Path) -> Result<Connection> {
    match fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HistoryError::Missing {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(HistoryError::io(path, "read metadata", e)),
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| HistoryError::sqlite(path, "open read-only", e))?;
    configure(&conn, path)?;
    let found = read_version(&conn, path)?;
    check_not_future(path, found)?;
    if found < SCHEMA_VERSION {
        return Err(HistoryError::OldSchema {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(conn)
}

/// Creates the directory (0700) and the file (0600); tightens a file that
/// others can read.
fn prepare_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| HistoryError::io(path, "create the directory", e))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| HistoryError::io(path, "open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| HistoryError::io(path, "read metadata", e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| HistoryError::io(path, "chmod 0600", e))?;
    }
    Ok(())
}

fn configure(conn: &Connection, path: &Path) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| HistoryError::sqlite(path, "set busy timeout", e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| HistoryError::sqlite(path, "enable foreign keys", e))?;
    Ok(())
}

/// The version in the file; 0 for a new (empty) database.
fn read_version(conn: &Connection, path: &Path) -> Result<i64> {
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'schema_version')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| HistoryError::sqlite(path, "read the schema version", e))?;
    if !has_table {
        return Ok(0);
    }
    let v: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(|e| HistoryError::sqlite(path, "read the schema version", e))?
        .flatten();
    Ok(v.unwrap_or(0))
}

fn check_not_future(path: &Path, found: i64) -> Result<()> {
    if found > SCHEMA_VERSION {
        return Err(HistoryError::FutureSchema {
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
    let sql = |e| HistoryError::sqlite(path, "migrate the schema", e);
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
        tracing::info!(path = %path.display(), version = found + 1, "history database migrated");
    }
}
