//! The active side of `ssh+stdinserver`: runs the `ssh` binary, whose
//! stdin/stdout become the connection.
//!
//! The remote `authorized_keys` entry forces the command
//! `zrelay stdinserver IDENTITY`, which proxies to the serving daemon's unix
//! socket (see [`crate::stdinserver`]). The daemon writes [`BANNER`] first,
//! so a connect succeeds only once the whole chain is up; otherwise the error
//! carries ssh's exit status and stderr (e.g. `Permission denied (publickey).`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::{Conn, Connector, TransportError};

/// The line the serving daemon writes first on every stdinserver connection.
pub const BANNER: &str = "ZRELAY-STDINSERVER 1\n";
/// Environment variable overriding the ssh program (tests, unusual installs).
pub const SSH_PROGRAM_ENV: &str = "ZRELAY_SSH_PROGRAM";
/// How much of ssh's stderr is kept for error messages.
const STDERR_CAP: usize = 16 * 1024;

/// `connect: {type: ssh+stdinserver}`.
#[derive(Debug, Clone)]
pub struct SshConnector {
    program: PathBuf,
    /// The daemon's `PATH` when the connector was built (the only variable
    /// ssh inherits; read once, at startup).
    path: Option<std::ffi::OsString>,
    host: String,
    user: String,
    port: u16,
    identity_file: PathBuf,
    options: Vec<String>,
    dial_timeout: Duration,
}

fn check_word(key: &str, v: &str) -> Result<(), TransportError> {
    let why = if v.is_empty() {
        "it is empty"
    } else if v.starts_with('-') {
        "it starts with '-' (it would be taken for an ssh option)"
    } else if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "it contains whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(TransportError::config(format!(
        "{key}: \"{}\": {why}",
        v.escape_debug()
    )))
}

impl SshConnector {
    /// Validate the options; the identity file must be readable. The program
    /// is `ssh`, or `$ZRELAY_SSH_PROGRAM` if set.
    pub fn new(
        host: &str,
        user: &str,
        port: u16,
        identity_file: &Path,
        options: &[String],
        dial_timeout: Duration,
    ) -> Result<Self, TransportError> {
        check_word("connect.host", host)?;
        check_word("connect.user", user)?;
        if port == 0 {
            return Err(TransportError::config(
                "connect.port: 0 is not a valid port",
            ));
        }
        std::fs::File::open(identity_file).map_err(|e| {
            TransportError::config(format!(
                "connect.identity_file: cannot read {}: {e}",
                identity_file.display()
            ))
        })?;
        if let Some(o) = options.iter().find(|o| o.trim().is_empty()) {
            return Err(TransportError::config(format!(
                "connect.options: \"{}\": an ssh option cannot be empty",
                o.escape_debug()
            )));
        }
        let program = std::env::var_os(SSH_PROGRAM_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("ssh"), PathBuf::from);
        Ok(SshConnector {
            program,
            path: std::env::var_os("PATH"),
            host: host.to_string(),
            user: user.to_string(),
            port,
            identity_file: identity_file.to_path_buf(),
            options: options.to_vec(),
            dial_timeout,
        })
    }

    /// Run `program` instead of `ssh` (same arguments).
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// The arguments given to ssh:
    /// `-p PORT -T -i FILE -o BatchMode=yes [-o OPT]... -l USER HOST`.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "-p".into(),
            self.port.to_string().into(),
            "-T".into(),
            "-i".into(),
            self.identity_file.clone().into(),
            "-o".into(),
            "BatchMode=yes".into(),
        ];
        for o in &self.options {
            a.push("-o".into());
            a.push(o.into());
        }
        a.extend([
            "-l".into(),
            self.user.clone().into(),
            self.host.clone().into(),
        ]);
        a
    }

    fn peer(&self) -> String {
        format!("ssh+stdinserver {}@{}:{}", self.user, self.host, self.port)
    }
}

/// Drain ssh's stderr, keeping the first [`STDERR_CAP`] bytes.
fn capture_stderr(
    stderr: Option<tokio::process::ChildStderr>,
) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let task = tokio::spawn(async move {
        let Some(mut stderr) = stderr else { return };
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let mut b = b.lock().expect("stderr buffer");
            let room = STDERR_CAP.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..n.min(room)]);
        }
    });
    (buf, task)
}

