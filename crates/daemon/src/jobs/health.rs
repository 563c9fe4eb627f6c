//! One target's health and backoff (fan-out push jobs; Praefect's
//! per-node health and backoff are the model).
//!
//! [`TargetHealth`] is a pure state machine: it never reads a clock, every
//! call takes `now`. [`Gate`] shares it between the target's health checks
//! (writers of `checked`) and the target's lane (writer of
//! `invocation_ended`, reader of `may_run`), through a `watch` channel.
//!
//! Invariants:
//! - An unhealthy target is never attempted: its lane skips it until a
//!   health check succeeds.
//! - After `n` consecutive failed invocations the target waits
//!   `start × 2^(n−1)` (at most `max`) before the next; any progress (an
//!   invocation without failures, or with at least one completed step)
//!   resets the count. A wakeup that finds the target unhealthy counts as
//!   a failure (the backoff grows while a target is down); the check that
//!   finds it healthy again clears the backoff, so a target that comes
//!   back catches up at once.
//! - A target unhealthy for longer than the grace stops protecting the
//!   sender's snapshots (`protects` is false); with no grace it always
//!   protects.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use zrelay_replication::report::unix;

/// What the last health check said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// The last check succeeded.
    Healthy,
    /// The last check failed.
    Unhealthy,
}

/// Backoff and grace of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// The wait after the first failed invocation.
    pub backoff_start: Duration,
    /// The longest wait.
    pub backoff_max: Duration,
    /// Unhealthy for longer than this: stop protecting (`None`: never).
    pub grace: Option<Duration>,
}

impl HealthPolicy {
    /// The wait after the `n`-th consecutive failure (n ≥ 1).
    pub fn backoff(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.backoff_start
            .checked_mul(1u32 << doublings)
            .map_or(self.backoff_max, |d| d.min(self.backoff_max))
    }
}

/// Why a target is not attempted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The last health check failed.
    Unhealthy {
        /// Unhealthy since.
        since: SystemTime,
        /// The check's error.
        error: String,
    },
    /// Backing off after failed invocations.
    Backoff {
        /// Until then.
        until: SystemTime,
        /// Consecutive failures.
        failures: u32,
    },
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Unhealthy { since, error } => write!(
                f,
                "skipped: unhealthy since {} ({error}); attempted again once a health check succeeds",
                rfc3339(*since)
            ),
            Skip::Backoff { until, failures } => write!(
                f,
                "skipped: backing off after {failures} failed invocation(s) until {}",
                rfc3339(*until)
            ),
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map_or_else(|_| format!("{t:?}"), |t| t.to_string())
}

/// A target's health as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// The last check's verdict.
    pub health: Health,
    /// Since when (unix seconds; the daemon's start for `unknown`).
    pub since: u64,
    /// When the last check ran (unix seconds).
    pub checked_at: Option<u64>,
    /// The last failed check's error.
    pub error: Option<String>,
    /// Consecutive failed invocations.
    pub failures: u32,
    /// No invocation before this (unix seconds; only while it is ahead).
    pub backoff_until: Option<u64>,
    /// The backoff the consecutive failures earned, in seconds (0 without
    /// failures); it doubles per failure up to the maximum.
    pub backoff_seconds: u64,
    /// Whether its replication cursor still protects the sender's
    /// snapshots (false once unhealthy for longer than the grace).
    pub protecting: bool,
}

/// One target's health and backoff.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    policy: HealthPolicy,
    health: Health,
    since: SystemTime,
    checked_at: Option<SystemTime>,
    error: Option<String>,
    failures: u32,
    backoff_until: Option<SystemTime>,
}

impl TargetHealth {
    /// Not checked yet, no failures.
    pub fn new(policy: HealthPolicy, now: SystemTime) -> TargetHealth {
        TargetHealth {
            policy,
            health: Health::Unknown,
            since: now,
            checked_at: None,
            error: None,
            failures: 0,
            backoff_until: None,
        }
    }

