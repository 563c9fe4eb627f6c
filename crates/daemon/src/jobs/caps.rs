//! The connection caps of a passive job (`limits.max_connections*`): at
//! most [`ConnLimits::max`] connections served at once, at most
//! [`ConnLimits::per_client`] per client identity.
//!
//! Invariants:
//! - [`Caps`] is owned by the job's accept loop; a connection holds a
//!   [`Slot`] (two semaphore permits) and gives it back when its task ends,
//!   however it ends. No lock: the counts are semaphores.
//! - The per-identity table forgets identities with no connection once it
//!   holds more than [`FORGET_AFTER`] of them, so clients that come and go
//!   do not grow it without bound.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zrelay_endpoint::ClientIdentity;

/// Identities kept in the table before idle ones are forgotten.
pub const FORGET_AFTER: usize = 256;

/// The connection caps of a passive job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once.
    pub max: usize,
    /// Connections served at once per client identity.
    pub per_client: usize,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// The client is at its cap.
    #[error(
        "client {identity} already has {has} connections (limits.max_connections_per_client {max})"
    )]
    Client {
        /// The client.
        identity: ClientIdentity,
        /// Its connections now.
        has: usize,
        /// The cap.
        max: usize,
    },
    /// The job is at its cap.
    #[error("the job already serves {serving} connections (limits.max_connections {max})")]
    Job {
        /// Connections served now.
        serving: usize,
        /// The cap.
        max: usize,
    },
}

/// A served connection's place; given back on drop.
pub(crate) struct Slot {
    _mine: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// The connections being served, in total and per identity.
pub(crate) struct Caps {
    limits: ConnLimits,
    total: Arc<Semaphore>,
    per: HashMap<ClientIdentity, Arc<Semaphore>>,
}

impl Caps {
    /// No connection yet.
    pub fn new(limits: ConnLimits) -> Caps {
        Caps {
            limits,
            total: Arc::new(Semaphore::new(limits.max)),
            per: HashMap::new(),
        }
    }

    /// A slot for a new connection of `identity`, or why there is none.
    pub fn take(&mut self, identity: &ClientIdentity) -> Result<Slot, Full> {
        if self.per.len() > FORGET_AFTER {
            let all = self.limits.per_client;
            self.per.retain(|_, s| s.available_permits() < all);
        }
        let per_client = self.limits.per_client;
        let mine = self
            .per
            .entry(identity.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(per_client)))
            .clone();
        let mine = mine.clone().try_acquire_owned().map_err(|_| Full::Client {
            identity: identity.clone(),
            has: per_client - mine.available_permits(),
            max: per_client,
        })?;
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::Job {
                serving: self.serving(),
                max: self.limits.max,
            })?;
        Ok(Slot {
            _mine: mine,
            _total: total,
        })
    }

    /// Connections served now.
    pub fn serving(&self) -> usize {
        self.limits.max - self.total.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClientIdentity {
        ClientIdentity::parse(s).unwrap()
    }

    #[test]
    fn caps_per_client_and_per_job_and_slots_come_back() {
        let mut caps = Caps::new(ConnLimits {
            max: 3,
            per_client: 2,
        });
        let a1 = caps.take(&id("a")).unwrap();
        let _a2 = caps.take(&id("a")).unwrap();
        let e = caps.take(&id("a")).err().unwrap().to_string();
        assert!(e.contains("client a already has 2"), "{e}");
        let _b1 = caps.take(&id("b")).unwrap();
        let e = caps.take(&id("c")).err().unwrap().to_string();
        assert!(e.contains("already serves 3"), "{e}");
        drop(a1);
        let _c1 = caps.take(&id("c")).unwrap();
        assert_eq!(caps.serving(), 3);
    }

    #[test]
    fn idle_identities_are_forgotten() {
        let mut caps = Caps::new(ConnLimits {
            max: 10_000,
            per_client: 1,
        });
        let kept = caps.take(&id("kept")).unwrap();
        for i in 0..2 * FORGET_AFTER {
            drop(caps.take(&id(&format!("c{i}"))).unwrap());
        }
        assert!(caps.per.len() <= FORGET_AFTER + 2, "{}", caps.per.len());
        assert!(
            caps.take(&id("kept")).is_err(),
            "a busy identity stays counted"
        );
        drop(kept);
        assert!(caps.take(&id("kept")).is_ok());
    }
}
