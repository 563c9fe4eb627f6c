//! One push job, three targets (zrelay extension `targets`): every target
//! has its own cursor; a dead target is skipped and backs off while the
//! others replicate; the sender keeps what a lagging target still needs;
//! a target that comes back catches up incrementally from its own cursor.

use std::time::Duration;

use zrelay_daemon::control::Signal;
use zrelay_daemon::jobs::health::Health;
use zrelay_daemon::status::{JobStatus, TargetStatus};
use zrelay_replication::FsState;
use zrelay_zfs::Zfs;

use crate::rig::{self, Opts};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tcp_sink(port: u16) -> String {
    format!(
        r#"jobs:
- type: sink
  name: sink_b
  root_fs: p/sb
  serve:
    type: tcp
    listen: "127.0.0.1:{port}"
    clients: {{
      "127.0.0.1": "c1"
    }}
"#
    )
}

fn fan_out_jobs(port_b: u16, port_dead: u16) -> String {
    format!(
        r#"jobs:
- type: sink
  name: sink_a
  root_fs: p/sa
  serve:
    type: local
    listener_name: la
- type: push
  name: fan
  targets:
  - name: a
    connect:
      type: local
      listener_name: la
      client_identity: c1
  - name: b
    connect:
      type: tcp
      address: "127.0.0.1:{port_b}"
      dial_timeout: 1s
  - name: dead
    connect:
      type: tcp
      address: "127.0.0.1:{port_dead}"
      dial_timeout: 1s
  fan_out:
    health_check_interval: 100ms
    health_check_timeout: 1s
    backoff_start: 1s
    backoff_max: 8s
  filesystems:
    "p/src": true
  snapshotting:
    type: manual
  pruning:
    keep_sender:
    - type: not_replicated
    keep_receiver:
    - type: last_n
      count: 10
"#
    )
}

fn target<'a>(s: &'a JobStatus, name: &str) -> &'a TargetStatus {
    s.targets
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}: {s:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_skips_a_dead_target_and_a_returning_one_catches_up() {
    let (z, src) = rig::source_fs(20_000).await;
    for root in ["sa", "sb"] {
        let p = zrelay_zfs::DatasetPath::parse(&format!("p/{root}")).unwrap();
        z.create(&p, &[]).await.unwrap();
    }
    let (port_b, port_dead) = (free_port(), free_port());
    let dir_b = tempfile::tempdir().unwrap();
    let sink_b = rig::start(&z, dir_b.path(), &tcp_sink(port_b), Opts::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let rig = rig::start(
        &z,
        dir.path(),
        &fan_out_jobs(port_b, port_dead),
        Opts::default(),
    )
    .await;

    // The dead target is found unhealthy by the first health checks.
    rig.wait_for("fan", 20, |s| {
        target(s, "dead").health.health == Health::Unhealthy
            && target(s, "a").health.health == Health::Healthy
            && target(s, "b").health.health == Health::Healthy
    })
    .await;

    let wake = || async {
        let s = rig.signal("fan", Signal::Wakeup, true).await.unwrap();
        assert_eq!(s.targets.len(), 3, "{s:#?}");
        s
    };
    let s = wake().await;
    for t in ["a", "b"] {
        let w = s.targets.iter().find(|w| w.target == t).unwrap();
        let r = w.report.as_ref().unwrap_or_else(|| panic!("{t}: {w:#?}"));
        assert!(
            r.filesystems.iter().all(|f| f.state == FsState::Done),
            "{t}: {r:#?}"
        );
    }
    let dead = s.targets.iter().find(|w| w.target == "dead").unwrap();
    assert!(
        dead.skipped.as_deref().unwrap_or("").contains("unhealthy"),
        "{dead:#?}"
    );
    assert_eq!(rig::snapshots(&z, "p/sa/c1/p/src").await, ["zrepl_1"]);
    assert_eq!(rig::snapshots(&z, "p/sb/c1/p/src").await, ["zrepl_1"]);
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
    assert!(b.iter().any(|n| n.ends_with("_J_fan:a")), "{b:?}");
    assert!(b.iter().any(|n| n.ends_with("_J_fan:b")), "{b:?}");
    assert!(!b.iter().any(|n| n.contains("_J_fan:dead")), "{b:?}");

    // The dead target's backoff grows with every wakeup that finds it down.
    let first = target(&rig.job("fan"), "dead").health.failures;
    wake().await;
    let st = rig.job("fan");
    let d = target(&st, "dead");
    assert!(d.health.failures > first, "{d:#?}");
    assert!(d.health.backoff_seconds >= 2, "{d:#?}");

    // b goes down; a goes on alone, and the sender keeps what b lacks.
    sink_b.stop().await;
    rig.wait_for("fan", 20, |s| {
        target(s, "b").health.health == Health::Unhealthy
    })
    .await;
    rig::snap(&z, &src, "zrepl_2").await;
    rig::snap(&z, &src, "zrepl_3").await;
    let s = wake().await;
    let a = s.targets.iter().find(|w| w.target == "a").unwrap();
    assert!(a.report.as_ref().unwrap().succeeded(), "{a:#?}");
    let kept: Vec<String> = a
        .pruning
        .iter()
        .flat_map(|p| p.filesystems.iter())
        .flat_map(|f| f.kept.iter().map(|k| format!("{k:?}")))
        .collect();
    assert!(
        kept.iter().any(|k| k.contains("target b of this job")),
        "{kept:#?}"
    );
    assert_eq!(
        rig::snapshots(&z, "p/sa/c1/p/src").await,
        ["zrepl_1", "zrepl_2", "zrepl_3"]
    );
    let on_sender = rig::snapshots(&z, "p/src").await;
    assert!(
        on_sender.contains(&"zrepl_2".to_string()),
        "b has not received zrepl_2: {on_sender:?}"
    );

    // b comes back: its lane runs by itself, incrementally from b's cursor.
    let dir_b2 = tempfile::tempdir().unwrap();
    let sink_b = rig::start(&z, dir_b2.path(), &tcp_sink(port_b), Opts::default()).await;
    let st = rig
        .wait_for("fan", 30, |s| {
            let b = target(s, "b");
            b.invocations >= 2
                && b.last.as_ref().is_some_and(|r| {
                    r.filesystems
                        .iter()
                        .all(|f| f.state == FsState::Done && f.steps_done > 0)
                })
        })
        .await;
    let r = target(&st, "b").last.clone().unwrap();
    let f = &r.filesystems[0];
    assert_eq!(f.steps_done, 2, "{f:#?}");
    assert_eq!(
        rig::snapshots(&z, "p/sb/c1/p/src").await,
        ["zrepl_1", "zrepl_2", "zrepl_3"]
    );
    assert_eq!(target(&st, "b").health.failures, 0);
    for (snap, tags) in rig::holds(&z, "p/src").await {
        assert!(
            !tags.iter().any(|t| t.starts_with("zrepl_STEP")),
            "{snap}: {tags:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    rig.stop().await;
    sink_b.stop().await;
}
