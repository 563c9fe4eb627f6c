//! A daemon over the fake ZFS, started from a YAML configuration.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zrelay_daemon::status::JobStatus;
use zrelay_daemon::{Daemon, Jobs, Policy};
use zrelay_fake::FakeZfs;
use zrelay_snapshot::Clock;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

/// A running daemon.
pub struct Rig {
    pub jobs: Arc<Jobs>,
    pub cancel: CancellationToken,
    pub done: tokio::task::JoinHandle<()>,
}

/// Options of [`start`].
#[derive(Default)]
pub struct Opts {
    pub clock: Option<Arc<dyn Clock>>,
    pub policy: Option<Policy>,
    /// More lines under `global:` (indented by two spaces).
    pub global: String,
}

/// Start a daemon on `zfs` with `jobs_yaml` (the `jobs:` list); its history
/// lives in `dir`.
pub async fn start(zfs: &Arc<FakeZfs>, dir: &Path, jobs_yaml: &str, opts: Opts) -> Rig {
    let yaml = format!(
        "global:\n  history:\n    path: {}\n{}{jobs_yaml}",
        dir.join("history.sqlite").display(),
        opts.global
    );
    let config = zrelay_config::parse_str(&yaml, &dir.join("zrelay.yml"))
        .unwrap_or_else(|e| panic!("config: {e}\n{yaml}"));
    let mut d = Daemon::new(config, zfs.clone()).without_control_socket();
    if let Some(c) = opts.clock {
        d = d.with_clock(c);
    }
    if let Some(p) = opts.policy {
        d = d.with_policy(p);
    }
    let cancel = CancellationToken::new();
    let running = d.start(cancel.clone()).await.expect("daemon starts");
    Rig {
        jobs: running.jobs,
        cancel,
        done: running.done,
    }
}

impl Rig {
    /// The status of `job`.
    pub fn job(&self, job: &str) -> JobStatus {
        self.jobs
            .statuses()
            .into_iter()
            .find(|s| s.name == job)
            .unwrap_or_else(|| panic!("no job {job}"))
    }

    /// Wait (at most `secs` of tokio time) until `f` holds for `job`.
    pub async fn wait_for(
        &self,
        job: &str,
        secs: u64,
        f: impl Fn(&JobStatus) -> bool,
    ) -> JobStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.job(job);
            if f(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting on job {job}: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Signal `job`, failing the test if no answer comes within a minute.
    pub async fn signal(
        &self,
        job: &str,
        signal: zrelay_daemon::control::Signal,
        wait: bool,
    ) -> Result<zrelay_daemon::status::Signalled, zrelay_daemon::DaemonError> {
        tokio::time::timeout(Duration::from_secs(60), self.jobs.signal(job, signal, wait))
            .await
            .unwrap_or_else(|_| panic!("no answer to {signal:?} of {job} within 60s"))
    }

    /// The status of the chore `name`.
    pub fn chore(&self, name: &str) -> zrelay_daemon::status::ChoreStatus {
        self.jobs
            .daemon_status()
            .chores
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no chore {name}"))
    }

    /// Stop the daemon and wait for it.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.done.await.expect("daemon task");
    }
}

/// A fake ZFS with pool `p`, `p/sink` and `p/src` holding `bytes` of data
/// and snapshot `p/src@zrepl_1`.
pub async fn source_fs(bytes: u64) -> (Arc<FakeZfs>, DatasetPath) {
    let z = Arc::new(FakeZfs::new());
    let pool = z.add_pool("p").unwrap();
    let src = pool.child("src").unwrap();
    z.create(&src, &[]).await.unwrap();
    z.create(&pool.child("sink").unwrap(), &[]).await.unwrap();
    z.write(&src, bytes).unwrap();
    snap(&z, &src, "zrepl_1").await;
    (z, src)
}

/// An executable shell script `dir/name` running `body`; its path.
pub fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// Take `fs@name`.
pub async fn snap(z: &FakeZfs, fs: &DatasetPath, name: &str) {
    z.snapshot(&[SnapshotName::new(fs, name).unwrap()])
        .await
        .unwrap();
}

/// The snapshot names of `fs`, oldest first.
pub async fn snapshots(z: &FakeZfs, fs: &str) -> Vec<String> {
    let Ok(fs) = DatasetPath::parse(fs) else {
        return Vec::new();
    };
    match z.list_versions(&fs).await {
        Ok(v) => v
            .into_iter()
            .filter(|v| v.kind == zrelay_zfs::name::VersionKind::Snapshot)
            .map(|v| v.name)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Every hold tag on the snapshots of `fs`.
pub async fn holds(z: &FakeZfs, fs: &str) -> Vec<(String, Vec<String>)> {
    let path = DatasetPath::parse(fs).unwrap();
    let mut out = Vec::new();
    for name in snapshots(z, fs).await {
        let s = SnapshotName::new(&path, &name).unwrap();
        out.push((name, z.holds(&s).await.unwrap()));
    }
    out
}

/// A push job `name` of `p/src` to the local sink listener `listener`,
/// manual snapshotting, plus `extra` lines (at the job's indentation).
pub fn push_job(name: &str, listener: &str, extra: &str) -> String {
    format!(
        r#"- type: push
  name: {name}
  connect:
    type: local
    listener_name: {listener}
    client_identity: c1
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
{extra}"#
    )
}

/// A sink job `name` into `p/sink`, listening as `listener`.
pub fn sink_job(name: &str, listener: &str) -> String {
    format!(
        r#"- type: sink
  name: {name}
  root_fs: p/sink
  serve:
    type: local
    listener_name: {listener}
"#
    )
}

/// The configuration of a push/sink pair in one daemon.
pub fn pair(listener: &str, push_extra: &str) -> String {
    format!(
        "jobs:\n{}{}",
        sink_job("sink", listener),
        push_job("push", listener, push_extra)
    )
}

/// Where the pair receives `p/src`.
pub const RECEIVED: &str = "p/sink/c1/p/src";
