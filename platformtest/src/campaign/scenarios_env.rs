//! Faults of the environment: a full receiver pool, a network partition,
//! and the wall clock jumping.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{ensure, Context as _, Result};

use super::proxy::{Fault, FaultKind};
use super::scenarios::resumed_steps;
use super::world::{list_snaps, Side, World};
use super::{rounds, Scenario};
use crate::daemons::tail;
use crate::harness::Ctx;

/// The receiver's pool fills up (a filler dataset takes every free byte):
/// the step fails with a temporary error that says so, the sender loses
/// nothing, and once the filler is gone the next wakeups converge.
pub async fn pool_full(ctx: &Ctx) -> Result<()> {
    let (mut w, mut t) = World::begin(ctx, "PoolFull", "receiver pool full").await?;
    let filler = format!("{}/filler", w.pool_b.name);
    for _ in 0..rounds(Scenario::Other) {
        ctx.sh(&format!(
            "zfs create -o compression=off '{filler}' && \
             (dd if=/dev/urandom of='/{filler}/fill' bs=1M status=none 2>/dev/null || true) && sync"
        ))
        .await?;
        let avail = ctx
            .sh(&format!(
                "zfs get -H -p -o value available '{}'",
                w.pool_b.name
            ))
            .await?;
        w.write_and_snapshot(ctx, 6 << 20).await?;
        let (ok, _, err) = w
            .push()
            .cli(&["signal", "wakeup", "push", "--wait"])
            .await?;
        t.faults += 1;
        ensure!(
            !ok,
            "a wakeup into a full pool (available {avail}) succeeded"
        );
        let lower = err.to_lowercase();
        ensure!(
            lower.contains("space") && lower.contains("temporary"),
            "the error names the full pool and is temporary:\n{err}"
        );
        t.notes.push(format!(
            "available on the full pool {} bytes; the error: {}",
            avail.trim(),
            err.lines()
                .find(|l| l.to_lowercase().contains("space"))
                .unwrap_or("")
                .trim()
        ));
        ctx.sh(&format!("zfs destroy -r '{filler}'")).await?;
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        t.rounds += 1;
    }
    t.notes
        .push(format!("{} steps resumed afterwards", resumed_steps(&w)));
    t.finish(false)
}

/// The push's RPC idle timeout: a blackholed connection must be given up
/// within it (plus the time to notice).
const IDLE_BOUND: Duration = Duration::from_secs(30 + 10);

