//! End-to-end: what operators watch. `status --mode raw` shows progress
//! moving during a replication, a Prometheus scrape taken meanwhile passes
//! `promtool check metrics`, `signal wakeup --wait` fails loudly when the
//! receiver cannot receive, and a step in flight when the daemon is killed
//! shows in `zrelay history` as stale and then completed.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::daemons::Tree;
use crate::daemons::{free_port, tcp_pair, Daemon, Site};
use crate::harness::Ctx;

/// A sink daemon and a push daemon (with a metrics endpoint) over tcp.
struct Pair {
    site: Site,
    metrics_port: u16,
    sink: Daemon,
    push: Daemon,
}

impl Pair {
    async fn start(ctx: &Ctx, tree: &Tree) -> Result<Pair> {
        let site = Site::new(ctx).await?;
        let metrics_port = free_port()?;
        let (serve, connect) = tcp_pair(free_port()?, "127.0.0.1");
        let extra = format!(
            "  monitoring:\n    - type: prometheus\n      listen: \"127.0.0.1:{metrics_port}\"\n"
        );
        let daemons = site.start_pair(&serve, &connect, &tree.src, &extra).await?;
        Ok(Pair {
            site,
            metrics_port,
            sink: daemons.sink,
            push: daemons.push,
        })
    }

    /// `bytes_replicated` of `fs` in the push job's running invocation.
    async fn live_bytes(&self, fs: &str) -> Result<Option<u64>> {
        let (_, out, err) = self.push.cli(&["status", "--mode", "raw"]).await?;
        let v: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("status --mode raw: {out}{err}"))?;
        Ok(v["jobs"][0]["current"]["filesystems"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["fs"] == fs)
            .and_then(|f| f["bytes_replicated"].as_u64()))
    }
}

/// GET /metrics on loopback.
async fn scrape(port: u16) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let (head, body) = out.split_once("\r\n\r\n").context("no HTTP body")?;
    ensure!(head.starts_with("HTTP/1.1 200"), "scrape: {head}");
    Ok(body.to_string())
}

/// Progress moves in `status --mode raw`, and a scrape taken meanwhile
/// passes promtool and carries the replication's families.
pub async fn status_and_metrics_during_replication(ctx: &Ctx) -> Result<()> {
    let tree = Tree::create(ctx, 48_000_000).await?;
    let p = Pair::start(ctx, &tree).await?;
    let (ok, _, err) = p.push.cli(&["signal", "wakeup", "push"]).await?;
    ensure!(ok, "wakeup: {err}");
    let started = Instant::now();
    let mut seen: Vec<u64> = Vec::new();
    let mut scraped = None;
    while seen.len() < 2 || seen.windows(2).all(|w| w[0] == w[1]) {
        if let Some(b) = p.live_bytes(tree.app.as_str()).await? {
            if b > 0 && seen.last() != Some(&b) {
                seen.push(b);
                if scraped.is_none() {
                    scraped = Some(scrape(p.metrics_port).await?);
                }
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("progress did not move in status --mode raw: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    println!("       status --mode raw bytes_replicated moved: {seen:?}");
    let body = scraped.expect("scraped while replicating");
    let file = p.site.scratch.write("scrape.txt", &body)?;
    let out = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file)?)
        .output()
        .await
        .context("running promtool (Debian package prometheus)")?;
    ensure!(
        out.status.success(),
        "promtool check metrics failed: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for family in ["zrelay_start_time", "zrelay_daemon_log_entries"] {
        ensure!(body.contains(family), "scrape lacks {family}:\n{body}");
    }
    p.push.wakeup_ok("push").await?;
    let after = scrape(p.metrics_port).await?;
    for family in [
        "zrelay_replication_bytes_replicated",
        "zrelay_replication_last_successful",
        "zrelay_filesystem_last_replicated_snapshot_timestamp",
        "zrelay_zfscmd_runtime",
    ] {
        ensure!(
            after.contains(family),
            "scrape after replication lacks {family}:\n{after}"
        );
    }
    p.push.stop().await?;
    p.sink.stop().await?;
    Ok(())
}

/// A receiver that cannot receive (its `root_fs` is gone; `readonly=on`
/// does not stop `zfs recv`) makes `signal wakeup --wait` exit non-zero and
/// name the failed filesystem.
pub async fn wakeup_wait_fails_when_the_receiver_cannot_receive(ctx: &Ctx) -> Result<()> {
    let tree = Tree::create(ctx, 100_000).await?;
    let p = Pair::start(ctx, &tree).await?;
    ctx.sh(&format!("zfs destroy -r '{}'", p.site.root_fs))
        .await?;
    let (ok, _, err) = p.push.cli(&["signal", "wakeup", "push", "--wait"]).await?;
    ensure!(
        !ok,
        "wakeup --wait must fail when the receiver cannot receive:\n{err}"
    );
    ensure!(
        err.contains("does not exist"),
        "the failure must say why:\n{err}"
    );
    ensure!(
        err.contains("failed") && err.contains(tree.app.as_str()),
        "the failure must name the filesystem:\n{err}"
    );
    println!(
        "       {}",
        err.lines().find(|l| l.contains("failed")).unwrap_or("")
    );
    p.push.stop().await?;
    p.sink.stop().await?;
    Ok(())
}

/// Kill -9 during a step: after the restart `zrelay history` shows that
/// step stale, and the resumed step completed.
pub async fn history_shows_killed_step_stale_then_completed(ctx: &Ctx) -> Result<()> {
    let tree = Tree::create(ctx, 64_000_000).await?;
    let mut p = Pair::start(ctx, &tree).await?;
    let (ok, _, err) = p.push.cli(&["signal", "wakeup", "push"]).await?;
    ensure!(ok, "wakeup: {err}");
    let started = Instant::now();
    while p.live_bytes(tree.app.as_str()).await?.unwrap_or(0) == 0 {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no progress within 60s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.push.kill().await?;
    p.push = p.site.restart_push("push2.log").await?;
    p.push.wakeup_ok("push").await?;
    tree.verify(
        ctx,
        &format!("{}/alice", p.site.root_fs),
        &["zrelay_1"],
        "first.bin",
    )
    .await?;
    let (ok, out, err) = p
        .push
        .cli(&[
            "history",
            "--job",
            "push",
            "--fs",
            tree.app.as_str(),
            "--json",
        ])
        .await?;
    ensure!(ok, "history: {err}");
    let rows: serde_json::Value = serde_json::from_str(&out).context("history --json")?;
    let states: Vec<String> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["step"]["state"].as_str().map(str::to_string))
        .collect();
    // Newest first: the resumed step completed, the killed one is stale.
    let completed = states.iter().position(|s| s == "completed");
    let stale = states.iter().position(|s| s == "stale");
    ensure!(
        matches!((completed, stale), (Some(c), Some(s)) if c < s),
        "history must show the step stale, then completed: {states:?}\n{out}"
    );
    let (_, table, _) = p.push.cli(&["history", "--job", "push"]).await?;
    println!(
        "{}",
        table
            .lines()
            .map(|l| format!("       {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    p.push.stop().await?;
    p.sink.stop().await?;
    Ok(())
}
