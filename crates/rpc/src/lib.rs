//! `zrelay-rpc`: zrelay's protocol between daemons. A local replication
//! engine drives a remote [`Sender`](zrelay_endpoint::Sender) or
//! [`Receiver`](zrelay_endpoint::Receiver) through [`RemoteSender`] and
//! [`RemoteReceiver`]; the remote daemon answers with [`serve_conn`]. Any byte
//! connection of `zrelay-transport` carries it (tcp, tls, ssh stdin/stdout,
//! local sockets). `PROTOCOL.md` beside this crate's `Cargo.toml` is the
//! short reference.
//!
//! Wire format:
//! - **Hello** (once per connection, both ways, client first): the 8-byte
//!   [`MAGIC`], the protocol version (u32, big-endian), the length of the
//!   software version (u16, big-endian) and the software version (UTF-8).
//!   This layout never changes across protocol versions.
//! - **Frames** afterwards: a [`FRAME_HEADER_LEN`]-byte header (the
//!   [`frame_kind`] byte, then the payload length as a big-endian u32) and
//!   the payload: control messages and errors as JSON, data chunks as raw
//!   bytes.
//!
//! Invariants:
//! - Both peers must speak the same [`PROTOCOL_VERSION`]; a mismatch fails
//!   the connection on both sides with an error naming both versions. A peer
//!   that does not start with [`MAGIC`] is refused.
//! - One call at a time per connection: the client sends one request, the
//!   server answers with exactly one reply (a control message or an error
//!   frame), preceded by any number of heartbeats; a `send` or `receive`
//!   carries one data stream (chunks, then `data end`, `data abort` or an
//!   error) between request and reply.
//! - Every frame length is checked against its limit before anything is
//!   allocated; garbage gives an error naming what was received, never a
//!   panic.
//! - A peer that is working sends heartbeats at least every
//!   [`RpcConfig::heartbeat_interval`]; a peer from which nothing arrives for
//!   [`RpcConfig::idle_timeout`] is given up (temporary error naming it).
//! - Errors keep their retry class and a failed receive's resume token
//!   across the wire.
//! - A client connection is reused only when its last call ended cleanly at
//!   a frame boundary; anything else drops it.
//! - Data chunks are written from a buffer with the header in front (one
//!   write per chunk) and read straight into the consumer's buffer: no
//!   per-chunk allocation or intermediate copy.

mod client;
mod error;
mod frame;
mod handshake;
mod server;
mod stream;
mod wire;

use std::time::Duration;

pub use client::{ping, RemoteReceiver, RemoteSender};
pub use error::{RpcError, WireError};
pub use server::{serve_conn, Endpoints};

/// The protocol version this zrelay speaks. Peers must speak the same one.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first bytes each peer sends on a new connection.
pub const MAGIC: [u8; 8] = *b"ZRELAYP\n";

/// The software version this zrelay announces in its hello.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Length of a frame header: the kind byte and a big-endian u32 length.
pub const FRAME_HEADER_LEN: usize = 5;

/// The frame kinds (the first byte of a frame header).
pub mod frame_kind {
    /// A control message: a request or a reply, as JSON.
    pub const CONTROL: u8 = 1;
    /// A chunk of a data stream (raw bytes).
    pub const DATA: u8 = 2;
    /// The data stream ended cleanly (empty payload).
    pub const DATA_END: u8 = 3;
    /// The producer gave up the data stream; the payload says why (UTF-8).
    pub const DATA_ABORT: u8 = 4;
    /// Still working (empty payload).
    pub const HEARTBEAT: u8 = 5;
    /// An error reply or a failed data stream, as a JSON [`WireError`](crate::WireError).
    pub const ERROR: u8 = 6;
}

/// Default limit of a control message or error frame.
pub const DEFAULT_MAX_CONTROL_MESSAGE: usize = 64 << 20;
/// Default limit of an incoming data chunk.
pub const DEFAULT_MAX_DATA_CHUNK: usize = 4 << 20;
/// Default size of the data chunks this zrelay writes.
pub const DEFAULT_DATA_CHUNK: usize = 512 << 10;

/// Settings of both the client and the server side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcConfig {
    /// A busy peer sends a heartbeat at least this often.
    pub heartbeat_interval: Duration,
    /// Give a peer up when nothing arrives from it for this long.
    pub idle_timeout: Duration,
    /// The hello exchange must finish within this.
    pub handshake_timeout: Duration,
    /// Largest control message or error frame accepted.
    pub max_control_message: usize,
    /// Largest data chunk accepted.
    pub max_data_chunk: usize,
    /// Size of the data chunks written (at most `max_data_chunk`).
    pub data_chunk: usize,
    /// Client: idle handshaken connections kept for reuse.
    pub max_idle_connections: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            heartbeat_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_control_message: DEFAULT_MAX_CONTROL_MESSAGE,
            max_data_chunk: DEFAULT_MAX_DATA_CHUNK,
            data_chunk: DEFAULT_DATA_CHUNK,
            max_idle_connections: 4,
        }
    }
}

impl RpcConfig {
    /// The size of the chunks actually written: `data_chunk`, within 4 KiB
    /// and `max_data_chunk`.
    pub(crate) fn chunk(&self) -> usize {
        self.data_chunk.min(self.max_data_chunk).max(4096)
    }

    /// The heartbeat interval, at least 10 ms (a zero would spin).
    pub(crate) fn heartbeat(&self) -> Duration {
        self.heartbeat_interval.max(Duration::from_millis(10))
    }
}

/// What a peer told about itself ([`ping`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Who was asked (the connector's description).
    pub peer: String,
    /// Its protocol version (equal to ours, or the handshake failed).
    pub protocol_version: u32,
    /// Its software version.
    pub software_version: String,
    /// It serves a sender (a source or push job's sending side).
    pub sender: bool,
    /// It serves a receiver (a sink).
    pub receiver: bool,
}
