//! `soak`: one daemon over hours of simulated time (issue #15, item 5).
//!
//! A push job snapshots `p/src` (N filesystems) every `--every` on its own
//! schedule, replicates to a local sink in the same process, and prunes both
//! sides by grid rules; between samples some filesystems get new data. The
//! clock is tokio's, paused: the runtime jumps from timer to timer, so hours
//! pass in minutes of real time while every timer, backoff and schedule of
//! the daemon runs as it would. ZFS is the in-memory fake (its own pools
//! stay bounded, since pruning destroys what the rules do not keep). The
//! keep rules count snapshots (`last_n`): the fake dates a snapshot by its
//! txg, not by the simulated clock, so grid rules would see minutes where
//! the daemon saw hours.
//!
//! Every `--sample` of simulated time it records the process's RSS, its open
//! descriptors, the zfs calls made so far (the fake counts them), the
//! history database's size on disk, the snapshots on each side and the
//! job's invocations, and writes them as CSV and as an SVG plot, then
//! prints the first and last rows and the growth.
//!
//! `scripts/soak [--filesystems 200] [--hours 6] [--every 5m] [--out DIR]`

use std::alloc::System;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio_util::sync::CancellationToken;
use zrelay_bench::proc_status_kib;
use zrelay_daemon::Daemon;
use zrelay_fake::FakeZfs;
use zrelay_snapshot::TokioClock;
use zrelay_zfs::{DatasetPath, Zfs};

/// The system allocator, counting what it hands out and takes back.
#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// KiB allocated and not freed (the daemon's and the fake's heap together).
fn live_kib() -> u64 {
    zrelay_bench::live_bytes(ALLOC) as u64 / 1024
}

#[derive(Parser)]
struct Args {
    /// Filesystems under `p/src`.
    #[arg(long, default_value_t = 200)]
    filesystems: usize,
    /// Simulated hours.
    #[arg(long, default_value_t = 6.0)]
    hours: f64,
    /// Snapshot (and replication) interval, as zrepl writes it.
    #[arg(long, default_value = "5m")]
    every: String,
    /// `global.history.max_age`: history older than this is trimmed (by
    /// the simulated clock).
    #[arg(long, default_value = "6h")]
    history_max_age: String,
    /// Simulated minutes between samples.
    #[arg(long, default_value_t = 10)]
    sample_minutes: u64,
    /// Where soak.csv and soak.svg go.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
}

/// One sample.
struct Row {
    minute: u64,
    rss_kib: u64,
    heap_kib: u64,
    fds: u64,
    zfs_calls: u64,
    history_kib: u64,
    sender_snaps: usize,
    receiver_snaps: usize,
    invocations: u64,
}

const COLUMNS: &str = "sim_minute,rss_kib,heap_kib,open_fds,zfs_calls,history_kib,sender_snapshots,receiver_snapshots,invocations";

impl Row {
    fn csv(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.minute,
            self.rss_kib,
            self.heap_kib,
            self.fds,
            self.zfs_calls,
            self.history_kib,
            self.sender_snaps,
            self.receiver_snaps,
            self.invocations
        )
    }
}

fn jobs(every: &str, max_age: &str, dir: &Path) -> String {
    format!(
        r#"global:
  history:
    path: {h}
    max_age: {max_age}
  queue:
    path: {q}
jobs:
- type: push
  name: push
  connect:
    type: local
    listener_name: soak
    client_identity: c1
  filesystems:
    "p/src<": true
  snapshotting:
    type: periodic
    interval: {every}
    prefix: zrepl_
  pruning:
    keep_sender:
    - type: not_replicated
    - type: last_n
      count: 24
      regex: "^zrepl_"
    keep_receiver:
    - type: last_n
      count: 72
      regex: "^zrepl_"
- type: sink
  name: sink
  root_fs: p/sink
  serve:
    type: local
    listener_name: soak
"#,
        h = dir.join("history.sqlite").display(),
        q = dir.join("queue.sqlite").display(),
    )
}

