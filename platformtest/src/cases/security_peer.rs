//! A hostile peer against real daemons on real ZFS: a `destroy_snapshots` request whose
//! names hold `%` (in `zfs destroy`, `fs@%` is every snapshot and `fs@a%b` a range) is
//! refused by a sink and by a source, naming the offending name, and every snapshot is
//! still there afterwards. An honest destroy over the same path works, so the refusal is
//! the check's doing, not a broken path.
//!
//! The client speaks the protocol by hand (hello, one control frame per request), as a
//! hostile peer would: `crates/rpc/PROTOCOL.md`.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::daemons::{free_port, tail, Daemon, Scratch, Site};
use crate::harness::Ctx;

/// The hello of protocol version 1 (`MAGIC`, version, software version).
fn hello() -> Vec<u8> {
    let mut h = b"ZRELAYP\n".to_vec();
    h.extend_from_slice(&1u32.to_be_bytes());
    let sw = b"hostile-1";
    h.extend_from_slice(&(sw.len() as u16).to_be_bytes());
    h.extend_from_slice(sw);
    h
}

/// A handshaken raw connection to `127.0.0.1:port`.
async fn connect(port: u16) -> Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(&hello()).await?;
    let mut fixed = [0u8; 14];
    s.read_exact(&mut fixed).await?;
    ensure!(&fixed[..8] == b"ZRELAYP\n", "not a zrelay hello: {fixed:?}");
    let mut sw = vec![0u8; u16::from_be_bytes([fixed[12], fixed[13]]) as usize];
    s.read_exact(&mut sw).await?;
    Ok(s)
}

/// Send one request (`call`, `args` as JSON) and return the reply: `Ok(json)` for a
/// control frame, `Err(message)` for an error frame.
async fn call(
    s: &mut TcpStream,
    call: &str,
    args: serde_json::Value,
) -> Result<Result<String, String>> {
    let body = serde_json::json!({"call": call, "args": args}).to_string();
    let mut f = vec![1u8];
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body.as_bytes());
    s.write_all(&f).await?;
    loop {
        let mut hdr = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(60), s.read_exact(&mut hdr))
            .await
            .context("no reply within 60s")??;
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).await?;
        let text = String::from_utf8_lossy(&p).into_owned();
        match hdr[0] {
            5 => continue,
            1 => return Ok(Ok(text)),
            6 => return Ok(Err(text)),
            k => bail!("unexpected frame kind {k}: {text}"),
        }
    }
}

/// The snapshots of `fs`, by the plain zfs CLI.
async fn snapshots(ctx: &Ctx, fs: &str) -> Result<Vec<String>> {
    let out = ctx
        .sh(&format!(
            "zfs list -H -t snapshot -o name -s createtxg -d 1 '{fs}'"
        ))
        .await?;
    Ok(out.lines().map(|l| l.trim().to_string()).collect())
}

/// Wait until the daemon's log has a line with all of `needles` (≤ 20 s).
async fn wait_log(d: &Daemon, needles: &[&str]) -> Result<()> {
    let started = Instant::now();
    loop {
        let log = d.log_text();
        if let Some(l) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            println!("       {} logged: {}", d.name, l.trim());
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("{} log lacks {needles:?}:\n{}", d.name, tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ask for each hostile destroy of `fs` (sender-namespace name `rel_fs`) on `port` and
/// check that each is refused and names the offending name.
async fn hostile_destroys(port: u16, call_name: &str, rel_fs: &str, pct_fs: &str) -> Result<()> {
    let mut s = connect(port).await?;
    for (fs, names) in [
        (rel_fs, vec!["%"]),
        (rel_fs, vec!["s1%s3"]),
        (rel_fs, vec!["s2", "%"]),
        (pct_fs, vec!["s1"]),
    ] {
        let args = serde_json::json!({"fs": fs, "snapshots": names});
        match call(&mut s, call_name, args).await? {
            Ok(reply) => bail!("{call_name} {fs} {names:?} was executed: {reply}"),
            Err(msg) => {
                ensure!(
                    msg.contains('%') && msg.contains("range"),
                    "{call_name} {fs} {names:?}: the refusal must name the % and why: {msg}"
                );
                println!(
                    "       refused {call_name} {fs} {names:?}: {}",
                    &msg[..msg.len().min(160)]
                );
            }
        }
    }
    Ok(())
}

/// `%` in a peer's destroy request is refused on a sink and on a source.
pub async fn peer_destroy_with_percent_is_refused(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    // The source's filesystem and its snapshots.
    let app = ctx.ds("src/app");
    ctx.sh(&format!(
        "zfs create -p '{app}' && for s in s0 s1 s2 s3; do zfs snapshot '{app}@'$s; done"
    ))
    .await?;
    // The same filesystem as the sink keeps it for client alice.
    let sink_fs = format!("{}/alice/{app}", site.root_fs);
    ctx.sh(&format!(
        "zfs create -p '{sink_fs}' && for s in s0 s1 s2 s3; do zfs snapshot '{sink_fs}@'$s; done"
    ))
    .await?;

    let (sink_port, source_port) = (free_port()?, free_port()?);
    let cfg = format!(
        "{}jobs:\n  - name: sink\n    type: sink\n    root_fs: \"{}\"\n    serve: {{type: tcp, listen: \"127.0.0.1:{sink_port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}\n  - name: source\n    type: source\n    serve: {{type: tcp, listen: \"127.0.0.1:{source_port}\", clients: {{\"127.0.0.1\": \"bob\"}}}}\n    filesystems:\n      \"{}<\": true\n    snapshotting:\n      type: manual\n",
        site.global("d", ""),
        site.root_fs,
        ctx.ds("src"),
    );
    let scratch: &Scratch = &site.scratch;
    let cfg = scratch.write("d.yml", &cfg)?;
    let d = Daemon::start(
        "daemon",
        &cfg,
        &scratch.path("d.sock"),
        &scratch.path("d.log"),
    )
    .await?;

    // An honest destroy over the same path works on both.
    let pct_fs = format!("{}/%x", ctx.ds("src"));
    for (port, call_name) in [
        (sink_port, "receiver.destroy_snapshots"),
        (source_port, "sender.destroy_snapshots"),
    ] {
        let mut s = connect(port).await?;
        let args = serde_json::json!({"fs": app.as_str(), "snapshots": ["s0"]});
        let reply = call(&mut s, call_name, args).await?;
        ensure!(
            reply.as_ref().is_ok_and(|r| r.contains("s0")),
            "an honest {call_name} of s0 must work: {reply:?}\n{}",
            tail(&d.log_text())
        );
        hostile_destroys(port, call_name, app.as_str(), &pct_fs).await?;
    }
    wait_log(&d, &["receiver.destroy_snapshots", "refused", "range"]).await?;
    wait_log(&d, &["sender.destroy_snapshots", "refused", "range"]).await?;

    let want = |fs: &str| -> Vec<String> {
        ["s1", "s2", "s3"]
            .iter()
            .map(|s| format!("{fs}@{s}"))
            .collect()
    };
    ensure!(
        snapshots(ctx, app.as_str()).await? == want(app.as_str()),
        "the source lost snapshots"
    );
    ensure!(
        snapshots(ctx, &sink_fs).await? == want(&sink_fs),
        "the sink lost snapshots"
    );
    println!("       every snapshot is still there on the sink and the source");
    d.stop().await?;
    Ok(())
}
