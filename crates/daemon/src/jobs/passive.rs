//! Sink and source jobs: the passive side. Each accepted, authenticated
//! connection is served by the protocol with this job's endpoints:
//! - a sink gives client X a receiver confined to `root_fs/X` (one receiver
//!   per identity, kept across connections so its caches stay warm);
//! - a source gives every client the same sender of its `filesystems`.
//!
//! Invariants:
//! - At most [`ConnLimits::max`] connections are served at once, and at most
//!   [`ConnLimits::per_client`] per client identity; a connection over a cap
//!   is closed at once, before the hello. Refusals and accept failures are
//!   logged once per [`LOG_INTERVAL`] with a count, never once per attempt.
//! - A slot is given back when its connection's task ends, however it ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};
use zrelay_endpoint::{
    ClientIdentity, JobId, LocalReceiver, LocalSender, Receiver, RecvOptions, Sender, SiblingRole,
    Siblings,
};
use zrelay_rpc::{Endpoints, RpcConfig};
use zrelay_transport::{RateLog, LOG_INTERVAL};
use zrelay_zfs::{Classify, DatasetPath, Zfs};

use async_trait::async_trait;
use zrelay_transport::ServeOptions;

use super::caps::{Caps, ConnLimits};
use super::snap::SnapPart;
use crate::error::DaemonError;
use crate::status::JobState;
use crate::worker::{Publisher, Worker, WorkerStatus};

/// What a passive job serves.
pub enum Serves {
    /// A sink: receivers under `root_fs/<identity>`.
    Sink {
        /// The ZFS to receive into.
        zfs: Arc<dyn Zfs>,
        /// `root_fs`.
        root_fs: DatasetPath,
        /// `recv` options.
        recv: RecvOptions,
        /// `recv.bandwidth_limit`, shared by all clients of the job.
        bandwidth: Option<Arc<zrelay_endpoint::Bucket>>,
    },
    /// A source: one sender for every client.
    Source(Arc<dyn Sender>),
    /// A source with `per_client_cursors`: one sender per client, whose
    /// abstractions are named `<job>:<client>` and whose destroys keep what
    /// the other clients have not received.
    SourcePerClient {
        /// The ZFS to send from.
        zfs: Arc<dyn Zfs>,
        /// `filesystems`.
        filter: zrelay_endpoint::FsFilter,
        /// `send` options.
        send: zrelay_endpoint::SendOptions,
        /// `send.bandwidth_limit`, shared by all clients of the job.
        bandwidth: Option<Arc<zrelay_endpoint::Bucket>>,
    },
}

/// The endpoints of the clients seen by one run of a passive job, kept
/// across their connections so that their caches stay warm.
pub(crate) type ClientCache = HashMap<ClientIdentity, Endpoints>;

/// The job name of client `client` of source `job` with per-client cursors.
///
/// # Errors
/// The name is too long for zrepl's hold tags.
pub fn client_job(
    job: &JobId,
    client: &ClientIdentity,
) -> Result<JobId, zrelay_endpoint::abstractions::JobIdError> {
    JobId::new(&format!("{job}:{client}"))
}

/// One sink or source job (a source's snapshotter runs inside it).
pub(crate) struct PassiveWorker {
    pub(crate) name: JobId,
    pub(crate) serve: ServeOptions,
    pub(crate) serves: Arc<Serves>,
    pub(crate) rpc: RpcConfig,
    pub(crate) limits: ConnLimits,
    pub(crate) snap: Option<SnapPart>,
    pub(crate) status: Publisher,
}

impl Serves {
    /// The endpoints of a connection of `identity`; a sink keeps one
    /// receiver per client in `receivers` (the accept loop's), so its
    /// caches stay warm across connections.
    fn endpoints(
        &self,
        job: &JobId,
        identity: &ClientIdentity,
        cache: &mut ClientCache,
    ) -> Result<Endpoints, DaemonError> {
        if let Some(e) = cache.get(identity) {
            return Ok(e.clone());
        }
        let e = match self {
            Serves::Source(s) => {
                return Ok(Endpoints {
                    sender: Some(s.clone()),
                    receiver: None,
                })
            }
            Serves::SourcePerClient {
                zfs,
                filter,
                send,
                bandwidth,
            } => {
                let id = client_job(job, identity).map_err(|e| {
                    DaemonError::Config(format!("job {job}: client {identity}: {e}"))
                })?;
                let s = LocalSender::new(zfs.clone(), id, filter.clone(), send.clone())
                    .with_siblings(Siblings::new(format!("{job}:"), SiblingRole::Client));
                Endpoints {
                    sender: Some(zrelay_endpoint::throttle_sender(
                        Arc::new(s),
                        bandwidth.clone(),
                    )),
                    receiver: None,
                }
            }
            Serves::Sink {
                zfs,
                root_fs,
                recv,
                bandwidth,
            } => {
                let r: Arc<dyn Receiver> = zrelay_endpoint::throttle_receiver(
                    Arc::new(
                        LocalReceiver::for_client(
                            zfs.clone(),
                            job.clone(),
                            root_fs.clone(),
                            identity.as_str(),
                            recv.clone(),
                        )
                        .map_err(|e| DaemonError::Config(format!("job {job}: {e}")))?,
                    ),
                    bandwidth.clone(),
                );
                Endpoints {
                    sender: None,
                    receiver: Some(r),
                }
            }
        };
        cache.insert(identity.clone(), e.clone());
        Ok(e)
    }
}

