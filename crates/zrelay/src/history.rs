//! `zrelay history`: the durable record of replication attempts, read from
//! the daemon's SQLite file (`global.history.path`) without the daemon.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use zrelay_history::{Filter, History};

use crate::daemon::ConfigArg;

/// `zrelay history`.
#[derive(Args)]
pub struct HistoryArgs {
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// Only this filesystem (and those below it), in the sender's namespace.
    #[arg(long)]
    fs: Option<String>,
    /// Only records of the last DURATION (e.g. 30m, 24h, 7d).
    #[arg(long, value_parser = parse_age)]
    since: Option<Duration>,
    /// At most this many rows, newest first.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_age(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid duration '{s}', expected e.g. 30m, 24h or 7d"))?;
    let mult = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => anyhow::bail!("invalid duration '{s}', expected e.g. 30m, 24h or 7d"),
    };
    Ok(Duration::from_secs(n * mult))
}

/// Print the history.
pub async fn run(a: HistoryArgs, cfg: &ConfigArg) -> Result<()> {
    let config = cfg.load()?;
    let path = &config.global.history_path;
    let history = History::open_read_only(path)
        .await
        .with_context(|| format!("reading the history {}", path.display()))?;
    let rows = history
        .query(Filter {
            job: a.job,
            fs: a.fs,
            since: a.since.map(|d| SystemTime::now() - d),
            limit: Some(a.limit),
        })
        .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", zrelay_history::render_table(&rows));
    }
    Ok(())
}