/// Why no banner arrived.
enum Failure {
    /// ssh's stdout ended (ssh is exiting): worth waiting for its status.
    Ended(String),
    /// Something else came, or reading failed: ssh is still running.
    Bad(String),
    /// Nothing within the dial timeout.
    Timeout,
}

async fn read_banner(r: &mut BufReader<ChildStdout>) -> Result<(), Failure> {
    let mut line = Vec::new();
    let limit = BANNER.len() as u64 + 64;
    (&mut *r)
        .take(limit)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| Failure::Bad(format!("reading ssh's output: {e}")))?;
    if line.is_empty() {
        return Err(Failure::Ended(
            "ssh ended before the stdinserver banner arrived".into(),
        ));
    }
    if line != BANNER.as_bytes() {
        return Err(Failure::Bad(format!(
            "expected the banner {:?}, got {:?} (does the remote authorized_keys entry force the command `zrelay stdinserver IDENTITY`?)",
            BANNER,
            String::from_utf8_lossy(&line)
        )));
    }
    Ok(())
}

#[async_trait]
impl Connector for SshConnector {
    async fn connect(&self) -> Result<Conn, TransportError> {
        let peer = self.peer();
        let mut cmd = Command::new(&self.program);
        cmd.args(self.args())
            // As zrepl: no agent (SSH_AUTH_SOCK) or other inherited settings;
            // PATH only, so that ssh and its ProxyCommand helpers are found.
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = &self.path {
            cmd.env("PATH", path);
        }
        let mut child = cmd.spawn().map_err(|e| {
            TransportError::io(format!("{peer}: cannot run {}", self.program.display()), e)
        })?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let (stderr, stderr_task) = capture_stderr(child.stderr.take());

        let failure = match tokio::time::timeout(self.dial_timeout, read_banner(&mut stdout)).await
        {
            Ok(Ok(())) => {
                return Ok(Box::new(SshConn {
                    reader: stdout,
                    writer: stdin,
                    _child: child,
                }))
            }
            Ok(Err(f)) => f,
            Err(_) => Failure::Timeout,
        };
        // If ssh is exiting, give it a moment to say why; otherwise kill it.
        let grace = match failure {
            Failure::Ended(_) => Duration::from_secs(2),
            _ => Duration::ZERO,
        };
        let status = match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                let _ = child.kill().await;
                None
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr_task).await;
        let stderr = String::from_utf8_lossy(&stderr.lock().expect("stderr buffer"))
            .trim()
            .to_string();
        Err(handshake_error(
            peer,
            failure,
            status,
            &stderr,
            self.dial_timeout,
        ))
    }

    fn describe(&self) -> String {
        self.peer()
    }
}

fn handshake_error(
    peer: String,
    failure: Failure,
    status: Option<ExitStatus>,
    stderr: &str,
    dial_timeout: Duration,
) -> TransportError {
    let status = match status {
        Some(s) => format!("ssh exited with {s}"),
        None => "ssh was killed".to_string(),
    };
    let stderr_part = if stderr.is_empty() {
        "no output on stderr".to_string()
    } else {
        format!("ssh stderr: {stderr}")
    };
    let reason = match failure {
        Failure::Ended(r) | Failure::Bad(r) => r,
        Failure::Timeout => {
            return TransportError::timeout(
                format!("{peer}: waiting for the stdinserver banner ({status}; {stderr_part})"),
                dial_timeout,
            )
        }
    };
    let reason = format!("{reason}; {status}; {stderr_part}");
    if stderr.contains("Permission denied") || stderr.contains("Host key verification failed") {
        TransportError::Auth { peer, reason }
    } else {
        TransportError::Handshake { peer, reason }
    }
}

/// ssh's stdout and stdin as one stream; dropping it kills ssh.
struct SshConn {
    reader: BufReader<ChildStdout>,
    /// `None` once shut down: closing ssh's stdin is the half-close.
    writer: Option<ChildStdin>,
    _child: Child,
}

impl AsyncRead for SshConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "ssh connection shut down for writing",
    )
}

impl AsyncWrite for SshConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().writer.as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, buf),
            None => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().writer.as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(w) = this.writer.as_mut() {
            ready!(Pin::new(w).poll_flush(cx))?;
            this.writer = None;
        }
        Poll::Ready(Ok(()))
    }
}
