//! The local receiver: receives into `root/<sender path>` on the local ZFS,
//! creates placeholders for missing parents, and owns this job's
//! last-received holds.
//!
//! Confinement: every dataset it touches is computed by [`LocalReceiver::target`],
//! which joins validated components under the root; nothing outside the root
//! is ever listed, created, received into or held.
//!
//! A stream is checked against its step before anything happens ([`begin`]):
//! its `DRR_BEGIN` record must name the step's snapshot and guids, or the
//! receive is refused before any placeholder is created or `zfs recv` runs.
//! Resume tokens of partial receives are decoded in process
//! ([`zrelay_zfs::resume_token`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};
use zrelay_zfs::parse::{is_placeholder_value, Version};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::{DatasetPath, PropertyValue, RecvArgs, Zfs};

mod begin;
mod commit;
mod kind;
mod parents;
mod props;
mod replicas;

pub use kind::StreamKind;
pub use props::PROTECTED_PROPERTIES;
pub use replicas::ReplicaPolicy;

use crate::abstractions::{JobId, PLACEHOLDER_PROPERTY};
use crate::confine::{client_root, confine, ClientIdentity};
use crate::error::{EndpointError, Result};
use crate::traits::Receiver;
use crate::types::{
    BatchResult, CommitReq, DestroyOutcome, FsListing, FsVersion, ResumeState, StepReq,
};

/// `recv.placeholder.encryption`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceholderEncryption {
    /// Create placeholders only where they would not be encrypted (parent
    /// unencrypted); under an encrypted parent, fail and ask for a choice.
    #[default]
    Unspecified,
    /// `zfs create -o encryption=off` (an untrusted receiver of raw sends).
    Off,
    /// Inherit the parent's encryption (encrypt plain sends on receive).
    Inherit,
}

/// zrepl's `recv` options of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecvOptions {
    /// `recv.properties.override` → `-o prop=value`.
    pub override_props: Vec<(String, String)>,
    /// `recv.properties.inherit` → `-x prop`.
    pub inherit_props: Vec<String>,
    /// `recv.placeholder.encryption`.
    pub placeholder_encryption: PlaceholderEncryption,
    /// zrelay extension: allow a full receive with `-F` over an existing
    /// filesystem that is not a placeholder. Off unless the user opts in.
    pub force_overwrite: bool,
    /// zrelay extension `recv.properties.allow_from_sender`: which of the
    /// [`PROTECTED_PROPERTIES`] the sender's values may set. Empty (the
    /// default): none; each is excluded with `-x` ([`RecvOptions::recv_props`]).
    pub allow_from_sender: Vec<String>,
    /// zrelay extension `recv.replicas`: whether the sender's job may rename
    /// or destroy whole replicas here. Both off by default.
    pub replicas: ReplicaPolicy,
}

/// The buffer of [`pump`]: large, so that a stream moves in few syscalls.
pub const PUMP_BUFFER: usize = 1 << 20;

/// Which side of a [`pump`] failed.
#[derive(Debug)]
pub enum PumpError {
    /// Reading the stream failed (the sender or the connection).
    Read(std::io::Error),
    /// Writing failed (the consumer, e.g. `zfs recv`, stopped reading).
    Write(std::io::Error),
}

impl std::fmt::Display for PumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PumpError::Read(e) => write!(f, "reading the stream: {e}"),
            PumpError::Write(e) => write!(f, "writing into the receive: {e}"),
        }
    }
}

impl std::error::Error for PumpError {}

/// Copy `from` into `to` until EOF with one [`PUMP_BUFFER`]-sized buffer
/// (`tokio::io::copy`'s 8 KiB buffer costs throughput); flushes `to`.
/// Returns the bytes copied, or which side failed.
pub async fn pump<R, W>(from: &mut R, to: &mut W) -> std::result::Result<u64, PumpError>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; PUMP_BUFFER];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).await.map_err(PumpError::Read)?;
        if n == 0 {
            to.flush().await.map_err(PumpError::Write)?;
            return Ok(total);
        }
        to.write_all(&buf[..n]).await.map_err(PumpError::Write)?;
        total += n as u64;
    }
}

