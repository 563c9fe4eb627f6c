//! The server's limits against peers driven by hand: payload buffers that grow as bytes
//! arrive, a shared request-memory budget, the frame and request-idle timeouts, the cap
//! on items per request and on estimate concurrency, peer names with `%`, and peer text
//! kept off the log lines as raw bytes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::mock::{step, MockSender};
use common::{raw_handshake, read_frame, read_reply, write_frame, RawConnector};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, PrepareReq,
    Result, Sender, StepReq,
};
use zrelay_rpc::frame_kind as k;
use zrelay_rpc::{
    serve_conn, Endpoints, MemoryBudget, RemoteSender, RpcConfig, RpcError, WireError,
};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

fn serve(
    endpoints: Endpoints,
    cfg: RpcConfig,
) -> (
    DuplexStream,
    tokio::task::JoinHandle<std::result::Result<(), RpcError>>,
) {
    let (a, b) = tokio::io::duplex(4 << 20);
    let task = tokio::spawn(serve_conn(
        Box::new(b),
        "raw client".into(),
        Arc::new(endpoints),
        cfg,
        CancellationToken::new(),
    ));
    (a, task)
}

fn sender(s: Arc<dyn Sender>) -> Endpoints {
    Endpoints {
        sender: Some(s),
        receiver: None,
    }
}

async fn error_reply(c: &mut DuplexStream) -> WireError {
    let (kind, p) = read_reply(c).await.expect("a reply");
    assert_eq!(kind, k::ERROR, "{}", String::from_utf8_lossy(&p));
    serde_json::from_slice(&p).unwrap()
}

