//! The daemon's jobs as workers, and the registry the control socket uses
//! to reach them.
//!
//! - Active jobs (push, pull) run invocations: replication, then pruning of
//!   both sides, on wakeup signals or their schedule ([`active`]).
//! - Passive jobs (sink, source) serve their endpoints to authenticated
//!   clients ([`passive`]).
//! - Snap jobs take snapshots and prune them ([`snap`]).
//!
//! Each job is built from its compiled configuration by [`build`], runs as
//! a [`crate::worker::Worker`] under the supervisor, and is reached only
//! through its channels: [`Command`]s and snapshot triggers.

pub mod active;
pub mod build;
pub mod caps;
pub mod fanout;
pub mod health;
pub(crate) mod hooks;
pub(crate) mod notify;
pub mod passive;
pub(crate) mod record;
pub(crate) mod redrive;
pub mod replicas;
pub mod snap;
pub(crate) mod work;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use zrelay_pruning::{JobPruner, PruneReport};
use zrelay_replication::Report;

use crate::control::Signal;
use crate::error::DaemonError;
use crate::status::{ChoreStatus, DaemonStatus, JobStatus, RunningCommand, Signalled};
use crate::supervisor::Supervised;
use crate::worker::WorkerStatus;

/// What a wakeup did, for a waiting caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct Woken {
    /// The invocation's replication report (push, pull).
    pub report: Option<Report>,
    /// The pruning that followed (or, for a snap job, that the wakeup ran).
    pub pruning: Vec<PruneReport>,
    /// A fan-out target that was not attempted: why.
    pub skipped: Option<String>,
    /// A fan-out job: what each target did.
    pub targets: Vec<TargetWoken>,
}

/// What a wakeup did to one target of a fan-out job.
pub(crate) type TargetWoken = crate::status::TargetSignalled;

/// A request to a job's worker.
pub(crate) enum Command {
    /// Run now (an invocation; a snap job prunes); the reply, if any, gets
    /// what that run did.
    Wakeup(Option<oneshot::Sender<Woken>>),
    /// Run now if idle: the queue's re-drive chore has eligible work for
    /// the lane. A running invocation ignores it, as it takes that work
    /// itself; what it leaves is nudged again on the chore's next tick.
    Nudge,
    /// Abort the running invocation; the reply says whether one ran.
    Reset(oneshot::Sender<bool>),
}

/// How the control socket reaches one job.
pub(crate) struct Control {
    /// Commands (push, pull, snap).
    pub commands: Option<mpsc::UnboundedSender<Command>>,
    /// The job's pruning, for `zrelay prune` (push, pull, snap; one per
    /// target of a fan-out push job).
    pub pruners: Vec<Arc<JobPruner>>,
    /// Snapshot triggers (push, source, snap).
    pub snapshots: Option<mpsc::Sender<zrelay_snapshot::Trigger>>,
    /// A push job's `replicas` rules, one per target (none when off).
    pub replicas: Vec<Arc<replicas::ReplicaPart>>,
}

/// One registered job.
pub(crate) struct Entry {
    pub name: String,
    pub kind: &'static str,
    pub worker: Supervised,
    pub control: Control,
}

/// Every job and chore of the daemon, for the control socket.
#[derive(Default)]
pub struct Jobs {
    pub(crate) entries: Vec<Entry>,
    pub(crate) chores: Vec<Supervised>,
    /// The ZFS layer's record of commands, when the daemon has one.
    pub(crate) zfs_log: Option<zrelay_zfs::cmd::InvocationLog>,
    pub(crate) started_at: u64,
}

impl Jobs {
    /// `zrelay prune [--dry-run] JOB`: prune now (or say what would go).
    ///
    /// # Errors
    /// No such job, or a job that does not prune.
    /// With `replicas` rules, also judges (and unless `dry_run`, renames and
    /// destroys) the replicas the job no longer replicates under their names.
    pub async fn prune(
        &self,
        job: &str,
        dry_run: bool,
    ) -> Result<(Vec<PruneReport>, Vec<replicas::ReplicaReport>), DaemonError> {
        let e = self.entry(job)?;
        if e.control.pruners.is_empty() {
            return Err(bad(e, "prune", "only push, pull and snap jobs prune"));
        }
        let mut reports = Vec::new();
        for p in &e.control.pruners {
            reports.extend(p.run(dry_run, None).await);
        }
        let mut judged = Vec::new();
        for r in &e.control.replicas {
            judged.push(r.run(dry_run).await);
        }
        Ok((reports, judged))
    }