/// A receiver into a root filesystem on the local ZFS.
pub struct LocalReceiver {
    zfs: Arc<dyn Zfs>,
    job: JobId,
    root: DatasetPath,
    /// For a sink's client receiver: the sink's `root_fs` (`root` is `root_fs/<identity>`).
    identity_root: Option<DatasetPath>,
    /// For a sink's client receiver: the client.
    identity: Option<ClientIdentity>,
    opts: RecvOptions,
    /// Versions of the last listing, by receiving filesystem.
    versions: Mutex<HashMap<DatasetPath, Vec<Version>>>,
}

fn encrypted(p: Option<&PropertyValue>) -> bool {
    p.is_some_and(|v| v.value != "off" && v.value != "-" && !v.value.is_empty())
}

impl LocalReceiver {
    /// A receiver for job `job` into `root` (which must exist).
    pub fn new(zfs: Arc<dyn Zfs>, job: JobId, root: DatasetPath, opts: RecvOptions) -> Self {
        LocalReceiver {
            zfs,
            job,
            root,
            identity_root: None,
            identity: None,
            opts,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// A sink's receiver for one client: receives into `root/<identity>/<sender path>`.
    /// `root/<identity>` is created as a placeholder when missing, whatever
    /// `placeholder.encryption` says (as zrepl does for the client-identity level).
    pub fn for_client(
        zfs: Arc<dyn Zfs>,
        job: JobId,
        root: DatasetPath,
        identity: &str,
        opts: RecvOptions,
    ) -> Result<Self> {
        let identity = ClientIdentity::parse(identity)?;
        let client_root = client_root(&root, Some(&identity))?;
        let mut r = LocalReceiver::new(zfs, job, client_root, opts);
        r.identity_root = Some(root);
        r.identity = Some(identity);
        Ok(r)
    }

    /// The root this receiver maps sender paths under.
    pub fn root(&self) -> &DatasetPath {
        &self.root
    }

    /// For a client receiver: create `root/<identity>` as a placeholder when missing.
    async fn ensure_client_root(&self) -> Result<()> {
        let Some(parent) = &self.identity_root else {
            return Ok(());
        };
        let names = [parent.to_string(), self.root.to_string()];
        let got = self
            .zfs
            .get_many(&names, &["guid"])
            .await
            .map_err(|e| EndpointError::zfs(format!("inspect {}", self.root), e))?;
        match (&got[0].1, &got[1].1) {
            (Err(e), _) if e.is_does_not_exist() => Err(EndpointError::RootMissing(parent.clone())),
            (_, Err(e)) if e.is_does_not_exist() => {
                info!(fs = %self.root, "creating the client's placeholder");
                let props = [(PLACEHOLDER_PROPERTY.to_string(), "on".to_string())];
                match self.zfs.create(&self.root, &props).await {
                    Ok(()) => Ok(()),
                    Err(e) if self.zfs.guid(self.root.as_str()).await.is_ok() => {
                        debug!(error = %e, "client placeholder appeared concurrently");
                        Ok(())
                    }
                    Err(e) => Err(EndpointError::Placeholder {
                        fs: self.root.clone(),
                        reason: e.to_string(),
                    }),
                }
            }
            _ => Ok(()),
        }
    }

    /// The receiving filesystem of a sender filesystem: `root/<sender path>`.
    /// Every dataset a request names goes through [`confine`].
    pub fn target(&self, fs: &DatasetPath) -> Result<DatasetPath> {
        let base = self.identity_root.as_ref().unwrap_or(&self.root);
        Ok(confine(base, self.identity.as_ref(), fs.as_str())?)
    }

    /// The sender path of a receiving filesystem, `None` for the root and outside it.
    fn sender_path(&self, target: &DatasetPath) -> Option<DatasetPath> {
        let rel = target.strip_prefix(&self.root)?;
        if rel.is_empty() {
            return None;
        }
        DatasetPath::parse(&rel.join("/")).ok()
    }

    /// Which of `paths` are placeholders: a locally set `zrepl:placeholder`
    /// (an inherited value does not count, as in zrepl). One `zfs get`.
    async fn placeholders(&self, paths: &[DatasetPath]) -> Result<HashMap<DatasetPath, bool>> {
        let mut out = HashMap::new();
        if paths.is_empty() {
            return Ok(out);
        }
        let names: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let got = self
            .zfs
            .get_many(&names, &[PLACEHOLDER_PROPERTY])
            .await
            .map_err(|e| EndpointError::zfs("read placeholder state", e))?;
        for (p, (_, r)) in paths.iter().zip(got) {
            let is = match r {
                Ok(props) => props
                    .get(PLACEHOLDER_PROPERTY)
                    .is_some_and(|v| v.source == "local" && is_placeholder_value(p, &v.value)),
                Err(e) if e.is_does_not_exist() => false,
                Err(e) => {
                    return Err(EndpointError::zfs(
                        format!("read placeholder state of {p}"),
                        e,
                    ))
                }
            };
            out.insert(p.clone(), is);
        }
        Ok(out)
    }

    /// Before a full receive: decide whether `-F` is needed (placeholder or
    /// opt-in) and create missing parents as placeholders.
    async fn prepare_full(&self, step: &StepReq, target: &DatasetPath) -> Result<bool> {
        let (chain, state) = self.inspect_chain(target).await?;
        if let Some(Some(props)) = state.last() {
            let placeholder = props
                .get(PLACEHOLDER_PROPERTY)
                .is_some_and(|v| v.source == "local" && is_placeholder_value(target, &v.value));
            if placeholder {
                info!(fs = %target, "replacing placeholder with a full receive (recv -F)");
                return Ok(true);
            }
            if step.resume_token.is_some() {
                return Ok(false);
            }
            if self.opts.force_overwrite {
                warn!(fs = %target, "full receive over an existing filesystem with -F (force_overwrite is on)");
                return Ok(true);
            }
            // A partial receive the plan did not see (the previous run's
            // interrupted receive was still being saved when the sender
            // listed this side): hand its token back, the retry resumes it.
            let token = props
                .get("receive_resume_token")
                .map(|v| v.value.as_str())
                .filter(|t| !t.is_empty() && *t != "-");
            if let Some(token) = token {
                info!(fs = %target, "a full receive met a partial receive it was not planned with; handing back its resume token");
                return Err(EndpointError::Receive {
                    fs: target.clone(),
                    source: Box::new(EndpointError::WouldOverwrite { fs: target.clone() }),
                    resume_token: Some(token.to_string()),
                });
            }
            return Err(EndpointError::WouldOverwrite { fs: target.clone() });
        }
        let n = chain.len() - 1;
        self.create_parents(&chain[..n], &state[..n]).await?;
        Ok(false)
    }

    async fn copy(
        &self,
        step: &StepReq,
        target: &DatasetPath,
        force: bool,
        stream: Box<dyn SendStream>,
    ) -> Result<()> {
        let (kind, stream) = kind::peek(stream).await;
        let mut stream: Box<dyn SendStream> = Box::new(stream);
        let (override_props, inherit_props) = self.opts.recv_props(kind.protect());
        debug!(fs = %target, ?kind, ?inherit_props, "receive arguments");
        let args = RecvArgs {
            fs: target.clone(),
            resumable: true,
            unmounted: true,
            override_props,
            inherit_props,
            expect: None,
        };
        let started = if force {
            self.zfs.recv_force_rollback(&args).await
        } else {
            self.zfs.recv(&args).await
        };
        let mut sink = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = stream.close().await;
                return Err(EndpointError::zfs(format!("start receive of {step}"), e));
            }
        };
        let copied = pump(&mut stream, &mut sink).await;
        let res = match copied {
            Ok(_) => match sink.finish().await {
                Ok(()) => stream
                    .close()
                    .await
                    .map_err(|e| EndpointError::zfs(format!("send of {step}"), e)),
                Err(e) => {
                    let _ = stream.close().await;
                    Err(EndpointError::zfs(format!("receive of {step}"), e))
                }
            },
            Err(PumpError::Write(io)) => {
                // `zfs recv` stopped reading: its exit status and stderr say why.
                let recv_err = sink.finish().await.err();
                let _ = stream.close().await;
                Err(match recv_err {
                    Some(e) => EndpointError::zfs(format!("receive of {step}"), e),
                    None => EndpointError::Stream {
                        fs: step.fs.clone(),
                        reason: format!("zfs recv stopped reading its input: {io}"),
                        temporary: true,
                    },
                })
            }
            Err(PumpError::Read(io)) => {
                // Stop the receive first so a partial state is saved, then
                // collect the sender's own error if it has one.
                sink.abort().await;
                let send_err = stream.close().await.err();
                let recv_err = sink.finish().await.err();
                Err(match (recv_err, send_err) {
                    (Some(e), _) if !matches!(e, zrelay_zfs::ZfsError::Closed(_)) => {
                        EndpointError::zfs(format!("receive of {step}"), e)
                    }
                    (_, Some(e)) => EndpointError::zfs(format!("send of {step}"), e),
                    _ => EndpointError::Stream {
                        fs: step.fs.clone(),
                        reason: io.to_string(),
                        temporary: true,
                    },
                })
            }
        };
        if res.is_ok() && force && kind.protect() {
            // `zfs recv -F` over an existing filesystem (a placeholder) skips
            // `-x` for a property the target inherits (libzfs treats any
            // non-received source as local): inherit explicitly, which
            // masks the received value as `-x` would have.
            for p in self.opts.protected_excludes() {
                self.zfs.inherit(target, p).await.map_err(|e| {
                    EndpointError::zfs(format!("inherit {p} on {target} after its receive"), e)
                })?;
            }
        }
        res
    }
}

