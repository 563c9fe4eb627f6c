//! Bandwidth limits: zrepl's `send.bandwidth_limit` and `recv.bandwidth_limit`.
//!
//! One [`Bucket`] per job is shared by all its streams ("the scope is the
//! job, shared by concurrent steps"). It is a token bucket that refills at
//! `bytes_per_sec` up to `bucket_capacity`; a stream pays for what it read
//! after the read and, when that leaves the bucket in debt, sleeps (tokio
//! time, no polling) until the debt is paid before reading again. Debts queue
//! up in the order reads happened, so concurrent streams take turns and
//! together get the configured rate.
//!
//! Wrappers: [`ThrottledStream`] limits one stream; [`ThrottledSender`]
//! limits the streams its `send` returns and [`ThrottledReceiver`] the
//! streams its `receive` consumes; every other call goes straight through.
//! No limit means no wrapper ([`throttle_sender`], [`throttle_receiver`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{sleep_until, Instant, Sleep};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

use crate::error::{EndpointError, Result};
use crate::traits::{Receiver, Sender};
use crate::types::{
    BatchResult, CommitReq, DestroyOutcome, FsListing, FsVersion, PrepareReq, StepReq,
};

/// A bandwidth limit: `bandwidth_limit {max, bucket_capacity}` of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// The sustained rate. 0 means no limit.
    pub bytes_per_sec: u64,
    /// The burst: how many bytes may pass at once after a pause, and the
    /// largest single read of a limited stream (0 is taken as 1).
    pub bucket_capacity: u64,
}

/// A token bucket shared (behind an [`Arc`]) by every stream of a job.
#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    level: Mutex<Level>,
}

/// Tokens (bytes) available at `at`; negative while readers are in debt.
#[derive(Debug)]
struct Level {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket for `limit`.
    pub fn new(limit: RateLimit) -> Bucket {
        let limit = RateLimit {
            bucket_capacity: limit.bucket_capacity.max(1),
            ..limit
        };
        Bucket {
            level: Mutex::new(Level {
                tokens: limit.bucket_capacity as f64,
                at: Instant::now(),
            }),
            limit,
        }
    }

    /// The limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// The most a limited stream reads at once: the bucket's capacity.
    pub fn max_read(&self) -> usize {
        usize::try_from(self.limit.bucket_capacity).unwrap_or(usize::MAX)
    }

    /// Pay for `n` bytes that just passed. Returns when the payer may go on
    /// (when the bucket is out of debt again), or `None` for at once.
    pub fn take(&self, n: u64) -> Option<Instant> {
        if self.limit.bytes_per_sec == 0 || n == 0 {
            return None;
        }
        let rate = self.limit.bytes_per_sec as f64;
        let now = Instant::now();
        let mut level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        let refill = now.saturating_duration_since(level.at).as_secs_f64() * rate;
        level.tokens = (level.tokens + refill).min(self.limit.bucket_capacity as f64);
        level.at = now;
        level.tokens -= n as f64;
        (level.tokens < 0.0).then(|| now + Duration::from_secs_f64(-level.tokens / rate))
    }

    /// Pay for `n` bytes and wait until the bucket is out of debt.
    pub async fn consume(&self, n: u64) {
        if let Some(until) = self.take(n) {
            sleep_until(until).await;
        }
    }
}

/// A [`SendStream`] whose reads draw from a [`Bucket`].
pub struct ThrottledStream {
    inner: Box<dyn SendStream>,
    bucket: Arc<Bucket>,
    /// The debt of the last read, paid before the next one.
    sleep: Pin<Box<Sleep>>,
    waiting: bool,
}

impl ThrottledStream {
    /// Limit `inner` by `bucket`.
    pub fn new(inner: Box<dyn SendStream>, bucket: Arc<Bucket>) -> ThrottledStream {
        ThrottledStream {
            inner,
            bucket,
            sleep: Box::pin(sleep_until(Instant::now())),
            waiting: false,
        }
    }
}

