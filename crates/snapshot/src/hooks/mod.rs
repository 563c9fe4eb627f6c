//! Snapshot hooks with zrepl's semantics (`daemon/hooks/hook_exec.go`,
//! `hook_type_command.go`, `hook_type_postgres_checkpoint.go`,
//! `hook_type_mysql_lock_tables.go`, `hook_logging.go`).
//!
//! A hook is run per filesystem that its `filesystems` filter matches, once
//! before the snapshot (pre edge) and once after (post edge). The ordering
//! across hooks and the handling of failures are the round's business
//! (`crate::round`); this module runs one edge of one hook:
//! - `command`: the absolute `path`, no arguments, with the daemon's
//!   environment plus `ZREPL_HOOKTYPE` (`pre_snapshot`/`post_snapshot`),
//!   `ZREPL_FS`, `ZREPL_SNAPNAME`, `ZREPL_DRYRUN` (`true` or empty) and
//!   `ZREPL_TIMEOUT` (whole seconds). It runs in its own process group;
//!   when `timeout` passes the whole group is killed. Each line of stdout is
//!   logged at INFO and each line of stderr at WARN; both are captured,
//!   combined, into the report, keeping the last `ZREPL_MAX_HOOK_LOG_SIZE`
//!   bytes (default 1 MiB). A non-zero exit is an error.
//! - `postgres-checkpoint`: pre edge only: connect to `dsn`, set
//!   `statement_timeout` to the hook's timeout and run `CHECKPOINT`. The
//!   post edge does nothing.
//! - `mysql-lock-tables`: pre edge: connect to `dsn` (go-sql-driver's DSN
//!   syntax, see [`mysql::parse_dsn`]) and run `FLUSH TABLES WITH READ LOCK`,
//!   keeping the session; post edge: `UNLOCK TABLES` on that session and
//!   close it. The lock is held while the snapshot is taken.
//!
//! Neither database hook uses TLS (zrepl's lib/pq defaults to
//! `sslmode=require`; write `sslmode=disable` or use a unix socket).

mod command;
mod error;
pub mod mysql;
mod postgres;

pub use command::{run_command, CommandSpec};
pub use error::{DsnError, HookError};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zrelay_zfs::DatasetPath;

use crate::model::{Hook, HookKind};
use crate::report::HookEdge;

/// The default of `ZREPL_MAX_HOOK_LOG_SIZE` (zrepl's `MAX_HOOK_LOG_SIZE_DEFAULT`).
pub const MAX_HOOK_LOG_SIZE_DEFAULT: usize = 1 << 20;

/// Check what can be checked of a hook before running it: an absolute
/// command path, a DSN that parses.
pub fn check_hook(hook: &Hook) -> Result<(), HookError> {
    match &hook.kind {
        HookKind::Command { path } if !path.is_absolute() => {
            Err(HookError::RelativePath { path: path.clone() })
        }
        HookKind::Command { .. } => Ok(()),
        HookKind::PostgresCheckpoint { dsn } => postgres::parse_dsn(dsn).map(drop),
        HookKind::MysqlLockTables { dsn } => mysql::parse_dsn(dsn).map(drop),
    }
}

/// What the edges of a hook run for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HookCtx<'a> {
    /// The job, for logs.
    pub job: &'a str,
    /// `ZREPL_FS`.
    pub fs: &'a DatasetPath,
    /// `ZREPL_SNAPNAME`.
    pub snapname: &'a str,
    /// `ZREPL_DRYRUN`.
    pub dry_run: bool,
    /// Bytes of output kept (`ZREPL_MAX_HOOK_LOG_SIZE`, read at startup).
    pub log_max: usize,
}

/// What a pre edge leaves for its post edge (zrepl's per-step `state`).
#[derive(Default)]
pub(crate) enum Held {
    /// Nothing.
    #[default]
    Nothing,
    /// The MySQL session holding `FLUSH TABLES WITH READ LOCK`.
    MysqlLock(mysql::Locked),
}

/// The result of one edge.
pub(crate) struct EdgeResult {
    pub result: Result<(), HookError>,
    pub output: String,
    pub held: Held,
}

