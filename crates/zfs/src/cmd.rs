//! Running `zfs` and `zpool`: one place that spawns them, logs every invocation
//! with its duration, keeps the list of running commands, and turns failures
//! into [`ZfsError`]s that carry stderr.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::error::{Result, ZfsError};
use crate::parse::{classify, StderrKind};

/// How much of a command's stderr is kept (the tail).
pub const STDERR_CAPTURE: usize = 32 * 1024;

/// A command line about to run: program plus arguments.
#[derive(Debug, Clone)]
pub struct CmdLine {
    program: String,
    args: Vec<OsString>,
}

impl CmdLine {
    /// A `program` invocation with no arguments yet.
    pub fn new(program: impl Into<String>) -> Self {
        CmdLine {
            program: program.into(),
            args: Vec::new(),
        }
    }

    /// Append one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(items.into_iter().map(Into::into));
        self
    }

    /// The verb: the first argument (`list`, `send`, ...).
    pub fn verb(&self) -> String {
        self.args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The program name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments.
    pub fn arg_list(&self) -> &[OsString] {
        &self.args
    }

    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args).kill_on_drop(true).stdin(Stdio::null());
        c
    }
}

/// How many bytes of one argument a rendered command line shows (in errors, logs and the
/// [`InvocationLog`]): longer arguments (a peer's resume token, a big batch) are cut, with
/// their length, by [`peer_text::show`](crate::peer_text::show).
pub const ARG_SHOWN: usize = 256;

/// How many bytes of a whole command line the [`InvocationLog`] keeps.
pub const LOG_CMDLINE_MAX: usize = 4096;

impl std::fmt::Display for CmdLine {
    /// Shell-like rendering; arguments with spaces are quoted. Each argument shows at
    /// most [`ARG_SHOWN`] bytes, and control characters are escaped, so a rendering is
    /// one line of bounded size whatever a peer put into an argument.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            let a = a.to_string_lossy();
            let a = if a.len() > ARG_SHOWN || a.chars().any(char::is_control) {
                std::borrow::Cow::Owned(crate::peer_text::show(&a, ARG_SHOWN))
            } else {
                a
            };
            if a.is_empty() || a.contains([' ', '\'', '"', '\t']) {
                write!(f, " '{}'", a.replace('\'', "'\\''"))?;
            } else {
                write!(f, " {a}")?;
            }
        }
        Ok(())
    }
}

/// `s` (already one escaped line) cut to at most `max` bytes on a character boundary,
/// with its full length noted when cut.
fn cut(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let len = s.len();
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("…({len} bytes)"));
    s
}

/// One finished invocation, as recorded by the [`InvocationLog`].
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `zfs` or `zpool` (or whatever binary was configured).
    pub program: String,
    /// The first argument.
    pub verb: String,
    /// The whole command line.
    pub cmdline: String,
    /// Wall time.
    pub duration: Duration,
    /// Whether it exited 0.
    pub success: bool,
}

/// A running invocation, for `zrelay status`.
#[derive(Debug, Clone)]
pub struct ActiveInvocation {
    /// The whole command line.
    pub cmdline: String,
    /// When it started.
    pub started: SystemTime,
}

/// Shared record of every zfs/zpool command: counts per verb, the running ones,
/// and the most recent finished ones. Cloning shares the record.
#[derive(Debug, Clone, Default)]
pub struct InvocationLog {
    inner: Arc<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    next_id: AtomicU64,
    total: AtomicU64,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    per_verb: BTreeMap<String, u64>,
    /// Wall time of the finished invocations, per verb.
    per_verb_time: BTreeMap<String, Duration>,
    active: BTreeMap<u64, ActiveInvocation>,
    recent: std::collections::VecDeque<Invocation>,
}

const RECENT_KEPT: usize = 256;

impl InvocationLog {
    /// Total invocations started since creation.
    pub fn total(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }

    /// Invocations per verb (`list`, `send`, ...).
    pub fn per_verb(&self) -> BTreeMap<String, u64> {
        self.inner.state.lock().unwrap().per_verb.clone()
    }

    /// Wall time of the finished invocations, per verb (overlapping
    /// invocations each count in full).
    pub fn per_verb_time(&self) -> BTreeMap<String, Duration> {
        self.inner.state.lock().unwrap().per_verb_time.clone()
    }

    /// Commands running now.
    pub fn active(&self) -> Vec<ActiveInvocation> {
        self.inner
            .state
            .lock()
            .unwrap()
            .active
            .values()
            .cloned()
            .collect()
    }

