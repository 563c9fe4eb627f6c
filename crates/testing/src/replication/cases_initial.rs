//! Initial replication policies, incremental replication from the cursor,
//! cursor creation, and property replication.

use zrelay_endpoint::{CommitReq, FsVersion, LocalSender, Protection, Sender};
use zrelay_planner::InitialPolicy;
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::{BookmarkName, DestroyTarget, SnapshotName, VersionRef};

use super::*;
use crate::check;

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!("ReplicationInitialAll", initial_all),
        case!("ReplicationInitialMostRecent", initial_most_recent),
        case!("ReplicationInitialFail", initial_fail),
        case!(
            "ReplicationIncrementalIsPossibleIfCommonSnapshotIsDestroyed",
            incremental_from_cursor
        ),
        case!("CreateReplicationCursor", create_replication_cursor),
        case!("ReplicationPropertyReplicationWorks", property_replication),
    ]
}

async fn three_snapshots(fx: &dyn Fixture) -> Result<(Setup, DatasetPath), String> {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    for n in ["1", "2", "3"] {
        snap(fx, &a, n, 16 * 1024).await?;
    }
    Ok((setup, a))
}

async fn initial_with(
    fx: &dyn Fixture,
    policy: InitialPolicy,
) -> Result<(Setup, DatasetPath, Report), String> {
    let (setup, a) = three_snapshots(fx).await?;
    let mut run = Run::default();
    run.cfg.initial = policy;
    let r = replicate(fx, &setup, &run).await;
    Ok((setup, a, r))
}

async fn initial_all(fx: &dyn Fixture) -> Outcome {
    let (setup, a, r) = initial_with(fx, InitialPolicy::All).await?;
    expect_success(&r)?;
    let got = snapshot_names(fx, &setup.r(&a)).await?;
    check!(got == ["1", "2", "3"], "receiver has {got:?}");
    for n in ["1", "2", "3"] {
        check!(
            guid(fx, &a, n).await? == guid(fx, &setup.r(&a), n).await?,
            "guid of @{n} differs"
        );
    }
    let rep = fs_report(&r, &a)?;
    check!(rep.steps_done == 3 && rep.steps_total == 3, "steps {rep:?}");
    expect_no_step_holds(fx, fx.root()).await
}

async fn initial_most_recent(fx: &dyn Fixture) -> Outcome {
    let (setup, a, r) = initial_with(fx, InitialPolicy::MostRecent).await?;
    expect_success(&r)?;
    let got = snapshot_names(fx, &setup.r(&a)).await?;
    check!(got == ["3"], "receiver has {got:?}");
    check!(
        guid(fx, &a, "3").await? == guid(fx, &setup.r(&a), "3").await?,
        "guid differs"
    );
    expect_no_step_holds(fx, fx.root()).await
}

async fn initial_fail(fx: &dyn Fixture) -> Outcome {
    let (setup, a, r) = initial_with(fx, InitialPolicy::Fail).await?;
    check!(!r.succeeded(), "policy fail must not replicate: {r:?}");
    let rep = fs_report(&r, &a)?;
    let err = rep.last_error.clone().unwrap_or_default();
    check!(err.contains("initial replication"), "error: {err}");
    check!(
        fx.zfs().guid(setup.r(&a).as_str()).await.is_err(),
        "receiver filesystem must not exist"
    );
    expect_no_step_holds(fx, fx.root()).await
}

async fn incremental_from_cursor(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    snap(fx, &a, "1", 16 * 1024).await?;
    expect_success(&replicate(fx, &setup, &Run::default()).await)?;
    let g1 = guid(fx, &a, "1").await?;
    let cursor = job().cursor_bookmark(g1);
    check!(
        bookmark_names(fx, &a).await?.contains(&cursor),
        "cursor {cursor} missing after the first replication"
    );
    // Destroy the common snapshot on the sender: only the cursor bookmark remains.
    let s1 = SnapshotName::new(&a, "1").ctx("name")?;
    fx.zfs()
        .destroy(&DestroyTarget::Snapshot(s1))
        .await
        .ctx("destroy @1")?;
    snap(fx, &a, "2", 16 * 1024).await?;
    let r = replicate(fx, &setup, &Run::default()).await;
    expect_success(&r)?;
    let got = snapshot_names(fx, &setup.r(&a)).await?;
    check!(got == ["1", "2"], "receiver has {got:?}");
    let bms = bookmark_names(fx, &a).await?;
    let g2 = guid(fx, &a, "2").await?;
    check!(
        bms == [job().cursor_bookmark(g2)],
        "the cursor must have moved to @2 alone: {bms:?}"
    );
    expect_no_step_holds(fx, fx.root()).await
}

