//! End-to-end cases beyond the happy path: refused clients (each refusal is
//! logged clearly by the serving daemon), and a graceful shutdown in the
//! middle of a step that leaves the step resumable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::daemons::Tree;
use crate::daemons::{free_port, tail, tcp_pair, Daemon, Pair, Site};
use crate::harness::Ctx;
use crate::tls::TestPki;

/// Wait until `log()` contains all of `needles` (≤ 20 s).
async fn wait_log(d: &Daemon, needles: &[&str]) -> Result<()> {
    let started = Instant::now();
    loop {
        let log = d.log_text();
        if needles.iter().all(|n| log.contains(n)) {
            if let Some(l) = log.lines().find(|l| l.contains(needles[0])) {
                println!("       {} logged: {}", d.name, strip_ansi(l));
            }
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("{} log lacks {needles:?}:\n{}", d.name, tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// A refused push fails for good: its retries (two 10 s waits before the
/// next planning) would only add idle time to the case.
const ONE_ATTEMPT: &[(&str, &str)] = &[("ZREPL_REPLICATION_MAX_ATTEMPTS", "1")];

/// A TLS client whose certificate CN is not in `client_cns` is refused, and
/// so is a client without a certificate; the sink logs both.
pub async fn tls_refusals(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let (dir, root_fs) = (site.dir.clone(), site.root_fs.clone());
    let tree = Tree::create(ctx, 100_000).await?;
    let pki = TestPki::new()?;
    pki.write(&site.scratch, &["sink.test"], &["alice", "mallory"])?;
    let port = free_port()?;
    let serve = format!("{{type: tls, listen: \"127.0.0.1:{port}\", ca: \"{dir}/ca.pem\", cert: \"{dir}/sink.test.pem\", key: \"{dir}/sink.test.key\", client_cns: [\"alice\"]}}");
    let connect = format!("{{type: tls, address: \"127.0.0.1:{port}\", ca: \"{dir}/ca.pem\", cert: \"{dir}/mallory.pem\", key: \"{dir}/mallory.key\", server_cn: \"sink.test\"}}");
    let Pair {
        sink: sink_d,
        push: push_d,
    } = site
        .start_pair_env(&serve, &connect, &tree.src, "", ONE_ATTEMPT)
        .await?;

    let (ok, _, err) = push_d.cli(&["signal", "wakeup", "push", "--wait"]).await?;
    ensure!(!ok, "mallory's push must fail:\n{err}");
    wait_log(&sink_d, &["mallory", "client_cns"]).await?;
    let received = ctx
        .sh(&format!("zfs list -H -r -o name '{root_fs}'"))
        .await?;
    ensure!(
        received.trim() == root_fs,
        "nothing may arrive from mallory: {received}"
    );

    // No client certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(site.scratch.path("ca.pem"))?;
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let local = tcp.local_addr()?.to_string();
    let name = rustls_pki_types::ServerName::try_from("sink.test")?;
    let outcome = async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await?;
        tls.write_all(b"hello").await?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    };
    match tokio::time::timeout(Duration::from_secs(20), outcome).await {
        Ok(Ok(n)) if n > 0 => bail!("a client without a certificate got {n} bytes back"),
        Ok(_) => {}
        Err(_) => bail!("a client without a certificate was neither refused nor closed"),
    }
    wait_log(&sink_d, &[&local, "no client certificate"]).await?;
    push_d.stop().await?;
    sink_d.stop().await?;
    Ok(())
}

/// A tcp client from an IP that `clients` does not map is refused and logged.
pub async fn tcp_refuses_unmapped_ip(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let root_fs = site.root_fs.clone();
    let tree = Tree::create(ctx, 100_000).await?;
    let (serve, connect) = tcp_pair(free_port()?, "127.0.0.2");
    let Pair {
        sink: sink_d,
        push: push_d,
    } = site
        .start_pair_env(&serve, &connect, &tree.src, "", ONE_ATTEMPT)
        .await?;
    let (ok, _, err) = push_d.cli(&["signal", "wakeup", "push", "--wait"]).await?;
    ensure!(!ok, "a push from an unmapped IP must fail:\n{err}");
    wait_log(
        &sink_d,
        &[
            "tcp: refused connection from 127.0.0.1",
            "not in serve.clients",
        ],
    )
    .await?;
    let received = ctx
        .sh(&format!("zfs list -H -r -o name '{root_fs}'"))
        .await?;
    ensure!(received.trim() == root_fs, "nothing may arrive: {received}");
    push_d.stop().await?;
    sink_d.stop().await?;
    Ok(())
}

/// SIGTERM to the push daemon during a step: it exits cleanly, the sink keeps
/// a resumable partial receive, and after a restart the step resumes.
pub async fn sigterm_keeps_step_resumable(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let root_fs = site.root_fs.clone();
    let tree = Tree::create(ctx, 64_000_000).await?;
    let (serve, connect) = tcp_pair(free_port()?, "127.0.0.1");
    let Pair {
        sink: sink_d,
        push: push_d,
    } = site.start_pair(&serve, &connect, &tree.src, "").await?;
    let app_dst = format!("{root_fs}/alice/{}", tree.app);

    let (ok, _, err) = push_d.cli(&["signal", "wakeup", "push"]).await?;
    ensure!(ok, "wakeup: {err}");
    // Wait until the big filesystem's step has moved some bytes.
    let started = Instant::now();
    loop {
        let (_, out, _) = push_d.cli(&["status", "--mode", "raw"]).await?;
        let v: serde_json::Value = serde_json::from_str(&out).context("status --mode raw")?;
        let moving = v["jobs"][0]["current"]["filesystems"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| {
                f["fs"] == tree.app.as_str() && f["bytes_replicated"].as_u64().unwrap_or(0) > 0
            });
        if moving {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no progress within 60s:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crate::daemons::wait_recv_read(&app_dst, 2 << 20, Duration::from_secs(60)).await?;
    push_d.stop().await.context("push daemon on SIGTERM")?;
    let stopped = Instant::now();
    crate::daemons::wait_resume_token(ctx, &app_dst, Duration::from_secs(30)).await?;
    println!(
        "       the sink saved the resumable state {:.1}s after the push daemon stopped",
        stopped.elapsed().as_secs_f64()
    );

    let push_d = site.restart_push("push2.log").await?;
    let summary = push_d.wakeup_ok("push").await?;
    ensure!(
        summary.contains("resum"),
        "the step must resume:\n{summary}"
    );
    tree.verify(ctx, &format!("{root_fs}/alice"), &["zrelay_1"], "first.bin")
        .await?;
    push_d.stop().await?;
    sink_d.stop().await?;
    Ok(())
}

/// zstd on the wire, on by default over tcp: a text file's stream goes out at
/// a fraction of its size, a stream of random data keeps at least the size
/// of its random bytes, and both arrive intact (GUIDs, sha256).
pub async fn tcp_compresses_on_the_wire(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let tree = Tree::create(ctx, 150_000).await?;
    let mp = ctx
        .sh(&format!("zfs get -H -o value mountpoint '{}'", tree.app))
        .await?;
    ctx.sh(&format!(
        "awk 'BEGIN {{ for (i = 0; i < 100000; i++) printf \"line %d of a log that zrelay sends compressed\\n\", i }}' > '{}/text.log'",
        mp.trim()
    ))
    .await?;
    tree.snapshot(ctx, "zrelay_2").await?;
    let (serve, connect) = tcp_pair(free_port()?, "127.0.0.1");
    let Pair { sink, push } = site.start_pair(&serve, &connect, &tree.src, "").await?;
    push.wakeup_ok("push").await?;
    tree.verify(
        ctx,
        &format!("{}/alice", site.root_fs),
        &["zrelay_2"],
        "text.log",
    )
    .await?;
    // The push daemon logs each compressed stream (zrelay_rpc at debug).
    let log = strip_ansi(&push.log_text());
    let field = |l: &str, k: &str| -> Option<u64> {
        let v = l.split(&format!("{k}=")).nth(1)?;
        v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let streams: Vec<(u64, u64)> = log
        .lines()
        .filter(|l| l.contains("sent a zstd-compressed stream"))
        .filter_map(|l| Some((field(l, "raw")?, field(l, "wire")?)))
        .collect();
    println!("       streams (raw, wire bytes): {streams:?}");
    ensure!(
        streams.len() == 2,
        "one compressed stream per filesystem expected, got {streams:?}:\n{}",
        tail(&log)
    );
    ensure!(
        streams
            .iter()
            .any(|&(raw, wire)| raw > 4_000_000 && wire * 4 < raw),
        "the text's stream must go out at under a quarter of its size: {streams:?}"
    );
    // The logs' stream: 100 kB of random data (which no compression shrinks)
    // behind the stream's records (which shrink).
    ensure!(
        streams
            .iter()
            .any(|&(raw, wire)| raw > 100_000 && raw < 1_000_000 && wire >= 100_000 && wire < raw),
        "the random data's stream must keep its random 100 kB: {streams:?}"
    );
    push.stop().await?;
    sink.stop().await?;
    Ok(())
}
