//! The durable work queue in the daemon: records follow the steps; a
//! diverged target's record goes dead (never rolled back), is skipped while
//! dead, and `retry` after an operator's fix completes it with no wakeup; a
//! record a killed daemon left in progress is re-driven once its lease
//! expires, with no wakeup.

use std::sync::Arc;
use std::time::Duration;

use zrelay_daemon::control::Signal;
use zrelay_queue::{Filter, JobId, Queue, RecordKey, State, TargetName, WorkerId};
use zrelay_replication::FsState;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use crate::rig::{self, Opts, RECEIVED};

const QUEUE: &str = "  queue:\n    lease: 1s\n    backoff_start: 1s\n    backoff_max: 2s\n";

async fn open(dir: &std::path::Path) -> Queue {
    let policy = zrelay_queue::Policy::new(
        Duration::from_secs(1),
        Duration::from_secs(1),
        Duration::from_secs(2),
        8,
    )
    .unwrap();
    Queue::open(
        dir.join("queue.sqlite"),
        policy,
        Arc::new(zrelay_queue::SystemClock),
    )
    .await
    .unwrap()
}

fn key() -> RecordKey {
    RecordKey::new(
        JobId::new("push").unwrap(),
        TargetName::new("default").unwrap(),
        DatasetPath::parse("p/src").unwrap(),
    )
}

async fn state_of(q: &Queue) -> Option<State> {
    q.get(&key()).await.unwrap().map(|r| r.state)
}

async fn wait_state(q: &Queue, want: State, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let s = state_of(q).await;
        if s == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "record is {s:?}, not {want:?}: {:#?}",
            q.list(&Filter::default()).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_target_goes_dead_and_retry_completes_it_after_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (z, src) = rig::source_fs(20_000).await;
    let opts = Opts {
        global: QUEUE.into(),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &rig::pair("dead", ""), opts).await;
    let q = open(dir.path()).await;
    rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert_eq!(state_of(&q).await, Some(State::Completed));

    // The target diverges behind zrelay's back: a snapshot of its own.
    let received = DatasetPath::parse(RECEIVED).unwrap();
    z.write(&received, 1000).unwrap();
    rig::snap(&z, &received, "local_change").await;
    z.write(&src, 1000).unwrap();
    rig::snap(&z, &src, "zrepl_2").await;
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert_eq!(s.report.unwrap().filesystems[0].state, FsState::Failed);
    let r = q.get(&key()).await.unwrap().unwrap();
    assert_eq!(r.state, State::Dead, "{r:#?}");
    assert_eq!(
        rig::snapshots(&z, RECEIVED).await,
        ["zrepl_1", "local_change"],
        "never rolled back"
    );
    // While dead, the filesystem is skipped, naming the queue and the fix.
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let report = s.report.unwrap();
    let f = &report.filesystems[0];
    assert_eq!(f.state, FsState::Skipped, "{f:#?}");
    assert!(
        f.blocked,
        "blocked by its dead record, so `--wait` fails: {f:#?}"
    );
    assert_eq!(report.blocked().count(), 1);
    let info = f.info.clone().unwrap_or_default();
    assert!(
        info.contains("dead in the work queue")
            && info.contains("zrelay queue retry push default p/src"),
        "{info}"
    );
    // The operator rolls the target back, as the error says, and retries:
    // the daemon's re-drive takes it up with no wakeup.
    z.destroy(&zrelay_zfs::DestroyTarget::Snapshot(
        SnapshotName::new(&received, "local_change").unwrap(),
    ))
    .await
    .unwrap();
    z.rollback(&SnapshotName::new(&received, "zrepl_1").unwrap())
        .await
        .unwrap();
    q.retry(&key()).await.unwrap();
    wait_state(&q, State::Completed, 20).await;
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1", "zrepl_2"]);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_a_killed_daemon_left_in_progress_is_re_driven_without_a_wakeup() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _src) = rig::source_fs(20_000).await;
    // A previous daemon took the record and died: its lease runs out.
    let q = open(dir.path()).await;
    q.enqueue(key(), None).await.unwrap();
    let gone = WorkerId::new("4242.push.default").unwrap();
    let a = q
        .acquire(&gone, &Filter::default())
        .await
        .unwrap()
        .expect("acquired");
    assert_eq!(a.record.state, State::InProgress);
    let opts = Opts {
        global: QUEUE.into(),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &rig::pair("redrive", ""), opts).await;
    // No wakeup: the re-drive chore takes the lease back and wakes the job.
    wait_state(&q, State::Completed, 20).await;
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    assert!(rig.job("push").invocations >= 1);
    assert!(rig.chore("queue-redrive").runs >= 1);
    // The dead worker's claim is fenced off.
    assert!(q.complete(&a.claim).await.is_err());
    rig.stop().await;
}

