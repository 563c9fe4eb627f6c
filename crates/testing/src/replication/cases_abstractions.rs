//! The sender's and receiver's abstractions across replications: stale ones
//! are cleaned up (only this job's), a tentative cursor that is the step's
//! `from` survives until the send, leftover step holds go when step holds
//! are no longer wanted, and a lost commit behaves as each guarantee promises.

use zrelay_endpoint::{Guarantee, Protection};
use zrelay_zfs::{BookmarkName, DestroyTarget, SnapshotName, VersionRef};

use super::*;
use crate::check;
use crate::faults::{FaultySender, SenderFaults};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            "ReplicationIncrementalCleansUpStaleAbstractionsWithCacheOnSecondReplication",
            stale_with_cache
        ),
        case!(
            "ReplicationIncrementalCleansUpStaleAbstractionsWithoutCacheOnSecondReplication",
            stale_without_cache
        ),
        case!(
            "ReplicationIncrementalHandlesFromVersionEqTentativeCursorCorrectly",
            from_is_tentative_cursor
        ),
        case!(
            "ReplicationIncrementalDestroysStepHoldsIffIncrementalStepHoldsAreDisabledButStepHoldsExist",
            step_holds_destroyed_when_disabled
        ),
        case!(
            "ReplicationStepCompletedLostBehavior__GuaranteeResumability",
            commit_lost_resumability
        ),
        case!(
            "ReplicationStepCompletedLostBehavior__GuaranteeIncrementalReplication",
            commit_lost_incremental
        ),
        case!(
            "ReceiverCommitWithoutAListingReleasesOldLastReceivedHolds",
            commit_without_listing
        ),
    ]
}

/// Both guarantees set to `g`.
fn both(g: Guarantee) -> Protection {
    Protection {
        initial: g,
        incremental: g,
    }
}

fn snapshot(fs: &DatasetPath, name: &str) -> Result<SnapshotName, String> {
    SnapshotName::new(fs, name).ctx("snapshot name")
}

/// Bookmark `fs@snap` as `fs#name`.
async fn bookmark(fx: &dyn Fixture, fs: &DatasetPath, snap: &str, name: &str) -> Outcome {
    let g = guid(fx, fs, snap).await?;
    let b = BookmarkName::new(fs, name).ctx("bookmark name")?;
    fx.zfs()
        .bookmark(&VersionRef::Snapshot(snapshot(fs, snap)?), g, &b)
        .await
        .ctx(&format!("bookmark {b}"))
}

async fn hold(fx: &dyn Fixture, fs: &DatasetPath, snap: &str, tag: &str) -> Outcome {
    let s = snapshot(fs, snap)?;
    fx.zfs().hold(&s, tag).await.ctx(&format!("hold {s} {tag}"))
}

async fn destroy_snapshot(fx: &dyn Fixture, fs: &DatasetPath, name: &str) -> Outcome {
    let s = snapshot(fs, name)?;
    fx.zfs()
        .destroy(&DestroyTarget::Snapshot(s.clone()))
        .await
        .ctx(&format!("destroy {s}"))
}

/// The bookmarks of `fs` that belong to `job` (cursors and tentative cursors), sorted.
async fn job_bookmarks(
    fx: &dyn Fixture,
    fs: &DatasetPath,
    job: &JobId,
) -> Result<Vec<String>, String> {
    let suffix = format!("_J_{job}");
    let mut v: Vec<String> = bookmark_names(fx, fs)
        .await?
        .into_iter()
        .filter(|b| b.starts_with("zrepl_") && b.ends_with(&suffix))
        .collect();
    v.sort();
    Ok(v)
}

/// The snapshots under `root` that carry exactly `tag`, sorted.
async fn tagged(fx: &dyn Fixture, root: &DatasetPath, tag: &str) -> Result<Vec<String>, String> {
    let mut v: Vec<String> = holds_tagged(fx, root, tag)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    v.sort();
    Ok(v)
}