impl PassiveWorker {
    /// Listen, then accept and serve connections until `cancel` fires; then
    /// stop the connections (a receive in progress is aborted, keeping its
    /// resumable state) and wait for them.
    async fn serve(&self, cancel: &CancellationToken) -> Result<(), DaemonError> {
        let mut listener = zrelay_transport::listen(&self.serve)
            .await
            .map_err(|source| DaemonError::Transport {
                job: self.name.to_string(),
                source,
            })?;
        let listening = listener.describe();
        self.status.update(|s| {
            s.state = JobState::Serving;
            s.endpoint = listening.clone();
            s.last_error = None;
        });
        info!(job = %self.name, listener = %listening, "serving");
        let mut conns = JoinSet::new();
        let mut failures = 0u32;
        let mut caps = Caps::new(self.limits);
        let mut clients = ClientCache::new();
        let mut refused = RateLog::new(LOG_INTERVAL);
        let mut accept_errors = RateLog::new(LOG_INTERVAL);
        let result = loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                a = listener.accept() => a,
            };
            let a = match accepted {
                Ok(a) => {
                    failures = 0;
                    a
                }
                Err(e) => {
                    failures += 1;
                    if let Some(n) = accept_errors.hit() {
                        error!(job = %self.name, error = %e, failures = n, "accepting connections failed");
                    }
                    if !e.is_temporary() && failures > 10 {
                        break Err(DaemonError::Transport {
                            job: self.name.to_string(),
                            source: e,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25))))
                        .await;
                    continue;
                }
            };
            let slot = match caps.take(&a.identity) {
                Ok(slot) => slot,
                Err(why) => {
                    drop(a.conn);
                    if let Some(n) = refused.hit() {
                        warn!(
                            job = %self.name,
                            peer = %a.peer,
                            client = %a.identity,
                            refused = n,
                            reason = %why,
                            "refusing a connection: too many connections ({n} refused since the last such line)"
                        );
                    }
                    continue;
                }
            };
            self.status.update(|s| s.connections += 1);
            let endpoints = match self.serves.endpoints(&self.name, &a.identity, &mut clients) {
                Ok(e) => Arc::new(e),
                Err(e) => {
                    warn!(job = %self.name, peer = %a.peer, client = %a.identity, error = %e, "refusing client");
                    continue;
                }
            };
            debug!(job = %self.name, peer = %a.peer, client = %a.identity, "client connected");
            let span = info_span!("conn", job = %self.name, client = %a.identity, peer = %a.peer);
            let served = zrelay_rpc::serve_conn(
                a.conn,
                a.peer,
                endpoints,
                self.rpc.clone(),
                cancel.child_token(),
            );
            conns.spawn(
                async move {
                    let _slot = slot;
                    served.await
                }
                .instrument(span),
            );
        };
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(30), async {
            while conns.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            warn!(job = %self.name, "connections did not stop within 30s; dropping them");
        }
        result
    }
}

#[async_trait]
impl Worker for PassiveWorker {
    fn name(&self) -> &str {
        self.name.as_str()
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus::Job(Box::new(self.status.read()))
    }

    async fn run(&self, cancel: CancellationToken) -> Result<(), DaemonError> {
        let snap = async {
            if let Some(s) = &self.snap {
                s.run(cancel.clone()).await;
            }
        };
        let serve = async {
            let r = self.serve(&cancel).await;
            if let Err(e) = &r {
                self.status.failed(e);
                // The snapshotter stops with the job; the supervisor
                // restarts both.
                cancel.cancel();
            }
            r
        };
        let ((), r) = tokio::join!(snap, serve);
        if r.is_ok() {
            self.status.update(|s| s.state = JobState::Stopped);
            info!(job = %self.name, "job stopped");
        }
        r
    }
}
