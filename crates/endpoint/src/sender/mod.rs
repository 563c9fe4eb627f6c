//! The local sender: serves the filesystems of a filter from the ZFS layer,
//! and owns this job's step holds and cursor bookmarks on them.
//!
//! It remembers, per filesystem, the versions of its last listing and which
//! snapshots carry its step hold, so that protecting and committing a batch of
//! filesystems costs a fixed number of `zfs` commands (one per operation kind),
//! not a number per filesystem.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use tracing::{debug, warn};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::{DatasetKind, Version};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::{
    DatasetPath, SendArgs, SendFlags, SnapshotName, ValidatedSendArgs, Zfs, ZfsError,
};

mod cache;
mod protect;
pub mod siblings;

use cache::ValidationCache;

use crate::abstractions::{parse_bookmark, parse_hold_tag, AbstractionKind, JobId};
use crate::error::{EndpointError, Result};
use crate::filter::FsFilter;
use crate::traits::Sender;
use crate::types::{
    BatchResult, CommitReq, DestroyOutcome, FsListing, FsVersion, PrepareReq, StepReq,
};

/// zrepl's `send` options of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// `send.encrypted`: send only encrypted filesystems, always raw.
    pub encrypted: bool,
    /// The other flags (`raw`, `send_properties`, …).
    pub flags: SendFlags,
}

/// What the sender knows about one filesystem.
#[derive(Debug, Default, Clone)]
struct FsState {
    versions: Vec<Version>,
    /// Snapshots (short names) known to carry this job's step hold.
    step_held: BTreeSet<String>,
    /// Whether `step_held` was checked against `zfs holds` since the listing.
    holds_known: bool,
}

impl FsState {
    /// This job's newest replication cursor (v2).
    fn cursor<'a>(&'a self, job: &'a JobId) -> Option<&'a Version> {
        self.job_bookmarks(job)
            .filter(|(k, _)| *k == AbstractionKind::CursorV2)
            .max_by_key(|(_, v)| v.createtxg)
            .map(|(_, v)| v)
    }

    fn job_bookmarks<'a>(
        &'a self,
        job: &'a JobId,
    ) -> impl Iterator<Item = (AbstractionKind, &'a Version)> + 'a {
        self.versions.iter().filter_map(move |v| {
            if v.kind != VersionKind::Bookmark {
                return None;
            }
            let p = parse_bookmark(&v.name)?;
            (p.job.as_deref() == Some(job.as_str())).then_some((p.kind, v))
        })
    }
}

/// A sender over the local ZFS.
pub struct LocalSender {
    zfs: Arc<dyn Zfs>,
    job: JobId,
    filter: FsFilter,
    send: SendOptions,
    state: Mutex<HashMap<DatasetPath, FsState>>,
    /// Send arguments validated for the size estimates, reused by `send` for
    /// the identical step within [`VALIDATION_TTL`]; at most
    /// [`VALIDATION_CACHE_MAX`] entries (the oldest go first).
    validated: Mutex<ValidationCache<ValidatedSendArgs>>,
    /// With per-client cursors or fan-out targets, this sender's siblings,
    /// whose unreceived snapshots destroys keep.
    siblings: Option<siblings::Siblings>,
    /// The sending pools whose feature flags passed.
    pools: crate::pool_features::PoolChecks,
}

/// How long a validation done for a size estimate is reused for the send.
pub const VALIDATION_TTL: Duration = Duration::from_secs(600);

/// The most validations kept for reuse (a client estimating many steps it never sends
/// costs at most this many entries).
pub const VALIDATION_CACHE_MAX: usize = 4096;

fn step_key(step: &StepReq) -> String {
    format!(
        "{}|{:?}|{}|{}|{:?}",
        step.fs,
        step.from.as_ref().map(|f| (f.rel_name(), f.guid)),
        step.to.name,
        step.to.guid,
        step.resume_token
    )
}

impl LocalSender {
    /// A sender of the filesystems `filter` admits, for job `job`.
    pub fn new(zfs: Arc<dyn Zfs>, job: JobId, filter: FsFilter, send: SendOptions) -> Self {
        LocalSender {
            zfs,
            job,
            filter,
            send,
            state: Mutex::new(HashMap::new()),
            validated: Mutex::new(ValidationCache::new(VALIDATION_CACHE_MAX, VALIDATION_TTL)),
            siblings: None,
            pools: Default::default(),
        }
    }

    /// This sender serves one client of a source job with per-client
    /// cursors, or one target of a fan-out push job; a destroy keeps what
    /// its siblings have not received ([`siblings::needed_by_siblings`]).
    pub fn with_siblings(mut self, siblings: siblings::Siblings) -> Self {
        self.siblings = Some(siblings);
        self
    }

