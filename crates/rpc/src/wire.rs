//! The requests a client sends (one control message each) and the replies
//! that are not plain endpoint types.

use serde::{Deserialize, Serialize};
use zrelay_endpoint::{CommitReq, PrepareReq, StepReq};
use zrelay_zfs::DatasetPath;

use crate::compress::CompressReq;

/// A call. Each reply is a control message whose JSON is the call's result
/// type (noted per variant), or an error frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", content = "args")]
pub(crate) enum Request {
    /// Reply: [`PingReply`].
    #[serde(rename = "ping")]
    Ping,
    /// Reply: `Vec<FsListing>`.
    #[serde(rename = "sender.list_filesystems")]
    SenderListFilesystems,
    /// Reply: `Vec<FsVersion>`.
    #[serde(rename = "sender.list_versions")]
    SenderListVersions { fs: DatasetPath },
    /// Reply: `Option<FsVersion>`.
    #[serde(rename = "sender.replication_cursor")]
    SenderReplicationCursor { fs: DatasetPath },
    /// Reply: `Vec<Result<u64, WireError>>`.
    #[serde(rename = "sender.estimate")]
    SenderEstimate {
        steps: Vec<StepReq>,
        concurrency: usize,
    },
    /// Reply: `Vec<Result<(), WireError>>`.
    #[serde(rename = "sender.prepare")]
    SenderPrepare { reqs: Vec<PrepareReq> },
    /// Reply: `null` once the stream started (a `StreamStart` when the
    /// client asked to `compress`), then the data stream (server to client).
    #[serde(rename = "sender.send")]
    SenderSend {
        step: StepReq,
        /// zrelay extension: compress the stream (older servers ignore it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compress: Option<CompressReq>,
    },
    /// Reply: `Vec<Result<(), WireError>>`.
    #[serde(rename = "sender.commit")]
    SenderCommit { reqs: Vec<CommitReq> },
    /// Reply: `Vec<Result<(), WireError>>`.
    #[serde(rename = "sender.abort")]
    SenderAbort { fss: Vec<DatasetPath> },
    /// Reply: `DestroyOutcome`.
    #[serde(rename = "sender.destroy_snapshots")]
    SenderDestroySnapshots {
        fs: DatasetPath,
        snapshots: Vec<String>,
    },
    /// Reply: `Vec<FsListing>`.
    #[serde(rename = "receiver.list_filesystems")]
    ReceiverListFilesystems,
    /// Reply: `Vec<FsVersion>`.
    #[serde(rename = "receiver.list_versions")]
    ReceiverListVersions { fs: DatasetPath },
    /// Reply: `DestroyOutcome`.
    #[serde(rename = "receiver.destroy_snapshots")]
    ReceiverDestroySnapshots {
        fs: DatasetPath,
        snapshots: Vec<String>,
    },
    /// Reply: `null` when ready for the data stream (client to server; a
    /// `StreamStart` when the client asked to `compress`), then, after it,
    /// `null` once received.
    #[serde(rename = "receiver.receive")]
    ReceiverReceive {
        step: StepReq,
        /// zrelay extension: the client would compress the stream (older
        /// servers ignore it and reply `null`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compress: Option<CompressReq>,
    },
    /// Reply: `Vec<Result<(), WireError>>`.
    #[serde(rename = "receiver.commit")]
    ReceiverCommit { reqs: Vec<CommitReq> },
    /// zrelay extension. Reply: `null` once renamed.
    #[serde(rename = "receiver.rename_replica")]
    ReceiverRenameReplica { from: DatasetPath, to: DatasetPath },
    /// zrelay extension. Reply: `null` once destroyed (or already gone).
    #[serde(rename = "receiver.destroy_replica")]
    ReceiverDestroyReplica { fs: DatasetPath },
}

impl Request {
    /// The call's name on the wire, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::SenderListFilesystems => "sender.list_filesystems",
            Request::SenderListVersions { .. } => "sender.list_versions",
            Request::SenderReplicationCursor { .. } => "sender.replication_cursor",
            Request::SenderEstimate { .. } => "sender.estimate",
            Request::SenderPrepare { .. } => "sender.prepare",
            Request::SenderSend { .. } => "sender.send",
            Request::SenderCommit { .. } => "sender.commit",
            Request::SenderAbort { .. } => "sender.abort",
            Request::SenderDestroySnapshots { .. } => "sender.destroy_snapshots",
            Request::ReceiverListFilesystems => "receiver.list_filesystems",
            Request::ReceiverListVersions { .. } => "receiver.list_versions",
            Request::ReceiverDestroySnapshots { .. } => "receiver.destroy_snapshots",
            Request::ReceiverReceive { .. } => "receiver.receive",
            Request::ReceiverCommit { .. } => "receiver.commit",
            Request::ReceiverRenameReplica { .. } => "receiver.rename_replica",
            Request::ReceiverDestroyReplica { .. } => "receiver.destroy_replica",
        }
    }
}

/// The reply to [`Request::Ping`]: the roles the server serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PingReply {
    pub(crate) sender: bool,
    pub(crate) receiver: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_call_name() {
        let fs = DatasetPath::parse("pool/a").unwrap();
        let r = Request::SenderListVersions { fs };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"call":"sender.list_versions","args":{"fs":"pool/a"}}"#
        );
        let back: Request = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name(), "sender.list_versions");
        let ping = serde_json::to_string(&Request::Ping).unwrap();
        assert_eq!(ping, r#"{"call":"ping"}"#);
    }
}
