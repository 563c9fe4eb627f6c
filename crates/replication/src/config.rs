//! The driver's settings (zrepl's `replication` and `conflict_resolution`
//! keys, plus zrelay's watchdog and retry knobs).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zrelay_endpoint::Protection;
use zrelay_planner::InitialPolicy;

/// Steps running at once when `replication.concurrency.steps` is not set.
/// zrepl runs one at a time; zrelay runs steps of different filesystems in
/// parallel by default (a child still waits for its parent's initial step).
pub const DEFAULT_STEPS: usize = 4;

/// How a replication run behaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverConfig {
    /// `replication.protection`.
    pub protection: Protection,
    /// `conflict_resolution.initial_replication`.
    pub initial: InitialPolicy,
    /// `replication.concurrency.steps`: steps running at once (default
    /// [`DEFAULT_STEPS`]; zrepl's default is 1).
    pub steps: usize,
    /// `replication.concurrency.size_estimates`: dry-run sends (`zfs send
    /// -nvP`) running at once. 0 (the default when the key is not set): no
    /// dry run, the sizes come from the properties the send validation
    /// reads anyway.
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
    /// Filesystems (sender's names) not to replicate in this run, with the
    /// reason (the daemon's work queue: dead records wait for an operator).
    /// Reported as skipped; they block no other filesystem.
    pub skip: std::collections::BTreeMap<String, String>,
}

/// Which sender snapshots replication considers (zrelay extension),
/// compiled once when the configuration is validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "FilterRepr", into = "FilterRepr")]
pub enum SnapshotFilter {
    /// Names starting with this prefix.
    Prefix(String),
    /// Names matching this regular expression.
    Regex(regex::Regex),
}

/// An invalid `replication.snapshot_filter` regex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid replication.snapshot_filter regex {regex:?}: {reason}")]
pub struct InvalidFilter {
    /// The regex as written (truncated).
    pub regex: String,
    /// The regex crate's message.
    pub reason: String,
}

impl SnapshotFilter {
    /// The filter of names matching `re`.
    ///
    /// # Errors
    /// `re` is not a valid regular expression.
    pub fn regex(re: &str) -> Result<SnapshotFilter, InvalidFilter> {
        regex::Regex::new(re)
            .map(SnapshotFilter::Regex)
            .map_err(|e| InvalidFilter {
                regex: zrelay_zfs::peer_text::show(re, zrelay_zfs::peer_text::PEER_TEXT_MAX),
                reason: e.to_string(),
            })
    }

    /// Whether the short snapshot name `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            SnapshotFilter::Prefix(p) => name.starts_with(p.as_str()),
            SnapshotFilter::Regex(re) => re.is_match(name),
        }
    }

    fn repr(&self) -> FilterRepr {
        match self {
            SnapshotFilter::Prefix(p) => FilterRepr::Prefix(p.clone()),
            SnapshotFilter::Regex(re) => FilterRepr::Regex(re.as_str().to_string()),
        }
    }
}

impl PartialEq for SnapshotFilter {
    fn eq(&self, other: &Self) -> bool {
        self.repr() == other.repr()
    }
}

impl Eq for SnapshotFilter {}

/// How a [`SnapshotFilter`] is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FilterRepr {
    Prefix(String),
    Regex(String),
}

impl TryFrom<FilterRepr> for SnapshotFilter {
    type Error = InvalidFilter;
    fn try_from(r: FilterRepr) -> Result<Self, InvalidFilter> {
        match r {
            FilterRepr::Prefix(p) => Ok(SnapshotFilter::Prefix(p)),
            FilterRepr::Regex(re) => SnapshotFilter::regex(&re),
        }
    }
}

impl From<SnapshotFilter> for FilterRepr {
    fn from(f: SnapshotFilter) -> FilterRepr {
        f.repr()
    }
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            protection: Protection::default(),
            initial: InitialPolicy::default(),
            steps: DEFAULT_STEPS,
            size_estimates: 0,
            max_attempts: 3,
            max_step_tries: 3,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            planning_retry: Duration::from_secs(10),
            watchdog: Duration::from_secs(600),
            commit_window: Duration::from_secs(30),
            snapshot_filter: None,
            skip: std::collections::BTreeMap::new(),
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
