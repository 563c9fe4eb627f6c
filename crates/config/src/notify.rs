//! *zrelay extension* `global.notify`: a command told about failed
//! invocations and dead work records, rate limited.
//!
//! ```yaml
//! global:
//!   notify:
//!     command: /usr/local/bin/page-admins   # absolute; run without arguments
//!     timeout: 30s                          # default 30s
//!     min_interval: 10m                     # default 10m, per job and event
//! ```
//!
//! Invariants (checked once, here): the path is absolute, both durations
//! are positive.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::KeyPath;
use crate::validate::{Cx, R};

/// `global.notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// `command`: absolute.
    pub command: PathBuf,
    /// `timeout` (default 30s).
    pub timeout: Duration,
    /// `min_interval` (default 10m): at most one notification per job and
    /// event this often; the ones held back are counted in the next.
    pub min_interval: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    pub(crate) command: String,
    pub(crate) timeout: Option<String>,
    pub(crate) min_interval: Option<String>,
}

pub(crate) fn notify(cx: Cx<'_>, path: &KeyPath, raw: Option<&RawNotify>) -> R<Option<Notify>> {
    let Some(r) = raw else { return Ok(None) };
    Ok(Some(Notify {
        command: cx.command_path(&path.k("command"), &r.command, "notify")?,
        timeout: cx.go_duration(
            &path.k("timeout"),
            &r.timeout,
            Duration::from_secs(30),
            true,
        )?,
        min_interval: cx.go_duration(
            &path.k("min_interval"),
            &r.min_interval,
            Duration::from_secs(600),
            true,
        )?,
    }))
}
