//! Fan-out push jobs (zrelay extension `targets`): one job, one
//! snapshotter, several targets. Praefect's replication manager is the
//! model: every target is a lane of its own, health-checked and backed off
//! on its own, so one failing or slow target never blocks another.
//!
//! Each target is an [`ActiveWorker`] (a *lane*) whose sender carries the
//! job name `<job>:<target>`: its own replication cursor, step holds and
//! last-received hold. The job's worker here owns the lanes and
//! - fans every wakeup (a snapshot round's, a schedule's, an operator's)
//!   out to all lanes, and answers a waiting operator once every lane has
//!   answered, with each target's report or the reason it was skipped;
//! - pings every target each `fan_out.health_check_interval` (the
//!   protocol's ping, with `health_check_timeout`); an unhealthy target's
//!   lane skips it and runs as soon as a check succeeds;
//! - publishes which targets no longer protect the sender's snapshots
//!   (unhealthy for longer than `protection_grace`): the lanes' senders
//!   keep what every *other* protecting target has not received yet
//!   ([`zrelay_endpoint::Siblings`]).
//!
//! Invariants:
//! - A lane's failure, backoff or slowness affects only its own target:
//!   lanes share nothing but the sender's datasets and the semaphore that
//!   bounds how many run at once (`fan_out.concurrency`).
//! - The job's status lists every target with its health, backoff, lag and
//!   last report; only the lanes and the health checks write them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use zrelay_endpoint::JobId;
use zrelay_replication::report::unix;
use zrelay_rpc::RpcConfig;
use zrelay_snapshot::Clock;
use zrelay_transport::Connector;

use super::active::ActiveWorker;
use super::health::Gate;
use super::snap::SnapPart;
use super::{Command, TargetWoken, Woken};
use crate::error::DaemonError;
use crate::status::{JobState, JobStatus, TargetStatus};
use crate::worker::{Publisher, Worker, WorkerStatus};

/// How a target's health is checked: the protocol's ping, bounded.
pub(crate) struct Probe {
    pub connector: Arc<dyn Connector>,
    pub rpc: RpcConfig,
    pub timeout: Duration,
}

