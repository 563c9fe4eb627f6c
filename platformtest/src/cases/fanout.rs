//! One push job, three sinks (zrelay extension `targets`), each sink its
//! own daemon on the guest's loopback: `fast`, `slow` (bandwidth-limited)
//! and `dead` (stopped after the first round). The healthy targets go on
//! while `dead` is skipped with a growing backoff; the sender keeps what
//! `dead` lacks; once `dead` is started again it catches up incrementally
//! from its own cursor, by itself.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use serde_json::Value;

use super::daemons::{global, Tree};
use crate::daemons::{free_port, tail, Daemon, Scratch, SecondPool};
use crate::harness::Ctx;

pub(super) fn sink_yaml(dir: &str, name: &str, port: u16, root: &str) -> String {
    format!(
        "{}jobs:\n  - name: {name}\n    type: sink\n    root_fs: \"{root}\"\n    serve: {{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}\n",
        global(dir, name)
    )
}

fn push_yaml(dir: &str, src: &str, ports: [u16; 3]) -> String {
    let [fast, slow, dead] = ports;
    format!(
        "{}jobs:\n  - name: fan\n    type: push\n    targets:\n      - name: fast\n        connect: {{type: tcp, address: \"127.0.0.1:{fast}\"}}\n      - name: slow\n        connect: {{type: tcp, address: \"127.0.0.1:{slow}\"}}\n        bandwidth_limit: {{max: 200 KiB}}\n      - name: dead\n        connect: {{type: tcp, address: \"127.0.0.1:{dead}\", dial_timeout: 2s}}\n    fan_out:\n      health_check_interval: 1s\n      health_check_timeout: 5s\n      backoff_start: 2s\n      backoff_max: 1m\n    filesystems:\n      \"{src}<\": true\n    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
        global(dir, "fan")
    )
}

