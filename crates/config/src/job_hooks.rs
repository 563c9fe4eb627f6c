//! *zrelay extension* `hooks` of push and pull jobs: commands run around a
//! replication invocation and around pruning (zrepl #394).
//!
//! ```yaml
//! hooks:
//! - path: /usr/local/bin/notify      # absolute; run without arguments
//!   on: [pre_replication, post_replication, pre_pruning, post_pruning]
//!   timeout: 30s                     # default 30s; the process group is killed
//!   err_is_fatal: true               # pre_* only: a failure skips what follows
//! ```
//!
//! Invariants (checked once, here): the path is absolute, `on` names at
//! least one known event and none twice, the timeout is positive, and
//! `err_is_fatal` is only set on a hook with a `pre_*` event.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::KeyPath;
use crate::validate::{Cx, R};

/// When a job hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookEvent {
    /// Before a replication invocation.
    PreReplication,
    /// After it, with its result.
    PostReplication,
    /// Before the pruning that follows an invocation (or `zrelay prune`'s).
    PrePruning,
    /// After it, with its result.
    PostPruning,
}

impl HookEvent {
    /// The name in the configuration and in `ZRELAY_HOOK_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PreReplication => "pre_replication",
            HookEvent::PostReplication => "post_replication",
            HookEvent::PrePruning => "pre_pruning",
            HookEvent::PostPruning => "post_pruning",
        }
    }

    /// Whether this is a `pre_*` event (one whose failure can be fatal).
    pub fn is_pre(self) -> bool {
        matches!(self, HookEvent::PreReplication | HookEvent::PrePruning)
    }

    const ALL: [HookEvent; 4] = [
        HookEvent::PreReplication,
        HookEvent::PostReplication,
        HookEvent::PrePruning,
        HookEvent::PostPruning,
    ];
}

/// One job hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHook {
    /// `path`: absolute.
    pub path: PathBuf,
    /// `on`: the events it runs at, in file order, no repeats.
    pub on: Vec<HookEvent>,
    /// `timeout` (default 30s).
    pub timeout: Duration,
    /// `err_is_fatal` (default false): a failing `pre_*` run skips the
    /// invocation (or the pruning).
    pub err_is_fatal: bool,
}

/// The default timeout of a job hook.
pub const JOB_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJobHook {
    pub(crate) path: String,
    pub(crate) on: Vec<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) err_is_fatal: Option<bool>,
}

/// `hooks` of a push or pull job.
pub(crate) fn job_hooks(cx: Cx<'_>, path: &KeyPath, raw: &[RawJobHook]) -> R<Vec<JobHook>> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, h) in raw.iter().enumerate() {
        let p = path.i(i);
        let command = cx.command_path(&p.k("path"), &h.path, "hook")?;
        let mut on = Vec::new();
        for (j, e) in h.on.iter().enumerate() {
            let Some(ev) = HookEvent::ALL.into_iter().find(|x| x.as_str() == e) else {
                return Err(cx.err(
                    &p.k("on").i(j),
                    format!(
                        "unknown event \"{}\"; the events are pre_replication, post_replication, pre_pruning, post_pruning",
                        e.escape_debug()
                    ),
                ));
            };
            if on.contains(&ev) {
                return Err(cx.err(&p.k("on").i(j), format!("{e} is listed twice")));
            }
            on.push(ev);
        }
        if on.is_empty() {
            return Err(cx.err(&p.k("on"), "names no event"));
        }
        let err_is_fatal = h.err_is_fatal.unwrap_or(false);
        if err_is_fatal && !on.iter().any(|e| e.is_pre()) {
            return Err(cx.err(
                &p.k("err_is_fatal"),
                "only a pre_replication or pre_pruning hook can be fatal",
            ));
        }
        out.push(JobHook {
            path: command,
            on,
            timeout: cx.go_duration(&p.k("timeout"), &h.timeout, JOB_HOOK_TIMEOUT, true)?,
            err_is_fatal,
        });
    }
    Ok(out)
}
