//! `zrelay-fake`: [`FakeZfs`], an in-memory [`Zfs`] for tests.
//!
//! Invariants:
//! - The fake behaves like `zrelay_zfs::RealZfs` on OpenZFS 2.3 closely
//!   enough to pass the same behavioural suite (`zrelay_testing::conformance`,
//!   run against the fake by `cargo test -p zrelay-testing` and against real
//!   OpenZFS by `zrelay-platformtest`).
//! - Only test code depends on this crate: production crates list it under
//!   `[dev-dependencies]` at most, so it is never part of the release
//!   binary. It depends on `zrelay-zfs` alone and uses only its public API.
//!
//! Model:
//! - Pools are added with [`FakeZfs::add_pool`]; filesystems, snapshots and
//!   bookmarks are created through the [`Zfs`] trait. Every change happens in a
//!   new txg (a snapshot of several filesystems shares one); GUIDs come from a
//!   deterministic PRNG and are unique per instance.
//! - Each filesystem has a data counter advanced by [`FakeZfs::write`]; a
//!   snapshot records it, so a full send carries the snapshot's data and an
//!   incremental one what was written between `from` and `to`.
//! - Send streams use the fake format (a header line per
//!   snapshot, verifiable filler, a trailer): only a [`FakeZfs`] can receive them.
//!   Interrupted resumable receives leave a `receive_resume_token` on the target
//!   (a brand-new filesystem appears without snapshots), and `send` with the
//!   token resumes where the receive stopped.
//! - Faults: [`FakeZfs::fail_next`] and friends make an operation fail with
//!   [`ZfsError::Injected`]; [`FakeZfs::fail_send_at_byte`] and
//!   [`FakeZfs::fail_recv_at_byte`] cut the next stream. [`FakeZfs::calls`]
//!   counts calls per operation.
//!
//! The state sits behind a std mutex that is never held across an `.await`.

mod props;
mod recv;
mod send;
mod sink;
mod state;
mod stream;
#[cfg(test)]
mod tests;
mod versions;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use zrelay_zfs::api::{
    DestroyReport, DestroyTarget, PropertyValue, RecvArgs, VersionRef, Zfs, ZfsVersion,
};
use zrelay_zfs::error::{Result, ZfsError};
use zrelay_zfs::name::{BookmarkName, DatasetPath, SnapshotName};
use zrelay_zfs::parse::{ListedDataset, ResumeTokenInfo, SendEstimate};
use zrelay_zfs::process::{RecvSink, SendStream};
use zrelay_zfs::send_args::ValidatedSendArgs;

use state::State;

/// The operations of [`Zfs`], for call counting and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FakeOp {
    /// [`Zfs::list`].
    List,
    /// [`Zfs::list_depth1`] (also behind [`Zfs::list_versions`]).
    ListDepth1,
    /// [`Zfs::get`] (also behind [`Zfs::guid`]).
    Get,
    /// [`Zfs::set`].
    Set,
    /// [`Zfs::inherit`].
    Inherit,
    /// [`Zfs::create`].
    Create,
    /// [`Zfs::snapshot`].
    Snapshot,
    /// [`Zfs::bookmark`].
    Bookmark,
    /// [`Zfs::hold`].
    Hold,
    /// [`Zfs::release`].
    Release,
    /// [`Zfs::holds`].
    Holds,
    /// [`Zfs::destroy_snapshots`].
    DestroySnapshots,
    /// [`Zfs::destroy`] (also behind [`Zfs::destroy_idempotent`]).
    Destroy,
    /// [`Zfs::rollback`].
    Rollback,
    /// [`Zfs::rename`].
    Rename,
    /// [`Zfs::resume_token_info`].
    ResumeTokenInfo,
    /// [`Zfs::send_dry`].
    SendDry,
    /// [`Zfs::send`].
    Send,
    /// [`Zfs::recv`] and [`Zfs::recv_force_rollback`].
    Recv,
    /// [`Zfs::recv_force_rollback`] only.
    RecvForceRollback,
    /// [`Zfs::recv_abort`].
    RecvAbort,
    /// [`Zfs::version`].
    Version,
    /// [`Zfs::pools`].
    Pools,
    /// [`Zfs::pool_features`].
    PoolFeatures,
}

/// Makes the error of an injected fault.
type MakeError = Arc<dyn Fn() -> ZfsError + Send + Sync>;

/// A pending fault: `op` fails `remaining` more times (`None`: always).
#[derive(Clone)]
pub(crate) struct Fault {
    op: FakeOp,
    remaining: Option<u64>,
    make: MakeError,
}

