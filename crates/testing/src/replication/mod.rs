//! The replication engine's behavioural suite, named after zrepl's
//! `Replication*` platform tests. Every case runs against the in-memory fake
//! (`cargo test -p zrelay-replication`) and against real OpenZFS
//! (`zrelay-platformtest`), through the same [`Fixture`] trait.
//!
//! Invariant: cases use only the [`Zfs`] trait, the local endpoints, the
//! driver and the fault-injecting wrappers of [`crate::faults`]; nothing here knows
//! whether ZFS is real.

mod cases_abstractions;
mod cases_initial;
mod cases_placeholder;
mod cases_resume;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{
    FsFilter, JobId, LocalReceiver, LocalSender, Receiver, RecvOptions, SendOptions, Sender,
};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::Version;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use crate::check;
use zrelay_replication::{Driver, DriverConfig, Report};

/// What a case runs against.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The ZFS under test.
    fn zfs(&self) -> Arc<dyn Zfs>;
    /// An existing, empty filesystem for the case (its name contains a space).
    fn root(&self) -> &DatasetPath;
    /// Put `bytes` of incompressible data into the mounted filesystem `fs`.
    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String>;
    /// Create `fs` as an encryption root with a key the fixture keeps loaded.
    async fn create_encrypted(&self, fs: &DatasetPath) -> Result<(), String>;
    /// Put a run's endpoints behind a transport (e.g. RPC) before the
    /// driver (and any fault wrapper) gets them; identity by default.
    fn wrap_endpoints(
        &self,
        sender: Arc<dyn Sender>,
        receiver: Arc<dyn Receiver>,
    ) -> (Arc<dyn Sender>, Arc<dyn Receiver>) {
        (sender, receiver)
    }
}

/// A case's outcome: `Err` says what was wrong.
pub type Outcome = Result<(), String>;

/// A case body.
pub type CaseFn = for<'a> fn(&'a dyn Fixture) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// One named case.
pub struct Case {
    /// zrepl's name for it, or a descriptive one for zrelay's own.
    pub name: &'static str,
    /// The body.
    pub run: CaseFn,
}

/// Turn any error into the case's error, with context (the ZFS-layer
/// suite's helper, under this suite's name).
pub use crate::conformance::CaseResult as Ctx;

macro_rules! case {
    ($name:literal, $f:path) => {
        $crate::replication::Case {
            name: $name,
            run: |fx| Box::pin($f(fx)),
        }
    };
}
pub(crate) use case;

/// Every case of the suite.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(cases_initial::cases());
    v.extend(cases_abstractions::cases());
    v.extend(cases_resume::cases());
    v.extend(cases_placeholder::cases());
    v
}

/// The job name every case uses.
pub const JOB: &str = "platformtest";

/// The job id of [`JOB`].
pub fn job() -> JobId {
    JobId::new(JOB).expect("valid job name")
}

/// Sender tree, receiver root.
pub struct Setup {
    /// `root/sender`: the cases put their sender filesystems here.
    pub src: DatasetPath,
    /// `root/receiver`: the receiver root.
    pub dst: DatasetPath,
}

impl Setup {
    /// Create `root/sender` and `root/receiver`.
    pub async fn new(fx: &dyn Fixture) -> Result<Setup, String> {
        let src = fx.root().child("sender").ctx("name")?;
        let dst = fx.root().child("receiver").ctx("name")?;
        fx.zfs().create(&src, &[]).await.ctx("create sender root")?;
        fx.zfs()
            .create(&dst, &[])
            .await
            .ctx("create receiver root")?;
        Ok(Setup { src, dst })
    }

    /// `src/<rel>`.
    pub fn s(&self, rel: &str) -> DatasetPath {
        self.src.join_relative(rel).expect("valid test path")
    }

    /// Where `fs` (a sender filesystem) is received: `dst/<fs>`.
    pub fn r(&self, fs: &DatasetPath) -> DatasetPath {
        self.dst.join(fs.components()).expect("valid test path")
    }
}

/// Wraps a sender (fault injection).
pub type WrapSender = Arc<dyn Fn(Arc<dyn Sender>) -> Arc<dyn Sender> + Send + Sync>;
/// Wraps a receiver (fault injection).
pub type WrapReceiver = Arc<dyn Fn(Arc<dyn Receiver>) -> Arc<dyn Receiver> + Send + Sync>;

