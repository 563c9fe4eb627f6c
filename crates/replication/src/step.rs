//! Running one step: the sender's stream, counted byte by byte, into the
//! receiver, under a watchdog and a cancellation token.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{Receiver, Sender, StepReq};
use zrelay_zfs::process::SendStream;

use crate::error::ReplicationError;

/// A send stream that counts the bytes read through it.
pub struct Counting {
    inner: Box<dyn SendStream>,
    bytes: Arc<AtomicU64>,
}

impl Counting {
    /// Count `inner`'s bytes into `bytes`.
    pub fn new(inner: Box<dyn SendStream>, bytes: Arc<AtomicU64>) -> Self {
        Counting { inner, bytes }
    }
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
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
/// [`ReplicationError::Cancelled`] when `cancel` fires. Either way the
/// streams are dropped, which kills their `zfs` processes; a `zfs recv -s`
/// keeps its partial state for a later resume.
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
    let stream: Box<dyn SendStream> = Box::new(Counting::new(stream, counter.clone()));
    let recv = receiver.receive(step, stream);
    tokio::pin!(recv);
    let tick = (watchdog / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut last = counter.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            r = &mut recv => return r.map_err(Into::into),
            _ = cancel.cancelled() => return Err(ReplicationError::Cancelled),
            _ = tokio::time::sleep(tick) => {
                let now = counter.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= watchdog {
                    tracing::warn!(%step, ?watchdog, bytes = now, "step stalled; aborting it");
                    return Err(ReplicationError::Stalled(watchdog));
                }
            }
        }
    }
}
