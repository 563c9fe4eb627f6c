//! One snapshotting round: hooks around one atomic `zfs snapshot` per pool.
//!
//! zrepl (`daemon/snapper/impl.go`, `plan.execute`) handles one filesystem
//! at a time: its pre hooks, its own `zfs snapshot`, its post hooks
//! (`daemon/hooks/hook_exec.go`, `Plan.Run`). zrelay snapshots all matched
//! filesystems of a pool in ONE `zfs snapshot` call, which OpenZFS executes
//! in one transaction group (zrepl #62), so the phases are:
//! 1. pre edges: for each filesystem in name order, the hooks matching it,
//!    in configuration order. A failing hook with `err_is_fatal` stops that
//!    filesystem: its later hooks are skipped and it is not snapshotted.
//! 2. snapshots: one call per pool with every filesystem that was not
//!    stopped. If that call fails, each of them is retried alone (and marked
//!    not atomic) so that one broken filesystem cannot block its pool, just
//!    as zrepl's per-filesystem snapshots never did.
//! 3. post edges: for each filesystem in reverse order, the hooks in reverse
//!    configuration order (a stack), but only those whose pre edge
//!    succeeded; they run whether or not the snapshot succeeded.
//!
//! Per filesystem, zrepl's guarantees hold: its pre hooks ran, in order,
//! before its snapshot, and its post hooks run after it, in reverse. What
//! changes is that a filesystem's pre hooks may run before other
//! filesystems' pre hooks rather than right before its own snapshot, and a
//! lock taken by a pre hook (`mysql-lock-tables`) is held until every pool
//! has been snapshotted. Deviation: zrepl returns after a fatal pre-hook
//! error without running the post edges of the pre edges that did succeed
//! (though it logs that it does); zrelay runs them, so locks are released.
//!
//! Cancellation: once the token is cancelled, pre edges that have not
//! started and the snapshots are skipped, but post edges still run for the
//! pre edges that succeeded.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use zrelay_zfs::parse::ListedDataset;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use crate::hooks::{run_edge, Held, HookCtx};
use crate::model::Hook;
use crate::report::{FsReport, HookEdge, HookOutcome, HookStatus, RoundCause, SnapshotReport};

/// What a round needs.
pub(crate) struct RoundArgs<'a> {
    pub job: &'a str,
    pub zfs: &'a dyn Zfs,
    pub hooks: &'a [Hook],
    pub name: String,
    pub dry_run: bool,
    pub cancel: &'a CancellationToken,
    /// Bytes of hook output kept.
    pub hook_log_max: usize,
}

/// Per filesystem state during a round.
struct FsRun {
    fs: DatasetPath,
    /// Indices of the hooks matching `fs`, in configuration order.
    hooks: Vec<usize>,
    /// Pre outcomes, parallel to `hooks` (`None`: not run).
    pre: Vec<Option<HookOutcome>>,
    /// Post outcomes, parallel to `hooks` (`None`: not run).
    post: Vec<Option<HookOutcome>>,
    /// Held state of successful pre edges, parallel to `hooks`.
    held: Vec<Held>,
    /// A fatal pre error or a cancel stopped this filesystem.
    stopped: Option<String>,
    /// How its `zfs snapshot` went (`None`: not tried).
    snapshot: Option<Result<(), SnapshotFailed>>,
    atomic: bool,
}