async fn stale_with_cache(fx: &dyn Fixture) -> Outcome {
    stale_abstractions(fx, true).await
}

async fn stale_without_cache(fx: &dyn Fixture) -> Outcome {
    stale_abstractions(fx, false).await
}

/// Replicate @0 and @1, plant stale abstractions of this job and of another
/// one, replicate @2 and @3, and check that exactly this job's live
/// abstractions remain and the other job's are untouched.
async fn stale_abstractions(fx: &dyn Fixture, reuse_endpoints: bool) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    let ra = setup.r(&a);
    create(fx, &a).await?;
    snap(fx, &a, "0", 8 * 1024).await?;
    snap(fx, &a, "1", 8 * 1024).await?;
    bookmark(fx, &a, "0", "user bookmark").await?;
    let mut run = Run::default();
    run.cfg.initial = zrelay_planner::InitialPolicy::All;
    let (s, r) = run.endpoints(fx, &setup);
    let (sender, receiver): (Arc<dyn Sender>, Arc<dyn Receiver>) = (s, r);
    expect_success(
        &replicate_with(fx, &run.cfg, sender.clone(), receiver.clone(), &run.cancel).await,
    )?;
    check!(
        snapshot_names(fx, &ra).await? == ["0", "1"],
        "first replication: receiver has {:?}",
        snapshot_names(fx, &ra).await?
    );

    let ours = job();
    let other = JobId::new("other-job").ctx("job id")?;
    let g0 = guid(fx, &a, "0").await?;
    for j in [&ours, &other] {
        hold(fx, &a, "0", &j.step_hold_tag()).await?;
        hold(fx, &a, "1", &j.step_hold_tag()).await?;
        bookmark(fx, &a, "0", &j.cursor_bookmark(g0)).await?;
        bookmark(fx, &a, "0", &j.tentative_cursor_bookmark(g0)).await?;
        hold(fx, &ra, "0", &j.last_received_hold_tag()).await?;
    }
    // The planted state is what the assertions below expect to change.
    check!(
        tagged(fx, fx.root(), &ours.step_hold_tag()).await?.len() == 2,
        "planted step holds missing"
    );
    check!(
        job_bookmarks(fx, &a, &ours).await?.len() == 3,
        "planted bookmarks missing: {:?}",
        bookmark_names(fx, &a).await?
    );

    snap(fx, &a, "2", 8 * 1024).await?;
    snap(fx, &a, "3", 8 * 1024).await?;
    let r = if reuse_endpoints {
        replicate_with(fx, &run.cfg, sender, receiver, &run.cancel).await
    } else {
        replicate(fx, &setup, &run).await
    };
    expect_success(&r)?;
    check!(
        fs_report(&r, &a)?.steps_done == 2,
        "second replication: {:?}",
        fs_report(&r, &a)?
    );
    check!(
        snapshot_names(fx, &ra).await? == ["0", "1", "2", "3"],
        "receiver has {:?}",
        snapshot_names(fx, &ra).await?
    );

    // Ours: one cursor, at the newest snapshot; no tentative cursor; no step
    // hold; the last-received hold only on the receiver's newest snapshot.
    let g3 = guid(fx, &a, "3").await?;
    let got = job_bookmarks(fx, &a, &ours).await?;
    check!(
        got == [ours.cursor_bookmark(g3)],
        "our bookmarks must be the cursor at @3 alone: {got:?}"
    );
    let got = tagged(fx, fx.root(), &ours.step_hold_tag()).await?;
    check!(got.is_empty(), "our step holds leaked: {got:?}");
    let got = tagged(fx, fx.root(), &ours.last_received_hold_tag()).await?;
    check!(
        got == [format!("{ra}@3")],
        "our last-received hold must be on {ra}@3 alone: {got:?}"
    );
    // The other job's: all still there.
    let mut want = vec![
        other.cursor_bookmark(g0),
        other.tentative_cursor_bookmark(g0),
    ];
    want.sort();
    let got = job_bookmarks(fx, &a, &other).await?;
    check!(got == want, "the other job's bookmarks changed: {got:?}");
    let got = tagged(fx, fx.root(), &other.step_hold_tag()).await?;
    check!(
        got == [format!("{a}@0"), format!("{a}@1")],
        "the other job's step holds changed: {got:?}"
    );
    let got = tagged(fx, fx.root(), &other.last_received_hold_tag()).await?;
    check!(
        got == [format!("{ra}@0")],
        "the other job's last-received hold changed: {got:?}"
    );
    check!(
        bookmark_names(fx, &a)
            .await?
            .contains(&"user bookmark".to_string()),
        "a user's bookmark must survive"
    );
    // Release the other job's planted holds: then nothing of any job is left.
    for s in ["0", "1"] {
        let s = snapshot(&a, s)?;
        fx.zfs()
            .release(&s, &other.step_hold_tag())
            .await
            .ctx("release")?;
    }
    expect_no_step_holds(fx, fx.root()).await
}

