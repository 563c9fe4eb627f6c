//! The calling side: handshaken connections, a small pool of idle ones, and
//! the request/reply exchange.

mod receiver;
mod sender;

use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Instant;

use serde::de::DeserializeOwned;
use zrelay_transport::Connector;

use crate::check::Reply;
use crate::error::RpcError;
use crate::frame::{decode, Frame, FrameReader, FrameWriter};
use crate::handshake::{self, Hello};
use crate::wire::{PingReply, Request};
use crate::{PeerInfo, RpcConfig};

pub use receiver::RemoteReceiver;
pub use sender::RemoteSender;

/// One handshaken connection.
pub(crate) struct Connection {
    pub(crate) rd: FrameReader,
    pub(crate) wr: FrameWriter,
    pub(crate) hello: Hello,
    /// A frame arrived since the last request was written.
    pub(crate) got_frame: bool,
    /// When it was last put back into the pool.
    idle_since: Instant,
}

/// Wait for the reply to `call`, skipping heartbeats; fail when nothing
/// arrives for `cfg.idle_timeout`. The reply is checked ([`Reply`]) before it
/// is returned: a reply with a name no honest server sends is a protocol error.
pub(crate) async fn read_reply<T: DeserializeOwned + Reply>(
    rd: &mut FrameReader,
    got_frame: &mut bool,
    cfg: &RpcConfig,
    call: &str,
) -> Result<T, RpcError> {
    loop {
        let frame = tokio::time::timeout(cfg.idle_timeout, rd.frame())
            .await
            .map_err(|_| RpcError::Timeout {
                what: format!("waiting for the reply to {call}"),
                after: cfg.idle_timeout,
            })??;
        let Some(frame) = frame else {
            return Err(RpcError::Closed(format!("before replying to {call}")));
        };
        *got_frame = true;
        match frame {
            Frame::Heartbeat => continue,
            Frame::Control(p) => {
                let mut v: T = decode(&p, &format!("reply to {call}"))?;
                v.check()
                    .map_err(|e| RpcError::Protocol(format!("invalid reply to {call}: {e}")))?;
                return Ok(v);
            }
            Frame::Error(w) => return Err(RpcError::Remote(w)),
            f => {
                return Err(RpcError::Protocol(format!(
                    "unexpected {f} while waiting for the reply to {call}"
                )))
            }
        }
    }
}

impl Connection {
    async fn open(connector: &dyn Connector, cfg: &RpcConfig) -> Result<Self, RpcError> {
        let mut conn = connector.connect().await?;
        let hello = handshake::client(&mut conn, cfg).await?;
        let (rd, wr) = tokio::io::split(conn);
        Ok(Connection {
            rd: FrameReader::new(rd, cfg),
            wr: FrameWriter::new(wr),
            hello,
            got_frame: false,
            idle_since: Instant::now(),
        })
    }

    /// Send `req` and read its reply.
    pub(crate) async fn call<T: DeserializeOwned + Reply>(
        &mut self,
        req: &Request,
        cfg: &RpcConfig,
    ) -> Result<T, RpcError> {
        self.got_frame = false;
        self.wr.control(req).await?;
        read_reply(&mut self.rd, &mut self.got_frame, cfg, req.name()).await
    }

    /// An idle connection must be silent: anything readable (data, EOF, an
    /// error) means the server closed it or broke the protocol.
    fn is_idle_and_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.rd.poll_frame(&mut cx).is_pending()
    }
}

/// Calls to one peer over pooled connections.
pub(crate) struct Client {
    connector: Arc<dyn Connector>,
    pub(crate) cfg: RpcConfig,
    pub(crate) peer: String,
    idle: Mutex<Vec<Connection>>,
}

