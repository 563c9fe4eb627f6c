//! A push or pull job's `hooks` (zrelay extension, zrepl #394): commands
//! run before and after each replication invocation and each pruning.
//!
//! Each hook runs with the daemon's environment plus `ZRELAY_HOOK_EVENT`
//! (`pre_replication`, `post_replication`, `pre_pruning`, `post_pruning`),
//! `ZRELAY_JOB`, `ZRELAY_TIMEOUT` (whole seconds) and, after the fact,
//! `ZRELAY_RESULT` (`success` or `failure`) and `ZRELAY_FAILED_FILESYSTEMS`
//! (the failed filesystems, one per line); a `post_*` hook gets the
//! invocation's report (or the pruning reports) as JSON on standard input.
//! Hooks of one event run one after the other, in file order. A failing
//! hook is logged; a failing `pre_*` hook with `err_is_fatal` stops the
//! hooks after it and skips the invocation (or the pruning), which is
//! reported with the reason.

use std::path::Path;

use tracing::{info, warn};
use zrelay_config::{HookEvent, JobHook};
use zrelay_snapshot::hooks::{run_command, CommandSpec};

/// One job's hooks.
pub(crate) struct JobHooks {
    pub job: String,
    pub hooks: Vec<JobHook>,
    /// Bytes of a hook's output kept.
    pub log_max: usize,
}

/// What the `post_*` hooks are told.
pub(crate) struct Outcome<'a> {
    pub success: bool,
    pub failed: Vec<String>,
    pub json: &'a serde_json::Value,
}

impl JobHooks {
    /// Run the hooks of `event`. `Err(why)` when a fatal `pre_*` hook failed.
    pub async fn run(&self, event: HookEvent, outcome: Option<Outcome<'_>>) -> Result<(), String> {
        for h in self.hooks.iter().filter(|h| h.on.contains(&event)) {
            let mut env = vec![
                ("ZRELAY_HOOK_EVENT".to_string(), event.as_str().to_string()),
                ("ZRELAY_JOB".to_string(), self.job.clone()),
                (
                    "ZRELAY_TIMEOUT".to_string(),
                    h.timeout.as_secs().to_string(),
                ),
            ];
            let mut stdin = None;
            if let Some(o) = &outcome {
                let result = if o.success { "success" } else { "failure" };
                env.push(("ZRELAY_RESULT".into(), result.into()));
                env.push(("ZRELAY_FAILED_FILESYSTEMS".into(), o.failed.join("\n")));
                stdin = Some(serde_json::to_vec(o.json).unwrap_or_default());
            }
            let (res, _output) = run_command(CommandSpec {
                path: Path::new(&h.path),
                timeout: h.timeout,
                env,
                stdin,
                job: &self.job,
                subject: &self.job,
                edge: event.as_str(),
                log_max: self.log_max,
            })
            .await;
            match res {
                Ok(()) => {
                    info!(job = %self.job, hook = %h.path.display(), event = event.as_str(), "job hook done")
                }
                Err(e) if h.err_is_fatal && event.is_pre() => {
                    let why = format!("{} hook {} failed: {e}", event.as_str(), h.path.display());
                    warn!(job = %self.job, "{why}; skipped");
                    return Err(why);
                }
                Err(e) => {
                    warn!(job = %self.job, hook = %h.path.display(), event = event.as_str(), error = %e, "job hook failed")
                }
            }
        }
        Ok(())
    }
}
