//! Shared by the driver tests: a recording sender, a fake world, the
//! test config and an observer that records events.
#![allow(dead_code, unused_imports)]

pub use std::sync::{Arc, Mutex};
pub use std::time::{Duration, Instant};

pub use async_trait::async_trait;
pub use tokio_util::sync::CancellationToken;
pub use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsFilter, FsListing, FsVersion, JobId,
    LocalReceiver, LocalSender, PrepareReq, Receiver, RecvOptions, SendOptions, Sender, StepReq,
};
pub use zrelay_fake::FakeZfs;
pub use zrelay_planner::InitialPolicy;
pub use zrelay_replication::{AttemptState, Driver, DriverConfig, FsState, Report};
pub use zrelay_testing::faults::{FaultySender, SenderFaults};
pub use zrelay_zfs::process::SendStream;
pub use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

/// Records the order of `send` calls.
pub struct Recording {
    pub inner: Arc<dyn Sender>,
    pub order: Mutex<Vec<String>>,
    /// Destroyed just before the next `prepare` (another job's pruning
    /// racing the planning).
    pub doomed: Mutex<Option<(Arc<FakeZfs>, DatasetPath, String)>>,
    /// Destroyed just before the next `send`.
    pub doomed_at_send: Mutex<Option<(Arc<FakeZfs>, DatasetPath, String)>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn Sender>) -> Recording {
        Recording {
            inner,
            order: Mutex::new(Vec::new()),
            doomed: Mutex::new(None),
            doomed_at_send: Mutex::new(None),
        }
    }
}

#[async_trait]
impl Sender for Recording {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }
    async fn estimate(
        &self,
        steps: &[StepReq],
        c: usize,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::Result<u64>>> {
        self.inner.estimate(steps, c).await
    }
    async fn prepare(
        &self,
        r: &[PrepareReq],
    ) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        let doomed = self.doomed.lock().unwrap().take();
        if let Some((zfs, fs, name)) = doomed {
            zfs.destroy_snapshots(&fs, &[name]).await.unwrap();
        }
        self.inner.prepare(r).await
    }
    async fn send(&self, step: &StepReq) -> zrelay_endpoint::Result<Box<dyn SendStream>> {
        let fs = step.fs.last_component().to_string();
        self.order
            .lock()
            .unwrap()
            .push(format!("{fs}@{}", step.to.name));
        let doomed = self.doomed_at_send.lock().unwrap().take();
        if let Some((zfs, fs, name)) = doomed {
            zfs.destroy_snapshots(&fs, &[name]).await.unwrap();
        }
        self.inner.send(step).await
    }
    async fn commit(&self, r: &[CommitReq]) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        self.inner.commit(r).await
    }
    async fn abort(
        &self,
        f: &[DatasetPath],
    ) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        self.inner.abort(f).await
    }
    async fn list_versions(&self, fs: &DatasetPath) -> zrelay_endpoint::Result<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }
    async fn replication_cursor(
        &self,
        fs: &DatasetPath,
    ) -> zrelay_endpoint::Result<Option<FsVersion>> {
        self.inner.replication_cursor(fs).await
    }
    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snaps: &[String],
    ) -> zrelay_endpoint::Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, snaps).await
    }
    fn describe(&self) -> String {
        "recording".into()
    }
}

pub struct World {
    pub zfs: Arc<FakeZfs>,
    pub src: DatasetPath,
    pub dst: DatasetPath,
}

impl World {
    pub async fn new(fss: &[&str]) -> World {
        let zfs = Arc::new(FakeZfs::new());
        let pool = zfs.add_pool("pool").unwrap();
        let src = pool.child("src").unwrap();
        let dst = pool.child("dst").unwrap();
        zfs.create(&src, &[]).await.unwrap();
        zfs.create(&dst, &[]).await.unwrap();
        for f in fss {
            zfs.create(&src.child(f).unwrap(), &[]).await.unwrap();
        }
        World { zfs, src, dst }
    }

    pub async fn snap(&self, fs: &str, name: &str) {
        let fs = self.src.child(fs).unwrap();
        self.zfs.write(&fs, 100_000).unwrap();
        self.zfs
            .snapshot(&[SnapshotName::new(&fs, name).unwrap()])
            .await
            .unwrap();
    }

    pub fn sender(&self) -> Arc<dyn Sender> {
        Arc::new(LocalSender::new(
            self.zfs.clone(),
            JobId::new("t").unwrap(),
            FsFilter::subtree(&self.src),
            SendOptions::default(),
        ))
    }

    pub fn receiver(&self) -> Arc<dyn Receiver> {
        Arc::new(LocalReceiver::new(
            self.zfs.clone(),
            JobId::new("t").unwrap(),
            self.dst.clone(),
            RecvOptions::default(),
        ))
    }
}

pub fn cfg() -> DriverConfig {
    DriverConfig {
        initial: InitialPolicy::All,
        max_attempts: 1,
        max_step_tries: 3,
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        ..DriverConfig::default()
    }
}

pub fn state_of<'a>(r: &'a Report, fs: &str) -> &'a zrelay_replication::FsReport {
    r.filesystems
        .iter()
        .find(|f| f.fs.ends_with(&format!("/{fs}")))
        .unwrap_or_else(|| panic!("{fs} not in report {r:#?}"))
}

/// Records observer events as strings.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<String>>);

impl zrelay_replication::Observer for Events {
    fn attempt_started(&self, n: u32) {
        self.0.lock().unwrap().push(format!("attempt {n}"));
    }
    fn attempt_finished(&self, n: u32, state: AttemptState, error: Option<&str>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("attempt {n} {} {error:?}", state.as_str()));
    }
    fn step_started(&self, fs: &str, step: &zrelay_replication::StepReport) -> u64 {
        let mut g = self.0.lock().unwrap();
        g.push(format!(
            "start {} {}",
            fs.rsplit('/').next().unwrap(),
            step.to
        ));
        g.len() as u64
    }
    fn step_finished(&self, id: u64, _fs: &str, bytes: u64, end: zrelay_replication::StepEnd) {
        let ok = matches!(end, zrelay_replication::StepEnd::Completed);
        self.0
            .lock()
            .unwrap()
            .push(format!("end {id} ok={ok} moved={}", bytes > 0));
    }
}
