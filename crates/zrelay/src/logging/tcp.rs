//! The `tcp` outlet: one line per event over TCP, optionally TLS with a
//! client certificate.
//!
//! Events are queued on a bounded channel for a writer thread; the caller
//! never waits: when the queue is full (the peer is slow) or the outlet is
//! down, the line is dropped. After a connect or write failure the thread
//! drops lines until `retry_interval` has passed, then reconnects.

use std::io::{self, Write};
use std::mem;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tracing_subscriber::fmt::MakeWriter;
use zrelay_config::TlsFiles;
use zrelay_transport::tls::{load_certs, load_key};

use super::report::Reporter;

/// Lines queued for the writer thread before new ones are dropped.
pub(crate) const QUEUE_LINES: usize = 1024;

/// A write blocked this long counts as a broken connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which addresses `address` may resolve to (`net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    Any,
    V4,
    V6,
}

/// A validated tcp outlet.
pub(crate) struct TcpConfig {
    address: String,
    net: Net,
    retry: Duration,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl TcpConfig {
    /// Check `net`, the address and the TLS files.
    pub(crate) fn new(
        address: &str,
        net: &str,
        retry: Duration,
        tls: Option<&TlsFiles>,
    ) -> Result<Self> {
        let net = match net {
            "tcp" => Net::Any,
            "tcp4" => Net::V4,
            "tcp6" => Net::V6,
            other => bail!("net: {other:?} is not one of tcp, tcp4, tcp6"),
        };
        let (host, port) = address
            .rsplit_once(':')
            .with_context(|| format!("address: {address:?} is not host:port"))?;
        port.parse::<u16>()
            .with_context(|| format!("address: {address:?}: invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tls = tls.map(|f| client_config(f, host)).transpose()?;
        Ok(TcpConfig {
            address: address.to_string(),
            net,
            retry,
            tls,
        })
    }

    fn connect(&self) -> Result<Box<dyn Write + Send>> {
        let addrs: Vec<SocketAddr> = self
            .address
            .to_socket_addrs()
            .with_context(|| format!("resolve {}", self.address))?
            .filter(|a| match self.net {
                Net::Any => true,
                Net::V4 => a.is_ipv4(),
                Net::V6 => a.is_ipv6(),
            })
            .collect();
        let timeout = self
            .retry
            .clamp(Duration::from_secs(1), Duration::from_secs(10));
        let mut last = None;
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(mut s) = stream else {
            return Err(match last {
                Some(e) => anyhow::Error::new(e).context(format!("connect to {}", self.address)),
                None => anyhow::anyhow!("{}: no address for net {:?}", self.address, self.net),
            });
        };
        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
        s.set_read_timeout(Some(WRITE_TIMEOUT))?;
        s.set_nodelay(true)?;
        let Some((cfg, name)) = &self.tls else {
            return Ok(Box::new(s));
        };
        let mut conn = ClientConnection::new(cfg.clone(), name.clone())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut s).context("TLS handshake")?;
        }
        Ok(Box::new(StreamOwned::new(conn, s)))
    }
}

fn client_config(f: &TlsFiles, host: &str) -> Result<(Arc<ClientConfig>, ServerName<'static>)> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs("tls.ca", &f.ca)? {
        roots
            .add(cert)
            .with_context(|| format!("tls.ca: {}: unusable CA certificate", f.ca.display()))?;
    }
    let certs = load_certs("tls.cert", &f.cert)?;
    let key = load_key("tls.key", &f.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .context("tls.cert/tls.key")?;
    let name = ServerName::try_from(host.to_string())
        .with_context(|| format!("address: {host:?} is not a valid TLS server name"))?;
    Ok((Arc::new(cfg), name))
}

enum Msg {
    Line(Vec<u8>),
    Flush(mpsc::Sender<()>),
}

/// The outlet's `MakeWriter`: each event's line is queued when dropped.
#[derive(Clone)]
pub(crate) struct TcpWriter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl TcpWriter {
    /// Lines dropped so far (queue full or outlet down).
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl<'a> MakeWriter<'a> for TcpWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            to: self,
            buf: Vec::new(),
        }
    }
}

/// Collects one event's line and queues it when dropped.
pub(crate) struct Line<'a> {
    to: &'a TcpWriter,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self
            .to
            .tx
            .try_send(Msg::Line(mem::take(&mut self.buf)))
            .is_err()
        {
            self.to.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits for the queued lines to be written (the [`super::LogGuard`]).
pub(crate) struct Flusher {
    tx: SyncSender<Msg>,
}

impl Flusher {
    /// Wait up to `timeout` for the lines queued so far.
    pub(crate) fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (ack, done) = mpsc::channel();
        let mut msg = Msg::Flush(ack);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Start the writer thread of `cfg` with a queue of `capacity` lines.
pub(crate) fn spawn(
    cfg: TcpConfig,
    reporter: Reporter,
    capacity: usize,
) -> Result<(TcpWriter, Flusher)> {
    let (tx, rx) = sync_channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    let worker = Worker {
        cfg,
        reporter,
        dropped: dropped.clone(),
        conn: None,
        next_attempt: None,
    };
    std::thread::Builder::new()
        .name("zrelay-log-tcp".into())
        .spawn(move || worker.run(rx))
        .context("spawn the tcp log outlet's thread")?;
    Ok((
        TcpWriter {
            tx: tx.clone(),
            dropped,
        },
        Flusher { tx },
    ))
}

struct Worker {
    cfg: TcpConfig,
    reporter: Reporter,
    dropped: Arc<AtomicU64>,
    conn: Option<Box<dyn Write + Send>>,
    next_attempt: Option<Instant>,
}

impl Worker {
    /// Until the writer and the flusher are gone.
    fn run(mut self, rx: Receiver<Msg>) {
        for msg in rx {
            match msg {
                Msg::Line(line) => self.write(&line),
                Msg::Flush(ack) => {
                    let _ = ack.send(());
                }
            }
        }
    }

    fn write(&mut self, line: &[u8]) {
        if self.conn.is_none() {
            let now = Instant::now();
            if self.next_attempt.is_some_and(|t| now < t) {
                self.drop_line();
                return;
            }
            match self.cfg.connect() {
                Ok(c) => {
                    self.conn = Some(c);
                    self.reporter.up(self.dropped.load(Ordering::Relaxed));
                }
                Err(e) => {
                    self.fail(&format!("{e:#}"));
                    return;
                }
            }
        }
        let Some(c) = self.conn.as_mut() else { return };
        if let Err(e) = c.write_all(line).and_then(|()| c.flush()) {
            self.conn = None;
            self.fail(&format!("write to {}: {e}", self.cfg.address));
        }
    }

    fn fail(&mut self, why: &str) {
        self.next_attempt = Some(Instant::now() + self.cfg.retry);
        self.drop_line();
        self.reporter.down(&why);
    }

    fn drop_line(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}
