//! The `tls` transport: TCP with mutual TLS (rustls, ring provider).
//!
//! The server requires a client certificate signed by `ca`; the client's
//! identity is the certificate's subject CN, which must be in `client_cns`.
//! A subject with more than one CN is refused ([`subject_cn`]).
//! The client verifies the server against `ca` with `server_cn` as the
//! expected name (checked against the SANs, as Go and so zrepl do).
//! Either side may also present, as it is, one of the other side's `ca`
//! certificates: zrepl's self-signed setup ([`crate::tls_pinned`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{CertError, Refused};
use crate::ratelog::{Backoff, KeyedRateLog, RateLog, LOG_INTERVAL};
use crate::tcp::{accept_error_is_transient, bind, check_host_port, dial, ACCEPT_BACKOFF};
use crate::tls_pinned::{Pinned, PinnedClientVerifier, PinnedServerVerifier};
use crate::{Accepted, ClientIdentity, Conn, Connector, Listener, TransportError};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path)
        .map_err(|e| TransportError::config(format!("{key}: cannot read {}: {e}", path.display())))
}

/// All certificates of the PEM file `path` (config key `key`), at least one.
pub fn load_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let pem = read_file(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TransportError::config(format!("{key}: {}: invalid PEM: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(TransportError::config(format!(
            "{key}: {}: no CERTIFICATE block found",
            path.display()
        )));
    }
    Ok(certs)
}

/// The private key of the PEM file `path` (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TransportError> {
    let pem = read_file(key, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let why = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block found".to_string()
            }
            e => format!("invalid PEM: {e}"),
        };
        TransportError::config(format!("{key}: {}: {why}", path.display()))
    })
}

/// The trust anchors of `ca`, and its certificates as they are (a peer may
/// present one of them itself: [`crate::tls_pinned`]).
fn load_roots(key: &str, path: &Path) -> Result<(Arc<RootCertStore>, Pinned), TransportError> {
    let mut roots = RootCertStore::empty();
    let certs = load_certs(key, path)?;
    let pinned = Pinned::new(&certs);
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            TransportError::config(format!(
                "{key}: {}: certificate #{} is not usable as a CA: {e}",
                path.display(),
                i + 1
            ))
        })?;
    }
    Ok((Arc::new(roots), pinned))
}

/// The subject CN of a DER certificate: the one and only CN of its subject.
///
/// A subject with several CNs is refused: programs disagree on which one
/// names the peer (Go's `pkix.Name`, and so zrepl, takes the last; OpenSSL
/// tools and many others the first), so the same certificate could be one
/// client here and another one there. The error names every CN, escaped and
/// cut (`zrelay_zfs::peer_text::peer`).
pub fn subject_cn(cert: &[u8]) -> Result<String, CertError> {
    let (_, x509) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| CertError::Parse(e.to_string()))?;
    let mut cns = Vec::new();
    for cn in x509.subject().iter_common_name() {
        let text = cn
            .as_str()
            .map_err(|e| CertError::CnNotString(e.to_string()))?;
        cns.push(text.to_string());
    }
    match cns.len() {
        0 => Err(CertError::NoCn),
        1 => Ok(cns.remove(0)),
        _ => Err(CertError::SeveralCns { cns }),
    }
}

/// Why a TLS handshake failed, in words for the log or error.
fn describe_tls_error(e: &std::io::Error, side: &str) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => format!("no {side} certificate presented"),
        Some(rustls::Error::InvalidCertificate(c)) => format!("untrusted {side} certificate: {c}"),
        Some(rustls::Error::AlertReceived(a)) => format!("the peer sent the TLS alert {a:?}"),
        Some(other) => format!("TLS handshake failed: {other}"),
        None => format!("TLS handshake failed: {e}"),
    }
}

/// `connect: {type: tls}`.
pub struct TlsConnector {
    address: String,
    server_cn: String,
    server_name: ServerName<'static>,
    inner: tokio_rustls::TlsConnector,
    dial_timeout: Duration,
}

