//! `zrelay-transport`: byte connections between zrelay daemons, and who is
//! on the other end.
//!
//! Invariants:
//! - A [`Listener`] yields only authenticated connections: every
//!   [`Accepted`] carries a validated [`ClientIdentity`]. A peer that cannot
//!   be authenticated or mapped is refused, logged at WARN with its address
//!   and the reason (once per [`LOG_INTERVAL`] with a count, so a flood of
//!   refusals is a few lines), and never reaches the caller.
//! - A listener out of descriptors (EMFILE/ENFILE) backs off ([`Backoff`],
//!   up to 1 s) instead of spinning, and logs it once per [`LOG_INTERVAL`].
//! - A [`Connector`] dials one configured peer; each call is a new connection.
//! - Transports move bytes only; the protocol lives in `zrelay-rpc`.
//! - Construction ([`connector`], [`listen`]) reads and validates everything
//!   it can (TLS files, CIDRs, identities, the stdinserver sockdir), so a
//!   configuration error surfaces at startup and names the key, file or
//!   value; [`TransportError::Config`] is never temporary.
//! - Every identity, however obtained (a `clients` entry after `*`
//!   expansion, a certificate CN, a stdinserver socket name, a local
//!   `client_identity`), passes [`ClientIdentity::parse`].
//!
//! The transports, with zrepl's semantics:
//! - `tcp` ([`tcp`]): the identity comes from the peer IP through
//!   `serve.clients` ([`clients`]: exact IP first, then the longest CIDR,
//!   whose `*` expands to the IP); unmapped peers are closed at once.
//!   `TCP_NODELAY` is set on both sides.
//! - `tls` ([`tls`]): mutual TLS with rustls; the identity is the client
//!   certificate's subject CN, which must be in `client_cns`; the client
//!   checks the server's certificate against `ca` and `server_cn`.
//! - `ssh+stdinserver` ([`ssh`], [`stdinserver`]): the active side runs
//!   `ssh` with a cleared environment; the passive side listens on
//!   `sockdir/<identity>` (a 0700 directory of its own uid), and sshd's
//!   forced command `zrelay stdinserver IDENTITY` ([`stdinserver_proxy`])
//!   joins the two. The daemon writes [`BANNER`] first on every connection
//!   and the connector waits for it, so a broken chain fails the dial with
//!   ssh's stderr and exit status.
//! - `local` ([`local`]): a process-global registry by `listener_name`;
//!   connections are in-memory duplex pipes.

use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
pub use zrelay_endpoint::ClientIdentity;

pub mod clients;
pub mod error;
pub mod local;
pub mod options;
pub mod ratelog;
pub mod ssh;
pub mod stdinserver;
pub mod tcp;
pub mod tls;
mod tls_pinned;

use std::sync::Arc;

pub use clients::{validate_clients, ClientMap};
pub use error::{CertError, Refused, TransportError};
pub use options::{ClientMapping, ConnectOptions, ServeOptions};
pub use ratelog::{Backoff, KeyedRateLog, RateLog, LOG_INTERVAL};
pub use ssh::{SshConnector, BANNER, SSH_PROGRAM_ENV};
pub use stdinserver::stdinserver_proxy;

/// A bidirectional byte stream.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A connection, boxed.
pub type Conn = Box<dyn Stream>;

/// The active side of a transport: dials the configured peer.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Open a new connection (within the configured dial timeout).
    async fn connect(&self) -> Result<Conn, TransportError>;
    /// The peer, for logs (`tcp 10.0.0.1:8888`).
    fn describe(&self) -> String;
}

/// An authenticated connection, as a listener hands it out.
pub struct Accepted {
    /// The connection.
    pub conn: Conn,
    /// The client's identity (sink: the `root_fs/<identity>` level).
    pub identity: ClientIdentity,
    /// The peer's address, for logs.
    pub peer: String,
}

/// The passive side of a transport.
#[async_trait]
pub trait Listener: Send {
    /// The next authenticated connection. Refused peers are logged and
    /// skipped; an error means the listener itself failed.
    async fn accept(&mut self) -> Result<Accepted, TransportError>;
    /// What it listens on, for logs.
    fn describe(&self) -> String;
}

/// Default dial timeout of tcp, tls and ssh connects (zrepl's).
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default dial timeout of local connects (zrepl's).
pub const DEFAULT_LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Default TLS handshake timeout on the serving side (zrepl's).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connector of a `connect:` section. Reads and checks everything it
/// can now (TLS files, identities, the ssh identity file).
pub fn connector(opts: &ConnectOptions) -> Result<Arc<dyn Connector>, TransportError> {
    Ok(match opts {
        ConnectOptions::Tcp {
            address,
            dial_timeout,
        } => Arc::new(tcp::TcpConnector::new(address, *dial_timeout)?),
        ConnectOptions::Tls {
            address,
            ca,
            cert,
            key,
            server_cn,
            dial_timeout,
        } => Arc::new(tls::TlsConnector::new(
            address,
            ca,
            cert,
            key,
            server_cn,
            *dial_timeout,
        )?),
        ConnectOptions::Ssh {
            host,
            user,
            port,
            identity_file,
            options,
            dial_timeout,
        } => Arc::new(SshConnector::new(
            host,
            user,
            *port,
            identity_file,
            options,
            *dial_timeout,
        )?),
        ConnectOptions::Local {
            listener_name,
            client_identity,
            dial_timeout,
        } => Arc::new(local::LocalConnector::new(
            listener_name,
            client_identity,
            *dial_timeout,
        )?),
    })
}

/// The listener of a `serve:` section, bound and ready to accept.
pub async fn listen(opts: &ServeOptions) -> Result<Box<dyn Listener>, TransportError> {
    Ok(match opts {
        ServeOptions::Tcp {
            listen,
            listen_freebind,
            clients,
        } => Box::new(tcp::TcpListener::bind(listen, *listen_freebind, clients).await?),
        ServeOptions::Tls {
            listen,
            listen_freebind,
            ca,
            cert,
            key,
            client_cns,
            handshake_timeout,
        } => Box::new(
            tls::TlsListener::bind(
                listen,
                *listen_freebind,
                ca,
                cert,
                key,
                client_cns,
                *handshake_timeout,
            )
            .await?,
        ),
        ServeOptions::Stdinserver {
            client_identities,
            sockdir,
        } => Box::new(stdinserver::StdinserverListener::bind(sockdir, client_identities).await?),
        ServeOptions::Local { listener_name } => {
            Box::new(local::LocalListener::register(listener_name)?)
        }
    })
}