impl Probe {
    /// `Ok` when the target answers a ping in time and serves a receiver.
    pub async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, zrelay_rpc::ping(&*self.connector, &self.rpc))
            .await
        {
            Err(_) => Err(format!("no answer to ping within {:?}", self.timeout)),
            Ok(Err(e)) => Err(zrelay_zfs::peer_text::show(&e.to_string(), 512)),
            Ok(Ok(info)) if !info.receiver => {
                Err("the peer answers but serves no receiver (is it a sink?)".into())
            }
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// One target of the job.
pub(crate) struct Lane {
    pub name: String,
    pub endpoint: String,
    pub worker: Arc<ActiveWorker>,
    pub commands: mpsc::UnboundedSender<Command>,
    pub gate: Arc<Gate>,
    pub probe: Probe,
}

/// A push job with several targets.
pub(crate) struct FanOutWorker {
    pub name: JobId,
    pub lanes: Vec<Lane>,
    pub snap: Option<SnapPart>,
    pub commands: Mutex<mpsc::UnboundedReceiver<Command>>,
    pub status: Publisher,
    pub check_interval: Duration,
    pub clock: Arc<dyn Clock>,
    /// Targets that no longer protect the sender's snapshots.
    pub lapsed: watch::Sender<BTreeSet<String>>,
}

impl FanOutWorker {
    /// Check one lane's target every interval until cancelled.
    async fn health_checks(&self, lane: &Lane, cancel: &CancellationToken) {
        loop {
            let result = tokio::select! {
                r = lane.probe.check() => r,
                _ = cancel.cancelled() => return,
            };
            let now = self.clock.now();
            let before = lane.gate.read();
            let became_healthy = lane.gate.checked(now, result.clone());
            match &result {
                Err(e) if before.status(now).health != super::health::Health::Unhealthy => {
                    warn!(job = %self.name, target = %lane.name, error = %e, "target unhealthy: skipped until a health check succeeds");
                }
                Ok(()) if became_healthy => {
                    info!(job = %self.name, target = %lane.name, "target healthy");
                }
                _ => {}
            }
            self.update_lapsed(now);
            tokio::select! {
                _ = tokio::time::sleep(self.check_interval) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// Recompute which targets stopped protecting snapshots; log changes.
    fn update_lapsed(&self, now: std::time::SystemTime) {
        let lapsed: BTreeSet<String> = self
            .lanes
            .iter()
            .filter(|l| !l.gate.read().protects(now))
            .map(|l| l.name.clone())
            .collect();
        let old = self.lapsed.borrow().clone();
        if lapsed == old {
            return;
        }
        for t in lapsed.difference(&old) {
            warn!(job = %self.name, target = %t, "target unhealthy for longer than protection_grace: its replication cursor no longer keeps snapshots on the sender");
        }
        for t in old.difference(&lapsed) {
            info!(job = %self.name, target = %t, "target protects the sender's snapshots again");
        }
        self.lapsed.send_replace(lapsed);
    }

    /// Fan commands out to the lanes until cancelled.
    async fn commands(
        &self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        cancel: &CancellationToken,
    ) {
        loop {
            let c = tokio::select! {
                c = commands.recv() => c,
                _ = cancel.cancelled() => return,
            };
            match c {
                None => return,
                Some(Command::Wakeup(reply)) => self.wakeup(reply),
                Some(Command::Nudge) => self.wakeup(None),
                Some(Command::Reset(reply)) => {
                    let rxs: Vec<_> = self
                        .lanes
                        .iter()
                        .filter_map(|l| {
                            let (tx, rx) = oneshot::channel();
                            l.commands.send(Command::Reset(tx)).ok().map(|_| rx)
                        })
                        .collect();
                    tokio::spawn(async move {
                        let mut any = false;
                        for rx in rxs {
                            any |= rx.await.unwrap_or(false);
                        }
                        let _ = reply.send(any);
                    });
                }
            }
        }
    }

    fn wakeup(&self, reply: Option<oneshot::Sender<Woken>>) {
        let Some(reply) = reply else {
            for l in &self.lanes {
                let _ = l.commands.send(Command::Wakeup(None));
            }
            return;
        };
        let rxs: Vec<(String, Option<oneshot::Receiver<Woken>>)> = self
            .lanes
            .iter()
            .map(|l| {
                let (tx, rx) = oneshot::channel();
                let sent = l.commands.send(Command::Wakeup(Some(tx))).is_ok();
                (l.name.clone(), sent.then_some(rx))
            })
            .collect();
        tokio::spawn(async move {
            let mut targets = Vec::with_capacity(rxs.len());
            for (target, rx) in rxs {
                let woken = match rx {
                    Some(rx) => rx.await.ok(),
                    None => None,
                };
                targets.push(match woken {
                    Some(w) => TargetWoken {
                        target,
                        skipped: w.skipped,
                        report: w.report,
                        pruning: w.pruning,
                    },
                    None => TargetWoken {
                        target,
                        skipped: Some("the target's lane has stopped".into()),
                        report: None,
                        pruning: Vec::new(),
                    },
                });
            }
            let _ = reply.send(Woken {
                targets,
                ..Woken::default()
            });
        });
    }

    fn target_status(&self, lane: &Lane) -> TargetStatus {
        let now = self.clock.now();
        let s = lane.worker.job_status();
        TargetStatus {
            name: lane.name.clone(),
            cursor_job: s.name,
            endpoint: lane.endpoint.clone(),
            state: s.state,
            health: lane.gate.read().status(now),
            invocations: s.invocations,
            current: s.current,
            last: s.last,
            last_error: s.last_error,
            last_pruning: s.last_pruning,
            replicated: s.replicated,
            lag_seconds: lane
                .worker
                .replicated_through()
                .map(|t| unix(now).saturating_sub(t)),
        }
    }
}

#[async_trait]
impl Worker for FanOutWorker {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    fn status(&self) -> WorkerStatus {
        let mut s: JobStatus = self.status.read();
        s.targets = self.lanes.iter().map(|l| self.target_status(l)).collect();
        if s.state == JobState::Idle {
            if s.targets.iter().any(|t| t.state == JobState::Replicating) {
                s.state = JobState::Replicating;
            }
            s.current = None;
            s.invocations = s.targets.iter().map(|t| t.invocations).sum();
        }
        WorkerStatus::Job(Box::new(s))
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let mut commands = self
            .commands
            .try_lock()
            .map_err(|_| DaemonError::Config(format!("job {} is already running", self.name)))?;
        self.status.update(|s| s.state = JobState::Idle);
        info!(job = %self.name, targets = self.lanes.len(), "fan-out job starts");
        let snap = async {
            if let Some(s) = &self.snap {
                s.run(cancel.clone()).await;
            }
        };
        let lanes = futures_util::future::join_all(self.lanes.iter().map(|l| async {
            let checks = self.health_checks(l, &cancel);
            let run = l.worker.run(cancel.clone());
            let (_, r) = tokio::join!(checks, run);
            if let Err(e) = r {
                warn!(job = %self.name, target = %l.name, error = %e, "target lane stopped");
            }
        }));
        tokio::join!(snap, lanes, self.commands(&mut commands, &cancel));
        self.status.update(|s| {
            s.state = JobState::Stopped;
            s.next_run_at = None;
        });
        info!(job = %self.name, "job stopped");
        Ok(())
    }
}

impl super::build::Ctx {
    /// A push job with `targets`: one lane per target, named
    /// `<job>:<target>`, behind one snapshotter.
    pub(super) fn push_fan_out(
        &self,
        name: &JobId,
        p: &zrelay_config::PushJob,
        targets: &[zrelay_config::PushTarget],
        fan_out: &zrelay_config::FanOut,
    ) -> Result<super::build::Built, DaemonError> {
        use zrelay_endpoint::{throttle_sender, LocalSender, Receiver, SiblingRole, Siblings};

        use super::active::{ActiveParts, TargetPart};
        use super::build::{bucket, push_every, Built};
        use super::health::HealthPolicy;
        use super::Control;

        let (lapsed_tx, lapsed) = watch::channel(BTreeSet::new());
        let workers = Arc::new(tokio::sync::Semaphore::new(fan_out.concurrency.max(1)));
        let policy = HealthPolicy {
            backoff_start: fan_out.backoff_start,
            backoff_max: fan_out.backoff_max,
            grace: fan_out.protection_grace,
        };
        let mut lanes = Vec::with_capacity(targets.len());
        let mut pruners = Vec::with_capacity(targets.len());
        let mut replicas = Vec::new();
        let mut handles = Vec::with_capacity(targets.len());
        for t in targets {
            let lane_id = JobId::new(&format!("{name}:{}", t.name))
                .map_err(|e| DaemonError::Config(format!("job {name}: target {}: {e}", t.name)))?;
            let connector = self.connector(name, &t.connect)?;
            let endpoint = connector.describe();
            let local = LocalSender::new(
                self.zfs.clone(),
                lane_id.clone(),
                p.filesystems.clone(),
                p.send.options.clone(),
            )
            .with_siblings(Siblings {
                prefix: format!("{name}:"),
                role: SiblingRole::Target,
                lapsed: lapsed.clone(),
            });
            let limit = t.bandwidth_limit.or(p.send.bandwidth_limit);
            let sender = throttle_sender(Arc::new(local), bucket(&limit));
            let receiver: Arc<dyn Receiver> = Arc::new(zrelay_rpc::RemoteReceiver::new(
                connector.clone(),
                super::build::client_rpc(&self.rpc, &p.replication, &t.connect),
            ));
            let mut repl = p.replication.clone();
            if let Some(pr) = t.protection {
                repl.protection = pr;
            }
            let gate = Arc::new(Gate::new(policy, self.clock.now()));
            let replica = self.replica_part(
                name,
                &t.name,
                lane_id.as_str(),
                &p.replicas,
                sender.clone(),
                receiver.clone(),
            );
            replicas.extend(replica.clone());
            let mut parts: ActiveParts = self.active_parts(
                &lane_id,
                "push",
                sender,
                receiver,
                &repl,
                push_every(&p.replication),
                &p.pruning,
            );
            parts.work = self.work_part(name.as_str(), &t.name);
            parts.replicas = replica;
            parts.filter = Some(p.filesystems.clone());
            parts.hooks = self.job_hooks(&lane_id, &p.hooks);
            parts.target = Some(TargetPart {
                name: t.name.clone(),
                gate: gate.clone(),
                workers: workers.clone(),
            });
            let (tx, rx) = mpsc::unbounded_channel();
            let (worker, commands) = ActiveWorker::with_channel(parts, endpoint.clone(), tx, rx);
            pruners.push(worker.pruner());
            handles.push(super::redrive::LaneHandle {
                job: name.to_string(),
                target: t.name.clone(),
                commands: commands.clone(),
                gate: Some(gate.clone()),
            });
            lanes.push(Lane {
                name: t.name.clone(),
                endpoint,
                worker: Arc::new(worker),
                commands,
                gate,
                probe: Probe {
                    connector,
                    rpc: self.rpc.clone(),
                    timeout: fan_out.health_check_timeout,
                },
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (snap, triggers) = self.push_snap(name, p, &tx);
        let endpoints = lanes
            .iter()
            .map(|l| format!("{}={}", l.name, l.endpoint))
            .collect::<Vec<_>>()
            .join(", ");
        let worker = FanOutWorker {
            name: name.clone(),
            status: Publisher::new(
                JobStatus::new(name.as_str(), "push", endpoints),
                Some(snap.status()),
            ),
            lanes,
            snap: Some(snap),
            commands: Mutex::new(rx),
            check_interval: fan_out.health_check_interval,
            clock: self.clock.clone(),
            lapsed: lapsed_tx,
        };
        Ok(Built {
            worker: Arc::new(worker),
            kind: "push",
            control: Control {
                commands: Some(tx),
                pruners,
                snapshots: Some(triggers),
                replicas,
            },
            passive: false,
            lanes: handles,
        })
    }
}
