//! Races between this job and the world: another job's pruning, a reply
//! lost after the receive completed.

mod common;

use common::*;

/// A replicated `a@1`, then `more` new snapshots and a run of at most two
/// attempts through `rec` (set up by `arm`): the report, the sends in order,
/// and the observer's events.
async fn race_run(
    more: &[&str],
    protection: zrelay_endpoint::Protection,
    arm: impl FnOnce(&World, &Recording),
) -> (Report, Vec<String>, String) {
    let w = World::new(&["a"]).await;
    w.snap("a", "1").await;
    let d = Driver::new(cfg(), w.sender(), w.receiver(), CancellationToken::new());
    assert!(d.run().await.succeeded());
    for s in more {
        w.snap("a", s).await;
    }
    let rec = Arc::new(Recording::new(w.sender()));
    arm(&w, &rec);
    let events = Arc::new(Events::default());
    let two = DriverConfig {
        max_attempts: 2,
        protection,
        ..cfg()
    };
    let r = Driver::new(two, rec.clone(), w.receiver(), CancellationToken::new())
        .with_observer(events.clone())
        .run()
        .await;
    let order = rec.order.lock().unwrap().clone();
    let events = events.0.lock().unwrap().join("\n");
    (r, order, events)
}

#[tokio::test]
async fn a_base_pruned_by_another_job_after_planning_is_planned_again_from_the_cursor() {
    // Another job's pruning destroys @1 (the incremental base) between this
    // attempt's planning and its step holds.
    let (r, order, events) = race_run(&["2"], Default::default(), |w, rec| {
        let a = w.src.child("a").unwrap();
        *rec.doomed.lock().unwrap() = Some((w.zfs.clone(), a, "1".into()));
    })
    .await;
    assert!(
        r.succeeded(),
        "planned again from the cursor bookmark: {r:#?}"
    );
    assert_eq!(order, ["a@2"]);
    assert!(
        events.contains("attempt 1 ") && events.contains("attempt 2 completed"),
        "{events}"
    );
}

#[tokio::test]
async fn a_step_target_pruned_by_another_job_before_its_send_is_planned_again() {
    // With guarantee_incremental_replication an incremental step's `to`
    // carries no hold: another job prunes @2 just before its send.
    let protection = zrelay_endpoint::Protection {
        initial: zrelay_endpoint::Guarantee::GuaranteeResumability,
        incremental: zrelay_endpoint::Guarantee::GuaranteeIncremental,
    };
    let (r, order, events) = race_run(&["2", "3"], protection, |w, rec| {
        let a = w.src.child("a").unwrap();
        *rec.doomed_at_send.lock().unwrap() = Some((w.zfs.clone(), a, "2".into()));
    })
    .await;
    assert!(r.succeeded(), "planned again without @2: {r:#?}");
    assert_eq!(order, ["a@2", "a@3"]);
    assert!(events.contains("attempt 2 completed"), "{events}");
}

/// Receives for real, but the first receive's reply is lost: the stream
/// went through and the receiver has the snapshot, yet the sender sees a
/// broken connection (an RST after the stream's end).
struct LostReply {
    inner: Arc<dyn Receiver>,
    lost: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Receiver for LostReply {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }
    async fn receive(
        &self,
        step: &StepReq,
        stream: Box<dyn SendStream>,
    ) -> zrelay_endpoint::Result<()> {
        self.inner.receive(step, stream).await?;
        if self.lost.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(EndpointError::Stream {
                fs: step.fs.clone(),
                reason: "connection reset by peer".into(),
                temporary: true,
            });
        }
        Ok(())
    }
    async fn commit(&self, r: &[CommitReq]) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        self.inner.commit(r).await
    }
    async fn list_versions(&self, fs: &DatasetPath) -> zrelay_endpoint::Result<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }
    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snaps: &[String],
    ) -> zrelay_endpoint::Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, snaps).await
    }
    fn describe(&self) -> String {
        "lost reply".into()
    }
}

/// One run whose first receive's reply is lost, `initial` snapshots
/// replicated before it: the report and the sends in order.
async fn lost_reply_run(before: &[&str], after: &[&str]) -> (Report, Vec<String>, World) {
    let w = World::new(&["a"]).await;
    for s in before {
        w.snap("a", s).await;
    }
    if !before.is_empty() {
        let d = Driver::new(cfg(), w.sender(), w.receiver(), CancellationToken::new());
        assert!(d.run().await.succeeded());
    }
    for s in after {
        w.snap("a", s).await;
    }
    let rec = Arc::new(Recording::new(w.sender()));
    let recv = Arc::new(LostReply {
        inner: w.receiver(),
        lost: true.into(),
    });
    let r = Driver::new(cfg(), rec.clone(), recv, CancellationToken::new())
        .run()
        .await;
    let order = rec.order.lock().unwrap().clone();
    (r, order, w)
}

