//! zstd on the wire (a zrelay extension): negotiated per stream, compressed
//! only where it pays, compatible with servers that do not know it, and
//! hostile compressed frames refused with an error naming the peer.

mod common;

use std::sync::Arc;

use common::mock::{byte_at, step, MockSender, MockStream, ReaderStream, RecordingReceiver};
use common::{raw_handshake, read_frame, write_frame, Net, RawConnector, TestConnector};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{Receiver, Sender};
use zrelay_rpc::frame_kind as k;
use zrelay_rpc::{Compression, Endpoints, RemoteReceiver, RemoteSender, RpcConfig};

fn zstd_cfg() -> RpcConfig {
    RpcConfig {
        compression: Compression::Zstd { level: 1 },
        ..RpcConfig::default()
    }
}

/// Incompressible bytes (xorshift).
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn compressed_streams_arrive_intact_both_ways() {
    let cfg = zstd_cfg();
    let s = Arc::new(MockSender::default());
    let r = Arc::new(RecordingReceiver::default());
    let eps = Endpoints {
        sender: Some(s.clone()),
        receiver: Some(r.clone()),
    };
    let conn = TestConnector::new(Net::Duplex, eps, cfg.clone(), CancellationToken::new());
    // Client to server (push).
    let remote = RemoteReceiver::new(conn.clone(), cfg.clone());
    remote
        .receive(&step("push"), Box::new(MockStream::new(5 << 20)))
        .await
        .unwrap();
    let got = r.got.lock().unwrap().last().cloned().unwrap();
    assert!(got.bytes == 5 << 20 && got.intact, "{got:?}");
    // Server to client (pull), on the reused connection.
    let n = 5u64 << 20;
    let mut stream = RemoteSender::new(conn, cfg)
        .send(&step(&format!("bytes-{n}")))
        .await
        .unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    assert_eq!(buf.len() as u64, n);
    assert!(buf.iter().enumerate().all(|(i, b)| *b == byte_at(i as u64)));
}

/// A raw server that agrees to compression for one `receiver.receive` and
/// returns the data frames it got (kind, payload) until the stream's end.
async fn receive_frames(
    cfg: RpcConfig,
    data: Vec<u8>,
    reply: &'static [u8],
) -> (String, Vec<(u8, Vec<u8>)>) {
    let (conn, mut srv) = RawConnector::pair();
    let server = tokio::spawn(async move {
        raw_handshake(&mut srv, false).await;
        let (_, req) = read_frame(&mut srv).await.unwrap();
        write_frame(&mut srv, k::CONTROL, reply).await;
        let frames = data_frames(&mut srv).await;
        write_frame(&mut srv, k::CONTROL, b"null").await;
        (String::from_utf8(req).unwrap(), frames)
    });
    RemoteReceiver::new(conn, cfg)
        .receive(
            &step("x"),
            Box::new(ReaderStream(std::io::Cursor::new(data))),
        )
        .await
        .unwrap();
    server.await.unwrap()
}

/// The data frames (kind, payload) of one stream, up to its `data end`.
async fn data_frames(s: &mut tokio::io::DuplexStream) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    loop {
        let (kind, p) = read_frame(s).await.unwrap();
        match kind {
            k::HEARTBEAT => continue,
            k::DATA_END => return frames,
            _ => frames.push((kind, p)),
        }
    }
}

fn reassemble(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, p) in frames {
        match *kind {
            k::DATA => out.extend_from_slice(p),
            k::DATA_ZSTD => out.extend(zstd::bulk::decompress(p, 4 << 20).unwrap()),
            other => panic!("unexpected frame kind {other}"),
        }
    }
    out
}

