//! A sending pool without `feature@bookmarks` is refused by name, with the
//! command that enables it; a pool that passed is not asked again.

use std::sync::Arc;

use zrelay_endpoint::{FsFilter, JobId, LocalSender, SendOptions, Sender};
use zrelay_fake::{FakeOp, FakeZfs};
use zrelay_zfs::error::{Classify, ErrorClass};
use zrelay_zfs::{DatasetPath, Zfs};

fn p(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

async fn world() -> (Arc<FakeZfs>, LocalSender) {
    let zfs = Arc::new(FakeZfs::new());
    zfs.add_pool("tank").unwrap();
    zfs.create(&p("tank/a"), &[]).await.unwrap();
    let sender = LocalSender::new(
        zfs.clone(),
        JobId::new("t").unwrap(),
        FsFilter::new(&[("tank<", true)]).unwrap(),
        SendOptions::default(),
    );
    (zfs, sender)
}

#[tokio::test]
async fn a_pool_without_bookmarks_is_refused_by_name_with_the_fix() {
    let (zfs, sender) = world().await;
    zfs.disable_pool_feature("tank", "bookmarks");
    let e = sender.list_filesystems().await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("pool 'tank' has feature@bookmarks disabled"),
        "{msg}"
    );
    assert!(
        msg.contains("zpool set feature@bookmarks=enabled tank"),
        "{msg}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(zfs.calls(FakeOp::List), 0, "nothing listed");
}

#[tokio::test]
async fn a_pool_that_passed_is_checked_once() {
    let (zfs, sender) = world().await;
    for _ in 0..3 {
        let l = sender.list_filesystems().await.unwrap();
        assert_eq!(l.len(), 2, "tank and tank/a");
    }
    assert_eq!(zfs.calls(FakeOp::PoolFeatures), 1);
}

#[tokio::test]
async fn an_unreadable_feature_list_does_not_block_replication() {
    let (zfs, sender) = world().await;
    zfs.fail_next(FakeOp::PoolFeatures, "zpool get broke");
    assert_eq!(sender.list_filesystems().await.unwrap().len(), 2);
}