impl Client {
    pub(crate) fn new(connector: Arc<dyn Connector>, cfg: RpcConfig) -> Self {
        Client {
            peer: connector.describe(),
            connector,
            cfg,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection that is still open, or a new one; and whether it
    /// came from the pool.
    async fn get(&self) -> Result<(Connection, bool), RpcError> {
        loop {
            let Some(mut c) = self.idle.lock().expect("pool lock").pop() else {
                break;
            };
            if c.idle_since.elapsed() >= self.cfg.pool_idle {
                tracing::debug!(peer = %self.peer, "dropping a pooled connection idle for too long");
                continue;
            }
            if c.is_idle_and_open() {
                return Ok((c, true));
            }
            tracing::debug!(peer = %self.peer, "dropping a pooled connection the peer closed");
        }
        tracing::debug!(peer = %self.peer, "connecting");
        Ok((
            Connection::open(self.connector.as_ref(), &self.cfg).await?,
            false,
        ))
    }

    /// Keep a connection that ended its last call cleanly, for the next call.
    pub(crate) fn put(&self, mut c: Connection) {
        c.idle_since = Instant::now();
        let mut idle = self.idle.lock().expect("pool lock");
        idle.retain(|c| c.idle_since.elapsed() < self.cfg.pool_idle);
        if idle.len() < self.cfg.max_idle_connections {
            idle.push(c);
        }
    }

    /// Send `req` and read its reply; return the reply with the connection
    /// (at a frame boundary unless the error says otherwise). A pooled
    /// connection that turns out dead before any reply is replaced by a new
    /// one, once.
    pub(crate) async fn start<T: DeserializeOwned + Reply>(
        &self,
        req: &Request,
    ) -> Result<(T, Connection), RpcError> {
        let mut retried = false;
        loop {
            let (mut c, pooled) = self.get().await?;
            match c.call::<T>(req, &self.cfg).await {
                Ok(v) => return Ok((v, c)),
                Err(e @ RpcError::Remote(_)) => {
                    self.put(c);
                    return Err(e);
                }
                Err(RpcError::Io { .. } | RpcError::Closed(_))
                    if pooled && !c.got_frame && !retried =>
                {
                    tracing::debug!(peer = %self.peer, call = req.name(), "pooled connection was dead; retrying on a new one");
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A plain call: the connection goes back to the pool.
    pub(crate) async fn call<T: DeserializeOwned + Reply>(
        &self,
        req: &Request,
    ) -> Result<T, RpcError> {
        let (v, c) = self.start(req).await?;
        self.put(c);
        Ok(v)
    }

    /// [`Client::call`] for the endpoint traits: errors as `EndpointError`s
    /// naming the peer.
    pub(crate) async fn endpoint_call<T: DeserializeOwned + Reply>(
        &self,
        req: Request,
    ) -> zrelay_endpoint::Result<T> {
        self.call(&req)
            .await
            .map_err(|e| e.into_endpoint(&self.peer))
    }

    /// A batched call: one result per request item, each item's error as an
    /// `EndpointError` naming the peer.
    pub(crate) async fn endpoint_batch<T: DeserializeOwned>(
        &self,
        req: Request,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::Result<T>>> {
        let v: Vec<Result<T, crate::error::WireError>> = self.endpoint_call(req).await?;
        Ok(v.into_iter()
            .map(|r| r.map_err(|w| w.into_endpoint(&self.peer)))
            .collect())
    }

    /// A batched call over `items`, sent as requests of at most
    /// [`CLIENT_BATCH_STEPS`](crate::CLIENT_BATCH_STEPS) steps each (`weight` counts an
    /// item's steps; an item heavier than that goes alone), so that every request fits
    /// a server's default limits. The results are joined in order; a request that
    /// fails fails the whole call.
    pub(crate) async fn endpoint_batches<I: Clone, T: DeserializeOwned>(
        &self,
        items: &[I],
        weight: impl Fn(&I) -> usize,
        req: impl Fn(Vec<I>) -> Request,
    ) -> zrelay_endpoint::Result<Vec<zrelay_endpoint::Result<T>>> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in batches(items, weight, crate::CLIENT_BATCH_STEPS) {
            let n = chunk.len();
            let v: Vec<zrelay_endpoint::Result<T>> =
                self.endpoint_batch(req(chunk.to_vec())).await?;
            if v.len() != n {
                return Err(RpcError::Protocol(format!(
                    "the reply has {} results for {n} requests",
                    v.len()
                ))
                .into_endpoint(&self.peer));
            }
            out.extend(v);
        }
        Ok(out)
    }
}

impl Client {
    /// A snapshot destroy, sent as requests of at most
    /// [`CLIENT_BATCH_STEPS`](crate::CLIENT_BATCH_STEPS) names; the outcomes are joined.
    pub(crate) async fn destroy_in_batches(
        &self,
        names: &[String],
        req: impl Fn(Vec<String>) -> Request,
    ) -> zrelay_endpoint::Result<zrelay_endpoint::DestroyOutcome> {
        let mut out = zrelay_endpoint::DestroyOutcome::default();
        for chunk in batches(names, |_| 1, crate::CLIENT_BATCH_STEPS) {
            let o: zrelay_endpoint::DestroyOutcome =
                self.endpoint_call(req(chunk.to_vec())).await?;
            out.destroyed.extend(o.destroyed);
            out.kept.extend(o.kept);
        }
        Ok(out)
    }
}

/// `items` in runs whose weights add up to at most `max` (each run has at least one item;
/// an empty `items` gives one empty run, so that the call is still made).
pub(crate) fn batches<I>(items: &[I], weight: impl Fn(&I) -> usize, max: usize) -> Vec<&[I]> {
    let mut out = Vec::new();
    let (mut start, mut sum) = (0, 0);
    for (i, it) in items.iter().enumerate() {
        let w = weight(it).max(1);
        if i > start && sum + w > max {
            out.push(&items[start..i]);
            (start, sum) = (i, 0);
        }
        sum += w;
    }
    if start < items.len() || out.is_empty() {
        out.push(&items[start..]);
    }
    out
}

/// Connect to the peer, handshake and ask what it serves.
pub async fn ping(connector: &dyn Connector, cfg: &RpcConfig) -> Result<PeerInfo, RpcError> {
    let mut c = Connection::open(connector, cfg).await?;
    let reply: PingReply = c.call(&Request::Ping, cfg).await?;
    Ok(PeerInfo {
        peer: connector.describe(),
        protocol_version: c.hello.protocol_version,
        software_version: c.hello.software_version.clone(),
        sender: reply.sender,
        receiver: reply.receiver,
    })
}

#[cfg(test)]
mod tests {
    use super::batches;

    #[test]
    fn batches_respect_the_step_limit() {
        let items: Vec<usize> = vec![1; 2500];
        let b = batches(&items, |w| *w, 1000);
        assert_eq!(
            b.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        let heavy = [600, 600, 5000, 1];
        let b = batches(&heavy, |w| *w, 1000);
        assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), [1, 1, 1, 1]);
        let none: [usize; 0] = [];
        assert_eq!(batches(&none, |w| *w, 1000).len(), 1);
    }
}