/// Cursor creation is idempotent for snapshot targets, bookmark targets,
/// with non-cursor bookmarks around, and over an existing cursor.
async fn create_replication_cursor(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    create(fx, &a).await?;
    snap(fx, &a, "1", 0).await?;
    snap(fx, &a, "2", 0).await?;
    let zfs = fx.zfs();
    let s1 = SnapshotName::new(&a, "1").ctx("name")?;
    let g1 = guid(fx, &a, "1").await?;
    let g2 = guid(fx, &a, "2").await?;
    let user_bm = BookmarkName::new(&a, "user bookmark").ctx("name")?;
    zfs.bookmark(&VersionRef::Snapshot(s1), g1, &user_bm)
        .await
        .ctx("user bookmark")?;
    let sender = LocalSender::new(
        zfs.clone(),
        job(),
        FsFilter::subtree(&setup.src),
        SendOptions::default(),
    );
    let listing = sender.list_filesystems().await.ctx("list")?;
    let v = |name: &str, kind| {
        listing.iter().find(|l| l.path == a).and_then(|l| {
            l.versions
                .iter()
                .find(|v| v.name == name && v.kind == kind)
                .cloned()
        })
    };
    let commit = |to: FsVersion| CommitReq {
        fs: a.clone(),
        to,
        protection: Protection::default(),
        incremental: true,
    };
    let snap1 = v("1", VersionKind::Snapshot).ok_or("no @1")?;
    let bm1 = v("user bookmark", VersionKind::Bookmark).ok_or("no #user bookmark")?;
    let snap2 = v("2", VersionKind::Snapshot).ok_or("no @2")?;
    for (what, to) in [
        ("snapshot target", snap1.clone()),
        ("same snapshot again", snap1.clone()),
        ("bookmark of the same snapshot", bm1.clone()),
        ("newer snapshot", snap2.clone()),
        ("existing cursor", snap2.clone()),
    ] {
        let res = sender.commit(&[commit(to)]).await.ctx(what)?;
        check!(res.iter().all(|r| r.is_ok()), "{what}: {res:?}");
    }
    let bms = bookmark_names(fx, &a).await?;
    check!(
        bms.contains(&"user bookmark".to_string()),
        "a non-cursor bookmark must survive: {bms:?}"
    );
    let cursors: Vec<&String> = bms
        .iter()
        .filter(|b| b.starts_with("zrepl_CURSOR"))
        .collect();
    check!(
        cursors == [&job().cursor_bookmark(g2)],
        "exactly one cursor, at @2: {bms:?}"
    );
    let _ = g1;
    Ok(())
}

async fn property_replication(fx: &dyn Fixture) -> Outcome {
    let setup = Setup::new(fx).await?;
    let a = setup.s("a");
    let child = setup.s("a/child");
    let zfs = fx.zfs();
    for fs in [&a, &child] {
        zfs.create(
            fs,
            &[
                ("zrelay:prop1".into(), "a".into()),
                ("zrelay:prop2".into(), "b".into()),
                ("zrelay:prop3".into(), "c".into()),
            ],
        )
        .await
        .ctx("create with properties")?;
        snap(fx, fs, "1", 4096).await?;
    }
    let mut run = Run::default();
    run.send.flags.send_properties = true;
    run.recv.override_props = vec![("zrelay:prop1".into(), "overridden".into())];
    run.recv.inherit_props = vec!["zrelay:prop2".into()];
    expect_success(&replicate(fx, &setup, &run).await)?;
    for fs in [&a, &child] {
        let rfs = setup.r(fs);
        let p = zfs
            .get(
                rfs.as_str(),
                &["zrelay:prop1", "zrelay:prop2", "zrelay:prop3"],
            )
            .await
            .ctx("get received properties")?;
        let val = |k: &str| p.get(k).map(|v| (v.value.clone(), v.source.clone()));
        check!(
            val("zrelay:prop1").map(|v| v.0) == Some("overridden".into()),
            "{rfs}: prop1 {:?}",
            val("zrelay:prop1")
        );
        check!(
            val("zrelay:prop2").map(|v| v.0) != Some("b".into()),
            "{rfs}: prop2 must not be received: {:?}",
            val("zrelay:prop2")
        );
        check!(
            val("zrelay:prop3").map(|v| v.0) == Some("c".into()),
            "{rfs}: prop3 {:?}",
            val("zrelay:prop3")
        );
    }
    Ok(())
}
