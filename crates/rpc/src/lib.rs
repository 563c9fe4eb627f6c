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
//! - Every frame length is checked against its limit (a server's requests
//!   against [`RpcConfig::max_request`], far below a client's limit for
//!   replies) before anything is read; a payload's buffer then grows as its
//!   bytes arrive (at most twice what arrived), never to the announced length
//!   up front. Garbage gives an error naming what was received, never a panic.
//! - Every name a peer sends, in a request (server) or a reply (client),
//!   passes one check at this boundary (`check`): valid, and no `%` in any
//!   dataset, snapshot or bookmark component ([`zrelay_zfs::name::validate_peer`]);
//!   a request also stays within [`RpcConfig::max_request_items`]. A refused
//!   request is answered with a permanent error naming the offending name.
//! - A server closes a connection on which no request starts within
//!   [`RpcConfig::request_idle_timeout`]; any frame must complete within
//!   [`RpcConfig::frame_timeout`] once started; the hello within
//!   [`RpcConfig::handshake_timeout`].
//! - Peer text (software version, abort reasons, error messages, names,
//!   payloads quoted in errors) is shown only through
//!   [`zrelay_zfs::peer_text`]: escaped onto one line and cut.
//! - A peer that is working sends heartbeats at least every
//!   [`RpcConfig::heartbeat_interval`]; a peer from which nothing arrives for
//!   [`RpcConfig::idle_timeout`] is given up (temporary error naming it).
//! - Errors keep their retry class and a failed receive's resume token
//!   across the wire.
//! - A client connection is reused only when its last call ended cleanly at
//!   a frame boundary; anything else drops it.
//! - Data chunks are written from a buffer with the header in front (one
//!   write per chunk) and read straight into the consumer's buffer: no
//!   per-chunk allocation or intermediate copy. A stream whose start
//!   negotiated zstd may also carry compressed chunks, each decompressing on
//!   its own to at most [`RpcConfig::max_data_chunk`] (see `compress`).

mod check;
mod client;
mod compress;
mod error;
mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
mod handshake;
mod server;
mod stream;
mod wire;

use std::time::Duration;

pub use client::{ping, RemoteReceiver, RemoteSender};
pub use compress::{Compression, MAX_LEVEL as MAX_COMPRESSION_LEVEL};
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
    /// A chunk of a data stream as one zstd frame (only on a stream whose
    /// start negotiated zstd; see `compress`).
    pub const DATA_ZSTD: u8 = 7;
}

/// Default limit of a control message or error frame a client accepts (replies such as a
/// listing of many filesystems with many snapshots are large).
pub const DEFAULT_MAX_CONTROL_MESSAGE: usize = 64 << 20;
/// Default limit of a request a server accepts. Requests are small: the largest honest one
/// is a batch call, which a zrelay client splits into requests of at most
/// [`CLIENT_BATCH_STEPS`] steps (items). A step with maximal names (255 bytes each) and a
/// 4 KiB resume token is under 5 KiB of JSON, so a full batch is under 5 MiB; a prepare or
/// commit for 10,000 filesystems with typical names (about 350 bytes per step) goes out as
/// ten requests of about 350 KiB.
pub const DEFAULT_MAX_REQUEST: usize = 8 << 20;
/// Default limit of the steps (estimate, prepare), commits, filesystems (abort) or snapshot
/// names (destroy) in one request a server accepts.
pub const DEFAULT_MAX_REQUEST_ITEMS: usize = 10_000;
/// A zrelay client sends batch calls in requests of at most this many steps (items), so
/// that any honest batch fits a server's default limits.
pub const CLIENT_BATCH_STEPS: usize = 1_000;
/// Default cap on the size estimates (`zfs send -nvP`) a server runs at once for one
/// request, whatever concurrency the client asks for.
pub const DEFAULT_MAX_ESTIMATE_CONCURRENCY: usize = 4;
/// Default limit of an incoming data chunk.
pub const DEFAULT_MAX_DATA_CHUNK: usize = 4 << 20;
/// Default size of the data chunks this zrelay writes.
pub const DEFAULT_DATA_CHUNK: usize = 512 << 10;

/// Bytes that the request buffers of a set of served connections (a job's) may hold
/// together. A request whose buffer would grow past it fails its connection with a
/// temporary error (the client retries later), so many half-sent requests cost at most
/// the budget, however many connections carry them. Clones share the budget.
#[derive(Clone)]
pub struct MemoryBudget {
    limit: usize,
    used: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: Default::default(),
        }
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reserve `n` more bytes, if they fit.
    pub(crate) fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.used
            .fetch_update(Relaxed, Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    /// Give `n` reserved bytes back.
    pub(crate) fn give(&self, n: usize) {
        self.used.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryBudget({} of {} bytes)", self.used(), self.limit)
    }
}

impl PartialEq for MemoryBudget {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit
    }
}

impl Eq for MemoryBudget {}

/// Default [`MemoryBudget`] of a serving job's request buffers.
pub const DEFAULT_REQUEST_MEMORY: usize = 64 << 20;

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
    /// Client: a pooled connection idle for longer than this is closed instead of reused
    /// (below any server's [`RpcConfig::request_idle_timeout`], so that a reused
    /// connection is rarely one the server is closing).
    pub pool_idle: Duration,
    /// Server: a connection on which no request starts for this long after the hello or
    /// the last reply is closed.
    pub request_idle_timeout: Duration,
    /// Both: a frame header, and a control, error or abort frame's payload, must arrive
    /// within this once its first byte did (a peer sending a byte a second is cut off).
    pub frame_timeout: Duration,
    /// Server: largest request accepted (a control frame from the client).
    pub max_request: usize,
    /// Server: most steps, commits, filesystems or snapshot names in one request.
    pub max_request_items: usize,
    /// Server: most size estimates run at once for one request (the client's ask is
    /// lowered to it).
    pub max_estimate_concurrency: usize,
    /// Server: the budget shared by the request buffers of every connection served with
    /// (a clone of) this configuration; `None` for no shared bound (each connection is
    /// still bounded by `max_request`).
    pub request_memory: Option<MemoryBudget>,
    /// Client: the compression its data streams ask for (zrelay extension; the server
    /// agrees or, if older, ignores it).
    pub compression: Compression,
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
            pool_idle: Duration::from_secs(60),
            request_idle_timeout: Duration::from_secs(120),
            frame_timeout: Duration::from_secs(60),
            max_request: DEFAULT_MAX_REQUEST,
            max_request_items: DEFAULT_MAX_REQUEST_ITEMS,
            max_estimate_concurrency: DEFAULT_MAX_ESTIMATE_CONCURRENCY,
            request_memory: None,
            compression: Compression::Off,
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
