//! The cursor migration against the fake ZFS: one filesystem per case.

use super::*;
use zrelay_fake::FakeZfs;
use zrelay_zfs::{DatasetPath, SnapshotName, VersionRef};

/// Snapshot `fs@name`; its GUID.
async fn snap(zfs: &FakeZfs, fs: &DatasetPath, name: &str) -> u64 {
    let s = SnapshotName::new(fs, name).unwrap();
    zfs.snapshot(std::slice::from_ref(&s)).await.unwrap();
    zfs.guid(&s.to_string()).await.unwrap()
}

/// Bookmark `fs@from` as `fs#name`.
async fn bookmark(zfs: &FakeZfs, fs: &DatasetPath, from: &str, guid: u64, name: &str) {
    let s = SnapshotName::new(fs, from).unwrap();
    let b = BookmarkName::new(fs, name).unwrap();
    zfs.bookmark(&VersionRef::Snapshot(s), guid, &b)
        .await
        .unwrap();
}

/// `fs` with snapshots s1, s2; the v1 cursor at `v1_at` (if any) and
/// job `j1`'s v2 cursor at `v2_at` (if any).
async fn fs_with(zfs: &FakeZfs, name: &str, v1_at: Option<&str>, v2_at: Option<&str>) {
    let fs = DatasetPath::parse(name).unwrap();
    zfs.create(&fs, &[]).await.unwrap();
    let g1 = snap(zfs, &fs, "s1").await;
    let g2 = snap(zfs, &fs, "s2").await;
    let guid = |at: &str| if at == "s1" { g1 } else { g2 };
    if let Some(at) = v1_at {
        bookmark(zfs, &fs, at, guid(at), "zrepl_replication_cursor").await;
    }
    if let Some(at) = v2_at {
        let j1 = JobId::new("j1").unwrap();
        bookmark(zfs, &fs, at, guid(at), &j1.cursor_bookmark(guid(at))).await;
    }
}

async fn listed(zfs: &FakeZfs, name: &str) -> ListedDataset {
    let fs = DatasetPath::parse(name).unwrap();
    zfs.list(&fs).await.unwrap().remove(0)
}

#[tokio::test]
async fn v1_cursors_go_only_when_one_job_owns_them_and_has_a_newer_v2_cursor() {
    let zfs = FakeZfs::new();
    zfs.add_pool("tank").unwrap();
    fs_with(&zfs, "tank/ok", Some("s1"), Some("s2")).await;
    fs_with(&zfs, "tank/same", Some("s2"), Some("s2")).await;
    fs_with(&zfs, "tank/older", Some("s2"), Some("s1")).await;
    fs_with(&zfs, "tank/nov2", Some("s1"), None).await;
    fs_with(&zfs, "tank/orphan", Some("s1"), Some("s2")).await;
    fs_with(&zfs, "tank/shared", Some("s1"), Some("s2")).await;
    fs_with(&zfs, "tank/nov1", None, Some("s2")).await;
    let f1 = FsFilter::new(&[
        ("tank/ok", true),
        ("tank/same", true),
        ("tank/older", true),
        ("tank/nov2", true),
        ("tank/shared", true),
        ("tank/nov1", true),
    ])
    .unwrap();
    let f2 = FsFilter::new(&[("tank/shared", true)]).unwrap();
    let jobs = [
        (JobId::new("j1").unwrap(), &f1),
        (JobId::new("j2").unwrap(), &f2),
    ];
    let v1_exists = |fs: &str| zfs.exists(&format!("{fs}#zrepl_replication_cursor"));

    // A dry run reports and changes nothing.
    let ds = listed(&zfs, "tank/ok").await;
    let v = migrate_fs(&zfs, &jobs, &ds, true).await.unwrap();
    assert!(
        matches!(&v, Verdict::Migrated { v1, dry_run: true, .. } if v1 == "tank/ok#zrepl_replication_cursor"),
        "{v:?}"
    );
    assert!(v1_exists("tank/ok"));

    for fs in ["tank/ok", "tank/same"] {
        let ds = listed(&zfs, fs).await;
        let v = migrate_fs(&zfs, &jobs, &ds, false).await.unwrap();
        let Verdict::Migrated { v2, dry_run, .. } = &v else {
            panic!("{fs}: {v:?}")
        };
        assert!(
            !dry_run && v2.starts_with(&format!("{fs}#zrepl_CURSOR_G_")),
            "{v:?}"
        );
        assert!(!v1_exists(fs), "{fs}: the v1 cursor is still there");
    }

    for (fs, why) in [
        ("tank/older", "is newer than job \"j1\"'s v2 cursor"),
        ("tank/nov2", "has no v2 replication cursor"),
        ("tank/shared", "both include tank/shared"),
    ] {
        let ds = listed(&zfs, fs).await;
        let v = migrate_fs(&zfs, &jobs, &ds, false).await.unwrap();
        assert!(
            matches!(&v, Verdict::Refused(r) if r.contains(why)),
            "{fs}: {v:?}"
        );
        assert!(v1_exists(fs), "{fs}: the v1 cursor was destroyed");
    }

    let ds = listed(&zfs, "tank/orphan").await;
    assert_eq!(
        migrate_fs(&zfs, &jobs, &ds, false).await,
        Some(Verdict::NoOwner)
    );
    assert!(v1_exists("tank/orphan"));
    let ds = listed(&zfs, "tank/nov1").await;
    assert_eq!(migrate_fs(&zfs, &jobs, &ds, false).await, None);
}
