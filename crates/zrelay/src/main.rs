//! The `zrelay` command line.
//!
//! Invariants: `anyhow` lives here and nowhere below; every subcommand is real
//! (no placeholders), and a failure exits non-zero with a message on stderr.

mod abstraction;
mod daemon;
mod gen;
mod history;
mod logging;
mod migrate;
mod monitor;
mod progress;
mod queue;
mod replicate;
mod status_tui;
mod testcmd;
mod version;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// zrelay: ZFS snapshot replication, compatible with zrepl's configuration.
#[derive(Parser)]
#[command(name = "zrelay", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    config: daemon::ConfigArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print zrelay's version and the OpenZFS userland and kernel-module versions.
    Version(version::VersionArgs),
    /// Replicate filesystems to another dataset tree on this host, once.
    Replicate(replicate::ReplicateArgs),
    /// Run the configured jobs (push, sink, pull, source) until SIGINT/SIGTERM.
    Daemon(daemon::DaemonArgs),
    /// Signal a job of the running daemon: wakeup (replicate now) or reset (abort).
    Signal(daemon::SignalArgs),
    /// Show the running daemon's jobs and their replication progress.
    Status(daemon::StatusArgs),
    /// Prune a job's snapshots now; --dry-run lists what would go and why the rest stays.
    Prune(daemon::PruneArgs),
    /// Show the durable record of replication attempts (invocations, attempts, steps).
    History(history::HistoryArgs),
    /// Write a shell completion script (bash, zsh or fish) to PATH, or print it.
    Gencompletion(gen::CompletionArgs),
    /// Print the man page (roff).
    Genman,
    /// Check the configuration (zrepl's format) and print it validated.
    Configcheck(daemon::ConfigcheckArgs),
    /// The ssh forced command of `serve: {type: stdinserver}` (authorized_keys).
    Stdinserver(daemon::StdinserverArgs),
    /// Test a job's filesystems filter, placeholder state, or a resume token.
    Test(testcmd::TestArgs),
    /// List, release or create zrepl's holds and cursor bookmarks on ZFS.
    ZfsAbstraction(abstraction::ZabsArgs),
    /// zrepl's migrations of on-ZFS state (replication-cursor:v1-v2).
    Migrate(migrate::MigrateArgs),
    /// Monitoring checks with Nagios exit codes: alive, snapshots, replication.
    Monitor(monitor::MonitorArgs),
    /// The durable work queue: list records, retry or drop one.
    Queue(queue::QueueArgs),
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zrelay: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("zrelay: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    // The daemon installs the configured logging outlets (daemon.rs);
    // other commands log warnings to stderr.
    if !matches!(cli.command, Command::Daemon(_)) {
        let filter = tracing_subscriber::EnvFilter::try_from_env("ZRELAY_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let cfg = &cli.config;
    match cli.command {
        Command::Version(a) => version::run(a).await,
        Command::Replicate(a) => replicate::run(a).await,
        Command::Daemon(a) => daemon::daemon(a, cfg).await,
        Command::Signal(a) => daemon::signal_cmd(a, cfg).await,
        Command::Status(a) => daemon::status(a, cfg).await,
        Command::Stdinserver(a) => daemon::stdinserver(a, cfg).await,
        Command::Configcheck(a) => daemon::configcheck(a, cfg).await,
        Command::History(a) => history::run(a, cfg).await,
        Command::Gencompletion(a) => gen::gencompletion(a),
        Command::Genman => gen::genman(),
        Command::Prune(a) => daemon::prune(a, cfg).await,
        Command::Test(a) => testcmd::run(a, cfg).await,
        Command::ZfsAbstraction(a) => abstraction::run(a).await,
        Command::Migrate(a) => migrate::run(a, cfg).await,
        Command::Monitor(a) => monitor::run(a, cfg).await,
        Command::Queue(a) => queue::run(a, cfg).await,
    }
}

#[cfg(test)]
mod cli_tests;
