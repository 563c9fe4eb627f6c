//! Bandwidth limits with paused tokio time: one stream's rate, streams
//! sharing a bucket, burst size, `close`, and a replication through throttled
//! local endpoints on the fake ZFS.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::time::Instant;
use zrelay_endpoint::{
    throttle_receiver, throttle_sender, Bucket, CommitReq, FsFilter, JobId, LocalReceiver,
    LocalSender, PrepareReq, Protection, RateLimit, Receiver, RecvOptions, SendOptions, Sender,
    StepReq, ThrottledReceiver, ThrottledSender, ThrottledStream,
};
use zrelay_fake::FakeZfs;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::{SnapshotName, Zfs};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// `len` bytes of a known pattern, as fast as asked; counts `close` calls.
struct Mem {
    len: usize,
    pos: usize,
    closes: Arc<AtomicUsize>,
}

impl Mem {
    fn boxed(len: u64, closes: &Arc<AtomicUsize>) -> Box<dyn SendStream> {
        Box::new(Mem {
            len: len as usize,
            pos: 0,
            closes: closes.clone(),
        })
    }
}

impl AsyncRead for Mem {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining().min(self.len - self.pos);
        let start = self.pos;
        let bytes: Vec<u8> = (start..start + n).map(|i| (i % 251) as u8).collect();
        buf.put_slice(&bytes);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl SendStream for Mem {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn bucket(rate: u64, cap: u64) -> Arc<Bucket> {
    Arc::new(Bucket::new(RateLimit {
        bytes_per_sec: rate,
        bucket_capacity: cap,
    }))
}

/// Read to EOF with a 1 MiB buffer (like `pump`); checks the content.
async fn drain(mut s: impl AsyncRead + Unpin) -> (u64, Instant) {
    let mut buf = vec![0u8; MIB as usize];
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            return (total, Instant::now());
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, ((total as usize + i) % 251) as u8, "corrupted");
        }
        total += n as u64;
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn one_stream_gets_the_rate_after_the_burst() {
    let closes = Arc::new(AtomicUsize::new(0));
    let (rate, cap, n) = (MIB, 128 * KIB, 4 * MIB);
    let start = Instant::now();
    let s = ThrottledStream::new(Mem::boxed(n, &closes), bucket(rate, cap));
    let (total, end) = drain(s).await;
    assert_eq!(total, n);
    let took = secs(end - start);
    let (lo, hi) = ((n - cap) as f64 / rate as f64, n as f64 / rate as f64);
    assert!(
        took >= lo - 0.01 && took <= hi + 0.01,
        "{took}s, want {lo}..{hi}"
    );
}

#[tokio::test(start_paused = true)]
async fn reads_go_up_to_the_capacity_at_once() {
    let closes = Arc::new(AtomicUsize::new(0));
    let cap = 200 * KIB;
    let mut s = ThrottledStream::new(Mem::boxed(MIB, &closes), bucket(100 * KIB, cap));
    let mut buf = vec![0u8; MIB as usize];
    let start = Instant::now();
    assert_eq!(
        s.read(&mut buf).await.unwrap() as u64,
        cap,
        "one full bucket"
    );
    assert_eq!(Instant::now(), start, "a full bucket does not wait");
    // the first read emptied the bucket; the second puts it in debt, which
    // the stream pays before its third read
    assert_eq!(s.read(&mut buf).await.unwrap() as u64, cap);
    assert_eq!(Instant::now(), start);
    let mut small = [0u8; 10];
    assert_eq!(s.read(&mut small).await.unwrap(), 10);
    let waited = secs(Instant::now() - start);
    assert!(
        (waited - 2.0).abs() < 0.01,
        "paid the second read: {waited}s"
    );
}

#[tokio::test(start_paused = true)]
async fn streams_sharing_a_bucket_split_the_rate() {
    let closes = Arc::new(AtomicUsize::new(0));
    let (rate, cap, n) = (MIB, 128 * KIB, 4 * MIB);
    let b = bucket(rate, cap);
    let start = Instant::now();
    let a = ThrottledStream::new(Mem::boxed(n, &closes), b.clone());
    let c = ThrottledStream::new(Mem::boxed(n, &closes), b.clone());
    let ((ta, ea), (tc, ec)) = tokio::join!(drain(a), drain(c));
    assert_eq!((ta, tc), (n, n));
    let (ea, ec) = (secs(ea - start), secs(ec - start));
    let last = ea.max(ec);
    let (lo, hi) = (
        (2 * n - cap) as f64 / rate as f64,
        (2 * n) as f64 / rate as f64,
    );
    assert!(
        last >= lo - 0.01 && last <= hi + 0.01,
        "{last}s, want {lo}..{hi}"
    );
    assert!(
        ea.min(ec) >= 0.9 * last,
        "unfair: one stream finished at {ea}s, the other at {ec}s"
    );
}

#[tokio::test(start_paused = true)]
async fn no_rate_means_no_wait_and_close_delegates() {
    let closes = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let s = ThrottledStream::new(Mem::boxed(4 * MIB, &closes), bucket(0, 128 * KIB));
    assert_eq!(drain(s).await.0, 4 * MIB);
    assert_eq!(Instant::now(), start);
    // close in the middle of a debt: delegated at once, twice
    let mut s = ThrottledStream::new(Mem::boxed(MIB, &closes), bucket(KIB, 64 * KIB));
    let mut buf = vec![0u8; MIB as usize];
    for _ in 0..2 {
        assert_eq!(s.read(&mut buf).await.unwrap() as u64, 64 * KIB);
    }
    s.close().await.unwrap();
    s.close().await.unwrap();
    assert_eq!(closes.load(Ordering::SeqCst), 2);
    assert_eq!(Instant::now(), start, "close does not pay the debt");
}

struct World {
    zfs: Arc<FakeZfs>,
    sender: Arc<dyn Sender>,
    receiver: Arc<dyn Receiver>,
}

impl World {
    async fn new() -> World {
        let zfs = Arc::new(FakeZfs::new());
        let pool = zfs.add_pool("pool").unwrap();
        let (src, dst) = (pool.child("src").unwrap(), pool.child("dst").unwrap());
        zfs.create(&src, &[]).await.unwrap();
        zfs.create(&dst, &[]).await.unwrap();
        let job = JobId::new("t").unwrap();
        let sender = Arc::new(LocalSender::new(
            zfs.clone(),
            job.clone(),
            FsFilter::subtree(&src),
            SendOptions::default(),
        ));
        let receiver = Arc::new(LocalReceiver::new(
            zfs.clone(),
            job,
            dst,
            RecvOptions::default(),
        ));
        World {
            zfs,
            sender,
            receiver,
        }
    }

