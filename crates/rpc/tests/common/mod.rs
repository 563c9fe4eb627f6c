//! Shared test helpers: connectors that spawn `serve_conn` on the other end
//! of a duplex pipe or a loopback TCP connection, the fake-ZFS fixture of
//! the replication suite, and raw frame helpers for protocol tests.

#![allow(dead_code)]

pub mod mock;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{Receiver, Sender};
use zrelay_fake::FakeZfs;
use zrelay_rpc::{
    serve_conn, Endpoints, RemoteReceiver, RemoteSender, RpcConfig, FRAME_HEADER_LEN, MAGIC,
    PROTOCOL_VERSION,
};
use zrelay_testing::replication::Fixture;
use zrelay_transport::{Conn, Connector, TransportError};
use zrelay_zfs::{DatasetPath, Zfs};

/// Which connections a test connector makes.
#[derive(Clone, Copy, Debug)]
pub enum Net {
    /// `tokio::io::duplex` pairs.
    Duplex,
    /// Loopback TCP.
    Tcp,
}

/// A connector whose every connection is served by `serve_conn` over the
/// given endpoints; counts its connects.
pub struct TestConnector {
    net: Net,
    endpoints: Arc<Endpoints>,
    cfg: RpcConfig,
    cancel: CancellationToken,
    addr: Option<std::net::SocketAddr>,
    /// How many connections were made.
    pub connects: Arc<AtomicUsize>,
}