    /// The most recent finished invocations, oldest first.
    pub fn recent(&self) -> Vec<Invocation> {
        self.inner
            .state
            .lock()
            .unwrap()
            .recent
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn begin(&self, cmd: &CmdLine) -> ActiveGuard {
        let cmdline = cut(cmd.to_string(), LOG_CMDLINE_MAX);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.total.fetch_add(1, Ordering::Relaxed);
        let mut st = self.inner.state.lock().unwrap();
        *st.per_verb
            .entry(crate::peer_text::show(&cmd.verb(), ARG_SHOWN))
            .or_default() += 1;
        st.active.insert(
            id,
            ActiveInvocation {
                cmdline: cmdline.clone(),
                started: SystemTime::now(),
            },
        );
        tracing::debug!(cmd = %cmdline, "zfs command start");
        ActiveGuard {
            log: self.clone(),
            id,
            program: cmd.program().to_string(),
            verb: crate::peer_text::show(&cmd.verb(), ARG_SHOWN),
            cmdline,
            start: Instant::now(),
            success: false,
        }
    }
}

/// Marks an invocation active until dropped; on drop it records the duration.
pub(crate) struct ActiveGuard {
    log: InvocationLog,
    id: u64,
    program: String,
    verb: String,
    cmdline: String,
    start: Instant,
    success: bool,
}

impl ActiveGuard {
    pub(crate) fn succeeded(&mut self) {
        self.success = true;
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let duration = self.start.elapsed();
        tracing::debug!(cmd = %self.cmdline, ?duration, success = self.success, "zfs command end");
        let mut st = self.log.inner.state.lock().unwrap();
        st.active.remove(&self.id);
        *st.per_verb_time.entry(self.verb.clone()).or_default() += duration;
        if st.recent.len() == RECENT_KEPT {
            st.recent.pop_front();
        }
        st.recent.push_back(Invocation {
            program: std::mem::take(&mut self.program),
            verb: std::mem::take(&mut self.verb),
            cmdline: std::mem::take(&mut self.cmdline),
            duration,
            success: self.success,
        });
    }
}

/// Spawns zfs/zpool commands and records them.
#[derive(Debug, Clone)]
pub struct Runner {
    zfs: String,
    zpool: String,
    log: InvocationLog,
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new("zfs", "zpool")
    }
}

impl Runner {
    /// A runner for the given binaries.
    pub fn new(zfs: impl Into<String>, zpool: impl Into<String>) -> Self {
        Runner {
            zfs: zfs.into(),
            zpool: zpool.into(),
            log: InvocationLog::default(),
        }
    }

    /// A `zfs` command line.
    pub fn zfs(&self) -> CmdLine {
        CmdLine::new(self.zfs.clone())
    }

    /// A `zpool` command line.
    pub fn zpool(&self) -> CmdLine {
        CmdLine::new(self.zpool.clone())
    }

    /// The invocation record shared by every command of this runner.
    pub fn log(&self) -> &InvocationLog {
        &self.log
    }

    /// Run to completion and return stdout; a non-zero exit becomes
    /// [`ZfsError::Command`] with the stderr tail.
    pub async fn output(&self, cmd: &CmdLine) -> Result<String> {
        let (status, out, stderr) = self.output_unchecked(cmd).await?;
        if !status.success() {
            return Err(command_error(cmd, &status, stderr));
        }
        Ok(out)
    }

    /// Run to completion and return the exit status, stdout and the stderr
    /// tail, whatever the exit status.
    pub async fn output_unchecked(
        &self,
        cmd: &CmdLine,
    ) -> Result<(std::process::ExitStatus, String, String)> {
        self.output_with_stdin(cmd, None).await
    }

    /// [`Runner::output_unchecked`] that feeds `input` to the command's stdin
    /// (then closes it); with `None`, stdin is `/dev/null`.
    pub async fn output_with_stdin(
        &self,
        cmd: &CmdLine,
        input: Option<&[u8]>,
    ) -> Result<(std::process::ExitStatus, String, String)> {
        let mut guard = self.log.begin(cmd);
        let spawn_err = |source| ZfsError::Spawn {
            cmd: cmd.to_string(),
            source,
        };
        let mut command = cmd.command();
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let stdin = child.stdin.take();
        let feed = async move {
            if let (Some(mut w), Some(data)) = (stdin, input) {
                // a child that exits without reading everything is not our error:
                // its exit status and stderr tell what happened
                let _ = w.write_all(data).await;
                let _ = w.shutdown().await;
            }
        };
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut out = Vec::new();
        let (read, stderr, ()) =
            tokio::join!(stdout.read_to_end(&mut out), drain_bounded(stderr), feed);
        let status = child.wait().await.map_err(spawn_err)?;
        read.map_err(spawn_err)?;
        if status.success() {
            guard.succeeded();
        }
        Ok((status, String::from_utf8_lossy(&out).into_owned(), stderr))
    }
}

