//! Signals to a running daemon: wakeup (with and without waiting), reset,
//! snapshot; a push/sink pair converges.

use zrelay_daemon::control::Signal;
use zrelay_daemon::status::JobState;
use zrelay_replication::FsState;

use crate::rig::{self, Opts, RECEIVED};

/// A push/sink pair in one daemon converges: the first wakeup sends
/// `@zrepl_1` in full, the second the new `@zrepl_2` incrementally, and
/// `--wait` answers with each invocation's report.
#[tokio::test]
async fn push_and_sink_converge_on_wakeups() {
    let dir = tempfile::tempdir().unwrap();
    let (z, src) = rig::source_fs(50_000).await;
    let rig = rig::start(&z, dir.path(), &rig::pair("converge", ""), Opts::default()).await;
    assert_eq!(rig.job("sink").state, JobState::Serving);

    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let report = s.report.expect("--wait answers with the report");
    let fs = &report.filesystems[0];
    assert_eq!(
        (fs.fs.as_str(), fs.state),
        ("p/src", FsState::Done),
        "{report:#?}"
    );
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    assert_eq!(s.pruning.len(), 2, "pruning follows the invocation");

    z.write(&src, 10_000).unwrap();
    rig::snap(&z, &src, "zrepl_2").await;
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let report = s.report.unwrap();
    assert_eq!(report.filesystems[0].state, FsState::Done, "{report:#?}");
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1", "zrepl_2"]);
    let st = rig.job("push");
    assert_eq!((st.invocations, st.state), (2, JobState::Idle));
    assert!(st.last.is_some() && st.last_error.is_none(), "{st:#?}");
    rig.stop().await;
}

/// A wakeup without `--wait` answers at once; the invocation it starts
/// shows in the status and finishes on its own.
#[tokio::test]
async fn wakeup_without_wait_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(20_000).await;
    let rig = rig::start(&z, dir.path(), &rig::pair("nowait", ""), Opts::default()).await;
    let s = rig.signal("push", Signal::Wakeup, false).await.unwrap();
    assert!(s.report.is_none());
    assert!(s.message.contains("woke up job push"), "{}", s.message);
    rig.wait_for("push", 20, |s| {
        s.invocations == 1 && s.state == JobState::Idle
    })
    .await;
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    // Signals a job cannot take are refused, naming the job and why.
    let e = rig.signal("sink", Signal::Wakeup, false).await.unwrap_err();
    assert!(e.to_string().contains("job sink (sink)"), "{e}");
    let e = rig.signal("nope", Signal::Wakeup, false).await.unwrap_err();
    assert!(
        e.to_string().contains("push, sink") || e.to_string().contains("sink, push"),
        "{e}"
    );
    rig.stop().await;
}

/// `signal snapshot --wait` takes a snapshot of every matched filesystem
/// now and answers with the round's report.
#[tokio::test]
async fn signal_snapshot_takes_a_snapshot_now() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(1000).await;
    let jobs = r#"jobs:
- type: snap
  name: snapper
  filesystems:
    "p/src": true
  snapshotting:
    type: manual
  pruning:
    keep:
    - type: last_n
      count: 10
"#;
    let rig = rig::start(&z, dir.path(), jobs, Opts::default()).await;
    let s = rig.signal("snapper", Signal::Snapshot, true).await.unwrap();
    let report = s.snapshot.expect("the round's report");
    assert!(report.ok(), "{report:#?}");
    let names = rig::snapshots(&z, "p/src").await;
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[1].starts_with("zrepl_") && names[1] == report.name,
        "{names:?} {report:#?}"
    );
    // A snap job's wakeup prunes now (keep last 1 would destroy; last 10 keeps).
    let s = rig.signal("snapper", Signal::Wakeup, true).await.unwrap();
    assert_eq!(s.pruning.len(), 1);
    assert_eq!(rig.job("snapper").last_pruning.len(), 1);
    // The history records the snapshot round and the pruning run.
    let history = zrelay_history::History::open_read_only(dir.path().join("history.sqlite"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = history
            .query(zrelay_history::Filter::default())
            .await
            .unwrap();
        let done = |k: zrelay_history::Kind| {
            rows.iter().any(|r| {
                r.invocation.kind == k
                    && r.invocation.job == "snapper"
                    && r.invocation.state == zrelay_history::State::Completed
            })
        };
        if done(zrelay_history::Kind::Snapshot) && done(zrelay_history::Kind::Prune) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rows:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    rig.stop().await;
}

/// `signal reset` aborts the running invocation: the step stops, the
/// waiting wakeup gets a report with the filesystem not done, the step
/// holds stay for the resume (guarantee_resumability), and the next
/// invocation resumes and completes, leaving no step hold behind.
#[tokio::test]
async fn reset_aborts_the_running_invocation_and_the_next_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _) = rig::source_fs(400_000).await;
    let slow = "  send:\n    bandwidth_limit:\n      max: 100 KiB\n      bucket_capacity: 16 KiB\n";
    let rig = rig::start(&z, dir.path(), &rig::pair("reset", slow), Opts::default()).await;
    let jobs = rig.jobs.clone();
    let waiting = tokio::spawn(async move { jobs.signal("push", Signal::Wakeup, true).await });
    rig.wait_for("push", 20, |s| {
        s.current
            .as_ref()
            .is_some_and(|r| r.filesystems.iter().any(|f| f.bytes_replicated > 0))
    })
    .await;
    let r = rig.signal("push", Signal::Reset, false).await.unwrap();
    assert!(r.message.contains("aborting"), "{}", r.message);
    let s = waiting.await.unwrap().unwrap();
    let report = s.report.unwrap();
    assert_ne!(report.filesystems[0].state, FsState::Done, "{report:#?}");
    assert!(s.pruning.is_empty(), "a reset invocation does not prune");
    let step_holds = |h: &[(String, Vec<String>)]| {
        h.iter()
            .flat_map(|(_, t)| t)
            .filter(|t| t.starts_with("zrepl_STEP_"))
            .count()
    };
    assert_eq!(
        step_holds(&rig::holds(&z, "p/src").await),
        1,
        "the resume keeps its hold"
    );
    let idle = rig.signal("push", Signal::Reset, false).await.unwrap();
    assert!(
        idle.message.contains("no invocation is running"),
        "{}",
        idle.message
    );

    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let report = s.report.unwrap();
    assert_eq!(report.filesystems[0].state, FsState::Done, "{report:#?}");
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    assert_eq!(step_holds(&rig::holds(&z, "p/src").await), 0);
    rig.stop().await;
}