    fn check_allowed(&self, fs: &DatasetPath) -> Result<()> {
        if self.filter.matches(fs) {
            Ok(())
        } else {
            Err(EndpointError::NotAllowed {
                fs: fs.to_string(),
                reason: "not matched by this job's filesystems filter".into(),
            })
        }
    }

    fn send_args(&self, step: &StepReq) -> Result<SendArgs> {
        self.check_allowed(&step.fs)?;
        let fs = &step.fs;
        let bad = |e: zrelay_zfs::name::NameError| EndpointError::InvalidRequest(e.to_string());
        if !step.to.is_snapshot() {
            return Err(EndpointError::InvalidRequest(format!(
                "step `to` must be a snapshot, got {}",
                step.to.full_name(fs)
            )));
        }
        let to = SnapshotName::new(fs, &step.to.name).map_err(bad)?;
        let from = match &step.from {
            None => None,
            Some(f) => Some((f.version_ref(fs).map_err(bad)?, f.guid)),
        };
        Ok(SendArgs {
            fs: fs.clone(),
            from,
            to: (to, step.to.guid),
            encrypted: self.send.encrypted,
            flags: self.send.flags.clone(),
            resume_token: step.resume_token.clone(),
            intermediates: false,
        })
    }

    /// The cached state of `fs`, listing it when unknown.
    async fn state_of(&self, fs: &DatasetPath) -> Result<FsState> {
        if let Some(s) = self.state.lock().unwrap().get(fs) {
            return Ok(s.clone());
        }
        let st = self.fresh_state(fs).await?;
        self.state.lock().unwrap().insert(fs.clone(), st.clone());
        Ok(st)
    }

    /// The state of `fs` from a new listing of its versions.
    async fn fresh_state(&self, fs: &DatasetPath) -> Result<FsState> {
        let versions = self
            .zfs
            .list_versions(fs)
            .await
            .map_err(|e| EndpointError::zfs(format!("list versions of {fs}"), e))?;
        Ok(FsState {
            versions,
            ..FsState::default()
        })
    }

    fn zfs_err(what: &str, e: ZfsError) -> EndpointError {
        EndpointError::zfs(what.to_string(), e)
    }
}

/// A send's error. A snapshot of the step that no longer exists was
/// destroyed after planning (another job's pruning; with
/// `guarantee_incremental_replication` a step's `to` carries no hold), so
/// the next attempt plans again.
fn send_err(what: &str, e: ZfsError) -> EndpointError {
    match e {
        ZfsError::DatasetDoesNotExist { .. } => EndpointError::Vanished(format!("{what}: {e}")),
        e => EndpointError::zfs(what.to_string(), e),
    }
}

