//! Transport errors, each naming the peer or file involved.

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

impl TransportError {
    /// Whether retrying can help (network trouble yes, bad configuration no).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            TransportError::Io { .. }
                | TransportError::Timeout { .. }
                | TransportError::Handshake { .. }
        )
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn timeout_rounds_up() {
        let e = TransportError::timeout("dial", Duration::from_millis(1500));
        assert_eq!(e.to_string(), "dial: timed out after 2s");
    }
}