/// How a case replicates.
#[derive(Clone)]
pub struct Run {
    /// Driver settings (tests default to one attempt, one try, short waits).
    pub cfg: DriverConfig,
    /// Sender options.
    pub send: SendOptions,
    /// Receiver options.
    pub recv: RecvOptions,
    /// Replicate this subtree (default: the setup's `src`).
    pub from: Option<DatasetPath>,
    /// Receive under this root (default: the setup's `dst`).
    pub to: Option<DatasetPath>,
    /// Wrap the sender (fault injection).
    pub wrap_sender: Option<WrapSender>,
    /// Wrap the receiver (fault injection).
    pub wrap_receiver: Option<WrapReceiver>,
    /// The run's cancellation token.
    pub cancel: CancellationToken,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            cfg: DriverConfig {
                max_attempts: 1,
                max_step_tries: 1,
                retry_initial: Duration::from_millis(10),
                retry_max: Duration::from_millis(50),
                planning_retry: Duration::from_millis(10),
                commit_window: Duration::from_secs(60),
                ..DriverConfig::default()
            },
            send: SendOptions::default(),
            recv: RecvOptions::default(),
            from: None,
            to: None,
            wrap_sender: None,
            wrap_receiver: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// A local sender of the subtree `from`, for `job`.
pub fn local_sender(
    fx: &dyn Fixture,
    job: JobId,
    from: &DatasetPath,
    send: &SendOptions,
) -> Arc<LocalSender> {
    Arc::new(LocalSender::new(
        fx.zfs(),
        job,
        FsFilter::subtree(from),
        send.clone(),
    ))
}

/// A local receiver into `to`, for `job`.
pub fn local_receiver(
    fx: &dyn Fixture,
    job: JobId,
    to: &DatasetPath,
    recv: &RecvOptions,
) -> Arc<LocalReceiver> {
    Arc::new(LocalReceiver::new(fx.zfs(), job, to.clone(), recv.clone()))
}

impl Run {
    /// The unwrapped endpoints of this run ([`JOB`], `from`/`to` or the setup's roots).
    pub fn endpoints(
        &self,
        fx: &dyn Fixture,
        setup: &Setup,
    ) -> (Arc<LocalSender>, Arc<LocalReceiver>) {
        let from = self.from.clone().unwrap_or_else(|| setup.src.clone());
        let to = self.to.clone().unwrap_or_else(|| setup.dst.clone());
        (
            local_sender(fx, job(), &from, &self.send),
            local_receiver(fx, job(), &to, &self.recv),
        )
    }
}

/// Replicate with fresh endpoints and return the final report.
pub async fn replicate(fx: &dyn Fixture, setup: &Setup, run: &Run) -> Report {
    let (s, r) = run.endpoints(fx, setup);
    let (mut sender, mut receiver) = fx.wrap_endpoints(s, r);
    if let Some(w) = &run.wrap_sender {
        sender = w(sender);
    }
    if let Some(w) = &run.wrap_receiver {
        receiver = w(receiver);
    }
    drive(&run.cfg, sender, receiver, &run.cancel).await
}

/// Replicate between the given endpoints (e.g. reused from an earlier run,
/// with their caches) and return the final report.
pub async fn replicate_with(
    fx: &dyn Fixture,
    cfg: &DriverConfig,
    sender: Arc<dyn Sender>,
    receiver: Arc<dyn Receiver>,
    cancel: &CancellationToken,
) -> Report {
    let (sender, receiver) = fx.wrap_endpoints(sender, receiver);
    drive(cfg, sender, receiver, cancel).await
}

/// Run the driver over the given (already wrapped) endpoints.
async fn drive(
    cfg: &DriverConfig,
    sender: Arc<dyn Sender>,
    receiver: Arc<dyn Receiver>,
    cancel: &CancellationToken,
) -> Report {
    let driver = Driver::new(cfg.clone(), sender, receiver, cancel.clone());
    tokio::time::timeout(Duration::from_secs(600), driver.run())
        .await
        .unwrap_or_else(|_| panic!("replication did not finish within 10 minutes"))
}

/// Fail unless the report says every filesystem replicated.
pub fn expect_success(r: &Report) -> Outcome {
    if r.succeeded() {
        return Ok(());
    }
    let failed: Vec<String> = r
        .filesystems
        .iter()
        .filter_map(|f| f.last_error.as_ref().map(|e| format!("{}: {e}", f.fs)))
        .collect();
    Err(format!(
        "replication failed (state {:?}, planning error {:?}): {}",
        r.state,
        r.planning_error,
        failed.join("; ")
    ))
}

/// The report line of `fs`.
pub fn fs_report<'a>(
    r: &'a Report,
    fs: &DatasetPath,
) -> Result<&'a zrelay_replication::FsReport, String> {
    r.filesystems
        .iter()
        .find(|f| f.fs == fs.as_str())
        .ok_or_else(|| format!("no report for {fs} in {:?}", r.filesystems))
}

/// Create a filesystem.
pub async fn create(fx: &dyn Fixture, fs: &DatasetPath) -> Outcome {
    fx.zfs().create(fs, &[]).await.ctx(&format!("create {fs}"))
}

/// Write some data and take snapshot `fs@name`.
pub async fn snap(fx: &dyn Fixture, fs: &DatasetPath, name: &str, bytes: usize) -> Outcome {
    if bytes > 0 {
        fx.write(fs, bytes).await.ctx(&format!("write into {fs}"))?;
    }
    let s = SnapshotName::new(fs, name).ctx("snapshot name")?;
    fx.zfs()
        .snapshot(&[s])
        .await
        .ctx(&format!("snapshot {fs}@{name}"))
}

