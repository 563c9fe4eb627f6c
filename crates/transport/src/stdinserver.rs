//! The passive side of `ssh+stdinserver`.
//!
//! The daemon listens on one unix socket per client identity,
//! `sockdir/<identity>`, in a directory only its own uid can enter. sshd runs
//! the forced command `zrelay stdinserver IDENTITY`, whose body is
//! [`stdinserver_proxy`]: it connects to that socket and copies bytes
//! between it and its stdin/stdout. The socket a connection arrives on is
//! its identity. The daemon writes [`BANNER`] first, which the connecting
//! side ([`crate::ssh`]) waits for.

use std::collections::BTreeSet;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use crate::ssh::BANNER;
use crate::{Accepted, ClientIdentity, Listener, TransportError};

/// How long the daemon tries to write the banner to a new connection.
const BANNER_TIMEOUT: Duration = Duration::from_secs(10);

/// Create `sockdir` (mode 0700) if missing; otherwise require a directory
/// owned by the current uid that group and others cannot access.
pub fn prepare_sockdir(sockdir: &Path) -> Result<(), TransportError> {
    let key = "global.serve.stdinserver.sockdir";
    let shown = sockdir.display();
    match std::fs::metadata(sockdir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(sockdir)
                .map_err(|e| TransportError::io(format!("{key}: cannot create {shown}"), e))?;
        }
        Err(e) => return Err(TransportError::io(format!("{key}: cannot stat {shown}"), e)),
    }
    let md = std::fs::metadata(sockdir)
        .map_err(|e| TransportError::io(format!("{key}: cannot stat {shown}"), e))?;
    if !md.is_dir() {
        return Err(TransportError::config(format!(
            "{key}: {shown} is not a directory"
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if md.uid() != me {
        return Err(TransportError::config(format!(
            "{key}: {shown} is owned by uid {}, not by the daemon's uid {me}; refusing to serve from it",
            md.uid()
        )));
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TransportError::config(format!(
            "{key}: {shown} has mode {mode:04o}, which lets group or others in; it must be accessible by its owner only (chmod 0700 {shown})"
        )));
    }
    Ok(())
}

/// Remove a stale socket at `path`; refuse if a process still listens
/// there or if it is not a socket.
fn remove_stale(path: &Path) -> Result<(), TransportError> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(TransportError::io(
                format!("cannot stat {}", path.display()),
                e,
            ))
        }
    };
    if !md.file_type().is_socket() {
        return Err(TransportError::config(format!(
            "stdinserver socket {} exists and is not a socket; refusing to remove it",
            path.display()
        )));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(TransportError::config(format!(
            "stdinserver socket {} is in use by another process (another job or daemon serving the same client identity?)",
            path.display()
        )));
    }
    std::fs::remove_file(path).map_err(|e| {
        TransportError::io(format!("cannot remove stale socket {}", path.display()), e)
    })
}

/// `serve: {type: stdinserver}`.
pub struct StdinserverListener {
    rx: mpsc::Receiver<Accepted>,
    tasks: Vec<JoinHandle<()>>,
    /// The sockets bound, with their inode, removed on drop if unchanged.
    sockets: Vec<(PathBuf, u64)>,
    sockdir: PathBuf,
}

impl StdinserverListener {
    /// Validate the identities, check (or create) `sockdir` and bind one
    /// socket per identity.
    pub async fn bind(
        sockdir: &Path,
        client_identities: &[String],
    ) -> Result<Self, TransportError> {
        let mut ids = BTreeSet::new();
        for s in client_identities {
            let id = ClientIdentity::parse(s)
                .map_err(|e| TransportError::config(format!("serve.client_identities: {e}")))?;
            if !ids.insert(id) {
                return Err(TransportError::config(format!(
                    "serve.client_identities: \"{}\" is listed more than once",
                    s.escape_debug()
                )));
            }
        }
        if ids.is_empty() {
            tracing::warn!("stdinserver serve.client_identities is empty: no client can connect");
        }
        prepare_sockdir(sockdir)?;
        let (tx, rx) = mpsc::channel(16);
        let mut me = StdinserverListener {
            rx,
            tasks: Vec::new(),
            sockets: Vec::new(),
            sockdir: sockdir.to_path_buf(),
        };
        for id in ids {
            let path = sockdir.join(id.as_str());
            remove_stale(&path)?;
            let listener = UnixListener::bind(&path).map_err(|e| {
                TransportError::io(format!("cannot listen on {}", path.display()), e)
            })?;
            let ino = std::fs::symlink_metadata(&path)
                .map(|m| m.ino())
                .unwrap_or(0);
            me.sockets.push((path.clone(), ino));
            me.tasks
                .push(tokio::spawn(accept_loop(listener, path, id, tx.clone())));
        }
        Ok(me)
    }
}

