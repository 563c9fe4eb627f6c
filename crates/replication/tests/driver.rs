//! Driver behaviour with the fake ZFS and fault-injecting endpoints:
//! ordering, retries, starvation, watchdog, cancellation, live report.

mod common;

use common::*;
#[tokio::test]
async fn oldest_next_snapshot_goes_first_so_all_filesystems_reach_t1_before_t2() {
    let w = World::new(&["a", "b"]).await;
    w.snap("a", "1").await;
    w.snap("b", "1").await;
    w.snap("a", "2").await;
    w.snap("b", "2").await;
    let rec = Arc::new(Recording::new(w.sender()));
    let d = Driver::new(cfg(), rec.clone(), w.receiver(), CancellationToken::new());
    let r = d.run().await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(*rec.order.lock().unwrap(), ["a@1", "b@1", "a@2", "b@2"]);
}

#[tokio::test]
async fn temporary_errors_are_retried_and_ready_filesystems_go_first() {
    let w = World::new(&["a", "b"]).await;
    w.snap("a", "1").await;
    w.snap("b", "1").await;
    let a = w.src.child("a").unwrap();
    let faulty = Arc::new(FaultySender::new(
        w.sender(),
        SenderFaults {
            fail_send: Some((a, 2, true)),
            ..SenderFaults::default()
        },
    ));
    let rec = Arc::new(Recording::new(faulty));
    let d = Driver::new(cfg(), rec.clone(), w.receiver(), CancellationToken::new());
    let r = d.run().await;
    assert!(r.succeeded(), "{r:#?}");
    let order = rec.order.lock().unwrap().clone();
    assert_eq!(order[0], "a@1", "a is oldest: {order:?}");
    assert_eq!(
        order[1], "b@1",
        "the ready b goes before a's retry: {order:?}"
    );
    assert_eq!(order.len(), 4, "two failures then success for a: {order:?}");
    assert_eq!(state_of(&r, "a").error_count, 2);
    assert_eq!(state_of(&r, "b").error_count, 0);
}