/// The versions of `fs`, oldest first.
pub async fn versions(fx: &dyn Fixture, fs: &DatasetPath) -> Result<Vec<Version>, String> {
    fx.zfs()
        .list_versions(fs)
        .await
        .ctx(&format!("list versions of {fs}"))
}

/// The snapshot names of `fs`, oldest first.
pub async fn snapshot_names(fx: &dyn Fixture, fs: &DatasetPath) -> Result<Vec<String>, String> {
    Ok(versions(fx, fs)
        .await?
        .into_iter()
        .filter(|v| v.kind == VersionKind::Snapshot)
        .map(|v| v.name)
        .collect())
}

/// The bookmark names of `fs`.
pub async fn bookmark_names(fx: &dyn Fixture, fs: &DatasetPath) -> Result<Vec<String>, String> {
    Ok(versions(fx, fs)
        .await?
        .into_iter()
        .filter(|v| v.kind == VersionKind::Bookmark)
        .map(|v| v.name)
        .collect())
}

/// The GUID of `fs@name`.
pub async fn guid(fx: &dyn Fixture, fs: &DatasetPath, name: &str) -> Result<u64, String> {
    fx.zfs()
        .guid(&format!("{fs}@{name}"))
        .await
        .ctx(&format!("guid of {fs}@{name}"))
}

/// Every `(snapshot, tag)` hold under `root` (recursively) whose tag starts with `prefix`.
pub async fn holds_with_prefix(
    fx: &dyn Fixture,
    root: &DatasetPath,
    prefix: &str,
) -> Result<Vec<(String, String)>, String> {
    let zfs = fx.zfs();
    let listed = zfs.list(root).await.ctx(&format!("list {root}"))?;
    let mut out = Vec::new();
    for d in listed {
        for v in d
            .versions
            .iter()
            .filter(|v| v.kind == VersionKind::Snapshot)
        {
            if v.userrefs.unwrap_or(0) == 0 {
                continue;
            }
            let s = SnapshotName::new(&d.path, &v.name).ctx("name")?;
            for t in zfs.holds(&s).await.ctx(&format!("holds of {s}"))? {
                if t.starts_with(prefix) {
                    out.push((s.to_string(), t));
                }
            }
        }
    }
    Ok(out)
}

/// Fail if any zrelay/zrepl step hold is left under `root`.
pub async fn expect_no_step_holds(fx: &dyn Fixture, root: &DatasetPath) -> Outcome {
    let leaked = holds_with_prefix(fx, root, "zrepl_STEP").await?;
    check!(leaked.is_empty(), "leaked step holds: {leaked:?}");
    Ok(())
}

/// Every `(snapshot, tag)` hold under `root` whose tag is exactly `tag`.
pub async fn holds_tagged(
    fx: &dyn Fixture,
    root: &DatasetPath,
    tag: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut all = holds_with_prefix(fx, root, tag).await?;
    all.retain(|(_, t)| t == tag);
    Ok(all)
}

/// The `receive_resume_token` of `fs`, `None` when it has none (or does not exist).
pub async fn resume_token(fx: &dyn Fixture, fs: &DatasetPath) -> Result<Option<String>, String> {
    match fx.zfs().get(fs.as_str(), &["receive_resume_token"]).await {
        Ok(p) => Ok(p
            .get("receive_resume_token")
            .map(|v| v.value.clone())
            .filter(|v| v != "-" && !v.is_empty())),
        Err(e) if e.is_does_not_exist() => Ok(None),
        Err(e) => Err(format!("get receive_resume_token of {fs}: {e}")),
    }
}

/// Wait (up to 30 s) for a `receive_resume_token` on `fs`: a killed `zfs
/// recv` is reaped in the background, so its partial state may appear late.
pub async fn wait_resume_token(fx: &dyn Fixture, fs: &DatasetPath) -> Result<String, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = resume_token(fx, fs).await? {
            return Ok(t);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no receive_resume_token on {fs} after 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `fs` is a placeholder: `zrepl:placeholder` set locally to `on`.
pub async fn is_placeholder(fx: &dyn Fixture, fs: &DatasetPath) -> Result<bool, String> {
    let p = fx
        .zfs()
        .get(
            fs.as_str(),
            &[zrelay_endpoint::abstractions::PLACEHOLDER_PROPERTY],
        )
        .await
        .ctx(&format!("get placeholder property of {fs}"))?;
    Ok(p.get(zrelay_endpoint::abstractions::PLACEHOLDER_PROPERTY)
        .is_some_and(|v| v.value == "on" && v.source == "local"))
}

/// Whether the dataset (or snapshot, bookmark) `name` exists.
pub async fn exists(fx: &dyn Fixture, name: &str) -> Result<bool, String> {
    match fx.zfs().guid(name).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_does_not_exist() => Ok(false),
        Err(e) => Err(format!("guid of {name}: {e}")),
    }
}

/// The `last_error` of `fs` in `r`, or an empty string.
pub fn fs_error(r: &Report, fs: &DatasetPath) -> Result<String, String> {
    Ok(fs_report(r, fs)?.last_error.clone().unwrap_or_default())
}
