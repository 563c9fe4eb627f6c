//! Conformance cases for naming, listing, holds, bookmarks and destroys.

use super::{CaseResult, Fixture, Outcome};
use crate::ensure_case;
use zrelay_zfs::api::{DestroyTarget, VersionRef};
use zrelay_zfs::error::ZfsError;
use zrelay_zfs::name::{BookmarkName, DatasetPath, SnapshotName, VersionKind};
use zrelay_zfs::parse::DestroyReason;

pub(super) fn ds(fx: &dyn Fixture, rel: &str) -> DatasetPath {
    fx.root().join_relative(rel).expect("valid test name")
}

pub(super) fn snap(fs: &DatasetPath, name: &str) -> SnapshotName {
    SnapshotName::new(fs, name).expect("valid test snapshot name")
}

/// Create `rel` under the root with the given snapshots (data written before each).
pub(super) async fn fs_with_snaps(
    fx: &dyn Fixture,
    rel: &str,
    snaps: &[&str],
) -> Result<DatasetPath, String> {
    let fs = ds(fx, rel);
    fx.zfs().create(&fs, &[]).await.ctx("create")?;
    for s in snaps {
        fx.write(&fs, 64 * 1024).await?;
        fx.zfs().snapshot(&[snap(&fs, s)]).await.ctx("snapshot")?;
    }
    Ok(fs)
}

/// Short names of `fs`'s versions, oldest first; only those of kind `only` when given.
pub(super) async fn version_names(
    fx: &dyn Fixture,
    fs: &DatasetPath,
    only: Option<VersionKind>,
) -> Result<Vec<String>, String> {
    let versions = fx.zfs().list_versions(fs).await.ctx("list")?;
    Ok(versions
        .into_iter()
        .filter(|v| only.is_none_or(|k| v.kind == k))
        .map(|v| v.name)
        .collect())
}

fn is_missing(e: &ZfsError, name: &str) -> bool {
    matches!(e, ZfsError::DatasetDoesNotExist { path } if path == name)
}

pub(super) async fn batch_destroy(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "batch", &["1", "2", "3"]).await?;
    fx.zfs().hold(&snap(&fs, "2"), "keep").await.ctx("hold")?;
    let names = vec!["1".to_string(), "2".to_string(), "3".to_string()];
    let report = fx
        .zfs()
        .destroy_snapshots(&fs, &names)
        .await
        .ctx("destroy")?;
    ensure_case!(report.failed.len() == 1, "failures: {:?}", report.failed);
    let f = &report.failed[0];
    ensure_case!(
        f.snapshot == snap(&fs, "2").to_string(),
        "failed snapshot {:?}",
        f.snapshot
    );
    ensure_case!(
        matches!(f.reason, DestroyReason::Held | DestroyReason::Busy),
        "reason {:?}",
        f.reason
    );
    let mut destroyed = report.destroyed.clone();
    destroyed.sort();
    ensure_case!(
        destroyed == vec!["1".to_string(), "3".to_string()],
        "destroyed {destroyed:?}"
    );
    let left = version_names(fx, &fs, None).await?;
    ensure_case!(left == vec!["2".to_string()], "left {left:?}");
    Ok(())
}

pub(super) async fn get_nonexistent(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "exists", &["s"]).await?;
    let missing_fs = ds(fx, "does not exist");
    for name in [
        missing_fs.to_string(),
        snap(&fs, "nope").to_string(),
        BookmarkName::new(&fs, "nope").unwrap().to_string(),
    ] {
        match fx.zfs().get(&name, &["guid"]).await {
            Err(e) if is_missing(&e, &name) => {}
            other => {
                return Err(format!(
                    "get {name:?}: expected DatasetDoesNotExist, got {other:?}"
                ))
            }
        }
    }
    Ok(())
}

pub(super) async fn holds_work(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "holds", &["s"]).await?;
    let s = snap(&fs, "s");
    ensure_case!(
        fx.zfs().holds(&s).await.ctx("holds")?.is_empty(),
        "fresh snapshot has holds"
    );
    fx.zfs().hold(&s, "tag one").await.ctx("hold 1")?;
    fx.zfs().hold(&s, "zrelay_STEP_J_job").await.ctx("hold 2")?;
    let mut tags = fx.zfs().holds(&s).await.ctx("holds")?;
    tags.sort();
    ensure_case!(
        tags == vec!["tag one".to_string(), "zrelay_STEP_J_job".to_string()],
        "tags {tags:?}"
    );
    Ok(())
}