impl TestConnector {
    /// Serve `endpoints` (for TCP: on a new loopback listener, in a task
    /// that ends when `cancel` fires).
    pub fn new(
        net: Net,
        endpoints: Endpoints,
        cfg: RpcConfig,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let endpoints = Arc::new(endpoints);
        let addr = match net {
            Net::Duplex => None,
            Net::Tcp => {
                let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                std.set_nonblocking(true).unwrap();
                let addr = std.local_addr().unwrap();
                let listener = tokio::net::TcpListener::from_std(std).unwrap();
                let (eps, c, k) = (endpoints.clone(), cfg.clone(), cancel.clone());
                tokio::spawn(async move {
                    loop {
                        let (sock, peer) = tokio::select! {
                            r = listener.accept() => match r { Ok(x) => x, Err(_) => return },
                            _ = k.cancelled() => return,
                        };
                        sock.set_nodelay(true).unwrap();
                        let conn: Conn = Box::new(sock);
                        tokio::spawn(serve_conn(
                            conn,
                            peer.to_string(),
                            eps.clone(),
                            c.clone(),
                            k.clone(),
                        ));
                    }
                });
                Some(addr)
            }
        };
        Arc::new(TestConnector {
            net,
            endpoints,
            cfg,
            cancel,
            addr,
            connects: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Connections made so far.
    pub fn count(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Connector for TestConnector {
    async fn connect(&self) -> Result<Conn, TransportError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        match self.net {
            Net::Duplex => {
                let (a, b) = tokio::io::duplex(1 << 20);
                tokio::spawn(serve_conn(
                    Box::new(b),
                    "duplex client".into(),
                    self.endpoints.clone(),
                    self.cfg.clone(),
                    self.cancel.clone(),
                ));
                Ok(Box::new(a))
            }
            Net::Tcp => {
                let addr = self.addr.expect("tcp listener");
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|source| TransportError::Io {
                        what: format!("connect to {addr}"),
                        source,
                    })?;
                s.set_nodelay(true).unwrap();
                Ok(Box::new(s))
            }
        }
    }

    fn describe(&self) -> String {
        match self.net {
            Net::Duplex => "test peer (duplex)".into(),
            Net::Tcp => format!("test peer (tcp {})", self.addr.unwrap()),
        }
    }
}

/// A connector that hands out one end of a duplex pair whose other end the
/// test drives by hand (a fake or broken server).
pub struct RawConnector {
    ends: std::sync::Mutex<Vec<DuplexStream>>,
}

impl RawConnector {
    /// The connector and the server end of its one connection.
    pub fn pair() -> (Arc<RawConnector>, DuplexStream) {
        let (a, b) = tokio::io::duplex(1 << 20);
        (
            Arc::new(RawConnector {
                ends: std::sync::Mutex::new(vec![a]),
            }),
            b,
        )
    }
}

#[async_trait]
impl Connector for RawConnector {
    async fn connect(&self) -> Result<Conn, TransportError> {
        match self.ends.lock().unwrap().pop() {
            Some(a) => Ok(Box::new(a)),
            None => Err(TransportError::Config("raw connector used up".into())),
        }
    }

    fn describe(&self) -> String {
        "raw test peer".into()
    }
}

/// The suite's fake fixture, with every run's endpoints behind RPC.
pub struct RpcFixture {
    pub zfs: Arc<FakeZfs>,
    pub root: DatasetPath,
    pub net: Net,
    pub cfg: RpcConfig,
    pub cancel: CancellationToken,
    /// Connections made by the connectors of all wrapped endpoints.
    pub connects: Arc<AtomicUsize>,
}

impl RpcFixture {
    pub async fn new(net: Net, cfg: RpcConfig) -> RpcFixture {
        let zfs = Arc::new(FakeZfs::new());
        let pool = zfs.add_pool("fakepool").unwrap();
        let root = pool.child("zrelay platformtest").unwrap();
        zfs.create(&root, &[]).await.unwrap();
        RpcFixture {
            zfs,
            root,
            net,
            cfg,
            cancel: CancellationToken::new(),
            connects: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl RpcFixture {
    /// Connections made so far.
    pub fn count(&self) -> usize {
        self.connects.load(Ordering::SeqCst)
    }
}

impl Drop for RpcFixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[async_trait]
impl Fixture for RpcFixture {
    fn zfs(&self) -> Arc<dyn Zfs> {
        self.zfs.clone()
    }

    fn root(&self) -> &DatasetPath {
        &self.root
    }

    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String> {
        self.zfs.write(fs, bytes as u64).map_err(|e| e.to_string())
    }

    async fn create_encrypted(&self, fs: &DatasetPath) -> Result<(), String> {
        self.zfs
            .create(
                fs,
                &[
                    ("encryption".into(), "on".into()),
                    ("keyformat".into(), "passphrase".into()),
                ],
            )
            .await
            .map_err(|e| e.to_string())
    }

    fn wrap_endpoints(
        &self,
        sender: Arc<dyn Sender>,
        receiver: Arc<dyn Receiver>,
    ) -> (Arc<dyn Sender>, Arc<dyn Receiver>) {
        let source = Endpoints {
            sender: Some(sender),
            receiver: None,
        };
        let sink = Endpoints {
            sender: None,
            receiver: Some(receiver),
        };
        let mut s = TestConnector::new(self.net, source, self.cfg.clone(), self.cancel.clone());
        let mut r = TestConnector::new(self.net, sink, self.cfg.clone(), self.cancel.clone());
        Arc::get_mut(&mut s).unwrap().connects = self.connects.clone();
        Arc::get_mut(&mut r).unwrap().connects = self.connects.clone();
        (
            Arc::new(RemoteSender::new(s, self.cfg.clone())),
            Arc::new(RemoteReceiver::new(r, self.cfg.clone())),
        )
    }
}

/// A hello as the wire carries it.
pub fn hello(version: u32, software: &str) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&(software.len() as u16).to_be_bytes());
    v.extend_from_slice(software.as_bytes());
    v
}

/// Read a peer's hello; return its protocol version.
pub async fn read_hello(s: &mut DuplexStream) -> u32 {
    let mut fixed = [0u8; 14];
    s.read_exact(&mut fixed).await.unwrap();
    assert_eq!(fixed[..8], MAGIC);
    let len = u16::from_be_bytes([fixed[12], fixed[13]]) as usize;
    let mut sw = vec![0u8; len];
    s.read_exact(&mut sw).await.unwrap();
    u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]])
}

/// Handshake by hand as a client or a server of our own version.
pub async fn raw_handshake(s: &mut DuplexStream, client: bool) {
    if client {
        s.write_all(&hello(PROTOCOL_VERSION, "raw")).await.unwrap();
        assert_eq!(read_hello(s).await, PROTOCOL_VERSION);
    } else {
        assert_eq!(read_hello(s).await, PROTOCOL_VERSION);
        s.write_all(&hello(PROTOCOL_VERSION, "raw")).await.unwrap();
    }
}

/// Write one frame by hand.
pub async fn write_frame(s: &mut DuplexStream, kind: u8, payload: &[u8]) {
    let mut v = vec![kind];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    s.write_all(&v).await.unwrap();
}

/// Read one frame by hand: kind and payload; `None` at EOF.
pub async fn read_frame(s: &mut DuplexStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; FRAME_HEADER_LEN];
    if s.read_exact(&mut h).await.is_err() {
        return None;
    }
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).await.unwrap();
    Some((h[0], p))
}

/// Read frames until one that is not a heartbeat.
pub async fn read_reply(s: &mut DuplexStream) -> Option<(u8, Vec<u8>)> {
    loop {
        match read_frame(s).await {
            Some((zrelay_rpc::frame_kind::HEARTBEAT, _)) => continue,
            other => return other,
        }
    }
}
