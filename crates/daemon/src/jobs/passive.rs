//! Sink and source jobs: the passive side. Each accepted, authenticated
//! connection is served by the protocol with this job's endpoints:
//! - a sink gives client X a receiver confined to `root_fs/X` (one receiver
//!   per identity, kept across connections so its caches stay warm);
//! - a source gives every client the same sender of its `filesystems`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};
use zrelay_endpoint::{ClientIdentity, JobId, LocalReceiver, Receiver, RecvOptions, Sender};
use zrelay_rpc::{Endpoints, RpcConfig};
use zrelay_transport::Listener;
use zrelay_zfs::{DatasetPath, Zfs};

use super::{JobState, StatusCell};

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

/// One sink or source job, ready to run.
pub struct PassiveJob {
    pub(crate) name: JobId,
    pub(crate) listener: Box<dyn Listener>,
    pub(crate) serves: Arc<Serves>,
    pub(crate) rpc: RpcConfig,
    pub(crate) status: StatusCell,
}

impl Serves {
    fn endpoints(&self, job: &JobId, identity: &ClientIdentity) -> Result<Endpoints, String> {
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
                            Arc::new(
                                LocalReceiver::for_client(
                                    zfs.clone(),
                                    job.clone(),
                                    root_fs.clone(),
                                    identity.as_str(),
                                    recv.clone(),
                                )
                                .map_err(|e| e.to_string())?,
                            ),
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

impl PassiveJob {
    /// Accept and serve connections until `cancel` fires; then stop the
    /// connections (a receive in progress is aborted, keeping its resumable
    /// state) and wait for them.
    pub async fn run(mut self, cancel: CancellationToken) {
        let listening = self.listener.describe();
        {
            let mut g = self.status.lock().unwrap();
            g.status.state = JobState::Serving;
            g.status.endpoint = listening.clone();
        }
        info!(job = %self.name, listener = %listening, "serving");
        let mut conns = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                a = self.listener.accept() => a,
            };
            let a = match accepted {
                Ok(a) => {
                    failures = 0;
                    a
                }
                Err(e) => {
                    failures += 1;
                    error!(job = %self.name, error = %e, "accepting connections failed");
                    if !e.is_temporary() && failures > 10 {
                        let mut g = self.status.lock().unwrap();
                        g.status.state = JobState::Failed;
                        g.status.last_error = Some(e.to_string());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25))))
                        .await;
                    continue;
                }
            };
            self.status.lock().unwrap().status.connections += 1;
            let endpoints = match self.serves.endpoints(&self.name, &a.identity) {
                Ok(e) => Arc::new(e),
                Err(e) => {
                    warn!(job = %self.name, peer = %a.peer, client = %a.identity, error = %e, "refusing client");
                    continue;
                }
            };
            debug!(job = %self.name, peer = %a.peer, client = %a.identity, "client connected");
            let span = info_span!("conn", job = %self.name, client = %a.identity, peer = %a.peer);
            conns.spawn(
                zrelay_rpc::serve_conn(
                    a.conn,
                    a.peer,
                    endpoints,
                    self.rpc.clone(),
                    cancel.child_token(),
                )
                .instrument(span),
            );
        }
        drop(self.listener);
        if tokio::time::timeout(Duration::from_secs(30), async {
            while conns.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            warn!(job = %self.name, "connections did not stop within 30s; dropping them");
        }
        self.status.lock().unwrap().status.state = JobState::Stopped;
        info!(job = %self.name, "job stopped");
    }
}
