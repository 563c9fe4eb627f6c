//! The daemon's life: schedules on an injected clock, jobs that fail to
//! start, graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zrelay_daemon::control::Signal;
use zrelay_daemon::status::JobState;
use zrelay_daemon::Policy;
use zrelay_replication::FsState;
use zrelay_snapshot::TokioClock;
use zrelay_zfs::Zfs;

use crate::rig::{self, Opts, RECEIVED};

const Y2026: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// A cron `replication.schedule` fires on the daemon's clock: under a
/// paused tokio clock starting at 00:30, the push job's first invocation
/// runs at 01:00 and the next is announced for 02:00, with no wakeup.
#[tokio::test(start_paused = true)]
async fn cron_replication_schedule_fires_under_a_paused_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(10_000).await;
    let extra = "  replication:\n    schedule:\n      cron: \"CRON_TZ=UTC 0 * * * *\"\n";
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(Y2026 + 1800);
    let opts = Opts {
        clock: Some(Arc::new(TokioClock::starting_at(start))),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &rig::pair("cron", extra), opts).await;
    let st = rig.wait_for("push", 1, |s| s.next_run_at.is_some()).await;
    assert_eq!(
        (st.invocations, st.next_run_at),
        (0, Some(Y2026 + 3600)),
        "{st:#?}"
    );
    tokio::time::sleep(Duration::from_secs(29 * 60)).await;
    assert_eq!(
        rig.job("push").invocations,
        0,
        "nothing before the fire time"
    );
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    let st = rig
        .wait_for("push", 600, |s| {
            s.invocations == 1 && s.state == JobState::Idle
        })
        .await;
    assert_eq!(st.next_run_at, Some(Y2026 + 7200), "{st:#?}");
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    rig.stop().await;
}

/// A job that cannot start (its listen address is taken; its TLS files do
/// not exist) is reported as failed, naming why, while the other jobs run.
/// The listener is retried with a backoff and serves once the address is
/// free; the setup failure is permanent and not retried.
#[tokio::test]
async fn a_job_that_fails_to_start_is_reported_while_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(10_000).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let jobs = format!(
        r#"{pair}- type: sink
  name: tcp_sink
  root_fs: p/tcp
  serve:
    type: tcp
    listen: "{addr}"
    clients:
      "127.0.0.1": c2
- type: push
  name: tls_push
  connect:
    type: tls
    address: "127.0.0.1:1"
    ca: {dir}/nope/ca.crt
    cert: {dir}/nope/c.crt
    key: {dir}/nope/c.key
    server_cn: srv
  filesystems:
    "p/src": true
  snapshotting:
    type: manual
  pruning:
    keep_sender: []
    keep_receiver: []
"#,
        pair = rig::pair("failing", ""),
        dir = dir.path().display()
    );
    let policy = Policy {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..Policy::default()
    };
    let opts = Opts {
        policy: Some(policy),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &jobs, opts).await;
    let tcp = rig
        .wait_for("tcp_sink", 10, |s| s.state == JobState::Failed)
        .await;
    let e = tcp.last_error.clone().unwrap_or_default();
    assert!(
        e.contains("tcp_sink") && e.contains(&addr.to_string()),
        "{tcp:#?}"
    );
    let tls = rig.job("tls_push");
    let e = tls.last_error.clone().unwrap_or_default();
    assert_eq!(tls.state, JobState::Failed, "{tls:#?}");
    assert!(e.contains("nope/ca.crt"), "{tls:#?}");
    // the others run
    assert_eq!(rig.job("sink").state, JobState::Serving);
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert_eq!(s.report.unwrap().filesystems[0].state, FsState::Done);
    // the listener comes up once its address is free
    drop(taken);
    let tcp = rig
        .wait_for("tcp_sink", 10, |s| s.state == JobState::Serving)
        .await;
    assert!(tcp.restarts >= 1 && tcp.last_error.is_none(), "{tcp:#?}");
    let tls = rig.job("tls_push");
    assert_eq!(
        (tls.state, tls.restarts, tls.restart_at),
        (JobState::Failed, 0, None)
    );
    rig.stop().await;
}