impl TlsConnector {
    /// Read and check `ca`, `cert` and `key`, and `server_cn`.
    pub fn new(
        address: &str,
        ca: &Path,
        cert: &Path,
        key: &Path,
        server_cn: &str,
        dial_timeout: Duration,
    ) -> Result<Self, TransportError> {
        check_host_port("connect.address", address)?;
        let server_name = ServerName::try_from(server_cn.to_string()).map_err(|e| {
            TransportError::config(format!(
                "connect.server_cn: \"{}\": not a valid DNS name or IP address: {e}",
                server_cn.escape_debug()
            ))
        })?;
        let (roots, pinned) = load_roots("connect.ca", ca)?;
        let certs = load_certs("connect.cert", cert)?;
        let pkey = load_key("connect.key", key)?;
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TransportError::config(format!("connect.ca {}: {e}", ca.display())))?;
        let verifier = Arc::new(PinnedServerVerifier { inner, pinned });
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::config(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(certs, pkey)
            .map_err(|e| {
                TransportError::config(format!(
                    "connect.cert {} / connect.key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
        Ok(TlsConnector {
            address: address.to_string(),
            server_cn: server_cn.to_string(),
            server_name,
            inner: tokio_rustls::TlsConnector::from(Arc::new(config)),
            dial_timeout,
        })
    }
}

#[async_trait]
impl Connector for TlsConnector {
    async fn connect(&self) -> Result<Conn, TransportError> {
        let what = format!(
            "tls connect to {} (server_cn {})",
            self.address, self.server_cn
        );
        let work = async {
            let tcp = dial(&self.address, self.dial_timeout).await?;
            match self.inner.connect(self.server_name.clone(), tcp).await {
                Ok(s) => Ok(s),
                Err(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => Err(
                    TransportError::auth(&what, describe_tls_error(&e, "server")),
                ),
                Err(e) => Err(TransportError::io(format!("{what}: TLS handshake"), e)),
            }
        };
        let s = tokio::time::timeout(self.dial_timeout, work)
            .await
            .map_err(|_| TransportError::timeout(&what, self.dial_timeout))??;
        Ok(Box::new(s))
    }

    fn describe(&self) -> String {
        format!("tls {} (server_cn {})", self.address, self.server_cn)
    }
}

/// `serve: {type: tls}`. Handshakes run concurrently in a background task,
/// so a slow peer cannot hold up the others.
pub struct TlsListener {
    rx: mpsc::Receiver<Result<Accepted, TransportError>>,
    task: JoinHandle<()>,
    local: SocketAddr,
}

/// What a handshake needs, shared by all connections.
struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    client_cns: HashSet<String>,
    handshake_timeout: Duration,
}

impl TlsListener {
    /// Read and check `ca`, `cert`, `key` and `client_cns`, then bind `listen`.
    pub async fn bind(
        listen: &str,
        freebind: bool,
        ca: &Path,
        cert: &Path,
        key: &Path,
        client_cns: &[String],
        handshake_timeout: Duration,
    ) -> Result<Self, TransportError> {
        let acceptor = Arc::new(Self::acceptor(
            ca,
            cert,
            key,
            client_cns,
            handshake_timeout,
        )?);
        let tcp = bind(listen, freebind).await?;
        let local = tcp
            .local_addr()
            .map_err(|e| TransportError::io(format!("serve.listen {listen}"), e))?;
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(accept_loop(tcp, local, acceptor, tx));
        Ok(TlsListener { rx, task, local })
    }

    fn acceptor(
        ca: &Path,
        cert: &Path,
        key: &Path,
        client_cns: &[String],
        handshake_timeout: Duration,
    ) -> Result<Acceptor, TransportError> {
        let mut cns = HashSet::new();
        for cn in client_cns {
            ClientIdentity::parse(cn)
                .map_err(|e| TransportError::config(format!("serve.client_cns: {e}")))?;
            cns.insert(cn.clone());
        }
        if cns.is_empty() {
            tracing::warn!("tls serve.client_cns is empty: every connection will be refused");
        }
        let (roots, pinned) = load_roots("serve.ca", ca)?;
        let certs = load_certs("serve.cert", cert)?;
        let pkey = load_key("serve.key", key)?;
        let inner = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TransportError::config(format!("serve.ca {}: {e}", ca.display())))?;
        let verifier = Arc::new(PinnedClientVerifier { inner, pinned });
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::config(format!("TLS setup: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, pkey)
            .map_err(|e| {
                TransportError::config(format!(
                    "serve.cert {} / serve.key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
        Ok(Acceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            client_cns: cns,
            handshake_timeout,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Dropping the task's JoinSet aborts the handshakes in flight.
        self.task.abort();
    }
}

/// Most TLS handshakes in progress at once; a connection beyond them is closed at once
/// (each handshake takes a descriptor and up to `handshake_timeout`).
pub const MAX_HANDSHAKES: usize = 64;

/// Distinct refusal reasons logged separately per [`LOG_INTERVAL`].
const REFUSAL_KEYS: usize = 16;

async fn accept_loop(
    tcp: tokio::net::TcpListener,
    local: SocketAddr,
    acceptor: Arc<Acceptor>,
    tx: mpsc::Sender<Result<Accepted, TransportError>>,
) {
    let mut handshakes = JoinSet::new();
    let mut accept_errors = RateLog::default();
    let mut busy = RateLog::default();
    let mut backoff = Backoff::new(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1);
    let refused = Arc::new(Mutex::new(KeyedRateLog::new(LOG_INTERVAL, REFUSAL_KEYS)));
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
            () = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => {
                backoff.succeeded();
                x
            }
            Err(e) if accept_error_is_transient(&e) => {
                // Out of descriptors (or a passing error): wait, growing the wait while it
                // lasts, and log once per interval.
                let wait = backoff.failed();
                if let Some(n) = accept_errors.hit() {
                    tracing::warn!(
                        listen = %local,
                        error = %e,
                        failures = n,
                        backoff = ?wait,
                        "tls accept failed; backing off (logged once per {LOG_INTERVAL:?})"
                    );
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => {
                let _ = tx
                    .send(Err(TransportError::io(format!("accept on tls {local}"), e)))
                    .await;
                return;
            }
        };
        while handshakes.try_join_next().is_some() {}
        if handshakes.len() >= MAX_HANDSHAKES {
            drop(stream);
            if let Some(n) = busy.hit() {
                tracing::warn!(
                    listen = %local,
                    %peer,
                    closed = n,
                    "tls: {MAX_HANDSHAKES} handshakes in progress; closing new connections \
                     (logged once per {LOG_INTERVAL:?})"
                );
            }
            continue;
        }
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let refused = refused.clone();
        handshakes.spawn(async move {
            match handshake(&acceptor, stream, peer).await {
                Ok(a) => {
                    let _ = tx.send(Ok(a)).await;
                }
                Err(reason) => {
                    let due = refused
                        .lock()
                        .expect("refusal log")
                        .hit(&reason.to_string());
                    if let Some(n) = due {
                        tracing::warn!(
                            %peer,
                            %reason,
                            refused = n,
                            "tls: refused connection from {peer}: {reason} \
                             ({n} such since the last line; logged once per {LOG_INTERVAL:?})"
                        );
                    }
                }
            }
        });
    }
}

async fn handshake(a: &Acceptor, tcp: TcpStream, peer: SocketAddr) -> Result<Accepted, Refused> {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let tls = tokio::time::timeout(a.handshake_timeout, a.inner.accept(tcp))
        .await
        .map_err(|_| Refused::HandshakeTimeout(a.handshake_timeout))?
        .map_err(|e| Refused::Tls {
            reason: describe_tls_error(&e, "client"),
        })?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(Refused::NoClientCert)?;
    let cn = subject_cn(cert.as_ref())?;
    if !a.client_cns.contains(&cn) {
        return Err(Refused::CnNotAllowed { cn });
    }
    let identity = ClientIdentity::parse(&cn)?;
    Ok(Accepted {
        conn: Box::new(tls),
        identity,
        peer: peer.to_string(),
    })
}

#[async_trait]
impl Listener for TlsListener {
    async fn accept(&mut self) -> Result<Accepted, TransportError> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(TransportError::io(
                format!("accept on tls {}", self.local),
                std::io::Error::other("the accept task ended"),
            )),
        }
    }

    fn describe(&self) -> String {
        format!("tls {}", self.local)
    }
}
