//! Fault-injecting wrappers of [`Sender`] and [`Receiver`], for the suite and
//! the driver tests: cut or stall a stream, cancel the run after some bytes
//! (a daemon being killed), fail sends, lose the commit, fail a receive
//! while the sender is still sending.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, PrepareReq,
    Receiver, Sender, StepReq,
};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

/// What a [`FaultySender`] does wrong.
#[derive(Default, Clone)]
pub struct SenderFaults {
    /// The next stream fails with an I/O error after this many bytes (once).
    pub cut_after: Option<u64>,
    /// Streams to leave alone before `cut_after` applies.
    pub cut_skip: u32,
    /// Cancel this token once the next stream passed this many bytes (once);
    /// the stream then yields nothing more, like a daemon that was killed.
    pub cancel_after: Option<(u64, CancellationToken)>,
    /// The next stream never yields a byte (once).
    pub stall: bool,
    /// `send` of this filesystem fails with this (temporary?) error, this many times.
    pub fail_send: Option<(DatasetPath, u32, bool)>,
    /// `commit` fails as if the message were lost, without reaching the sender.
    pub lose_commit: bool,
}

/// A sender that injects [`SenderFaults`].
pub struct FaultySender {
    inner: Arc<dyn Sender>,
    faults: Mutex<SenderFaults>,
    /// Calls of `send`.
    pub sends: AtomicU32,
    /// Bytes that went through streams.
    pub bytes: Arc<AtomicU64>,
}

impl FaultySender {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Sender>, faults: SenderFaults) -> Self {
        FaultySender {
            inner,
            faults: Mutex::new(faults),
            sends: AtomicU32::new(0),
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }
}

struct FaultyStream {
    inner: Box<dyn SendStream>,
    read: u64,
    total: Arc<AtomicU64>,
    cut_after: Option<u64>,
    cancel_after: Option<(u64, CancellationToken)>,
    stall: bool,
    /// `cancel_after` fired: no byte moves any more.
    killed: bool,
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.stall || self.killed {
            // Never woken by the stream itself: the run's cancellation (or
            // the watchdog) ends the step.
            return Poll::Pending;
        }
        if let Some(n) = self.cut_after {
            if self.read >= n {
                return Poll::Ready(Err(std::io::Error::other(format!(
                    "injected fault: stream cut after {} bytes",
                    self.read
                ))));
            }
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let n = (buf.filled().len() - before) as u64;
            self.read += n;
            self.total.fetch_add(n, Ordering::Relaxed);
            if let Some((limit, token)) = &self.cancel_after {
                if self.read >= *limit {
                    token.cancel();
                    self.killed = true;
                }
            }
        }
        r
    }
}

#[async_trait]
impl SendStream for FaultyStream {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.inner.close().await
    }
}

#[async_trait]
impl Sender for FaultySender {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }

    async fn estimate(
        &self,
        steps: &[StepReq],
        concurrency: usize,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::Result<u64>>> {
        self.inner.estimate(steps, concurrency).await
    }

    async fn prepare(
        &self,
        reqs: &[PrepareReq],
    ) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        self.inner.prepare(reqs).await
    }

    async fn send(&self, step: &StepReq) -> zrelay_endpoint::Result<Box<dyn SendStream>> {
        self.sends.fetch_add(1, Ordering::Relaxed);
        let (cut_after, cancel_after, stall, fail) = {
            let mut f = self.faults.lock().unwrap();
            let fail = match &mut f.fail_send {
                Some((fs, n, temporary)) if fs == &step.fs && *n > 0 => {
                    *n -= 1;
                    Some(*temporary)
                }
                _ => None,
            };
            (
                if f.cut_skip > 0 {
                    f.cut_skip -= 1;
                    None
                } else {
                    f.cut_after.take()
                },
                f.cancel_after.take(),
                std::mem::take(&mut f.stall),
                fail,
            )
        };
        if let Some(temporary) = fail {
            return Err(if temporary {
                EndpointError::Transport(format!("injected fault: send of {} failed", step.fs))
            } else {
                EndpointError::InvalidRequest(format!(
                    "injected fault: send of {} refused",
                    step.fs
                ))
            });
        }
        let inner = self.inner.send(step).await?;
        Ok(Box::new(FaultyStream {
            inner,
            read: 0,
            total: self.bytes.clone(),
            cut_after,
            cancel_after,
            stall,
            killed: false,
        }))
    }

    async fn commit(
        &self,
        reqs: &[CommitReq],
    ) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        if self.faults.lock().unwrap().lose_commit {
            return Err(EndpointError::Transport(
                "injected fault: commit lost".into(),
            ));
        }
        self.inner.commit(reqs).await
    }

    async fn abort(
        &self,
        fss: &[DatasetPath],
    ) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        self.inner.abort(fss).await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> zrelay_endpoint::Result<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }

    async fn replication_cursor(
        &self,
        fs: &DatasetPath,
    ) -> zrelay_endpoint::Result<Option<FsVersion>> {
        self.inner.replication_cursor(fs).await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> zrelay_endpoint::Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, snapshots).await
    }

    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
}

/// A receiver that reads some bytes of a stream and then fails, while the
/// sender is still sending.
pub struct FailingReceiver {
    inner: Arc<dyn Receiver>,
    /// Bytes to read before failing.
    pub fail_after: u64,
}

impl FailingReceiver {
    /// Wrap `inner`; every receive fails after `fail_after` bytes.
    pub fn new(inner: Arc<dyn Receiver>, fail_after: u64) -> Self {
        FailingReceiver { inner, fail_after }
    }
}

#[async_trait]
impl Receiver for FailingReceiver {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }

    async fn receive(
        &self,
        step: &StepReq,
        mut stream: Box<dyn SendStream>,
    ) -> zrelay_endpoint::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        while n < self.fail_after {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k as u64,
            }
        }
        let _ = stream.close().await;
        Err(EndpointError::Receive {
            fs: step.fs.clone(),
            source: Box::new(EndpointError::InvalidRequest(format!(
                "injected fault: receiver failed after {n} bytes"
            ))),
            resume_token: None,
        })
    }

    async fn commit(
        &self,
        reqs: &[CommitReq],
    ) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        self.inner.commit(reqs).await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> zrelay_endpoint::Result<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> zrelay_endpoint::Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, snapshots).await
    }

    async fn rename_replica(
        &self,
        from: &DatasetPath,
        to: &DatasetPath,
    ) -> zrelay_endpoint::Result<()> {
        self.inner.rename_replica(from, to).await
    }

    async fn destroy_replica(&self, fs: &DatasetPath) -> zrelay_endpoint::Result<()> {
        self.inner.destroy_replica(fs).await
    }

    fn describe(&self) -> String {
        format!("failing {}", self.inner.describe())
    }
}