pub(super) async fn idempotent_bookmark(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "bm", &["a", "b"]).await?;
    let z = fx.zfs();
    let a = snap(&fs, "a");
    let ga = z.guid(&a.to_string()).await.ctx("guid a")?;
    let gb = z.guid(&snap(&fs, "b").to_string()).await.ctx("guid b")?;
    let bm = BookmarkName::new(&fs, "mark").unwrap();
    z.bookmark(&VersionRef::Snapshot(a.clone()), ga, &bm)
        .await
        .ctx("first bookmark")?;
    z.bookmark(&VersionRef::Snapshot(a.clone()), ga, &bm)
        .await
        .ctx("same bookmark again")?;
    match z
        .bookmark(&VersionRef::Snapshot(snap(&fs, "b")), gb, &bm)
        .await
    {
        Err(ZfsError::BookmarkExists {
            existing, expected, ..
        }) if existing == ga && expected == gb => {}
        other => {
            return Err(format!(
                "bookmark of another snapshot: expected BookmarkExists, got {other:?}"
            ))
        }
    }
    let missing = snap(&fs, "missing");
    match z
        .bookmark(
            &VersionRef::Snapshot(missing.clone()),
            1,
            &BookmarkName::new(&fs, "x").unwrap(),
        )
        .await
    {
        Err(e) if is_missing(&e, &missing.to_string()) => {}
        other => return Err(format!("bookmark of a missing snapshot: got {other:?}")),
    }
    Ok(())
}

pub(super) async fn idempotent_destroy(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "destroy me", &["s"]).await?;
    let z = fx.zfs();
    let s = snap(&fs, "s");
    let g = z.guid(&s.to_string()).await.ctx("guid")?;
    let bm = BookmarkName::new(&fs, "b").unwrap();
    z.bookmark(&VersionRef::Snapshot(s.clone()), g, &bm)
        .await
        .ctx("bookmark")?;
    let targets = [
        DestroyTarget::Bookmark(bm),
        DestroyTarget::Snapshot(s),
        DestroyTarget::Dataset(fs.clone()),
    ];
    for t in &targets {
        z.destroy(t).await.ctx(&format!("destroy {t}"))?;
        match z.destroy(t).await {
            Err(e) if e.is_does_not_exist() => {}
            other => {
                return Err(format!(
                    "second destroy of {t}: expected does-not-exist, got {other:?}"
                ))
            }
        }
        z.destroy_idempotent(t)
            .await
            .ctx(&format!("idempotent destroy of {t}"))?;
    }
    // the parent is gone too: still fine
    let orphan = DestroyTarget::Snapshot(snap(&fs.child("child").unwrap(), "s"));
    z.destroy_idempotent(&orphan)
        .await
        .ctx("idempotent destroy below a missing parent")?;
    Ok(())
}

pub(super) async fn idempotent_hold(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "hold", &["s"]).await?;
    let s = snap(&fs, "s");
    fx.zfs().hold(&s, "t").await.ctx("hold")?;
    fx.zfs().hold(&s, "t").await.ctx("hold again")?;
    ensure_case!(
        fx.zfs().holds(&s).await.ctx("holds")? == vec!["t".to_string()],
        "holds differ"
    );
    fx.zfs().release(&s, "t").await.ctx("release")?;
    fx.zfs().release(&s, "t").await.ctx("release again")?;
    fx.zfs()
        .release(&snap(&fs, "gone"), "t")
        .await
        .ctx("release on a missing snapshot")?;
    Ok(())
}

pub(super) async fn list_versions_fs_not_exist(fx: &dyn Fixture) -> Outcome {
    let missing = ds(fx, "not here");
    match fx.zfs().list_versions(&missing).await {
        Err(e) if is_missing(&e, missing.as_str()) => Ok(()),
        other => Err(format!("expected DatasetDoesNotExist, got {other:?}")),
    }
}

pub(super) async fn list_versions_type_filtering_and_prefix(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "foo bar", &["blup 1", "foo 1", " leading space"]).await?;
    let z = fx.zfs();
    let s = snap(&fs, "foo 1");
    let g = z.guid(&s.to_string()).await.ctx("guid")?;
    z.bookmark(
        &VersionRef::Snapshot(s),
        g,
        &BookmarkName::new(&fs, "foo 1").unwrap(),
    )
    .await
    .ctx("bookmark")?;
    // a child's versions must not show up
    let child = fs.child("child").unwrap();
    z.create(&child, &[]).await.ctx("create child")?;
    z.snapshot(&[snap(&child, "foo 2")])
        .await
        .ctx("child snapshot")?;
    let vs = z.list_versions(&fs).await.ctx("list")?;
    let snaps: Vec<&str> = vs
        .iter()
        .filter(|v| v.kind == VersionKind::Snapshot)
        .map(|v| v.name.as_str())
        .collect();
    let bms: Vec<&str> = vs
        .iter()
        .filter(|v| v.kind == VersionKind::Bookmark)
        .map(|v| v.name.as_str())
        .collect();
    ensure_case!(
        snaps == vec!["blup 1", "foo 1", " leading space"],
        "snapshots {snaps:?}"
    );
    ensure_case!(bms == vec!["foo 1"], "bookmarks {bms:?}");
    let prefixed: Vec<&str> = snaps
        .iter()
        .copied()
        .filter(|n| n.starts_with("foo"))
        .collect();
    ensure_case!(prefixed == vec!["foo 1"], "prefix filter {prefixed:?}");
    Ok(())
}