/// The error for a command that ran and failed.
pub(crate) fn command_error(
    cmd: &CmdLine,
    status: &std::process::ExitStatus,
    stderr: String,
) -> ZfsError {
    ZfsError::Command {
        cmd: cmd.to_string(),
        status: describe_status(status),
        kind: classify(&stderr),
        stderr: stderr.trim_end().to_string(),
    }
}

/// "exit code 1" or "killed by signal 9".
pub(crate) fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".to_string(),
    }
}

/// The last `max` bytes, lossily decoded.
pub(crate) fn tail_lossy(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Read a child's stderr to the end, keeping only the last [`STDERR_CAPTURE`]
/// bytes, so that a chatty child can never block on a full pipe.
pub(crate) async fn drain_bounded<R: AsyncRead + Unpin>(mut r: R) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_CAPTURE {
                    kept.drain(..kept.len() - STDERR_CAPTURE);
                }
            }
        }
    }
    tail_lossy(&kept, STDERR_CAPTURE)
}

/// The kind of a failed command's stderr, if `e` is a command failure.
pub fn stderr_kind(e: &ZfsError) -> Option<StderrKind> {
    match e {
        ZfsError::Command { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_spaces() {
        let c = CmdLine::new("zfs").arg("list").arg("pool/with space");
        assert_eq!(c.to_string(), "zfs list 'pool/with space'");
        assert_eq!(c.verb(), "list");
    }

    #[tokio::test]
    async fn runner_records_and_captures_stderr() {
        let r = Runner::new("sh", "sh");
        let ok = CmdLine::new("sh").args(["-c", "echo hi"]);
        assert_eq!(r.output(&ok).await.unwrap(), "hi\n");
        let bad = CmdLine::new("sh").args(["-c", "echo 'dataset does not exist' >&2; exit 1"]);
        let e = r.output(&bad).await.unwrap_err();
        assert_eq!(stderr_kind(&e), Some(StderrKind::DatasetDoesNotExist));
        assert!(e.to_string().contains("exit code 1"), "{e}");
        assert_eq!(r.log().total(), 2);
        assert_eq!(r.log().per_verb().get("-c"), Some(&2));
        assert!(r.log().active().is_empty());
        assert_eq!(r.log().recent().len(), 2);
        let spent = r.log().per_verb_time()["-c"];
        let sum: Duration = r.log().recent().iter().map(|i| i.duration).sum();
        assert_eq!(spent, sum);
    }

    #[tokio::test]
    async fn stdin_is_fed_and_closed() {
        let r = Runner::new("sh", "sh");
        let cat = CmdLine::new("sh").args(["-c", "cat; echo done"]);
        let (status, out, _) = r.output_with_stdin(&cat, Some(b"in\n")).await.unwrap();
        assert!(status.success());
        assert_eq!(out, "in\ndone\n");
        let (_, out, _) = r.output_with_stdin(&cat, None).await.unwrap();
        assert_eq!(out, "done\n");
    }

    #[tokio::test]
    async fn invocation_log_keeps_bounded_arguments() {
        let r = Runner::new("sh", "sh");
        // One argument may be at most 128 KiB on Linux (MAX_ARG_STRLEN).
        let token = "1-".to_string() + &"ab".repeat(32 << 10);
        let c = CmdLine::new("sh")
            .args(["-c", "exit 0", "x"])
            .arg(&token)
            .arg("a\nb");
        r.output(&c).await.unwrap();
        let line = &r.log().recent()[0].cmdline;
        assert!(line.len() < ARG_SHOWN + 100, "{}", line.len());
        assert!(
            line.contains(&format!("…({} bytes)", token.len())),
            "{line}"
        );
        assert!(line.contains("a\\nb") && !line.contains('\n'), "{line}");
        let shown = c.to_string();
        assert!(shown.len() < ARG_SHOWN + 100, "{}", shown.len());
        // Many long arguments: the whole line is bounded too.
        let many = CmdLine::new("sh")
            .args(["-c", "exit 0", "x"])
            .args(vec![token.clone(); 20]);
        r.output(&many).await.unwrap();
        let long = &r.log().recent()[1].cmdline;
        assert!(long.len() < LOG_CMDLINE_MAX + 32, "{}", long.len());
    }

    #[tokio::test]
    async fn huge_stderr_does_not_block() {
        let r = Runner::new("sh", "sh");
        let noisy =
            CmdLine::new("sh").args(["-c", "head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 3"]);
        let e = r.output(&noisy).await.unwrap_err();
        match e {
            ZfsError::Command { stderr, .. } => assert!(stderr.len() <= STDERR_CAPTURE),
            other => panic!("unexpected {other}"),
        }
    }
}