    /// The whole daemon's status.
    pub fn daemon_status(&self) -> DaemonStatus {
        let mut zfs_running: Vec<RunningCommand> = self
            .zfs_log
            .as_ref()
            .map(|l| {
                l.active()
                    .into_iter()
                    .map(|a| RunningCommand {
                        cmdline: a.cmdline,
                        started_at: zrelay_replication::report::unix(a.started),
                    })
                    .collect()
            })
            .unwrap_or_default();
        zfs_running.sort_by_key(|c| c.started_at);
        let chores = self
            .chores
            .iter()
            .filter_map(|c| match c.status() {
                WorkerStatus::Chore(s) => Some(s),
                WorkerStatus::Job(_) => None,
            })
            .collect::<Vec<ChoreStatus>>();
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            jobs: self.statuses(),
            zfs_running,
            chores,
        }
    }

    /// Every job's status, in configuration order.
    pub fn statuses(&self) -> Vec<JobStatus> {
        self.entries
            .iter()
            .filter_map(|e| match e.worker.status() {
                WorkerStatus::Job(s) => Some(*s),
                WorkerStatus::Chore(_) => None,
            })
            .collect()
    }

    fn entry(&self, job: &str) -> Result<&Entry, DaemonError> {
        self.entries
            .iter()
            .find(|e| e.name == job)
            .ok_or_else(|| DaemonError::NoSuchJob {
                job: job.to_string(),
                known: self
                    .entries
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Deliver `signal` to `job`. With `wait`, a wakeup answers with the
    /// report of the invocation it triggered, a snapshot with the round's.
    ///
    /// # Errors
    /// No such job, a job that cannot take the signal, or a stopped job.
    pub async fn signal(
        &self,
        job: &str,
        signal: Signal,
        wait: bool,
    ) -> Result<Signalled, DaemonError> {
        let e = self.entry(job)?;
        let name = format!("{signal:?}").to_lowercase();
        let bad = |why: &str| bad(e, &name, why);
        match signal {
            Signal::Snapshot => {
                let tx = e
                    .control
                    .snapshots
                    .as_ref()
                    .ok_or_else(|| bad("only push, source and snap jobs take snapshots"))?;
                let (t, rx) = zrelay_snapshot::Trigger::with_reply();
                let t = if wait {
                    t
                } else {
                    zrelay_snapshot::Trigger::default()
                };
                tx.send(t)
                    .await
                    .map_err(|_| bad("the snapshotter has stopped"))?;
                if !wait {
                    return Ok(Signalled::message(format!("job {job}: snapshot requested")));
                }
                let report = rx
                    .await
                    .map_err(|_| bad("the snapshotter stopped before the round finished"))?;
                Ok(Signalled {
                    snapshot: Some(report),
                    ..Signalled::message(format!("job {job}: snapshot round finished"))
                })
            }
            Signal::Wakeup => {
                let tx = e
                    .control
                    .commands
                    .as_ref()
                    .ok_or_else(|| bad("only push, pull and snap jobs take wakeups"))?;
                let (reply, rx) = oneshot::channel();
                tx.send(Command::Wakeup(wait.then_some(reply)))
                    .map_err(|_| bad("the job has stopped"))?;
                if !wait {
                    return Ok(Signalled::message(format!("woke up job {job}")));
                }
                let woken = rx
                    .await
                    .map_err(|_| bad("the job stopped before the invocation finished"))?;
                let message = match (&woken.report, &woken.skipped, woken.targets.len()) {
                    (_, _, n) if n > 0 => format!("job {job}: {n} targets answered"),
                    (Some(_), _, _) => format!("job {job}: invocation finished"),
                    (None, Some(why), _) => format!("job {job}: {why}"),
                    (None, None, _) => format!("job {job}: pruned"),
                };
                Ok(Signalled {
                    report: woken.report,
                    pruning: woken.pruning,
                    targets: woken.targets,
                    ..Signalled::message(message)
                })
            }
            Signal::Reset => {
                let tx = match (&e.control.commands, e.kind) {
                    (Some(tx), "push" | "pull") => tx,
                    _ => return Err(bad("only push and pull jobs run invocations")),
                };
                let (reply, rx) = oneshot::channel();
                tx.send(Command::Reset(reply))
                    .map_err(|_| bad("the job has stopped"))?;
                let running = rx.await.map_err(|_| bad("the job has stopped"))?;
                Ok(Signalled::message(if running {
                    format!("job {job}: aborting the current invocation")
                } else {
                    format!("job {job}: no invocation is running")
                }))
            }
        }
    }
}

fn bad(e: &Entry, signal: &str, why: &str) -> DaemonError {
    DaemonError::BadSignal {
        job: e.name.clone(),
        kind: e.kind.to_string(),
        signal: signal.to_string(),
        why: why.to_string(),
    }
}
