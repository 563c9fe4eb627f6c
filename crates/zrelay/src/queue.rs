//! `zrelay queue list|retry|drop`: the durable work queue
//! (`global.queue.path`), read and handled without the daemon. A running
//! daemon takes a retried record up within one re-drive tick.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use zrelay_queue::{Filter, JobId, Queue, Record, RecordKey, State, TargetName};
use zrelay_zfs::DatasetPath;

use crate::daemon::ConfigArg;

/// `zrelay queue`.
#[derive(Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    cmd: QueueCmd,
}

#[derive(Subcommand)]
enum QueueCmd {
    /// List records (one per job, target and filesystem).
    List {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Only this target (`default` for a job with one).
        #[arg(long)]
        target: Option<String>,
        /// Only this state: ready, in_progress, completed, failed, dead.
        #[arg(long)]
        state: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a failed or dead record ready again (after fixing its cause).
    Retry(KeyArgs),
    /// Remove a record that is not in progress.
    Drop(KeyArgs),
}

#[derive(Args)]
struct KeyArgs {
    /// The job.
    job: String,
    /// The target (`default` for a job with one).
    target: String,
    /// The filesystem, in the sender's namespace.
    filesystem: String,
    /// Print the record as JSON.
    #[arg(long)]
    json: bool,
}

impl KeyArgs {
    fn key(&self) -> Result<RecordKey> {
        Ok(RecordKey::new(
            JobId::new(&self.job).map_err(|e| anyhow::anyhow!("job: {e}"))?,
            TargetName::new(&self.target).map_err(|e| anyhow::anyhow!("target: {e}"))?,
            DatasetPath::parse(&self.filesystem).map_err(|e| anyhow::anyhow!("filesystem: {e}"))?,
        ))
    }
}

async fn open(cfg: &ConfigArg) -> Result<Queue> {
    let config = cfg.load()?;
    let q = &config.global.queue;
    if !q.path.exists() {
        bail!(
            "no work queue at {} (the daemon creates it when it starts)",
            q.path.display()
        );
    }
    let policy =
        zrelay_queue::Policy::new(q.lease, q.backoff_start, q.backoff_max, q.max_attempts)?;
    Queue::open(
        &q.path,
        policy,
        std::sync::Arc::new(zrelay_queue::SystemClock),
    )
    .await
    .with_context(|| format!("opening the work queue {}", q.path.display()))
}

/// One record on one line.
pub fn line(r: &Record) -> String {
    let mut s = format!(
        "{:<11} {} -> {}: {}",
        r.state.as_str(),
        r.key.job.as_str(),
        r.key.target,
        r.key.filesystem
    );
    if r.attempts > 0 {
        s.push_str(&format!("  attempts={}", r.attempts));
    }
    if let Some(d) = r.dead_reason {
        s.push_str(&format!("  dead: {}", d.as_str()));
    }
    if let Some(e) = &r.last_error {
        s.push_str(&format!(
            "  last error: {}",
            zrelay_zfs::peer_text::show(&e.message, 300)
        ));
    }
    s
}

fn print(r: &Record, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!("{}", line(r));
    }
    Ok(())
}

/// Run `zrelay queue …`.
pub async fn run(a: QueueArgs, cfg: &ConfigArg) -> Result<()> {
    let queue = open(cfg).await?;
    match a.cmd {
        QueueCmd::List {
            job,
            target,
            state,
            json,
        } => {
            let filter = Filter {
                job: job
                    .map(|j| JobId::new(&j).map_err(|e| anyhow::anyhow!("--job: {e}")))
                    .transpose()?,
                target: target
                    .map(|t| TargetName::new(&t).map_err(|e| anyhow::anyhow!("--target: {e}")))
                    .transpose()?,
                state: state
                    .map(|s| {
                        s.parse::<State>()
                            .map_err(|e| anyhow::anyhow!("--state: {e}"))
                    })
                    .transpose()?,
                ..Filter::default()
            };
            let rows = queue.list(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no records");
            } else {
                for r in &rows {
                    println!("{}", line(r));
                }
            }
            Ok(())
        }
        QueueCmd::Retry(k) => {
            let r = queue.retry(&k.key()?).await?;
            print(&r, k.json)
        }
        QueueCmd::Drop(k) => {
            let r = queue.drop_record(&k.key()?).await?;
            eprintln!("dropped:");
            print(&r, k.json)
        }
    }
}
