//! What the configuration says about a transport, validated. The config crate
//! builds these; the transports only read them.

use std::path::PathBuf;
use std::time::Duration;

/// `connect:` of an active job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOptions {
    /// `type: tcp`.
    Tcp {
        /// `address`, `host:port`.
        address: String,
        /// `dial_timeout`.
        dial_timeout: Duration,
    },
    /// `type: tls`.
    Tls {
        /// `address`, `host:port`.
        address: String,
        /// `ca`: PEM file of the CA that signed the server's certificate.
        ca: PathBuf,
        /// `cert`: this client's certificate (PEM).
        cert: PathBuf,
        /// `key`: this client's private key (PEM).
        key: PathBuf,
        /// `server_cn`: the CN the server's certificate must carry.
        server_cn: String,
        /// `dial_timeout`.
        dial_timeout: Duration,
    },
    /// `type: ssh+stdinserver`.
    Ssh {
        /// `host`.
        host: String,
        /// `user`.
        user: String,
        /// `port`.
        port: u16,
        /// `identity_file`.
        identity_file: PathBuf,
        /// `options`: each becomes `-o OPTION`.
        options: Vec<String>,
        /// `dial_timeout`.
        dial_timeout: Duration,
    },
    /// `type: local`.
    Local {
        /// `listener_name`: the serving job's listener in this daemon.
        listener_name: String,
        /// `client_identity`: the identity the serving side sees.
        client_identity: String,
        /// `dial_timeout`.
        dial_timeout: Duration,
    },
}

/// One `clients:` entry of a tcp server: an IP or CIDR and its identity.
/// For a CIDR, the identity contains `*`, replaced by the client's IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMapping {
    /// The key as written (`192.168.1.2`, `10.0.0.0/24`, `fe80::/64`).
    pub pattern: String,
    /// The identity as written (may contain `*` for a CIDR).
    pub identity: String,
}

/// `serve:` of a passive job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeOptions {
    /// `type: tcp`.
    Tcp {
        /// `listen`, `host:port`.
        listen: String,
        /// `listen_freebind`.
        listen_freebind: bool,
        /// `clients`.
        clients: Vec<ClientMapping>,
    },
    /// `type: tls`.
    Tls {
        /// `listen`.
        listen: String,
        /// `listen_freebind`.
        listen_freebind: bool,
        /// `ca`: PEM file of the CA that signs client certificates.
        ca: PathBuf,
        /// `cert`: the server's certificate (PEM).
        cert: PathBuf,
        /// `key`: the server's private key (PEM).
        key: PathBuf,
        /// `client_cns`: accepted client certificate CNs (each is an identity).
        client_cns: Vec<String>,
        /// `handshake_timeout`.
        handshake_timeout: Duration,
    },
    /// `type: stdinserver`.
    Stdinserver {
        /// `client_identities`.
        client_identities: Vec<String>,
        /// `global.serve.stdinserver.sockdir`.
        sockdir: PathBuf,
    },
    /// `type: local`.
    Local {
        /// `listener_name`.
        listener_name: String,
    },
}
