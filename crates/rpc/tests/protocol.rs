//! The protocol against peers driven by hand: versioning, non-zrelay peers,
//! limits, garbage. Each failure must be a clear error, never a panic.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{hello, raw_handshake, read_frame, read_hello, read_reply, write_frame, RawConnector};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsListing, FsVersion, Guarantee,
    Protection, Receiver, Sender, StepReq,
};
use zrelay_rpc::frame_kind as k;
use zrelay_rpc::{ping, serve_conn, Endpoints, RemoteSender, RpcConfig, RpcError, WireError};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::{Classify, DatasetPath, ErrorClass};

/// Serve one duplex connection; return the test's end and the server task.
fn serve(
    endpoints: Endpoints,
    cfg: RpcConfig,
) -> (DuplexStream, tokio::task::JoinHandle<Result<(), RpcError>>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let task = tokio::spawn(serve_conn(
        Box::new(b),
        "raw client".into(),
        Arc::new(endpoints),
        cfg,
        CancellationToken::new(),
    ));
    (a, task)
}

/// Everything the test subscriber logged.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn version_mismatch_is_an_error_on_both_sides() {
    let logs = Logs::default();
    let l = logs.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || l.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(sub);

    // Server side: a client speaking version 2.
    let (mut c, task) = serve(Endpoints::default(), RpcConfig::default());
    c.write_all(&hello(2, "9.9.9")).await.unwrap();
    assert_eq!(
        read_hello(&mut c).await,
        1,
        "the server still says which version it speaks"
    );
    let err = task.await.unwrap().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("peer speaks zrelay protocol version 2, this zrelay speaks 1")
            && msg.contains("upgrade"),
        "{msg}"
    );
    assert!(!err.is_temporary());
    let logged = logs.text();
    assert!(
        logged.contains("WARN") && logged.contains("peer speaks zrelay protocol version 2"),
        "server log: {logged}"
    );

    // Client side: a server speaking version 2.
    let (conn, mut s) = RawConnector::pair();
    let server = tokio::spawn(async move {
        read_hello(&mut s).await;
        s.write_all(&hello(2, "9.9.9")).await.unwrap();
        s
    });
    let err = ping(conn.as_ref(), &RpcConfig::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("peer speaks zrelay protocol version 2, this zrelay speaks 1"),
        "{err}"
    );
    drop(server.await.unwrap());

    // Through the trait: a permanent endpoint error naming the peer.
    let (conn, mut s) = RawConnector::pair();
    tokio::spawn(async move {
        read_hello(&mut s).await;
        s.write_all(&hello(2, "9.9.9")).await.unwrap();
        let _ = s.read(&mut [0u8; 64]).await;
    });
    let e = RemoteSender::new(conn, RpcConfig::default())
        .list_filesystems()
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    assert!(
        e.to_string().contains("raw test peer") && e.to_string().contains("version 2"),
        "{e}"
    );
}

#[tokio::test]
async fn non_zrelay_peers_are_refused() {
    // An HTTP client.
    let (mut c, task) = serve(Endpoints::default(), RpcConfig::default());
    c.write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, RpcError::NotZrelay { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not a zrelay daemon") && err.to_string().contains("GET / HT"),
        "{err}"
    );

    // Random bytes.
    let (mut c, task) = serve(Endpoints::default(), RpcConfig::default());
    c.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4])
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("not a zrelay daemon"), "{err}");

    // An ssh server answering the client.
    let (conn, mut s) = RawConnector::pair();
    tokio::spawn(async move {
        s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
        let _ = s.read(&mut [0u8; 64]).await;
    });
    let err = ping(conn.as_ref(), &RpcConfig::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a zrelay daemon") && err.to_string().contains("SSH-2.0"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_peer_fails_the_handshake_in_time() {
    let cfg = RpcConfig {
        handshake_timeout: Duration::from_millis(100),
        ..RpcConfig::default()
    };
    let (_c, task) = serve(Endpoints::default(), cfg.clone());
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(err, RpcError::Timeout { .. }) && err.to_string().contains("hello"),
        "{err}"
    );

    let (conn, _s) = RawConnector::pair();
    let err = ping(conn.as_ref(), &cfg).await.unwrap_err();
    assert!(
        err.to_string().contains("nothing received for 100ms"),
        "{err}"
    );
}

