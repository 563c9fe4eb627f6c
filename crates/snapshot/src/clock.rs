//! The snapshotter's notion of time, injectable so schedules can be tested
//! without waiting: [`SystemClock`] for the daemon, [`TokioClock`] for tests
//! under `tokio::time::pause()`.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// Wall-clock time and sleeping until a wall-clock instant.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Return once [`Clock::now`] is at or after `t` (at once if it already is).
    async fn sleep_until(&self, t: SystemTime);
}

/// The longest the [`SystemClock`] sleeps before looking at the wall clock
/// again (zrepl's `ZREPL_WALLCLOCKTIMER_MAX_DELAY`, 10s): a suspended
/// machine or a clock step is noticed within this delay.
pub const WALLCLOCK_MAX_DELAY: Duration = Duration::from_secs(10);

/// The system's wall clock; sleeps with tokio timers in steps of at most
/// [`WALLCLOCK_MAX_DELAY`], rechecking the wall clock after each.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    async fn sleep_until(&self, t: SystemTime) {
        loop {
            let Ok(left) = t.duration_since(SystemTime::now()) else {
                return;
            };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(WALLCLOCK_MAX_DELAY)).await;
        }
    }
}

/// A wall clock that starts at a given time and advances with tokio's
/// clock, so `tokio::time::pause()` and `advance()` move it.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `origin` now.
    pub fn starting_at(origin: SystemTime) -> TokioClock {
        TokioClock {
            origin,
            start: tokio::time::Instant::now(),
        }
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.origin + self.start.elapsed()
    }

    async fn sleep_until(&self, t: SystemTime) {
        let offset = t.duration_since(self.origin).unwrap_or_default();
        tokio::time::sleep_until(self.start + offset).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = TokioClock::starting_at(origin);
        assert_eq!(c.now(), origin);
        c.sleep_until(origin + Duration::from_secs(3600)).await;
        assert_eq!(c.now(), origin + Duration::from_secs(3600));
        c.sleep_until(origin).await; // in the past: returns at once
        assert_eq!(c.now(), origin + Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn system_clock_past_deadline_returns() {
        let c = SystemClock;
        c.sleep_until(c.now() - Duration::from_secs(5)).await;
        c.sleep_until(c.now() + Duration::from_millis(20)).await;
    }
}

/// A wall clock read from a file holding Unix seconds (a test hook: the
/// daemon uses it when `ZRELAY_TEST_CLOCK_FILE` is set, so end-to-end tests
/// can move the snapshotter through simulated periods). An unreadable or
/// malformed file reads as the epoch, which schedules nothing new.
#[derive(Debug, Clone)]
pub struct FileClock {
    path: std::path::PathBuf,
}

impl FileClock {
    /// A clock that reads `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> FileClock {
        FileClock { path: path.into() }
    }
}

#[async_trait]
impl Clock for FileClock {
    fn now(&self) -> SystemTime {
        let secs = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(0.0);
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs)
    }

    async fn sleep_until(&self, t: SystemTime) {
        while self.now() < t {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod file_clock_tests {
    use super::*;

    #[tokio::test]
    async fn reads_the_file_and_wakes_when_it_moves() {
        let dir = std::env::temp_dir().join(format!("zrelay-fileclock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("now");
        std::fs::write(&f, "1000").unwrap();
        let c = FileClock::new(&f);
        assert_eq!(c.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(1000));
        let target = SystemTime::UNIX_EPOCH + Duration::from_secs(4600);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.sleep_until(target).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "must wait for the file to move");
        std::fs::write(&f, "4600").unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woke up")
            .unwrap();
        std::fs::write(&f, "garbage").unwrap();
        assert_eq!(c.now(), SystemTime::UNIX_EPOCH);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
