//! Protocol-level errors ([`RpcError`]), the error as it travels
//! ([`WireError`]), and their mapping to [`EndpointError`] at the trait
//! boundary.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zrelay_endpoint::EndpointError;
use zrelay_transport::TransportError;
use zrelay_zfs::{Classify, DatasetPath, ErrorClass, ZfsError};

/// A protocol-level failure. Every variant says whether retrying can help
/// ([`Classify`]).
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The transport could not connect.
    #[error("cannot connect: {0}")]
    Connect(#[from] TransportError),

    /// Reading or writing the connection failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The peer closed the connection where it must not.
    #[error("the peer closed the connection {0}")]
    Closed(String),

    /// Nothing arrived from the peer in time.
    #[error("{what}: nothing received for {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        after: Duration,
    },

    /// The peer does not speak zrelay at all.
    #[error("the peer is not a zrelay daemon: expected the zrelay hello, received {received}")]
    NotZrelay {
        /// What it sent instead (truncated, escaped).
        received: String,
    },

    /// The peer speaks another protocol version.
    #[error("peer speaks zrelay protocol version {peer}, this zrelay speaks {ours}; upgrade the older zrelay (peer is zrelay {peer_software}, this is zrelay {ours_software}) so that both speak the same version")]
    VersionMismatch {
        /// The peer's protocol version.
        peer: u32,
        /// Ours.
        ours: u32,
        /// The peer's software version.
        peer_software: String,
        /// Ours.
        ours_software: String,
    },

    /// A frame is larger than its limit (checked before allocating).
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Which kind of frame.
        what: &'static str,
        /// Its announced size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// A frame header with an unknown kind byte.
    #[error("unknown frame type {kind:#04x} (received header bytes {received})")]
    UnknownFrame {
        /// The kind byte.
        kind: u8,
        /// The header as received (hex and text).
        received: String,
    },

    /// A control message or error frame is not the JSON expected.
    #[error("invalid {what}: {error} (received {received})")]
    InvalidJson {
        /// What was expected.
        what: String,
        /// The parser's complaint.
        error: String,
        /// The payload (truncated, escaped).
        received: String,
    },

    /// The peer sent something that is valid but not allowed here.
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// The producer of a data stream gave it up.
    #[error("the peer aborted the data stream: {0}")]
    Aborted(String),

    /// The peer's endpoint answered with an error.
    #[error("{}", .0.message)]
    Remote(WireError),

    /// This side is shutting down.
    #[error("the zrelay daemon is shutting down")]
    ShuttingDown,

    /// The server is short of a shared resource; retry later.
    #[error("the server is busy: {0}")]
    Busy(String),
}

impl Classify for RpcError {
    /// Whether retrying (on a new connection) can help: a connect error's
    /// own class, a remote error's as the peer classed it.
    fn class(&self) -> ErrorClass {
        match self {
            RpcError::Connect(e) => e.class(),
            RpcError::Io { .. }
            | RpcError::Closed(_)
            | RpcError::Timeout { .. }
            | RpcError::Aborted(_)
            | RpcError::Busy(_)
            | RpcError::ShuttingDown => ErrorClass::Temporary,
            RpcError::Remote(w) => ErrorClass::from_temporary(w.temporary),
            RpcError::NotZrelay { .. }
            | RpcError::VersionMismatch { .. }
            | RpcError::TooLarge { .. }
            | RpcError::UnknownFrame { .. }
            | RpcError::InvalidJson { .. }
            | RpcError::Protocol(_) => ErrorClass::Permanent,
        }
    }
}

impl RpcError {
    /// `Io` with context.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RpcError::Io {
            what: what.into(),
            source,
        }
    }

    /// As an endpoint error of the call to `peer`: the peer's own errors keep
    /// their class and resume token; temporary protocol failures become
    /// [`EndpointError::Transport`], permanent ones a permanent
    /// [`EndpointError::Remote`]. Both name the peer.
    pub fn into_endpoint(self, peer: &str) -> EndpointError {
        match self {
            RpcError::Remote(w) => w.into_endpoint(peer),
            e if e.is_temporary() => EndpointError::Transport(format!("{peer}: {e}")),
            e => EndpointError::Remote {
                peer: peer.to_string(),
                message: e.to_string(),
                temporary: false,
            },
        }
    }
}