/// zrepl #714: the step's `from` is the tentative cursor itself; preparing
/// the step must not destroy it as stale before the send.
async fn from_is_tentative_cursor(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    let mut run = Run::default();
    run.cfg.protection = both(Guarantee::GuaranteeIncremental);
    expect_success(&replicate(fx, &setup, &run).await)?;
    let j = job();
    let g1 = guid(fx, &a, "1").await?;
    bookmark(fx, &a, "1", &j.tentative_cursor_bookmark(g1)).await?;
    let cursor = BookmarkName::new(&a, &j.cursor_bookmark(g1)).ctx("name")?;
    fx.zfs()
        .destroy(&DestroyTarget::Bookmark(cursor))
        .await
        .ctx("destroy the cursor")?;
    destroy_snapshot(fx, &a, "1").await?;
    let left: Vec<String> = versions(fx, &a)
        .await?
        .iter()
        .filter(|v| v.guid == g1)
        .map(|v| format!("{}{}", v.kind.delimiter(), v.name))
        .collect();
    check!(
        left == [format!("#{}", j.tentative_cursor_bookmark(g1))],
        "the tentative cursor must be @1's only version: {left:?}"
    );
    snap(fx, &a, "2", 16 * 1024).await?;
    let r = replicate(fx, &setup, &run).await;
    expect_success(&r)?;
    let step = fs_report(&r, &a)?.current_step.clone();
    check!(
        step.as_ref().and_then(|s| s.from.clone())
            == Some(format!("#{}", j.tentative_cursor_bookmark(g1))),
        "the step must start from the tentative cursor: {step:?}"
    );
    check!(
        snapshot_names(fx, &setup.r(&a)).await? == ["1", "2"],
        "receiver has {:?}",
        snapshot_names(fx, &setup.r(&a)).await?
    );
    let g2 = guid(fx, &a, "2").await?;
    let got = job_bookmarks(fx, &a, &j).await?;
    check!(
        got == [j.cursor_bookmark(g2)],
        "only the cursor at @2 may remain (no tentative cursor): {got:?}"
    );
    expect_no_step_holds(fx, fx.root()).await
}

