//! The `postgres-checkpoint` hook (zrepl's
//! `daemon/hooks/hook_type_postgres_checkpoint.go`): before the snapshot,
//! `SET statement_timeout` to the hook's timeout and run `CHECKPOINT`, so
//! the snapshot holds a database whose recovery replays little WAL.
//!
//! Client: `tokio-postgres` without TLS. The DSN is lib/pq's: a URL
//! (`postgres://user@host:5432/db?sslmode=disable`) or `key=value` pairs
//! (`host=/var/run/postgresql user=postgres`); a `host` starting with `/` is
//! a unix socket directory.

use std::time::Duration;

use tokio_postgres::NoTls;
use tracing::{debug, info};

use super::{error_chain, HookCtx, HookError};

/// Parse a DSN.
pub(super) fn parse_dsn(dsn: &str) -> Result<tokio_postgres::Config, HookError> {
    dsn.parse::<tokio_postgres::Config>()
        .map_err(HookError::PostgresDsn)
}

/// Connect and run `CHECKPOINT` (a dry run only connects and pings).
pub(super) async fn checkpoint(
    dsn: &str,
    timeout: Duration,
    ctx: &HookCtx<'_>,
) -> Result<(), HookError> {
    let config = parse_dsn(dsn)?;
    let work = async {
        let (client, conn) = config
            .connect(NoTls)
            .await
            .map_err(|e| HookError::Postgres(format!("connect: {}", error_chain(&e))))?;
        let conn = tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "postgres connection ended with an error");
            }
        });
        let fail = |e: tokio_postgres::Error| HookError::Postgres(error_chain(&e));
        let ms = timeout.as_millis();
        debug!(
            statement_timeout = ms,
            "setting statement timeout for CHECKPOINT"
        );
        client
            .batch_execute(&format!("SET statement_timeout TO {ms}"))
            .await
            .map_err(fail)?;
        if ctx.dry_run {
            client.batch_execute("SELECT 1").await.map_err(fail)?;
        } else {
            info!(job = ctx.job, fs = %ctx.fs, "execute CHECKPOINT command");
            client.batch_execute("CHECKPOINT").await.map_err(fail)?;
        }
        drop(client);
        let _ = conn.await;
        Ok(())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(HookError::PostgresTimeout(timeout)),
    }
}
