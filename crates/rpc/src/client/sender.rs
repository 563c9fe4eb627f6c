//! [`RemoteSender`]: a [`Sender`] served by a remote zrelay.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncRead, ReadBuf};
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, PrepareReq,
    Result, Sender, StepReq,
};
use zrelay_transport::Connector;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

use super::{Client, Connection};
use crate::compress::{CompressReq, StreamStart};
use crate::stream::{DataIn, InState};
use crate::wire::Request;
use crate::RpcConfig;

/// The sending side of a replication, served by a remote zrelay over
/// connections from a [`Connector`] (reused for sequential calls).
pub struct RemoteSender {
    client: Arc<Client>,
}

impl RemoteSender {
    /// Calls go to `connector`'s peer.
    pub fn new(connector: Arc<dyn Connector>, cfg: RpcConfig) -> Self {
        RemoteSender {
            client: Arc::new(Client::new(connector, cfg)),
        }
    }
}

#[async_trait]
impl Sender for RemoteSender {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        self.client
            .endpoint_call(Request::SenderListFilesystems)
            .await
    }

    async fn estimate(&self, steps: &[StepReq], concurrency: usize) -> Result<Vec<Result<u64>>> {
        self.client
            .endpoint_batches(
                steps,
                |_| 1,
                |steps| Request::SenderEstimate { steps, concurrency },
            )
            .await
    }

    async fn prepare(&self, reqs: &[PrepareReq]) -> Result<BatchResult<EndpointError>> {
        self.client
            .endpoint_batches(
                reqs,
                |r| r.steps.len(),
                |reqs| Request::SenderPrepare { reqs },
            )
            .await
    }

    async fn send(&self, step: &StepReq) -> Result<Box<dyn SendStream>> {
        let cfg = &self.client.cfg;
        let compress = CompressReq::from_config(cfg.compression);
        let req = Request::SenderSend {
            step: step.clone(),
            compress,
        };
        let (start, conn) = self
            .client
            .start::<Option<StreamStart>>(&req)
            .await
            .map_err(|e| e.into_endpoint(&self.client.peer))?;
        let mut data = DataIn::new(self.client.peer.clone(), cfg.idle_timeout);
        if compress.is_some() && StreamStart::zstd(start) {
            data = data.with_zstd(cfg.max_data_chunk);
        }
        Ok(Box::new(RemoteSendStream {
            conn: Some(conn),
            data,
            client: self.client.clone(),
            closed: false,
        }))
    }

    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        self.client
            .endpoint_batches(reqs, |_| 1, |reqs| Request::SenderCommit { reqs })
            .await
    }

    async fn abort(&self, fss: &[DatasetPath]) -> Result<BatchResult<EndpointError>> {
        self.client
            .endpoint_batches(fss, |_| 1, |fss| Request::SenderAbort { fss })
            .await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>> {
        self.client
            .endpoint_call(Request::SenderListVersions { fs: fs.clone() })
            .await
    }

    async fn replication_cursor(&self, fs: &DatasetPath) -> Result<Option<FsVersion>> {
        self.client
            .endpoint_call(Request::SenderReplicationCursor { fs: fs.clone() })
            .await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome> {
        self.client
            .destroy_in_batches(snapshots, |snapshots| Request::SenderDestroySnapshots {
                fs: fs.clone(),
                snapshots,
            })
            .await
    }

    fn describe(&self) -> String {
        format!("remote sender at {}", self.client.peer)
    }
}

/// The stream of a remote send: reads the connection's data frames straight
/// into the caller's buffer. At `data end` the connection goes back to the
/// pool; closing it before that drops the connection, which stops the
/// server's `zfs send`.
struct RemoteSendStream {
    /// `None` once the stream ended (connection pooled) or was closed.
    conn: Option<Connection>,
    data: DataIn,
    client: Arc<Client>,
    closed: bool,
}

impl AsyncRead for RemoteSendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "the stream from {} is closed",
                this.client.peer
            ))));
        }
        let Some(conn) = this.conn.as_mut() else {
            // Ended (EOF again) or broken (the same error again).
            return this.data.poll_read_done();
        };
        let r = this.data.poll_read(&mut conn.rd, cx, buf);
        match this.data.state {
            InState::Open => {}
            InState::Ended => {
                if let Some(c) = this.conn.take() {
                    this.client.put(c);
                }
            }
            InState::Aborted(_) | InState::Failed(_) => this.conn = None,
        }
        r
    }
}

#[async_trait]
impl SendStream for RemoteSendStream {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.closed = true;
        // Before the end, the connection is mid-stream: drop it.
        self.conn = None;
        Ok(())
    }
}
