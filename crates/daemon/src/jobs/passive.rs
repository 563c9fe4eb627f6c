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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};
use zrelay_endpoint::{ClientIdentity, JobId, LocalReceiver, Receiver, RecvOptions, Sender};
use zrelay_rpc::{Endpoints, RpcConfig};
use zrelay_transport::{RateLog, LOG_INTERVAL};
use zrelay_zfs::{Classify, DatasetPath, Zfs};

use async_trait::async_trait;
use zrelay_transport::ServeOptions;

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
        /// One receiver per client.
        receivers: Mutex<HashMap<ClientIdentity, Arc<dyn Receiver>>>,
        /// `recv.bandwidth_limit`, shared by all clients of the job.
        bandwidth: Option<Arc<zrelay_endpoint::Bucket>>,
    },
    /// A source: one sender.
    Source(Arc<dyn Sender>),
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

/// The connection caps of a passive job (`limits.max_connections*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once.
    pub max: usize,
    /// Connections served at once per client identity.
    pub per_client: usize,
}

/// The connections being served, in total and per identity.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per: HashMap<ClientIdentity, usize>,
}

/// A served connection's place in the counts; given back on drop.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    identity: ClientIdentity,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap();
        c.total -= 1;
        if let Some(n) = c.per.get_mut(&self.identity) {
            *n -= 1;
            if *n == 0 {
                c.per.remove(&self.identity);
            }
        }
    }
}

/// A slot for a new connection of `identity`, or why there is none.
fn take_slot(
    counts: &Arc<Mutex<Counts>>,
    limits: ConnLimits,
    identity: &ClientIdentity,
) -> Result<Slot, String> {
    let mut c = counts.lock().unwrap();
    let mine = c.per.get(identity).copied().unwrap_or(0);
    if mine >= limits.per_client {
        return Err(format!(
            "client {identity} already has {mine} connections (limits.max_connections_per_client {})",
            limits.per_client
        ));
    }
    if c.total >= limits.max {
        return Err(format!(
            "the job already serves {} connections (limits.max_connections {})",
            c.total, limits.max
        ));
    }
    c.total += 1;
    *c.per.entry(identity.clone()).or_default() += 1;
    Ok(Slot {
        counts: counts.clone(),
        identity: identity.clone(),
    })
}

impl Serves {
    fn endpoints(
        &self,
        job: &JobId,
        identity: &ClientIdentity,
    ) -> Result<Endpoints, zrelay_endpoint::EndpointError> {
        match self {
            Serves::Source(s) => Ok(Endpoints {
                sender: Some(s.clone()),
                receiver: None,
            }),
            Serves::Sink {
                zfs,
                root_fs,
                recv,
                receivers,
                bandwidth,
            } => {
                let mut g = receivers.lock().unwrap();
                let r = match g.get(identity) {
                    Some(r) => r.clone(),
                    None => {
                        let r: Arc<dyn Receiver> = zrelay_endpoint::throttle_receiver(
                            Arc::new(LocalReceiver::for_client(
                                zfs.clone(),
                                job.clone(),
                                root_fs.clone(),
                                identity.as_str(),
                                recv.clone(),
                            )?),
                            bandwidth.clone(),
                        );
                        g.insert(identity.clone(), r.clone());
                        r
                    }
                };
                Ok(Endpoints {
                    sender: None,
                    receiver: Some(r),
                })
            }
        }
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
        let counts = Arc::new(Mutex::new(Counts::default()));
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
            let slot = match take_slot(&counts, self.limits, &a.identity) {
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
            let endpoints = match self.serves.endpoints(&self.name, &a.identity) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClientIdentity {
        ClientIdentity::parse(s).unwrap()
    }

    #[test]
    fn caps_per_client_and_per_job_and_slots_come_back() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let lim = ConnLimits {
            max: 3,
            per_client: 2,
        };
        let a1 = take_slot(&counts, lim, &id("a")).unwrap();
        let _a2 = take_slot(&counts, lim, &id("a")).unwrap();
        let e = take_slot(&counts, lim, &id("a")).err().unwrap();
        assert!(e.contains("client a already has 2"), "{e}");
        let _b1 = take_slot(&counts, lim, &id("b")).unwrap();
        let e = take_slot(&counts, lim, &id("c")).err().unwrap();
        assert!(e.contains("already serves 3"), "{e}");
        drop(a1);
        let _c1 = take_slot(&counts, lim, &id("c")).unwrap();
        assert_eq!(counts.lock().unwrap().total, 3);
    }
}
