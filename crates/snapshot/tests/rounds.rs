//! Rounds against the fake ZFS: one `zfs snapshot` call per pool, the
//! fallback when it fails, what is listed, and the report.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{ds, fake_with, filter, Recording};
use zrelay_fake::FakeOp;
use zrelay_snapshot::{
    HookStatus, RoundCause, SnapshotReport, Snapshotter, Snapshotting, TimestampFormat, TokioClock,
};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::{Classify, Zfs};

const T: u64 = 1_715_721_383; // 2024-05-14T21:16:23Z

fn periodic(hooks: Vec<zrelay_snapshot::Hook>) -> Snapshotting {
    Snapshotting::Periodic {
        prefix: "zrepl_".into(),
        interval: Duration::from_secs(600),
        hooks,
        timestamp_format: TimestampFormat::Dense,
        timestamp_location: "UTC".into(),
    }
}

fn clock() -> Arc<TokioClock> {
    Arc::new(TokioClock::starting_at(
        SystemTime::UNIX_EPOCH + Duration::from_secs(T),
    ))
}

/// `(fs, createtxg)` of every snapshot named `name`.
async fn snaps_named(zfs: &dyn Zfs, root: &str, name: &str) -> Vec<(String, u64)> {
    zfs.list(&ds(root))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|d| {
            let path = d.path.to_string();
            d.versions
                .into_iter()
                .filter(move |v| v.kind == VersionKind::Snapshot && v.name == name)
                .map(move |v| (path.clone(), v.createtxg))
        })
        .collect()
}

#[tokio::test]
async fn one_snapshot_call_per_pool() {
    let fake = fake_with(
        &["tank", "backup"],
        &[
            "tank/a",
            "tank/a/b",
            "tank/c",
            "tank/skip",
            "backup/x",
            "backup/x/y",
        ],
    )
    .await;
    let zfs = Recording::new(fake.clone());
    let f = filter(&[("tank<", true), ("tank/skip", false), ("backup/x<", true)]);
    let s = Snapshotter::new("job", f, periodic(vec![]), Arc::new(zfs.clone()))
        .unwrap()
        .with_clock(clock());
    let r = s.snapshot_now().await;
    assert!(r.ok(), "{r:#?}");
    assert_eq!(r.name, "zrepl_20240514_211623_000");
    assert_eq!(r.cause, RoundCause::OnDemand);
    assert_eq!(fake.calls(FakeOp::Snapshot), 2, "one call per pool");
    let calls = zfs.calls();
    assert_eq!(
        calls,
        vec![
            vec![
                "backup/x@zrepl_20240514_211623_000",
                "backup/x/y@zrepl_20240514_211623_000"
            ],
            vec![
                "tank@zrepl_20240514_211623_000",
                "tank/a@zrepl_20240514_211623_000",
                "tank/a/b@zrepl_20240514_211623_000",
                "tank/c@zrepl_20240514_211623_000",
            ],
        ]
    );
    // Atomic within a pool: every snapshot of a pool has the same txg.
    for pool in ["tank", "backup"] {
        let snaps = snaps_named(&zfs, pool, &r.name).await;
        let txgs: BTreeSet<u64> = snaps.iter().map(|(_, t)| *t).collect();
        assert_eq!(txgs.len(), 1, "{pool}: {snaps:?}");
    }
    let fss: Vec<String> = r.filesystems.iter().map(|f| f.fs.to_string()).collect();
    assert_eq!(
        fss,
        [
            "backup/x",
            "backup/x/y",
            "tank",
            "tank/a",
            "tank/a/b",
            "tank/c"
        ]
    );
    assert!(r
        .filesystems
        .iter()
        .all(|f| f.snapshotted && f.atomic && f.error.is_none()));
}

#[tokio::test]
async fn failed_atomic_call_falls_back_to_one_call_per_filesystem() {
    let fake = fake_with(&["tank"], &["tank/a", "tank/b"]).await;
    let zfs = Recording::new(fake.clone());
    // A snapshot of that name already exists on tank/b: the pool's call
    // fails, and each filesystem is retried alone.
    let s = Snapshotter::new(
        "job",
        filter(&[("tank<", true)]),
        periodic(vec![]),
        Arc::new(zfs.clone()),
    )
    .unwrap()
    .with_clock(clock());
    let name = s.snapshot_name_at(SystemTime::UNIX_EPOCH + Duration::from_secs(T));
    zfs.fake
        .snapshot(&[zrelay_zfs::SnapshotName::new(&ds("tank/b"), &name).unwrap()])
        .await
        .unwrap();
    fake.reset_calls();
    let r = s.snapshot_now().await;
    assert_eq!(
        fake.calls(FakeOp::Snapshot),
        4,
        "1 atomic + 3 single: {:?}",
        zfs.calls()
    );
    let by_fs = |p: &str| r.filesystems.iter().find(|f| f.fs.as_str() == p).unwrap();
    assert!(by_fs("tank").snapshotted && !by_fs("tank").atomic);
    assert!(by_fs("tank/a").snapshotted && !by_fs("tank/a").atomic);
    let b = by_fs("tank/b");
    assert!(!b.snapshotted && !b.ok);
    assert!(
        b.error.as_deref().unwrap().contains("already exists"),
        "{b:?}"
    );
    assert!(!r.ok());
}