impl std::fmt::Debug for ThrottledStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottledStream")
            .field("bucket", &self.bucket)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for ThrottledStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.waiting {
            ready!(this.sleep.as_mut().poll(cx));
            this.waiting = false;
        }
        if buf.remaining() == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let max = buf.remaining().min(this.bucket.max_read());
        let n = {
            let mut part = ReadBuf::new(buf.initialize_unfilled_to(max));
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut part))?;
            part.filled().len()
        };
        buf.advance(n);
        if let Some(until) = this.bucket.take(n as u64) {
            this.sleep.as_mut().reset(until);
            this.waiting = true;
        }
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl SendStream for ThrottledStream {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.waiting = false;
        self.inner.close().await
    }
}

/// A [`Sender`] whose `send` streams draw from a shared [`Bucket`].
pub struct ThrottledSender {
    inner: Arc<dyn Sender>,
    bucket: Arc<Bucket>,
}

impl ThrottledSender {
    /// Limit the streams of `inner` by `bucket`.
    pub fn new(inner: Arc<dyn Sender>, bucket: Arc<Bucket>) -> ThrottledSender {
        ThrottledSender { inner, bucket }
    }

    /// The shared bucket.
    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.bucket
    }
}

/// `inner` limited by `bucket`, or `inner` itself when there is no limit.
pub fn throttle_sender(inner: Arc<dyn Sender>, bucket: Option<Arc<Bucket>>) -> Arc<dyn Sender> {
    match bucket {
        Some(b) => Arc::new(ThrottledSender::new(inner, b)),
        None => inner,
    }
}

#[async_trait]
impl Sender for ThrottledSender {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }

    async fn estimate(&self, steps: &[StepReq], concurrency: usize) -> Result<Vec<Result<u64>>> {
        self.inner.estimate(steps, concurrency).await
    }

    async fn prepare(&self, reqs: &[PrepareReq]) -> Result<BatchResult<EndpointError>> {
        self.inner.prepare(reqs).await
    }

    async fn send(&self, step: &StepReq) -> Result<Box<dyn SendStream>> {
        let stream = self.inner.send(step).await?;
        Ok(Box::new(ThrottledStream::new(stream, self.bucket.clone())))
    }

    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        self.inner.commit(reqs).await
    }

    async fn abort(&self, fss: &[DatasetPath]) -> Result<BatchResult<EndpointError>> {
        self.inner.abort(fss).await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }

    async fn replication_cursor(&self, fs: &DatasetPath) -> Result<Option<FsVersion>> {
        self.inner.replication_cursor(fs).await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, snapshots).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A [`Receiver`] whose `receive` reads its stream through a shared [`Bucket`].
pub struct ThrottledReceiver {
    inner: Arc<dyn Receiver>,
    bucket: Arc<Bucket>,
}

impl ThrottledReceiver {
    /// Limit the streams `inner` receives by `bucket`.
    pub fn new(inner: Arc<dyn Receiver>, bucket: Arc<Bucket>) -> ThrottledReceiver {
        ThrottledReceiver { inner, bucket }
    }

    /// The shared bucket.
    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.bucket
    }
}

/// `inner` limited by `bucket`, or `inner` itself when there is no limit.
pub fn throttle_receiver(
    inner: Arc<dyn Receiver>,
    bucket: Option<Arc<Bucket>>,
) -> Arc<dyn Receiver> {
    match bucket {
        Some(b) => Arc::new(ThrottledReceiver::new(inner, b)),
        None => inner,
    }
}

#[async_trait]
impl Receiver for ThrottledReceiver {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }

    async fn receive(&self, step: &StepReq, stream: Box<dyn SendStream>) -> Result<()> {
        let stream = ThrottledStream::new(stream, self.bucket.clone());
        self.inner.receive(step, Box::new(stream)).await
    }

    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        self.inner.commit(reqs).await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, snapshots).await
    }

    async fn rename_replica(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        self.inner.rename_replica(from, to).await
    }

    async fn destroy_replica(&self, fs: &DatasetPath) -> Result<()> {
        self.inner.destroy_replica(fs).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
