//! Stream cuts, SIGKILLed daemons, and pruning racing replication.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use super::proxy::{Fault, FaultKind};
use super::world::{Side, World};
use super::{rounds, Scenario};
use crate::daemons::{tail, Daemon};
use crate::harness::Ctx;

/// SIGKILL every process whose command line matches `pattern` (an ERE);
/// returns whether one matched. Run directly, not through a shell, so that
/// no shell's command line matches.
pub(super) async fn pkill(pattern: &str) -> bool {
    tokio::process::Command::new("pkill")
        .args(["-KILL", "-f", pattern])
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Whether a process runs whose command line satisfies `pred`.
fn running(pred: &(dyn Fn(&str) -> bool + Sync)) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| pred(&String::from_utf8_lossy(&c).replace('\0', " ")))
            .unwrap_or(false)
    })
}

/// Poll (every 20 ms, up to `limit`) until a process satisfies `pred`.
pub(super) async fn wait_for_process(
    pred: &(dyn Fn(&str) -> bool + Sync),
    limit: Duration,
) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if running(pred) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The number of steps the push logs show as resumed.
pub(super) fn resumed_steps(w: &World) -> usize {
    let Ok(dir) = std::fs::read_dir(&w.scratch.dir) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("push_"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|l| {
            l.lines()
                .filter(|l| l.contains("step done") && l.contains("(resuming)"))
                .count()
        })
        .sum()
}

const SEND: &str = "^(/[^ ]*/)?zfs send ";
const RECV: &str = "^(/[^ ]*/)?zfs recv ";

/// Stream cuts: per round, new data and snapshots (every fourth round a new
/// filesystem, so full steps are cut too), then one fault at a random byte
/// offset of the stream: an RST, `zfs send` or `zfs recv` killed, or a
/// blackhole; half of the faults fire again in the resumed step.
pub async fn stream_cuts(ctx: &Ctx) -> Result<()> {
    let (mut w, mut t) = World::begin(ctx, "StreamCuts", "stream cuts").await?;
    let mut kinds = [0u32; 4];
    for round in 0..rounds(Scenario::Cuts) {
        if round % 4 == 3 && w.fss.len() < 8 {
            w.add_fs(ctx, &format!("src/d/n{round}")).await?;
        }
        let bytes = w.write_and_snapshot(ctx, 2 << 20).await? as u64;
        let k = match w.rng.u8(..16) {
            0..=5 => 0,
            6..=9 => 1,
            10..=13 => 2,
            _ => 3,
        };
        kinds[k] += 1;
        let kind = [
            FaultKind::Reset,
            FaultKind::Signal,
            FaultKind::Signal,
            FaultKind::Stall,
        ][k];
        let fault = Fault {
            kind,
            at: w.rng.u64(..(bytes * 8 / 10).max(1)),
            times: if w.rng.bool() { 2 } else { 1 },
            again: w.rng.u64(64 << 10..1 << 20),
        };
        println!(
            "  round {round}: {kind:?} at byte {} of the stream, {} time(s)",
            fault.at, fault.times
        );
        w.proxy.arm(fault);
        let victim = if k == 1 { SEND } else { RECV };
        {
            let wake = w.push().cli(&["signal", "wakeup", "push", "--wait"]);
            let killer = async {
                loop {
                    w.proxy.fired().await;
                    if kind == FaultKind::Signal {
                        pkill(victim).await;
                    }
                }
            };
            tokio::select! {
                r = wake => { r?; }
                _ = killer => {}
            }
        }
        let fired = w.proxy.disarm();
        t.faults += fired;
        if fired == 0 {
            t.missed += 1;
        }
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        t.rounds += 1;
    }
    t.notes.push(format!(
        "faults by kind: rst {}, zfs send killed {}, zfs recv killed {}, blackhole {}; {} steps resumed",
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        resumed_steps(&w)
    ));
    t.finish(true)
}

/// When a kill falls.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Replication,
    Pruning,
    Snapshotting,
}

