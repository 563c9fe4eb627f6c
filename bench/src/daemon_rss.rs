//! The daemon's memory with many filesystems (issue #16, item 6).
//!
//! One daemon runs a push job of `p/src` (N filesystems × S snapshots, on
//! the fake ZFS) to a local sink in the same process. After the first
//! invocation (every filesystem replicated) and after a second one (nothing
//! new), the bench reads the live heap (a counting allocator) and the
//! process's RSS; then it stops the daemon and drops it, so only the fake's
//! pools remain. What the daemon holds is the difference: the live heap
//! while it runs minus the live heap of the fake alone. The process's RSS
//! includes the fake's two pools, so it bounds the daemon's from above.
//! The peak of the second invocation (the fake does not change in it),
//! minus the fake alone, is the daemon's transient peak: listings, plans
//! and reports in flight.
//!
//! `cargo run --release -p zrelay-bench --bin daemon_rss -- --filesystems 10000 --snapshots 5`

use std::alloc::System;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio_util::sync::CancellationToken;
use zrelay_bench::proc_status_kib;
use zrelay_daemon::control::Signal;
use zrelay_daemon::Daemon;
use zrelay_fake::FakeZfs;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

/// The system allocator, counting what it hands out and takes back.
#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed.
fn live() -> usize {
    zrelay_bench::live_bytes(ALLOC)
}

#[derive(Parser)]
struct Args {
    /// Filesystems under `p/src`.
    #[arg(long, default_value_t = 10_000)]
    filesystems: usize,
    /// Snapshots of each.
    #[arg(long, default_value_t = 5)]
    snapshots: usize,
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn sample(what: &str) -> usize {
    let live = live();
    println!(
        "{what:<34} live heap {:>8.1} MiB   RSS {:>8.1} MiB",
        mib(live),
        proc_status_kib("VmRSS:") as f64 / 1024.0
    );
    live
}

async fn fake(n: usize, snaps: usize) -> anyhow::Result<Arc<FakeZfs>> {
    let z = Arc::new(FakeZfs::new());
    let pool = z.add_pool("p")?;
    let src = pool.child("src")?;
    z.create(&src, &[]).await?;
    z.create(&pool.child("sink")?, &[]).await?;
    let children: Vec<DatasetPath> = (0..n)
        .map(|i| src.child(&format!("fs{i:05}")))
        .collect::<Result<_, _>>()?;
    for c in &children {
        z.create(c, &[]).await?;
        z.write(c, 4096)?;
    }
    for s in 1..=snaps {
        let names: Vec<SnapshotName> = std::iter::once(&src)
            .chain(&children)
            .map(|fs| SnapshotName::new(fs, &format!("zrepl_{s:04}")))
            .collect::<Result<_, _>>()?;
        z.snapshot(&names).await?;
    }
    Ok(z)
}

const JOBS: &str = r#"jobs:
- type: push
  name: push
  connect:
    type: local
    listener_name: rss
    client_identity: c1
  filesystems:
    "p/src<": true
  snapshotting:
    type: manual
  pruning:
    keep_sender:
    - type: not_replicated
    keep_receiver:
    - type: last_n
      count: 100
- type: sink
  name: sink
  root_fs: p/sink
  serve:
    type: local
    listener_name: rss
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let base = sample("start");
    let t = Instant::now();
    let z = fake(args.filesystems, args.snapshots).await?;
    let built = sample(&format!(
        "fake built ({} fs x {} snaps, {:.1} s)",
        args.filesystems,
        args.snapshots,
        t.elapsed().as_secs_f64()
    ));
    let yaml = format!(
        "global:\n  history:\n    path: {h}\n  queue:\n    path: {q}\n{JOBS}",
        h = dir.path().join("history.sqlite").display(),
        q = dir.path().join("queue.sqlite").display(),
    );
    let config = zrelay_config::parse_str(&yaml, &dir.path().join("zrelay.yml"))?;
    let cancel = CancellationToken::new();
    let running = Daemon::new(config, z.clone())
        .without_control_socket()
        .start(cancel.clone())
        .await?;
    let mut during = Vec::new();
    let mut peak = 0;
    for round in [
        "first invocation (all replicated)",
        "second invocation (nothing new)",
    ] {
        let t = Instant::now();
        // The live heap's peak, sampled every millisecond.
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut max = 0;
                while !stop.load(Ordering::Relaxed) {
                    max = max.max(live());
                    std::thread::sleep(Duration::from_millis(1));
                }
                max
            })
        };
        let s = running.jobs.signal("push", Signal::Wakeup, true).await;
        stop.store(true, Ordering::Relaxed);
        peak = sampler.join().unwrap_or(0);
        let s = s?;
        let report = s.report.context("the wakeup has a report")?;
        ensure!(report.succeeded(), "{round}: {:?}", report.planning_error);
        ensure!(
            report.filesystems.len() == args.filesystems + 1,
            "{round}: {} filesystems reported",
            report.filesystems.len()
        );
        during.push(sample(&format!(
            "{round} {:.1} s",
            t.elapsed().as_secs_f64()
        )));
    }
    let peak_rss = proc_status_kib("VmHWM:");
    cancel.cancel();
    running.done.await?;
    drop(running.jobs);
    let fake_only = sample("daemon stopped and dropped");
    let held = during
        .last()
        .copied()
        .unwrap_or(0)
        .saturating_sub(fake_only);
    println!();
    println!(
        "fake alone (both pools)            {:>8.1} MiB",
        mib(fake_only.saturating_sub(base))
    );
    println!(
        "fake before replication            {:>8.1} MiB",
        mib(built.saturating_sub(base))
    );
    println!("daemon holds (live heap)           {:>8.1} MiB", mib(held));
    println!(
        "daemon's peak in a no-op invocation {:>7.1} MiB (live heap, sampled every ms)",
        mib(peak.saturating_sub(fake_only))
    );
    println!(
        "process peak RSS (daemon + fake)   {:>8.1} MiB",
        peak_rss as f64 / 1024.0
    );
    Ok(())
}