/// Lock the shared state, ignoring poisoning (a panicking test must not hide others).
pub(crate) fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seeds of successive instances, so two fakes in one test never share GUIDs.
static NEXT_SEED: AtomicU64 = AtomicU64::new(0x5eed);

/// An in-memory ZFS; clones share the same pools.
#[derive(Clone)]
pub struct FakeZfs {
    shared: Arc<Mutex<State>>,
}

impl Default for FakeZfs {
    fn default() -> Self {
        FakeZfs::new()
    }
}

impl std::fmt::Debug for FakeZfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.shared);
        f.debug_struct("FakeZfs")
            .field("txg", &st.txg)
            .field("datasets", &st.datasets.len())
            .finish()
    }
}

/// The pool features the fake knows (all active unless disabled).
const FAKE_POOL_FEATURES: &[&str] = &[
    "async_destroy",
    "bookmarks",
    "bookmark_v2",
    "encryption",
    "extensible_dataset",
];

impl FakeZfs {
    /// Set `feature` of `pool` to `disabled` (as `zpool create -d` leaves it).
    pub fn disable_pool_feature(&self, pool: &str, feature: &str) {
        self.with(|st| {
            st.disabled_features
                .insert((pool.to_string(), feature.to_string()))
        });
    }

    /// A fake without pools, with GUIDs distinct from other instances'.
    pub fn new() -> Self {
        FakeZfs::with_seed(NEXT_SEED.fetch_add(0x1_0000_0000, Ordering::Relaxed))
    }