impl EdgeResult {
    fn plain(result: Result<(), HookError>) -> EdgeResult {
        EdgeResult {
            result,
            output: String::new(),
            held: Held::Nothing,
        }
    }
}

/// Run one edge of `hook` for `ctx.fs`. `held` is what the pre edge left.
pub(crate) async fn run_edge(
    hook: &Hook,
    edge: HookEdge,
    ctx: &HookCtx<'_>,
    held: Held,
) -> EdgeResult {
    match (&hook.kind, edge) {
        (HookKind::Command { path }, _) => {
            let (result, output) = command::run(path, hook.timeout, edge, ctx).await;
            EdgeResult {
                result,
                output,
                held: Held::Nothing,
            }
        }
        (HookKind::PostgresCheckpoint { dsn }, HookEdge::Pre) => {
            EdgeResult::plain(postgres::checkpoint(dsn, hook.timeout, ctx).await)
        }
        (HookKind::PostgresCheckpoint { .. }, HookEdge::Post) => EdgeResult::plain(Ok(())),
        (HookKind::MysqlLockTables { dsn }, HookEdge::Pre) => {
            match mysql::lock(dsn, hook.timeout, ctx).await {
                Ok(l) => EdgeResult {
                    result: Ok(()),
                    output: String::new(),
                    held: Held::MysqlLock(l),
                },
                Err(e) => EdgeResult::plain(Err(e)),
            }
        }
        (HookKind::MysqlLockTables { .. }, HookEdge::Post) => match held {
            Held::MysqlLock(l) => EdgeResult::plain(mysql::unlock(l, hook.timeout, ctx).await),
            Held::Nothing => EdgeResult::plain(Err(HookError::NoLockedSession)),
        },
    }
}

/// `d` as Go prints a `time.Duration` (`30s`, `1m30s`, `500ms`), for messages.
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    let (h, rest) = ((secs / 3600.0).floor(), secs % 3600.0);
    let (m, s) = ((rest / 60.0).floor(), rest % 60.0);
    let mut out = String::new();
    if h > 0.0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0.0 || m > 0.0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", (s * 1000.0).round() / 1000.0));
    out
}

/// `e` and its sources, `: `-separated (tokio-postgres prints only
/// "db error" and keeps the server's message in the source).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        src = s.source();
    }
    out
}

/// Combined hook output, keeping the last `cap` bytes (zrepl's circular log).
#[derive(Debug)]
pub(crate) struct Capture {
    buf: Vec<u8>,
    cap: usize,
}

impl Capture {
    pub(crate) fn shared(cap: usize) -> Arc<Mutex<Capture>> {
        Arc::new(Mutex::new(Capture {
            buf: Vec::new(),
            cap,
        }))
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
        }
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_tail() {
        let c = Capture::shared(5);
        let mut c = c.lock().unwrap();
        c.push(b"abc");
        c.push(b"defg");
        assert_eq!(c.text(), "cdefg");
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn hooks_are_checked() {
        let hook = |kind| Hook {
            kind,
            timeout: Duration::from_secs(1),
            filesystems: Default::default(),
            err_is_fatal: false,
        };
        let e = check_hook(&hook(HookKind::Command {
            path: "rel/x.sh".into(),
        }))
        .unwrap_err();
        assert!(matches!(e, HookError::RelativePath { .. }), "{e}");
        assert!(check_hook(&hook(HookKind::PostgresCheckpoint {
            dsn: "host=/run/postgresql user=postgres".into()
        }))
        .is_ok());
        assert!(check_hook(&hook(HookKind::PostgresCheckpoint {
            dsn: "host=x port=notaport".into()
        }))
        .is_err());
        assert!(check_hook(&hook(HookKind::MysqlLockTables {
            dsn: "root@tcp(localhost)/".into()
        }))
        .is_ok());
        let e = check_hook(&hook(HookKind::MysqlLockTables {
            dsn: "no slash".into(),
        }))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`dsn` invalid: missing the slash separating the database name"
        );
    }
}