/// Why one filesystem's snapshot was not created.
#[derive(Debug, thiserror::Error)]
enum SnapshotFailed {
    /// The filesystem and the round's name make no valid snapshot name.
    #[error("invalid snapshot name: {0}")]
    InvalidName(#[source] zrelay_zfs::name::NameError),
    /// `zfs snapshot` failed.
    #[error(transparent)]
    Zfs(#[from] zrelay_zfs::ZfsError),
}

fn skipped(hook: &Hook, index: usize, edge: HookEdge, status: HookStatus) -> HookOutcome {
    HookOutcome {
        index,
        hook: hook.kind.to_string(),
        edge,
        status,
        error: None,
        output: String::new(),
        duration_ms: 0,
    }
}

async fn run_step(
    a: &RoundArgs<'_>,
    fs: &DatasetPath,
    index: usize,
    edge: HookEdge,
    held: Held,
) -> (HookOutcome, Held) {
    let hook = &a.hooks[index];
    let ctx = HookCtx {
        job: a.job,
        fs,
        snapname: &a.name,
        dry_run: a.dry_run,
        log_max: a.hook_log_max,
    };
    let begin = Instant::now();
    let r = run_edge(hook, edge, &ctx, held).await;
    let duration_ms = u64::try_from(begin.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status, error) = match &r.result {
        Ok(()) => (HookStatus::Ok, None),
        Err(e) => {
            error!(job = a.job, fs = %fs, hook = %hook.kind, edge = edge.hook_type(), error = %e,
                "hook invocation failed");
            (HookStatus::Err, Some(e.to_string()))
        }
    };
    let outcome = HookOutcome {
        index,
        hook: hook.kind.to_string(),
        edge,
        status,
        error,
        output: r.output,
        duration_ms,
    };
    (outcome, r.held)
}

/// Run a round over `fss` (already filtered), with `started` as its start.
pub(crate) async fn execute(
    a: &RoundArgs<'_>,
    fss: &[ListedDataset],
    started: SystemTime,
    cause: RoundCause,
    now: impl Fn() -> SystemTime,
) -> SnapshotReport {
    let mut runs: Vec<FsRun> = fss
        .iter()
        .map(|d| {
            let hooks: Vec<usize> = (0..a.hooks.len())
                .filter(|i| a.hooks[*i].filesystems.matches(&d.path))
                .collect();
            FsRun {
                fs: d.path.clone(),
                pre: hooks.iter().map(|_| None).collect(),
                post: hooks.iter().map(|_| None).collect(),
                held: hooks.iter().map(|_| Held::Nothing).collect(),
                hooks,
                stopped: None,
                snapshot: None,
                atomic: true,
            }
        })
        .collect();
    runs.sort_by(|x, y| x.fs.cmp(&y.fs));
    for (i, h) in a.hooks.iter().enumerate() {
        if !runs.iter().any(|r| r.hooks.contains(&i)) {
            warn!(job = a.job, hook = %h.kind, hook_number = i + 1,
                "hook did not match any snapshotted filesystems");
        }
    }

    // 1. pre edges
    for run in runs.iter_mut() {
        for k in 0..run.hooks.len() {
            if run.stopped.is_none() && a.cancel.is_cancelled() {
                run.stopped = Some("the snapshotter is stopping".into());
            }
            if run.stopped.is_some() {
                break;
            }
            let (outcome, held) =
                run_step(a, &run.fs, run.hooks[k], HookEdge::Pre, Held::Nothing).await;
            let hook = &a.hooks[run.hooks[k]];
            if outcome.status == HookStatus::Err && hook.err_is_fatal {
                error!(job = a.job, fs = %run.fs, hook = %hook.kind,
                    "fatal error in a pre-snapshot hook invocation: no snapshot will be taken");
                run.stopped = Some(format!(
                    "pre-snapshot hook {} ({}) failed fatally: {}",
                    run.hooks[k] + 1,
                    hook.kind,
                    outcome.error.as_deref().unwrap_or("")
                ));
            }
            run.held[k] = held;
            run.pre[k] = Some(outcome);
        }
    }

    // 2. one snapshot call per pool
    let mut pools: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        if run.stopped.is_none() && !a.cancel.is_cancelled() {
            pools.entry(run.fs.pool().to_string()).or_default().push(i);
        }
    }
    for run in runs.iter_mut() {
        if run.stopped.is_none() && a.cancel.is_cancelled() {
            run.stopped = Some("the snapshotter is stopping".into());
        }
    }
    for (pool, members) in pools {
        snapshot_pool(a, &pool, &members, &mut runs).await;
    }

    // 3. post edges, as a stack
    for run in runs.iter_mut().rev() {
        for k in (0..run.hooks.len()).rev() {
            let pre_ok = run.pre[k].as_ref().map(|o| o.status) == Some(HookStatus::Ok);
            if !pre_ok {
                continue;
            }
            let held = std::mem::take(&mut run.held[k]);
            let (outcome, _) = run_step(a, &run.fs, run.hooks[k], HookEdge::Post, held).await;
            run.post[k] = Some(outcome);
        }
    }

    let filesystems = runs.into_iter().map(|r| fs_report(a.hooks, r)).collect();
    let report = SnapshotReport {
        started,
        finished: now(),
        name: a.name.clone(),
        cause,
        error: None,
        filesystems,
    };
    let failed = report.filesystems.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        info!(job = a.job, snapshot = %a.name, filesystems = report.filesystems.len(), "snapshotting round done");
    } else {
        error!(job = a.job, snapshot = %a.name, failed, "one or more snapshots could not be created or hooks failed");
    }
    report
}