    /// Replicate every snapshot of every listed filesystem, in full then
    /// incrementally, the way the driver does.
    async fn replicate(&self, snd: &dyn Sender, rcv: &dyn Receiver) {
        for l in snd.list_filesystems().await.unwrap() {
            let mut from = None;
            let mut steps = Vec::new();
            for to in l.versions.iter().filter(|v| v.is_snapshot()) {
                steps.push(StepReq {
                    fs: l.path.clone(),
                    from: from.replace(to.clone()),
                    to: to.clone(),
                    resume_token: None,
                    protection: Protection::default(),
                });
            }
            if steps.is_empty() {
                continue;
            }
            let prep = PrepareReq {
                fs: l.path.clone(),
                steps: steps.clone(),
            };
            for res in snd.prepare(&[prep]).await.unwrap() {
                res.unwrap();
            }
            for step in &steps {
                let stream = snd.send(step).await.unwrap();
                rcv.receive(step, stream).await.unwrap();
            }
            let last = steps.last().unwrap();
            let commit = [CommitReq {
                fs: l.path.clone(),
                to: last.to.clone(),
                protection: Protection::default(),
                incremental: last.from.is_some(),
            }];
            for res in rcv.commit(&commit).await.unwrap() {
                res.unwrap();
            }
            for res in snd.commit(&commit).await.unwrap() {
                res.unwrap();
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn replication_through_throttled_endpoints_arrives_intact() {
    let w = World::new().await;
    let mut written = 0;
    for f in ["a", "b"] {
        let fs = zrelay_zfs::DatasetPath::parse(&format!("pool/src/{f}")).unwrap();
        w.zfs.create(&fs, &[]).await.unwrap();
        for i in 1..=3 {
            w.zfs.write(&fs, 256 * KIB).unwrap();
            written += 256 * KIB;
            let snap = SnapshotName::new(&fs, &format!("s{i}")).unwrap();
            w.zfs.snapshot(&[snap]).await.unwrap();
        }
    }
    let (rate, cap) = (256 * KIB, 32 * KIB);
    let b = bucket(rate, cap);
    let snd = ThrottledSender::new(w.sender.clone(), b.clone());
    let rcv = ThrottledReceiver::new(w.receiver.clone(), b.clone());
    assert_eq!(snd.describe(), w.sender.describe());
    assert_eq!(rcv.describe(), w.receiver.describe());
    let start = Instant::now();
    w.replicate(&snd, &rcv).await;
    let took = secs(Instant::now() - start);
    // both ends draw from one bucket: each byte is paid twice
    let least = (2 * written - cap) as f64 / rate as f64;
    assert!(
        took >= least - 0.01,
        "{took}s for {written} bytes, want >= {least}s"
    );
    assert!(took <= 1.5 * least, "{took}s: too slow");
    for f in ["a", "b"] {
        let guids = |root: &str| {
            let zfs = w.zfs.clone();
            let fs = zrelay_zfs::DatasetPath::parse(&format!("{root}/{f}")).unwrap();
            async move {
                let vs = zfs.list_versions(&fs).await.unwrap();
                let snaps = vs.into_iter().filter(|v| v.name.starts_with('s'));
                snaps.map(|v| (v.name, v.guid)).collect::<Vec<_>>()
            }
        };
        let (have, want) = (guids("pool/dst/pool/src").await, guids("pool/src").await);
        assert_eq!(have.len(), 3, "{have:?}");
        assert_eq!(have, want);
    }
    // the throttled sender lists like the plain one
    let listed = snd.list_filesystems().await.unwrap();
    assert_eq!(listed, w.sender.list_filesystems().await.unwrap());
}

#[tokio::test]
async fn no_limit_means_no_wrapper() {
    let w = World::new().await;
    let s = throttle_sender(w.sender.clone(), None);
    assert!(Arc::ptr_eq(&s, &w.sender));
    let r = throttle_receiver(w.receiver.clone(), None);
    assert!(Arc::ptr_eq(&r, &w.receiver));
    let b = Some(bucket(MIB, MIB));
    assert!(!Arc::ptr_eq(
        &throttle_sender(w.sender.clone(), b.clone()),
        &w.sender
    ));
    assert!(!Arc::ptr_eq(
        &throttle_receiver(w.receiver.clone(), b),
        &w.receiver
    ));
}