/// A failed resumable step leaves step holds; a run with step holds disabled
/// for incremental steps resumes it and removes them.
async fn step_holds_destroyed_when_disabled(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    let ra = setup.r(&a);
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    expect_success(&replicate(fx, &setup, &Run::default()).await)?;
    snap(fx, &a, "2", 1024 * 1024).await?;

    let run = Run::default();
    let (s, r) = run.endpoints(fx, &setup);
    let faulty = Arc::new(FaultySender::new(
        s,
        SenderFaults {
            cut_after: Some(64 * 1024),
            ..SenderFaults::default()
        },
    ));
    let rep = replicate_with(fx, &run.cfg, faulty.clone(), r, &run.cancel).await;
    check!(!rep.succeeded(), "the cut step must fail: {rep:?}");
    let err = fs_error(&rep, &a)?;
    check!(err.contains("injected fault"), "error: {err}");
    check!(
        resume_token(fx, &ra).await?.is_some(),
        "the cut receive must leave a resume token"
    );
    // guarantee_resumability: the failed, resumable step keeps its holds.
    let tag = job().step_hold_tag();
    let got = tagged(fx, fx.root(), &tag).await?;
    check!(
        got == [format!("{a}@1"), format!("{a}@2")],
        "step holds on @1 and @2 expected after the failed step: {got:?}"
    );

    let mut run = Run::default();
    run.cfg.protection.incremental = Guarantee::GuaranteeIncremental;
    let rep = replicate(fx, &setup, &run).await;
    expect_success(&rep)?;
    let step = fs_report(&rep, &a)?.current_step.clone();
    check!(
        step.as_ref().is_some_and(|s| s.resumed),
        "the step must have resumed: {step:?}"
    );
    check!(
        guid(fx, &ra, "2").await? == guid(fx, &a, "2").await?,
        "guid of @2 differs"
    );
    let g2 = guid(fx, &a, "2").await?;
    let got = job_bookmarks(fx, &a, &job()).await?;
    check!(got == [job().cursor_bookmark(g2)], "cursor: {got:?}");
    expect_no_step_holds(fx, fx.root()).await
}

async fn commit_lost_resumability(fx: &dyn Fixture) -> Outcome {
    commit_lost(fx, Guarantee::GuaranteeResumability).await
}

async fn commit_lost_incremental(fx: &dyn Fixture) -> Outcome {
    commit_lost(fx, Guarantee::GuaranteeIncremental).await
}

/// The receiver got @2, but the sender never heard of it (zrepl's lost
/// `SendCompleted`).
async fn commit_lost(fx: &dyn Fixture, g: Guarantee) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    let ra = setup.r(&a);
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    let mut run = Run::default();
    run.cfg.protection = both(g);
    expect_success(&replicate(fx, &setup, &run).await)?;
    snap(fx, &a, "2", 16 * 1024).await?;
    let g1 = guid(fx, &a, "1").await?;
    let g2 = guid(fx, &a, "2").await?;

    let (s, r) = run.endpoints(fx, &setup);
    let faulty = Arc::new(FaultySender::new(
        s,
        SenderFaults {
            lose_commit: true,
            ..SenderFaults::default()
        },
    ));
    let rep = replicate_with(fx, &run.cfg, faulty, r, &run.cancel).await;
    // The step ran, only the sender's commit was lost.
    check!(!rep.succeeded(), "a lost commit must fail the run: {rep:?}");
    let err = fs_error(&rep, &a)?;
    check!(err.contains("commit lost"), "error: {err}");
    // The receiver has @2 and committed it: the last-received hold moved.
    check!(
        guid(fx, &ra, "2").await? == g2,
        "the receiver must have @2 with the sender's guid"
    );
    let lr = tagged(fx, &setup.dst, &job().last_received_hold_tag()).await?;
    check!(lr == [format!("{ra}@2")], "last-received holds: {lr:?}");
    // The sender never committed: its cursor is still at @1.
    let got = job_bookmarks(fx, &a, &job()).await?;
    check!(
        got == [job().cursor_bookmark(g1)],
        "the sender's cursor must not have moved: {got:?}"
    );
    let step_holds = tagged(fx, fx.root(), &job().step_hold_tag()).await?;

    if g == Guarantee::GuaranteeResumability {
        // The step holds stay on @1 and @2 (not dropped by the end-of-run
        // cleanup: the step itself succeeded) ...
        check!(
            step_holds == [format!("{a}@1"), format!("{a}@2")],
            "step holds on @1 and @2 expected: {step_holds:?}"
        );
        // ... so @2, which the receiver now has as its newest, cannot be
        // destroyed on the sender, and incremental replication stays possible.
        let destroyed = destroy_snapshot(fx, &a, "2").await;
        check!(destroyed.is_err(), "destroying the step-held @2 must fail");
        check!(exists(fx, &format!("{a}@2")).await?, "@2 must still exist");
        // The next run finds the receiver up to date and reconciles: it
        // commits @2 (cursor to @2, step holds released) without sending.
        let rep = replicate(fx, &setup, &run).await;
        expect_success(&rep)?;
        let got = job_bookmarks(fx, &a, &job()).await?;
        check!(
            got == [job().cursor_bookmark(g2)],
            "the reconciling run must move the cursor to @2: {got:?}"
        );
        check!(
            fs_report(&rep, &a)?.steps_done == 0,
            "nothing must be sent again: {:?}",
            fs_report(&rep, &a)?
        );
    } else {
        // guarantee_incremental: no step holds; the old cursor protects @1.
        check!(
            step_holds.is_empty(),
            "no step holds expected: {step_holds:?}"
        );
        // Nothing holds @2 on the sender, so it can be destroyed ...
        destroy_snapshot(fx, &a, "2").await?;
        // ... and then the receiver's newest snapshot @2 is unknown to the
        // sender: the next run reports a conflict and destroys nothing.
        let rep = replicate(fx, &setup, &run).await;
        check!(!rep.succeeded(), "the conflict must fail the run: {rep:?}");
        let err = fs_error(&rep, &a)?;
        check!(
            err.contains("diverged") || err.contains("no common"),
            "the error must name the conflict: {err}"
        );
        check!(
            snapshot_names(fx, &ra).await? == ["1", "2"],
            "the receiver must keep @1 and @2: {:?}",
            snapshot_names(fx, &ra).await?
        );
        check!(guid(fx, &ra, "2").await? == g2, "receiver @2 changed");
    }
    expect_no_step_holds(fx, fx.root()).await
}

