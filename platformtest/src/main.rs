//! `zrelay-platformtest`: zrelay's suite against real OpenZFS.
//!
//! Invariants:
//! - Every case runs in its own uniquely named pool on a file vdev, and that
//!   pool is destroyed afterwards, whether the case passed, failed or panicked.
//! - It needs root and a loaded ZFS module: run it on a host with ZFS, or in
//!   the VM rig (`platformtest/vm/run`).
//! - The last line is always `platform: N passed, M failed, K skipped, on
//!   OpenZFS X.Y.Z`; the exit code is 0 only when nothing failed. A case is
//!   skipped only for a feature this OpenZFS lacks ([`needs`]), with the
//!   reason printed, and never counts as passed.

mod campaign;
mod cases;
mod daemons;
mod harness;
mod needs;
mod tls;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Parser;
use zrelay_zfs::{RealZfs, Zfs};

/// Run zrelay's platform tests against the real OpenZFS of this machine.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Run only cases whose name contains one of these substrings.
    filters: Vec<String>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// Directory for the pools' file vdevs.
    #[arg(long, default_value = "/var/tmp/zrelay-platformtest")]
    vdev_dir: PathBuf,
    /// The fault campaign's size: N stream cuts, N/2 kills, N/25 rounds of
    /// the other scenarios (without it, a short campaign of every scenario).
    #[arg(long, value_name = "N")]
    campaign: Option<u32>,
    /// The campaign's seed (printed by every scenario), to replay one.
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    campaign::configure(campaign::Settings {
        scale: args.campaign,
        seed: args.seed,
    });
    let cases: Vec<_> = cases::all()
        .into_iter()
        .filter(|c| {
            args.filters.is_empty() || args.filters.iter().any(|f| c.name.contains(f.as_str()))
        })
        .collect();
    if args.list {
        for c in &cases {
            println!("{}", c.name);
        }
        return Ok(());
    }
    if cases.is_empty() {
        bail!("no case matches {:?}", args.filters);
    }
    let version = RealZfs::new().version().await?;
    println!(
        "platform: running {} cases on OpenZFS {} (kmod {})",
        cases.len(),
        version.userland,
        version.kmod.as_deref().unwrap_or("not loaded")
    );
    let mut harness = harness::Harness::new(args.vdev_dir, version.clone());
    for (i, case) in cases.iter().enumerate() {
        harness.run(i, case).await;
    }
    let failed = harness.failed().len();
    if failed > 0 {
        println!("failed cases: {}", harness.failed().join(", "));
    }
    println!(
        "platform: {} passed, {} failed, {} skipped, on OpenZFS {}",
        harness.passed(),
        failed,
        harness.skipped().len(),
        version.short()
    );
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
