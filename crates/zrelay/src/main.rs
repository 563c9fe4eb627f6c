//! The `zrelay` command line.
//!
//! Invariants: `anyhow` lives here and nowhere below; every subcommand is real
//! (no placeholders), and a failure exits non-zero with a message on stderr.

mod progress;
mod replicate;
mod version;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// zrelay: ZFS snapshot replication, compatible with zrepl's configuration.
#[derive(Parser)]
#[command(name = "zrelay", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print zrelay's version and the OpenZFS userland and kernel-module versions.
    Version(version::VersionArgs),
    /// Replicate filesystems to another dataset tree on this host, once.
    Replicate(replicate::ReplicateArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ZRELAY_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Version(a) => version::run(a).await,
        Command::Replicate(a) => replicate::run(a).await,
    }
}
