//! The serving side: handshake, then one call after the other, each answered
//! with heartbeats while its handler runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use zrelay_endpoint::{BatchResult, EndpointError, Receiver, Sender};
use zrelay_transport::Conn;
use zrelay_zfs::process::SendStream;

use crate::compress::{CompressReq, StreamStart, ZstdOut};
use crate::error::{RpcError, WireError};
use crate::frame::{decode, Frame, FrameReader, FrameWriter};
use crate::stream::{pump_out, DataIn, InState, PumpEnd};
use crate::wire::{PingReply, Request};
use crate::{check, handshake, RpcConfig};

/// What a daemon serves: a sink only a receiver, a source only a sender.
#[derive(Clone, Default)]
pub struct Endpoints {
    /// The sending side, if served.
    pub sender: Option<Arc<dyn Sender>>,
    /// The receiving side, if served.
    pub receiver: Option<Arc<dyn Receiver>>,
}

/// Serve one connection: the handshake, then calls until the client closes
/// the connection or `cancel` fires. On cancel, a receive in progress is
/// failed through its stream (so that `zfs recv -s` keeps its resumable
/// state) and a send in progress is closed. Calls are logged at DEBUG,
/// failures at WARN; the returned error has been logged already.
pub async fn serve_conn(
    mut conn: Conn,
    peer: String,
    endpoints: Arc<Endpoints>,
    cfg: RpcConfig,
    cancel: CancellationToken,
) -> Result<(), RpcError> {
    let hello = tokio::select! {
        r = handshake::server(&mut conn, &cfg) => r,
        _ = cancel.cancelled() => return Ok(()),
    };
    let hello = match hello {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "refusing the connection");
            return Err(e);
        }
    };
    tracing::debug!(%peer, software = %hello.software_version, "zrelay client connected");
    let (rd, wr) = tokio::io::split(conn);
    let mut s = Session {
        rd: Some(FrameReader::server(rd, &cfg)),
        wr: FrameWriter::new(wr),
        peer,
        endpoints,
        cfg,
        cancel,
    };
    let r = s.run().await;
    match &r {
        Ok(()) => tracing::debug!(peer = %s.peer, "connection closed"),
        Err(e) => tracing::warn!(peer = %s.peer, error = %e, "connection failed"),
    }
    r
}

/// After a call: go on, or close the connection.
enum Flow {
    Next,
    Close,
}

struct Session {
    /// `None` only while a receive's stream owns it.
    rd: Option<FrameReader>,
    wr: FrameWriter,
    peer: String,
    endpoints: Arc<Endpoints>,
    cfg: RpcConfig,
    cancel: CancellationToken,
}

/// Run `fut`, writing a heartbeat whenever it runs for another `every`.
/// A failed heartbeat stops the heartbeats, not `fut`.
async fn with_heartbeats<F: Future>(wr: &mut FrameWriter, every: Duration, fut: F) -> F::Output {
    tokio::pin!(fut);
    let mut broken = false;
    loop {
        tokio::select! {
            biased;
            out = &mut fut => return out,
            _ = tokio::time::sleep(every), if !broken => {
                broken = wr.heartbeat().await.is_err();
            }
        }
    }
}

fn batch(r: BatchResult<EndpointError>) -> Vec<Result<(), WireError>> {
    r.into_iter()
        .map(|r| r.map_err(|e| WireError::from_endpoint(&e)))
        .collect()
}

fn ep<T>(r: Result<T, EndpointError>) -> Result<T, WireError> {
    r.map_err(|e| WireError::from_endpoint(&e))
}

impl Session {
    /// The next request's frame, heartbeats skipped: `Ok(None)` when the client closed
    /// the connection, or when no request started within the request idle timeout (the
    /// connection is closed; logged here). Heartbeats do not extend the timeout (a client
    /// sends none between calls). A frame that started is bounded by the frame timeout.
    async fn next_frame(&mut self) -> Result<Option<Frame>, RpcError> {
        let idle = self.cfg.request_idle_timeout;
        let deadline = tokio::time::Instant::now() + idle;
        let rd = self
            .rd
            .as_mut()
            .expect("the reader is back after each call");
        loop {
            let f = match tokio::time::timeout_at(deadline, rd.frame()).await {
                Ok(r) => r,
                Err(_) if rd.in_frame() => rd.frame().await,
                Err(_) => {
                    tracing::info!(
                        peer = %self.peer,
                        after = ?idle,
                        "closing an idle connection: no request within the idle timeout"
                    );
                    return Ok(None);
                }
            };
            match f {
                Ok(Some(Frame::Heartbeat)) => continue,
                other => return other,
            }
        }
    }

