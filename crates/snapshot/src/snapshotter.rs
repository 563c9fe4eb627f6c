//! [`Snapshotter`]: one job's snapshotter, its listing and its rounds.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use zrelay_endpoint::FsFilter;
use zrelay_zfs::parse::ListedDataset;
use zrelay_zfs::Zfs;

use crate::clock::{Clock, SystemClock};
use crate::error::{Result, SnapshotError};
use crate::model::Snapshotting;
use crate::plan::SnapshotPlan;
use crate::report::{RoundCause, SnapshotReport, SnapshotterStatus};
use crate::round::{execute, RoundArgs};
use crate::schedule::Schedule;
use crate::timestamp::SnapshotNamer;

/// The prefix of on-demand snapshots of a `manual` job, which configures
/// none (a zrelay extension; named like zrepl's usual prefix, in the
/// `dense` format, UTC).
pub const MANUAL_PREFIX: &str = "zrepl_";

/// A request to snapshot now (`zrelay signal snapshot JOB`).
#[derive(Debug, Default)]
pub struct Trigger {
    /// Receives the round's report.
    pub reply: Option<oneshot::Sender<SnapshotReport>>,
}

impl Trigger {
    /// A trigger whose report is sent to the returned receiver.
    pub fn with_reply() -> (Trigger, oneshot::Receiver<SnapshotReport>) {
        let (tx, rx) = oneshot::channel();
        (Trigger { reply: Some(tx) }, rx)
    }
}

pub(crate) struct Inner {
    pub job: String,
    pub filesystems: FsFilter,
    pub snapshotting: Snapshotting,
    pub schedule: Schedule,
    pub namer: SnapshotNamer,
    pub zfs: Arc<dyn Zfs>,
    pub clock: Arc<dyn Clock>,
    /// Bytes of hook output kept (`ZREPL_MAX_HOOK_LOG_SIZE`).
    pub hook_log_max: usize,
    pub status: watch::Sender<SnapshotterStatus>,
    /// Serializes rounds ([`Snapshotter::snapshot_now`] vs the schedule).
    pub round_lock: tokio::sync::Mutex<()>,
}

/// A job's snapshotter. Clones share the same state, so the daemon can keep
/// one for [`Snapshotter::snapshot_now`] and [`Snapshotter::status`] while
/// another is consumed by [`Snapshotter::run`].
#[derive(Clone)]
pub struct Snapshotter {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("job", &self.inner.job)
            .field("snapshotting", &self.inner.snapshotting)
            .finish()
    }
}

impl Snapshotter {
    /// The snapshotter of job `job` over `filesystems`, checking and
    /// compiling `snapshotting` first ([`SnapshotPlan::new`]). Uses the
    /// [`SystemClock`].
    ///
    /// # Errors
    /// `snapshotting` does not compile.
    pub fn new(
        job: impl Into<String>,
        filesystems: FsFilter,
        snapshotting: Snapshotting,
        zfs: Arc<dyn Zfs>,
    ) -> Result<Snapshotter> {
        Ok(Snapshotter::from_plan(
            job,
            filesystems,
            SnapshotPlan::new(snapshotting)?,
            zfs,
        ))
    }

