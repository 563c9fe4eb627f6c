//! Data streams on a connection: the consuming side ([`DataIn`], which reads
//! chunk payloads straight into its caller's buffer) and the producing side
//! ([`pump_out`], which reads its source straight into the chunk buffer
//! behind the header room). Both watch for silence: the producer sends a
//! heartbeat when its source is idle, the consumer gives up after the idle
//! timeout.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{sleep_until, Instant, Sleep};

use crate::compress::{ZstdIn, ZstdOut};
use crate::error::RpcError;
use crate::frame::{Frame, FrameReader, FrameWriter};
use crate::FRAME_HEADER_LEN as HDR;

/// Silence detection for poll-based readers: expired once the reader has
/// been waiting (without a byte or frame) for the timeout.
pub(crate) struct Idle {
    timeout: Duration,
    waiting_since: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
}

impl Idle {
    pub(crate) fn new(timeout: Duration) -> Self {
        Idle {
            timeout,
            waiting_since: None,
            sleep: Box::pin(sleep_until(Instant::now() + timeout)),
        }
    }

    /// Something arrived.
    pub(crate) fn active(&mut self) {
        self.waiting_since = None;
    }

    /// The reader has to wait: whether it has waited too long (else the
    /// timer is armed to wake it).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let due = *self.waiting_since.get_or_insert_with(Instant::now) + self.timeout;
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= due {
                return true;
            }
            self.sleep.as_mut().reset(due);
        }
    }
}

/// Where an incoming data stream stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InState {
    /// More may come.
    Open,
    /// `data end` was read: the connection is at a frame boundary.
    Ended,
    /// `data abort` was read (the message says why): at a frame boundary.
    Aborted(String),
    /// The stream broke (error frame, protocol error, timeout, closed).
    Failed(String),
}

/// The consuming side of a data stream.
pub(crate) struct DataIn {
    remaining: usize,
    pub(crate) state: InState,
    idle: Idle,
    peer: String,
    /// Set when the stream's start negotiated zstd: compressed chunks are
    /// read into it and handed out from it.
    zstd: Option<Box<ZstdIn>>,
}

impl DataIn {
    pub(crate) fn new(peer: String, idle_timeout: Duration) -> Self {
        DataIn {
            remaining: 0,
            state: InState::Open,
            idle: Idle::new(idle_timeout),
            peer,
            zstd: None,
        }
    }

    /// Accept compressed chunks, each decompressing to at most `limit` bytes.
    pub(crate) fn with_zstd(mut self, limit: usize) -> Self {
        match ZstdIn::new(limit) {
            Ok(z) => self.zstd = Some(Box::new(z)),
            Err(e) => self.fail(format!("cannot start a zstd decoder: {e}")),
        }
        self
    }

    fn fail(&mut self, msg: String) {
        self.state = InState::Failed(format!("{}: {msg}", self.peer));
    }

    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.idle.poll_expired(cx) {
            let e = RpcError::Timeout {
                what: "data stream".into(),
                after: self.idle.timeout,
            };
            self.fail(e.to_string());
            return self.poll_read_done();
        }
        Poll::Pending
    }

    pub(crate) fn poll_read_done(&self) -> Poll<io::Result<()>> {
        match &self.state {
            InState::Open | InState::Ended => Poll::Ready(Ok(())),
            InState::Aborted(m) | InState::Failed(m) => {
                Poll::Ready(Err(io::Error::other(m.clone())))
            }
        }
    }

    /// `AsyncRead::poll_read` over the frames of `rd`: payloads go straight
    /// into `buf`; heartbeats are skipped; `data end` is EOF; an error frame,
    /// a `data abort` or a broken connection is a read error.
    pub(crate) fn poll_read(
        &mut self,
        rd: &mut FrameReader,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.state != InState::Open || buf.remaining() == 0 {
                return self.poll_read_done();
            }
            if let Some(z) = self.zstd.as_deref_mut() {
                let p = z.pending();
                if !p.is_empty() {
                    let k = p.len().min(buf.remaining());
                    buf.put_slice(&p[..k]);
                    z.pos += k;
                    return Poll::Ready(Ok(()));
                }
                if z.reading() {
                    let mut rb = ReadBuf::new(z.room());
                    let got = rd.poll_read_payload(cx, &mut rb);
                    let n = rb.filled().len();
                    match got {
                        Poll::Ready(Ok(())) if n == 0 => self.fail(
                            "the peer closed the connection in the middle of a compressed data chunk"
                                .into(),
                        ),
                        Poll::Ready(Ok(())) => {
                            z.filled += n;
                            let done = if z.reading() { Ok(()) } else { z.finish() };
                            self.idle.active();
                            if let Err(m) = done {
                                self.fail(m);
                            }
                        }
                        Poll::Ready(Err(e)) => self.fail(format!("reading a compressed data chunk: {e}")),
                        Poll::Pending => return self.pending(cx),
                    }
                    continue;
                }
            }
            if self.remaining > 0 {
                let k = self.remaining.min(buf.remaining());
                let mut rb = ReadBuf::new(buf.initialize_unfilled_to(k));
                match rd.poll_read_payload(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            self.fail(
                                "the peer closed the connection in the middle of a data chunk"
                                    .into(),
                            );
                            continue;
                        }
                        buf.advance(n);
                        self.remaining -= n;
                        self.idle.active();
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Ready(Err(e)) => {
                        self.fail(format!("reading a data chunk: {e}"));
                        continue;
                    }
                    Poll::Pending => return self.pending(cx),
                }
            }
            match rd.poll_frame(cx) {
                Poll::Pending => return self.pending(cx),
                Poll::Ready(r) => {
                    self.idle.active();
                    match r {
                        Ok(Some(Frame::Data(n))) => self.remaining = n,
                        Ok(Some(Frame::DataZstd(n))) => match self.zstd.as_deref_mut() {
                            Some(z) => {
                                z.start(n);
                                if n == 0 {
                                    if let Err(m) = z.finish() {
                                        self.fail(m);
                                    }
                                }
                            }
                            None => self.fail(
                                "protocol violation: a compressed data chunk on a stream that did not negotiate compression"
                                    .into(),
                            ),
                        },
                        Ok(Some(Frame::Heartbeat)) => {}
                        Ok(Some(Frame::DataEnd)) => self.state = InState::Ended,
                        Ok(Some(Frame::DataAbort(why))) => {
                            self.state = InState::Aborted(format!(
                                "{}: the peer aborted the data stream: {why}",
                                self.peer
                            ))
                        }
                        Ok(Some(Frame::Error(w))) => self.fail(w.message),
                        Ok(Some(Frame::Control(_))) => self.fail(
                            "protocol violation: a control message in the middle of a data stream"
                                .into(),
                        ),
                        Ok(None) => self.fail(
                            "the peer closed the connection in the middle of a data stream".into(),
                        ),
                        Err(e) => self.fail(e.to_string()),
                    }
                }
            }
        }
    }
}

