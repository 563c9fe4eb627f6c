//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never
//! in a release build): what a server does with a peer's bytes, run on
//! bytes instead of a connection.
//!
//! Invariant: these functions run the production code paths unchanged (the
//! server's hello, its frame reader with the server's limits, the request
//! decoder and the request checks); they only replace the connection with
//! an in-memory one that holds the fuzzer's input and swallows the replies.

use std::future::poll_fn;

use tokio::io::ReadBuf;
use zrelay_transport::Conn;

use crate::frame::{self, Frame, FrameReader};
use crate::wire::Request;
use crate::RpcConfig;

thread_local! {
    /// One runtime per fuzzing thread, reused for every input.
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// A server meets `input` as a peer's whole side of a connection: the
/// hello, then frames until the input ends or is refused. Each control
/// message is decoded as a request and checked; data payloads are read.
pub fn server_conn(input: &[u8]) {
    RT.with(|rt| rt.block_on(conn(input)));
}

/// The frames of `input` (no hello), as [`server_conn`] reads them.
pub fn server_frames(input: &[u8]) {
    let cfg = RpcConfig::default();
    let conn = memory_conn(input);
    RT.with(|rt| rt.block_on(frames(conn, &cfg)));
}

/// A connection whose peer sent `input` and then closed; replies vanish.
fn memory_conn(input: &[u8]) -> Conn {
    Box::new(tokio::io::join(
        std::io::Cursor::new(input.to_vec()),
        tokio::io::sink(),
    ))
}

async fn conn(input: &[u8]) {
    let cfg = RpcConfig::default();
    let mut conn = memory_conn(input);
    if crate::handshake::server(&mut conn, &cfg).await.is_err() {
        return;
    }
    frames(conn, &cfg).await;
}

async fn frames(conn: Conn, cfg: &RpcConfig) {
    let (rd, _wr) = tokio::io::split(conn);
    let mut reader = FrameReader::server(rd, cfg);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.frame().await {
            Ok(Some(Frame::Control(p))) => {
                if let Ok(req) = frame::decode::<Request>(&p, "request") {
                    let _ = crate::check::request(&req, cfg);
                }
            }
            Ok(Some(Frame::Data(mut n))) => {
                while n > 0 {
                    let want = n.min(buf.len());
                    let mut rb = ReadBuf::new(&mut buf[..want]);
                    if poll_fn(|cx| reader.poll_read_payload(cx, &mut rb))
                        .await
                        .is_err()
                        || rb.filled().is_empty()
                    {
                        return;
                    }
                    n -= rb.filled().len();
                }
            }
            Ok(Some(Frame::DataZstd(n))) => {
                // A compressed chunk: read and decode it as a negotiated stream would.
                let Ok(mut z) = crate::compress::ZstdIn::new(cfg.max_data_chunk) else {
                    return;
                };
                z.start(n);
                while z.reading() {
                    let mut rb = ReadBuf::new(z.room());
                    if poll_fn(|cx| reader.poll_read_payload(cx, &mut rb))
                        .await
                        .is_err()
                        || rb.filled().is_empty()
                    {
                        return;
                    }
                    z.filled += rb.filled().len();
                }
                let _ = z.finish();
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
}
