//! No downgrades, ever, on real ZFS: a target that is ahead on the same
//! lineage completes as a no-op; a target restored from an older snapshot
//! behind zrelay's back is brought forward, never rolled back; a diverged
//! target's work record goes dead with its conflict, is skipped while dead,
//! stays dead after a retry without a fix, and `zrelay queue retry` after
//! the operator's fix completes it with no wakeup.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;

use super::daemons::Tree;
use crate::daemons::{free_port, tail, tcp_pair, Daemon, Pair, Site};
use crate::harness::Ctx;

const QUEUE: &str = "  queue:\n    lease: 4s\n    backoff_start: 1s\n    backoff_max: 2s\n";

/// The record of (push, default, `fs`).
async fn record(d: &Daemon, fs: &str) -> Result<Value> {
    let (ok, out, err) = d.cli(&["queue", "list", "--json", "--job", "push"]).await?;
    ensure!(ok, "queue list: {err}");
    let rows: Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    Ok(rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["key"]["filesystem"] == fs)
        .cloned()
        .unwrap_or(Value::Null))
}

async fn wait_record(d: &Daemon, fs: &str, state: &str, secs: u64) -> Result<Value> {
    let t0 = Instant::now();
    loop {
        let r = record(d, fs).await?;
        if r["state"] == state {
            return Ok(r);
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(secs),
            "record of {fs} is not {state} within {secs}s: {r:#}\n{}",
            tail(&d.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn snaps(ctx: &Ctx, fs: &str) -> Result<String> {
    ctx.sh(&format!("zfs list -H -t snapshot -o name -d 1 '{fs}'"))
        .await
}

/// `zrelay signal wakeup push --wait`: (success, stderr).
async fn wake(d: &Daemon) -> Result<(bool, String)> {
    let (ok, _, err) = d.cli(&["signal", "wakeup", "push", "--wait"]).await?;
    Ok((ok, err))
}

pub async fn no_downgrade(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let tree = Tree::create(ctx, 300_000).await?;
    let (serve, connect) = tcp_pair(free_port()?, "127.0.0.1");
    let Pair { sink, push } = site.start_pair(&serve, &connect, &tree.src, QUEUE).await?;
    let app = tree.app.to_string();
    let dst = format!("{}/alice/{app}", site.root_fs);
    let result = async {
        push.wakeup_ok("push").await?;
        tree.snapshot(ctx, "zrelay_2").await?;
        push.wakeup_ok("push").await?;
        ensure!(record(&push, &app).await?["state"] == "completed");

        // 1. Ahead on the same lineage: the sender loses its newest
        // snapshot (its cursor bookmark stays). Nothing to send, nothing
        // rolled back: the record completes as a no-op.
        ctx.sh(&format!("zfs destroy '{app}@zrelay_2'")).await?;
        let out = push.wakeup_ok("push").await?;
        ensure!(out.contains("up to date"), "{out}");
        ensure!(snaps(ctx, &dst).await?.contains("@zrelay_2"), "kept on the target");
        ensure!(record(&push, &app).await?["state"] == "completed");

        // 2. Restored from an older snapshot behind zrelay's back: brought
        // forward from the common snapshot.
        ctx.sh(&format!(
            "zfs release zrepl_last_received_J_sink '{dst}@zrelay_2' ; zfs rollback -r '{dst}@zrelay_1'"
        ))
        .await?;
        ctx.write(&tree.app, "three.bin", 200_000).await?;
        tree.snapshot(ctx, "zrelay_3").await?;
        let out = push.wakeup_ok("push").await?;
        ensure!(out.contains("@zrelay_1 => @zrelay_3"), "forward from the common snapshot:\n{out}");
        tree.verify(ctx, &format!("{}/alice", site.root_fs), &["zrelay_3"], "three.bin")
            .await?;

        // 3. Diverged: a snapshot of the target's own. Dead, never rolled back.
        ctx.sh(&format!("zfs snapshot '{dst}@local'")).await?;
        ctx.write(&tree.app, "four.bin", 200_000).await?;
        tree.snapshot(ctx, "zrelay_4").await?;
        let (ok, out) = wake(&push).await?;
        ensure!(!ok && out.contains("diverged"), "{out}");
        let r = record(&push, &app).await?;
        ensure!(
            r["state"] == "dead"
                && r["dead_reason"] == "permanent_error"
                && r["last_error"]["message"].as_str().unwrap_or("").contains("diverged"),
            "{r:#}"
        );
        ensure!(snaps(ctx, &dst).await?.contains("@local"), "never rolled back");
        // Dead: skipped, naming the way out.
        let (_, out) = wake(&push).await?;
        ensure!(
            out.contains("dead in the work queue") && out.contains("zrelay queue retry push default"),
            "{out}"
        );
        // A retry without a fix: tried again, dead again, nothing rolled back.
        let (ok, _, err) = push.cli(&["queue", "retry", "push", "default", &app]).await?;
        ensure!(ok, "queue retry: {err}");
        let gen = r["generation"].as_u64().unwrap_or(0);
        let t0 = Instant::now();
        loop {
            let r = record(&push, &app).await?;
            if r["state"] == "dead" && r["generation"].as_u64().unwrap_or(0) > gen {
                break;
            }
            ensure!(t0.elapsed() < Duration::from_secs(60), "not dead again: {r:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ensure!(snaps(ctx, &dst).await?.contains("@local"), "still never rolled back");
        // The operator's fix, then retry: completed with no wakeup.
        ctx.sh(&format!("zfs destroy '{dst}@local'")).await?;
        let (ok, out, err) = push.cli(&["queue", "retry", "push", "default", &app]).await?;
        ensure!(ok && out.contains("ready"), "queue retry: {out}{err}");
        wait_record(&push, &app, "completed", 60).await?;
        tree.verify(ctx, &format!("{}/alice", site.root_fs), &["zrelay_4"], "four.bin")
            .await?;
        let (ok, list, _) = push.cli(&["queue", "list"]).await?;
        ensure!(ok && list.contains("completed") && !list.contains("dead"), "{list}");
        Ok(())
    }
    .await;
    result.with_context(|| format!("--- push log:\n{}", tail(&push.log_text())))?;
    push.stop().await?;
    sink.stop().await?;
    Ok(())
}