/// SIGKILL of either daemon at a random moment of replication (a random
/// byte offset of the stream), pruning (a `zfs destroy` of snapshots runs)
/// or snapshotting (a `zfs snapshot` runs), then a restart.
pub async fn kills(ctx: &Ctx) -> Result<()> {
    let (mut w, mut t) = World::begin(ctx, "Kills", "kills").await?;
    let mut by = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..rounds(Scenario::Kills) {
        let phase = [Phase::Replication, Phase::Pruning, Phase::Snapshotting][w.rng.usize(..3)];
        let victim = match phase {
            Phase::Snapshotting => Side::Push,
            _ if w.rng.bool() => Side::Push,
            _ => Side::Sink,
        };
        *by.entry(format!("{phase:?} {victim:?}").to_lowercase())
            .or_default() += 1;
        let hit = match phase {
            Phase::Replication => {
                let bytes = w.write_and_snapshot(ctx, 2 << 20).await? as u64;
                w.proxy.arm(Fault {
                    kind: FaultKind::Signal,
                    at: w.rng.u64(..(bytes * 8 / 10).max(1)),
                    times: 1,
                    again: 0,
                });
                let wake = w.push().cli(&["signal", "wakeup", "push", "--wait"]);
                let hit = tokio::select! {
                    _ = wake => false,
                    _ = w.proxy.fired() => true,
                };
                w.proxy.disarm();
                hit
            }
            Phase::Pruning => {
                w.write_and_snapshot(ctx, 256 << 10).await?;
                let delay = Duration::from_millis(w.rng.u64(..150));
                let wake = w.push().cli(&["signal", "wakeup", "push", "--wait"]);
                let destroying = |c: &str| c.contains("zfs destroy ") && c.contains('@');
                tokio::select! {
                    _ = wake => false,
                    hit = wait_for_process(&destroying, Duration::from_secs(120)) => {
                        tokio::time::sleep(delay).await;
                        hit
                    }
                }
            }
            Phase::Snapshotting => {
                let delay = Duration::from_millis(w.rng.u64(..100));
                let snap = w.push().cli(&["signal", "snapshot", "push"]);
                let snapping = |c: &str| c.contains("zfs snapshot ");
                let (_, hit) = tokio::join!(snap, async {
                    let hit = wait_for_process(&snapping, Duration::from_secs(30)).await;
                    tokio::time::sleep(delay).await;
                    hit
                });
                hit
            }
        };
        if hit {
            t.faults += 1;
        } else {
            t.missed += 1;
        }
        w.kill(victim).await?;
        w.start(victim).await?;
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        t.rounds += 1;
    }
    t.notes.push(format!(
        "kills by phase and daemon: {by:?}; {} steps resumed",
        resumed_steps(&w)
    ));
    t.finish(true)
}

/// Pruning racing replication: a snap job in a daemon of its own snapshots
/// the same filesystems every 2 s and keeps only the newest 2 of all their
/// snapshots, while the push replicates new data. The push never loses its
/// incremental base: no conflict, no full re-send (the receiver's
/// filesystems keep their guids), and it converges once the snap job stops.
pub async fn pruning_race(ctx: &Ctx) -> Result<()> {
    let (mut w, mut t) = World::begin(ctx, "PruningRace", "pruning race").await?;
    w.sender_model = false;
    let guids = dst_guids(ctx, &w).await?;
    let dir = w.dir.clone();
    let snapper_cfg = w.scratch.write(
        "snapper.yml",
        &format!(
            "global:\n  control:\n    sockpath: \"{dir}/snapper.sock\"\n  history:\n    path: \"{dir}/snapper.sqlite\"\njobs:\n  - name: snapper\n    type: snap\n    filesystems:\n      \"{}<\": true\n    snapshotting:\n      type: periodic\n      interval: 2s\n      prefix: race_\n    pruning:\n      keep:\n        - type: last_n\n          count: 2\n",
            w.src
        ),
    )?;
    let mut failed = 0;
    for _ in 0..rounds(Scenario::Other) {
        let snapper = Daemon::start(
            "snapper",
            &snapper_cfg,
            &w.scratch.path("snapper.sock"),
            &w.scratch.path("snapper.log"),
        )
        .await?;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            w.write_and_snapshot(ctx, 512 << 10).await?;
            let (ok, _, _) = w
                .push()
                .cli(&["signal", "wakeup", "push", "--wait"])
                .await?;
            t.wakeups += 1;
            t.faults += 1;
            if !ok {
                failed += 1;
            }
        }
        let log = snapper.stop().await?;
        let pruned = log.lines().filter(|l| l.contains("pruned")).count();
        t.notes.push(format!("the snap job pruned {pruned} times"));
        w.converge(&mut t).await?;
        w.check(ctx, &mut t).await?;
        t.rounds += 1;
    }
    let after = dst_guids(ctx, &w).await?;
    ensure!(
        after == guids,
        "a receiver filesystem was replaced (full re-send): {guids:?} then {after:?}"
    );
    let logs = std::fs::read_dir(&w.scratch.dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("push_"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let conflicts: Vec<&str> = logs
        .lines()
        .filter(|l| l.to_lowercase().contains("conflict"))
        .collect();
    ensure!(
        conflicts.is_empty(),
        "the push lost its incremental base:\n{}",
        tail(&conflicts.join("\n"))
    );
    t.notes.push(format!(
        "{failed} of {} racing wakeups failed (then converged)",
        t.faults
    ));
    t.finish(false)
}

/// The dataset guids of the receiver's filesystems.
async fn dst_guids(ctx: &Ctx, w: &World) -> Result<Vec<String>> {
    let mut g = Vec::new();
    for fs in &w.fss {
        g.push(crate::daemons::guid(ctx, &w.dst(fs)).await?);
    }
    Ok(g)
}
