//! The two traits the replication engine drives. The local implementations
//! run the ZFS layer directly; a network transport implements the same traits
//! with the same messages.
//!
//! Batched calls (`prepare`, `commit`, `estimate`) exist so that the fixed
//! costs of protecting and committing steps are paid once per batch of
//! filesystems, not once per filesystem.

use async_trait::async_trait;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::DatasetPath;

use crate::error::{EndpointError, Result};
use crate::types::{
    BatchResult, CommitReq, DestroyOutcome, FsListing, FsVersion, PrepareReq, StepReq,
};

/// The sending side of a replication.
#[async_trait]
pub trait Sender: Send + Sync {
    /// The filesystems this sender serves, with their versions and this job's
    /// cursor, from one listing.
    async fn list_filesystems(&self) -> Result<Vec<FsListing>>;

    /// Validate `steps` (one batched lookup, kept for the sends that follow)
    /// and estimate their stream sizes. With `concurrency` 0, the sizes come
    /// from the space properties validation reads (no extra command; see
    /// `ValidatedSendArgs::size_hint`); otherwise from dry-run sends
    /// (`zfs send -nvP`), at most `concurrency` at a time. One result per
    /// step, in order.
    async fn estimate(&self, steps: &[StepReq], concurrency: usize) -> Result<Vec<Result<u64>>>;

    /// Before any step runs: remove stale abstractions of this job on each
    /// filesystem and protect its planned steps as its guarantee asks.
    async fn prepare(&self, reqs: &[PrepareReq]) -> Result<BatchResult<EndpointError>>;

    /// Start the stream of one step (validated: GUIDs, resume token, encryption).
    async fn send(&self, step: &StepReq) -> Result<Box<dyn SendStream>>;

    /// The receiver confirmed these snapshots: move the cursor and drop the
    /// step protection.
    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>>;

    /// A step failed and left nothing to resume: drop the step protection of
    /// these filesystems (the replication cursor stays).
    async fn abort(&self, fss: &[DatasetPath]) -> Result<BatchResult<EndpointError>>;

    /// The snapshots and bookmarks of one served filesystem, oldest first.
    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>>;

    /// The version this job's replication cursor points at, if any.
    async fn replication_cursor(&self, fs: &DatasetPath) -> Result<Option<FsVersion>>;

    /// Destroy snapshots (short names) of one served filesystem, in one batch.
    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome>;

    /// A short description for logs and reports.
    fn describe(&self) -> String;
}

/// The refusal of a receiver that does not manage whole replicas.
fn replicas_unsupported(fs: &DatasetPath, who: String) -> EndpointError {
    EndpointError::ReplicaRefused {
        fs: fs.to_string(),
        reason: format!("{who} does not rename or destroy replicas"),
    }
}

/// The receiving side of a replication.
#[async_trait]
pub trait Receiver: Send + Sync {
    /// The filesystems under this receiver's root, in the sender's namespace,
    /// with placeholders and resumable partial receives marked.
    async fn list_filesystems(&self) -> Result<Vec<FsListing>>;

    /// Receive one step from `stream`, creating placeholders for missing
    /// parents. A failure says whether a resumable state was kept.
    async fn receive(&self, step: &StepReq, stream: Box<dyn SendStream>) -> Result<()>;

    /// Verify the received snapshots' GUIDs and move this job's last-received hold to them.
    async fn commit(&self, reqs: &[CommitReq]) -> Result<BatchResult<EndpointError>>;

    /// The snapshots and bookmarks of one received filesystem (sender's
    /// namespace), oldest first.
    async fn list_versions(&self, fs: &DatasetPath) -> Result<Vec<FsVersion>>;

    /// Destroy snapshots (short names) of one received filesystem, in one batch.
    async fn destroy_snapshots(
        &self,
        fs: &DatasetPath,
        snapshots: &[String],
    ) -> Result<DestroyOutcome>;

    /// zrelay extension: the sender's filesystem `from` was renamed to `to`;
    /// rename its replica to match, creating placeholders for missing
    /// parents, so that replication goes on incrementally. Refused unless
    /// this side allows it (`recv.replicas.rename`), the replica is this
    /// job's and `to`'s replica does not exist.
    async fn rename_replica(&self, from: &DatasetPath, to: &DatasetPath) -> Result<()> {
        let _ = to;
        Err(replicas_unsupported(from, self.describe()))
    }

    /// zrelay extension: the sender's filesystem `fs` was destroyed; destroy
    /// its replica (its snapshots, bookmarks, partial receive and itself,
    /// never a child). Refused unless this side allows it
    /// (`recv.replicas.destroy`), the replica is this job's (it holds this
    /// job's last-received hold, or is a placeholder) and it has no children.
    async fn destroy_replica(&self, fs: &DatasetPath) -> Result<()> {
        Err(replicas_unsupported(fs, self.describe()))
    }

    /// A short description for logs and reports.
    fn describe(&self) -> String;
}
