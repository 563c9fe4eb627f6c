//! External validators: `promtool check metrics` (Debian package
//! `prometheus`) on the classic text format, and the strict OpenMetrics
//! parser of `python3-prometheus-client` on the OpenMetrics output.
//!
//! A missing tool skips loudly; with `ZRELAY_REQUIRE_PROMTOOL=1` a missing
//! tool fails the test instead.

use std::io::Write;
use std::process::{Command, Stdio};

use zrelay_metrics::{Metrics, Side};
use zrelay_replication::{AttemptState, FsReport, FsState, Report};

use crate::http::{request, Server};
use crate::populated;

fn required() -> bool {
    std::env::var("ZRELAY_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1")
}

/// Run `cmd` with `input` on stdin; `None` when the program is missing.
fn run(program: &str, args: &[&str], input: &str) -> Option<(bool, String)> {
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("spawn {program}: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

fn skip(what: &str, install: &str) {
    assert!(
        !required(),
        "{what} is missing and ZRELAY_REQUIRE_PROMTOOL=1 (install: {install})"
    );
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {what} not found; install: {install} ***\n"
    );
}

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

/// `promtool check metrics` on `text`: Some(Ok) when clean, Some(Err(output)) otherwise.
fn promtool_check(text: &str) -> Option<Result<(), String>> {
    let (ok, out) = run(&promtool(), &["check", "metrics"], text)?;
    Some(if ok && out.trim().is_empty() {
        Ok(())
    } else {
        Err(out)
    })
}

/// Everything this crate can record, including via the observe paths.
fn everything() -> Metrics {
    let m = populated();
    let mut f = FsReport::new("pool/obs".into());
    f.state = FsState::Done;
    f.bytes_expected = 10;
    f.bytes_replicated = 10;
    let r = Report {
        state: AttemptState::Completed,
        attempt: 1,
        state_seconds: [(AttemptState::Planning, 1.0), (AttemptState::Working, 2.0)].into(),
        started_at: 1_700_000_000,
        finished_at: Some(1_700_000_003),
        planning_error: None,
        next_attempt_at: None,
        filesystems: vec![f],
    };
    m.observe_report("observed", &r);
    m.fs_lag("observed", "pool/obs", Side::Sender, 1_700_000_000);
    m
}

#[test]
fn promtool_accepts_the_classic_text() {
    let inputs = [
        ("fresh", Metrics::new("0.1.0", "v").encode_text()),
        ("populated", everything().encode_text()),
    ];
    for (what, text) in inputs {
        match promtool_check(&text) {
            None => return skip("promtool", "apt-get install prometheus"),
            Some(Ok(())) => {}
            Some(Err(out)) => panic!("promtool check metrics ({what}):\n{out}\ninput:\n{text}"),
        }
    }
}

#[test]
fn promtool_rejects_broken_input() {
    // The check can fail: an unescaped quote, and a counter without _total.
    let broken = "# HELP x X.\n# TYPE x counter\nx{a=\"b\"c\"} 1\n";
    let lint = "# HELP x_bytes X.\n# TYPE x_bytes counter\nx_bytes 1\n";
    for text in [broken, lint] {
        match promtool_check(text) {
            None => return skip("promtool", "apt-get install prometheus"),
            Some(r) => assert!(r.is_err(), "promtool accepted:\n{text}"),
        }
    }
}

#[tokio::test]
async fn promtool_accepts_what_the_endpoint_serves() {
    let srv = Server::start().await;
    let (_, _, body) = request(
        srv.addr,
        "GET /metrics HTTP/1.1\r\nAccept: text/plain; version=0.0.4\r\n\r\n",
    )
    .await;
    srv.stop().await;
    match promtool_check(&body) {
        None => skip("promtool", "apt-get install prometheus"),
        Some(Ok(())) => {}
        Some(Err(out)) => panic!("promtool check metrics:\n{out}\ninput:\n{body}"),
    }
}

const PARSE_OPENMETRICS: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    print(f.name, f.type, len(f.samples))
"#;

#[test]
fn openmetrics_output_passes_a_strict_parser() {
    let om = everything().encode();
    let python = "/usr/bin/python3";
    let Some((ok, out)) = run(python, &["-c", PARSE_OPENMETRICS], &om) else {
        return skip("python3", "apt-get install python3-prometheus-client");
    };
    if !ok && out.contains("No module named 'prometheus_client'") {
        return skip(
            "python3 prometheus_client",
            "apt-get install python3-prometheus-client",
        );
    }
    assert!(
        ok,
        "OpenMetrics parser rejected the output:\n{out}\ninput:\n{om}"
    );
    for fam in [
        "zrelay_start_time gauge",
        "zrelay_replication_bytes_replicated counter",
        "zrelay_replication_state_time histogram",
        "zrelay_filesystem_last_replicated_snapshot_timestamp gauge",
        "zrelay_zfscmd_runtime histogram",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(fam)),
            "{fam} missing:\n{out}"
        );
    }
}
