//! Calls and data streams through RPC with scripted endpoints: heartbeats
//! and idle timeouts, connection reuse, error classes and resume tokens,
//! early close, aborts and cancellation.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mock::{byte_at, step, MockSender, MockStream, ReaderStream, RecordingReceiver};
use common::{raw_handshake, read_frame, write_frame, Net, RawConnector, TestConnector};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{EndpointError, Receiver, Sender};
use zrelay_rpc::frame_kind as k;
use zrelay_rpc::{Endpoints, RemoteReceiver, RemoteSender, RpcConfig};
use zrelay_zfs::{Classify, DatasetPath, ErrorClass};

fn quick() -> RpcConfig {
    RpcConfig {
        heartbeat_interval: Duration::from_millis(50),
        idle_timeout: Duration::from_millis(250),
        ..RpcConfig::default()
    }
}

fn both(sender: MockSender) -> (Endpoints, Arc<MockSender>, Arc<RecordingReceiver>) {
    let s = Arc::new(sender);
    let r = Arc::new(RecordingReceiver::default());
    let eps = Endpoints {
        sender: Some(s.clone()),
        receiver: Some(r.clone()),
    };
    (eps, s, r)
}

async fn send_err(s: &RemoteSender, name: &str) -> EndpointError {
    match s.send(&step(name)).await {
        Err(e) => e,
        Ok(_) => panic!("send of {name} must fail"),
    }
}