    /// A health check ended; true when the target just became healthy
    /// (from unknown or unhealthy).
    pub fn checked(&mut self, now: SystemTime, result: Result<(), String>) -> bool {
        self.checked_at = Some(now);
        let next = if result.is_ok() {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        self.error = result.err();
        let became = next != self.health;
        if became {
            if self.health == Health::Unhealthy {
                self.failures = 0;
                self.backoff_until = None;
            }
            self.health = next;
            self.since = now;
        }
        became && next == Health::Healthy
    }

    /// An invocation ended: `progressed` resets the backoff, otherwise it
    /// grows.
    pub fn invocation_ended(&mut self, now: SystemTime, progressed: bool) {
        if progressed {
            self.failures = 0;
            self.backoff_until = None;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.backoff_until = Some(now + self.policy.backoff(self.failures));
        }
    }

    /// Whether the target may be attempted now.
    ///
    /// # Errors
    /// Why not.
    pub fn may_run(&self, now: SystemTime) -> Result<(), Skip> {
        if self.health == Health::Unhealthy {
            return Err(Skip::Unhealthy {
                since: self.since,
                error: self.error.clone().unwrap_or_default(),
            });
        }
        match self.backoff_until {
            Some(until) if until > now => Err(Skip::Backoff {
                until,
                failures: self.failures,
            }),
            _ => Ok(()),
        }
    }

    /// When a backoff ends (if the target is backing off).
    pub fn backoff_until(&self) -> Option<SystemTime> {
        self.backoff_until
    }

    /// Whether its cursor still protects the sender's snapshots.
    pub fn protects(&self, now: SystemTime) -> bool {
        match (self.health, self.policy.grace) {
            (Health::Unhealthy, Some(grace)) => {
                now.duration_since(self.since).unwrap_or_default() <= grace
            }
            _ => true,
        }
    }

    /// For status.
    pub fn status(&self, now: SystemTime) -> HealthStatus {
        let backing_off = self.backoff_until.filter(|u| *u > now);
        HealthStatus {
            health: self.health,
            since: unix(self.since),
            checked_at: self.checked_at.map(unix),
            error: self.error.clone(),
            failures: self.failures,
            backoff_until: backing_off.map(unix),
            backoff_seconds: if self.failures > 0 {
                self.policy.backoff(self.failures).as_secs()
            } else {
                0
            },
            protecting: self.protects(now),
        }
    }
}

/// A target's health, shared by its health checks and its lane.
pub(crate) struct Gate {
    state: watch::Sender<TargetHealth>,
}

impl Gate {
    pub fn new(policy: HealthPolicy, now: SystemTime) -> Gate {
        Gate {
            state: watch::Sender::new(TargetHealth::new(policy, now)),
        }
    }

    /// See [`TargetHealth::checked`].
    pub fn checked(&self, now: SystemTime, result: Result<(), String>) -> bool {
        let mut became = false;
        self.state.send_modify(|h| became = h.checked(now, result));
        became
    }

    /// See [`TargetHealth::invocation_ended`].
    pub fn invocation_ended(&self, now: SystemTime, progressed: bool) {
        self.state
            .send_modify(|h| h.invocation_ended(now, progressed));
    }

    /// A copy of the state.
    pub fn read(&self) -> TargetHealth {
        self.state.borrow().clone()
    }

    /// Wait for a change (a check or an invocation's end).
    pub fn subscribe(&self) -> watch::Receiver<TargetHealth> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    fn policy(grace: Option<u64>) -> HealthPolicy {
        HealthPolicy {
            backoff_start: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            grace: grace.map(Duration::from_secs),
        }
    }

    #[test]
    fn an_unhealthy_target_is_skipped_until_a_check_succeeds() {
        let mut h = TargetHealth::new(policy(None), at(0));
        assert_eq!(h.may_run(at(0)), Ok(()), "unknown is attempted");
        assert!(!h.checked(at(1), Err("connection refused".into())));
        let skip = h.may_run(at(100)).unwrap_err();
        assert!(matches!(skip, Skip::Unhealthy { since, .. } if since == at(1)));
        assert!(skip.to_string().contains("connection refused"), "{skip}");
        // a second failure keeps the first `since`
        h.checked(at(30), Err("still refused".into()));
        assert_eq!(h.status(at(30)).since, unix(at(1)));
        h.invocation_ended(at(35), false);
        assert!(h.status(at(35)).backoff_until.is_some());
        assert!(h.checked(at(40), Ok(())), "became healthy");
        assert_eq!(h.status(at(40)).failures, 0, "back: no backoff");
        assert!(!h.checked(at(70), Ok(())), "already healthy");
        assert_eq!(h.may_run(at(70)), Ok(()));
    }

    #[test]
    fn backoff_doubles_to_the_max_and_resets_on_progress() {
        let mut h = TargetHealth::new(policy(None), at(0));
        let mut waits = Vec::new();
        for i in 0..5 {
            let now = at(i * 1000);
            h.invocation_ended(now, false);
            let until = h.backoff_until().unwrap();
            waits.push(until.duration_since(now).unwrap().as_secs());
            assert!(
                matches!(h.may_run(now), Err(Skip::Backoff { failures, .. }) if failures == i as u32 + 1)
            );
            assert_eq!(h.may_run(until), Ok(()), "attempted once the backoff ends");
        }
        assert_eq!(waits, [10, 20, 40, 60, 60]);
        assert_eq!(h.status(at(4000)).backoff_seconds, 60);
        h.invocation_ended(at(5000), true);
        assert_eq!(h.may_run(at(5000)), Ok(()));
        assert_eq!(h.status(at(5000)).failures, 0);
        h.invocation_ended(at(6000), false);
        assert_eq!(
            h.backoff_until().unwrap().duration_since(at(6000)).unwrap(),
            Duration::from_secs(10),
            "starts over after progress"
        );
    }

    #[test]
    fn protection_lapses_only_after_the_grace() {
        let mut h = TargetHealth::new(policy(Some(3600)), at(0));
        h.checked(at(10), Err("down".into()));
        assert!(h.protects(at(10 + 3600)));
        assert!(!h.protects(at(11 + 3600)));
        assert!(!h.status(at(5000)).protecting);
        h.checked(at(6000), Ok(()));
        assert!(h.protects(at(6000)), "protects again once healthy");
        let mut forever = TargetHealth::new(policy(None), at(0));
        forever.checked(at(1), Err("down".into()));
        assert!(forever.protects(at(10_000_000)));
    }
}