#[tokio::test]
async fn compressible_data_goes_out_smaller_and_noise_goes_out_raw() {
    let text: Vec<u8> = (0..4u64 << 20).map(byte_at).collect();
    let (req, frames) =
        receive_frames(zstd_cfg(), text.clone(), br#"{"compression":"zstd"}"#).await;
    assert!(
        req.contains(r#""compress":{"codec":"zstd","level":1}"#),
        "{req}"
    );
    assert!(frames.iter().all(|(kind, _)| *kind == k::DATA_ZSTD));
    let wire: usize = frames.iter().map(|(_, p)| p.len()).sum();
    assert!(
        wire * 20 < text.len(),
        "{wire} bytes on the wire for {}",
        text.len()
    );
    assert_eq!(reassemble(&frames), text);

    let rnd = noise(4 << 20);
    let (_, frames) = receive_frames(zstd_cfg(), rnd.clone(), br#"{"compression":"zstd"}"#).await;
    assert!(
        frames.iter().all(|(kind, _)| *kind == k::DATA),
        "noise is sent raw"
    );
    assert_eq!(reassemble(&frames), rnd);
}

#[tokio::test]
async fn a_server_that_does_not_agree_gets_a_raw_stream() {
    let text: Vec<u8> = (0..1u64 << 20).map(byte_at).collect();
    // An older server: ignores `compress`, replies `null`.
    let (req, frames) = receive_frames(zstd_cfg(), text.clone(), b"null").await;
    assert!(req.contains(r#""compress""#), "{req}");
    assert!(frames.iter().all(|(kind, _)| *kind == k::DATA));
    assert_eq!(reassemble(&frames), text);
    // A client that does not ask sends no `compress` (what older servers saw).
    let (req, frames) = receive_frames(RpcConfig::default(), text.clone(), b"null").await;
    assert!(!req.contains("compress"), "{req}");
    assert_eq!(reassemble(&frames), text);
}

/// A raw server that answers `sender.send` with `reply`, then sends `frames`
/// (kind, payload) and waits; returns what the client read and its error.
async fn send_from(
    cfg: RpcConfig,
    reply: &'static [u8],
    frames: Vec<(u8, Vec<u8>)>,
) -> (Vec<u8>, Option<String>) {
    let (conn, mut srv) = RawConnector::pair();
    tokio::spawn(async move {
        raw_handshake(&mut srv, false).await;
        read_frame(&mut srv).await.unwrap();
        write_frame(&mut srv, k::CONTROL, reply).await;
        for (kind, p) in frames {
            write_frame(&mut srv, kind, &p).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    });
    let mut stream = RemoteSender::new(conn, cfg).send(&step("x")).await.unwrap();
    let mut got = Vec::new();
    let e = stream
        .read_to_end(&mut got)
        .await
        .err()
        .map(|e| e.to_string());
    (got, e)
}

#[tokio::test]
async fn compressed_chunks_are_decoded_only_where_negotiated() {
    let chunk = zstd::bulk::compress(b"hello, compressed world", 3).unwrap();
    let frames = vec![
        (k::DATA, b"raw:".to_vec()),
        (k::DATA_ZSTD, chunk.clone()),
        (k::DATA_END, Vec::new()),
    ];
    let (got, e) = send_from(zstd_cfg(), br#"{"compression":"zstd"}"#, frames.clone()).await;
    assert_eq!(e, None);
    assert_eq!(got, b"raw:hello, compressed world");

    // The client did not ask: a compressed chunk is a protocol violation.
    let (got, e) = send_from(RpcConfig::default(), b"null", frames.clone()).await;
    assert_eq!(got, b"raw:");
    let e = e.expect("refused");
    assert!(
        e.contains("raw test peer") && e.contains("did not negotiate compression"),
        "{e}"
    );
    // It asked, but the server did not agree: the same.
    let (_, e) = send_from(zstd_cfg(), b"null", frames).await;
    assert!(e.unwrap().contains("did not negotiate compression"));
}

#[tokio::test]
async fn hostile_compressed_chunks_fail_the_stream_naming_the_peer() {
    // 64 MiB of zeros in a few KiB: past the 4 MiB chunk limit.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 1).unwrap();
    assert!(bomb.len() < 64 << 10);
    let (got, e) = send_from(
        zstd_cfg(),
        br#"{"compression":"zstd"}"#,
        vec![(k::DATA_ZSTD, bomb)],
    )
    .await;
    assert!(got.is_empty());
    let e = e.expect("refused");
    assert!(
        e.contains("raw test peer") && e.contains("does not decompress to at most 4194304 bytes"),
        "{e}"
    );
    // Garbage.
    let (_, e) = send_from(
        zstd_cfg(),
        br#"{"compression":"zstd"}"#,
        vec![(k::DATA_ZSTD, b"\x28\xb5\x2f\xfdgarbage".to_vec())],
    )
    .await;
    assert!(e.unwrap().contains("does not decompress"));
    // A compressed chunk announced past the chunk limit is refused before it is read.
    let (conn, mut srv) = RawConnector::pair();
    tokio::spawn(async move {
        raw_handshake(&mut srv, false).await;
        read_frame(&mut srv).await.unwrap();
        write_frame(&mut srv, k::CONTROL, br#"{"compression":"zstd"}"#).await;
        use tokio::io::AsyncWriteExt;
        let mut h = vec![k::DATA_ZSTD];
        h.extend_from_slice(&(64u32 << 20).to_be_bytes());
        srv.write_all(&h).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    });
    let mut stream = RemoteSender::new(conn, zstd_cfg())
        .send(&step("x"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let e = stream.read_to_end(&mut got).await.unwrap_err().to_string();
    assert!(
        e.contains("compressed data chunk") && e.contains("67108864"),
        "{e}"
    );
}

#[tokio::test]
async fn a_server_compresses_what_a_client_asks_for_at_a_clamped_level() {
    let eps = Endpoints {
        sender: Some(Arc::new(MockSender::default())),
        receiver: None,
    };
    for (ask, want_zstd) in [
        (Some(r#","compress":{"codec":"zstd","level":99}"#), true),
        (None, false),
    ] {
        let (mut c, _task) = {
            let (a, b) = tokio::io::duplex(4 << 20);
            let task = tokio::spawn(zrelay_rpc::serve_conn(
                Box::new(b),
                "raw client".into(),
                Arc::new(Endpoints {
                    sender: eps.sender.clone(),
                    receiver: None,
                }),
                RpcConfig::default(),
                CancellationToken::new(),
            ));
            (a, task)
        };
        raw_handshake(&mut c, true).await;
        let n = 3u64 << 20;
        let st = serde_json::to_string(&step(&format!("bytes-{n}"))).unwrap();
        let req = format!(
            r#"{{"call":"sender.send","args":{{"step":{st}{}}}}}"#,
            ask.unwrap_or("")
        );
        write_frame(&mut c, k::CONTROL, req.as_bytes()).await;
        let (kind, reply) = common::read_reply(&mut c).await.unwrap();
        assert_eq!(kind, k::CONTROL, "{}", String::from_utf8_lossy(&reply));
        let want_reply: &[u8] = if want_zstd {
            br#"{"compression":"zstd"}"#
        } else {
            b"null"
        };
        assert_eq!(reply, want_reply);
        let frames = data_frames(&mut c).await;
        let data = reassemble(&frames);
        assert_eq!(data.len() as u64, n);
        assert!(data
            .iter()
            .enumerate()
            .all(|(i, b)| *b == byte_at(i as u64)));
        let zstd = frames
            .iter()
            .filter(|(kind, _)| *kind == k::DATA_ZSTD)
            .count();
        assert_eq!(
            zstd == frames.len(),
            want_zstd,
            "{zstd} of {} compressed",
            frames.len()
        );
        assert!(want_zstd || zstd == 0);
    }
}
