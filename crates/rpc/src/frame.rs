//! Framing: the reading half ([`FrameReader`], poll-based and cancel-safe,
//! so that data streams can read payloads straight into their caller's
//! buffer) and the writing half ([`FrameWriter`]).
//!
//! Invariants of the reader: an announced length is checked against its
//! limit before anything is read; a payload's buffer grows as bytes arrive
//! (starting at [`FIRST_CHUNK`], doubling, never past the announced length),
//! so a peer that announces 64 MiB and sends 10 bytes costs 64 KiB; once a
//! frame's first byte arrived, its header (and a non-data payload) must be
//! complete within the frame timeout.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::time::{Instant, Sleep};
use zrelay_transport::Conn;
use zrelay_zfs::peer_text::{self, PEER_TEXT_MAX};

use crate::error::{show_bytes, RpcError, WireError};
use crate::frame_kind as k;
use crate::{RpcConfig, FRAME_HEADER_LEN as HDR};

/// Longest reason a data-abort frame may carry.
const MAX_ABORT_REASON: usize = 64 << 10;

/// How many payload bytes an error message shows.
pub(crate) const SHOW: usize = 120;

/// How many bytes of a peer's error message are kept (escaped onto one line).
pub(crate) const PEER_ERROR_MAX: usize = 1024;

/// The first buffer of a payload; it doubles as bytes arrive.
pub(crate) const FIRST_CHUNK: usize = 64 << 10;

/// A frame as read. Data payloads are left on the connection: the reader's
/// caller reads them with [`FrameReader::poll_read_payload`].
#[derive(Debug)]
pub(crate) enum Frame {
    /// A control message (JSON, not yet decoded).
    Control(Vec<u8>),
    /// A data chunk of this many bytes follows.
    Data(usize),
    /// A compressed data chunk (one zstd frame) of this many bytes follows.
    DataZstd(usize),
    /// The data stream ended cleanly.
    DataEnd,
    /// The producer gave the data stream up, for this reason.
    DataAbort(String),
    /// The peer is still working.
    Heartbeat,
    /// An error reply.
    Error(WireError),
}

impl std::fmt::Display for Frame {
    /// A bounded description for errors and logs (a control payload shows its first
    /// bytes, escaped; peer text in the others is already shown safely).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frame::Control(p) => write!(f, "a control message {}", show_bytes(p, SHOW)),
            Frame::Data(n) => write!(f, "a data chunk of {n} bytes"),
            Frame::DataZstd(n) => write!(f, "a compressed data chunk of {n} bytes"),
            Frame::DataEnd => f.write_str("the end of a data stream"),
            Frame::DataAbort(why) => write!(f, "a data abort ({why})"),
            Frame::Heartbeat => f.write_str("a heartbeat"),
            Frame::Error(w) => write!(f, "an error ({})", w.message),
        }
    }
}

/// Decode a control message as `T`, naming `what` on failure.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8], what: &str) -> Result<T, RpcError> {
    serde_json::from_slice(payload).map_err(|e| RpcError::InvalidJson {
        what: what.to_string(),
        // The parser's message may quote the payload (an unknown call name, a value).
        error: peer_text::show(&e.to_string(), PEER_TEXT_MAX),
        received: show_bytes(payload, SHOW),
    })
}

/// A non-data frame whose payload is being read.
struct Partial {
    kind: u8,
    /// The announced length.
    want: usize,
    /// Grows as bytes arrive; `buf[..filled]` is the payload so far.
    buf: Vec<u8>,
    filled: usize,
}

/// The reading half of a connection.
pub(crate) struct FrameReader {
    rd: ReadHalf<Conn>,
    hdr: [u8; HDR],
    hdr_len: usize,
    payload: Option<Partial>,
    max_control: usize,
    max_chunk: usize,
    frame_timeout: Duration,
    /// Armed when a frame's first byte arrives; fires after the frame timeout.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Server: the shared budget the payload buffer is reserved from, and how much of
    /// it this reader holds.
    budget: Option<(crate::MemoryBudget, usize)>,
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        if let Some((b, held)) = &self.budget {
            b.give(*held);
        }
    }
}

impl FrameReader {
    /// A client's reader: replies up to `max_control_message`.
    pub(crate) fn new(rd: ReadHalf<Conn>, cfg: &RpcConfig) -> Self {
        FrameReader {
            rd,
            hdr: [0; HDR],
            hdr_len: 0,
            payload: None,
            max_control: cfg.max_control_message,
            max_chunk: cfg.max_data_chunk,
            frame_timeout: cfg.frame_timeout,
            deadline: None,
            budget: None,
        }
    }

    /// A server's reader: requests up to `max_request`.
    pub(crate) fn server(rd: ReadHalf<Conn>, cfg: &RpcConfig) -> Self {
        let mut r = FrameReader::new(rd, cfg);
        r.max_control = cfg.max_request.min(cfg.max_control_message);
        r.budget = cfg.request_memory.clone().map(|b| (b, 0));
        r
    }

