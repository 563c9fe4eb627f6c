//! A push job's `hooks` (zrelay extension): order and environment of the
//! four events, the report on a post hook's stdin, a hook killed at its
//! timeout without holding the invocation up, and a fatal pre_replication
//! hook that skips the invocation.

use std::time::{Duration, Instant};

use zrelay_daemon::control::Signal;

use crate::rig::{self, script, Opts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_in_order_with_their_environment_and_a_fatal_one_skips() {
    let (z, src) = rig::source_fs(10_000).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("log");
    let hook = script(
        d,
        "hook.sh",
        &format!(
            "echo \"$ZRELAY_HOOK_EVENT $ZRELAY_JOB ${{ZRELAY_RESULT:-none}} $ZRELAY_TIMEOUT\" >> '{log}'\n\
             [ -n \"$ZRELAY_RESULT\" ] && cat > '{d}/stdin-'\"$ZRELAY_HOOK_EVENT\"'.json'\nexit 0",
            log = log.display(),
            d = d.display()
        ),
    );
    let slow = script(d, "slow.sh", "sleep 30");
    let extra = format!(
        "  hooks:\n  - path: {hook}\n    on: [pre_replication, post_replication, pre_pruning, post_pruning]\n  - path: {slow}\n    on: [pre_replication]\n    timeout: 1s\n"
    );
    let rig = rig::start(&z, d, &rig::pair("hooks1", &extra), Opts::default()).await;
    let t0 = Instant::now();
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert!(s.report.unwrap().succeeded());
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "the slow hook was not killed at its timeout: {:?}",
        t0.elapsed()
    );
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines,
        "pre_replication push none 30\npost_replication push success 30\npre_pruning push none 30\npost_pruning push success 30\n"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("stdin-post_replication.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["filesystems"][0]["fs"], "p/src", "{report}");
    let pruning: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("stdin-post_pruning.json")).unwrap())
            .unwrap();
    assert!(
        pruning.as_array().is_some_and(|a| a.len() == 2),
        "{pruning}"
    );
    rig.stop().await;

    // A fatal pre_replication hook: the invocation is skipped, with why.
    let failing = script(d, "fail.sh", "echo refusing >&2; exit 3");
    let extra = format!(
        "  hooks:\n  - path: {failing}\n    on: [pre_replication]\n    err_is_fatal: true\n  - path: {hook}\n    on: [pre_replication, post_replication]\n"
    );
    std::fs::remove_file(&log).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let rig = rig::start(
        &z,
        dir2.path(),
        &rig::pair("hooks2", &extra),
        Opts::default(),
    )
    .await;
    rig::snap(&z, &src, "zrepl_2").await;
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert!(s.report.is_none(), "{s:#?}");
    assert!(
        s.message.contains("pre_replication hook") && s.message.contains("fail.sh"),
        "{}",
        s.message
    );
    assert_eq!(rig::snapshots(&z, rig::RECEIVED).await, ["zrepl_1"]);
    assert!(!log.exists(), "hooks after the fatal one ran");
    let st = rig.job("push");
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .contains("exit status 3"),
        "{st:#?}"
    );
    rig.stop().await;
}

/// `global.notify`: a failed invocation and a record that went dead each
/// tell the command (the rate limit itself is unit-tested in
/// `jobs/notify.rs`, on an injected time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_tells_of_failures_and_dead_records_once_per_interval() {
    let (z, src) = rig::source_fs(10_000).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("notified");
    let cmd = script(
        d,
        "notify.sh",
        &format!(
            "echo \"$ZRELAY_NOTIFY_EVENT $ZRELAY_JOB $ZRELAY_SUPPRESSED $ZRELAY_MESSAGE\" >> '{}'",
            log.display()
        ),
    );
    let opts = Opts {
        global: format!("  notify:\n    command: {cmd}\n    min_interval: 1h\n"),
        ..Opts::default()
    };
    let rig = rig::start(&z, d, &rig::pair("notify1", ""), opts).await;
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert!(s.report.unwrap().succeeded());
    // The target diverges: the invocation fails and the record goes dead.
    let received = zrelay_zfs::DatasetPath::parse(rig::RECEIVED).unwrap();
    rig::snap(&z, &received, "local").await;
    rig::snap(&z, &src, "zrepl_2").await;
    for _ in 0..3 {
        rig.signal("push", Signal::Wakeup, true).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.contains("record_dead") && t.contains("invocation_failed") {
            break t;
        }
        assert!(Instant::now() < deadline, "notified: {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap_or(text);
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("invocation_failed push 0 "))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(failed[0].contains("diverged"), "{text}");
    let dead: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("record_dead push 0 "))
        .collect();
    assert_eq!(dead.len(), 1, "{text}");
    assert!(
        dead[0].contains("zrelay queue retry push default p/src"),
        "{text}"
    );
    rig.stop().await;
}
