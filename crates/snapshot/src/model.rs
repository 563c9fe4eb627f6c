//! The validated `snapshotting` configuration of a job (zrepl's
//! `config.SnapshottingEnum`), as `zrelay-config` builds it and re-exports
//! it. Every value here has passed validation there: prefixes and timestamp
//! formats give valid snapshot names, cron expressions parse, hook commands
//! are absolute paths.

use std::path::PathBuf;
use std::time::Duration;

use zrelay_endpoint::FsFilter;

/// `snapshotting`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snapshotting {
    /// `type: periodic`.
    Periodic {
        /// `prefix`.
        prefix: String,
        /// `interval`.
        interval: Duration,
        /// `hooks`.
        hooks: Vec<Hook>,
        /// `timestamp_format`.
        timestamp_format: TimestampFormat,
        /// `timestamp_location` (`UTC`, `Local` or an IANA zone name).
        timestamp_location: String,
    },
    /// `type: cron`.
    Cron {
        /// `prefix`.
        prefix: String,
        /// `cron` (validated; optional seconds field).
        cron: String,
        /// `hooks`.
        hooks: Vec<Hook>,
        /// `timestamp_format`.
        timestamp_format: TimestampFormat,
        /// `timestamp_location`.
        timestamp_location: String,
    },
    /// `type: manual`.
    Manual,
}

impl Snapshotting {
    /// The snapshot name prefix (`None` for `manual`).
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Snapshotting::Periodic { prefix, .. } | Snapshotting::Cron { prefix, .. } => {
                Some(prefix)
            }
            Snapshotting::Manual => None,
        }
    }

    /// The hooks, in configuration order (none for `manual`).
    pub fn hooks(&self) -> &[Hook] {
        match self {
            Snapshotting::Periodic { hooks, .. } | Snapshotting::Cron { hooks, .. } => hooks,
            Snapshotting::Manual => &[],
        }
    }

    /// `timestamp_format` and `timestamp_location` (`None` for `manual`).
    pub fn naming(&self) -> Option<(&TimestampFormat, &str)> {
        match self {
            Snapshotting::Periodic {
                timestamp_format,
                timestamp_location,
                ..
            }
            | Snapshotting::Cron {
                timestamp_format,
                timestamp_location,
                ..
            } => Some((timestamp_format, timestamp_location)),
            Snapshotting::Manual => None,
        }
    }
}

/// `timestamp_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFormat {
    /// `dense`: `20060102_150405_000`.
    Dense,
    /// `human`: `2006-01-02_15:04:05`.
    Human,
    /// `iso-8601`: `2006-01-02T15:04:05.000Z0700`.
    Iso8601,
    /// `unix-seconds`.
    UnixSeconds,
    /// Any other value: a Go time layout, as written.
    Custom(String),
}

/// One snapshotting hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The hook type and its keys.
    pub kind: HookKind,
    /// `timeout` (default 30s).
    pub timeout: Duration,
    /// `filesystems` (default: all of the job's).
    pub filesystems: FsFilter,
    /// `err_is_fatal` (default false).
    pub err_is_fatal: bool,
}

/// Hook types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookKind {
    /// `type: command`.
    Command {
        /// `path`: absolute, no arguments.
        path: PathBuf,
    },
    /// `type: postgres-checkpoint`.
    PostgresCheckpoint {
        /// `dsn`.
        dsn: String,
    },
    /// `type: mysql-lock-tables`.
    MysqlLockTables {
        /// `dsn`.
        dsn: String,
    },
}

impl std::fmt::Display for HookKind {
    /// How zrepl names the hook in logs (`hooks.Hook.String()`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookKind::Command { path } => write!(f, "{}", path.display()),
            HookKind::PostgresCheckpoint { .. } => f.write_str("postgres checkpoint"),
            HookKind::MysqlLockTables { .. } => f.write_str("MySQL FLUSH TABLES WITH READ LOCK"),
        }
    }
}
