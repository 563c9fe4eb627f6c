//! One source, two pullers (`per_client_cursors`, zrepl #380): each puller
//! has its own cursor, and one puller's pruning never destroys what the
//! other has not received.

use zrelay_daemon::control::Signal;
use zrelay_replication::FsState;
use zrelay_zfs::Zfs;

use crate::rig::{self, Opts};

fn pull_job(name: &str, client: &str, root: &str) -> String {
    format!(
        r#"- type: pull
  name: {name}
  connect:
    type: local
    listener_name: pullers
    client_identity: {client}
  root_fs: {root}
  interval: manual
  pruning:
    keep_sender:
    - type: not_replicated
    keep_receiver:
    - type: last_n
      count: 10
"#
    )
}

#[tokio::test]
async fn two_pullers_keep_their_own_cursors_and_stay_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let (z, src) = rig::source_fs(20_000).await;
    for root in ["pa", "pb"] {
        let p = zrelay_zfs::DatasetPath::parse(&format!("p/{root}")).unwrap();
        z.create(&p, &[]).await.unwrap();
    }
    let jobs = format!(
        r#"jobs:
- type: source
  name: src
  per_client_cursors: true
  serve:
    type: local
    listener_name: pullers
  filesystems:
    "p/src": true
  snapshotting:
    type: manual
{}{}"#,
        pull_job("pull_a", "a", "p/pa"),
        pull_job("pull_b", "b", "p/pb")
    );
    let rig = rig::start(&z, dir.path(), &jobs, Opts::default()).await;
    let pull = |job: &'static str| {
        let rig = &rig;
        async move {
            let s = rig.signal(job, Signal::Wakeup, true).await.unwrap();
            let r = s.report.unwrap();
            assert!(
                r.filesystems.iter().all(|f| f.state == FsState::Done),
                "{job}: {r:#?}"
            );
            (r, s.pruning)
        }
    };
    pull("pull_a").await;
    pull("pull_b").await;
    let bookmarks = || async {
        z.list_versions(&src)
            .await
            .unwrap()
            .into_iter()
            .filter(|v| v.kind == zrelay_zfs::name::VersionKind::Bookmark)
            .map(|v| v.name)
            .collect::<Vec<_>>()
    };
    let b = bookmarks().await;
    assert!(b.iter().any(|n| n.ends_with("_J_src:a")), "{b:?}");
    assert!(b.iter().any(|n| n.ends_with("_J_src:b")), "{b:?}");

    // Three rounds: a pulls every round, b only after the last.
    for round in 2..=4 {
        z.write(&src, 5_000).unwrap();
        rig::snap(&z, &src, &format!("zrepl_{round}")).await;
        let (_, pruning) = pull("pull_a").await;
        if round >= 3 {
            // a's not_replicated would destroy zrepl_2 (behind a's cursor);
            // b has not received it: it is kept, naming b
            let sender = &pruning[0];
            let kept: Vec<_> = sender.filesystems.iter().flat_map(|f| &f.kept).collect();
            assert!(
                kept.iter()
                    .any(|(n, why)| n == "zrepl_2" && why.iter().any(|w| w.contains("client b"))),
                "round {round}: {sender:#?}"
            );
        }
    }
    let (r, _) = pull("pull_b").await;
    let fs = &r.filesystems[0];
    assert_eq!((fs.state, fs.steps_done), (FsState::Done, 3), "{r:#?}");
    let a = rig::snapshots(&z, "p/pa/p/src").await;
    let b = rig::snapshots(&z, "p/pb/p/src").await;
    for n in ["zrepl_2", "zrepl_3", "zrepl_4"] {
        assert!(
            a.contains(&n.to_string()) && b.contains(&n.to_string()),
            "a {a:?} b {b:?}"
        );
    }
    // b went on incrementally from its own cursor: its first snapshot is
    // still the one of its first (full) step
    assert_eq!(b.first().map(String::as_str), Some("zrepl_1"), "{b:?}");
    rig.stop().await;
}
