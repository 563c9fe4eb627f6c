//! Child processes that stream: `zfs send` (its stdout is an [`AsyncRead`]) and
//! `zfs recv` (its stdin is an [`AsyncWrite`]).
//!
//! Invariants:
//! - stderr is drained concurrently into a bounded buffer, so a child never
//!   blocks on a full stderr pipe; its tail ends up in the error.
//! - A child is killed when its stream is dropped, and reaped by a task.
//! - `close`/`finish` are idempotent. A send stream closed before EOF kills
//!   `zfs send`; the resulting EPIPE or signal is expected, not an error.
//! - A send stream reports EOF only after `zfs send` exited 0; a failed send
//!   surfaces as a read error carrying its stderr, never as a short stream.

use std::io;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::{ready, Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::cmd::{command_error, drain_bounded, CmdLine, Runner};
use crate::error::{Result, ZfsError};
use crate::parse::StderrKind;

/// A `zfs send` byte stream.
#[async_trait]
pub trait SendStream: AsyncRead + Send + Unpin {
    /// Stop the stream: kill the producer if it still runs and reap it.
    /// Idempotent; closing before EOF is not an error.
    async fn close(&mut self) -> Result<()>;
}

/// The input of a `zfs recv`.
#[async_trait]
pub trait RecvSink: AsyncWrite + Send + Unpin {
    /// End the input and wait for the receive to finish. Idempotent: later
    /// calls return the first call's outcome as Ok or a `Closed` error.
    async fn finish(&mut self) -> Result<()>;
    /// Give up: end the input and make sure the receive has stopped, keeping
    /// whatever resumable state it saved.
    async fn abort(&mut self);
}

type Exit = io::Result<(ExitStatus, String)>;

/// Spawn `cmd` with the chosen pipe, a stderr drainer, and a reaper task that
/// kills it when `kill` fires.
fn spawn_streaming(
    runner: &Runner,
    cmd: &CmdLine,
    stdin: Stdio,
    stdout: Stdio,
) -> Result<(Pipes, oneshot::Receiver<Exit>, CancellationToken)> {
    let mut guard = runner.log().begin(cmd);
    let mut waiter = cmd
        .command()
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ZfsError::Spawn {
            cmd: cmd.to_string(),
            source,
        })?;
    let stderr = waiter.stderr.take().expect("piped stderr");
    let pid = waiter.id();
    let pipes = Pipes {
        stdin: waiter.stdin.take(),
        stdout: waiter.stdout.take(),
    };
    if let Some(p) = &pipes.stdin {
        widen_pipe(p);
    }
    if let Some(p) = &pipes.stdout {
        widen_pipe(p);
    }
    let kill = CancellationToken::new();
    let (tx, rx) = oneshot::channel();
    let k = kill.clone();
    tokio::spawn(async move {
        let drain = tokio::spawn(drain_bounded(stderr));
        let status = tokio::select! {
            s = waiter.wait() => s,
            _ = k.cancelled() => {
                let _ = waiter.start_kill();
                waiter.wait().await
            }
        };
        let stderr = drain.await.unwrap_or_default();
        if matches!(&status, Ok(s) if s.success()) {
            guard.succeeded();
        }
        drop(guard);
        let _ = tx.send(status.map(|s| (s, stderr)));
    });
    tracing::trace!(?pid, cmd = %cmd, "streaming child spawned");
    Ok((pipes, rx, kill))
}

/// What a stream pipe is widened to: Linux's default 64 KiB makes `zfs send`,
/// zrelay and `zfs recv` take turns every 64 KiB; 1 MiB (the unprivileged
/// limit, `/proc/sys/fs/pipe-max-size`) lets each run longer.
const PIPE_SIZE: usize = 1 << 20;

/// Widen a stream pipe to [`PIPE_SIZE`]; best effort (a kernel or limit that
/// refuses leaves the default, which works, only slower).
fn widen_pipe(p: &impl std::os::fd::AsFd) {
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(p, PIPE_SIZE) {
        tracing::debug!(error = %e, "could not widen a stream pipe");
    }
}

/// The pipes a streaming child was started with; the reaper task owns the child.
struct Pipes {
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
}

/// How a finished child's stream ended, remembered so that every later poll
/// or call reports the first verdict. [`ZfsError`] is not `Clone`, so a
/// failure is kept as the text the later errors repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The child (and any check after it) succeeded.
    Succeeded,
    /// It failed; the first error's message.
    Failed(String),
}

impl Verdict {
    /// The verdict of `res`.
    pub(crate) fn of<T, E: std::fmt::Display>(res: &std::result::Result<T, E>) -> Self {
        match res {
            Ok(_) => Verdict::Succeeded,
            Err(e) => Verdict::Failed(e.to_string()),
        }
    }
}

enum Outcome {
    Running(oneshot::Receiver<Exit>),
    Done(Verdict),
}

impl Outcome {
    /// Poll the reaper; `Ok(())` for a clean exit, else a read error whose
    /// message names the command.
    fn poll_exit(&mut self, cx: &mut Context<'_>, cmd: &CmdLine) -> Poll<io::Result<()>> {
        if let Outcome::Running(rx) = self {
            let verdict = match ready!(Pin::new(rx).poll(cx)) {
                Ok(Ok((status, _))) if status.success() => Verdict::Succeeded,
                Ok(Ok((status, stderr))) => {
                    Verdict::Failed(command_error(cmd, &status, stderr).to_string())
                }
                Ok(Err(e)) => Verdict::Failed(format!("waiting for `{cmd}`: {e}")),
                Err(_) => Verdict::Failed(format!("`{cmd}` was lost")),
            };
            *self = Outcome::Done(verdict);
        }
        match self {
            Outcome::Done(Verdict::Succeeded) => Poll::Ready(Ok(())),
            Outcome::Done(Verdict::Failed(msg)) => Poll::Ready(Err(io::Error::other(msg.clone()))),
            Outcome::Running(_) => unreachable!(),
        }
    }

