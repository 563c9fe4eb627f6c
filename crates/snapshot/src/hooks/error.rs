//! [`HookError`]: why a hook could not be checked or failed to run, and
//! [`DsnError`]: why a go-sql-driver DSN does not parse. Every message
//! names the hook's path, database step or offending DSN part; the round
//! reports it with the hook's position (`hook N (pre): ...`).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::go_duration;

/// A hook that cannot be used, or one edge of it that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A `command` hook's path is relative.
    #[error("hook command path {:?} must be absolute", path.display())]
    RelativePath {
        /// The configured path.
        path: PathBuf,
    },
    /// A `postgres-checkpoint` DSN does not parse.
    #[error("`dsn` invalid: {0}")]
    PostgresDsn(#[source] tokio_postgres::Error),
    /// A `mysql://` URL does not parse.
    #[error("`dsn` invalid: {0}")]
    MysqlUrl(#[source] mysql_async::UrlError),
    /// A go-sql-driver DSN does not parse.
    #[error("`dsn` invalid: {0}")]
    MysqlDsn(#[from] DsnError),
    /// The command could not be started.
    #[error("cannot start {}: {source}", path.display())]
    Start {
        /// The command.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("cannot wait for {}: {source}", path.display())]
    Wait {
        /// The command.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command exited unsuccessfully (Go's `ExitError` wording).
    #[error("{}", exit_message(*.0))]
    Exit(ExitStatus),
    /// The command ran out of time; its process group was killed.
    #[error("timed out after {}: signal: killed", go_duration(*.0))]
    CommandTimeout(Duration),
    /// `CHECKPOINT` (or connecting for it) failed.
    #[error("postgres CHECKPOINT failed: {0}")]
    Postgres(String),
    /// `CHECKPOINT` did not finish in time.
    #[error("postgres CHECKPOINT failed: timed out after {}", go_duration(*.0))]
    PostgresTimeout(Duration),
    /// A MySQL statement (or connecting for it) failed.
    #[error("{what}: {reason}")]
    Mysql {
        /// The statement.
        what: &'static str,
        /// The client's error and its sources.
        reason: String,
    },
    /// A MySQL statement did not finish in time.
    #[error("{what}: timed out after {}", go_duration(*timeout))]
    MysqlTimeout {
        /// The statement.
        what: &'static str,
        /// The hook's timeout.
        timeout: Duration,
    },
    /// The post edge of `mysql-lock-tables` found no session to unlock.
    #[error("no locked session from the pre edge")]
    NoLockedSession,
}

/// Why a go-sql-driver DSN does not parse (go-sql-driver's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    /// No `/` before the database name.
    #[error("missing the slash separating the database name")]
    NoSlash,
    /// `tcp(host` without `)`.
    #[error("invalid DSN: network address not terminated (missing closing brace)")]
    Unterminated,
    /// A network other than `tcp` or `unix`.
    #[error("unsupported network {0:?} (use tcp or unix)")]
    Network(String),
    /// A parameter without `=`.
    #[error("invalid DSN parameter {0:?}")]
    Parameter(String),
    /// `tls=` asks for TLS, which the hook lacks.
    #[error(
        "tls={0} is not supported: the mysql-lock-tables hook has no TLS; \
         use a unix socket or tls=false"
    )]
    Tls(String),
    /// `[::1` without `]`.
    #[error("unterminated [ in address")]
    UnterminatedBracket,
    /// The port is not a number.
    #[error("invalid port in address {0:?}")]
    Port(String),
}

/// How Go prints a failed command's `ExitError`.
fn exit_message(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn messages_name_the_hook_and_keep_gos_wording() {
        let e = HookError::RelativePath {
            path: "rel/x.sh".into(),
        };
        assert_eq!(
            e.to_string(),
            "hook command path \"rel/x.sh\" must be absolute"
        );
        assert_eq!(
            HookError::Exit(ExitStatus::from_raw(3 << 8)).to_string(),
            "exit status 3"
        );
        assert_eq!(
            HookError::Exit(ExitStatus::from_raw(9)).to_string(),
            "signal: 9"
        );
        assert_eq!(
            HookError::CommandTimeout(Duration::from_secs(90)).to_string(),
            "timed out after 1m30s: signal: killed"
        );
        assert_eq!(
            HookError::from(DsnError::Network("udp".into())).to_string(),
            "`dsn` invalid: unsupported network \"udp\" (use tcp or unix)"
        );
    }
}