/// Frames that must fail the connection with a clear error frame, and the
/// words it must contain.
async fn refused(frames: &[(u8, &[u8])], want: &[&str], cfg: RpcConfig) {
    let (mut c, task) = serve(Endpoints::default(), cfg);
    raw_handshake(&mut c, true).await;
    for (kind, payload) in frames {
        write_frame(&mut c, *kind, payload).await;
    }
    let (kind, payload) = read_reply(&mut c).await.expect("an error frame");
    assert_eq!(kind, k::ERROR);
    let w: WireError = serde_json::from_slice(&payload).unwrap();
    for word in want {
        assert!(w.message.contains(word), "{:?} lacks {word:?}", w.message);
    }
    assert!(!w.temporary);
    let err = task.await.unwrap().unwrap_err();
    for word in want {
        assert!(
            err.to_string().contains(word),
            "server error {err} lacks {word:?}"
        );
    }
    assert!(
        read_frame(&mut c).await.is_none(),
        "the server closes the connection"
    );
}

#[tokio::test]
async fn garbage_frames_are_refused_with_clear_errors() {
    let cfg = RpcConfig::default();
    // A header announcing 4 GiB: refused before allocating.
    let (mut c, task) = serve(Endpoints::default(), cfg.clone());
    raw_handshake(&mut c, true).await;
    c.write_all(&[k::CONTROL, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let (kind, payload) = read_reply(&mut c).await.unwrap();
    assert_eq!(kind, k::ERROR);
    let w: WireError = serde_json::from_slice(&payload).unwrap();
    assert!(
        w.message
            .contains("control message of 4294967295 bytes exceeds the limit of 8388608 bytes"),
        "{}",
        w.message
    );
    assert!(task.await.unwrap().is_err());

    // A configured limit.
    let small = RpcConfig {
        max_control_message: 16,
        ..RpcConfig::default()
    };
    refused(
        &[(k::CONTROL, br#"{"call":"sender.list_filesystems"}"#)],
        &["34 bytes", "limit of 16 bytes"],
        small,
    )
    .await;
    refused(
        &[(k::CONTROL, b"{\"call\": nonsense")],
        &["invalid request", "nonsense"],
        cfg.clone(),
    )
    .await;
    refused(
        &[(k::CONTROL, br#"{"call":"sender.frobnicate"}"#)],
        &["invalid request", "frobnicate"],
        cfg.clone(),
    )
    .await;
    refused(&[(0x47, b"")], &["unknown frame type 0x47"], cfg.clone()).await;
    refused(&[(k::DATA_END, b"")], &["expected a request"], cfg.clone()).await;
    refused(&[(k::HEARTBEAT, b"xy")], &["must be empty"], cfg).await;
}

/// A receiver that reads its stream to the end and fails with what the
/// read said.
struct ReadAll;

#[async_trait]
impl Receiver for ReadAll {
    async fn list_filesystems(&self) -> zrelay_endpoint::Result<Vec<FsListing>> {
        Ok(Vec::new())
    }
    async fn receive(
        &self,
        step: &StepReq,
        mut stream: Box<dyn SendStream>,
    ) -> zrelay_endpoint::Result<()> {
        let mut sink = Vec::new();
        stream
            .read_to_end(&mut sink)
            .await
            .map_err(|e| EndpointError::Stream {
                fs: step.fs.clone(),
                reason: e.to_string(),
                temporary: false,
            })?;
        Ok(())
    }
    async fn commit(&self, _: &[CommitReq]) -> zrelay_endpoint::Result<BatchResult<EndpointError>> {
        Ok(Vec::new())
    }
    async fn list_versions(&self, _: &DatasetPath) -> zrelay_endpoint::Result<Vec<FsVersion>> {
        Ok(Vec::new())
    }
    async fn destroy_snapshots(
        &self,
        _: &DatasetPath,
        _: &[String],
    ) -> zrelay_endpoint::Result<DestroyOutcome> {
        Ok(DestroyOutcome::default())
    }
    fn describe(&self) -> String {
        "read-all receiver".into()
    }
}

fn step() -> StepReq {
    StepReq {
        fs: DatasetPath::parse("pool/a").unwrap(),
        from: None,
        to: FsVersion {
            kind: VersionKind::Snapshot,
            name: "1".into(),
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

#[tokio::test]
async fn an_oversized_data_chunk_is_refused() {
    let eps = Endpoints {
        sender: None,
        receiver: Some(Arc::new(ReadAll)),
    };
    let (mut c, task) = serve(eps, RpcConfig::default());
    raw_handshake(&mut c, true).await;
    let req = serde_json::json!({"call": "receiver.receive", "args": {"step": step()}});
    write_frame(&mut c, k::CONTROL, req.to_string().as_bytes()).await;
    assert_eq!(
        read_reply(&mut c).await.unwrap(),
        (k::CONTROL, b"null".to_vec()),
        "ready"
    );
    write_frame(&mut c, k::DATA, b"fine").await;
    c.write_all(&[k::DATA, 0, 0x50, 0, 0]).await.unwrap(); // 5 MiB
    let (kind, payload) = read_reply(&mut c).await.unwrap();
    assert_eq!(kind, k::ERROR);
    let w: WireError = serde_json::from_slice(&payload).unwrap();
    assert!(
        w.message
            .contains("data chunk of 5242880 bytes exceeds the limit of 4194304 bytes"),
        "{}",
        w.message
    );
    drop(c);
    assert!(
        task.await.unwrap().is_ok(),
        "a failed stream is the call's error, not the connection's"
    );
}

#[tokio::test]
async fn garbage_from_the_server_is_a_clear_client_error() {
    for (frame, want) in [
        (
            (k::CONTROL, &b"[1, 2"[..]),
            "invalid reply to sender.list_filesystems",
        ),
        ((k::ERROR, &b"{}"[..]), "invalid error frame"),
        ((0x99, &b""[..]), "unknown frame type 0x99"),
        (
            (k::DATA_END, &b""[..]),
            "unexpected the end of a data stream",
        ),
    ] {
        let (conn, mut s) = RawConnector::pair();
        tokio::spawn(async move {
            raw_handshake(&mut s, false).await;
            read_frame(&mut s).await.unwrap();
            write_frame(&mut s, frame.0, frame.1).await;
            let _ = s.read(&mut [0u8; 64]).await;
        });
        let e = RemoteSender::new(conn, RpcConfig::default())
            .list_filesystems()
            .await
            .unwrap_err();
        assert!(e.to_string().contains(want), "{e} lacks {want:?}");
        assert!(e.to_string().contains("raw test peer"), "{e}");
    }
}

/// `Sender` is only here to check that a served sender-less daemon says so.
#[tokio::test]
async fn a_missing_role_is_a_clear_permanent_error() {
    let eps = Endpoints {
        sender: None,
        receiver: Some(Arc::new(ReadAll)),
    };
    let conn = common::TestConnector::new(
        common::Net::Duplex,
        eps,
        RpcConfig::default(),
        CancellationToken::new(),
    );
    let s = RemoteSender::new(conn.clone(), RpcConfig::default());
    let e = s.list_filesystems().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(e.to_string().contains("serves no sender"), "{e}");
    let e = match s.send(&step()).await {
        Err(e) => e,
        Ok(_) => panic!("send must fail"),
    };
    assert!(e.to_string().contains("serves no sender"), "{e}");
    let info = ping(conn.as_ref(), &RpcConfig::default()).await.unwrap();
    assert!(
        !info.sender && info.receiver && info.protocol_version == 1,
        "{info:?}"
    );
    assert_eq!(conn.count(), 2, "the failed calls reused their connection");
}