/// Shutting the daemon down in the middle of a step leaves the receive
/// resumable: the partial state has a resume token, and a new daemon on the
/// same pools resumes it instead of starting over.
#[tokio::test]
async fn graceful_shutdown_leaves_a_resumable_state() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(400_000).await;
    let slow = "  send:\n    bandwidth_limit:\n      max: 100 KiB\n      bucket_capacity: 16 KiB\n";
    let config = rig::pair("shutdown", slow);
    let rig = rig::start(&z, dir.path(), &config, Opts::default()).await;
    rig.signal("push", Signal::Wakeup, false).await.unwrap();
    let st = rig
        .wait_for("push", 20, |s| {
            s.current
                .as_ref()
                .is_some_and(|r| r.filesystems.iter().any(|f| f.bytes_replicated > 0))
        })
        .await;
    let full = st.current.unwrap().filesystems[0].bytes_expected;
    let stopping = std::time::Instant::now();
    rig.stop().await;
    // The running step stops at once; it is not waited for.
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    let token = z
        .get(RECEIVED, &["receive_resume_token"])
        .await
        .expect("the partial receive exists")
        .remove("receive_resume_token")
        .map(|v| v.value)
        .unwrap_or_default();
    assert!(token.starts_with("1-"), "no resume token: {token:?}");

    let fast = rig::pair("shutdown2", "");
    let rig = rig::start(&z, dir.path(), &fast, Opts::default()).await;
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let fs = &s.report.unwrap().filesystems[0];
    assert_eq!(fs.state, FsState::Done, "{fs:#?}");
    assert!(
        fs.bytes_replicated < full,
        "resumed: {} bytes of a {full}-byte step",
        fs.bytes_replicated
    );
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    rig.stop().await;
}

/// The metrics endpoint is a chore: a listen address that is taken does not
/// stop the daemon; the chore reports the failure, is retried with a
/// backoff, and serves `/metrics` once the address is free.
#[tokio::test]
async fn a_metrics_endpoint_that_cannot_bind_is_retried_while_jobs_run() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(10_000).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let opts = Opts {
        policy: Some(Policy {
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            ..Policy::default()
        }),
        global: format!(
            "  monitoring:\n  - type: prometheus\n    listen: \"{addr}\"\n    metric_names: zrepl\n"
        ),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &rig::pair("metrics", ""), opts).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let c = rig.chore("metrics-endpoint");
        if c.last_error.is_some() {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "{c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let e = failed.last_error.unwrap();
    assert!(
        e.contains("monitoring") && e.contains(&addr.to_string()),
        "{e}"
    );
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert_eq!(s.report.unwrap().filesystems[0].state, FsState::Done);
    drop(taken);
    let body = loop {
        if let Ok(mut c) = tokio::net::TcpStream::connect(addr).await {
            c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
            let mut body = String::new();
            c.read_to_string(&mut body).await.unwrap();
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        body.starts_with("HTTP/1.") && body.contains(" 200 "),
        "{body}"
    );
    // metric_names: zrepl: zrepl's names and labels for the shared
    // families, zrelay's for its own.
    assert!(
        body.contains(
            "\nzrepl_replication_bytes_replicated{zrepl_job=\"push\",filesystem=\"p/src\"} "
        ) && body.contains(
            "\nzrepl_zfs_list_unmatched_user_specified_dataset_count{jobid=\"push\"} 0\n"
        ) && body
            .contains("\nzrelay_filesystem_last_replicated_snapshot_timestamp{zrelay_job=\"push\""),
        "{body}"
    );
    let c = rig.chore("metrics-endpoint");
    assert!(c.runs >= 1 && c.last_error.is_none(), "{c:?}");
    rig.stop().await;
}
