//! `global.notify` (zrelay extension): a command told about failed
//! invocations and work records that went dead, rate limited per job and
//! event.
//!
//! Invariants:
//! - At most one notification per (job, event) per `min_interval`, on the
//!   daemon's clock ([`Limiter`], pure); the ones held back are counted and
//!   the next notification says how many (`ZRELAY_SUPPRESSED`).
//! - A notification never delays or fails the job: the command runs in its
//!   own task, bounded by its timeout, and its failure is only logged.
//!
//! The command gets the daemon's environment plus `ZRELAY_NOTIFY_EVENT`
//! (`invocation_failed`, `record_dead`), `ZRELAY_JOB`, `ZRELAY_MESSAGE`
//! and `ZRELAY_SUPPRESSED`, and the details as JSON on stdin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tracing::{info, warn};
use zrelay_config::Notify;
use zrelay_snapshot::hooks::{run_command, CommandSpec};
use zrelay_snapshot::Clock;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NotifyEvent {
    /// An invocation ended with failed filesystems or a planning error.
    InvocationFailed,
    /// A work record went dead: a human is needed.
    RecordDead,
}

impl NotifyEvent {
    fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::InvocationFailed => "invocation_failed",
            NotifyEvent::RecordDead => "record_dead",
        }
    }
}

/// The rate limit: when each (job, event) last notified, and how many were
/// held back since.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    slots: HashMap<(String, NotifyEvent), (SystemTime, u64)>,
}

impl Limiter {
    /// `Some(held back since the last one)` when a notification may go now.
    pub fn admit(
        &mut self,
        job: &str,
        event: NotifyEvent,
        now: SystemTime,
        every: Duration,
    ) -> Option<u64> {
        match self.slots.get_mut(&(job.to_string(), event)) {
            Some((last, held)) if now < *last + every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                (*last, *held) = (now, 0);
                Some(n)
            }
            None => {
                self.slots.insert((job.to_string(), event), (now, 0));
                Some(0)
            }
        }
    }
}

/// The daemon's notifier.
pub(crate) struct Notifier {
    pub cfg: Notify,
    pub clock: Arc<dyn Clock>,
    pub log_max: usize,
    pub limiter: Mutex<Limiter>,
}

impl Notifier {
    /// Tell the command, unless the rate limit holds it back.
    pub fn notify(&self, job: &str, event: NotifyEvent, message: String, json: serde_json::Value) {
        let now = self.clock.now();
        let admitted = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(job, event, now, self.cfg.min_interval);
        let Some(suppressed) = admitted else {
            info!(
                job,
                event = event.as_str(),
                "notification held back by min_interval"
            );
            return;
        };
        let (cfg, log_max, job) = (self.cfg.clone(), self.log_max, job.to_string());
        tokio::spawn(async move {
            let env = vec![
                (
                    "ZRELAY_NOTIFY_EVENT".to_string(),
                    event.as_str().to_string(),
                ),
                ("ZRELAY_JOB".to_string(), job.clone()),
                ("ZRELAY_MESSAGE".to_string(), message),
                ("ZRELAY_SUPPRESSED".to_string(), suppressed.to_string()),
            ];
            let (res, _) = run_command(CommandSpec {
                path: &cfg.command,
                timeout: cfg.timeout,
                env,
                stdin: Some(serde_json::to_vec(&json).unwrap_or_default()),
                job: &job,
                subject: &job,
                edge: event.as_str(),
                log_max,
            })
            .await;
            if let Err(e) = res {
                warn!(job, command = %cfg.command.display(), error = %e, "the notify command failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_per_job_and_event_counting_the_held_back() {
        let mut l = Limiter::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let every = Duration::from_secs(600);
        let f = NotifyEvent::InvocationFailed;
        assert_eq!(l.admit("a", f, t0, every), Some(0));
        assert_eq!(l.admit("a", f, t0 + Duration::from_secs(10), every), None);
        assert_eq!(l.admit("a", f, t0 + Duration::from_secs(20), every), None);
        assert_eq!(
            l.admit("b", f, t0 + Duration::from_secs(20), every),
            Some(0),
            "per job"
        );
        assert_eq!(
            l.admit("a", NotifyEvent::RecordDead, t0, every),
            Some(0),
            "per event"
        );
        assert_eq!(l.admit("a", f, t0 + every, every), Some(2), "two held back");
        assert_eq!(
            l.admit("a", f, t0 + every + Duration::from_secs(1), every),
            None
        );
    }
}
