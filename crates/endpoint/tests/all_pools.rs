//! zrepl's `"<": true` filter: the local sender lists every dataset of every
//! pool, minus what more specific rules exclude.

use std::sync::Arc;

use zrelay_endpoint::{FsFilter, JobId, LocalSender, SendOptions, Sender};
use zrelay_fake::{FakeOp, FakeZfs};
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

fn p(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

/// Pools `tank` and `backup` with a few filesystems, each with a snapshot.
async fn two_pools() -> Arc<FakeZfs> {
    let zfs = Arc::new(FakeZfs::new());
    zfs.add_pool("tank").unwrap();
    zfs.add_pool("backup").unwrap();
    for fs in [
        "tank/a",
        "tank/a/b",
        "tank/tmp",
        "tank/tmp/keep",
        "tank/tmp/x",
        "backup/c",
    ] {
        zfs.create(&p(fs), &[]).await.unwrap();
    }
    for fs in [
        "tank",
        "tank/a",
        "tank/a/b",
        "tank/tmp",
        "tank/tmp/keep",
        "tank/tmp/x",
        "backup",
        "backup/c",
    ] {
        let snap = SnapshotName::new(&p(fs), "s1").unwrap();
        zfs.snapshot(&[snap]).await.unwrap();
    }
    zfs
}

async fn listed(zfs: &Arc<FakeZfs>, rules: &[(&str, bool)]) -> Vec<String> {
    let sender = LocalSender::new(
        zfs.clone(),
        JobId::new("t").unwrap(),
        FsFilter::new(rules).unwrap(),
        SendOptions::default(),
    );
    let mut out: Vec<String> = sender
        .list_filesystems()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.path.to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn root_pattern_lists_every_pool() {
    let zfs = two_pools().await;
    let all = listed(&zfs, &[("<", true)]).await;
    assert_eq!(
        all,
        [
            "backup",
            "backup/c",
            "tank",
            "tank/a",
            "tank/a/b",
            "tank/tmp",
            "tank/tmp/keep",
            "tank/tmp/x"
        ]
    );
    // a pool added later is picked up by the next listing
    zfs.add_pool("new").unwrap();
    zfs.snapshot(&[SnapshotName::new(&p("new"), "s1").unwrap()])
        .await
        .unwrap();
    assert!(listed(&zfs, &[("<", true)]).await.contains(&"new".into()));
}

#[tokio::test]
async fn more_specific_rules_win_over_the_root_pattern() {
    let zfs = two_pools().await;
    let got = listed(
        &zfs,
        &[
            ("<", true),
            ("tank/tmp<", false),
            ("tank/tmp/keep", true),
            ("backup", false),
        ],
    )
    .await;
    assert_eq!(
        got,
        ["backup/c", "tank", "tank/a", "tank/a/b", "tank/tmp/keep"]
    );
}

#[tokio::test]
async fn a_pool_excluded_entirely_is_not_listed() {
    let zfs = two_pools().await;
    zfs.reset_calls();
    let got = listed(&zfs, &[("<", true), ("backup<", false)]).await;
    assert!(got.iter().all(|f| f.starts_with("tank")), "{got:?}");
    assert_eq!(zfs.calls(FakeOp::Pools), 1);
    assert_eq!(zfs.calls(FakeOp::List), 1, "only tank is listed");
    // named roots do not ask for the pools
    zfs.reset_calls();
    assert_eq!(
        listed(&zfs, &[("backup<", true)]).await,
        ["backup", "backup/c"]
    );
    assert_eq!(zfs.calls(FakeOp::Pools), 0);
}

#[tokio::test]
async fn a_failing_pool_listing_fails_the_listing() {
    let zfs = two_pools().await;
    zfs.fail_next(FakeOp::Pools, "zpool list broke");
    let sender = LocalSender::new(
        zfs.clone(),
        JobId::new("t").unwrap(),
        FsFilter::new(&[("<", true)]).unwrap(),
        SendOptions::default(),
    );
    let e = sender.list_filesystems().await.unwrap_err();
    assert!(e.to_string().contains("zpool list broke"), "{e}");
}
