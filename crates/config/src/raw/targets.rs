//! zrelay extension: the raw `targets` and `fan_out` sections of push jobs.

use serde::Deserialize;

use super::parts::{RawBandwidthLimit, RawProtection};
use super::RawConnect;

/// One entry of `targets`: where a fan-out push job replicates to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) name: String,
    pub(crate) connect: RawConnect,
    /// Overrides `send.bandwidth_limit` for this target.
    pub(crate) bandwidth_limit: Option<RawBandwidthLimit>,
    /// Overrides `replication.protection` for this target.
    pub(crate) protection: Option<RawProtection>,
}

/// `fan_out`: how a push job with `targets` drives them. Every key is optional.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFanOut {
    pub(crate) concurrency: Option<i64>,
    pub(crate) health_check_interval: Option<String>,
    pub(crate) health_check_timeout: Option<String>,
    pub(crate) backoff_start: Option<String>,
    pub(crate) backoff_max: Option<String>,
    pub(crate) protection_grace: Option<String>,
}

/// `replicas` of a push job. Every key is optional.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplicas {
    pub(crate) follow_renames: Option<bool>,
    pub(crate) delete_after: Option<String>,
}