/// `zrelay status --mode raw` of the push daemon: the job `fan`'s targets.
pub(super) async fn targets(push: &Daemon) -> Result<Vec<Value>> {
    let (ok, out, err) = push.cli(&["status", "--mode", "raw"]).await?;
    ensure!(ok, "status: {err}");
    let v: Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    Ok(v["jobs"][0]["targets"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

pub(super) fn target<'a>(ts: &'a [Value], name: &str) -> &'a Value {
    ts.iter()
        .find(|t| t["name"] == name)
        .unwrap_or(&Value::Null)
}

/// Every filesystem of the target's last report is done (or has no
/// snapshot to replicate: the tree's root), and some were.
fn all_done(t: &Value) -> bool {
    t["last"]["filesystems"].as_array().is_some_and(|f| {
        f.iter().any(|f| f["state"] == "done")
            && f.iter()
                .all(|f| f["state"] == "done" || f["state"] == "skipped")
    })
}

/// The target finished `invocations` invocations, the last one with every
/// filesystem done.
fn done(t: &Value, invocations: u64) -> bool {
    t["invocations"].as_u64().unwrap_or(0) >= invocations && t["state"] == "idle" && all_done(t)
}

/// Poll the push daemon's status until `f` holds (at most `secs`).
pub(super) async fn wait_until(
    push: &Daemon,
    secs: u64,
    what: &str,
    f: impl Fn(&[Value]) -> bool,
) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let ts = targets(push).await?;
        if f(&ts) {
            return Ok(ts);
        }
        if Instant::now() > deadline {
            bail!("timed out after {secs}s waiting for {what}: {ts:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A wakeup without waiting, then the time until `fast` finished its
/// `n`-th invocation.
async fn time_to_fast(push: &Daemon, n: u64) -> Result<Duration> {
    let t0 = Instant::now();
    let (ok, _, err) = push.cli(&["signal", "wakeup", "fan"]).await?;
    ensure!(ok, "wakeup: {err}");
    wait_until(push, 300, "fast to finish", |ts| {
        done(target(ts, "fast"), n)
    })
    .await?;
    Ok(t0.elapsed())
}

pub async fn fan_out_three_sinks(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let pool = SecondPool::create(ctx).await?;
    let roots: Vec<String> = ["fast", "slow", "dead"]
        .iter()
        .map(|n| format!("{}/{n}", pool.name))
        .collect();
    for r in &roots {
        ctx.sh(&format!("zfs create '{r}'")).await?;
    }
    let tree = Tree::create(ctx, 600_000).await?;
    let ports = [free_port()?, free_port()?, free_port()?];
    let mut cfgs = Vec::new();
    for (i, name) in ["fast", "slow", "dead"].iter().enumerate() {
        let yaml = sink_yaml(&dir, &format!("sink_{name}"), ports[i], &roots[i]);
        cfgs.push(scratch.write(&format!("sink_{name}.yml"), &yaml)?);
    }
    let push_cfg = scratch.write("fan.yml", &push_yaml(&dir, tree.src.as_str(), ports))?;
    let start = |name: String, cfg: std::path::PathBuf, log: &'static str| {
        let scratch = &scratch;
        async move {
            Daemon::start(
                &name,
                &cfg,
                &scratch.path(&format!("{name}.sock")),
                &scratch.path(&format!("{name}_{log}.log")),
            )
            .await
        }
    };
    let s_fast = start("sink_fast".into(), cfgs[0].clone(), "1").await?;
    let s_slow = start("sink_slow".into(), cfgs[1].clone(), "1").await?;
    let s_dead = start("sink_dead".into(), cfgs[2].clone(), "1").await?;
    let push = start("fan".into(), push_cfg.clone(), "1").await?;
    let received = |i: usize| format!("{}/alice", roots[i]);
    let app = tree.app.to_string();
    let result = async {
        // Round 1: all three healthy, each gets a full, each its own cursor.
        wait_until(&push, 60, "three healthy targets", |ts| {
            ["fast", "slow", "dead"]
                .iter()
                .all(|n| target(ts, n)["health"]["health"] == "healthy")
        })
        .await?;
        let out = push.wakeup_ok("fan").await?;
        for n in ["fast", "slow", "dead"] {
            ensure!(out.contains(&format!("target {n}:")), "{out}");
        }
        for i in 0..3 {
            tree.verify(ctx, &received(i), &["zrelay_1"], "first.bin").await?;
        }
        let bookmarks = ctx
            .sh(&format!("zfs list -H -t bookmark -o name '{app}'"))
            .await?;
        for n in ["fast", "slow", "dead"] {
            ensure!(
                bookmarks.contains(&format!("_J_fan:{n}")),
                "one cursor per target: {bookmarks}"
            );
        }

        // `dead` goes down: skipped, backoff grows; fast and slow go on.
        s_dead.stop().await?;
        wait_until(&push, 60, "dead to be unhealthy", |ts| {
            target(ts, "dead")["health"]["health"] == "unhealthy"
        })
        .await?;
        ctx.write(&tree.app, "r2.bin", 300_000).await?;
        tree.snapshot(ctx, "zrelay_2").await?;
        let with_dead = time_to_fast(&push, 2).await?;
        let ts = wait_until(&push, 300, "slow to finish round 2", |ts| {
            done(target(ts, "slow"), 2)
        })
        .await?;
        let d = target(&ts, "dead");
        let (f1, b1) = (
            d["health"]["failures"].as_u64().unwrap_or(0),
            d["health"]["backoff_seconds"].as_u64().unwrap_or(0),
        );
        ensure!(f1 >= 1 && b1 >= 2, "dead backs off: {d:#}");
        // Another round while dead is down: its backoff doubles.
        ctx.write(&tree.app, "r3.bin", 300_000).await?;
        tree.snapshot(ctx, "zrelay_3").await?;
        let (ok, _, err) = push.cli(&["signal", "wakeup", "fan", "--wait"]).await?;
        ensure!(!ok && err.contains("not replicated to every target: dead"), "{err}");
        ensure!(
            err.contains("@zrelay_2  (kept: protected: target dead of this job has not received it yet"),
            "fast's pruning keeps what dead lacks, naming it:\n{err}"
        );
        let ts = targets(&push).await?;
        let d = target(&ts, "dead");
        let (f2, b2) = (
            d["health"]["failures"].as_u64().unwrap_or(0),
            d["health"]["backoff_seconds"].as_u64().unwrap_or(0),
        );
        ensure!(f2 > f1 && b2 > b1, "the backoff grows: {f1}/{b1}s then {f2}/{b2}s: {d:#}");
        let (_, dump, _) = push.cli(&["status", "--mode", "dump"]).await?;
        ensure!(
            dump.contains("target dead") && dump.contains("unhealthy") && dump.contains(&format!("backoff {b2}s after {f2} failure(s)")),
            "{dump}"
        );
        let log = push.log_text();
        ensure!(log.contains("target unhealthy"), "{}", tail(&log));
        let left = ctx
            .sh(&format!("zfs list -H -t snapshot -o name -d 1 '{app}'"))
            .await?;
        ensure!(left.contains("@zrelay_2"), "the sender keeps zrelay_2 for dead:\n{left}");

        // `dead` is back: it catches up by itself, incrementally from its
        // own cursor (zrelay_1), with no full.
        let s_dead = start("sink_dead".into(), cfgs[2].clone(), "2").await?;
        let ts = wait_until(&push, 300, "dead to catch up", |ts| {
            done(target(ts, "dead"), 2)
                && target(ts, "dead")["last"]["filesystems"]
                    .as_array()
                    .is_some_and(|f| {
                        f.iter()
                            .filter(|f| f["state"] == "done")
                            .all(|f| f["steps_done"] == 2)
                    })
        })
        .await?;
        let d = target(&ts, "dead");
        ensure!(d["health"]["failures"] == 0, "backoff cleared: {d:#}");
        tree.verify(ctx, &received(2), &["zrelay_3"], "r3.bin")
            .await?;
        let got = ctx
            .sh(&format!(
                "zfs list -H -t snapshot -o name -d 1 '{}/{app}'",
                received(2)
            ))
            .await?;
        ensure!(
            ["@zrelay_1", "@zrelay_2", "@zrelay_3"]
                .iter()
                .all(|n| got.contains(n)),
            "dead has every round: {got}"
        );
        // Round 4, every target healthy: the same incremental size as round 2.
        ctx.write(&tree.app, "r4.bin", 300_000).await?;
        tree.snapshot(ctx, "zrelay_4").await?;
        let fast_rounds = target(&targets(&push).await?, "fast")["invocations"]
            .as_u64()
            .unwrap_or(0);
        let without_dead = time_to_fast(&push, fast_rounds + 1).await?;
        wait_until(&push, 300, "every target to finish round 4", |ts| {
            ["fast", "slow", "dead"].iter().all(|n| {
                let t = target(ts, n);
                t["state"] == "idle" && all_done(t)
            })
        })
        .await?;
        for i in 0..3 {
            tree.verify(ctx, &received(i), &["zrelay_4"], "r4.bin").await?;
        }
        let holds = ctx
            .sh(&format!("zfs holds -H -r '{}' || true", tree.src))
            .await?;
        ensure!(!holds.contains("zrepl_STEP"), "no step hold is left:\n{holds}");
        println!(
            "fan-out: time to the healthy target's completion: {:.1}s with the dead target present, {:.1}s with every target up",
            with_dead.as_secs_f64(),
            without_dead.as_secs_f64()
        );
        s_dead.stop().await?;
        Ok(())
    }
    .await;
    result.with_context(|| format!("--- push log:\n{}", tail(&push.log_text())))?;
    push.stop().await?;
    s_fast.stop().await?;
    s_slow.stop().await?;
    Ok(())
}
