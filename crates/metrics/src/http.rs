//! The `/metrics` endpoint: a deliberately small HTTP/1.1 responder on tokio.
//!
//! It answers one request per connection (`Connection: close`): `GET` or
//! `HEAD /metrics` with the OpenMetrics text (or the classic 0.0.4 format
//! when the client's `Accept` asks for `text/plain` and not OpenMetrics),
//! 405 for other methods on `/metrics`, 404 for other paths, 400 for
//! anything unparsable. Request heads are capped at 16 KiB, connections at
//! 10 s each and 64 at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use zrelay_transport::{Backoff, RateLog, LOG_INTERVAL};

use crate::{Metrics, MetricsError};

/// The OpenMetrics content type served by default.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format's content type.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

const MAX_HEAD: usize = 16 * 1024;
const CONN_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed right away.
const MAX_CONNS: usize = 64;

/// Bind `listen` (`host:port`, or `:port` for all addresses) and serve
/// `/metrics` until `cancel` fires. With `freebind`, `IP_FREEBIND` lets it
/// bind an address not (yet) configured on the host (Linux only).
pub async fn serve(
    metrics: Arc<Metrics>,
    listen: &str,
    freebind: bool,
    cancel: CancellationToken,
) -> Result<(), MetricsError> {
    let l = bind(listen, freebind).await?;
    serve_on(metrics, l, cancel).await
}

/// Resolve and bind `listen` as [`serve`] does; errors name the address.
pub async fn bind(listen: &str, freebind: bool) -> Result<TcpListener, MetricsError> {
    let bad = |why: &str| MetricsError::BadAddress {
        listen: listen.to_string(),
        why: why.to_string(),
    };
    let (host, port) = listen.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port.parse().map_err(|_| bad("invalid port"))?;
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("an IPv6 address must be written in brackets"));
    }
    let addrs: Vec<SocketAddr> = if host.is_empty() {
        vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]
    } else {
        tokio::net::lookup_host(listen)
            .await
            .map_err(|source| MetricsError::Resolve {
                listen: listen.to_string(),
                source,
            })?
            .collect()
    };
    let mut last = None;
    for addr in addrs {
        match zrelay_transport::tcp::bind_socket(addr, freebind) {
            Ok(l) => return Ok(l),
            Err(source) => {
                last = Some(MetricsError::Bind {
                    addr: addr.to_string(),
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| bad("resolves to no address")))
}

/// Errors that concern one connection or a passing shortage
/// (EMFILE, ENFILE, ENOBUFS, ENOMEM): keep accepting.
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// Serve `/metrics` on an already bound listener until `cancel` fires;
/// connections still open then are dropped.
pub async fn serve_on(
    metrics: Arc<Metrics>,
    listener: TcpListener,
    cancel: CancellationToken,
) -> Result<(), MetricsError> {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    tracing::info!(addr = %local, "serving metrics");
    let mut conns = JoinSet::new();
    let mut busy = RateLog::default();
    let mut accept_errors = RateLog::default();
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        match accepted {
            Ok((stream, peer)) if conns.len() >= MAX_CONNS => {
                backoff.succeeded();
                drop(stream);
                if let Some(n) = busy.hit() {
                    tracing::warn!(
                        %peer,
                        dropped = n,
                        "metrics: {MAX_CONNS} connections open, closing new ones \
                         (logged once per {LOG_INTERVAL:?})"
                    );
                }
            }
            Ok((stream, peer)) => {
                backoff.succeeded();
                let m = metrics.clone();
                conns.spawn(async move {
                    match tokio::time::timeout(CONN_TIMEOUT, handle(&m, stream)).await {
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics connection"),
                        Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
                        Ok(Ok(())) => {}
                    }
                });
            }
            Err(e) if transient(&e) => {
                // out of descriptors: back off, log once per interval
                let wait = backoff.failed();
                if let Some(n) = accept_errors.hit() {
                    tracing::warn!(
                        addr = %local,
                        error = %e,
                        failures = n,
                        backoff = ?wait,
                        "metrics accept failed; backing off (logged once per {LOG_INTERVAL:?})"
                    );
                }
                tokio::time::sleep(wait).await;
            }
            Err(source) => {
                return Err(MetricsError::Accept {
                    addr: local,
                    source,
                })
            }
        }
    }
}

/// The parts of a request head this endpoint looks at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub accept: Option<&'a str>,
}