/// A full step planned onto nothing (no `-F`, no token) whose `zfs recv`
/// found its destination existing, or holding partial state: the filesystem
/// appeared after the plan (the previous run's interrupted receive was still
/// going, or still being saved). Temporary: the retry plans again and sees
/// its resume token, or a real conflict. Other errors are returned as they are.
fn appeared_after_plan(
    step: &StepReq,
    force: bool,
    target: &DatasetPath,
    e: EndpointError,
) -> EndpointError {
    use zrelay_zfs::parse::StderrKind;
    let onto_nothing = !force && step.from.is_none() && step.resume_token.is_none();
    match e {
        EndpointError::Zfs { context, source }
            if onto_nothing
                && matches!(
                    *source,
                    zrelay_zfs::ZfsError::Command {
                        kind: StderrKind::AlreadyExists | StderrKind::ResumableStateExists,
                        ..
                    }
                ) =>
        {
            info!(fs = %target, "the receiving filesystem appeared after this step was planned; the step is retried");
            EndpointError::Stream {
                fs: step.fs.clone(),
                reason: format!(
                    "{context}: {source} (it appeared after this step was planned: an interrupted receive still being saved?)"
                ),
                temporary: true,
            }
        }
        e => e,
    }
}

#[async_trait]
impl Receiver for LocalReceiver {
    async fn list_filesystems(&self) -> Result<Vec<FsListing>> {
        let listed = match self.zfs.list(&self.root).await {
            Ok(l) => l,
            Err(e) if e.is_does_not_exist() && self.identity_root.is_some() => {
                // The client's placeholder comes with its first receive.
                self.versions.lock().unwrap().clear();
                return Ok(Vec::new());
            }
            Err(e) if e.is_does_not_exist() => {
                return Err(EndpointError::RootMissing(self.root.clone()))
            }
            Err(e) => return Err(EndpointError::zfs(format!("list {}", self.root), e)),
        };
        let maybe: Vec<DatasetPath> = listed
            .iter()
            .filter(|d| d.placeholder && d.path != self.root)
            .map(|d| d.path.clone())
            .collect();
        let placeholders = self.placeholders(&maybe).await?;
        let mut out = Vec::new();
        let mut cache = HashMap::new();
        for d in listed {
            let Some(path) = self.sender_path(&d.path) else {
                continue;
            };
            let resume = match &d.resume_token {
                None => None,
                Some(token) => match zrelay_zfs::resume_token::decode(token) {
                    Ok(info) => Some(ResumeState {
                        token: token.clone(),
                        to_guid: info.toguid,
                        from_guid: info.fromguid,
                        to_name: info.toname.to_string(),
                        bytes: info.bytes,
                    }),
                    Err(e) => {
                        warn!(fs = %d.path, error = %e, "cannot decode the receive_resume_token; ignoring it");
                        None
                    }
                },
            };
            out.push(FsListing {
                path,
                placeholder: placeholders.get(&d.path).copied().unwrap_or(false),
                encrypted: d.encryption.is_some(),
                resume,
                cursor_guid: None,
                versions: d.versions.iter().map(FsVersion::from).collect(),
            });
            cache.insert(d.path, d.versions);
        }
        *self.versions.lock().unwrap() = cache;
        Ok(out)
    }

