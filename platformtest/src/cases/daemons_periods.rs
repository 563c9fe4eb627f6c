//! End-to-end: a snap job and a push job run through several simulated
//! hours with a controllable clock (the snapshotters read the time from a
//! file, `ZRELAY_TEST_CLOCK_FILE`), and the snapshots that survive on each
//! side converge to exactly what the keep rules say.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use zrelay_zfs::Zfs;

use crate::daemons::{free_port, tail, Daemon, Scratch, SecondPool};
use crate::harness::Ctx;

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;

/// zrepl's `dense` timestamp of `T0 + hours`: `20260101_HH0000_000`.
fn dense(hours: u64) -> String {
    format!("202601{:02}_{:02}0000_000", 1 + hours / 24, hours % 24)
}

async fn snapshots(ctx: &Ctx, fs: &str) -> Result<Vec<String>> {
    let out = ctx
        .sh(&format!(
            "zfs list -H -t snapshot -o name -s createtxg -d 1 '{fs}' 2>/dev/null || true"
        ))
        .await?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once('@').map(|(_, s)| s.to_string()))
        .collect())
}

/// Wait (≤ 120 s) until each `(fs, expected)` holds exactly those snapshots.
async fn converge(ctx: &Ctx, want: &[(String, Vec<String>)], logs: &[&Daemon]) -> Result<()> {
    let started = Instant::now();
    loop {
        let mut diff = Vec::new();
        for (fs, names) in want {
            let got = snapshots(ctx, fs).await?;
            if &got != names {
                diff.push(format!("{fs}: have {got:?}, the rules say {names:?}"));
            }
        }
        if diff.is_empty() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            let logs: Vec<String> = logs
                .iter()
                .map(|d| format!("--- {} log:\n{}", d.name, tail(&d.log_text())))
                .collect();
            bail!(
                "no convergence within 120s:\n{}\n{}",
                diff.join("\n"),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Five simulated hours: each hour both snapshotters fire; the push job
/// replicates and prunes both sides (sender: not_replicated + last 2,
/// receiver: last 3); the snap job prunes to the last 2 plus `keepme*`.
pub async fn snap_and_push_converge(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let b = SecondPool::create(ctx).await?;
    let root_fs = format!("{}/sink", b.name);
    ctx.sh(&format!("zfs create '{root_fs}'")).await?;
    let (src, app, snapped, data) = (
        ctx.ds("src"),
        ctx.ds("src/app"),
        ctx.ds("snapped"),
        ctx.ds("snapped/data"),
    );
    for fs in [&src, &app, &snapped, &data] {
        ctx.zfs.create(fs, &[]).await?;
    }
    ctx.write(&app, "a.bin", 200_000).await?;
    ctx.write(&data, "d.bin", 200_000).await?;
    // A snapshot no rule keeps and one the regex rule keeps.
    ctx.sh(&format!(
        "zfs snapshot '{data}@other_1' && zfs snapshot '{data}@keepme_1'"
    ))
    .await?;
    let clock = scratch.write("clock", &T0.to_string())?;
    let port = free_port()?;
    let sink = format!(
        "global:\n  control:\n    sockpath: \"{dir}/sink.sock\"\n  history:\n    path: \"{dir}/sink.sqlite\"\njobs:\n  - name: sink\n    type: sink\n    root_fs: \"{root_fs}\"\n    serve: {{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}\n"
    );
    let active = format!(
        r#"global:
  control:
    sockpath: "{dir}/active.sock"
  history:
    path: "{dir}/active.sqlite"
jobs:
  - name: push
    type: push
    connect: {{type: tcp, address: "127.0.0.1:{port}"}}
    filesystems:
      "{src}<": true
    snapshotting:
      type: periodic
      prefix: zrepl_
      interval: 1h
    pruning:
      keep_sender:
        - type: not_replicated
        - type: last_n
          count: 2
          regex: "^zrepl_"
      keep_receiver:
        - type: last_n
          count: 3
          regex: "^zrepl_"
  - name: snapjob
    type: snap
    filesystems:
      "{snapped}<": true
    snapshotting:
      type: periodic
      prefix: snap_
      interval: 1h
    pruning:
      keep:
        - type: last_n
          count: 2
          regex: "^snap_"
        - type: regex
          regex: "^keepme"
"#
    );
    let sink_cfg = scratch.write("sink.yml", &sink)?;
    let active_cfg = scratch.write("active.yml", &active)?;
    let sink_d = Daemon::start(
        "sink",
        &sink_cfg,
        &scratch.path("sink.sock"),
        &scratch.path("sink.log"),
    )
    .await?;
    let clock_s = clock.display().to_string();
    let active_d = Daemon::start_env(
        "active",
        &active_cfg,
        &scratch.path("active.sock"),
        &scratch.path("active.log"),
        &[("ZRELAY_TEST_CLOCK_FILE", clock_s.as_str())],
    )
    .await?;
    let recv_app = format!("{root_fs}/alice/{app}");
    let newest = |prefix: &str, upto: u64, n: u64| -> Vec<String> {
        (upto.saturating_sub(n - 1)..=upto)
            .map(|h| format!("{prefix}{}", dense(h)))
            .collect()
    };
    for hour in 0..=4u64 {
        if hour > 0 {
            std::fs::write(&clock, (T0 + hour * 3600).to_string())?;
        }
        let mut snap_want = vec!["keepme_1".to_string()];
        snap_want.extend(newest("snap_", hour, 2));
        let want = vec![
            (app.to_string(), newest("zrepl_", hour, 2)),
            (recv_app.clone(), newest("zrepl_", hour, 3)),
            (data.to_string(), snap_want),
        ];
        converge(ctx, &want, &[&active_d, &sink_d])
            .await
            .map_err(|e| e.context(format!("simulated hour {hour}")))?;
        println!(
            "       hour {hour}: sender {:?}, receiver {:?}",
            want[0].1, want[1].1
        );
    }
    // The dry run agrees: nothing more would go, and it says why.
    let (ok, out, err) = active_d
        .cli(&["prune", "--dry-run", "--json", "push"])
        .await?;
    let reports: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| anyhow::anyhow!("prune --dry-run --json: {e}: {out}\n{err}"))?;
    let would: Vec<&serde_json::Value> = reports
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["filesystems"].as_array().into_iter().flatten())
        .flat_map(|f| f["would_destroy"].as_array().into_iter().flatten())
        .collect();
    if !ok || !would.is_empty() || reports.as_array().map(Vec::len) != Some(2) {
        bail!("prune --dry-run after convergence must destroy nothing:\n{out}\n{err}");
    }
    active_d.stop().await?;
    sink_d.stop().await?;
    Ok(())
}
