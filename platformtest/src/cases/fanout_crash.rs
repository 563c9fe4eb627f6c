//! Crash re-drive: a fan-out push daemon is SIGKILLed in the middle of a
//! step to one of its two targets and restarted with no wakeup. The work
//! queue shows the record in progress; once its lease (4 s here) expires,
//! the re-drive chore takes it back and the step resumes from the sink's
//! token (it sends less than the full stream); the record completes.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use serde_json::Value;

use super::daemons::{global, Tree};
use crate::daemons::{free_port, tail, Daemon, Scratch, SecondPool};
use crate::harness::Ctx;

const DATA: usize = 24_000_000;

fn push_yaml(dir: &str, src: &str, fast: u16, slow: u16) -> String {
    format!(
        "{}  queue:\n    lease: 4s\njobs:\n  - name: fan\n    type: push\n    targets:\n      - name: fast\n        connect: {{type: tcp, address: \"127.0.0.1:{fast}\"}}\n      - name: slow\n        connect: {{type: tcp, address: \"127.0.0.1:{slow}\"}}\n        bandwidth_limit: {{max: 2 MiB}}\n    fan_out:\n      health_check_interval: 1s\n    filesystems:\n      \"{src}<\": true\n    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
        global(dir, "fan")
    )
}

fn sink_yaml(dir: &str, name: &str, port: u16, root: &str) -> String {
    format!(
        "{}jobs:\n  - name: {name}\n    type: sink\n    root_fs: \"{root}\"\n    serve: {{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}\n",
        global(dir, name)
    )
}

/// The queue record of (fan, `target`, `fs`), from `zrelay queue list --json`.
async fn record(d: &Daemon, target: &str, fs: &str) -> Result<Value> {
    let (ok, out, err) = d.cli(&["queue", "list", "--json", "--job", "fan"]).await?;
    ensure!(ok, "queue list: {err}");
    let rows: Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    Ok(rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["key"]["target"] == target && r["key"]["filesystem"] == fs)
        .cloned()
        .unwrap_or(Value::Null))
}

pub async fn crash_redrive(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let pool = SecondPool::create(ctx).await?;
    let (root_fast, root_slow) = (format!("{}/fast", pool.name), format!("{}/slow", pool.name));
    ctx.sh(&format!(
        "zfs create '{root_fast}' && zfs create '{root_slow}'"
    ))
    .await?;
    let tree = Tree::create(ctx, DATA).await?;
    let app = tree.app.to_string();
    let (pf, ps) = (free_port()?, free_port()?);
    let sf = scratch.write(
        "sink_fast.yml",
        &sink_yaml(&dir, "sink_fast", pf, &root_fast),
    )?;
    let ss = scratch.write(
        "sink_slow.yml",
        &sink_yaml(&dir, "sink_slow", ps, &root_slow),
    )?;
    let pc = scratch.write("fan.yml", &push_yaml(&dir, tree.src.as_str(), pf, ps))?;
    let p = |n: &str| scratch.path(n);
    let s_fast = Daemon::start("sink_fast", &sf, &p("sink_fast.sock"), &p("sink_fast.log")).await?;
    let s_slow = Daemon::start("sink_slow", &ss, &p("sink_slow.sock"), &p("sink_slow.log")).await?;
    let mut push = Daemon::start("fan", &pc, &p("fan.sock"), &p("fan_1.log")).await?;

    let (ok, _, err) = push.cli(&["signal", "wakeup", "fan"]).await?;
    ensure!(ok, "wakeup: {err}");
    // Wait until slow's step of `app` has moved a few MiB, then kill -9.
    let started = Instant::now();
    loop {
        let (_, out, _) = push.cli(&["status", "--mode", "raw"]).await?;
        let v: Value = serde_json::from_str(&out).context("status --mode raw")?;
        let moved = v["jobs"][0]["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["name"] == "slow")
            .flat_map(|t| {
                t["current"]["filesystems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|f| f["fs"] == app.as_str())
            .filter_map(|f| f["bytes_replicated"].as_u64())
            .max()
            .unwrap_or(0);
        if moved > 3_000_000 {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "no progress within 120s:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fs = format!("{root_slow}/alice/{app}");
    crate::daemons::wait_recv_read(&fs, 1 << 20, Duration::from_secs(60)).await?;
    let before = record(&push, "slow", &app).await?;
    push.kill().await?;
    ensure!(
        before["state"] == "in_progress",
        "in progress before the kill: {before:#}"
    );
    // The sink's `zfs recv` saves its resumable state once it has read
    // what was still buffered and seen the stream end.
    crate::daemons::wait_resume_token(ctx, &fs, Duration::from_secs(30)).await?;

    // Restart with no wakeup: the record is re-driven once its lease expires.
    let push = Daemon::start("fan", &pc, &p("fan.sock"), &p("fan_2.log")).await?;
    let t0 = Instant::now();
    let mut seen: Vec<String> = Vec::new();
    let done = loop {
        let r = record(&push, "slow", &app).await?;
        let state = r["state"].as_str().unwrap_or("none").to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "completed" {
            break r;
        }
        ensure!(
            t0.elapsed() < Duration::from_secs(180),
            "not completed within 180s (states {seen:?}): {r:#}\n{}",
            tail(&push.log_text())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = push.log_text();
    ensure!(
        log.contains("re-driving work whose lease expired"),
        "the restarted daemon re-drives the killed step:\n{}",
        tail(&log)
    );
    ensure!(
        done["generation"].as_u64().unwrap_or(0) > before["generation"].as_u64().unwrap_or(0),
        "acquired again after the re-drive: {before:#} then {done:#}"
    );
    // The resumed step sent less than the full stream.
    let step = log
        .lines()
        .find(|l| l.contains("step done") && l.contains("(resuming)") && l.contains("job=fan:slow"))
        .with_context(|| format!("no resumed step of slow in the log:\n{}", tail(&log)))?;
    let bytes: u64 = step
        .split("bytes=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .with_context(|| step.to_string())?;
    ensure!(
        bytes < DATA as u64 * 9 / 10,
        "the resumed step sends less than the full {DATA} bytes: {bytes}"
    );
    tree.verify(
        ctx,
        &format!("{root_slow}/alice"),
        &["zrelay_1"],
        "first.bin",
    )
    .await?;
    tree.verify(
        ctx,
        &format!("{root_fast}/alice"),
        &["zrelay_1"],
        "first.bin",
    )
    .await?;
    println!(
        "crash re-drive: record states after the restart {seen:?}; completed {:.1}s after the restart; the resumed step sent {bytes} of {DATA} bytes",
        t0.elapsed().as_secs_f64()
    );
    push.stop().await?;
    s_fast.stop().await?;
    s_slow.stop().await?;
    Ok(())
}
