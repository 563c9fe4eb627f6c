//! Attacks on connections and frames: idle, slow, oversized, too many, fuzzed, and
//! descriptor exhaustion.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use zrelay_rpc::frame_kind as k;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_before_and_after_the_hello_are_closed() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    let mut before = Vec::new();
    let mut after = Vec::new();
    let started = Instant::now();
    for _ in 0..4 {
        before.push(mallory(d.sink).await);
        let mut s = mallory(d.source).await;
        handshake(&mut s).await;
        after.push(s);
    }
    // A legitimate client is served while they hang on.
    d.assert_legit_served().await;
    for (what, conns) in [
        ("before the hello", &mut before),
        ("after the hello", &mut after),
    ] {
        let mut last = Duration::ZERO;
        for s in conns.iter_mut() {
            time_to_close(s, Duration::from_secs(10)).await;
            last = started.elapsed();
        }
        println!(
            "FIGURE 4 idle connections {what}: all cut off {last:?} after they opened (limit 2s)"
        );
        assert!(last < Duration::from_secs(5), "{what}: {last:?}");
    }
    d.wait_log(&["refusing the connection", "handshake"]).await;
    d.wait_log(&["closing an idle connection"]).await;
    d.check_after("idle connections", rss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_do_not_keep_an_idle_connection() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    let mut s = mallory(d.sink).await;
    handshake(&mut s).await;
    let started = Instant::now();
    let closed = loop {
        if s.write_all(&frame(k::HEARTBEAT, b"")).await.is_err() {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(10) {
            panic!("heartbeats kept the connection open for 10s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    println!("FIGURE heartbeats only: cut off after {closed:?} (limit 2s)");
    d.wait_log(&["closing an idle connection"]).await;
    d.check_after("heartbeats only", rss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_peers_are_cut_off() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    // A hello at one byte a second, and a request at one byte a second.
    let slow_hello = async {
        let mut s = mallory(d.sink).await;
        let h = hello(zrelay_rpc::PROTOCOL_VERSION, b"slow");
        let started = Instant::now();
        for b in h {
            if s.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        started.elapsed()
    };
    let slow_frame = async {
        let mut s = mallory(d.source).await;
        handshake(&mut s).await;
        let req = frame(k::CONTROL, br#"{"call":"ping"}"#);
        let started = Instant::now();
        for b in req {
            if s.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        started.elapsed()
    };
    let (th, tf) = tokio::join!(slow_hello, slow_frame);
    println!("FIGURE slow hello (1 byte/s): cut off after about {th:?} (handshake_timeout 2s)");
    println!("FIGURE slow request (1 byte/s): cut off after about {tf:?} (frame_timeout 2s)");
    assert!(
        th < Duration::from_secs(6) && tf < Duration::from_secs(6),
        "{th:?} {tf:?}"
    );
    d.wait_log(&["frame that started did not complete"]).await;
    d.check_after("slow peers", rss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_refused_and_partial_ones_cost_what_arrived() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    // Announced 64 MiB: refused at once, with an error frame saying why.
    for _ in 0..10 {
        let mut s = mallory(d.sink).await;
        handshake(&mut s).await;
        let mut hdr = vec![k::CONTROL];
        hdr.extend_from_slice(&(64u32 << 20).to_be_bytes());
        s.write_all(&hdr).await.unwrap();
        s.write_all(&[b'x'; 4096]).await.ok();
        let (kind, p) = read_frame(&mut s).await.expect("an error frame");
        let text = String::from_utf8_lossy(&p);
        assert_eq!(kind, k::ERROR, "{text}");
        assert!(
            text.contains("exceeds the limit of 1048576 bytes"),
            "{text}"
        );
    }
    // Announced at the limit, 3/4 sent, then silence: held until the frame timeout, and
    // together bounded by the job's request memory (4 MiB: some are refused as busy).
    let started = Instant::now();
    let port = d.source;
    many(8, move |_| async move {
        let mut s = mallory(port).await;
        handshake(&mut s).await;
        let mut f = vec![k::CONTROL];
        f.extend_from_slice(&(1u32 << 20).to_be_bytes());
        f.extend_from_slice(&vec![b' '; 768 << 10]);
        // A request refused as busy (over the job's request memory) may be
        // closed while it is still being written: that is a refusal too.
        if s.write_all(&f).await.is_err() {
            return;
        }
        time_to_close(&mut s, Duration::from_secs(10)).await;
    })
    .await;
    let held = started.elapsed();
    println!(
        "FIGURE 8 partial 1 MiB requests: all closed after {held:?} (frame_timeout 2s), RSS then {} kB",
        d.rss_kb()
    );
    d.wait_log(&["exceeds the limit"]).await;
    d.wait_log(&["frame that started did not complete"]).await;
    d.wait_log(&["the server is busy", "request memory"]).await;
    d.check_after("oversized frames", rss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_above_the_caps_are_refused_and_logged_once_per_interval() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(mallory(d.sink).await);
    }
    // The legitimate client is served while mallory holds its 8.
    d.assert_legit_served().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = held.iter().filter(|s| !is_closed(s)).count();
    println!(
        "FIGURE 40 connections from one client (cap 8): {open} served, {} closed at once",
        40 - open
    );
    assert_eq!(open, 8, "the per-client cap");
    for s in held.iter_mut() {
        time_to_close(s, Duration::from_secs(10)).await;
    }
    let line = d.wait_log(&["too many connections", "mallory"]).await;
    assert!(line.contains("refused="), "{line}");
    let lines = d
        .log_text()
        .lines()
        .filter(|l| l.contains("too many connections"))
        .count();
    println!("FIGURE refusal log lines for 32 refusals: {lines}");
    assert!(lines <= 2, "{lines} refusal lines");
    d.check_after("many connections", rss).await;
}

/// A small deterministic generator (no dependency needed).
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_frames_after_a_valid_hello() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    for round in 0..60u64 {
        let port = if round % 2 == 0 { d.sink } else { d.source };
        let mut s = mallory(port).await;
        handshake(&mut s).await;
        let mut st = 0x9E37_79B9_7F4A_7C15 ^ (round + 1);
        let len = (xorshift(&mut st) % 4096) as usize + 1;
        let mut bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut st) as u8).collect();
        if round % 3 == 0 {
            // A valid header around garbage JSON.
            bytes = frame(k::CONTROL, &bytes);
        }
        s.write_all(&bytes).await.ok();
        // Whatever it is, the server answers or closes within the timeouts.
        let t = time_to_close(&mut s, Duration::from_secs(10)).await;
        assert!(t < Duration::from_secs(5), "round {round}: {t:?}");
    }
    d.wait_log(&["connection failed"]).await;
    d.check_after("fuzzed frames", rss).await;
}

/// The daemon's consumed CPU time (user + system), from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_backs_off_and_recovers() {
    let limits = LIMITS
        .replace("max_connections: 24", "max_connections: 1000")
        .replace(
            "max_connections_per_client: 8",
            "max_connections_per_client: 1000",
        );
    let mut d = Daemon::start_with(&limits, Some(48));
    let rss = d.rss_kb();
    let cpu0 = cpu_time(d.pid);
    let mut held = Vec::new();
    for _ in 0..120 {
        held.push(mallory(d.sink).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_time(d.pid) - cpu0;
    println!("FIGURE 120 connections under a 48-descriptor limit: daemon CPU {cpu:?} in 3s");
    assert!(
        cpu < Duration::from_millis(1500),
        "the daemon spins: {cpu:?}"
    );
    let lines = d
        .log_text()
        .lines()
        .filter(|l| l.contains("tcp accept failed"))
        .count();
    println!("FIGURE accept-failure log lines: {lines}");
    assert!((1..=2).contains(&lines), "{lines} accept-failure lines");
    drop(held);
    // Once the attacker is gone the legitimate client gets in again.
    let started = Instant::now();
    loop {
        let c = zrelay_transport::tcp::TcpConnector::new(
            &format!("127.0.0.1:{}", d.sink),
            Duration::from_secs(5),
        )
        .unwrap();
        match zrelay_rpc::ping(&c, &zrelay_rpc::RpcConfig::default()).await {
            Ok(_) => break,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(15),
                "the legitimate client stays locked out: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "FIGURE legitimate client served again {:?} after the attacker left",
        started.elapsed()
    );
    d.check_after("descriptor exhaustion", rss).await;
}
