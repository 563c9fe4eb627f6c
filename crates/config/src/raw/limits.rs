//! zrelay extension: the raw `limits` section of sink and source jobs.

use serde::Deserialize;

/// `limits` (zrelay extension): what a serving job accepts from its clients. Every key is
/// optional; phase 2 fills in the defaults.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_connections: Option<i64>,
    pub(crate) max_connections_per_client: Option<i64>,
    pub(crate) handshake_timeout: Option<String>,
    pub(crate) idle_timeout: Option<String>,
    pub(crate) frame_timeout: Option<String>,
    pub(crate) max_request_size: Option<String>,
    pub(crate) max_request_memory: Option<String>,
    pub(crate) max_estimate_concurrency: Option<i64>,
    pub(crate) max_steps_per_request: Option<i64>,
}