/// A partition: the proxy blackholes the connection in the middle of a
/// stream (no RST, nothing forwarded either way). The push gives the
/// connection up within its idle timeout, the sink keeps the step's partial
/// state, and once the partition heals the step resumes.
pub async fn partition(ctx: &Ctx) -> Result<()> {
    let (mut w, mut t) = World::begin(ctx, "Partition", "partition").await?;
    let mut detected = Vec::new();
    let mut unresumable = 0;
    for _ in 0..rounds(Scenario::Other) {
        let bytes = w.write_and_snapshot(ctx, 8 << 20).await? as u64;
        w.proxy.arm(Fault {
            kind: FaultKind::Stall,
            at: w.rng.u64(bytes / 10..bytes / 2),
            times: 1,
            again: 0,
        });
        let logs_before = given_up_lines(&w);
        let resumed = resumed_steps(&w);
        let partials = partial_receives(&w);
        let wake = w.push().cli(&["signal", "wakeup", "push", "--wait"]);
        let watch = async {
            w.proxy.fired().await;
            let fired = Instant::now();
            while given_up_lines(&w) == logs_before {
                if fired.elapsed() > IDLE_BOUND * 3 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Some(fired.elapsed())
        };
        let (_, seen) = tokio::join!(wake, watch);
        let took = seen.with_context(|| {
            format!(
                "the push never gave the blackholed connection up:\n{}",
                tail(&w.push().log_text())
            )
        })?;
        ensure!(
            took <= IDLE_BOUND,
            "the blackhole was noticed after {took:?}, over the bound {IDLE_BOUND:?}"
        );
        detected.push(format!("{:.1}s", took.as_secs_f64()));
        t.faults += w.proxy.disarm();
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        // The sink keeps a partial receive only when the blackhole came
        // after its `zfs recv` got the stream's first records; then the
        // step must resume. A blackhole at the very start of a connection
        // (its first kilobytes still in the push's socket buffer) leaves
        // nothing to resume, and the step is sent afresh.
        if partial_receives(&w) > partials {
            ensure!(
                resumed_steps(&w) > resumed,
                "the step cut by the partition was not resumed:\n{}\n--- sink log:\n{}",
                tail(&w.push().log_text()),
                tail(&w.sink_log())
            );
        } else {
            unresumable += 1;
        }
        t.rounds += 1;
    }
    t.notes.push(format!(
        "blackhole noticed after {} (bound {IDLE_BOUND:?}); {unresumable} cut(s) before the receiver began, sent afresh",
        detected.join(", ")
    ));
    t.finish(false)
}

/// Failed receives after which the sink kept a resumable partial state (the
/// sink logs each failed call, saying whether it left a resume token).
fn partial_receives(w: &World) -> usize {
    w.sink_log()
        .lines()
        .filter(|l| {
            l.contains("call failed")
                && l.contains("receiver.receive")
                && l.contains("resumable=true")
        })
        .count()
}

/// Lines where the push gave a silent peer up.
fn given_up_lines(w: &World) -> usize {
    w.push()
        .log_text()
        .lines()
        .filter(|l| l.contains("nothing received for"))
        .count()
}

/// Sets the guest's clock back to the real time when dropped (the real
/// time being the clock at creation plus the monotonic time since).
struct ClockGuard {
    wall: SystemTime,
    mono: Instant,
}

impl ClockGuard {
    fn set(&self, offset_secs: i64) {
        let real = self.wall + self.mono.elapsed();
        let secs = real
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
            + offset_secs;
        let _ = std::process::Command::new("date")
            .args(["-s", &format!("@{secs}")])
            .output();
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        self.set(0);
    }
}

const INTERVAL: u64 = 10;
const WINDOW: Duration = Duration::from_secs(30);

/// The wall clock jumps an hour forward, then back, while the push job
/// snapshots every 10 s: every window of 30 s has its snapshots on every
/// filesystem (no missing and no duplicate names), and nothing is pruned
/// (the sender keeps everything younger than 2 h by a grid rule, so a
/// pruning storm would show).
pub async fn clock_jumps(ctx: &Ctx) -> Result<()> {
    let (mut w, mut t) = World::begin(ctx, "ClockJumps", "clock jumps").await?;
    let manual = w.push_cfg.clone();
    w.push_cfg = w.push_config(
        "push_periodic.yml",
        &format!("      type: periodic\n      interval: {INTERVAL}s\n      prefix: zrepl_\n"),
        "        - type: grid\n          grid: 1x2h(keep=all)\n          regex: \".*\"\n",
    )?;
    let guard = ClockGuard {
        wall: SystemTime::now(),
        mono: Instant::now(),
    };
    let mut windows = Vec::new();
    for _ in 0..rounds(Scenario::Other) {
        w.stop_push().await?;
        w.start(Side::Push).await?;
        let mut seen = settled_snaps(ctx, &w).await?;
        for (label, offset) in [("steady", 0i64), ("+1h", 3600), ("back", 0)] {
            guard.set(offset);
            tokio::time::sleep(WINDOW).await;
            let now = settled_snaps(ctx, &w).await?;
            let gone: Vec<_> = seen.all.difference(&now.all).cloned().collect();
            ensure!(
                gone.is_empty(),
                "after the {label} window, pruned or lost: {gone:?}"
            );
            let new: BTreeSet<_> = now.all.difference(&seen.all).cloned().collect();
            let per_fs: BTreeSet<usize> = now
                .per_fs
                .values()
                .map(|s| s.iter().filter(|n| new.contains(*n)).count())
                .collect();
            let lo = (WINDOW.as_secs() / INTERVAL).saturating_sub(2) as usize;
            ensure!(
                per_fs.len() == 1 && per_fs.iter().all(|n| *n >= lo && *n <= lo + 4),
                "after the {label} window: new snapshots per filesystem {per_fs:?} (expected the same number, {lo}..={}, on each); names {new:?}",
                lo + 4
            );
            windows.push(format!("{label}: {}", new.len()));
            t.faults += 1;
            seen = now;
        }
        guard.set(0);
        w.stop_push().await?;
        w.push_cfg = manual.clone();
        w.start(Side::Push).await?;
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        w.push_cfg = w.scratch.path("push_periodic.yml");
        t.rounds += 1;
    }
    drop(guard);
    w.push_cfg = manual;
    t.notes.push(format!(
        "new snapshots per filesystem per {}s window: {}",
        WINDOW.as_secs(),
        windows.join(", ")
    ));
    t.finish(false)
}

/// [`zrepl_snaps`] once every filesystem shows the same names, listed again
/// (up to 5 times, 1 s apart) when not: a job's filesystems in one pool are
/// snapshotted in one `zfs snapshot`, atomically, but `zfs list -r` walks
/// them one by one, so a listing that overlaps a periodic snapshot shows
/// the new name on some filesystems only (seen on OpenZFS 2.1). A name
/// that stays missing on a filesystem still fails the window's check.
async fn settled_snaps(ctx: &Ctx, w: &World) -> Result<Zsnaps> {
    let mut now = zrepl_snaps(ctx, w).await?;
    for _ in 0..5 {
        let mut sets = now.per_fs.values();
        let first = sets.next();
        if sets.all(|s| Some(s) == first) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        now = zrepl_snaps(ctx, w).await?;
    }
    Ok(now)
}

/// The `zrepl_` snapshots of the sender, per filesystem and all of them.
struct Zsnaps {
    all: BTreeSet<String>,
    per_fs: BTreeMap<String, BTreeSet<String>>,
}

async fn zrepl_snaps(ctx: &Ctx, w: &World) -> Result<Zsnaps> {
    let listed = list_snaps(ctx, w.src.as_str()).await?;
    let mut all = BTreeSet::new();
    let mut per_fs = BTreeMap::new();
    for fs in &w.fss {
        let names: BTreeSet<String> = listed
            .get(fs.as_str())
            .into_iter()
            .flatten()
            .filter(|s| s.name.starts_with("zrepl_"))
            .map(|s| s.name.clone())
            .collect();
        all.extend(names.iter().cloned());
        per_fs.insert(fs.to_string(), names);
    }
    Ok(Zsnaps { all, per_fs })
}