#[tokio::test]
async fn one_failing_filesystem_never_starves_the_others() {
    let w = World::new(&["a", "b", "c"]).await;
    for f in ["a", "b", "c"] {
        w.snap(f, "1").await;
        w.snap(f, "2").await;
    }
    let a = w.src.child("a").unwrap();
    let faulty = Arc::new(FaultySender::new(
        w.sender(),
        SenderFaults {
            fail_send: Some((a, 1000, true)),
            ..SenderFaults::default()
        },
    ));
    let d = Driver::new(cfg(), faulty, w.receiver(), CancellationToken::new());
    let r = d.run().await;
    assert!(!r.succeeded());
    let fa = state_of(&r, "a");
    assert_eq!(fa.state, FsState::Failed);
    assert!(
        fa.last_error
            .as_deref()
            .unwrap()
            .contains("gave up after 3 tries"),
        "{fa:?}"
    );
    for f in ["b", "c"] {
        let s = state_of(&r, f);
        assert_eq!((s.state, s.steps_done), (FsState::Done, 2), "{s:?}");
    }
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    let a = w.src.child("a").unwrap();
    let faulty = Arc::new(FaultySender::new(
        w.sender(),
        SenderFaults {
            fail_send: Some((a, 1000, false)),
            ..SenderFaults::default()
        },
    ));
    let d = Driver::new(
        cfg(),
        faulty.clone(),
        w.receiver(),
        CancellationToken::new(),
    );
    let r = d.run().await;
    assert_eq!(state_of(&r, "a").state, FsState::Failed);
    assert_eq!(faulty.sends.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test]
async fn watchdog_aborts_a_stalled_step_and_the_report_shows_it_live() {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    let faulty = Arc::new(FaultySender::new(
        w.sender(),
        SenderFaults {
            stall: true,
            ..SenderFaults::default()
        },
    ));
    let c = DriverConfig {
        watchdog: Duration::from_millis(400),
        ..cfg()
    };
    let d = Arc::new(Driver::new(
        c,
        faulty,
        w.receiver(),
        CancellationToken::new(),
    ));
    let report = d.report();
    let run = tokio::spawn({
        let d = d.clone();
        async move { d.run().await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let live = report.snapshot();
    assert_eq!(live.state, AttemptState::Working, "{live:#?}");
    assert_eq!(state_of(&live, "a").state, FsState::Stepping);
    assert!(live.state_seconds.contains_key(&AttemptState::Planning));
    let started = Instant::now();
    let r = run.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let fa = state_of(&r, "a");
    assert_eq!(fa.state, FsState::Failed);
    assert!(
        fa.last_error.as_deref().unwrap().contains("no progress"),
        "{fa:?}"
    );
}

#[tokio::test]
async fn cancellation_stops_the_run_cleanly() {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    let cancel = CancellationToken::new();
    let faulty = Arc::new(FaultySender::new(
        w.sender(),
        SenderFaults {
            stall: true,
            ..SenderFaults::default()
        },
    ));
    let d = Arc::new(Driver::new(cfg(), faulty, w.receiver(), cancel.clone()));
    let run = tokio::spawn({
        let d = d.clone();
        async move { d.run().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("cancel must end the run promptly")
        .unwrap();
    assert_eq!(r.state, AttemptState::Cancelled);
    assert!(r.finished_at.is_some());
}

#[tokio::test]
async fn planning_errors_are_retried_after_the_interval() {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    w.zfs
        .fail_next(zrelay_fake::FakeOp::List, "transient listing failure");
    let c = DriverConfig {
        max_attempts: 2,
        planning_retry: Duration::from_millis(50),
        ..cfg()
    };
    let d = Driver::new(c, w.sender(), w.receiver(), CancellationToken::new());
    let r = d.run().await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.attempt, 2);
    assert!(
        r.state_seconds.contains_key(&AttemptState::PlanningError),
        "{r:#?}"
    );
}

#[tokio::test]
async fn a_resumable_failure_after_earlier_steps_keeps_the_holds_the_resume_needs() {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    let d = Driver::new(cfg(), w.sender(), w.receiver(), CancellationToken::new());
    assert!(d.run().await.succeeded());
    w.snap("a", "2").await;
    w.snap("a", "3").await;
    let once = DriverConfig {
        max_step_tries: 1,
        ..cfg()
    };
    let faulty = Arc::new(FaultySender::new(
        w.sender(),
        SenderFaults {
            cut_after: Some(20_000),
            cut_skip: 1,
            ..SenderFaults::default()
        },
    ));
    let r = Driver::new(once.clone(), faulty, w.receiver(), CancellationToken::new())
        .run()
        .await;
    let fa = state_of(&r, "a");
    assert_eq!((fa.state, fa.steps_done), (FsState::Failed, 1), "{fa:?}");
    assert!(
        fa.last_error.as_deref().unwrap().contains("resumable"),
        "{fa:?}"
    );
    let a = w.src.child("a").unwrap();
    for s in ["2", "3"] {
        let held = w
            .zfs
            .holds(&SnapshotName::new(&a, s).unwrap())
            .await
            .unwrap();
        assert_eq!(
            held,
            ["zrepl_STEP_J_t"],
            "@{s} must stay held for the resume"
        );
    }
    let r = Driver::new(once, w.sender(), w.receiver(), CancellationToken::new())
        .run()
        .await;
    assert!(r.succeeded(), "{r:#?}");
    assert!(state_of(&r, "a").current_step.as_ref().unwrap().resumed);
    for s in ["1", "2", "3"] {
        let held = w
            .zfs
            .holds(&SnapshotName::new(&a, s).unwrap())
            .await
            .unwrap();
        assert!(held.is_empty(), "@{s} still held: {held:?}");
    }
}

#[tokio::test]
async fn snapshot_filter_replicates_only_matching_snapshots_and_keeps_the_path() {
    let w = World::new(&["a"]).await;
    w.snap("a", "zrepl_1").await;
    w.snap("a", "manual_1").await;
    w.snap("a", "zrepl_2").await;
    let mut c = cfg();
    c.snapshot_filter = Some(zrelay_replication::SnapshotFilter::Prefix("zrepl_".into()));
    let rec = Arc::new(Recording::new(w.sender()));
    let r = Driver::new(
        c.clone(),
        rec.clone(),
        w.receiver(),
        CancellationToken::new(),
    )
    .run()
    .await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(*rec.order.lock().unwrap(), ["a@zrepl_1", "a@zrepl_2"]);
    // A later matching snapshot goes incrementally from zrepl_2, the
    // non-matching ones in between stay on the sender only.
    w.snap("a", "manual_2").await;
    w.snap("a", "zrepl_3").await;
    let r = Driver::new(
        c.clone(),
        rec.clone(),
        w.receiver(),
        CancellationToken::new(),
    )
    .run()
    .await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(
        *rec.order.lock().unwrap(),
        ["a@zrepl_1", "a@zrepl_2", "a@zrepl_3"]
    );
    let dst = w.dst.join(w.src.child("a").unwrap().components()).unwrap();
    let names: Vec<String> = w
        .zfs
        .list_versions(&dst)
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.kind == zrelay_zfs::name::VersionKind::Snapshot)
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["zrepl_1", "zrepl_2", "zrepl_3"]);
    // An invalid regex cannot become a filter: it is refused, named, when
    // the configuration is compiled (no error path at run time).
    let e = zrelay_replication::SnapshotFilter::regex("(")
        .unwrap_err()
        .to_string();
    assert!(e.contains("snapshot_filter regex \"(\""), "{e}");
    let _ = c;
}

#[tokio::test]
async fn the_observer_sees_attempts_and_steps_in_order() {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    w.snap("a", "2").await;
    let events = Arc::new(Events::default());
    let r = Driver::new(cfg(), w.sender(), w.receiver(), CancellationToken::new())
        .with_observer(events.clone())
        .run()
        .await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(
        *events.0.lock().unwrap(),
        [
            "attempt 1",
            "start a @1",
            "end 2 ok=true moved=true",
            "start a @2",
            "end 4 ok=true moved=true",
            "attempt 1 completed None",
        ]
    );
}

#[tokio::test]
async fn a_skipped_filesystem_is_reported_and_not_sent_while_the_others_are() {
    let w = World::new(&["a", "b"]).await;
    w.snap("a", "1").await;
    w.snap("b", "1").await;
    let rec = Arc::new(Recording::new(w.sender()));
    let a = w.src.child("a").unwrap();
    let mut c = cfg();
    c.skip
        .insert(a.to_string(), "dead in the work queue: diverged".into());
    let d = Driver::new(c, rec.clone(), w.receiver(), CancellationToken::new());
    let r = d.run().await;
    assert_eq!(*rec.order.lock().unwrap(), ["b@1"]);
    let fa = state_of(&r, "a");
    assert_eq!(fa.state, FsState::Skipped, "{fa:#?}");
    assert_eq!(fa.info.as_deref(), Some("dead in the work queue: diverged"));
    assert_eq!(state_of(&r, "b").state, FsState::Done);
}
