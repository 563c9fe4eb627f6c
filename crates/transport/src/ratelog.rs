//! Logging a peer cannot flood: an event that repeats (a refused connection, a failed
//! accept) is logged once per interval, with how often it happened since the last line.
//!
//! Invariants:
//! - [`RateLog::hit`] says "log now" at most once per interval; the first event is always
//!   logged, and each line carries the number of events it stands for.
//! - [`Backoff`] waits grow from `min` by doubling up to `max` while failures go on,
//!   and start over after a success, so an exhausted resource is polled, not spun on.
//! - [`KeyedRateLog`] logs each distinct key (a refusal's reason) once per interval, holds
//!   at most `max_keys` keys, and lets further keys share one overflow log: a peer that
//!   varies its reason still gets at most `max_keys + 1` lines per interval.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often a repeating refusal or accept failure is logged.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counts events and says when one is due for a log line.
#[derive(Debug)]
pub struct RateLog {
    interval: Duration,
    last: Option<Instant>,
    count: u64,
}

impl RateLog {
    /// A log of at most one line per `interval`.
    pub fn new(interval: Duration) -> Self {
        RateLog {
            interval,
            last: None,
            count: 0,
        }
    }

    /// Count one event; `Some(n)` when a line is due, `n` being the events since the last
    /// line (this one included).
    pub fn hit(&mut self) -> Option<u64> {
        self.hit_at(Instant::now())
    }

    /// [`RateLog::hit`] at `now`.
    pub fn hit_at(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.count))
            }
        }
    }
}

impl Default for RateLog {
    fn default() -> Self {
        RateLog::new(LOG_INTERVAL)
    }
}

/// Growing waits after repeated failures.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits from `min`, doubling, up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait after one more failure.
    pub fn failed(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// A success: the next failure waits `min` again.
    pub fn succeeded(&mut self) {
        self.next = self.min;
    }
}

/// A [`RateLog`] per key, so that different refusals are each seen while a repeated one
/// is counted.
#[derive(Debug)]
pub struct KeyedRateLog {
    interval: Duration,
    max_keys: usize,
    logs: HashMap<String, RateLog>,
    overflow: RateLog,
}

impl KeyedRateLog {
    /// At most one line per key and `interval`, for at most `max_keys` keys at once.
    pub fn new(interval: Duration, max_keys: usize) -> Self {
        KeyedRateLog {
            interval,
            max_keys,
            logs: HashMap::new(),
            overflow: RateLog::new(interval),
        }
    }

    /// Count one event of `key`; `Some(n)` when a line is due (see [`RateLog::hit`]).
    pub fn hit(&mut self, key: &str) -> Option<u64> {
        self.hit_at(key, Instant::now())
    }

    /// [`KeyedRateLog::hit`] at `now`.
    pub fn hit_at(&mut self, key: &str, now: Instant) -> Option<u64> {
        if let Some(l) = self.logs.get_mut(key) {
            return l.hit_at(now);
        }
        if self.logs.len() >= self.max_keys {
            // forget keys whose last line is an interval old
            let interval = self.interval;
            self.logs
                .retain(|_, l| l.last.is_some_and(|t| now.duration_since(t) < interval));
        }
        if self.logs.len() >= self.max_keys {
            return self.overflow.hit_at(now);
        }
        let mut l = RateLog::new(self.interval);
        let due = l.hit_at(now);
        self.logs.insert(key.to_owned(), l);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_log_shows_each_reason_and_bounds_varied_ones() {
        let mut l = KeyedRateLog::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        assert_eq!(l.hit_at("no certificate", t0), Some(1));
        assert_eq!(l.hit_at("CN 'x' not allowed", t0), Some(1));
        assert_eq!(l.hit_at("no certificate", t0), None);
        // a peer varying its reason: one more key, then all share the overflow log
        let lines = (0..1000)
            .filter(|i| l.hit_at(&format!("CN '{i}'"), t0).is_some())
            .count();
        assert_eq!(lines, 2, "one new key and one overflow line");
        // an interval later, old keys make room again
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.hit_at("no certificate", t1), Some(2));
        assert_eq!(l.hit_at("fresh reason", t1), Some(1));
    }

    #[test]
    fn one_line_per_interval_with_a_count() {
        let mut l = RateLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.hit_at(t0), Some(1));
        for i in 1..100 {
            assert_eq!(l.hit_at(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(l.hit_at(t0 + Duration::from_secs(10)), Some(100));
        assert_eq!(l.hit_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(l.hit_at(t0 + Duration::from_secs(30)), Some(2));
    }

    #[test]
    fn backoff_doubles_to_its_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        let waits: Vec<u128> = (0..7).map(|_| b.failed().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.failed(), Duration::from_millis(50));
    }
}
