//! Pruning across targets on real ZFS: `not_replicated` keeps a snapshot on
//! the sender until the last target has it, while a down target is within
//! its `protection_grace`; once the grace expires the target stops
//! protecting (status and log say so) and the sender's pruning goes on.

use std::time::Duration;

use anyhow::{ensure, Context as _, Result};

use super::daemons::{global, Tree};
use super::fanout::{sink_yaml, target, targets, wait_until};
use crate::daemons::{free_port, tail, Daemon, Scratch, SecondPool};
use crate::harness::Ctx;

/// The grace; rounds 2 and 3 must run within it on a slow guest.
const GRACE_SECS: u64 = 40;

fn push_yaml(dir: &str, src: &str, a: u16, b: u16) -> String {
    format!(
        "{}jobs:\n  - name: fan\n    type: push\n    targets:\n      - name: a\n        connect: {{type: tcp, address: \"127.0.0.1:{a}\"}}\n      - name: b\n        connect: {{type: tcp, address: \"127.0.0.1:{b}\", dial_timeout: 2s}}\n    fan_out:\n      health_check_interval: 1s\n      health_check_timeout: 5s\n      protection_grace: {GRACE_SECS}s\n    filesystems:\n      \"{src}<\": true\n    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
        global(dir, "fan")
    )
}

pub async fn pruning_across_targets(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let pool = SecondPool::create(ctx).await?;
    let (ra, rb) = (format!("{}/a", pool.name), format!("{}/b", pool.name));
    ctx.sh(&format!("zfs create '{ra}' && zfs create '{rb}'"))
        .await?;
    let tree = Tree::create(ctx, 200_000).await?;
    let app = tree.app.to_string();
    let (pa, pb) = (free_port()?, free_port()?);
    let p = |n: &str| scratch.path(n);
    let ca = scratch.write("sink_a.yml", &sink_yaml(&dir, "sink_a", pa, &ra))?;
    let cb = scratch.write("sink_b.yml", &sink_yaml(&dir, "sink_b", pb, &rb))?;
    let cp = scratch.write("fan.yml", &push_yaml(&dir, tree.src.as_str(), pa, pb))?;
    let sink_a = Daemon::start("sink_a", &ca, &p("sink_a.sock"), &p("sink_a.log")).await?;
    let sink_b = Daemon::start("sink_b", &cb, &p("sink_b.sock"), &p("sink_b.log")).await?;
    let push = Daemon::start("fan", &cp, &p("fan.sock"), &p("fan.log")).await?;
    let snaps = || async {
        ctx.sh(&format!("zfs list -H -t snapshot -o name -d 1 '{app}'"))
            .await
    };
    let result = async {
        wait_until(&push, 60, "two healthy targets", |ts| {
            ["a", "b"]
                .iter()
                .all(|n| target(ts, n)["health"]["health"] == "healthy")
        })
        .await?;
        push.wakeup_ok("fan").await?;
        // b goes down (its cursor stays at zrelay_1).
        sink_b.stop().await?;
        wait_until(&push, 60, "b to be unhealthy", |ts| {
            target(ts, "b")["health"]["health"] == "unhealthy"
        })
        .await?;
        for round in ["zrelay_2", "zrelay_3"] {
            ctx.write(&tree.app, &format!("{round}.bin"), 100_000)
                .await?;
            tree.snapshot(ctx, round).await?;
            let (ok, _, err) = push.cli(&["signal", "wakeup", "fan", "--wait"]).await?;
            ensure!(
                !ok && err.contains("not replicated to every target: b"),
                "{err}"
            );
            if round == "zrelay_3" {
                ensure!(
                    err.contains(
                        "@zrelay_2  (kept: protected: target b of this job has not received it yet"
                    ),
                    "a's pruning keeps what b lacks:\n{err}"
                );
            }
        }
        let ts = targets(&push).await?;
        ensure!(
            target(&ts, "b")["health"]["protecting"] == true,
            "b still protects within the grace: {:#}",
            target(&ts, "b")
        );
        ensure!(snaps().await?.contains("@zrelay_2"), "kept for b");
        // The grace expires: b no longer protects, pruning goes on.
        wait_until(&push, GRACE_SECS + 60, "b to stop protecting", |ts| {
            target(ts, "b")["health"]["protecting"] == false
        })
        .await?;
        // The health checks publish the lapse within one interval.
        let t0 = std::time::Instant::now();
        while !push
            .log_text()
            .contains("no longer keeps snapshots on the sender")
        {
            ensure!(
                t0.elapsed() < Duration::from_secs(15),
                "the lapse is logged:\n{}",
                tail(&push.log_text())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tree.snapshot(ctx, "zrelay_4").await?;
        let (_, _, err) = push.cli(&["signal", "wakeup", "fan", "--wait"]).await?;
        let left = snaps().await?;
        ensure!(
            !left.contains("@zrelay_2")
                && !left.contains("@zrelay_3")
                && left.contains("@zrelay_4"),
            "after the grace, a's pruning no longer keeps b's snapshots:\n{left}\n{err}"
        );
        tree.verify(ctx, &format!("{ra}/alice"), &["zrelay_4"], "zrelay_3.bin")
            .await?;
        Ok(())
    }
    .await;
    result.with_context(|| format!("--- push log:\n{}", tail(&push.log_text())))?;
    push.stop().await?;
    sink_a.stop().await?;
    Ok(())
}
