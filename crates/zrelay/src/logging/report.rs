//! Errors of the outlets themselves.
//!
//! As in zrepl, the first outlet receives the errors of the others: they
//! are logged by a relay thread as error events with the target
//! [`OUTLET_TARGET`], which only the first outlet's filter lets through
//! (so a broken outlet never reports to itself). The first outlet's own
//! errors go to stderr. An outlet reports when it goes down and when it
//! recovers, not once per lost message.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use anyhow::{Context, Result};
use tracing::Dispatch;

/// The target of outlet error events.
pub(crate) const OUTLET_TARGET: &str = "zrelay::logging::outlet";

/// Reports pending for the relay before further ones go to stderr.
const REPORT_QUEUE: usize = 64;

/// One outlet's error reporting.
pub(crate) struct Reporter {
    name: String,
    relay: Option<SyncSender<String>>,
    down: AtomicBool,
}

impl Reporter {
    /// Reports for the outlet `name`: through `relay`, or to stderr.
    pub(crate) fn new(name: String, relay: Option<SyncSender<String>>) -> Self {
        Reporter {
            name,
            relay,
            down: AtomicBool::new(false),
        }
    }

    /// The outlet failed; reported when it was up until now.
    pub(crate) fn down(&self, why: &dyn Display) {
        if !self.down.swap(true, Ordering::SeqCst) {
            self.emit(format!(
                "{}: {why}; dropping log messages until it recovers",
                self.name
            ));
        }
    }

    /// The outlet works; reported when it was down.
    pub(crate) fn up(&self, dropped: u64) {
        if self.down.swap(false, Ordering::SeqCst) {
            self.emit(format!(
                "{}: recovered ({dropped} log messages dropped so far)",
                self.name
            ));
        }
    }

    fn emit(&self, msg: String) {
        let msg = match &self.relay {
            Some(tx) => match tx.try_send(msg) {
                Ok(()) => return,
                Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => m,
            },
            None => msg,
        };
        eprintln!("zrelay: log outlet error: {msg}");
    }
}

/// The receiving end of the reports; see [`Relay::spawn`].
pub(crate) struct Relay(Receiver<String>);

/// A report channel.
pub(crate) fn channel() -> (SyncSender<String>, Relay) {
    let (tx, rx) = sync_channel(REPORT_QUEUE);
    (tx, Relay(rx))
}

impl Relay {
    /// Log the reports through `dispatch` (held weakly) until every
    /// reporter is gone.
    pub(crate) fn spawn(self, dispatch: &Dispatch) -> Result<()> {
        let weak = dispatch.downgrade();
        std::thread::Builder::new()
            .name("zrelay-log-errors".into())
            .spawn(move || {
                for msg in self.0 {
                    let Some(d) = weak.upgrade() else { break };
                    tracing::dispatcher::with_default(&d, || {
                        tracing::error!(target: OUTLET_TARGET, "log outlet error: {msg}");
                    });
                }
            })
            .context("spawn the log outlet error relay")?;
        Ok(())
    }
}