#[tokio::test]
async fn a_full_step_whose_reply_was_lost_is_found_done_not_refused() {
    // Without the check, the retry's full receive onto the now existing
    // filesystem is refused for good ("refusing to overwrite").
    let (r, order, w) = lost_reply_run(&[], &["1", "2"]).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(order, ["a@1", "a@2"], "@1 is not sent twice");
    let a = state_of(&r, "a");
    assert_eq!((a.error_count, a.steps_done), (1, 2), "{a:#?}");
    let a = w.src.child("a").unwrap();
    let names: Vec<String> = w
        .receiver()
        .list_versions(&a)
        .await
        .unwrap()
        .iter()
        .filter(|v| v.is_snapshot())
        .map(|v| v.name.clone())
        .collect();
    assert_eq!(names, ["1", "2"]);
}

#[tokio::test]
async fn an_incremental_step_whose_reply_was_lost_is_found_done() {
    let (r, order, _w) = lost_reply_run(&["1"], &["2", "3"]).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(order, ["a@2", "a@3"], "@2 is not sent twice");
    assert_eq!(state_of(&r, "a").error_count, 1);
}

/// Campaign bug 9 (OpenZFS 2.1, the pruning race): a run received `@2` but
/// lost its commit, so the cursor stayed at `@1` and only a step hold kept
/// `@2` on the sender. The next run planned `@2 → @3`, failed, and its
/// cleanup released the step holds; another job's pruning then destroyed
/// `@2`, and the receiver's newest snapshot was gone from the sender:
/// diverged, for good. The cursor now moves to the receiver's newest
/// snapshot before a run's steps are protected.
#[tokio::test]
async fn a_lagging_cursor_moves_before_the_steps_so_a_failed_run_cannot_lose_the_base() {
    let w = World::new(&["a"]).await;
    let a = w.src.child("a").unwrap();
    w.snap("a", "1").await;
    let run = |s: Arc<dyn Sender>| Driver::new(cfg(), s, w.receiver(), CancellationToken::new());
    assert!(run(w.sender()).run().await.succeeded());

    // @2 is received, the sender's commit is lost: the cursor stays at @1.
    w.snap("a", "2").await;
    let lossy = SenderFaults {
        lose_commit: true,
        ..Default::default()
    };
    let r = run(Arc::new(FaultySender::new(w.sender(), lossy)))
        .run()
        .await;
    assert!(!r.succeeded(), "{r:#?}");
    let cursor_at = || async {
        let c = w.sender().replication_cursor(&a).await.unwrap().unwrap();
        let snaps = w.zfs.list_versions(&a).await.unwrap();
        snaps
            .into_iter()
            .find(|v| v.guid == c.guid && !v.name.starts_with("zrepl_"))
            .map(|v| v.name)
    };
    assert_eq!(
        cursor_at().await.as_deref(),
        Some("1"),
        "the lost commit left the cursor behind"
    );

    // @3: every send fails, so the run gives up and its cleanup releases
    // the step holds; then another job prunes @2.
    w.snap("a", "3").await;
    let failing = SenderFaults {
        fail_send: Some((a.clone(), 100, true)),
        ..Default::default()
    };
    let r = run(Arc::new(FaultySender::new(w.sender(), failing)))
        .run()
        .await;
    assert!(!r.succeeded(), "{r:#?}");
    assert_eq!(
        cursor_at().await.as_deref(),
        Some("2"),
        "the cursor moved to the receiver's newest first"
    );
    w.zfs
        .destroy_snapshots(&a, &["2".to_string()])
        .await
        .expect("nothing holds @2 any more");

    // The next run continues incrementally from the cursor bookmark.
    w.snap("a", "4").await;
    let r = run(w.sender()).run().await;
    assert!(r.succeeded(), "not diverged: {r:#?}");
    let names: Vec<String> = w
        .zfs
        .list_versions(&w.dst.join(a.components()).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(names.contains(&"4".to_string()), "{names:?}");
}
