//! Framing: the reading half ([`FrameReader`], poll-based and cancel-safe,
//! so that data streams can read payloads straight into their caller's
//! buffer) and the writing half ([`FrameWriter`]).

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use zrelay_transport::Conn;

use crate::error::{show_bytes, RpcError, WireError};
use crate::frame_kind as k;
use crate::{RpcConfig, FRAME_HEADER_LEN as HDR};

/// Longest reason a data-abort frame may carry.
const MAX_ABORT_REASON: usize = 64 << 10;

/// How many payload bytes an error message shows.
pub(crate) const SHOW: usize = 120;

/// A frame as read. Data payloads are left on the connection: the reader's
/// caller reads them with [`FrameReader::poll_read_payload`].
#[derive(Debug)]
pub(crate) enum Frame {
    /// A control message (JSON, not yet decoded).
    Control(Vec<u8>),
    /// A data chunk of this many bytes follows.
    Data(usize),
    /// The data stream ended cleanly.
    DataEnd,
    /// The producer gave the data stream up, for this reason.
    DataAbort(String),
    /// The peer is still working.
    Heartbeat,
    /// An error reply.
    Error(WireError),
}

/// Decode a control message as `T`, naming `what` on failure.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8], what: &str) -> Result<T, RpcError> {
    serde_json::from_slice(payload).map_err(|e| RpcError::InvalidJson {
        what: what.to_string(),
        error: e.to_string(),
        received: show_bytes(payload, SHOW),
    })
}

/// The reading half of a connection.
pub(crate) struct FrameReader {
    rd: ReadHalf<Conn>,
    hdr: [u8; HDR],
    hdr_len: usize,
    /// A non-data frame whose payload is being read: kind, buffer, filled.
    payload: Option<(u8, Vec<u8>, usize)>,
    max_control: usize,
    max_chunk: usize,
}

impl FrameReader {
    pub(crate) fn new(rd: ReadHalf<Conn>, cfg: &RpcConfig) -> Self {
        FrameReader {
            rd,
            hdr: [0; HDR],
            hdr_len: 0,
            payload: None,
            max_control: cfg.max_control_message,
            max_chunk: cfg.max_data_chunk,
        }
    }

    /// The next frame; `None` when the peer closed the connection at a frame
    /// boundary. Cancel-safe: a partial frame is kept for the next call.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Frame>, RpcError>> {
        loop {
            if let Some((_, buf, filled)) = self.payload.as_mut() {
                while *filled < buf.len() {
                    let mut rb = ReadBuf::new(&mut buf[*filled..]);
                    ready!(Pin::new(&mut self.rd).poll_read(cx, &mut rb))
                        .map_err(|e| RpcError::io("reading a frame", e))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(RpcError::Closed(
                            "in the middle of a frame".into(),
                        )));
                    }
                    *filled += n;
                }
                let (kind, buf, _) = self.payload.take().expect("payload in progress");
                return Poll::Ready(finish(kind, buf).map(Some));
            }
            while self.hdr_len < HDR {
                let mut rb = ReadBuf::new(&mut self.hdr[self.hdr_len..]);
                ready!(Pin::new(&mut self.rd).poll_read(cx, &mut rb))
                    .map_err(|e| RpcError::io("reading a frame header", e))?;
                let n = rb.filled().len();
                if n == 0 {
                    if self.hdr_len == 0 {
                        return Poll::Ready(Ok(None));
                    }
                    return Poll::Ready(Err(RpcError::Closed(
                        "in the middle of a frame header".into(),
                    )));
                }
                self.hdr_len += n;
            }
            self.hdr_len = 0;
            let kind = self.hdr[0];
            let len =
                u32::from_be_bytes([self.hdr[1], self.hdr[2], self.hdr[3], self.hdr[4]]) as usize;
            let limit = |what: &'static str, limit: usize| {
                if len > limit {
                    Err(RpcError::TooLarge {
                        what,
                        size: len as u64,
                        limit: limit as u64,
                    })
                } else {
                    Ok(())
                }
            };
            match kind {
                k::DATA => {
                    limit("data chunk", self.max_chunk)?;
                    return Poll::Ready(Ok(Some(Frame::Data(len))));
                }
                k::DATA_END | k::HEARTBEAT => {
                    if len != 0 {
                        return Poll::Ready(Err(RpcError::Protocol(format!(
                            "frame type {kind:#04x} must be empty, its header announces {len} bytes"
                        ))));
                    }
                    let f = if kind == k::DATA_END {
                        Frame::DataEnd
                    } else {
                        Frame::Heartbeat
                    };
                    return Poll::Ready(Ok(Some(f)));
                }
                k::CONTROL => limit("control message", self.max_control)?,
                k::ERROR => limit("error message", self.max_control)?,
                k::DATA_ABORT => limit("data abort reason", MAX_ABORT_REASON)?,
                _ => {
                    return Poll::Ready(Err(RpcError::UnknownFrame {
                        kind,
                        received: show_header(&self.hdr),
                    }))
                }
            }
            // Allocated only now, after the limit check.
            self.payload = Some((kind, vec![0; len], 0));
        }
    }

    /// The next frame (see [`FrameReader::poll_frame`]).
    pub(crate) async fn frame(&mut self) -> Result<Option<Frame>, RpcError> {
        poll_fn(|cx| self.poll_frame(cx)).await
    }

    /// Read payload bytes of the current data frame into `buf` (at most as
    /// many as it has room for; the caller limits it to what is left).
    pub(crate) fn poll_read_payload(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.rd).poll_read(cx, buf)
    }

    /// Whether the peer sent anything (or closed) while it should be silent:
    /// `Ready` means the connection cannot go on.
    pub(crate) fn poll_unexpected(&mut self, cx: &mut Context<'_>) -> Poll<String> {
        match ready!(self.poll_frame(cx)) {
            Ok(None) => Poll::Ready("the peer closed the connection".into()),
            Ok(Some(f)) => Poll::Ready(format!("unexpected frame {f:?}")),
            Err(e) => Poll::Ready(e.to_string()),
        }
    }
}

