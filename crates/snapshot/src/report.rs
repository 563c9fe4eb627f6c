//! What a snapshotting round did ([`SnapshotReport`]) and what the
//! snapshotter is doing ([`SnapshotterStatus`]), both serde-serializable for
//! the daemon's status API. Times are RFC 3339 strings in UTC.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use zrelay_zfs::DatasetPath;

/// Why a round ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundCause {
    /// The periodic or cron schedule.
    Schedule,
    /// `zrelay signal snapshot JOB` or [`crate::Snapshotter::snapshot_now`].
    OnDemand,
}

/// One snapshotting round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReport {
    /// When the round began.
    #[serde(with = "rfc3339")]
    pub started: SystemTime,
    /// When it ended.
    #[serde(with = "rfc3339")]
    pub finished: SystemTime,
    /// The snapshot name (after `@`), the same for every filesystem.
    pub name: String,
    /// Why it ran.
    pub cause: RoundCause,
    /// An error that stopped the round before any filesystem was handled
    /// (listing failed).
    pub error: Option<String>,
    /// Each matched filesystem, in name order.
    pub filesystems: Vec<FsReport>,
}

impl SnapshotReport {
    /// No round error and every filesystem ok.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.filesystems.iter().all(|f| f.ok)
    }

    /// The filesystems whose snapshot was created.
    pub fn snapshotted(&self) -> impl Iterator<Item = &DatasetPath> {
        self.filesystems
            .iter()
            .filter(|f| f.snapshotted)
            .map(|f| &f.fs)
    }
}

/// One filesystem of a round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsReport {
    /// The filesystem (or volume).
    pub fs: DatasetPath,
    /// Snapshot created and no hook failed (zrepl's "had error" is any hook
    /// error, fatal or not).
    pub ok: bool,
    /// Whether `fs@name` was created.
    pub snapshotted: bool,
    /// Whether it was created in the one `zfs snapshot` call of its pool
    /// (false: that call failed and each filesystem was retried alone).
    pub atomic: bool,
    /// The first error: the snapshot's, or a fatal pre hook's, or the first
    /// hook error.
    pub error: Option<String>,
    /// The hook steps for this filesystem, in execution order: pre edges in
    /// configuration order, then post edges in reverse.
    pub hooks: Vec<HookOutcome>,
}

/// Pre or post snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEdge {
    /// Before the snapshot (`ZREPL_HOOKTYPE=pre_snapshot`).
    Pre,
    /// After the snapshot (`ZREPL_HOOKTYPE=post_snapshot`).
    Post,
}

impl HookEdge {
    /// The `ZREPL_HOOKTYPE` value.
    pub fn hook_type(self) -> &'static str {
        match self {
            HookEdge::Pre => "pre_snapshot",
            HookEdge::Post => "post_snapshot",
        }
    }
}

/// How a hook step ended (zrepl's `hooks.StepStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStatus {
    /// Ran and succeeded.
    Ok,
    /// Ran and failed (or timed out).
    Err,
    /// Not run: an earlier pre hook with `err_is_fatal` failed.
    SkippedDueToFatalErr,
    /// Post edge not run: its pre edge failed.
    SkippedDueToPreErr,
    /// Not run: the snapshotter was being stopped.
    SkippedDueToCancel,
}

/// One hook step for one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookOutcome {
    /// The hook's index in the configuration's `hooks` list (0-based).
    pub index: usize,
    /// The hook as zrepl names it (command path, `postgres checkpoint`, ...).
    pub hook: String,
    /// Pre or post.
    pub edge: HookEdge,
    /// How it ended.
    pub status: HookStatus,
    /// The error, if it failed.
    pub error: Option<String>,
    /// Captured stdout and stderr, combined, at most
    /// `ZREPL_MAX_HOOK_LOG_SIZE` bytes (the tail is kept).
    pub output: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// What the snapshotter is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotterState {
    /// Not running yet.
    Idle,
    /// Periodic: looking for the sync point.
    SyncUp,
    /// Waiting for the next scheduled round (or, for `manual`, a trigger).
    Waiting,
    /// A round is running.
    Snapshotting,
    /// Waiting after a failed sync-up or round.
    ErrorWait,
    /// Stopped.
    Stopped,
}

/// The snapshotter's status, for `zrelay status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotterStatus {
    /// `periodic`, `cron` or `manual`.
    pub kind: String,
    /// The state.
    pub state: SnapshotterState,
    /// When the next scheduled round starts (none for `manual`).
    #[serde(with = "rfc3339::option")]
    pub next_run: Option<SystemTime>,
    /// The error of the last sync-up or round, if it failed.
    pub last_error: Option<String>,
    /// Cron fire times missed because a round was still running since the
    /// last successful start ("cron frequency is too high").
    pub skipped_while_running: u64,
    /// The last round's report.
    pub last_report: Option<SnapshotReport>,
}

impl SnapshotterStatus {
    pub(crate) fn new(kind: &str) -> Self {
        SnapshotterStatus {
            kind: kind.to_string(),
            state: SnapshotterState::Idle,
            next_run: None,
            last_error: None,
            skipped_while_running: 0,
            last_report: None,
        }
    }
}

/// serde of [`SystemTime`] as an RFC 3339 string.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    /// Format `t` (UTC, nanoseconds as needed).
    pub fn format(t: SystemTime) -> String {
        jiff::Timestamp::try_from(t)
            .map(|ts| ts.to_string())
            .unwrap_or_else(|_| format!("{t:?}"))
    }

    /// Serialize.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        let ts: jiff::Timestamp = s.parse().map_err(D::Error::custom)?;
        Ok(SystemTime::from(ts))
    }

    /// The same for `Option<SystemTime>` (`null` for none).
    pub mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        /// Serialize.
        pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&super::format(*t)),
                None => s.serialize_none(),
            }
        }

        /// Deserialize.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            #[derive(Deserialize)]
            struct W(#[serde(with = "super")] SystemTime);
            Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
        }
    }
}
