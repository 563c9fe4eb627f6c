//! The `tcp` transport: plain TCP, clients identified by their source IP
//! through `serve.clients` (see [`crate::clients`]).
//!
//! Also home of the listening-socket setup shared with `tls`
//! (`listen_freebind`, `SO_REUSEADDR`, `:port` meaning all addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener as TokioListener, TcpStream};

use crate::clients::{validate_clients, ClientMap};
use crate::options::ClientMapping;
use crate::ratelog::{Backoff, RateLog, LOG_INTERVAL};
use crate::{Accepted, Conn, Connector, Listener, TransportError};

/// Check that `address` looks like `host:port` (`key` names the config key).
pub(crate) fn check_host_port(key: &str, address: &str) -> Result<(), TransportError> {
    let bad = |why: &str| {
        TransportError::config(format!(
            "{key}: \"{}\": {why} (expected host:port, e.g. 192.168.1.1:8888 or [fe80::1]:8888)",
            address.escape_debug()
        ))
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    port.parse::<u16>().map_err(|_| bad("invalid port"))?;
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(bad("an IPv6 address must be written in brackets"));
    }
    Ok(())
}

/// Resolve a `listen` address: `:port` means all addresses (dual-stack
/// where the host has IPv6).
async fn resolve_listen(listen: &str) -> Result<Vec<SocketAddr>, TransportError> {
    check_host_port("serve.listen", listen)?;
    if let Some(port) = listen.strip_prefix(':') {
        let port: u16 = port.parse().expect("checked");
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| TransportError::io(format!("serve.listen: cannot resolve {listen}"), e))?
        .collect();
    if addrs.is_empty() {
        return Err(TransportError::config(format!(
            "serve.listen: {listen} resolves to no address"
        )));
    }
    Ok(addrs)
}

/// Bind and listen on `listen`, with `IP_FREEBIND` if `freebind`.
pub(crate) async fn bind(listen: &str, freebind: bool) -> Result<TokioListener, TransportError> {
    let addrs = resolve_listen(listen).await?;
    let mut last = None;
    for addr in addrs {
        match bind_socket(addr, freebind) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(TransportError::io(format!("cannot listen on {addr}"), e)),
        }
    }
    Err(last.expect("at least one address"))
}

/// Bind a listening socket on `addr` (SO_REUSEADDR, dual-stack for `[::]`,
/// `IP_FREEBIND` when asked). Shared by every TCP listener of zrelay.
pub fn bind_socket(addr: SocketAddr, freebind: bool) -> std::io::Result<TokioListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        sock.set_only_v6(false)?;
    }
    if freebind {
        set_freebind(&sock, addr)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TokioListener::from_std(sock.into())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_freebind(sock: &Socket, addr: SocketAddr) -> std::io::Result<()> {
    match addr {
        SocketAddr::V4(_) => sock.set_freebind_v4(true),
        SocketAddr::V6(_) => sock.set_freebind_v6(true),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_freebind(_sock: &Socket, _addr: SocketAddr) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "listen_freebind (IP_FREEBIND) is only supported on Linux",
    ))
}

/// Whether an `accept` error concerns only one connection or a passing
/// resource shortage, so that the listener should go on.
pub(crate) fn accept_error_is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}

/// Dial `address` within `dial_timeout`, with `TCP_NODELAY`.
pub(crate) async fn dial(
    address: &str,
    dial_timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let s = tokio::time::timeout(dial_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| TransportError::timeout(format!("connect to {address}"), dial_timeout))?
        .map_err(|e| TransportError::io(format!("connect to {address}"), e))?;
    s.set_nodelay(true)
        .map_err(|e| TransportError::io(format!("set TCP_NODELAY on {address}"), e))?;
    Ok(s)
}

/// `connect: {type: tcp}`.
#[derive(Debug, Clone)]
pub struct TcpConnector {
    address: String,
    dial_timeout: Duration,
}

impl TcpConnector {
    /// Validate the address (`host:port`).
    pub fn new(address: &str, dial_timeout: Duration) -> Result<Self, TransportError> {
        check_host_port("connect.address", address)?;
        Ok(TcpConnector {
            address: address.to_string(),
            dial_timeout,
        })
    }
}

#[async_trait]
impl Connector for TcpConnector {
    async fn connect(&self) -> Result<Conn, TransportError> {
        Ok(Box::new(dial(&self.address, self.dial_timeout).await?))
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.address)
    }
}

/// `serve: {type: tcp}`: yields connections from mapped IPs only.
#[derive(Debug)]
pub struct TcpListener {
    inner: TokioListener,
    clients: ClientMap,
    local: String,
    refused: RateLog,
    accept_errors: RateLog,
    backoff: Backoff,
}

/// The first and the longest wait after a failed accept (EMFILE and the like).
pub(crate) const ACCEPT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(50), Duration::from_secs(1));

impl TcpListener {
    /// Validate `clients` and bind `listen`.
    pub async fn bind(
        listen: &str,
        freebind: bool,
        clients: &[ClientMapping],
    ) -> Result<Self, TransportError> {
        let clients = validate_clients(clients)?;
        if clients.is_empty() {
            tracing::warn!(
                listen,
                "tcp serve.clients is empty: every connection will be refused"
            );
        }
        let inner = bind(listen, freebind).await?;
        let local = inner
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| listen.to_string());
        Ok(TcpListener {
            inner,
            clients,
            local,
            refused: RateLog::default(),
            accept_errors: RateLog::default(),
            backoff: Backoff::new(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[async_trait]
impl Listener for TcpListener {
    async fn accept(&mut self) -> Result<Accepted, TransportError> {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(x) => {
                    self.backoff.succeeded();
                    x
                }
                Err(e) if accept_error_is_transient(&e) => {
                    // Out of descriptors (or a passing error): wait, growing the wait
                    // while it lasts, and log once per interval.
                    let wait = self.backoff.failed();
                    if let Some(n) = self.accept_errors.hit() {
                        tracing::warn!(
                            listen = %self.local,
                            error = %e,
                            failures = n,
                            backoff = ?wait,
                            "tcp accept failed; backing off (logged once per {LOG_INTERVAL:?})"
                        );
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => {
                    return Err(TransportError::io(
                        format!("accept on tcp {}", self.local),
                        e,
                    ))
                }
            };
            match self.clients.lookup(peer.ip()) {
                Ok(identity) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    return Ok(Accepted {
                        conn: Box::new(stream),
                        identity,
                        peer: peer.to_string(),
                    });
                }
                Err(reason) => {
                    drop(stream);
                    if let Some(n) = self.refused.hit() {
                        tracing::warn!(
                            %peer,
                            %reason,
                            refused = n,
                            "tcp: refused connection from {peer}: {reason} \
                             ({n} refused since the last such line)"
                        );
                    }
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.local)
    }
}