/// A receiver that did not list (a sink restarted after its client listed)
/// commits a step: the old last-received hold that a commit killed between
/// its hold and its release left behind goes too. (Found by the fault
/// campaign's kills: two last-received holds per filesystem.)
async fn commit_without_listing(fx: &dyn Fixture) -> Outcome {
    use zrelay_endpoint::{CommitReq, Receiver};
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    let ra = setup.r(&a);
    create(fx, &a).await?;
    snap(fx, &a, "1", 8 * 1024).await?;
    snap(fx, &a, "2", 8 * 1024).await?;
    let mut run = Run::default();
    run.cfg.initial = zrelay_planner::InitialPolicy::All;
    expect_success(&replicate(fx, &setup, &run).await)?;
    let tag = job().last_received_hold_tag();
    hold(fx, &ra, "1", &tag).await?;
    check!(
        tagged(fx, &ra, &tag).await?.len() == 2,
        "planted: {:?}",
        tagged(fx, &ra, &tag).await?
    );
    let listing = local_sender(fx, job(), &setup.src, &SendOptions::default())
        .list_filesystems()
        .await
        .ctx("list the sender")?;
    let to = listing
        .iter()
        .find(|l| l.path == a)
        .and_then(|l| l.versions.iter().find(|v| v.name == "2"))
        .cloned()
        .ok_or("no @2 on the sender")?;
    let fresh = local_receiver(fx, job(), &setup.dst, &RecvOptions::default());
    let res = fresh
        .commit(&[CommitReq {
            fs: a.clone(),
            to,
            protection: Protection::default(),
            incremental: true,
        }])
        .await
        .ctx("commit")?;
    check!(res.iter().all(|r| r.is_ok()), "commit: {res:?}");
    let held = tagged(fx, &ra, &tag).await?;
    check!(
        held == [format!("{ra}@2")],
        "only the newest keeps the last-received hold: {held:?}"
    );
    Ok(())
}