async fn fake(n: usize) -> Result<(Arc<FakeZfs>, Vec<DatasetPath>)> {
    let z = Arc::new(FakeZfs::new());
    let pool = z.add_pool("p")?;
    let src = pool.child("src")?;
    z.create(&src, &[]).await?;
    z.create(&pool.child("sink")?, &[]).await?;
    let mut children = Vec::with_capacity(n);
    for i in 0..n {
        let c = src.child(&format!("fs{i:04}"))?;
        z.create(&c, &[]).await?;
        z.write(&c, 4096)?;
        children.push(c);
    }
    Ok((z, children))
}

/// Bytes of the files in `dir` whose name starts with `prefix` (a SQLite
/// database with its WAL and shared memory).
fn size_of(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

async fn snapshots(z: &FakeZfs, root: &str) -> Result<usize> {
    let root = DatasetPath::parse(root)?;
    Ok(z.list(&root)
        .await?
        .iter()
        .map(|d| {
            d.versions
                .iter()
                .filter(|v| v.kind == zrelay_zfs::name::VersionKind::Snapshot)
                .count()
        })
        .sum())
}

/// The first row from which both sides hold as many snapshots as at the
/// end: pruning keeps the pools level from there, so growth after it is the
/// daemon's.
fn settled(rows: &[Row]) -> &Row {
    let last = &rows[rows.len() - 1];
    rows.iter()
        .find(|r| r.sender_snaps == last.sender_snaps && r.receiver_snaps == last.receiver_snaps)
        .unwrap_or(last)
}

/// Four panels over simulated hours: RSS, descriptors, zfs calls per sample
/// interval, history size.
fn svg(rows: &[Row]) -> String {
    type Get = fn(&Row) -> f64;
    let per_interval: Vec<f64> = rows
        .windows(2)
        .map(|w| (w[1].zfs_calls - w[0].zfs_calls) as f64)
        .collect();
    let panels: [(&str, Get); 3] = [
        ("RSS (MiB; live heap is in the CSV)", |r| {
            r.rss_kib as f64 / 1024.0
        }),
        ("open descriptors", |r| r.fds as f64),
        ("history on disk (KiB)", |r| r.history_kib as f64),
    ];
    let (w, h, pad) = (720.0, 180.0, 50.0);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="12">"#,
        4.0 * h
    );
    let max_min = rows.last().map_or(1, |r| r.minute.max(1)) as f64;
    let mut panel = |i: usize, title: &str, pts: Vec<(f64, f64)>| {
        let top = i as f64 * h;
        let ymax = pts.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0) * 1.1;
        let _ = write!(
            out,
            r##"<text x="{pad}" y="{}">{title} (max {:.1})</text><rect x="{pad}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            top + 15.0,
            ymax / 1.1,
            top + 20.0,
            w - 2.0 * pad,
            h - 40.0
        );
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    pad + x / max_min * (w - 2.0 * pad),
                    top + 20.0 + (h - 40.0) * (1.0 - y / ymax)
                )
            })
            .collect();
        let _ = write!(
            out,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/><text x="{pad}" y="{}">0 h</text><text x="{}" y="{}" text-anchor="end">{:.1} h (simulated)</text>"##,
            path.join(" "),
            top + h - 5.0,
            w - pad,
            top + h - 5.0,
            max_min / 60.0
        );
    };
    for (i, (title, get)) in panels.iter().enumerate() {
        panel(
            i,
            title,
            rows.iter().map(|r| (r.minute as f64, get(r))).collect(),
        );
    }
    panel(
        3,
        "zfs calls per sample interval",
        rows.iter()
            .skip(1)
            .zip(&per_interval)
            .map(|(r, n)| (r.minute as f64, *n))
            .collect(),
    );
    out.push_str("</svg>\n");
    out
}

