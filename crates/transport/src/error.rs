//! Transport errors, each naming the peer or file involved: [`TransportError`]
//! (what a dial, listen or accept returns, with its retry class) and
//! [`Refused`] (why a server turned one connecting peer away; logged, never
//! returned from `accept`).

use std::net::IpAddr;
use std::time::Duration;

use zrelay_endpoint::ConfineError;
use zrelay_zfs::peer_text::peer as shown;
use zrelay_zfs::{Classify, ErrorClass};

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration of a transport is invalid (names the key and value).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// Connecting to or listening on an address failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the address or path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A dial did not complete in time.
    #[error("{what}: timed out after {secs}s")]
    Timeout {
        /// What was being done, naming the peer.
        what: String,
        /// The timeout.
        secs: u64,
    },
    /// The peer could not be authenticated (TLS, identity).
    #[error("{peer}: authentication failed: {reason}")]
    Auth {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The connection was made but the peer did not speak the expected
    /// handshake (e.g. ssh failed before the stdinserver banner arrived).
    #[error("{peer}: handshake failed: {reason}")]
    Handshake {
        /// The peer.
        peer: String,
        /// Why, including what the peer (or ssh) said.
        reason: String,
    },
}

impl Classify for TransportError {
    /// Network trouble is temporary; bad configuration and failed
    /// authentication are permanent.
    fn class(&self) -> ErrorClass {
        match self {
            TransportError::Io { .. }
            | TransportError::Timeout { .. }
            | TransportError::Handshake { .. } => ErrorClass::Temporary,
            TransportError::Config(_) | TransportError::Auth { .. } => ErrorClass::Permanent,
        }
    }
}

impl TransportError {
    /// A configuration error.
    pub fn config(msg: impl Into<String>) -> Self {
        TransportError::Config(msg.into())
    }

    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        TransportError::Io {
            what: what.into(),
            source,
        }
    }

    /// A timeout of `what` after `dur`.
    pub fn timeout(what: impl Into<String>, dur: std::time::Duration) -> Self {
        TransportError::Timeout {
            what: what.into(),
            // Round up so that sub-second timeouts do not read "0s".
            secs: dur.as_secs() + u64::from(dur.subsec_nanos() > 0),
        }
    }

    /// An authentication failure of `peer`.
    pub fn auth(peer: impl Into<String>, reason: impl Into<String>) -> Self {
        TransportError::Auth {
            peer: peer.into(),
            reason: reason.into(),
        }
    }
}

/// Why a server refused one connecting peer (the connection is dropped and
/// the reason logged, rate-limited per reason).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No `serve.clients` key matches the peer's IP.
    #[error("{ip} is not in serve.clients")]
    NotInClients {
        /// The peer's IP.
        ip: IpAddr,
    },
    /// The matching CIDR's identity, expanded with the peer's IP, is invalid.
    #[error(
        "{ip} matches serve.clients \"{pattern}\" but the expanded identity is invalid: {source}"
    )]
    ExpandedIdentity {
        /// The peer's IP.
        ip: IpAddr,
        /// The matching key as written (a validated CIDR).
        pattern: String,
        /// Why the identity is invalid.
        #[source]
        source: ConfineError,
    },
    /// The TLS handshake did not complete in time.
    #[error("TLS handshake timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// The TLS handshake failed (untrusted certificate, alert, ...).
    #[error("{reason}")]
    Tls {
        /// What went wrong, in words.
        reason: String,
    },
    /// The client presented no certificate.
    #[error("no client certificate presented")]
    NoClientCert,
    /// The client certificate's subject CN cannot be used.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The client certificate's CN is not in `serve.client_cns`.
    #[error("client certificate CN '{}' is not in client_cns", shown(cn))]
    CnNotAllowed {
        /// The CN as presented.
        cn: String,
    },
    /// The CN is not a valid client identity.
    #[error(transparent)]
    Identity(#[from] ConfineError),
}

/// Why a certificate's subject CN cannot name a client
/// ([`crate::tls::subject_cn`]). CNs are shown escaped and cut.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The certificate is not DER X.509.
    #[error("cannot parse the certificate: {0}")]
    Parse(String),
    /// The subject's CN is not a string.
    #[error("the certificate's subject CN is not a string: {0}")]
    CnNotString(String),
    /// The subject has no CN.
    #[error("the certificate's subject has no CN")]
    NoCn,
    /// The subject has more than one CN, which programs read differently.
    #[error(
        "the certificate's subject has {} CNs ({}); refusing it: \
         programs disagree on which CN names the client (zrepl takes the last)",
        cns.len(),
        list_cns(cns)
    )]
    SeveralCns {
        /// Every CN, in subject order.
        cns: Vec<String>,
    },
}

/// At most 8 CNs, quoted, escaped and cut, then "…" if there are more.
fn list_cns(cns: &[String]) -> String {
    let list: Vec<String> = cns
        .iter()
        .take(8)
        .map(|c| format!("'{}'", shown(c)))
        .collect();
    format!(
        "{}{}",
        list.join(", "),
        if cns.len() > 8 { ", …" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_classes() {
        let io = TransportError::io("x", std::io::Error::other("y"));
        assert!(io.is_temporary());
        assert!(TransportError::timeout("x", Duration::from_millis(10)).is_temporary());
        assert!(!TransportError::config("bad").is_temporary());
        assert!(!TransportError::auth("p", "r").is_temporary());
        let h = TransportError::Handshake {
            peer: "p".into(),
            reason: "r".into(),
        };
        assert!(h.is_temporary());
    }

    #[test]
    fn refusals_name_the_peer_and_cn() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(
            Refused::NotInClients { ip }.to_string(),
            "10.0.0.7 is not in serve.clients"
        );
        let e = Refused::CnNotAllowed {
            cn: "evil\nname".into(),
        };
        assert_eq!(
            e.to_string(),
            "client certificate CN 'evil\\nname' is not in client_cns"
        );
        let many: Vec<String> = (0..10).map(|i| format!("cn{i}")).collect();
        let e = CertError::SeveralCns { cns: many }.to_string();
        assert!(e.contains("has 10 CNs ('cn0', "), "{e}");
        assert!(e.contains("'cn7', …); refusing it"), "{e}");
    }

    #[test]
    fn timeout_rounds_up() {
        let e = TransportError::timeout("dial", Duration::from_millis(1500));
        assert_eq!(e.to_string(), "dial: timed out after 2s");
    }
}