/// The re-drive chore finds the lane's record eligible while the lane's own
/// invocation runs (here, a slow pre_replication hook holds it before its
/// first step); that invocation takes the work itself, so no second
/// invocation follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_drive_during_an_invocation_runs_no_second_one() {
    let dir = tempfile::tempdir().unwrap();
    let (z, _src) = rig::source_fs(20_000).await;
    let hook = rig::script(dir.path(), "slow.sh", "sleep 2");
    let extra =
        format!("  hooks:\n  - path: {hook}\n    on: [pre_replication]\n    timeout: 10s\n");
    // An operator's retry (or a new record) makes work ready: the chore
    // (every 0.5 s) wakes the idle lane, and finds the record still ready
    // during the 2 s the hook takes.
    let q = open(dir.path()).await;
    q.enqueue(key(), None).await.unwrap();
    let opts = Opts {
        global: QUEUE.into(),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &rig::pair("nudge", &extra), opts).await;
    wait_state(&q, State::Completed, 20).await;
    assert!(rig.chore("queue-redrive").runs >= 3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = rig.job("push");
    assert_eq!(st.invocations, 1, "{st:#?}");
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1"]);
    rig.stop().await;
}

/// A failure before the first step that is temporary (here a step
/// snapshot another job pruned after planning, found by the step hold)
/// leaves the record failed, to be retried, not dead: only a conflict or a
/// permanent error is dead. (The campaign's pruning race found it dead.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_pruned_after_planning_leaves_the_record_failed_not_dead() {
    let dir = tempfile::tempdir().unwrap();
    let (z, src) = rig::source_fs(20_000).await;
    let opts = Opts {
        global: QUEUE.into(),
        ..Opts::default()
    };
    let rig = rig::start(&z, dir.path(), &rig::pair("vanish", ""), opts).await;
    let q = open(dir.path()).await;
    rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert_eq!(state_of(&q).await, Some(State::Completed));

    z.write(&src, 1000).unwrap();
    rig::snap(&z, &src, "zrepl_2").await;
    let gone = format!("{src}@zrepl_2");
    // every attempt of this invocation finds it gone
    z.fail_always_with(zrelay_fake::FakeOp::Hold, move || {
        zrelay_zfs::ZfsError::DatasetDoesNotExist { path: gone.clone() }
    });
    let s = rig.signal("push", Signal::Wakeup, true).await;
    let report = match s {
        Ok(s) => s.report.unwrap(),
        Err(e) => panic!("wakeup: {e}"),
    };
    let f = &report.filesystems[0];
    assert_eq!(f.state, FsState::Failed, "{f:#?}");
    assert!(f.temporary, "{f:#?}");
    let r = q.get(&key()).await.unwrap().unwrap();
    assert_eq!(r.state, State::Failed, "{r:#?}");
    z.clear_faults();
    // The next invocation (the re-drive's, or a wakeup) replicates it.
    wait_state(&q, State::Completed, 20).await;
    assert_eq!(rig::snapshots(&z, RECEIVED).await, ["zrepl_1", "zrepl_2"]);
    rig.stop().await;
}
