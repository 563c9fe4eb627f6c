//! Scriptable endpoints for RPC tests: a sender whose behaviour is chosen by
//! the step's snapshot name, and a receiver that reads its stream to the end
//! and records what it got.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, Guarantee,
    PrepareReq, Protection, Receiver, Result, Sender, StepReq,
};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

/// Any reader as a send stream (closing does nothing).
pub struct ReaderStream<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for ReaderStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

#[async_trait]
impl<T: AsyncRead + Unpin + Send> SendStream for ReaderStream<T> {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        Ok(())
    }
}

/// The byte at `pos` of every mock stream.
pub fn byte_at(pos: u64) -> u8 {
    (pos % 251) as u8
}

/// A stream of `len` pattern bytes (`u64::MAX`: endless), optionally silent
/// for a while first, optionally failing after `fail_after` bytes.
pub struct MockStream {
    pub delay: Option<Pin<Box<tokio::time::Sleep>>>,
    pub len: u64,
    pub pos: u64,
    pub fail_after: Option<u64>,
    /// Set by `close`.
    pub closed: Arc<AtomicBool>,
}

impl MockStream {
    pub fn new(len: u64) -> Self {
        MockStream {
            delay: None,
            len,
            pos: 0,
            fail_after: None,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Silent for `d` before the first byte.
    pub fn after(mut self, d: Duration) -> Self {
        self.delay = Some(Box::pin(tokio::time::sleep(d)));
        self
    }

    /// Fail with "local failure" after `n` bytes.
    pub fn failing_after(mut self, n: u64) -> Self {
        self.fail_after = Some(n);
        self
    }
}

impl AsyncRead for MockStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(d) = self.delay.as_mut() {
            if d.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.delay = None;
        }
        if self.fail_after.is_some_and(|n| self.pos >= n) {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "local failure after {} bytes",
                self.pos
            ))));
        }
        let mut end = self.len;
        if let Some(n) = self.fail_after {
            end = end.min(n);
        }
        let n = (end - self.pos).min(buf.remaining() as u64).min(256 << 10) as usize;
        let start = self.pos;
        let dst = buf.initialize_unfilled_to(n);
        for (i, b) in dst.iter_mut().enumerate() {
            *b = byte_at(start + i as u64);
        }
        buf.advance(n);
        self.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl SendStream for MockStream {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// A step whose snapshot name scripts the mock sender's stream.
pub fn step(name: &str) -> StepReq {
    StepReq {
        fs: DatasetPath::parse("pool/a").unwrap(),
        from: None,
        to: FsVersion {
            kind: VersionKind::Snapshot,
            name: name.into(),
            guid: 1,
            createtxg: 1,
            creation: 0,
        },
        resume_token: None,
        protection: Protection {
            initial: Guarantee::GuaranteeNothing,
            incremental: Guarantee::GuaranteeNothing,
        },
    }
}

/// The mock sender. Its streams by snapshot name: `silent` (600 ms of
/// silence, then `hello`), `endless`, `fail` (1 MiB, then an error),
/// `bytes-N` (N pattern bytes).
#[derive(Default)]
pub struct MockSender {
    /// `list_filesystems` takes this long.
    pub delay: Duration,
    /// The `closed` flag of the last stream handed out.
    pub last_closed: Mutex<Option<Arc<AtomicBool>>>,
}

fn perm(msg: &str) -> EndpointError {
    EndpointError::InvalidRequest(msg.into())
}

fn temp(msg: &str) -> EndpointError {
    EndpointError::Transport(msg.into())
}

#[async_trait]
impl Sender for MockSender {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        tokio::time::sleep(self.delay).await;
        Ok(vec![FsListing::new(DatasetPath::parse("pool/a").unwrap())])
    }
    async fn estimate(&self, _: &[StepReq], _: usize) -> Result<Vec<Result<u64>>> {
        Ok(vec![Ok(5), Err(temp("estimate flaked"))])
    }
    async fn prepare(&self, _: &[PrepareReq]) -> Result<BatchResult<EndpointError>> {
        Ok(vec![
            Ok(()),
            Err(perm("item refused")),
            Err(temp("item flaked")),
        ])
    }
    async fn send(&self, step: &StepReq) -> Result<Box<dyn SendStream>> {
        let s = match step.to.name.as_str() {
            "silent" => MockStream::new(5).after(Duration::from_millis(600)),
            "endless" => MockStream::new(u64::MAX),
            "fail" => MockStream::new(u64::MAX).failing_after(1 << 20),
            "refuse" => return Err(perm("send refused")),
            n => MockStream::new(n.strip_prefix("bytes-").unwrap().parse().unwrap()),
        };
        *self.last_closed.lock().unwrap() = Some(s.closed.clone());
        Ok(Box::new(s))
    }
    async fn commit(&self, _: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        Ok(Vec::new())
    }
    async fn abort(&self, fss: &[DatasetPath]) -> Result<BatchResult<EndpointError>> {
        Ok(fss.iter().map(|_| Ok(())).collect())
    }
    async fn list_versions(&self, _: &DatasetPath) -> Result<Vec<FsVersion>> {
        Err(perm("no such filesystem"))
    }
    async fn replication_cursor(&self, _: &DatasetPath) -> Result<Option<FsVersion>> {
        Err(temp("dataset is busy"))
    }
    async fn destroy_snapshots(&self, _: &DatasetPath, snaps: &[String]) -> Result<DestroyOutcome> {
        Ok(DestroyOutcome {
            destroyed: snaps.to_vec(),
            kept: vec![("held".into(), "it has a hold".into())],
        })
    }
    fn describe(&self) -> String {
        "mock sender".into()
    }
}

/// What the recording receiver got.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Bytes read, and whether they followed the pattern.
    pub bytes: u64,
    pub intact: bool,
    /// The read error that ended the stream, if any.
    pub error: Option<String>,
}

/// Reads each stream to its end; a read error fails the receive as a
/// resumable one (token `tok-<bytes>`).
#[derive(Default)]
pub struct RecordingReceiver {
    pub got: Mutex<Vec<Received>>,
}

#[async_trait]
impl Receiver for RecordingReceiver {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        Ok(Vec::new())
    }
    async fn receive(&self, step: &StepReq, mut stream: Box<dyn SendStream>) -> Result<()> {
        let mut buf = vec![0u8; 100_000];
        let mut r = Received {
            intact: true,
            ..Received::default()
        };
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    let start = r.bytes;
                    r.intact &= buf[..n]
                        .iter()
                        .enumerate()
                        .all(|(i, b)| *b == byte_at(start + i as u64));
                    r.bytes += n as u64;
                }
                Err(e) => {
                    r.error = Some(e.to_string());
                    break;
                }
            }
        }
        let _ = stream.close().await;
        self.got.lock().unwrap().push(r.clone());
        match r.error {
            None => Ok(()),
            Some(reason) => Err(EndpointError::Receive {
                fs: step.fs.clone(),
                source: Box::new(EndpointError::Stream {
                    fs: step.fs.clone(),
                    reason,
                    temporary: true,
                }),
                resume_token: Some(format!("tok-{}", r.bytes)),
            }),
        }
    }
    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        Ok(reqs.iter().map(|_| Err(perm("guid mismatch"))).collect())
    }
    async fn list_versions(&self, _: &DatasetPath) -> Result<Vec<FsVersion>> {
        Ok(Vec::new())
    }
    async fn destroy_snapshots(&self, _: &DatasetPath, _: &[String]) -> Result<DestroyOutcome> {
        Ok(DestroyOutcome::default())
    }
    fn describe(&self) -> String {
        "recording receiver".into()
    }
}
