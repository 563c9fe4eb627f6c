//! Attacks with text: hostile names and tokens (with `%`, newlines, huge), too many
//! items per request, and log injection through the software version, an abort reason
//! and names. Every refusal names the offending value escaped and cut; no peer newline
//! starts a log line.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zrelay_rpc::frame_kind as k;

use crate::harness::*;

/// Send a request and return the error frame's message (the call must be refused).
async fn refused(s: &mut TcpStream, call: &str, args: serde_json::Value) -> String {
    let body = json!({"call": call, "args": args}).to_string();
    s.write_all(&frame(k::CONTROL, body.as_bytes()))
        .await
        .unwrap();
    let (kind, p) = tokio::time::timeout(Duration::from_secs(10), read_frame(s))
        .await
        .expect("a reply in time")
        .expect("a reply");
    let text = String::from_utf8_lossy(&p).into_owned();
    assert_eq!(kind, k::ERROR, "{call} must be refused, got {text}");
    let w: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(w["temporary"], false, "{text}");
    w["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_and_tokens_are_refused_by_name() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    let huge = "x".repeat(500 << 10);
    for (port, destroy) in [
        (d.sink, "receiver.destroy_snapshots"),
        (d.source, "sender.destroy_snapshots"),
    ] {
        let mut s = mallory(port).await;
        handshake(&mut s).await;
        for (fs, snaps, want) in [
            ("tank/src/a", vec!["%"], "tank/src/a@%"),
            ("tank/src/a", vec!["a%b"], "tank/src/a@a%b"),
            ("tank/src/%x", vec!["s1"], "tank/src/%x"),
            (
                "tank/src/a",
                vec!["s\nFORGED-NAME level=ERROR"],
                "s\\nFORGED-NAME",
            ),
            ("tank/src/a", vec![huge.as_str()], "bytes)"),
        ] {
            let m = refused(&mut s, destroy, json!({"fs": fs, "snapshots": snaps})).await;
            assert!(m.contains(want), "{destroy} {fs}: {m}");
            assert!(m.len() < 2048, "{destroy}: a refusal of {} bytes", m.len());
            assert!(!m.contains('\n'), "{m}");
        }
        let many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
        let m = refused(
            &mut s,
            destroy,
            json!({"fs": "tank/src/a", "snapshots": many}),
        )
        .await;
        assert!(m.contains("101") && m.contains("at most 100"), "{m}");
    }
    // Tokens: a newline, and 200 KiB.
    let mut s = mallory(d.source).await;
    handshake(&mut s).await;
    let step = |token: &str| {
        json!({"step": {"fs": "tank/src/a", "from": null,
            "to": {"kind": "snapshot", "name": "s1", "guid": 1, "createtxg": 1, "creation": 0},
            "resume_token": token,
            "protection": {"initial": "guarantee_nothing", "incremental": "guarantee_nothing"}}})
    };
    let m = refused(
        &mut s,
        "sender.send",
        step("1-abc\nFORGED-TOKEN level=ERROR"),
    )
    .await;
    assert!(
        m.contains("invalid resume token") && m.contains("\\nFORGED-TOKEN"),
        "{m}"
    );
    let m = refused(
        &mut s,
        "sender.send",
        step(&format!("1-{}", "ab".repeat(100 << 10))),
    )
    .await;
    assert!(
        m.contains("invalid resume token") && m.len() < 2048,
        "{}",
        m.len()
    );
    let line = d.wait_log(&["refused", "range"]).await;
    assert!(line.len() < 4096, "a log line of {} bytes", line.len());
    let longest = d.log_text().lines().map(str::len).max().unwrap_or(0);
    println!("FIGURE longest daemon log line after hostile names: {longest} bytes");
    assert!(longest < 8192, "{longest}");
    d.assert_no_forged_line("FORGED");
    d.check_after("hostile names and tokens", rss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_injection_does_not_forge_lines() {
    let mut d = Daemon::start(None);
    let rss = d.rss_kb();
    // A software version with a newline: in the debug line of an accepted hello, and in
    // the warning of a refused one (version mismatch).
    let forged = b"1.0\nFORGED-HELLO level=ERROR msg=pwned";
    let mut s = mallory(d.sink).await;
    s.write_all(&hello(zrelay_rpc::PROTOCOL_VERSION, forged))
        .await
        .unwrap();
    read_hello(&mut s).await;
    drop(s);
    let mut s = mallory(d.source).await;
    s.write_all(&hello(7, forged)).await.unwrap();
    time_to_close(&mut s, Duration::from_secs(5)).await;
    // An abort reason with a newline, sent where a request belongs.
    let mut s = mallory(d.sink).await;
    handshake(&mut s).await;
    s.write_all(&frame(k::DATA_ABORT, b"why\nFORGED-ABORT level=ERROR"))
        .await
        .unwrap();
    let (kind, p) = read_frame(&mut s).await.expect("an error frame");
    assert_eq!(kind, k::ERROR);
    assert!(String::from_utf8_lossy(&p).contains("FORGED-ABORT"));
    // A call name with a newline.
    let mut s = mallory(d.sink).await;
    handshake(&mut s).await;
    s.write_all(&frame(
        k::CONTROL,
        br#"{"call":"x\nFORGED-CALL level=ERROR"}"#,
    ))
    .await
    .unwrap();
    let _ = read_frame(&mut s).await;
    d.wait_log(&["1.0\\nFORGED-HELLO"]).await;
    d.wait_log(&["protocol version 7", "FORGED-HELLO"]).await;
    d.wait_log(&["why\\nFORGED-ABORT"]).await;
    d.wait_log(&["FORGED-CALL"]).await;
    d.assert_no_forged_line("FORGED");
    d.check_after("log injection", rss).await;
}