    /// A fake whose GUIDs are derived from `seed` (reproducible runs).
    pub fn with_seed(seed: u64) -> Self {
        FakeZfs {
            shared: Arc::new(Mutex::new(State::new(seed))),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.shared))
    }

    /// Count a call of each of `ops` and fire the first pending fault for one of them.
    fn enter(&self, ops: &[FakeOp]) -> Result<()> {
        self.with(|st| {
            for op in ops {
                *st.calls.entry(*op).or_default() += 1;
            }
            let i = st.faults.iter().position(|f| ops.contains(&f.op))?;
            let make = st.faults[i].make.clone();
            match &mut st.faults[i].remaining {
                Some(n) if *n <= 1 => {
                    st.faults.remove(i);
                }
                Some(n) => *n -= 1,
                None => {}
            }
            Some(make)
        })
        .map_or(Ok(()), |make| Err(make()))
    }

    /// Create pool `name` (its root filesystem).
    ///
    /// # Errors
    /// An invalid or nested name, or a pool that exists.
    pub fn add_pool(&self, name: &str) -> Result<DatasetPath> {
        self.with(|st| st.add_pool(name))
    }

    /// Write `nbytes` of new data into filesystem `fs` (it shows up in the next
    /// snapshot and in the size of sends that include it).
    ///
    /// # Errors
    /// A missing, read-only or partially received filesystem.
    pub fn write(&self, fs: &DatasetPath, nbytes: u64) -> Result<()> {
        self.with(|st| st.write(fs, nbytes))
    }

    /// Load (`true`) or unload the key of encryption root `fs`.
    ///
    /// # Errors
    /// `fs` is missing or not an encryption root.
    pub fn set_key_loaded(&self, fs: &DatasetPath, loaded: bool) -> Result<()> {
        self.with(|st| match st.ds_mut(fs)?.enc.as_mut() {
            Some(e) => {
                e.loaded = loaded;
                Ok(())
            }
            None => Err(state::cmd_err(
                format!("zfs load-key {fs}"),
                format!("Key load error: '{fs}' is not an encryption root"),
            )),
        })
    }

    /// What [`Zfs::version`] reports (default `zfs-2.3.2-fake`).
    pub fn set_version(&self, version: ZfsVersion) {
        self.with(|st| st.version = version);
    }

    /// Whether a filesystem, snapshot or bookmark (full name) exists.
    pub fn exists(&self, name: &str) -> bool {
        self.with(|st| st.get(name, &["guid"]).is_ok())
    }

    /// The current txg.
    pub fn txg(&self) -> u64 {
        self.with(|st| st.txg)
    }

    /// Make the next call of `op` fail with [`ZfsError::Injected`]`(message)`.
    pub fn fail_next(&self, op: FakeOp, message: impl Into<String>) {
        self.fail_times(op, 1, message);
    }

    /// Make the next `times` calls of `op` fail with [`ZfsError::Injected`]`(message)`.
    pub fn fail_times(&self, op: FakeOp, times: u64, message: impl Into<String>) {
        let message = message.into();
        self.push_fault(
            op,
            Some(times),
            Arc::new(move || ZfsError::Injected(message.clone())),
        );
    }

    /// Make every call of `op` fail with [`ZfsError::Injected`]`(message)` until [`FakeZfs::clear_faults`].
    pub fn fail_always(&self, op: FakeOp, message: impl Into<String>) {
        let message = message.into();
        self.push_fault(
            op,
            None,
            Arc::new(move || ZfsError::Injected(message.clone())),
        );
    }

    /// Make the next call of `op` fail with the error `make` returns (e.g. a
    /// `Command` error classified `Busy`).
    pub fn fail_next_with(&self, op: FakeOp, make: impl Fn() -> ZfsError + Send + Sync + 'static) {
        self.push_fault(op, Some(1), Arc::new(make));
    }

    /// Make every call of `op` fail with the error `make` returns until
    /// [`FakeZfs::clear_faults`].
    pub fn fail_always_with(
        &self,
        op: FakeOp,
        make: impl Fn() -> ZfsError + Send + Sync + 'static,
    ) {
        self.push_fault(op, None, Arc::new(make));
    }

    fn push_fault(&self, op: FakeOp, remaining: Option<u64>, make: MakeError) {
        if remaining != Some(0) {
            self.with(|st| {
                st.faults.push(Fault {
                    op,
                    remaining,
                    make,
                })
            });
        }
    }

    /// Forget all pending faults, including stream cuts.
    pub fn clear_faults(&self) {
        self.with(|st| {
            st.faults.clear();
            st.send_fail_at = None;
            st.recv_fail_at = None;
        });
    }

    /// The next send stream fails with a read error (carrying
    /// [`ZfsError::Injected`]) after producing `n` bytes.
    pub fn fail_send_at_byte(&self, n: u64) {
        self.with(|st| st.send_fail_at = Some(n));
    }

    /// The next receive stops accepting input after `n` bytes, as if `zfs recv`
    /// died: writes fail, resumable state is kept, and `finish` returns
    /// [`ZfsError::Injected`].
    pub fn fail_recv_at_byte(&self, n: u64) {
        self.with(|st| st.recv_fail_at = Some(n));
    }

    /// Calls of every operation so far (failed calls included).
    pub fn total_calls(&self) -> u64 {
        self.with(|st| st.calls.values().sum())
    }

    /// How often `op` was called (failed calls included).
    pub fn calls(&self, op: FakeOp) -> u64 {
        self.with(|st| st.calls.get(&op).copied().unwrap_or(0))
    }

    /// Reset all call counters.
    pub fn reset_calls(&self) {
        self.with(|st| st.calls.clear());
    }

    fn start_recv(&self, args: &RecvArgs, force: bool) -> Box<dyn RecvSink> {
        let fail_at = self.with(|st| st.recv_fail_at.take());
        Box::new(sink::FakeRecvSink::new(
            self.shared.clone(),
            args.clone(),
            force,
            fail_at,
        ))
    }
}

#[async_trait]
impl Zfs for FakeZfs {
    async fn list(&self, root: &DatasetPath) -> Result<Vec<ListedDataset>> {
        self.enter(&[FakeOp::List])?;
        self.with(|st| st.list(root, false))
    }

    async fn list_depth1(&self, fs: &DatasetPath) -> Result<Vec<ListedDataset>> {
        self.enter(&[FakeOp::ListDepth1])?;
        self.with(|st| st.list(fs, true))
    }

    async fn pools(&self) -> Result<Vec<DatasetPath>> {
        self.enter(&[FakeOp::Pools])?;
        // the dataset map is ordered, so the pools come sorted
        Ok(self.with(|st| {
            st.datasets
                .keys()
                .filter(|d| d.is_pool())
                .cloned()
                .collect()
        }))
    }

    async fn pool_features(&self, pool: &str) -> Result<zrelay_zfs::parse::PoolFeatures> {
        self.enter(&[FakeOp::PoolFeatures])?;
        use zrelay_zfs::parse::FeatureState;
        self.with(|st| {
            if !st
                .datasets
                .keys()
                .any(|d| d.is_pool() && d.as_str() == pool)
            {
                return Err(ZfsError::DatasetDoesNotExist {
                    path: pool.to_string(),
                });
            }
            Ok(FAKE_POOL_FEATURES
                .iter()
                .map(|f| {
                    let off = st
                        .disabled_features
                        .contains(&(pool.to_string(), f.to_string()));
                    let state = if off {
                        FeatureState::Disabled
                    } else {
                        FeatureState::Active
                    };
                    (f.to_string(), state)
                })
                .collect())
        })
    }