/// How [`pump_out`] ended.
#[derive(Debug)]
pub(crate) enum PumpEnd {
    /// The source reached EOF; `data end` was written.
    Done,
    /// The source failed; nothing was written about it (the caller says it).
    SourceFailed(io::Error),
    /// `stop` fired, for this reason.
    Stopped(String),
}

enum Ev {
    Data(usize),
    Heartbeat,
    End(io::Result<()>),
    Stopped(String),
}

/// Copy `src` to `wr` as data chunks of up to `chunk` bytes: each chunk is
/// read straight behind the header room of one buffer and written with one
/// write. A heartbeat goes out whenever nothing was written for
/// `heartbeat`. `stop` is polled before every chunk. With `zstd`, chunks
/// worth it go out compressed (see `compress`).
pub(crate) async fn pump_out<R, S>(
    src: &mut R,
    wr: &mut FrameWriter,
    chunk: usize,
    heartbeat: Duration,
    mut zstd: Option<&mut ZstdOut>,
    mut stop: S,
) -> Result<PumpEnd, RpcError>
where
    R: AsyncRead + Unpin + ?Sized,
    S: FnMut(&mut Context<'_>) -> Poll<String>,
{
    let mut buf = vec![0u8; HDR + chunk];
    let mut last = Instant::now();
    let mut timer = Box::pin(sleep_until(last + heartbeat));
    // A source's end seen right behind some data, reported after that data.
    let mut end: Option<io::Result<()>> = None;
    loop {
        let ev = poll_fn(|cx| {
            if let Poll::Ready(why) = stop(cx) {
                return Poll::Ready(Ev::Stopped(why));
            }
            if let Some(e) = end.take() {
                return Poll::Ready(Ev::End(e));
            }
            let mut filled = 0;
            while HDR + filled < buf.len() {
                let mut rb = ReadBuf::new(&mut buf[HDR + filled..]);
                match Pin::new(&mut *src).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                        end = Some(Ok(()));
                        break;
                    }
                    Poll::Ready(Ok(())) => filled += rb.filled().len(),
                    Poll::Ready(Err(e)) => {
                        end = Some(Err(e));
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if filled > 0 {
                return Poll::Ready(Ev::Data(filled));
            }
            if let Some(e) = end.take() {
                return Poll::Ready(Ev::End(e));
            }
            let due = last + heartbeat;
            loop {
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if Instant::now() >= due {
                    return Poll::Ready(Ev::Heartbeat);
                }
                timer.as_mut().reset(due);
            }
        })
        .await;
        match ev {
            Ev::Data(n) => match zstd
                .as_deref_mut()
                .and_then(|z| z.compress(&buf[HDR..HDR + n]))
            {
                Some((out, m)) => wr.data_zstd(out, m).await?,
                None => wr.data(&mut buf, n).await?,
            },
            Ev::Heartbeat => wr.heartbeat().await?,
            Ev::End(Ok(())) => {
                wr.data_end().await?;
                return Ok(PumpEnd::Done);
            }
            Ev::End(Err(e)) => return Ok(PumpEnd::SourceFailed(e)),
            Ev::Stopped(why) => return Ok(PumpEnd::Stopped(why)),
        }
        last = Instant::now();
    }
}