async fn soak(args: Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (z, children) = fake(args.filesystems).await?;
    let config = zrelay_config::parse_str(
        &jobs(&args.every, &args.history_max_age, dir.path()),
        &dir.path().join("zrelay.yml"),
    )?;
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600); // 2027-01-01
    let cancel = CancellationToken::new();
    let running = Daemon::new(config, z.clone())
        .without_control_socket()
        .with_clock(Arc::new(TokioClock::starting_at(start)))
        .start(cancel.clone())
        .await?;
    let total = (args.hours * 60.0) as u64;
    let step = args.sample_minutes.max(1);
    let mut rows = Vec::new();
    let mut minute = 0;
    let mut n = 0usize;
    while minute <= total {
        let status = running.jobs.statuses();
        let push = status
            .iter()
            .find(|s| s.name == "push")
            .context("push job")?;
        rows.push(Row {
            minute,
            rss_kib: proc_status_kib("VmRSS:"),
            heap_kib: live_kib(),
            fds: open_fds(),
            zfs_calls: z.total_calls(),
            history_kib: size_of(dir.path(), "history.sqlite") / 1024,
            sender_snaps: snapshots(&z, "p/src").await?,
            receiver_snaps: snapshots(&z, "p/sink").await?,
            invocations: push.invocations,
        });
        // new data in a tenth of the filesystems, different ones each time
        for _ in 0..children.len().div_ceil(10) {
            z.write(&children[n % children.len()], 4096)?;
            n += 7;
        }
        tokio::time::sleep(Duration::from_secs(step * 60)).await;
        minute += step;
    }
    let push = running
        .jobs
        .statuses()
        .into_iter()
        .find(|s| s.name == "push")
        .context("push job")?;
    for p in &push.last_pruning {
        println!(
            "last pruning, {:?}: {}",
            p.side,
            p.render().lines().next().unwrap_or("")
        );
        ensure!(p.succeeded(), "pruning failed: {}", p.render());
    }
    ensure!(push.last_error.is_none(), "push: {:?}", push.last_error);
    cancel.cancel();
    running.done.await?;
    drop(running.jobs);
    let fake_alone = live_kib();

    std::fs::create_dir_all(&args.out)?;
    let mut csv = format!("{COLUMNS}\n");
    for r in &rows {
        csv.push_str(&r.csv());
        csv.push('\n');
    }
    std::fs::write(args.out.join("soak.csv"), csv)?;
    std::fs::write(args.out.join("soak.svg"), svg(&rows))?;
    let (first, last) = (&rows[0], rows.last().context("no sample")?);
    println!("{COLUMNS}");
    println!("{}", first.csv());
    println!("{}", last.csv());
    let level = settled(&rows);
    let (rss0, rss1) = (level.rss_kib, last.rss_kib);
    let (fd0, fd1) = (level.fds, last.fds);
    let (heap0, heap1) = (level.heap_kib, last.heap_kib);
    let (h0, h1) = (level.history_kib, last.history_kib);
    println!(
        "{} filesystems, {:.1} simulated hours, snapshots every {}; {} invocations",
        args.filesystems, args.hours, args.every, last.invocations
    );
    println!(
        "pools level from {:.1} h; from there to the end: RSS {:.1} -> {:.1} MiB, descriptors {fd0} -> {fd1}, history {h0} -> {h1} KiB",
        level.minute as f64 / 60.0,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
    println!(
        "live heap {:.1} -> {:.1} MiB; the fake's pools alone at the end {:.1} MiB",
        heap0 as f64 / 1024.0,
        heap1 as f64 / 1024.0,
        fake_alone as f64 / 1024.0
    );
    println!(
        "sender snapshots {} -> {}, receiver {} -> {}",
        first.sender_snaps, last.sender_snaps, first.receiver_snaps, last.receiver_snaps
    );
    println!("written: {}", args.out.join("soak.{csv,svg}").display());
    ensure!(last.invocations > 0, "the push job never ran");
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?
        .block_on(soak(args))
}
