//! Running one step: the sender's stream, counted byte by byte, into the
//! receiver, under a watchdog and a cancellation token.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use zrelay_endpoint::{Receiver, Sender, StepReq};
use zrelay_zfs::process::SendStream;

use crate::error::ReplicationError;

/// How long an interrupted step's receive may take to stop on its own (and
/// save its partial state) before it is dropped, which kills `zfs recv`.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A send stream that counts the bytes read through it, and fails its reads
/// once its stop token fires.
pub struct Counting {
    inner: Box<dyn SendStream>,
    bytes: Arc<AtomicU64>,
    stop: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
}

impl Counting {
    /// Count `inner`'s bytes into `bytes`.
    pub fn new(inner: Box<dyn SendStream>, bytes: Arc<AtomicU64>) -> Self {
        Counting {
            inner,
            bytes,
            stop: None,
        }
    }

    /// Fail every read (with an I/O error) once `stop` is cancelled.
    pub fn stop_on(mut self, stop: CancellationToken) -> Self {
        self.stop = Some(Box::pin(stop.cancelled_owned()));
        self
    }
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(stop) = self.stop.as_mut() {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(std::io::Error::other("replication step interrupted")));
            }
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = buf.filled().len() - before;
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

#[async_trait]
impl SendStream for Counting {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.inner.close().await
    }
}

/// Run `step`: the sender's stream into the receiver. Fails with
/// [`ReplicationError::Stalled`] when no byte moves for `watchdog`, and with
/// [`ReplicationError::Cancelled`] when `cancel` fires. Either way the stream
/// is stopped first, so that the receive ends as on a cut stream: `zfs recv -s`
/// reads what it was sent and keeps that as its partial state (a killed
/// `zfs recv` may keep much less, or nothing). A receive that does not end
/// within [`STOP_GRACE`] is dropped, which kills its `zfs` processes.
pub async fn run_step(
    sender: &dyn Sender,
    receiver: &dyn Receiver,
    step: &StepReq,
    counter: Arc<AtomicU64>,
    watchdog: Duration,
    cancel: &CancellationToken,
) -> Result<(), ReplicationError> {
    let stream = tokio::select! {
        r = sender.send(step) => r?,
        _ = cancel.cancelled() => return Err(ReplicationError::Cancelled),
    };
    let stop = CancellationToken::new();
    let stream: Box<dyn SendStream> =
        Box::new(Counting::new(stream, counter.clone()).stop_on(stop.clone()));
    let recv = receiver.receive(step, stream);
    tokio::pin!(recv);
    let tick = (watchdog / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut last = counter.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            r = &mut recv => return r.map_err(Into::into),
            _ = cancel.cancelled() => {
                stop.cancel();
                let _ = tokio::time::timeout(STOP_GRACE, &mut recv).await;
                return Err(ReplicationError::Cancelled);
            }
            _ = tokio::time::sleep(tick) => {
                let now = counter.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= watchdog {
                    tracing::warn!(%step, ?watchdog, bytes = now, "step stalled; aborting it");
                    stop.cancel();
                    let _ = tokio::time::timeout(STOP_GRACE, &mut recv).await;
                    return Err(ReplicationError::Stalled(watchdog));
                }
            }
        }
    }
}