#[async_trait]
impl Sender for LocalSender {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut fresh = HashMap::new();
        let roots = self
            .filter
            .roots_on(&*self.zfs)
            .await
            .map_err(|e| EndpointError::zfs("list the pools", e))?;
        for root in roots {
            self.pools
                .check(&*self.zfs, root.pool(), crate::pool_features::SENDER_NEEDS)
                .await?;
            let listed = match self.zfs.list(&root).await {
                Ok(l) => l,
                Err(e) if e.is_does_not_exist() => {
                    warn!(%root, "filesystems filter names a dataset that does not exist");
                    continue;
                }
                Err(e) => return Err(EndpointError::zfs(format!("list {root}"), e)),
            };
            for d in listed {
                if !self.filter.matches(&d.path) || !seen.insert(d.path.clone()) {
                    continue;
                }
                let snapshots = d
                    .versions
                    .iter()
                    .filter(|v| v.kind == VersionKind::Snapshot);
                if d.placeholder && snapshots.count() == 0 {
                    debug!(fs = %d.path, "skipping placeholder without snapshots");
                    continue;
                }
                let st = FsState {
                    versions: d.versions.clone(),
                    ..FsState::default()
                };
                let cursor_guid = st.cursor(&self.job).map(|v| v.guid);
                out.push(FsListing {
                    path: d.path.clone(),
                    placeholder: false,
                    encrypted: d.encryption.is_some(),
                    resume: None,
                    cursor_guid,
                    versions: d.versions.iter().map(FsVersion::from).collect(),
                });
                let _ = d.kind == DatasetKind::Volume;
                fresh.insert(d.path, st);
            }
        }
        *self.state.lock().unwrap() = fresh;
        Ok(out)
    }

    async fn estimate(&self, steps: &[StepReq], concurrency: usize) -> Result<Vec<Result<u64>>> {
        let valid = self.validate_steps(steps).await?;
        if concurrency == 0 {
            return Ok(steps
                .iter()
                .zip(valid)
                .map(|(step, v)| {
                    v?.size_hint().ok_or_else(|| {
                        EndpointError::InvalidRequest(format!(
                            "no size from the properties of {step}"
                        ))
                    })
                })
                .collect());
        }
        type Fut<'a> =
            std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64>> + Send + 'a>>;
        let futs: Vec<Fut<'_>> = steps
            .iter()
            .zip(valid)
            .map(|(step, v)| Box::pin(self.estimate_one(step, v)) as Fut<'_>)
            .collect();
        Ok(stream::iter(futs)
            .buffered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await)
    }

    async fn prepare(&self, reqs: &[PrepareReq]) -> Result<BatchResult<EndpointError>> {
        self.prepare_impl(reqs).await
    }

    async fn send(&self, step: &StepReq) -> Result<Box<dyn SendStream>> {
        let what = format!("send {step}");
        let cached = self.validated.lock().unwrap().take(&step_key(step));
        let valid = match cached {
            Some(v) => v,
            None => self
                .send_args(step)?
                .validate(self.zfs.as_ref())
                .await
                .map_err(|e| send_err(&what, e))?,
        };
        self.zfs.send(&valid).await.map_err(|e| send_err(&what, e))
    }

    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        self.commit_impl(reqs).await
    }

    async fn abort(&self, fss: &[DatasetPath]) -> Result<BatchResult<EndpointError>> {
        self.abort_impl(fss).await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>> {
        self.check_allowed(fs)?;
        crate::versions::list(self.zfs.as_ref(), fs).await
    }

    async fn replication_cursor(&self, fs: &DatasetPath) -> Result<Option<FsVersion>> {
        self.check_allowed(fs)?;
        let st = self.fresh_state(fs).await?;
        Ok(st.cursor(&self.job).map(FsVersion::from))
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome> {
        self.check_allowed(fs)?;
        let mut kept = Vec::new();
        let mut names = snapshots.to_vec();
        if let Some(sib) = &self.siblings {
            let versions = self.list_versions(fs).await?;
            let needed = siblings::needed_by_siblings(&versions, &self.job, sib);
            names.retain(|n| match needed.get(n) {
                Some(why) => {
                    kept.push((n.clone(), why.clone()));
                    false
                }
                None => true,
            });
        }
        let out = crate::versions::destroy(self.zfs.as_ref(), fs, &names).await;
        self.state.lock().unwrap().remove(fs);
        let mut out = out?;
        out.kept.extend(kept);
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("local sender (job {})", self.job)
    }
}

impl LocalSender {
    /// Validate the send arguments of many steps with one batched lookup,
    /// and remember them for the sends that follow.
    async fn validate_steps(&self, steps: &[StepReq]) -> Result<Vec<Result<ValidatedSendArgs>>> {
        let mut args = Vec::with_capacity(steps.len());
        let mut out: Vec<Option<Result<ValidatedSendArgs>>> = Vec::with_capacity(steps.len());
        for step in steps {
            match self.send_args(step) {
                Ok(a) => {
                    args.push(a);
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let mut checked = SendArgs::validate_many(self.zfs.as_ref(), args)
            .await
            .map_err(|e| EndpointError::zfs("validate send arguments", e))?
            .into_iter();
        let mut cache = self.validated.lock().unwrap();
        Ok(steps
            .iter()
            .zip(out)
            .map(|(step, o)| match o {
                Some(err) => err,
                None => match checked.next() {
                    Some(Ok(v)) => {
                        cache.insert(step_key(step), v.clone());
                        Ok(v)
                    }
                    Some(Err(e)) => Err(EndpointError::zfs(format!("validate {step}"), e)),
                    None => Err(EndpointError::InvalidRequest(
                        "validation lost a step".into(),
                    )),
                },
            })
            .collect())
    }

    async fn estimate_one(&self, step: &StepReq, valid: Result<ValidatedSendArgs>) -> Result<u64> {
        let est = self
            .zfs
            .send_dry(&valid?)
            .await
            .map_err(|e| EndpointError::zfs(format!("size estimate of {step}"), e))?;
        Ok(est.size)
    }
}

/// The hold tags of this job found on a snapshot (for listing abstractions).
pub fn job_hold_kinds<'a>(
    tags: &'a [String],
    job: &'a JobId,
) -> impl Iterator<Item = AbstractionKind> + 'a {
    tags.iter().filter_map(move |t| {
        parse_hold_tag(t)
            .filter(|(_, j)| j == job.as_str())
            .map(|(k, _)| k)
    })
}