impl Drop for StdinserverListener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        for (path, ino) in &self.sockets {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == *ino) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

async fn accept_loop(
    listener: UnixListener,
    path: PathBuf,
    identity: ClientIdentity,
    tx: mpsc::Sender<Accepted>,
) {
    let mut errors = crate::RateLog::default();
    let mut backoff =
        crate::Backoff::new(crate::tcp::ACCEPT_BACKOFF.0, crate::tcp::ACCEPT_BACKOFF.1);
    loop {
        let mut stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => {
                    backoff.succeeded();
                    s
                }
                Err(e) => {
                    let wait = backoff.failed();
                    if let Some(n) = errors.hit() {
                        tracing::warn!(socket = %path.display(), error = %e, failures = n, backoff = ?wait, "stdinserver accept failed; backing off");
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
            },
            () = tx.closed() => return,
        };
        let peer = match stream.peer_cred() {
            Ok(c) => match c.pid() {
                Some(pid) => format!("stdinserver {identity} (pid {pid}, uid {})", c.uid()),
                None => format!("stdinserver {identity} (uid {})", c.uid()),
            },
            Err(_) => format!("stdinserver {identity}"),
        };
        let tx = tx.clone();
        let identity = identity.clone();
        tokio::spawn(async move {
            let banner = tokio::time::timeout(BANNER_TIMEOUT, async {
                stream.write_all(BANNER.as_bytes()).await?;
                stream.flush().await
            });
            match banner.await {
                Ok(Ok(())) => {
                    let conn = Box::new(stream);
                    let _ = tx
                        .send(Accepted {
                            conn,
                            identity,
                            peer,
                        })
                        .await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "stdinserver: cannot write the banner")
                }
                Err(_) => tracing::warn!(%peer, "stdinserver: timed out writing the banner"),
            }
        });
    }
}

#[async_trait]
impl Listener for StdinserverListener {
    async fn accept(&mut self) -> Result<Accepted, TransportError> {
        self.rx.recv().await.ok_or_else(|| {
            TransportError::io(
                format!(
                    "accept on stdinserver sockets in {}",
                    self.sockdir.display()
                ),
                std::io::Error::other("no socket to accept on"),
            )
        })
    }

    fn describe(&self) -> String {
        let ids: Vec<_> = self
            .sockets
            .iter()
            .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        format!(
            "stdinserver {} [{}]",
            self.sockdir.display(),
            ids.join(", ")
        )
    }
}

/// The body of the forced command `zrelay stdinserver IDENTITY`: connect to
/// `sockdir/IDENTITY` and copy `input` to it and it to `output` until the
/// daemon's side ends. The end of `input` is passed on as a half-close.
pub async fn stdinserver_proxy(
    sockdir: &Path,
    identity: &str,
    mut input: impl AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> Result<(), TransportError> {
    let id = ClientIdentity::parse(identity)
        .map_err(|e| TransportError::config(format!("zrelay stdinserver: {e}")))?;
    let path = sockdir.join(id.as_str());
    let sock = UnixStream::connect(&path).await.map_err(|e| {
        TransportError::io(
            format!(
                "cannot reach the zrelay daemon's stdinserver socket {}",
                path.display()
            ),
            std::io::Error::new(
                e.kind(),
                format!("{e}; is a job serving client identity \"{id}\" running?"),
            ),
        )
    })?;
    let (mut rd, mut wr) = sock.into_split();
    let up = async {
        tokio::io::copy(&mut input, &mut wr).await?;
        wr.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut rd, &mut output).await?;
        output.shutdown().await
    };
    tokio::pin!(up, down);
    let mut up_done = false;
    loop {
        tokio::select! {
            r = &mut up, if !up_done => {
                up_done = true;
                r.map_err(|e| TransportError::io(format!("copying stdin to {}", path.display()), e))?;
            }
            r = &mut down => {
                return r.map_err(|e| TransportError::io(format!("copying {} to stdout", path.display()), e));
            }
        }
    }
}
