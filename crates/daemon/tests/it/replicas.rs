//! A push job's `replicas` rules (zrelay extension): a renamed source's
//! replica is renamed and the next step is incremental; a destroyed
//! source's replica waits out `delete_after`, shows in the dry run, and then
//! goes; a source no longer matched by `filesystems` is never touched; a
//! sink that did not opt in refuses.

use std::time::Duration;

use zrelay_daemon::control::Signal;
use zrelay_fake::FakeZfs;
use zrelay_replication::FsState;
use zrelay_zfs::api::DestroyTarget;
use zrelay_zfs::{DatasetPath, Zfs};

use crate::rig::{self, Opts};

fn jobs(listener: &str, filter: &str, sink_replicas: &str) -> String {
    format!(
        r#"jobs:
- type: sink
  name: sink
  root_fs: p/sink
  serve:
    type: local
    listener_name: {listener}
{sink_replicas}
- type: push
  name: push
  connect:
    type: local
    listener_name: {listener}
    client_identity: c1
  filesystems:
{filter}
  snapshotting:
    type: manual
  pruning:
    keep_sender:
    - type: last_n
      count: 10
    keep_receiver:
    - type: last_n
      count: 10
  replicas:
    follow_renames: true
    delete_after: 2s
"#
    )
}

const ALL: &str = "    \"p/data<\": true";
const NOT_C: &str = "    \"p/data<\": true\n    \"p/data/c\": false";
const ALLOW: &str = "  recv:\n    replicas:\n      rename: true\n      destroy: true";

fn p(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

async fn data(z: &FakeZfs) {
    z.create(&p("p/data"), &[]).await.unwrap();
    for fs in ["a", "b", "c"] {
        let fs = p(&format!("p/data/{fs}"));
        z.create(&fs, &[]).await.unwrap();
        z.write(&fs, 20_000).unwrap();
        rig::snap(z, &fs, "zrepl_1").await;
    }
}

async fn destroy_fs(z: &FakeZfs, fs: &str) {
    let path = p(fs);
    for v in z.list_versions(&path).await.unwrap() {
        let t = match v.kind {
            zrelay_zfs::name::VersionKind::Snapshot => {
                DestroyTarget::Snapshot(zrelay_zfs::SnapshotName::new(&path, &v.name).unwrap())
            }
            zrelay_zfs::name::VersionKind::Bookmark => DestroyTarget::Bookmark(
                zrelay_zfs::name::BookmarkName::new(&path, &v.name).unwrap(),
            ),
        };
        z.destroy(&t).await.unwrap();
    }
    z.destroy(&DestroyTarget::Dataset(path)).await.unwrap();
}

async fn exists(z: &FakeZfs, fs: &str) -> bool {
    z.guid(fs).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_replicas_follow_and_destroyed_ones_go_after_the_grace() {
    let (z, _) = rig::source_fs(1_000).await;
    data(&z).await;
    let dir = tempfile::tempdir().unwrap();
    let rig = rig::start(
        &z,
        dir.path(),
        &jobs("replicas1", ALL, ALLOW),
        Opts::default(),
    )
    .await;
    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let r = s.report.unwrap();
    assert!(r.succeeded(), "{r:#?}");
    for fs in ["a", "b", "c"] {
        assert_eq!(
            rig::snapshots(&z, &format!("p/sink/c1/p/data/{fs}")).await,
            ["zrepl_1"]
        );
    }
    rig.stop().await;

    // c leaves the filter; a is renamed; b is destroyed.
    let dir = tempfile::tempdir().unwrap();
    let rig = rig::start(
        &z,
        dir.path(),
        &jobs("replicas2", NOT_C, ALLOW),
        Opts::default(),
    )
    .await;
    z.rename(&p("p/data/a"), &p("p/data/a2")).await.unwrap();
    z.write(&p("p/data/a2"), 1_000).unwrap();
    rig::snap(&z, &p("p/data/a2"), "zrepl_2").await;
    destroy_fs(&z, "p/data/b").await;

    let s = rig.signal("push", Signal::Wakeup, true).await.unwrap();
    let report = s.report.unwrap();
    assert!(report.succeeded(), "{report:#?}");
    let a2 = report
        .filesystems
        .iter()
        .find(|f| f.fs == "p/data/a2")
        .unwrap();
    assert_eq!(a2.state, FsState::Done);
    assert!(
        a2.bytes_replicated < 10_000,
        "the renamed filesystem's step was not incremental: {a2:#?}"
    );
    assert_eq!(
        rig::snapshots(&z, "p/sink/c1/p/data/a2").await,
        ["zrepl_1", "zrepl_2"],
        "the replica was renamed, not received anew"
    );
    assert!(!exists(&z, "p/sink/c1/p/data/a").await);
    // b waits out its grace; c is left alone.
    assert!(exists(&z, "p/sink/c1/p/data/b").await);
    let (_, judged) = rig.jobs.prune("push", true).await.unwrap();
    let lines = &judged[0].replicas;
    let b = lines.iter().find(|l| l.fs == "p/data/b").unwrap();
    assert_eq!(b.action, "wait", "{lines:#?}");
    let c = lines.iter().find(|l| l.fs == "p/data/c").unwrap();
    assert_eq!(c.action, "keep", "{lines:#?}");

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (_, judged) = rig.jobs.prune("push", true).await.unwrap();
    let b = judged[0]
        .replicas
        .iter()
        .find(|l| l.fs == "p/data/b")
        .unwrap();
    assert_eq!((b.action.as_str(), b.done), ("destroy", false), "{b:#?}");
    assert!(
        exists(&z, "p/sink/c1/p/data/b").await,
        "a dry run destroyed the replica"
    );
    rig.signal("push", Signal::Wakeup, true).await.unwrap();
    assert!(!exists(&z, "p/sink/c1/p/data/b").await);
    assert_eq!(
        rig::snapshots(&z, "p/sink/c1/p/data/c").await,
        ["zrepl_1"],
        "an unmatched source's replica was touched"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_did_not_opt_in_refuses_and_keeps_its_replicas() {
    let (z, _) = rig::source_fs(1_000).await;
    data(&z).await;
    let dir = tempfile::tempdir().unwrap();
    let rig = rig::start(&z, dir.path(), &jobs("replicas3", ALL, ""), Opts::default()).await;
    rig.signal("push", Signal::Wakeup, true).await.unwrap();
    z.rename(&p("p/data/a"), &p("p/data/a2")).await.unwrap();
    destroy_fs(&z, "p/data/b").await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    rig.signal("push", Signal::Wakeup, true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (_, judged) = rig.jobs.prune("push", false).await.unwrap();
    let errors: Vec<String> = judged[0]
        .replicas
        .iter()
        .filter_map(|l| l.error.clone())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("recv.replicas.destroy is off")),
        "{judged:#?}"
    );
    assert!(exists(&z, "p/sink/c1/p/data/a").await);
    assert!(exists(&z, "p/sink/c1/p/data/b").await);
    rig.stop().await;
}