#[tokio::test]
async fn a_slow_handler_heartbeats_while_a_silent_peer_times_out() {
    let cfg = quick();
    let (eps, _, _) = both(MockSender {
        delay: Duration::from_millis(800),
        ..MockSender::default()
    });
    let conn = TestConnector::new(Net::Duplex, eps, cfg.clone(), CancellationToken::new());
    let s = RemoteSender::new(conn, cfg.clone());
    let l = s
        .list_filesystems()
        .await
        .expect("800 ms with heartbeats beats a 250 ms idle timeout");
    assert_eq!(l.len(), 1);

    // A server that reads the request and never answers.
    let (conn, mut srv) = RawConnector::pair();
    tokio::spawn(async move {
        raw_handshake(&mut srv, false).await;
        read_frame(&mut srv).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let started = Instant::now();
    let e = RemoteSender::new(conn, cfg)
        .list_filesystems()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(e, EndpointError::Transport(_)), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Temporary);
    let msg = e.to_string();
    assert!(
        msg.contains("raw test peer") && msg.contains("nothing received for 250ms"),
        "{msg}"
    );
}

#[tokio::test]
async fn idle_data_streams_heartbeat_and_silent_ones_time_out() {
    let cfg = quick();
    let (eps, _, recv) = both(MockSender::default());
    let conn = TestConnector::new(Net::Duplex, eps, cfg.clone(), CancellationToken::new());
    // Server to client: the source is silent for 600 ms.
    let s = RemoteSender::new(conn.clone(), cfg.clone());
    let mut stream = s.send(&step("silent")).await.unwrap();
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .await
        .expect("heartbeats keep the stream alive");
    assert_eq!(got, [0, 1, 2, 3, 4]);
    // Client to server: the local stream is silent for 600 ms.
    let r = RemoteReceiver::new(conn, cfg.clone());
    let local = MockStream::new(70_000).after(Duration::from_millis(600));
    r.receive(&step("x"), Box::new(local))
        .await
        .expect("heartbeats keep the receive alive");
    let got = recv.got.lock().unwrap().last().cloned().unwrap();
    assert!(got.bytes == 70_000 && got.intact, "{got:?}");

    // A server that starts the stream and falls silent.
    let (conn, mut srv) = RawConnector::pair();
    tokio::spawn(async move {
        raw_handshake(&mut srv, false).await;
        read_frame(&mut srv).await;
        write_frame(&mut srv, k::CONTROL, b"null").await;
        write_frame(&mut srv, k::DATA, b"abc").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let mut stream = RemoteSender::new(conn, cfg).send(&step("x")).await.unwrap();
    let mut got = Vec::new();
    let e = stream.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(got, b"abc");
    assert!(
        e.to_string().contains("raw test peer")
            && e.to_string().contains("nothing received for 250ms"),
        "{e}"
    );
}

#[tokio::test]
async fn connections_are_reused_unless_a_call_broke_off() {
    let cfg = RpcConfig::default();
    let (eps, sender, recv) = both(MockSender::default());
    let conn = TestConnector::new(Net::Duplex, eps, cfg.clone(), CancellationToken::new());
    let s = RemoteSender::new(conn.clone(), cfg.clone());
    let r = RemoteReceiver::new(conn.clone(), cfg.clone());
    for _ in 0..5 {
        s.list_filesystems().await.unwrap();
    }
    let mut stream = s.send(&step("bytes-3000000")).await.unwrap();
    let mut n = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = stream.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        n += k;
    }
    assert_eq!(n, 3_000_000);
    stream.close().await.unwrap();
    drop(stream);
    s.list_versions(&DatasetPath::parse("pool/a").unwrap())
        .await
        .unwrap_err();
    send_err(&s, "refuse").await;
    s.list_filesystems().await.unwrap();
    assert_eq!(conn.count(), 1, "sequential calls share one connection");

    for _ in 0..3 {
        r.receive(&step("x"), Box::new(MockStream::new(1_500_000)))
            .await
            .unwrap();
    }
    assert_eq!(conn.count(), 2, "the receiver has its own pool, reused");
    assert!(recv
        .got
        .lock()
        .unwrap()
        .iter()
        .all(|g| g.bytes == 1_500_000 && g.intact));

    // A stream closed before its end drops its connection, and the server
    // stops its send.
    let mut stream = s.send(&step("endless")).await.unwrap();
    stream.read_exact(&mut buf).await.unwrap();
    stream.close().await.unwrap();
    let closed = sender.last_closed.lock().unwrap().clone().unwrap();
    let t = Instant::now();
    while !closed.load(Ordering::SeqCst) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the served send was not closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.list_filesystems().await.unwrap();
    assert_eq!(conn.count(), 3, "a new connection after the early close");

    // A stream dropped unread: the same.
    let stream = s.send(&step("endless")).await.unwrap();
    drop(stream);
    s.list_filesystems().await.unwrap();
    assert_eq!(conn.count(), 4);
}

#[tokio::test]
async fn errors_keep_their_class_and_batches_their_items() {
    let cfg = RpcConfig::default();
    let (eps, _, _) = both(MockSender::default());
    let conn = TestConnector::new(Net::Duplex, eps, cfg.clone(), CancellationToken::new());
    let s = RemoteSender::new(conn.clone(), cfg.clone());
    let fs = DatasetPath::parse("pool/a").unwrap();

    let e = s.list_versions(&fs).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(
        e.to_string().contains("no such filesystem") && e.to_string().contains("test peer"),
        "{e}"
    );
    let e = s.replication_cursor(&fs).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Temporary);
    assert!(e.to_string().contains("dataset is busy"), "{e}");
    let e = send_err(&s, "refuse").await;
    assert_eq!(e.class(), ErrorClass::Permanent);

    // The mock answers three items whatever it is asked: ask for three (a reply
    // with another count than the request is a protocol error).
    let prep = zrelay_endpoint::PrepareReq {
        fs: fs.clone(),
        steps: vec![],
    };
    let b = s
        .prepare(&[prep.clone(), prep.clone(), prep])
        .await
        .unwrap();
    assert_eq!(b.len(), 3);
    assert!(b[0].is_ok());
    let e1 = b[1].as_ref().unwrap_err();
    assert!(
        e1.class() == ErrorClass::Permanent && e1.to_string().contains("item refused"),
        "{e1}"
    );
    let e2 = b[2].as_ref().unwrap_err();
    assert!(
        e2.class() == ErrorClass::Temporary && e2.to_string().contains("item flaked"),
        "{e2}"
    );
    let est = s.estimate(&[step("a"), step("b")], 2).await.unwrap();
    assert_eq!(*est[0].as_ref().unwrap(), 5);
    assert_eq!(est[1].as_ref().unwrap_err().class(), ErrorClass::Temporary);
    let d = s.destroy_snapshots(&fs, &["a".into()]).await.unwrap();
    assert_eq!(d.destroyed, ["a"]);
    assert_eq!(d.kept, [("held".to_string(), "it has a hold".to_string())]);
    assert_eq!(s.abort(std::slice::from_ref(&fs)).await.unwrap().len(), 1);

    let r = RemoteReceiver::new(conn.clone(), cfg);
    let c = r
        .commit(&[zrelay_endpoint::CommitReq {
            fs,
            to: step("x").to,
            protection: Default::default(),
            incremental: false,
        }])
        .await
        .unwrap();
    assert!(c[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("guid mismatch"));
    assert_eq!(
        conn.count(),
        2,
        "error replies leave the connection reusable"
    );
}

#[tokio::test]
async fn a_send_failing_mid_stream_is_a_read_error() {
    let (eps, _, _) = both(MockSender::default());
    let conn = TestConnector::new(
        Net::Duplex,
        eps,
        RpcConfig::default(),
        CancellationToken::new(),
    );
    let s = RemoteSender::new(conn, RpcConfig::default());
    let mut stream = s.send(&step("fail")).await.unwrap();
    let mut got = Vec::new();
    let e = stream.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(got.len(), 1 << 20, "everything before the failure arrives");
    assert!(
        e.to_string().contains("local failure after 1048576 bytes"),
        "{e}"
    );
    assert!(e.to_string().contains("test peer"), "{e}");
}

#[tokio::test]
async fn a_failing_local_stream_aborts_the_remote_receive_keeping_its_token() {
    let (eps, _, recv) = both(MockSender::default());
    let conn = TestConnector::new(
        Net::Duplex,
        eps,
        RpcConfig::default(),
        CancellationToken::new(),
    );
    let r = RemoteReceiver::new(conn.clone(), RpcConfig::default());
    let local = MockStream::new(u64::MAX).failing_after(300_000);
    let e = r.receive(&step("x"), Box::new(local)).await.unwrap_err();
    assert_eq!(e.resume_token(), Some("tok-300000"), "{e:?}");
    assert!(matches!(e, EndpointError::Receive { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("aborted the data stream")
            && msg.contains("local failure after 300000 bytes")
            && msg.contains("(resumable)"),
        "{msg}"
    );
    let got = recv.got.lock().unwrap()[0].clone();
    assert!(got.bytes == 300_000 && got.intact, "{got:?}");
    // The abort left the connection at a frame boundary: reused.
    r.list_filesystems().await.unwrap();
    assert_eq!(conn.count(), 1);
}

#[tokio::test]
async fn cancelling_the_server_aborts_a_receive_in_progress() {
    let cancel = CancellationToken::new();
    let (eps, _, recv) = both(MockSender::default());
    let conn = TestConnector::new(Net::Duplex, eps, RpcConfig::default(), cancel.clone());
    let r = RemoteReceiver::new(conn, RpcConfig::default());
    // 100 KB, then a long silence.
    let local = MockStream::new(100_000);
    let chained =
        tokio::io::AsyncReadExt::chain(local, MockStream::new(1).after(Duration::from_secs(60)));
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.cancel();
    });
    let e = r
        .receive(&step("x"), Box::new(ReaderStream(chained)))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Temporary, "{e}");
    assert!(e.to_string().contains("shutting down"), "{e}");
    assert_eq!(
        e.resume_token(),
        Some("tok-100000"),
        "the receive kept its state"
    );
    let got = recv.got.lock().unwrap()[0].clone();
    assert!(got.error.unwrap().contains("shutting down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streams_cross_loopback_tcp_intact() {
    let cfg = RpcConfig::default();
    let cancel = CancellationToken::new();
    let (eps, _, recv) = both(MockSender::default());
    let conn = TestConnector::new(Net::Tcp, eps, cfg.clone(), cancel.clone());
    let s = RemoteSender::new(conn.clone(), cfg.clone());
    let r = RemoteReceiver::new(conn.clone(), cfg);
    let len = 64u64 << 20;
    let started = Instant::now();
    // Remote sender -> remote receiver: the driver's path, over two connections.
    let stream = s.send(&step(&format!("bytes-{len}"))).await.unwrap();
    r.receive(&step("x"), stream).await.unwrap();
    eprintln!(
        "64 MiB through two TCP connections in {:?}",
        started.elapsed()
    );
    let got = recv.got.lock().unwrap()[0].clone();
    assert!(got.bytes == len && got.intact, "{got:?}");
    assert_eq!(byte_at(len - 1), byte_at((len - 1) % 251));
    s.list_filesystems().await.unwrap();
    r.list_filesystems().await.unwrap();
    assert_eq!(conn.count(), 2, "both connections were reused");
    cancel.cancel();
}