    async fn get(&self, name: &str, props: &[&str]) -> Result<BTreeMap<String, PropertyValue>> {
        self.enter(&[FakeOp::Get])?;
        let map = self.with(|st| st.get(name, props))?;
        Ok(map
            .into_iter()
            .map(|(k, (value, source))| (k, PropertyValue { value, source }))
            .collect())
    }

    async fn set(&self, ds: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        self.enter(&[FakeOp::Set])?;
        self.with(|st| st.set(ds, props))
    }

    async fn inherit(&self, ds: &DatasetPath, prop: &str) -> Result<()> {
        self.enter(&[FakeOp::Inherit])?;
        self.with(|st| st.inherit(ds, prop))
    }

    async fn create(&self, fs: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        self.enter(&[FakeOp::Create])?;
        self.with(|st| st.create(fs, props))
    }

    async fn snapshot(&self, snaps: &[SnapshotName]) -> Result<()> {
        self.enter(&[FakeOp::Snapshot])?;
        self.with(|st| st.snapshot(snaps))
    }

    async fn bookmark(&self, from: &VersionRef, guid: u64, bookmark: &BookmarkName) -> Result<()> {
        self.enter(&[FakeOp::Bookmark])?;
        self.with(|st| st.bookmark(from, guid, bookmark))
    }

    async fn hold(&self, snap: &SnapshotName, tag: &str) -> Result<()> {
        self.enter(&[FakeOp::Hold])?;
        self.with(|st| st.hold(snap, tag))
    }

    async fn release(&self, snap: &SnapshotName, tag: &str) -> Result<()> {
        self.enter(&[FakeOp::Release])?;
        self.with(|st| st.release(snap, tag));
        Ok(())
    }

    async fn holds(&self, snap: &SnapshotName) -> Result<Vec<String>> {
        self.enter(&[FakeOp::Holds])?;
        self.with(|st| st.holds(snap))
    }

    async fn destroy_snapshots(&self, fs: &DatasetPath, names: &[String]) -> Result<DestroyReport> {
        self.enter(&[FakeOp::DestroySnapshots])?;
        self.with(|st| st.destroy_snapshots(fs, names))
    }

    async fn destroy(&self, target: &DestroyTarget) -> Result<()> {
        self.enter(&[FakeOp::Destroy])?;
        self.with(|st| st.destroy(target))
    }

    async fn rename(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        self.enter(&[FakeOp::Rename])?;
        self.with(|st| st.rename(from, to))
    }

    async fn rollback(&self, snap: &SnapshotName) -> Result<()> {
        self.enter(&[FakeOp::Rollback])?;
        self.with(|st| st.rollback(snap))
    }

    async fn resume_token_info(&self, token: &str) -> Result<ResumeTokenInfo> {
        self.enter(&[FakeOp::ResumeTokenInfo])?;
        send::token_info(token)
    }

    async fn send_dry(&self, args: &ValidatedSendArgs) -> Result<SendEstimate> {
        self.enter(&[FakeOp::SendDry])?;
        let records = self.with(|st| st.plan_send(args))?;
        Ok(SendEstimate {
            size: records.iter().map(|h| h.size - h.offset).sum(),
        })
    }

    async fn send(&self, args: &ValidatedSendArgs) -> Result<Box<dyn SendStream>> {
        self.enter(&[FakeOp::Send])?;
        let (records, fail_at) =
            self.with(|st| st.plan_send(args).map(|r| (r, st.send_fail_at.take())))?;
        let what = format!("zfs send {}", args.args().to.0);
        Ok(Box::new(stream::FakeSendStream::new(
            &records, fail_at, what,
        )))
    }

    async fn recv(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>> {
        self.enter(&[FakeOp::Recv])?;
        Ok(self.start_recv(args, false))
    }

    async fn recv_force_rollback(&self, args: &RecvArgs) -> Result<Box<dyn RecvSink>> {
        self.enter(&[FakeOp::Recv, FakeOp::RecvForceRollback])?;
        Ok(self.start_recv(args, true))
    }

    async fn recv_abort(&self, fs: &DatasetPath) -> Result<()> {
        self.enter(&[FakeOp::RecvAbort])?;
        self.with(|st| st.recv_abort(fs))
    }

    async fn version(&self) -> Result<ZfsVersion> {
        self.enter(&[FakeOp::Version])?;
        Ok(self.with(|st| st.version.clone()))
    }
}