    /// The snapshotter of job `job` over `filesystems` by a compiled plan.
    /// Uses the [`SystemClock`].
    pub fn from_plan(
        job: impl Into<String>,
        filesystems: FsFilter,
        plan: SnapshotPlan,
        zfs: Arc<dyn Zfs>,
    ) -> Snapshotter {
        let schedule = plan.schedule.clone();
        let namer = plan.namer.clone();
        let snapshotting = (*plan).clone();
        let kind = match schedule {
            Schedule::Periodic { .. } => "periodic",
            Schedule::Cron(_) => "cron",
            Schedule::Manual => "manual",
        };
        let (status, _) = watch::channel(SnapshotterStatus::new(kind));
        Snapshotter {
            inner: Arc::new(Inner {
                job: job.into(),
                filesystems,
                snapshotting,
                schedule,
                namer,
                zfs,
                clock: Arc::new(SystemClock),
                hook_log_max: crate::hooks::MAX_HOOK_LOG_SIZE_DEFAULT,
                status,
                round_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The same snapshotter on another clock (tests: [`crate::TokioClock`]).
    /// Call before cloning or running.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Snapshotter {
        self.configure("with_clock", |inner| inner.clock = clock)
    }

    /// The same snapshotter keeping `n` bytes of each hook's output
    /// (`ZREPL_MAX_HOOK_LOG_SIZE`, read once at startup). Call before
    /// cloning or running.
    pub fn with_hook_log_max(self, n: usize) -> Snapshotter {
        self.configure("with_hook_log_max", |inner| inner.hook_log_max = n)
    }

    /// Apply `set` to the state if this is its only handle; on a shared
    /// snapshotter the change is ignored, with a warning naming `what`.
    fn configure(self, what: &str, set: impl FnOnce(&mut Inner)) -> Snapshotter {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                set(&mut inner);
                Snapshotter {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => {
                warn!(job = %inner.job, "{what} on a shared snapshotter is ignored");
                Snapshotter { inner }
            }
        }
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        &self.inner.job
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.inner.schedule
    }

    /// A handle on the status, readable at any time (`borrow()`) and
    /// awaitable for changes (`changed()`).
    pub fn status(&self) -> watch::Receiver<SnapshotterStatus> {
        self.inner.status.subscribe()
    }

    /// The matched filesystems and volumes with their snapshots: one
    /// [`Zfs::list`] per root of the filter (each pool for `<`), then the
    /// filter itself. As zrepl's `zfs.ZFSListMapping`, placeholders are not
    /// special: a matched placeholder is snapshotted too. A missing root
    /// matches nothing.
    pub async fn list_filesystems(&self) -> Result<Vec<ListedDataset>> {
        let f = &self.inner.filesystems;
        let mut out = Vec::new();
        let roots = f
            .roots_on(&*self.inner.zfs)
            .await
            .map_err(|source| SnapshotError::List {
                root: "<".into(),
                source: Box::new(source),
            })?;
        for root in roots {
            match self.inner.zfs.list(&root).await {
                Ok(ds) => out.extend(ds.into_iter().filter(|d| f.matches(&d.path))),
                Err(e) if e.is_does_not_exist() => {
                    warn!(job = %self.inner.job, root = %root, "filesystems filter root does not exist")
                }
                Err(source) => {
                    return Err(SnapshotError::List {
                        root: root.to_string(),
                        source: Box::new(source),
                    })
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        Ok(out)
    }

    /// The name a round starting at `t` gives its snapshots.
    pub fn snapshot_name_at(&self, t: SystemTime) -> String {
        self.inner.namer.name_at(t)
    }

    /// Take one round of snapshots now (also for `manual` jobs) and return
    /// its report; the status's `last_report` is updated.
    pub async fn snapshot_now(&self) -> SnapshotReport {
        self.round(RoundCause::OnDemand, &CancellationToken::new())
            .await
    }

    /// One round: list, hooks, snapshots. Waits for a running round first.
    pub(crate) async fn round(
        &self,
        cause: RoundCause,
        cancel: &CancellationToken,
    ) -> SnapshotReport {
        let inner = &self.inner;
        let _guard = inner.round_lock.lock().await;
        let started = inner.clock.now();
        let name = inner.namer.name_at(started);
        let report = match self.list_filesystems().await {
            Err(e) => SnapshotReport {
                started,
                finished: inner.clock.now(),
                name,
                cause,
                error: Some(e.to_string()),
                filesystems: Vec::new(),
            },
            Ok(fss) => {
                let args = RoundArgs {
                    job: &inner.job,
                    zfs: inner.zfs.as_ref(),
                    hooks: inner.snapshotting.hooks(),
                    name,
                    dry_run: false,
                    cancel,
                    hook_log_max: inner.hook_log_max,
                };
                execute(&args, &fss, started, cause, || inner.clock.now()).await
            }
        };
        inner.status.send_modify(|s| {
            s.last_error = report_error(&report);
            s.last_report = Some(report.clone());
        });
        report
    }
}

/// The status error for a report (zrepl's wording for failed rounds).
pub(crate) fn report_error(r: &SnapshotReport) -> Option<String> {
    match &r.error {
        Some(e) => Some(e.clone()),
        None if !r.ok() => {
            Some("one or more snapshots could not be created, check logs for details".into())
        }
        None => None,
    }
}