    async fn receive(&self, step: &StepReq, stream: Box<dyn SendStream>) -> Result<()> {
        let target = match self.target(&step.fs) {
            Ok(t) => t,
            Err(e) => {
                let mut stream = stream;
                let _ = stream.close().await;
                return Err(e);
            }
        };
        let stream: Box<dyn SendStream> = Box::new(begin::check(step, stream).await?);
        let mut force = false;
        if step.from.is_none() {
            let prepared = match self.ensure_client_root().await {
                Ok(()) => self.prepare_full(step, &target).await,
                Err(e) => Err(e),
            };
            force = match prepared {
                Ok(f) => f,
                Err(e) => {
                    let mut stream = stream;
                    let _ = stream.close().await;
                    return Err(e);
                }
            };
        }
        match self.copy(step, &target, force, stream).await {
            Ok(()) => {
                if step.from.is_none() {
                    // A real filesystem now: say so locally, so that neither an
                    // inherited `on` nor a replaced placeholder's value marks it.
                    self.zfs
                        .set(
                            &target,
                            &[(PLACEHOLDER_PROPERTY.to_string(), "off".to_string())],
                        )
                        .await
                        .map_err(|e| {
                            EndpointError::zfs(format!("clear placeholder of {target}"), e)
                        })?;
                }
                Ok(())
            }
            Err(e) => {
                let e = appeared_after_plan(step, force, &target, e);
                let resume_token = match self
                    .zfs
                    .get(target.as_str(), &["receive_resume_token"])
                    .await
                {
                    Ok(p) => p
                        .get("receive_resume_token")
                        .map(|v| v.value.clone())
                        .filter(|v| v != "-" && !v.is_empty()),
                    Err(_) => None,
                };
                Err(EndpointError::Receive {
                    fs: target,
                    source: Box::new(e),
                    resume_token,
                })
            }
        }
    }

    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>> {
        self.commit_impl(reqs).await
    }

    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>> {
        let target = self.target(fs)?;
        crate::versions::list(self.zfs.as_ref(), &target).await
    }

    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome> {
        let target = self.target(fs)?;
        let out = crate::versions::destroy(self.zfs.as_ref(), &target, snapshots).await;
        self.versions.lock().unwrap().remove(&target);
        out
    }

    async fn rename_replica(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        self.rename_replica_impl(from, to).await
    }

    async fn destroy_replica(&self, fs: &DatasetPath) -> Result<()> {
        self.destroy_replica_impl(fs).await
    }

    fn describe(&self) -> String {
        format!("local receiver into {} (job {})", self.root, self.job)
    }
}
