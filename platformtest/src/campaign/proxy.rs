//! The campaign's fault proxy: a TCP forwarder between the push daemon and
//! the sink that injects one armed fault once the push side has sent a
//! chosen number of bytes through it.
//!
//! Invariants:
//! - Bytes are counted from the push side (the stream's direction) across
//!   every connection since the fault was armed; the fault fires at most
//!   `times` times, re-arming a random distance later after each firing
//!   (so a resumed step can be cut again).
//! - `Reset` closes both sides with an RST (linger 0); `Stall` stops
//!   forwarding in both directions and keeps the sockets open (a blackhole)
//!   until [`Proxy::disarm`], which then closes them; the kill faults only
//!   report that they fired (the scenario does the killing) and forward on.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What happens when the armed offset is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Drop the connection with an RST.
    Reset,
    /// Stop forwarding, keep the connection open.
    Stall,
    /// Tell the scenario to act (kill a process); forwarding goes on.
    Signal,
}

/// An armed fault.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    /// What to do.
    pub kind: FaultKind,
    /// After this many bytes from the push side.
    pub at: u64,
    /// How many times to fire (re-armed `again` bytes after each firing).
    pub times: u32,
    /// The distance to the next firing.
    pub again: u64,
}

struct State {
    fault: Option<Fault>,
    counted: u64,
    fired: u32,
    stall: CancellationToken,
    conns: Vec<CancellationToken>,
}

/// A running proxy.
pub struct Proxy {
    /// The port the push daemon connects to.
    pub port: u16,
    state: Arc<Mutex<State>>,
    fired_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on 127.0.0.1:`port`, forwarding to 127.0.0.1:`upstream`.
    pub async fn start(port: u16, upstream: u16) -> Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let state = Arc::new(Mutex::new(State {
            fault: None,
            counted: 0,
            fired: 0,
            stall: CancellationToken::new(),
            conns: Vec::new(),
        }));
        let (fired_tx, fired_rx) = mpsc::unbounded_channel();
        let (st, tx) = (state.clone(), fired_tx);
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let (st, tx) = (st.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        conn(down, up, st, tx).await;
                    }
                });
            }
        });
        Ok(Proxy {
            port,
            state,
            fired_rx: tokio::sync::Mutex::new(fired_rx),
            task,
        })
    }

    /// Arm `fault` (replacing any other) and reset the byte count.
    pub fn arm(&self, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.fault = Some(fault);
        s.counted = 0;
        s.fired = 0;
        while self
            .fired_rx
            .try_lock()
            .is_ok_and(|mut r| r.try_recv().is_ok())
        {}
    }

    /// Disarm, release and close stalled connections; returns how many
    /// times the fault fired.
    pub fn disarm(&self) -> u32 {
        let mut s = self.state.lock().unwrap();
        s.fault = None;
        s.stall.cancel();
        s.stall = CancellationToken::new();
        s.fired
    }

    /// Wait until the fault fires (a `Signal` fault's cue).
    pub async fn fired(&self) {
        let _ = self.fired_rx.lock().await.recv().await;
    }

    /// Close every connection at once with an RST (the sink goes away).
    pub fn reset_all(&self) {
        let mut s = self.state.lock().unwrap();
        for c in s.conns.drain(..) {
            c.cancel();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.reset_all();
        self.disarm();
    }
}

/// What the byte count says after `n` more bytes from the push side.
enum Next {
    Forward,
    Reset,
    Stall(CancellationToken),
}

fn count(st: &Mutex<State>, n: usize, tx: &mpsc::UnboundedSender<()>) -> Next {
    let mut s = st.lock().unwrap();
    s.counted += n as u64;
    let Some(f) = s.fault else {
        return Next::Forward;
    };
    if s.counted < f.at || s.fired >= f.times {
        return Next::Forward;
    }
    s.fired += 1;
    s.counted = 0;
    s.fault = Some(Fault { at: f.again, ..f });
    let _ = tx.send(());
    match f.kind {
        FaultKind::Reset => Next::Reset,
        FaultKind::Stall => Next::Stall(s.stall.clone()),
        FaultKind::Signal => Next::Forward,
    }
}

async fn conn(
    mut down: TcpStream,
    mut up: TcpStream,
    st: Arc<Mutex<State>>,
    tx: mpsc::UnboundedSender<()>,
) {
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let cancel = CancellationToken::new();
    st.lock().unwrap().conns.push(cancel.clone());
    let graceful = {
        let (mut dr, mut dw) = down.split();
        let (mut ur, mut uw) = up.split();
        let stalled = CancellationToken::new();
        let outbound = async {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match dr.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => n,
                };
                match count(&st, n, &tx) {
                    Next::Forward => {}
                    Next::Reset => return false,
                    Next::Stall(release) => {
                        stalled.cancel();
                        release.cancelled().await;
                        return false;
                    }
                }
                if uw.write_all(&buf[..n]).await.is_err() {
                    return true;
                }
            }
        };
        let inbound = async {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = tokio::select! {
                    r = ur.read(&mut buf) => match r {
                        Ok(0) | Err(_) => return true,
                        Ok(n) => n,
                    },
                    _ = stalled.cancelled() => std::future::pending().await,
                };
                if stalled.is_cancelled() {
                    std::future::pending::<()>().await;
                }
                if dw.write_all(&buf[..n]).await.is_err() {
                    return true;
                }
            }
        };
        tokio::select! {
            g = outbound => g,
            g = inbound => g,
            _ = cancel.cancelled() => false,
        }
    };
    if graceful {
        let _ = down.shutdown().await;
        let _ = up.shutdown().await;
    } else {
        // closing with linger 0 sends an RST to both sides
        let _ = down.set_zero_linger();
        let _ = up.set_zero_linger();
    }
}