#[tokio::test]
async fn payload_buffers_grow_as_bytes_arrive() {
    let budget = MemoryBudget::new(64 << 20);
    let cfg = RpcConfig {
        request_memory: Some(budget.clone()),
        ..RpcConfig::default()
    };
    let (mut c, task) = serve(Endpoints::default(), cfg);
    raw_handshake(&mut c, true).await;
    // Announce the full 8 MiB a request may have, send 100 bytes.
    c.write_all(&[k::CONTROL, 0, 0x80, 0, 0]).await.unwrap();
    c.write_all(&[b' '; 100]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        budget.used() <= 64 << 10,
        "{} bytes held for 100",
        budget.used()
    );
    // 1 MiB more: at most twice what arrived.
    c.write_all(&vec![b' '; 1 << 20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let used = budget.used();
    assert!(used <= (2 << 20) + 200, "{used} bytes held for 1 MiB");
    drop(c);
    let _ = task.await;
    assert_eq!(
        budget.used(),
        0,
        "a closed connection gives its buffer back"
    );
}

#[tokio::test]
async fn the_shared_request_memory_refuses_past_its_budget() {
    let budget = MemoryBudget::new(1 << 20);
    let cfg = RpcConfig {
        request_memory: Some(budget.clone()),
        ..RpcConfig::default()
    };
    let (mut a, _ta) = serve(Endpoints::default(), cfg.clone());
    raw_handshake(&mut a, true).await;
    a.write_all(&[k::CONTROL, 0, 0x10, 0, 0]).await.unwrap();
    a.write_all(&vec![b' '; 600 << 10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut b, tb) = serve(Endpoints::default(), cfg);
    raw_handshake(&mut b, true).await;
    b.write_all(&[k::CONTROL, 0, 0x10, 0, 0]).await.unwrap();
    b.write_all(&vec![b' '; 600 << 10]).await.unwrap();
    let w = error_reply(&mut b).await;
    assert!(w.temporary && w.message.contains("server is busy"), "{w:?}");
    let r = tokio::time::timeout(Duration::from_secs(5), tb)
        .await
        .unwrap();
    assert!(r.unwrap().is_err());
    assert!(budget.used() <= 1 << 20);
}

#[tokio::test]
async fn a_started_frame_must_complete_within_the_frame_timeout() {
    let cfg = RpcConfig {
        frame_timeout: Duration::from_millis(200),
        ..RpcConfig::default()
    };
    for partial in [&[k::CONTROL, 0][..], &[k::CONTROL, 0, 0, 0, 20, b'{']] {
        let (mut c, task) = serve(Endpoints::default(), cfg.clone());
        raw_handshake(&mut c, true).await;
        let started = Instant::now();
        c.write_all(partial).await.unwrap();
        let err = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server gives a stalled frame up")
            .unwrap()
            .unwrap_err();
        let t = started.elapsed();
        assert!(err.to_string().contains("did not complete"), "{err}");
        assert!(
            t >= Duration::from_millis(190) && t < Duration::from_secs(2),
            "{t:?}"
        );
    }
}

#[tokio::test]
async fn a_connection_without_requests_is_closed_after_the_idle_timeout() {
    let cfg = RpcConfig {
        request_idle_timeout: Duration::from_millis(300),
        ..RpcConfig::default()
    };
    let (mut c, task) = serve(sender(Arc::new(MockSender::default())), cfg);
    raw_handshake(&mut c, true).await;
    // A call, then heartbeats only: they do not keep the connection.
    write_frame(&mut c, k::CONTROL, br#"{"call":"ping"}"#).await;
    assert_eq!(read_reply(&mut c).await.unwrap().0, k::CONTROL);
    let started = Instant::now();
    while !task.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "heartbeats kept an idle connection open"
        );
        let _ = c.write_all(&[k::HEARTBEAT, 0, 0, 0, 0]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = started.elapsed();
    assert!(t < Duration::from_secs(1), "{t:?}");
    task.await.unwrap().unwrap();
    assert!(read_frame(&mut c).await.is_none());
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_does_not_fail_the_next_call() {
    let cfg = RpcConfig {
        request_idle_timeout: Duration::from_millis(200),
        ..RpcConfig::default()
    };
    let s = Arc::new(MockSender::default());
    let conn = common::TestConnector::new(
        common::Net::Tcp,
        sender(s),
        cfg.clone(),
        CancellationToken::new(),
    );
    let rs = RemoteSender::new(conn.clone(), cfg);
    rs.list_filesystems().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    rs.list_filesystems().await.unwrap();
    assert_eq!(conn.count(), 2, "the closed pooled connection was replaced");
}

/// A sender that records the concurrency its estimates ran with.
struct Recording {
    inner: MockSender,
    concurrency: Mutex<Vec<usize>>,
    steps: AtomicUsize,
}

#[async_trait]
impl Sender for Recording {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }
    async fn estimate(&self, steps: &[StepReq], c: usize) -> Result<Vec<Result<u64>>> {
        self.concurrency.lock().unwrap().push(c);
        self.steps.fetch_add(steps.len(), Ordering::Relaxed);
        Ok(steps.iter().map(|_| Ok(1)).collect())
    }
    async fn prepare(&self, reqs: &[PrepareReq]) -> Result<BatchResult<EndpointError>> {
        Ok(reqs.iter().map(|_| Ok(())).collect())
    }
    async fn send(&self, step: &StepReq) -> Result<Box<dyn SendStream>> {
        self.inner.send(step).await
    }
    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        Ok(reqs.iter().map(|_| Ok(())).collect())
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
    async fn destroy_snapshots(&self, fs: &DatasetPath, s: &[String]) -> Result<DestroyOutcome> {
        self.inner.destroy_snapshots(fs, s).await
    }
    fn describe(&self) -> String {
        "recording".into()
    }
}

#[tokio::test]
async fn the_server_caps_estimate_concurrency_and_clients_split_big_batches() {
    let rec = Arc::new(Recording {
        inner: MockSender::default(),
        concurrency: Mutex::new(Vec::new()),
        steps: AtomicUsize::new(0),
    });
    let cfg = RpcConfig {
        max_estimate_concurrency: 3,
        ..RpcConfig::default()
    };
    let conn = common::TestConnector::new(
        common::Net::Duplex,
        sender(rec.clone()),
        cfg.clone(),
        CancellationToken::new(),
    );
    let rs = RemoteSender::new(conn, cfg);
    let steps = vec![step("bytes-1"); 2500];
    let r = rs.estimate(&steps, 1000).await.unwrap();
    assert_eq!(r.len(), 2500);
    assert_eq!(
        *rec.concurrency.lock().unwrap(),
        [3, 3, 3],
        "three requests, capped"
    );
    assert_eq!(rec.steps.load(Ordering::Relaxed), 2500);
}

#[tokio::test]
async fn requests_over_the_item_cap_or_with_percent_names_are_refused_and_the_connection_goes_on() {
    let cfg = RpcConfig {
        max_request_items: 10,
        ..RpcConfig::default()
    };
    let (mut c, task) = serve(sender(Arc::new(MockSender::default())), cfg);
    raw_handshake(&mut c, true).await;
    let steps: Vec<StepReq> = vec![step("bytes-1"); 11];
    let req =
        serde_json::json!({"call": "sender.estimate", "args": {"steps": steps, "concurrency": 1}});
    write_frame(&mut c, k::CONTROL, req.to_string().as_bytes()).await;
    let w = error_reply(&mut c).await;
    assert!(
        !w.temporary && w.message.contains("11 steps") && w.message.contains("at most 10"),
        "{w:?}"
    );
    let req = serde_json::json!({"call": "sender.destroy_snapshots", "args": {"fs": "pool/a", "snapshots": ["%"]}});
    write_frame(&mut c, k::CONTROL, req.to_string().as_bytes()).await;
    let w = error_reply(&mut c).await;
    assert!(
        w.message.contains("pool/a@%") && w.message.contains("range"),
        "{w:?}"
    );
    // The connection still serves.
    write_frame(&mut c, k::CONTROL, br#"{"call":"ping"}"#).await;
    assert_eq!(read_reply(&mut c).await.unwrap().0, k::CONTROL);
    drop(c);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_hostile_server_reply_is_refused_or_cleaned() {
    let (conn, mut s) = RawConnector::pair();
    let cfg = RpcConfig::default();
    let rs = RemoteSender::new(conn, cfg);
    let server = tokio::spawn(async move {
        raw_handshake(&mut s, false).await;
        // list_filesystems: a listing with a `%` snapshot name.
        let _ = read_frame(&mut s).await;
        let listing = serde_json::json!([{"path": "pool/a", "placeholder": false, "encrypted": false,
            "resume": null, "cursor_guid": null,
            "versions": [{"kind": "snapshot", "name": "%", "guid": 1, "createtxg": 1, "creation": 0}]}]);
        write_frame(&mut s, k::CONTROL, listing.to_string().as_bytes()).await;
        s
    });
    let err = rs.list_filesystems().await.unwrap_err();
    assert!(
        err.to_string().contains("invalid reply") && err.to_string().contains('%'),
        "{err}"
    );
    drop(server.await.unwrap());
}

#[tokio::test]
async fn peer_text_in_abort_reasons_and_error_frames_is_escaped_and_cut() {
    let (conn, mut s) = RawConnector::pair();
    let rs = RemoteSender::new(conn, RpcConfig::default());
    let server = tokio::spawn(async move {
        raw_handshake(&mut s, false).await;
        let _ = read_frame(&mut s).await;
        let w = WireError::new(format!("boom\nFORGED {}", "x".repeat(1 << 20)), false);
        write_frame(&mut s, k::ERROR, &serde_json::to_vec(&w).unwrap()).await;
        s
    });
    let err = rs.list_filesystems().await.unwrap_err().to_string();
    assert!(
        !err.contains('\n') && err.contains("boom\\nFORGED"),
        "{}",
        &err[..200]
    );
    assert!(err.len() < 1500, "{}", err.len());
    drop(server.await.unwrap());
}
