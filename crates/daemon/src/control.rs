//! The control socket: a unix socket, owned by the daemon's user with mode
//! 0600 in a directory only that user can enter, that serves the CLI
//! (`zrelay signal`, `zrelay status`). One JSON request per connection, one
//! JSON response line back.
//!
//! Invariants:
//! - A peer whose uid is neither the daemon's nor root is refused before its
//!   request is read.
//! - A request names a job that exists, or gets an error naming the job and
//!   listing the jobs that do exist.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::DaemonError;
use crate::jobs::Jobs;
use crate::status::DaemonStatus;

/// The longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// What the CLI can ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The daemon's version.
    Version,
    /// Every job's status.
    Status,
    /// Signal a job.
    Signal {
        /// The job's name.
        job: String,
        /// What to do.
        signal: Signal,
        /// Answer only when the invocation this signal triggers has finished.
        wait: bool,
    },
    /// Prune a job now, or only say what would be destroyed and why each
    /// survivor survives.
    Prune {
        /// The job's name.
        job: String,
        /// Destroy nothing.
        dry_run: bool,
    },
}

/// Signals a job understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Replicate (and prune) now.
    Wakeup,
    /// Abort the current invocation.
    Reset,
    /// Take a snapshot now (zrelay extension, zrepl #888).
    Snapshot,
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// The daemon's version.
    Version {
        /// zrelay's version.
        version: String,
    },
    /// The daemon's status.
    Status(Box<DaemonStatus>),
    /// The signal was delivered.
    Signalled(Box<crate::status::Signalled>),
    /// Pruning reports, one per side.
    Pruned {
        /// The reports.
        reports: Vec<zrelay_pruning::PruneReport>,
        /// A push job's replica judgements (`replicas` rules), one per target.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replicas: Vec<crate::jobs::replicas::ReplicaReport>,
    },
    /// The request failed.
    Error {
        /// Why, naming the job or request.
        message: String,
    },
}

/// Bind the control socket at `path`: the parent directory is created with
/// mode 0700 when missing, a stale socket file is replaced, and the socket
/// gets mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    let io = |what: String| move |source| DaemonError::Io { what, source };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(format!("chmod 0700 {}", dir.display())))?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::Config(format!(
                "control socket {} is in use: is another zrelay daemon running?",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(io(format!("remove stale {}", path.display())))?;
    }
    let listener = UnixListener::bind(path).map_err(io(format!("bind {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod 0600 {}", path.display())))?;
    Ok(listener)
}

/// Serve the control socket until `cancel` fires; removes the socket file then.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    jobs: Arc<Jobs>,
    cancel: CancellationToken,
) {
    let owner = std::fs::metadata(&path).map(|m| m.uid()).unwrap_or(0);
    info!(socket = %path.display(), "control socket ready");
    loop {
        let conn = tokio::select! {
            _ = cancel.cancelled() => break,
            c = listener.accept() => c,
        };
        let (stream, _) = match conn {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == owner || cred.uid() == 0 => {}
            Ok(cred) => {
                warn!(
                    uid = cred.uid(),
                    "control socket: refusing a client that is neither root nor the daemon's user"
                );
                continue;
            }
            Err(e) => {
                warn!(error = %e, "control socket: cannot read the peer's credentials; refusing");
                continue;
            }
        }
        let jobs = jobs.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, jobs, cancel).await {
                debug!(error = %e, "control connection ended with an error");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn handle(
    stream: UnixStream,
    jobs: Arc<Jobs>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(r).take(MAX_REQUEST as u64);
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no request within 10s"))??;
    let response = match serde_json::from_str::<Request>(line.trim_end()) {
        Err(e) => Response::Error {
            message: format!("invalid control request: {e}"),
        },
        Ok(req) => {
            debug!(?req, "control request");
            tokio::select! {
                r = answer(req, &jobs) => r,
                _ = cancel.cancelled() => Response::Error { message: "the daemon is shutting down".into() },
            }
        }
    };
    let mut out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    out.push(b'\n');
    w.write_all(&out).await?;
    w.shutdown().await
}

async fn answer(req: Request, jobs: &Jobs) -> Response {
    match req {
        Request::Version => Response::Version {
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        Request::Status => Response::Status(Box::new(jobs.daemon_status())),
        Request::Prune { job, dry_run } => match jobs.prune(&job, dry_run).await {
            Ok((reports, replicas)) => Response::Pruned { reports, replicas },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
        Request::Signal { job, signal, wait } => match jobs.signal(&job, signal, wait).await {
            Ok(s) => Response::Signalled(Box::new(s)),
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        },
    }
}

/// Send `req` to the daemon at `path` and read its answer.
pub async fn request(path: &Path, req: &Request) -> Result<Response, DaemonError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| DaemonError::Io {
            what: format!(
                "connect to the daemon's control socket {} (is `zrelay daemon` running with this config?)",
                path.display()
            ),
            source,
        })?;
    let (r, mut w) = stream.into_split();
    let mut out = serde_json::to_vec(req).expect("requests serialize");
    out.push(b'\n');
    let io = |what: &str| {
        let what = what.to_string();
        move |source| DaemonError::Io { what, source }
    };
    w.write_all(&out).await.map_err(io("send the request"))?;
    let mut line = String::new();
    BufReader::new(r)
        .read_line(&mut line)
        .await
        .map_err(io("read the daemon's answer"))?;
    if line.is_empty() {
        return Err(DaemonError::Protocol(
            "the daemon closed the control connection without an answer".into(),
        ));
    }
    serde_json::from_str(line.trim_end())
        .map_err(|e| DaemonError::Protocol(format!("invalid answer from the daemon: {e}")))
}