pub(super) async fn list_versions_userrefs(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "refs", &["none", "one", "two"]).await?;
    let z = fx.zfs();
    z.hold(&snap(&fs, "one"), "a").await.ctx("hold")?;
    z.hold(&snap(&fs, "two"), "a").await.ctx("hold")?;
    z.hold(&snap(&fs, "two"), "b").await.ctx("hold")?;
    let s = snap(&fs, "none");
    let g = z.guid(&s.to_string()).await.ctx("guid")?;
    z.bookmark(
        &VersionRef::Snapshot(s),
        g,
        &BookmarkName::new(&fs, "bm").unwrap(),
    )
    .await
    .ctx("bookmark")?;
    let refs: Vec<(String, Option<u64>)> = z
        .list_versions(&fs)
        .await
        .ctx("list")?
        .into_iter()
        .map(|v| (v.name, v.userrefs))
        .collect();
    let want = vec![
        ("none".to_string(), Some(0)),
        ("bm".to_string(), None),
        ("one".to_string(), Some(1)),
        ("two".to_string(), Some(2)),
    ];
    ensure_case!(refs == want, "userrefs {refs:?}");
    Ok(())
}

pub(super) async fn list_versions_zero_exist_is_not_an_error(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "empty", &[]).await?;
    let vs = fx.zfs().list_versions(&fs).await.ctx("list")?;
    ensure_case!(vs.is_empty(), "versions {vs:?}");
    Ok(())
}

pub(super) async fn list_filesystems_no_filter(fx: &dyn Fixture) -> Outcome {
    let names = ["a", "a/b c", "a/b c/d", "e f"];
    for n in names {
        fx.zfs().create(&ds(fx, n), &[]).await.ctx("create")?;
    }
    let listed = fx.zfs().list(fx.root()).await.ctx("list")?;
    let mut got: Vec<String> = listed.iter().map(|d| d.path.to_string()).collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|n| ds(fx, n).to_string()).collect();
    want.push(fx.root().to_string());
    want.sort();
    ensure_case!(got == want, "listed {got:?}, expected {want:?}");
    Ok(())
}

/// Listing a subtree with many filesystems and versions returns all of them in one listing.
pub(super) async fn list_is_one_call(fx: &dyn Fixture) -> Outcome {
    for i in 0..5 {
        fs_with_snaps(fx, &format!("fs{i}"), &["a", "b", "c"]).await?;
    }
    let listed = fx.zfs().list(fx.root()).await.ctx("list")?;
    let versions: usize = listed.iter().map(|d| d.versions.len()).sum();
    ensure_case!(
        listed.len() == 6 && versions == 15,
        "{} datasets, {versions} versions",
        listed.len()
    );
    for d in &listed {
        for w in d.versions.windows(2) {
            ensure_case!(
                w[0].createtxg <= w[1].createtxg,
                "versions of {} not in txg order",
                d.path
            );
        }
    }
    Ok(())
}

pub(super) async fn undestroyable_snapshot_parsing(fx: &dyn Fixture) -> Outcome {
    let fs = fs_with_snaps(fx, "undestroyable", &["held", "free", "also held"]).await?;
    let z = fx.zfs();
    z.hold(&snap(&fs, "held"), "x").await.ctx("hold")?;
    z.hold(&snap(&fs, "also held"), "y").await.ctx("hold")?;
    let names: Vec<String> = ["held", "free", "also held"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let report = z.destroy_snapshots(&fs, &names).await.ctx("destroy")?;
    let mut failed: Vec<String> = report.failed.iter().map(|f| f.snapshot.clone()).collect();
    failed.sort();
    let mut want = vec![
        snap(&fs, "also held").to_string(),
        snap(&fs, "held").to_string(),
    ];
    want.sort();
    ensure_case!(failed == want, "undestroyable {failed:?}");
    ensure_case!(
        report.destroyed == vec!["free".to_string()],
        "destroyed {:?}",
        report.destroyed
    );
    Ok(())
}