    async fn wait_error(&mut self, cmd: &CmdLine) -> Result<()> {
        if let Outcome::Running(rx) = self {
            let res = match rx.await {
                Ok(Ok((status, _))) if status.success() => Ok(()),
                Ok(Ok((status, stderr))) => Err(command_error(cmd, &status, stderr)),
                Ok(Err(e)) => Err(ZfsError::Stream {
                    what: cmd.to_string(),
                    source: e,
                }),
                Err(_) => Err(ZfsError::Closed(cmd.to_string())),
            };
            *self = Outcome::Done(Verdict::of(&res));
            return res;
        }
        match self {
            Outcome::Done(Verdict::Succeeded) => Ok(()),
            _ => Err(ZfsError::Closed(cmd.to_string())),
        }
    }
}

use std::future::Future;

/// `zfs send` as a byte stream.
pub struct ProcSendStream {
    cmd: CmdLine,
    stdout: Option<ChildStdout>,
    outcome: Outcome,
    kill: CancellationToken,
    closed: bool,
}

impl ProcSendStream {
    /// Start `cmd` (a `zfs send ...`) with its stdout as the stream.
    pub fn spawn(runner: &Runner, cmd: CmdLine) -> Result<Self> {
        let (pipes, rx, kill) = spawn_streaming(runner, &cmd, Stdio::null(), Stdio::piped())?;
        Ok(ProcSendStream {
            cmd,
            stdout: pipes.stdout,
            outcome: Outcome::Running(rx),
            kill,
            closed: false,
        })
    }
}

impl AsyncRead for ProcSendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(io::Error::other(ZfsError::Closed(
                this.cmd.to_string(),
            ))));
        }
        if let Some(out) = this.stdout.as_mut() {
            let before = buf.filled().len();
            ready!(Pin::new(out).poll_read(cx, buf))?;
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
            this.stdout = None; // EOF on the pipe: the verdict is the exit status
        }
        this.outcome.poll_exit(cx, &this.cmd)
    }
}

#[async_trait]
impl SendStream for ProcSendStream {
    async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.stdout = None;
        self.kill.cancel();
        // reap; an early close kills the producer, which is what was asked for
        let _ = self.outcome.wait_error(&self.cmd).await;
        Ok(())
    }
}

impl Drop for ProcSendStream {
    fn drop(&mut self) {
        self.kill.cancel();
    }
}

/// `zfs recv` fed through its stdin.
pub struct ProcRecvSink {
    cmd: CmdLine,
    fs: String,
    stdin: Option<ChildStdin>,
    outcome: Outcome,
    kill: CancellationToken,
}

impl ProcRecvSink {
    /// Start `cmd` (a `zfs recv ...` into `fs`) reading from its stdin.
    pub fn spawn(runner: &Runner, cmd: CmdLine, fs: String) -> Result<Self> {
        let (pipes, rx, kill) = spawn_streaming(runner, &cmd, Stdio::piped(), Stdio::null())?;
        Ok(ProcRecvSink {
            cmd,
            fs,
            stdin: pipes.stdin,
            outcome: Outcome::Running(rx),
            kill,
        })
    }
}

fn closed_pipe(cmd: &CmdLine) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("`{cmd}` no longer reads its input"),
    )
}

impl AsyncWrite for ProcRecvSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.stdin.as_mut() {
            Some(s) => Pin::new(s).poll_write(cx, buf),
            None => Poll::Ready(Err(closed_pipe(&this.cmd))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.stdin.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.stdin.as_mut() {
            Some(s) => {
                let r = ready!(Pin::new(s).poll_shutdown(cx));
                this.stdin = None;
                Poll::Ready(r)
            }
            None => Poll::Ready(Ok(())),
        }
    }
}

#[async_trait]
impl RecvSink for ProcRecvSink {
    async fn finish(&mut self) -> Result<()> {
        self.stdin = None; // EOF for zfs recv
        self.outcome
            .wait_error(&self.cmd)
            .await
            .map_err(|e| match e {
                ZfsError::Command {
                    kind: StderrKind::DestroyOrOverwriteEncrypted,
                    stderr,
                    ..
                } => ZfsError::RecvDestroyOrOverwriteEncrypted {
                    fs: self.fs.clone(),
                    stderr,
                },
                other => other,
            })
    }

    async fn abort(&mut self) {
        self.stdin = None;
        let wait = self.outcome.wait_error(&self.cmd);
        if tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .is_err()
        {
            self.kill.cancel();
            let _ = self.outcome.wait_error(&self.cmd).await;
        }
    }
}

impl Drop for ProcRecvSink {
    fn drop(&mut self) {
        self.kill.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stream_pipes_are_widened() {
        let r = Runner::new("sh", "sh");
        let mut send =
            ProcSendStream::spawn(&r, CmdLine::new("sh").args(["-c", "sleep 5"])).unwrap();
        let out = send.stdout.as_ref().expect("stdout");
        assert!(rustix::pipe::fcntl_getpipe_size(out).unwrap() >= PIPE_SIZE);
        send.close().await.unwrap();
        let mut recv = ProcRecvSink::spawn(
            &r,
            CmdLine::new("sh").args(["-c", "cat >/dev/null"]),
            "test".into(),
        )
        .unwrap();
        let inp = recv.stdin.as_ref().expect("stdin");
        assert!(rustix::pipe::fcntl_getpipe_size(inp).unwrap() >= PIPE_SIZE);
        recv.finish().await.unwrap();
    }
}
