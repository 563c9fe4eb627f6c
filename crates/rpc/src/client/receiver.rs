//! [`RemoteReceiver`]: a [`Receiver`] served by a remote zrelay.

use std::sync::Arc;
use std::task::Poll;

use async_trait::async_trait;
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, Receiver, Result,
    StepReq,
};
use zrelay_transport::Connector;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

use super::{read_reply, Client, Connection};
use crate::compress::{CompressReq, StreamStart, ZstdOut};
use crate::error::RpcError;
use crate::stream::{pump_out, PumpEnd};
use crate::wire::Request;
use crate::RpcConfig;

/// The receiving side of a replication, served by a remote zrelay over
/// connections from a [`Connector`] (reused for sequential calls).
pub struct RemoteReceiver {
    client: Arc<Client>,
}

impl RemoteReceiver {
    /// Calls go to `connector`'s peer.
    pub fn new(connector: Arc<dyn Connector>, cfg: RpcConfig) -> Self {
        RemoteReceiver {
            client: Arc::new(Client::new(connector, cfg)),
        }
    }
}

/// Pump `stream` to the server as data frames (a failing stream ends with a
/// `data abort`) while waiting for the server's reply. Returns the reply and
/// whether the connection is at a frame boundary (reusable).
async fn pump_and_wait(
    conn: &mut Connection,
    stream: &mut dyn SendStream,
    cfg: &RpcConfig,
    mut z: Option<ZstdOut>,
) -> (std::result::Result<(), RpcError>, bool) {
    let Connection {
        rd, wr, got_frame, ..
    } = conn;
    let pump = async {
        let end = pump_out(stream, wr, cfg.chunk(), cfg.heartbeat(), z.as_mut(), |_| {
            Poll::Pending
        })
        .await?;
        if let Some(z) = &z {
            tracing::debug!(raw = z.raw, wire = z.wire, "sent a zstd-compressed stream");
        }
        match end {
            PumpEnd::Done | PumpEnd::Stopped(_) => {}
            PumpEnd::SourceFailed(e) => {
                tracing::debug!(error = %e, "local stream failed; aborting the remote receive");
                wr.data_abort(&e.to_string()).await?;
            }
        }
        Ok::<(), RpcError>(())
    };
    let reply = read_reply::<()>(rd, got_frame, cfg, "receiver.receive");
    tokio::pin!(pump, reply);
    let mut pumped: Option<std::result::Result<(), RpcError>> = None;
    loop {
        tokio::select! {
            r = &mut reply => {
                let clean = matches!(pumped, Some(Ok(())))
                    && matches!(&r, Ok(()) | Err(RpcError::Remote(_)));
                return (r, clean);
            }
            p = &mut pump, if pumped.is_none() => {
                if let Err(e) = &p {
                    tracing::debug!(error = %e, "sending the stream failed; waiting for the reply");
                }
                pumped = Some(p);
            }
        }
    }
}

#[async_trait]
impl Receiver for RemoteReceiver {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        self.client
            .endpoint_call(Request::ReceiverListFilesystems)
            .await
    }

    async fn receive(&self, step: &StepReq, mut stream: Box<dyn SendStream>) -> Result<()> {
        let peer = &self.client.peer;
        let compress = CompressReq::from_config(self.client.cfg.compression);
        let req = Request::ReceiverReceive {
            step: step.clone(),
            compress,
        };
        let (start, mut conn) = match self.client.start::<Option<StreamStart>>(&req).await {
            Ok(x) => x,
            Err(e) => {
                let _ = stream.close().await;
                return Err(e.into_endpoint(peer));
            }
        };
        let zstd = ZstdOut::agreed(
            compress.filter(|_| StreamStart::zstd(start)),
            self.client.cfg.chunk(),
            peer,
        );
        let (r, clean) = pump_and_wait(&mut conn, stream.as_mut(), &self.client.cfg, zstd).await;
        let _ = stream.close().await;
        if clean {
            self.client.put(conn);
        }
        r.map_err(|e| e.into_endpoint(peer))
    }

    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        self.client
            .endpoint_batches(reqs, |_| 1, |reqs| Request::ReceiverCommit { reqs })
            .await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>> {
        self.client
            .endpoint_call(Request::ReceiverListVersions { fs: fs.clone() })
            .await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome> {
        self.client
            .destroy_in_batches(snapshots, |snapshots| Request::ReceiverDestroySnapshots {
                fs: fs.clone(),
                snapshots,
            })
            .await
    }

    async fn rename_replica(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        self.client
            .endpoint_call(Request::ReceiverRenameReplica {
                from: from.clone(),
                to: to.clone(),
            })
            .await
    }

    async fn destroy_replica(&self, fs: &DatasetPath) -> Result<()> {
        self.client
            .endpoint_call(Request::ReceiverDestroyReplica { fs: fs.clone() })
            .await
    }

    fn describe(&self) -> String {
        format!("remote receiver at {}", self.client.peer)
    }
}