async fn snapshot_pool(a: &RoundArgs<'_>, pool: &str, members: &[usize], runs: &mut [FsRun]) {
    let mut snaps = Vec::new();
    for &i in members {
        match SnapshotName::new(&runs[i].fs, &a.name) {
            Ok(s) => snaps.push((i, s)),
            Err(e) => runs[i].snapshot = Some(Err(SnapshotFailed::InvalidName(e))),
        }
    }
    if snaps.is_empty() {
        return;
    }
    let names: Vec<SnapshotName> = snaps.iter().map(|(_, s)| s.clone()).collect();
    info!(job = a.job, pool, count = names.len(), snapshot = %a.name, "create snapshots");
    if a.dry_run {
        snaps
            .iter()
            .for_each(|(i, _)| runs[*i].snapshot = Some(Ok(())));
        return;
    }
    match a.zfs.snapshot(&names).await {
        Ok(()) => snaps
            .iter()
            .for_each(|(i, _)| runs[*i].snapshot = Some(Ok(()))),
        Err(e) if names.len() == 1 => {
            error!(job = a.job, snapshot = %names[0], error = %e, "cannot create snapshot");
            runs[snaps[0].0].snapshot = Some(Err(e.into()));
        }
        Err(e) => {
            warn!(job = a.job, pool, error = %e,
                "atomic snapshot of the pool failed; snapshotting its filesystems one by one");
            for (i, s) in snaps {
                runs[i].atomic = false;
                let r = a.zfs.snapshot(std::slice::from_ref(&s)).await;
                if let Err(e) = &r {
                    error!(job = a.job, snapshot = %s, error = %e, "cannot create snapshot");
                }
                runs[i].snapshot = Some(r.map_err(SnapshotFailed::from));
            }
        }
    }
}

fn fs_report(hooks: &[Hook], run: FsRun) -> FsReport {
    let n = run.hooks.len();
    let mut outcomes: Vec<HookOutcome> = Vec::new();
    let mut fatal_at: Option<usize> = None;
    // pre edges (and what was skipped)
    for k in 0..n {
        let h = &hooks[run.hooks[k]];
        match &run.pre[k] {
            Some(o) => {
                if o.status == HookStatus::Err && h.err_is_fatal {
                    fatal_at = Some(k);
                }
                outcomes.push(o.clone());
            }
            None => {
                let status = if fatal_at.is_some() {
                    HookStatus::SkippedDueToFatalErr
                } else {
                    HookStatus::SkippedDueToCancel
                };
                outcomes.push(skipped(h, run.hooks[k], HookEdge::Pre, status));
            }
        }
    }
    // post edges, in reverse
    for k in (0..n).rev() {
        let h = &hooks[run.hooks[k]];
        if let Some(o) = &run.post[k] {
            outcomes.push(o.clone());
            continue;
        }
        let status = match outcomes[k].status {
            HookStatus::Err if fatal_at == Some(k) => HookStatus::SkippedDueToFatalErr,
            HookStatus::Err => HookStatus::SkippedDueToPreErr,
            other => other,
        };
        outcomes.push(skipped(h, run.hooks[k], HookEdge::Post, status));
    }

    let snapshotted = matches!(run.snapshot, Some(Ok(())));
    let hook_error = outcomes.iter().find_map(|o| {
        o.error
            .as_ref()
            .map(|e| format!("hook {} ({:?}): {e}", o.index + 1, o.edge))
    });
    let error = match (&run.stopped, &run.snapshot) {
        (Some(why), _) => Some(why.clone()),
        (None, Some(Err(e))) => Some(e.to_string()),
        _ => hook_error.clone(),
    };
    FsReport {
        fs: run.fs,
        ok: snapshotted && hook_error.is_none(),
        snapshotted,
        atomic: snapshotted && run.atomic,
        error,
        hooks: outcomes,
    }
}
