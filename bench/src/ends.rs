//! The benchmark's endpoints: a sender whose stream is a producing process's
//! stdout and a receiver that feeds a consuming process's stdin, through the
//! same process-stream types and pump that `zfs send`/`zfs recv` use in
//! zrelay. Only `send` and `receive` are meaningful; the other calls are
//! refused.

use std::path::Path;

use async_trait::async_trait;
use zrelay_endpoint::{
    pump, BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, PrepareReq,
    Receiver, Result, Sender, StepReq,
};
use zrelay_zfs::cmd::{CmdLine, Runner};
use zrelay_zfs::process::{ProcRecvSink, ProcSendStream, RecvSink, SendStream};
use zrelay_zfs::DatasetPath;

fn unsupported<T>(what: &str) -> Result<T> {
    Err(EndpointError::InvalidRequest(format!(
        "the benchmark endpoint does not serve {what}"
    )))
}

/// `bench_exe produce BYTES`.
/// Write `bytes` to stdout, repeating `buf` (the producing process).
pub fn write_repeated(buf: &[u8], bytes: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Read stdin to EOF; fail unless exactly `bytes` arrived (the consuming
/// process).
pub fn consume(bytes: u64) -> anyhow::Result<()> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    let mut input = std::io::stdin().lock();
    let mut got = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    anyhow::ensure!(got == bytes, "consumer: got {got} bytes, expected {bytes}");
    Ok(())
}

/// Serve a receiver on `serve` whose streams go into a consuming process
/// expecting `bytes`; abort the returned task to stop listening.
pub async fn serve_consumer(
    exe: &Path,
    bytes: u64,
    serve: &zrelay_transport::ServeOptions,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let receiver: std::sync::Arc<dyn Receiver> = std::sync::Arc::new(ConsumingReceiver {
        cmd: consumer(exe, bytes),
        runner: Runner::default(),
    });
    let endpoints = std::sync::Arc::new(zrelay_rpc::Endpoints {
        sender: None,
        receiver: Some(receiver),
    });
    let mut listener = zrelay_transport::listen(serve).await?;
    Ok(tokio::spawn(async move {
        while let Ok(a) = listener.accept().await {
            tokio::spawn(zrelay_rpc::serve_conn(
                a.conn,
                a.peer,
                endpoints.clone(),
                zrelay_rpc::RpcConfig::default(),
                tokio_util::sync::CancellationToken::new(),
            ));
        }
    }))
}

/// A tcp `serve` on 127.0.0.1:`port` admitting 127.0.0.1, and its `connect`.
pub fn tcp_opts(
    port: u16,
) -> (
    zrelay_transport::ServeOptions,
    zrelay_transport::ConnectOptions,
) {
    (
        zrelay_transport::ServeOptions::Tcp {
            listen: format!("127.0.0.1:{port}"),
            listen_freebind: false,
            clients: vec![zrelay_transport::options::ClientMapping {
                pattern: "127.0.0.1".into(),
                identity: "bench".into(),
            }],
        },
        zrelay_transport::ConnectOptions::Tcp {
            address: format!("127.0.0.1:{port}"),
            dial_timeout: std::time::Duration::from_secs(10),
        },
    )
}

/// Stream `bytes` from `exe produce PRODUCE...` through zrelay's path
/// (a `RemoteReceiver` with `cfg` over `connect` to a served consumer on
/// `serve`); returns the seconds from the send's start to the reply.
pub async fn stream_through(
    exe: &Path,
    produce: &[String],
    bytes: u64,
    (serve, connect): (
        &zrelay_transport::ServeOptions,
        &zrelay_transport::ConnectOptions,
    ),
    cfg: zrelay_rpc::RpcConfig,
) -> anyhow::Result<f64> {
    let server = serve_consumer(exe, bytes, serve).await?;
    let sender = ProducingSender {
        cmd: producer(exe, produce),
        runner: Runner::default(),
    };
    let remote = zrelay_rpc::RemoteReceiver::new(zrelay_transport::connector(connect)?, cfg);
    let step = step();
    let started = std::time::Instant::now();
    let stream = sender.send(&step).await?;
    remote.receive(&step, stream).await?;
    let secs = started.elapsed().as_secs_f64();
    server.abort();
    Ok(secs)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The one step the benchmarks stream (a full send of `bench/data@s1`).
pub fn step() -> StepReq {
    StepReq {
        fs: DatasetPath::parse("bench/data").expect("valid"),
        from: None,
        to: FsVersion {
            kind: zrelay_zfs::name::VersionKind::Snapshot,
            name: "s1".into(),
            guid: 1,
            createtxg: 1,
            creation: 0,
        },
        resume_token: None,
        protection: zrelay_endpoint::Protection::default(),
    }
}

/// `exe produce ARGS...`: the producing process.
pub fn producer(exe: &Path, args: &[String]) -> CmdLine {
    CmdLine::new(exe.display().to_string())
        .args(std::iter::once("produce".to_string()).chain(args.iter().cloned()))
}

/// `bench_exe consume BYTES`.
pub fn consumer(exe: &Path, bytes: u64) -> CmdLine {
    CmdLine::new(exe.display().to_string()).args(["consume".to_string(), bytes.to_string()])
}

/// Streams the producer's stdout.
pub struct ProducingSender {
    /// The producer command.
    pub cmd: CmdLine,
    /// Runs it.
    pub runner: Runner,
}

#[async_trait]
impl Sender for ProducingSender {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        unsupported("listings")
    }
    async fn estimate(&self, _: &[StepReq], _: usize) -> Result<Vec<Result<u64>>> {
        unsupported("estimates")
    }
    async fn prepare(&self, _: &[PrepareReq]) -> Result<BatchResult<EndpointError>> {
        unsupported("prepare")
    }
    async fn send(&self, _step: &StepReq) -> Result<Box<dyn SendStream>> {
        let s = ProcSendStream::spawn(&self.runner, self.cmd.clone())
            .map_err(|e| EndpointError::zfs("start the producer", e))?;
        Ok(Box::new(s))
    }
    async fn commit(&self, _: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        unsupported("commit")
    }
    async fn abort(&self, _: &[DatasetPath]) -> Result<BatchResult<EndpointError>> {
        unsupported("abort")
    }
    async fn list_versions(&self, _: &DatasetPath) -> Result<Vec<FsVersion>> {
        unsupported("versions")
    }
    async fn replication_cursor(&self, _: &DatasetPath) -> Result<Option<FsVersion>> {
        unsupported("cursors")
    }
    async fn destroy_snapshots(&self, _: &DatasetPath, _: &[String]) -> Result<DestroyOutcome> {
        unsupported("destroy")
    }
    fn describe(&self) -> String {
        "producing sender".into()
    }
}

/// Feeds each received stream into a consumer process.
pub struct ConsumingReceiver {
    /// The consumer command.
    pub cmd: CmdLine,
    /// Runs it.
    pub runner: Runner,
}

#[async_trait]
impl Receiver for ConsumingReceiver {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        unsupported("listings")
    }
    async fn receive(&self, step: &StepReq, mut stream: Box<dyn SendStream>) -> Result<()> {
        let mut sink = ProcRecvSink::spawn(&self.runner, self.cmd.clone(), "bench".into())
            .map_err(|e| EndpointError::zfs("start the consumer", e))?;
        let copied = pump(&mut stream, &mut sink).await;
        let stream_err = |reason: String| EndpointError::Stream {
            fs: step.fs.clone(),
            reason,
            temporary: false,
        };
        match copied {
            Ok(_) => {
                sink.finish()
                    .await
                    .map_err(|e| EndpointError::zfs("the consumer", e))?;
                stream
                    .close()
                    .await
                    .map_err(|e| EndpointError::zfs("the producer", e))
            }
            Err(e) => {
                sink.abort().await;
                let _ = stream.close().await;
                Err(stream_err(e.to_string()))
            }
        }
    }
    async fn commit(&self, _: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        unsupported("commit")
    }
    async fn list_versions(&self, _: &DatasetPath) -> Result<Vec<FsVersion>> {
        unsupported("versions")
    }
    async fn destroy_snapshots(&self, _: &DatasetPath, _: &[String]) -> Result<DestroyOutcome> {
        unsupported("destroy")
    }
    fn describe(&self) -> String {
        "consuming receiver".into()
    }
}
