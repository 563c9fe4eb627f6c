//! Data-path throughput over loopback TCP, against a plain TCP copy of the
//! same source. Ignored by default (timing-dependent); run with
//! `cargo test --release -p zrelay-rpc --test throughput -- --ignored --nocapture`.
//! `RPC_BENCH_MIB` sets the stream size (default 2048).

mod common;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Net, TestConnector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{Receiver, Sender};
use zrelay_rpc::{Endpoints, RemoteReceiver, RemoteSender, RpcConfig};
use zrelay_zfs::process::SendStream;

/// `len` zero bytes, as fast as memset goes.
struct Zeros(u64);

impl AsyncRead for Zeros {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.0) as usize;
        buf.put_slice(&ZERO[..n.min(ZERO.len())]);
        self.0 -= n.min(ZERO.len()) as u64;
        Poll::Ready(Ok(()))
    }
}

static ZERO: [u8; 1 << 20] = [0; 1 << 20];

#[async_trait]
impl SendStream for Zeros {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        Ok(())
    }
}

/// A sender whose every stream is `len` zeros (only `send` is used).
struct ZeroSender(u64);

#[async_trait]
impl Sender for ZeroSender {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::FsListing>> {
        Ok(Vec::new())
    }
    async fn estimate(
        &self,
        _: &[zrelay_endpoint::StepReq],
        _: usize,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::Result<u64>>> {
        Ok(Vec::new())
    }
    async fn prepare(
        &self,
        _: &[zrelay_endpoint::PrepareReq],
    ) -> zrelay_endpoint::Result<zrelay_endpoint::BatchResult<zrelay_endpoint::EndpointError>> {
        Ok(Vec::new())
    }
    async fn send(
        &self,
        _: &zrelay_endpoint::StepReq,
    ) -> zrelay_endpoint::Result<Box<dyn SendStream>> {
        Ok(Box::new(Zeros(self.0)))
    }
    async fn commit(
        &self,
        _: &[zrelay_endpoint::CommitReq],
    ) -> zrelay_endpoint::Result<zrelay_endpoint::BatchResult<zrelay_endpoint::EndpointError>> {
        Ok(Vec::new())
    }
    async fn abort(
        &self,
        _: &[zrelay_zfs::DatasetPath],
    ) -> zrelay_endpoint::Result<zrelay_endpoint::BatchResult<zrelay_endpoint::EndpointError>> {
        Ok(Vec::new())
    }
    async fn list_versions(
        &self,
        _: &zrelay_zfs::DatasetPath,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::FsVersion>> {
        Ok(Vec::new())
    }
    async fn replication_cursor(
        &self,
        _: &zrelay_zfs::DatasetPath,
    ) -> zrelay_endpoint::Result<Option<zrelay_endpoint::FsVersion>> {
        Ok(None)
    }
    async fn destroy_snapshots(
        &self,
        _: &zrelay_zfs::DatasetPath,
        _: &[String],
    ) -> zrelay_endpoint::Result<zrelay_endpoint::DestroyOutcome> {
        Ok(Default::default())
    }
    fn describe(&self) -> String {
        "zero sender".into()
    }
}

/// Read `r` to its end through a 512 KiB buffer; return the byte count.
async fn drain<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> u64 {
    let mut buf = vec![0u8; 512 << 10];
    let mut n = 0;
    loop {
        let k = r.read(&mut buf).await.unwrap();
        if k == 0 {
            return n;
        }
        n += k as u64;
    }
}

fn rate(len: u64, d: Duration) -> f64 {
    len as f64 / d.as_secs_f64() / (1 << 20) as f64
}

async fn plain_tcp(len: u64) -> Duration {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut src = Zeros(len);
        let mut buf = vec![0u8; 512 << 10];
        loop {
            let n = src.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
    });
    let started = Instant::now();
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(drain(&mut c).await, len);
    let d = started.elapsed();
    server.await.unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing benchmark; run in release"]
async fn rpc_data_path_keeps_up_with_plain_tcp() {
    let mib: u64 = std::env::var("RPC_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let len = mib << 20;
    let cfg = RpcConfig::default();
    let cancel = CancellationToken::new();
    let eps = Endpoints {
        sender: Some(Arc::new(ZeroSender(len))),
        receiver: None,
    };
    let conn = TestConnector::new(Net::Tcp, eps, cfg.clone(), cancel.clone());
    let sender = RemoteSender::new(conn, cfg.clone());
    let (mut plain, mut send, mut recv) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        plain = plain.min(plain_tcp(len).await);
        let step = common::mock::step("x");
        let started = Instant::now();
        let mut s = sender.send(&step).await.unwrap();
        assert_eq!(drain(&mut s).await, len);
        send = send.min(started.elapsed());

        let eps = Endpoints {
            sender: None,
            receiver: Some(Arc::new(ZeroSink(len))),
        };
        let conn = TestConnector::new(Net::Tcp, eps, cfg.clone(), cancel.clone());
        let receiver = RemoteReceiver::new(conn, cfg.clone());
        let started = Instant::now();
        receiver.receive(&step, Box::new(Zeros(len))).await.unwrap();
        recv = recv.min(started.elapsed());
    }
    let (p, s, r) = (rate(len, plain), rate(len, send), rate(len, recv));
    eprintln!("{mib} MiB over loopback TCP: plain {p:.0} MiB/s, rpc send {s:.0} MiB/s ({:.0}%), rpc receive {r:.0} MiB/s ({:.0}%)", 100.0 * s / p, 100.0 * r / p);
    cancel.cancel();
}

/// A receiver that drains its stream (only `receive` is used).
struct ZeroSink(u64);

#[async_trait]
impl Receiver for ZeroSink {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::FsListing>> {
        Ok(Vec::new())
    }
    async fn receive(
        &self,
        _: &zrelay_endpoint::StepReq,
        mut stream: Box<dyn SendStream>,
    ) -> zrelay_endpoint::Result<()> {
        assert_eq!(drain(&mut stream).await, self.0);
        Ok(())
    }
    async fn commit(
        &self,
        _: &[zrelay_endpoint::CommitReq],
    ) -> zrelay_endpoint::Result<zrelay_endpoint::BatchResult<zrelay_endpoint::EndpointError>> {
        Ok(Vec::new())
    }
    async fn list_versions(
        &self,
        _: &zrelay_zfs::DatasetPath,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::FsVersion>> {
        Ok(Vec::new())
    }
    async fn destroy_snapshots(
        &self,
        _: &zrelay_zfs::DatasetPath,
        _: &[String],
    ) -> zrelay_endpoint::Result<zrelay_endpoint::DestroyOutcome> {
        Ok(Default::default())
    }
    fn describe(&self) -> String {
        "zero sink".into()
    }
}