fn finish(kind: u8, buf: Vec<u8>) -> Result<Frame, RpcError> {
    Ok(match kind {
        k::CONTROL => Frame::Control(buf),
        k::ERROR => Frame::Error(decode(&buf, "error frame")?),
        _ => Frame::DataAbort(String::from_utf8_lossy(&buf).into_owned()),
    })
}

/// A frame header for messages: hex and text.
fn show_header(h: &[u8; HDR]) -> String {
    let hex: Vec<String> = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("{} {}", hex.join(" "), show_bytes(h, HDR))
}

/// Encode a header in front of a payload of `len` bytes.
pub(crate) fn header(kind: u8, len: usize) -> [u8; HDR] {
    let l = (len as u32).to_be_bytes();
    [kind, l[0], l[1], l[2], l[3]]
}

/// The writing half of a connection. Every frame goes out with one write
/// call and is flushed.
pub(crate) struct FrameWriter {
    wr: WriteHalf<Conn>,
}

impl FrameWriter {
    pub(crate) fn new(wr: WriteHalf<Conn>) -> Self {
        FrameWriter { wr }
    }

    async fn put(&mut self, frame: &[u8], what: &str) -> Result<(), RpcError> {
        self.wr
            .write_all(frame)
            .await
            .map_err(|e| RpcError::io(format!("writing {what}"), e))?;
        self.wr
            .flush()
            .await
            .map_err(|e| RpcError::io(format!("writing {what}"), e))
    }

    async fn json<T: Serialize>(&mut self, kind: u8, v: &T, what: &str) -> Result<(), RpcError> {
        let mut buf = vec![0u8; HDR];
        serde_json::to_writer(&mut buf, v)
            .map_err(|e| RpcError::Protocol(format!("cannot encode {what}: {e}")))?;
        let len = buf.len() - HDR;
        if len > u32::MAX as usize {
            return Err(RpcError::TooLarge {
                what: "control message",
                size: len as u64,
                limit: u32::MAX as u64,
            });
        }
        buf[..HDR].copy_from_slice(&header(kind, len));
        self.put(&buf, what).await
    }

    /// A control message.
    pub(crate) async fn control<T: Serialize>(&mut self, v: &T) -> Result<(), RpcError> {
        self.json(k::CONTROL, v, "a control message").await
    }

    /// An error reply.
    pub(crate) async fn error(&mut self, e: &WireError) -> Result<(), RpcError> {
        self.json(k::ERROR, e, "an error reply").await
    }

    /// A heartbeat.
    pub(crate) async fn heartbeat(&mut self) -> Result<(), RpcError> {
        self.put(&header(k::HEARTBEAT, 0), "a heartbeat").await
    }

    /// The end of a data stream.
    pub(crate) async fn data_end(&mut self) -> Result<(), RpcError> {
        self.put(&header(k::DATA_END, 0), "the end of a data stream")
            .await
    }

    /// Give a data stream up.
    pub(crate) async fn data_abort(&mut self, reason: &str) -> Result<(), RpcError> {
        let r = &reason.as_bytes()[..reason.len().min(MAX_ABORT_REASON)];
        let mut buf = Vec::with_capacity(HDR + r.len());
        buf.extend_from_slice(&header(k::DATA_ABORT, r.len()));
        buf.extend_from_slice(r);
        self.put(&buf, "a data abort").await
    }

    /// A data chunk: `buf[HDR..HDR + n]` is the payload, `buf[..HDR]` is
    /// room for the header.
    pub(crate) async fn data(&mut self, buf: &mut [u8], n: usize) -> Result<(), RpcError> {
        buf[..HDR].copy_from_slice(&header(k::DATA, n));
        self.put(&buf[..HDR + n], "a data chunk").await
    }
}
