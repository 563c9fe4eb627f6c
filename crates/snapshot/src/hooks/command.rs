//! The `command` hook (zrepl's `daemon/hooks/hook_type_command.go` and
//! `hook_logging.go`).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::{info, warn};

use super::{Capture, HookCtx, HookError};
use crate::report::HookEdge;

/// How long to wait for the output pipes after the command exited: a
/// background process it left behind may hold them open.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Longest line logged as one; longer output is split.
const MAX_LINE: usize = 64 * 1024;

/// The hook's environment on top of the daemon's (zrepl's `NewHookEnv`).
pub(super) fn hook_env(
    edge: HookEdge,
    ctx: &HookCtx<'_>,
    timeout: Duration,
) -> Vec<(String, String)> {
    vec![
        ("ZREPL_HOOKTYPE".into(), edge.hook_type().into()),
        ("ZREPL_FS".into(), ctx.fs.to_string()),
        ("ZREPL_SNAPNAME".into(), ctx.snapname.into()),
        (
            "ZREPL_DRYRUN".into(),
            if ctx.dry_run {
                "true".into()
            } else {
                String::new()
            },
        ),
        ("ZREPL_TIMEOUT".into(), timeout.as_secs().to_string()),
    ]
}

/// Run `path` for one edge; the result and the captured output.
pub(super) async fn run(
    path: &Path,
    timeout: Duration,
    edge: HookEdge,
    ctx: &HookCtx<'_>,
) -> (Result<(), HookError>, String) {
    run_command(CommandSpec {
        path,
        timeout,
        env: hook_env(edge, ctx, timeout),
        stdin: None,
        job: ctx.job,
        subject: ctx.fs.as_str(),
        edge: edge.hook_type(),
        log_max: ctx.log_max,
    })
    .await
}

/// One run of a command hook: snapshot hooks and the daemon's job hooks.
#[derive(Debug, Clone)]
pub struct CommandSpec<'a> {
    /// The absolute path; run without arguments.
    pub path: &'a Path,
    /// The whole process group is killed when this passes.
    pub timeout: Duration,
    /// Variables on top of the daemon's environment.
    pub env: Vec<(String, String)>,
    /// Written to the command's standard input (then closed); `None`: `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// For log lines: the job, what the hook runs for, and the edge or event.
    pub job: &'a str,
    /// For log lines: what the hook runs for (a filesystem, or the job).
    pub subject: &'a str,
    /// For log lines: the edge or event (`pre_snapshot`, `post_replication`).
    pub edge: &'static str,
    /// Bytes of combined output kept (the last ones).
    pub log_max: usize,
}

/// Run a command hook: its own process group, killed at the timeout; each
/// line of stdout logged at INFO, of stderr at WARN; the result and the
/// captured output. A non-zero exit is an error.
pub async fn run_command(spec: CommandSpec<'_>) -> (Result<(), HookError>, String) {
    let (path, timeout) = (spec.path, spec.timeout);
    let mut cmd = tokio::process::Command::new(path);
    cmd.envs(spec.env)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Err(HookError::Start {
                    path: path.to_path_buf(),
                    source: e,
                }),
                String::new(),
            )
        }
    };
    if let (Some(mut w), Some(input)) = (child.stdin.take(), spec.stdin) {
        // A hook that does not read its input must not block on it.
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = w.write_all(&input).await;
        });
    }
    let capture = Capture::shared(spec.log_max);
    let log = LineLog {
        job: spec.job.to_string(),
        fs: spec.subject.to_string(),
        hook: path.display().to_string(),
        edge: spec.edge,
    };
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, false, log.clone(), capture.clone())));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, true, log, capture.clone())));
    }
    let pgid = child.id();

    let result = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(HookError::Exit(status)),
        Ok(Err(e)) => Err(HookError::Wait {
            path: path.to_path_buf(),
            source: e,
        }),
        Err(_) => {
            kill_group(pgid);
            let _ = child.kill().await;
            Err(HookError::CommandTimeout(timeout))
        }
    };

    let aborts: Vec<_> = pumps.iter().map(|p| p.abort_handle()).collect();
    let drain = async {
        for p in pumps {
            let _ = p.await;
        }
    };
    if tokio::time::timeout(DRAIN_GRACE, drain).await.is_err() {
        aborts.iter().for_each(|a| a.abort());
    }
    let output = capture.lock().unwrap_or_else(|e| e.into_inner()).text();
    (result, output)
}

/// SIGKILL the hook's process group (it is its own group's leader).
fn kill_group(pgid: Option<u32>) {
    let pid = pgid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[derive(Clone)]
struct LineLog {
    job: String,
    fs: String,
    hook: String,
    edge: &'static str,
}

impl LineLog {
    fn log(&self, stderr: bool, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\n', '\r']);
        let (job, fs, hook, edge) = (&self.job, &self.fs, &self.hook, self.edge);
        if stderr {
            warn!(job, fs, hook, edge, stderr = %line, "hook output");
        } else {
            info!(job, fs, hook, edge, stdout = %line, "hook output");
        }
    }
}

/// Log `r` line by line and capture it.
async fn pump(
    mut r: impl AsyncRead + Unpin,
    stderr: bool,
    log: LineLog,
    capture: Arc<Mutex<Capture>>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        capture
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(&chunk[..n]);
        pending.extend_from_slice(&chunk[..n]);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            log.log(stderr, &pending[..=i]);
            pending.drain(..=i);
        }
        if pending.len() > MAX_LINE {
            log.log(stderr, &pending);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        log.log(stderr, &pending);
    }
}