/// Parse a request head (up to and excluding the blank line).
pub(crate) fn parse_head(head: &str) -> Option<Head<'_>> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let mut accept = None;
    for l in lines {
        let (name, value) = l.split_once(':')?;
        if name.eq_ignore_ascii_case("accept") {
            accept = Some(value.trim());
        }
    }
    Some(Head {
        method,
        path,
        accept,
    })
}

/// OpenMetrics unless the client asks for `text/plain` and not for OpenMetrics.
pub(crate) fn wants_classic_text(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| !a.contains("application/openmetrics-text") && a.contains("text/plain"))
}

async fn handle(metrics: &Metrics, mut s: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break Some(i);
        }
        if buf.len() >= MAX_HEAD {
            break None;
        }
        let mut chunk = [0u8; 2048];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(());
            }
            break None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = end.and_then(|i| std::str::from_utf8(&buf[..i]).ok());
    let resp = match head.and_then(parse_head) {
        None => response("400 Bad Request", "text/plain", "", b"bad request\n", false),
        Some(h) if h.path != "/metrics" => response(
            "404 Not Found",
            "text/plain",
            "",
            b"not found\n",
            h.method == "HEAD",
        ),
        Some(h) if h.method != "GET" && h.method != "HEAD" => response(
            "405 Method Not Allowed",
            "text/plain",
            "Allow: GET, HEAD\r\n",
            b"method not allowed\n",
            false,
        ),
        Some(h) => {
            let (ct, body) = if metrics.zrepl_names() {
                // zrepl's names are those of Go's client: counters without
                // `_total`, which only the 0.0.4 format can carry.
                (CONTENT_TYPE_TEXT, metrics.encode_zrepl())
            } else if wants_classic_text(h.accept) {
                (CONTENT_TYPE_TEXT, metrics.encode_text())
            } else {
                (CONTENT_TYPE_OPENMETRICS, metrics.encode())
            };
            response("200 OK", ct, "", body.as_bytes(), h.method == "HEAD")
        }
    };
    s.write_all(&resp).await?;
    s.shutdown().await
}

fn response(
    status: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        r.extend_from_slice(body);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        let h = parse_head("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\naccept: text/plain").unwrap();
        assert_eq!(
            h,
            Head {
                method: "GET",
                path: "/metrics",
                accept: Some("text/plain"),
            }
        );
        assert!(parse_head("GET /metrics").is_none());
        assert!(parse_head("GET /metrics SPDY/3").is_none());
        assert!(parse_head("GET /metrics HTTP/1.1\r\nno-colon").is_none());
    }

    #[test]
    fn negotiates_the_format() {
        assert!(!wants_classic_text(None));
        assert!(!wants_classic_text(Some("*/*")));
        assert!(wants_classic_text(Some("text/plain;version=0.0.4")));
        let prom =
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(!wants_classic_text(Some(prom)));
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let e = bind("nonsense", false).await.unwrap_err().to_string();
        assert!(e.contains("\"nonsense\""), "{e}");
        let e = bind("127.0.0.1:99999", false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("127.0.0.1:99999"), "{e}");
        // 192.0.2.1 (TEST-NET-1) is not on this host: EADDRNOTAVAIL names it.
        let e = bind("192.0.2.1:0", false).await.unwrap_err().to_string();
        assert!(e.contains("192.0.2.1:0"), "{e}");
        let l = bind("127.0.0.1:0", false).await.unwrap();
        let taken = l.local_addr().unwrap().to_string();
        // SO_REUSEADDR does not allow two listeners on one port.
        let e = bind(&taken, false).await.unwrap_err().to_string();
        assert!(e.contains(&taken), "{e}");
    }

    #[tokio::test]
    async fn freebind_binds_an_absent_address() {
        // Nothing is sent to it: binding only.
        match bind("192.0.2.1:0", true).await {
            Ok(l) => assert_eq!(l.local_addr().unwrap().ip().to_string(), "192.0.2.1"),
            Err(e) => panic!("freebind: {e}"),
        }
    }
}
