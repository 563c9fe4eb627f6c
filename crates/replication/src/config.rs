//! The driver's settings (zrepl's `replication` and `conflict_resolution`
//! keys, plus zrelay's watchdog and retry knobs).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zrelay_endpoint::Protection;
use zrelay_planner::InitialPolicy;

/// How a replication run behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverConfig {
    /// `replication.protection`.
    pub protection: Protection,
    /// `conflict_resolution.initial_replication`.
    pub initial: InitialPolicy,
    /// `replication.concurrency.steps`: steps running at once.
    pub steps: usize,
    /// `replication.concurrency.size_estimates`: dry sends running at once.
    pub size_estimates: usize,
    /// Attempts (plan + work) before giving up on temporary errors
    /// (zrepl's `ZREPL_REPLICATION_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Tries of one filesystem's step within an attempt.
    pub max_step_tries: u32,
    /// First wait after a temporary step error; doubles per error.
    pub retry_initial: Duration,
    /// Longest wait between retries.
    pub retry_max: Duration,
    /// Wait after a failed planning before planning again.
    pub planning_retry: Duration,
    /// A step that moves no byte for this long is aborted (temporary error).
    pub watchdog: Duration,
    /// Finished filesystems are committed together at most this long after
    /// the first of them finished.
    pub commit_window: Duration,
    /// zrelay extension (`replication.snapshot_filter`, zrepl #403): only
    /// sender snapshots whose name matches are replicated.
    pub snapshot_filter: Option<SnapshotFilter>,
}

/// `replication.snapshot_filter` is not a valid regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid replication.snapshot_filter regex {regex:?}: {source}")]
pub struct SnapshotFilterError {
    /// The configured expression.
    pub regex: String,
    /// The regex crate's complaint.
    #[source]
    pub source: regex::Error,
}

/// A predicate over short snapshot names.
pub type NameMatcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Which sender snapshots replication considers (zrelay extension).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotFilter {
    /// Names starting with this prefix.
    Prefix(String),
    /// Names matching this regular expression.
    Regex(String),
}

impl SnapshotFilter {
    /// A matcher for short snapshot names; an invalid regex is an error
    /// naming it.
    pub fn matcher(&self) -> Result<NameMatcher, SnapshotFilterError> {
        match self {
            SnapshotFilter::Prefix(p) => {
                let p = p.clone();
                Ok(Box::new(move |n: &str| n.starts_with(&p)))
            }
            SnapshotFilter::Regex(r) => {
                let re = regex::Regex::new(r).map_err(|source| SnapshotFilterError {
                    regex: r.clone(),
                    source,
                })?;
                Ok(Box::new(move |n: &str| re.is_match(n)))
            }
        }
    }
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            protection: Protection::default(),
            initial: InitialPolicy::default(),
            steps: 1,
            size_estimates: 4,
            max_attempts: 3,
            max_step_tries: 3,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            planning_retry: Duration::from_secs(10),
            watchdog: Duration::from_secs(600),
            commit_window: Duration::from_secs(30),
            snapshot_filter: None,
        }
    }
}

impl DriverConfig {
    /// The wait before try number `errors + 1`.
    pub fn backoff(&self, errors: u32) -> Duration {
        let factor = 1u32 << errors.saturating_sub(1).min(16);
        self.retry_initial
            .saturating_mul(factor)
            .min(self.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let c = DriverConfig {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
            ..DriverConfig::default()
        };
        let waits: Vec<u64> = (1..=5).map(|n| c.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
    }
}
