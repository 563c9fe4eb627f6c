//! The `local` transport: two jobs of the same daemon, joined in memory.
//!
//! A process-global registry maps `listener_name` to the serving job's
//! listener. A name is registered at most once; dropping the listener
//! unregisters it. A connect waits (up to `dial_timeout`) for the name to
//! appear, since jobs start in no particular order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Accepted, ClientIdentity, Conn, Connector, Listener, TransportError};

/// The in-memory buffer of each direction of a local connection.
pub const LOCAL_BUFFER: usize = 1 << 20;
/// How often a connect looks again for a listener not yet registered.
const POLL: Duration = Duration::from_millis(20);

type Registry = HashMap<String, (u64, mpsc::Sender<Accepted>)>;
static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // The map stays consistent even if a holder panicked.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_name(key: &str, name: &str) -> Result<(), TransportError> {
    if name.trim().is_empty() {
        return Err(TransportError::config(format!("{key}: it is empty")));
    }
    Ok(())
}

/// `serve: {type: local}`.
pub struct LocalListener {
    name: String,
    id: u64,
    rx: mpsc::Receiver<Accepted>,
}

impl LocalListener {
    /// Register `name`; an error if another listener holds it.
    pub fn register(name: &str) -> Result<Self, TransportError> {
        check_name("serve.listener_name", name)?;
        let mut reg = registry();
        if reg.contains_key(name) {
            return Err(TransportError::config(format!(
                "serve.listener_name: \"{}\" is already used by another job's local listener",
                name.escape_debug()
            )));
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(16);
        reg.insert(name.to_string(), (id, tx));
        Ok(LocalListener {
            name: name.to_string(),
            id,
            rx,
        })
    }
}

impl Drop for LocalListener {
    fn drop(&mut self) {
        let mut reg = registry();
        if reg.get(&self.name).is_some_and(|(id, _)| *id == self.id) {
            reg.remove(&self.name);
        }
    }
}

#[async_trait]
impl Listener for LocalListener {
    async fn accept(&mut self) -> Result<Accepted, TransportError> {
        // The registry holds a sender while we are registered, so this only
        // ends if the registry entry was somehow removed.
        self.rx.recv().await.ok_or_else(|| {
            TransportError::io(
                format!("accept on local listener \"{}\"", self.name),
                std::io::Error::other("unregistered"),
            )
        })
    }

    fn describe(&self) -> String {
        format!("local \"{}\"", self.name)
    }
}

/// `connect: {type: local}`.
#[derive(Debug, Clone)]
pub struct LocalConnector {
    name: String,
    identity: ClientIdentity,
    dial_timeout: Duration,
}

impl LocalConnector {
    /// Validate `listener_name` and `client_identity`.
    pub fn new(
        listener_name: &str,
        client_identity: &str,
        dial_timeout: Duration,
    ) -> Result<Self, TransportError> {
        check_name("connect.listener_name", listener_name)?;
        let identity = ClientIdentity::parse(client_identity)
            .map_err(|e| TransportError::config(format!("connect.client_identity: {e}")))?;
        Ok(LocalConnector {
            name: listener_name.to_string(),
            identity,
            dial_timeout,
        })
    }
}

#[async_trait]
impl Connector for LocalConnector {
    async fn connect(&self) -> Result<Conn, TransportError> {
        let deadline = Instant::now() + self.dial_timeout;
        let timeout = || {
            TransportError::timeout(
                format!(
                    "local connect to listener_name \"{}\" (is a job serving it running in this daemon?)",
                    self.name
                ),
                self.dial_timeout,
            )
        };
        loop {
            let tx = registry().get(&self.name).map(|(_, tx)| tx.clone());
            if let Some(tx) = tx {
                let (client, server) = tokio::io::duplex(LOCAL_BUFFER);
                let accepted = Accepted {
                    conn: Box::new(server),
                    identity: self.identity.clone(),
                    peer: format!("local client \"{}\"", self.identity),
                };
                match tokio::time::timeout_at(deadline, tx.send(accepted)).await {
                    Ok(Ok(())) => return Ok(Box::new(client)),
                    // The listener went away in between: look again.
                    Ok(Err(_)) => {}
                    Err(_) => return Err(timeout()),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timeout());
            }
            tokio::time::sleep_until((now + POLL).min(deadline)).await;
        }
    }

    fn describe(&self) -> String {
        format!("local \"{}\" as \"{}\"", self.name, self.identity)
    }
}