    async fn run(&mut self) -> Result<(), RpcError> {
        loop {
            let cancel = self.cancel.clone();
            let frame = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                f = self.next_frame() => f,
            };
            let payload = match frame {
                Ok(None) => return Ok(()),
                Ok(Some(Frame::Control(p))) => p,
                Ok(Some(f)) => {
                    return self
                        .refuse(RpcError::Protocol(format!(
                            "expected a request, received {f}"
                        )))
                        .await
                }
                Err(e) => return self.refuse(e).await,
            };
            let req: Request = match decode(&payload, "request") {
                Ok(r) => r,
                Err(e) => return self.refuse(e).await,
            };
            let name = req.name();
            tracing::debug!(peer = %self.peer, call = name, "call");
            if let Err(why) = check::request(&req, &self.cfg) {
                let w = WireError::new(format!("request {name} refused: {why}"), false);
                self.reply_error(name, &w).await?;
                continue;
            }
            if let Flow::Close = self.dispatch(req, name).await? {
                return Ok(());
            }
        }
    }

    /// Tell the client what is wrong with what it sent (best effort) and fail.
    async fn refuse(&mut self, e: RpcError) -> Result<(), RpcError> {
        let _ = self.wr.error(&WireError::from_rpc(&e)).await;
        Err(e)
    }

    fn sender(&self, call: &str) -> Result<Arc<dyn Sender>, WireError> {
        self.endpoints.sender.clone().ok_or_else(|| {
            WireError::new(
                format!(
                    "this zrelay serves no sender (it is a sink or a push job's \
                     receiving side): cannot answer {call}"
                ),
                false,
            )
        })
    }

    fn receiver(&self, call: &str) -> Result<Arc<dyn Receiver>, WireError> {
        self.endpoints.receiver.clone().ok_or_else(|| {
            WireError::new(
                format!(
                    "this zrelay serves no receiver (it is a source or a push job's \
                     sending side): cannot answer {call}"
                ),
                false,
            )
        })
    }

    /// Run a handler with heartbeats and send its reply.
    async fn answer<T, F>(&mut self, name: &str, fut: F) -> Result<Flow, RpcError>
    where
        T: Serialize,
        F: Future<Output = Result<T, WireError>>,
    {
        let cancel = self.cancel.clone();
        let out = tokio::select! {
            biased;
            r = with_heartbeats(&mut self.wr, self.cfg.heartbeat(), fut) => Some(r),
            _ = cancel.cancelled() => None,
        };
        match out {
            Some(Ok(v)) => self.wr.control(&v).await.map(|()| Flow::Next),
            Some(Err(w)) => self.reply_error(name, &w).await.map(|()| Flow::Next),
            None => {
                let w = WireError::from_rpc(&RpcError::ShuttingDown);
                let _ = self.wr.error(&w).await;
                Ok(Flow::Close)
            }
        }
    }

    async fn reply_error(&mut self, name: &str, w: &WireError) -> Result<(), RpcError> {
        tracing::warn!(
            peer = %self.peer,
            call = name,
            temporary = w.temporary,
            resumable = w.resume_token.is_some(),
            error = %w.message,
            "call failed"
        );
        self.wr.error(w).await
    }

    async fn dispatch(&mut self, req: Request, name: &'static str) -> Result<Flow, RpcError> {
        use Request as R;
        let (s, r) = (self.sender(name), self.receiver(name));
        match req {
            R::Ping => {
                let reply = PingReply {
                    sender: s.is_ok(),
                    receiver: r.is_ok(),
                };
                self.answer(name, async { Ok(reply) }).await
            }
            R::SenderListFilesystems => {
                self.answer(name, async { ep(s?.list_filesystems().await) })
                    .await
            }
            R::SenderListVersions { fs } => {
                self.answer(name, async { ep(s?.list_versions(&fs).await) })
                    .await
            }
            R::SenderReplicationCursor { fs } => {
                self.answer(name, async { ep(s?.replication_cursor(&fs).await) })
                    .await
            }
            R::SenderEstimate { steps, concurrency } => {
                // The server decides how many `zfs send -nvP` run at once;
                // 0 asks for sizes from properties, with no dry run.
                let concurrency = match concurrency {
                    0 => 0,
                    n => n.clamp(1, self.cfg.max_estimate_concurrency.max(1)),
                };
                self.answer(name, async {
                    let v = ep(s?.estimate(&steps, concurrency).await)?;
                    Ok(v.into_iter().map(ep).collect::<Vec<_>>())
                })
                .await
            }
            R::SenderPrepare { reqs } => {
                self.answer(name, async { Ok(batch(ep(s?.prepare(&reqs).await)?)) })
                    .await
            }
            R::SenderCommit { reqs } => {
                self.answer(name, async { Ok(batch(ep(s?.commit(&reqs).await)?)) })
                    .await
            }
            R::SenderAbort { fss } => {
                self.answer(name, async { Ok(batch(ep(s?.abort(&fss).await)?)) })
                    .await
            }
            R::SenderDestroySnapshots { fs, snapshots } => {
                self.answer(name, async {
                    ep(s?.destroy_snapshots(&fs, &snapshots).await)
                })
                .await
            }
            R::ReceiverListFilesystems => {
                self.answer(name, async { ep(r?.list_filesystems().await) })
                    .await
            }
            R::ReceiverListVersions { fs } => {
                self.answer(name, async { ep(r?.list_versions(&fs).await) })
                    .await
            }
            R::ReceiverDestroySnapshots { fs, snapshots } => {
                self.answer(name, async {
                    ep(r?.destroy_snapshots(&fs, &snapshots).await)
                })
                .await
            }
            R::ReceiverCommit { reqs } => {
                self.answer(name, async { Ok(batch(ep(r?.commit(&reqs).await)?)) })
                    .await
            }
            R::ReceiverRenameReplica { from, to } => {
                self.answer(name, async { ep(r?.rename_replica(&from, &to).await) })
                    .await
            }
            R::ReceiverDestroyReplica { fs } => {
                self.answer(name, async { ep(r?.destroy_replica(&fs).await) })
                    .await
            }
            R::SenderSend { step, compress } => match s {
                Ok(s) => self.send(name, s, step, compress).await,
                Err(w) => self.reply_error(name, &w).await.map(|()| Flow::Next),
            },
            R::ReceiverReceive { step, compress } => match r {
                Ok(r) => self.receive(name, r, step, compress).await,
                Err(w) => self.reply_error(name, &w).await.map(|()| Flow::Next),
            },
        }
    }

    /// `sender.send`: start the stream, acknowledge, pump it to the client.
    async fn send(
        &mut self,
        name: &str,
        sender: Arc<dyn Sender>,
        step: zrelay_endpoint::StepReq,
        compress: Option<CompressReq>,
    ) -> Result<Flow, RpcError> {
        let cancel = self.cancel.clone();
        let started = tokio::select! {
            biased;
            r = with_heartbeats(&mut self.wr, self.cfg.heartbeat(), sender.send(&step)) => r,
            _ = cancel.cancelled() => Err(EndpointError::Cancelled),
        };
        let mut stream = match started {
            Ok(s) => s,
            Err(e) => {
                return self
                    .reply_error(name, &WireError::from_endpoint(&e))
                    .await
                    .map(|()| Flow::Next)
            }
        };
        let mut zstd = ZstdOut::agreed(compress, self.cfg.chunk(), &self.peer);
        let started = match compress {
            None => self.wr.control(&()).await,
            Some(_) => self.wr.control(&StreamStart::of(zstd.as_ref())).await,
        };
        if let Err(e) = started {
            let _ = stream.close().await;
            return Err(e);
        }
        let mut cancelled = std::pin::pin!(cancel.cancelled());
        let rd = self.rd.as_mut().expect("reader present");
        let end = pump_out(
            &mut *stream,
            &mut self.wr,
            self.cfg.chunk(),
            self.cfg.heartbeat(),
            zstd.as_mut(),
            |cx| {
                if cancelled.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(RpcError::ShuttingDown.to_string());
                }
                rd.poll_unexpected(cx)
            },
        )
        .await;
        let _ = stream.close().await;
        if let Some(z) = &zstd {
            tracing::debug!(peer = %self.peer, raw = z.raw, wire = z.wire, "sent a zstd-compressed stream");
        }
        match end {
            Ok(PumpEnd::Done) => Ok(Flow::Next),
            Ok(PumpEnd::SourceFailed(e)) => {
                let w = WireError::from_io(&e);
                self.reply_error(name, &w).await.map(|()| Flow::Next)
            }
            Ok(PumpEnd::Stopped(why)) => {
                if cancel.is_cancelled() {
                    let _ = self
                        .wr
                        .error(&WireError::from_rpc(&RpcError::ShuttingDown))
                        .await;
                }
                tracing::debug!(peer = %self.peer, call = name, reason = %why, "send stream stopped");
                Ok(Flow::Close)
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, call = name, error = %e, "send stream given up by the client");
                Ok(Flow::Close)
            }
        }
    }

    /// `receiver.receive`: acknowledge, feed the client's data stream to the
    /// receiver, reply with its result.
    async fn receive(
        &mut self,
        name: &str,
        receiver: Arc<dyn Receiver>,
        step: zrelay_endpoint::StepReq,
        compress: Option<CompressReq>,
    ) -> Result<Flow, RpcError> {
        let mut data = DataIn::new(self.peer.clone(), self.cfg.idle_timeout);
        match compress {
            None => self.wr.control(&()).await?,
            Some(_) => {
                data = data.with_zstd(self.cfg.max_data_chunk);
                self.wr.control(&StreamStart::ZSTD).await?
            }
        }
        let (tx, rx) = oneshot::channel();
        let stream = RecvStream {
            rd: self.rd.take(),
            data: Some(data),
            cancel: Box::pin(self.cancel.clone().cancelled_owned()),
            closed: false,
            back: Some(tx),
        };
        let cancel = self.cancel.clone();
        let grace = self.cfg.idle_timeout;
        let received = receiver.receive(&step, Box::new(stream));
        let shutdown = async {
            cancel.cancelled().await;
            tokio::time::sleep(grace).await
        };
        let out = tokio::select! {
            r = with_heartbeats(&mut self.wr, self.cfg.heartbeat(), received) => Some(r),
            _ = shutdown => None,
        };
        let Ok(Ok((rd, mut data))) = tokio::time::timeout(grace, rx).await else {
            tracing::warn!(
                peer = %self.peer,
                call = name,
                "the receiver kept the stream after it returned; closing the connection"
            );
            return Ok(Flow::Close);
        };
        self.rd = Some(rd);
        let Some(out) = out else {
            let _ = self
                .wr
                .error(&WireError::from_rpc(&RpcError::ShuttingDown))
                .await;
            return Ok(Flow::Close);
        };
        if out.is_ok() && data.state == InState::Open {
            self.drain(&mut data).await; // the rest of the stream (its end), then the reply
        }
        match &out {
            Ok(()) => self.wr.control(&()).await?,
            Err(e) => self.reply_error(name, &WireError::from_endpoint(e)).await?,
        }
        if data.state == InState::Open {
            self.drain(&mut data).await;
        }
        Ok(match data.state {
            InState::Ended | InState::Aborted(_) if !self.cancel.is_cancelled() => Flow::Next,
            _ => Flow::Close,
        })
    }

    /// Skip the rest of a data stream the receiver did not read.
    async fn drain(&mut self, data: &mut DataIn) {
        let mut scratch = vec![0u8; 64 << 10];
        let rd = self.rd.as_mut().expect("reader present");
        while data.state == InState::Open {
            let mut buf = ReadBuf::new(&mut scratch);
            let _ = std::future::poll_fn(|cx| data.poll_read(rd, cx, &mut buf)).await;
        }
    }
}

/// The stream a served receive reads: the client's data frames, straight
/// from the connection. It hands the connection's reader back when dropped.
struct RecvStream {
    rd: Option<FrameReader>,
    data: Option<DataIn>,
    cancel: Pin<Box<WaitForCancellationFutureOwned>>,
    closed: bool,
    back: Option<oneshot::Sender<(FrameReader, DataIn)>>,
}

impl AsyncRead for RecvStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(std::io::Error::other("the received stream is closed")));
        }
        if this.cancel.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::other(
                RpcError::ShuttingDown.to_string(),
            )));
        }
        match (this.data.as_mut(), this.rd.as_mut()) {
            (Some(data), Some(rd)) => data.poll_read(rd, cx, buf),
            _ => Poll::Ready(Err(std::io::Error::other("the received stream is gone"))),
        }
    }
}

#[async_trait]
impl SendStream for RecvStream {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.closed = true;
        Ok(())
    }
}

impl Drop for RecvStream {
    fn drop(&mut self) {
        if let (Some(back), Some(rd), Some(data)) =
            (self.back.take(), self.rd.take(), self.data.take())
        {
            let _ = back.send((rd, data));
        }
    }
}