/// An error as it travels: its message, its retry class, and what a failed
/// receive kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The error as the peer logged it (for a failed receive: its cause).
    pub message: String,
    /// Retrying can help.
    pub temporary: bool,
    /// A failed receive kept this resumable state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    /// Set when the error is a failed receive: the receiving filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_fs: Option<String>,
}

impl WireError {
    /// A plain error.
    pub fn new(message: impl Into<String>, temporary: bool) -> Self {
        WireError {
            message: message.into(),
            temporary,
            resume_token: None,
            receive_fs: None,
        }
    }

    /// An endpoint's error, as the peer will see it.
    pub fn from_endpoint(e: &EndpointError) -> Self {
        let temporary = e.is_temporary();
        match e {
            EndpointError::Receive {
                fs,
                source,
                resume_token,
            } => WireError {
                message: source.to_string(),
                temporary,
                resume_token: resume_token.clone(),
                receive_fs: Some(fs.to_string()),
            },
            e => WireError::new(e.to_string(), temporary),
        }
    }

    /// A failed data source (e.g. `zfs send`), keeping the ZFS layer's
    /// class when the I/O error carries one; temporary otherwise.
    pub fn from_io(e: &std::io::Error) -> Self {
        let temporary = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ZfsError>())
            .is_none_or(|z| z.is_temporary());
        WireError::new(e.to_string(), temporary)
    }

    /// A protocol error of this side.
    pub fn from_rpc(e: &RpcError) -> Self {
        match e {
            RpcError::Remote(w) => w.clone(),
            e => WireError::new(e.to_string(), e.is_temporary()),
        }
    }

    /// The endpoint error the caller sees: [`EndpointError::Receive`] with
    /// the resume token for a failed receive, [`EndpointError::Remote`]
    /// otherwise.
    pub fn into_endpoint(self, peer: &str) -> EndpointError {
        let remote = EndpointError::Remote {
            peer: peer.to_string(),
            message: self.message,
            temporary: self.temporary,
        };
        match self.receive_fs.as_deref().map(DatasetPath::parse) {
            Some(Ok(fs)) => EndpointError::Receive {
                fs,
                source: Box::new(remote),
                resume_token: self.resume_token,
            },
            _ => remote,
        }
    }
}

/// `bytes` for an error message, quoted: at most `max` bytes, lossy UTF-8, escaped onto
/// one line ([`zrelay_zfs::peer_text::show_bytes`]).
pub(crate) fn show_bytes(bytes: &[u8], max: usize) -> String {
    format!("\"{}\"", zrelay_zfs::peer_text::show_bytes(bytes, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_errors_keep_token_and_class() {
        let fs = DatasetPath::parse("pool/a").unwrap();
        let e = EndpointError::Receive {
            fs: fs.clone(),
            source: Box::new(EndpointError::InvalidRequest("boom".into())),
            resume_token: Some("1-abc".into()),
        };
        let w = WireError::from_endpoint(&e);
        let json = serde_json::to_string(&w).unwrap();
        let back: WireError = serde_json::from_str(&json).unwrap();
        let e2 = back.into_endpoint("peer");
        assert_eq!(e2.resume_token(), Some("1-abc"));
        assert_eq!(e2.class(), ErrorClass::Permanent);
        assert!(e2.to_string().contains("boom"), "{e2}");
        assert!(e2.to_string().contains("pool/a"), "{e2}");
    }

    #[test]
    fn show_bytes_truncates() {
        let s = show_bytes(b"GET / HTTP/1.1\r\n", 8);
        assert!(s.contains("GET / HT") && s.contains("…(16 bytes)"), "{s}");
        let s = show_bytes(b"a\nb", 8);
        assert_eq!(s, "\"a\\nb\"");
    }
}