    /// Grow `self.payload`'s buffer to `to` bytes, reserving the growth from the budget.
    fn reserve(&mut self, from: usize, to: usize) -> Result<(), RpcError> {
        if let Some((b, held)) = &mut self.budget {
            if !b.take(to - from) {
                return Err(RpcError::Busy(format!(
                    "the requests in progress hold the server's request memory ({} bytes)",
                    b.limit()
                )));
            }
            *held += to - from;
        }
        Ok(())
    }

    /// A payload is complete (or dropped): give its reservation back.
    fn release(&mut self) {
        if let Some((b, held)) = &mut self.budget {
            b.give(std::mem::take(held));
        }
    }

    /// Whether a frame has started to arrive and is not complete yet.
    pub(crate) fn in_frame(&self) -> bool {
        self.hdr_len > 0 || self.payload.is_some()
    }

    /// A frame began: arm its deadline.
    fn frame_started(&mut self) {
        let due = Instant::now() + self.frame_timeout;
        match self.deadline.as_mut() {
            Some(d) => d.as_mut().reset(due),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(due))),
        }
    }

    /// The reader must wait in the middle of a frame: fail if its time is up.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame>, RpcError>> {
        let expired = match self.deadline.as_mut() {
            Some(d) => d.as_mut().poll(cx).is_ready(),
            None => false,
        };
        if expired {
            return Poll::Ready(Err(RpcError::Timeout {
                what: "a frame that started did not complete".into(),
                after: self.frame_timeout,
            }));
        }
        Poll::Pending
    }

    /// The next frame; `None` when the peer closed the connection at a frame
    /// boundary. Cancel-safe: a partial frame is kept for the next call.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Frame>, RpcError>> {
        match self.poll_frame_inner(cx) {
            Poll::Pending if self.in_frame() => self.poll_deadline(cx),
            other => other,
        }
    }

    fn poll_frame_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame>, RpcError>> {
        loop {
            if self.payload.is_some() {
                loop {
                    let p = self.payload.as_mut().expect("payload in progress");
                    if p.filled == p.want {
                        break;
                    }
                    if p.filled == p.buf.len() {
                        // Grow only as bytes arrive: at most twice what came.
                        let from = p.buf.len();
                        let next = (from * 2).max(FIRST_CHUNK).min(p.want);
                        self.reserve(from, next)?;
                        let p = self.payload.as_mut().expect("payload in progress");
                        p.buf.resize(next, 0);
                    }
                    let p = self.payload.as_mut().expect("payload in progress");
                    let mut rb = ReadBuf::new(&mut p.buf[p.filled..]);
                    ready!(Pin::new(&mut self.rd).poll_read(cx, &mut rb))
                        .map_err(|e| RpcError::io("reading a frame", e))?;
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Err(RpcError::Closed(
                            "in the middle of a frame".into(),
                        )));
                    }
                    p.filled += n;
                }
                let p = self.payload.take().expect("payload in progress");
                self.release();
                return Poll::Ready(finish(p.kind, p.buf).map(Some));
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
                if self.hdr_len == 0 {
                    self.frame_started();
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
                k::DATA_ZSTD => {
                    // Compressed only when smaller, so the same limit holds.
                    limit("compressed data chunk", self.max_chunk)?;
                    return Poll::Ready(Ok(Some(Frame::DataZstd(len))));
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
            // Checked against the limit; the buffer grows as bytes arrive.
            self.payload = Some(Partial {
                kind,
                want: len,
                buf: Vec::new(),
                filled: 0,
            });
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
            Ok(Some(f)) => Poll::Ready(format!("unexpected frame: {f}")),
            Err(e) => Poll::Ready(e.to_string()),
        }
    }
}

/// A complete payload as a frame. The peer's text in it (an error's message, an abort's
/// reason) is kept only as [`peer_text`] shows it: escaped onto one line and cut.
fn finish(kind: u8, buf: Vec<u8>) -> Result<Frame, RpcError> {
    Ok(match kind {
        k::CONTROL => Frame::Control(buf),
        k::ERROR => {
            let w: WireError = decode(&buf, "error frame")?;
            Frame::Error(crate::check::wire_error(w))
        }
        _ => Frame::DataAbort(peer_text::show_bytes(&buf, PEER_TEXT_MAX)),
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

    /// A compressed data chunk, laid out as for [`FrameWriter::data`].
    pub(crate) async fn data_zstd(&mut self, buf: &mut [u8], n: usize) -> Result<(), RpcError> {
        buf[..HDR].copy_from_slice(&header(k::DATA_ZSTD, n));
        self.put(&buf[..HDR + n], "a compressed data chunk").await
    }
}
