//! The `/metrics` endpoint over loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use zrelay_metrics::{
    bind, serve, serve_on, Metrics, MetricsError, CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT,
};

use crate::populated;

/// One raw request; returns (status line, headers lower-cased, body).
pub async fn request(addr: SocketAddr, raw: &str) -> (String, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response within 10 s")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_string();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A running endpoint on an ephemeral loopback port.
pub struct Server {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), MetricsError>>,
}

impl Server {
    pub async fn start() -> Server {
        let metrics = Arc::new(populated());
        let l = bind("127.0.0.1:0", false).await.unwrap();
        let addr = l.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve_on(metrics.clone(), l, cancel.clone()));
        Server {
            addr,
            metrics,
            cancel,
            task,
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve stops on cancel")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn get_metrics_serves_openmetrics() {
    let srv = Server::start().await;
    let (status, h, body) = request(
        srv.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&h, "content-type"), Some(CONTENT_TYPE_OPENMETRICS));
    assert_eq!(
        header(&h, "content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(
        header(&h, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(
        body.contains("# TYPE zrelay_replication_bytes_replicated counter\n"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    // The served body is what encode() gives (ignoring series order).
    let mut a: Vec<&str> = body.lines().collect();
    let enc = srv.metrics.encode();
    let mut b: Vec<&str> = enc.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    srv.stop().await;
}

#[tokio::test]
async fn classic_text_on_request_head_404_and_405() {
    let srv = Server::start().await;
    let (status, h, body) = request(
        srv.addr,
        "GET /metrics HTTP/1.0\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&h, "content-type"), Some(CONTENT_TYPE_TEXT));
    assert!(body.contains("# TYPE zrelay_replication_bytes_replicated_total counter\n"));

    let (status, h, body) = request(srv.addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty());
    assert!(
        header(&h, "content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );

    for path in ["/", "/metricsx", "/favicon.ico"] {
        let (status, _, _) = request(srv.addr, &format!("GET {path} HTTP/1.1\r\n\r\n")).await;
        assert_eq!(status, "HTTP/1.1 404 Not Found", "{path}");
    }
    let (status, h, _) = request(srv.addr, "POST /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(header(&h, "allow"), Some("GET, HEAD"));
    let (status, _, _) = request(srv.addr, "garbage\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    srv.stop().await;
}

#[tokio::test]
async fn values_recorded_while_serving_show_up() {
    let srv = Server::start().await;
    srv.metrics.bytes_pending("late", "p/z", 77);
    let (_, _, body) = request(srv.addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
    assert!(
        body.contains(
            "zrelay_filesystem_bytes_pending{zrelay_job=\"late\",filesystem=\"p/z\"} 77\n"
        ),
        "{body}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn serve_names_the_address_it_cannot_bind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let m = Arc::new(Metrics::new("0.1.0", "v"));
    let e = serve(m.clone(), &addr, false, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, MetricsError::Bind { .. }), "{e:?}");
    assert!(e.to_string().contains(&addr), "{e}");
    let e = serve(m, "localhost", false, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("\"localhost\""), "{e}");
}

#[tokio::test]
async fn serve_returns_when_cancelled() {
    let m = Arc::new(Metrics::new("0.1.0", "v"));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve(m, "127.0.0.1:0", false, cancel.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve stops on cancel")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_endpoint_recovers() {
    let s = Server::start().await;
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // let the endpoint accept them all before the extra one
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut buf))
        .await
        .expect("a connection beyond the cap is closed at once, not after the 10 s limit");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, body) = request(s.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("# EOF"), "{body}");
}