#[tokio::test]
async fn injected_failure_is_reported_per_filesystem() {
    let fake = fake_with(&["tank"], &["tank/a"]).await;
    fake.fail_always(FakeOp::Snapshot, "pool is suspended");
    let s = Snapshotter::new(
        "job",
        filter(&[("tank<", true)]),
        periodic(vec![]),
        Arc::new(fake.clone()),
    )
    .unwrap();
    let r = s.snapshot_now().await;
    assert_eq!(r.filesystems.len(), 2);
    for f in &r.filesystems {
        assert!(!f.ok && !f.snapshotted);
        assert!(
            f.error.as_deref().unwrap().contains("pool is suspended"),
            "{f:?}"
        );
    }
    let st = s.status().borrow().clone();
    assert_eq!(st.last_report.as_ref(), Some(&r));
    assert!(st.last_error.unwrap().contains("could not be created"));
}

#[tokio::test]
async fn placeholders_and_volumes_are_snapshotted_missing_roots_skipped() {
    let fake = fake_with(&["tank"], &["tank/ph", "tank/ph/real"]).await;
    fake.set(&ds("tank/ph"), &[("zrepl:placeholder".into(), "on".into())])
        .await
        .unwrap();
    let listed = fake.list(&ds("tank")).await.unwrap();
    assert!(
        listed.iter().any(|d| d.placeholder),
        "fixture has a placeholder"
    );
    let f = filter(&[("tank/ph<", true), ("gone<", true)]);
    let s = Snapshotter::new("job", f, periodic(vec![]), Arc::new(fake.clone())).unwrap();
    let r = s.snapshot_now().await;
    assert!(r.ok(), "{r:#?}");
    let fss: Vec<&str> = r.filesystems.iter().map(|f| f.fs.as_str()).collect();
    assert_eq!(
        fss,
        ["tank/ph", "tank/ph/real"],
        "zrepl snapshots matched placeholders too"
    );
}

#[tokio::test]
async fn listing_errors_end_the_round() {
    let fake = fake_with(&["tank"], &[]).await;
    fake.fail_next(FakeOp::List, "zfs list exploded");
    let s = Snapshotter::new(
        "job",
        filter(&[("tank<", true)]),
        periodic(vec![]),
        Arc::new(fake.clone()),
    )
    .unwrap();
    let r = s.snapshot_now().await;
    assert!(
        r.error.as_deref().unwrap().contains("zfs list exploded"),
        "{r:?}"
    );
    assert!(r.filesystems.is_empty() && !r.ok());
    assert_eq!(fake.calls(FakeOp::Snapshot), 0);
}

#[tokio::test]
async fn manual_jobs_snapshot_on_demand_with_the_default_prefix() {
    let fake = fake_with(&["tank"], &[]).await;
    let s = Snapshotter::new(
        "job",
        filter(&[("tank<", true)]),
        Snapshotting::Manual,
        Arc::new(fake),
    )
    .unwrap()
    .with_clock(clock());
    let r = s.snapshot_now().await;
    assert_eq!(r.name, "zrepl_20240514_211623_000");
    assert!(r.ok());
}

#[tokio::test(start_paused = true)]
async fn report_serializes() {
    let fake = fake_with(&["tank"], &[]).await;
    let s = Snapshotter::new(
        "job",
        filter(&[("tank<", true)]),
        periodic(vec![]),
        Arc::new(fake),
    )
    .unwrap()
    .with_clock(clock());
    let r = s.snapshot_now().await;
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["started"], "2024-05-14T21:16:23Z");
    assert_eq!(json["cause"], "on_demand");
    assert_eq!(json["filesystems"][0]["fs"], "tank");
    assert_eq!(json["filesystems"][0]["ok"], true);
    let back: SnapshotReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
    let st = serde_json::to_value(&*s.status().borrow()).unwrap();
    assert_eq!(st["state"], "idle");
    assert_eq!(st["kind"], "periodic");
    let _ = HookStatus::Ok;
}

#[test]
fn configuration_problems_are_permanent_errors() {
    let bad_zone = Snapshotting::Cron {
        prefix: "zrepl_".into(),
        cron: "TZ=Nowhere/Town 0 * * * *".into(),
        hooks: vec![],
        timestamp_format: TimestampFormat::Dense,
        timestamp_location: "UTC".into(),
    };
    let fake = zrelay_fake::FakeZfs::new();
    let e =
        Snapshotter::new("job", filter(&[("tank<", true)]), bad_zone, Arc::new(fake)).unwrap_err();
    assert!(e.is_permanent());
    assert!(e.to_string().contains("unknown time zone"), "{e}");
}
