//! Test helpers: a [`Zfs`] wrapper around [`FakeZfs`] that records every
//! `snapshot` call (and can run a callback inside it), fixtures, and hook
//! scripts.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use zrelay_endpoint::FsFilter;
use zrelay_fake::FakeZfs;
use zrelay_snapshot::{Hook, HookKind};
use zrelay_zfs::parse::{ListedDataset, ResumeTokenInfo, SendEstimate};
use zrelay_zfs::process::{RecvSink, SendStream};
use zrelay_zfs::{
    BookmarkName, DatasetPath, DestroyReport, DestroyTarget, PropertyValue, RecvArgs, Result,
    SnapshotName, ValidatedSendArgs, VersionRef, Zfs, ZfsVersion,
};

/// Runs inside `snapshot`, before the fake creates anything.
pub type OnSnapshot =
    Arc<dyn Fn(Vec<SnapshotName>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// [`FakeZfs`] plus a log of `snapshot` calls.
#[derive(Clone)]
pub struct Recording {
    pub fake: FakeZfs,
    /// Each `snapshot` call's full names, in call order.
    pub calls: Arc<Mutex<Vec<Vec<String>>>>,
    /// Also append `snapshot <names>` to this file (hooks log there too).
    pub event_log: Option<PathBuf>,
    pub on_snapshot: Option<OnSnapshot>,
}

impl Recording {
    pub fn new(fake: FakeZfs) -> Recording {
        Recording {
            fake,
            calls: Arc::default(),
            event_log: None,
            on_snapshot: None,
        }
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

pub fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[async_trait]
impl Zfs for Recording {
    async fn list(&self, root: &DatasetPath) -> Result<Vec<ListedDataset>> {
        self.fake.list(root).await
    }
    async fn list_depth1(&self, fs: &DatasetPath) -> Result<Vec<ListedDataset>> {
        self.fake.list_depth1(fs).await
    }
    async fn get(&self, name: &str, props: &[&str]) -> Result<BTreeMap<String, PropertyValue>> {
        self.fake.get(name, props).await
    }
    async fn set(&self, ds: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        self.fake.set(ds, props).await
    }
    async fn inherit(&self, ds: &DatasetPath, prop: &str) -> Result<()> {
        self.fake.inherit(ds, prop).await
    }
    async fn create(&self, fs: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        self.fake.create(fs, props).await
    }
    async fn snapshot(&self, snaps: &[SnapshotName]) -> Result<()> {
        let names: Vec<String> = snaps.iter().map(|s| s.to_string()).collect();
        self.calls.lock().unwrap().push(names.clone());
        if let Some(log) = &self.event_log {
            append(log, &format!("snapshot {}", names.join(" ")));
        }
        if let Some(cb) = &self.on_snapshot {
            cb(snaps.to_vec()).await;
        }
        self.fake.snapshot(snaps).await
    }
    async fn bookmark(&self, from: &VersionRef, guid: u64, bookmark: &BookmarkName) -> Result<()> {
        self.fake.bookmark(from, guid, bookmark).await
    }
    async fn hold(&self, snap: &SnapshotName, tag: &str) -> Result<()> {
        self.fake.hold(snap, tag).await
    }
    async fn release(&self, snap: &SnapshotName, tag: &str) -> Result<()> {
        self.fake.release(snap, tag).await
    }
    async fn holds(&self, snap: &SnapshotName) -> Result<Vec<String>> {
        self.fake.holds(snap).await
    }
    async fn destroy_snapshots(&self, fs: &DatasetPath, names: &[String]) -> Result<DestroyReport> {
        self.fake.destroy_snapshots(fs, names).await
    }
    async fn destroy(&self, target: &DestroyTarget) -> Result<()> {
        self.fake.destroy(target).await
    }
    async fn rollback(&self, snap: &SnapshotName) -> Result<()> {
        self.fake.rollback(snap).await
    }
    async fn rename(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        self.fake.rename(from, to).await
    }
    async fn resume_token_info(&self, token: &str) -> Result<ResumeTokenInfo> {
        self.fake.resume_token_info(token).await
    }
    async fn send_dry(&self, args: &ValidatedSendArgs) -> Result<SendEstimate> {
        self.fake.send_dry(args).await
    }
    async fn send(&self, args: &ValidatedSendArgs) -> Result<Box<dyn SendStream>> {
        self.fake.send(args).await
    }
    async fn recv(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>> {
        self.fake.recv(args).await
    }
    async fn recv_force_rollback(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>> {
        self.fake.recv_force_rollback(args).await
    }
    async fn recv_abort(&self, fs: &DatasetPath) -> Result<()> {
        self.fake.recv_abort(fs).await
    }
    async fn version(&self) -> Result<ZfsVersion> {
        self.fake.version().await
    }
}

pub fn ds(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

/// A fake with the given pools and filesystems (parents first).
pub async fn fake_with(pools: &[&str], fss: &[&str]) -> FakeZfs {
    let fake = FakeZfs::new();
    for p in pools {
        fake.add_pool(p).unwrap();
    }
    for f in fss {
        fake.create(&ds(f), &[]).await.unwrap();
    }
    fake
}

pub fn filter(entries: &[(&str, bool)]) -> FsFilter {
    FsFilter::new(entries).unwrap()
}

pub fn command_hook(path: &Path, filesystems: FsFilter, fatal: bool, timeout: Duration) -> Hook {
    Hook {
        kind: HookKind::Command {
            path: path.to_path_buf(),
        },
        timeout,
        filesystems,
        err_is_fatal: fatal,
    }
}

/// Write an executable `#!/bin/sh` script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
