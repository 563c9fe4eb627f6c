//! Raw structs of the parts jobs share: snapshotting and hooks, pruning,
//! send, recv, replication and conflict resolution.

use serde::Deserialize;

use super::Ordered;

/// `snapshotting`, by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawSnapshotting {
    #[serde(rename = "periodic")]
    Periodic(RawPeriodic),
    #[serde(rename = "cron")]
    Cron(RawCron),
    /// Takes no keys: `prefix` and any other key is an error (zrepl #403).
    #[serde(rename = "manual")]
    Manual,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeriodic {
    pub(crate) prefix: String,
    pub(crate) interval: String,
    #[serde(default)]
    pub(crate) hooks: Vec<RawHook>,
    pub(crate) timestamp_format: Option<String>,
    pub(crate) timestamp_location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCron {
    pub(crate) prefix: String,
    pub(crate) cron: String,
    #[serde(default)]
    pub(crate) hooks: Vec<RawHook>,
    pub(crate) timestamp_format: Option<String>,
    pub(crate) timestamp_location: Option<String>,
}

/// A snapshotting hook, by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawHook {
    #[serde(rename = "command")]
    Command(RawCommandHook),
    #[serde(rename = "postgres-checkpoint")]
    Postgres(RawDsnHook),
    #[serde(rename = "mysql-lock-tables")]
    Mysql(RawDsnHook),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommandHook {
    pub(crate) path: String,
    pub(crate) timeout: Option<String>,
    pub(crate) filesystems: Option<Ordered<bool>>,
    pub(crate) err_is_fatal: Option<bool>,
}

/// `postgres-checkpoint` and `mysql-lock-tables`: `filesystems` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDsnHook {
    pub(crate) dsn: String,
    pub(crate) timeout: Option<String>,
    pub(crate) filesystems: Ordered<bool>,
    pub(crate) err_is_fatal: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPruningSenderReceiver {
    pub(crate) keep_sender: Vec<RawKeep>,
    pub(crate) keep_receiver: Vec<RawKeep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPruningLocal {
    pub(crate) keep: Vec<RawKeep>,
}

/// A keep rule, by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawKeep {
    #[serde(rename = "not_replicated")]
    NotReplicated(RawKeepNotReplicated),
    #[serde(rename = "last_n")]
    LastN(RawKeepLastN),
    #[serde(rename = "grid")]
    Grid(RawKeepGrid),
    #[serde(rename = "regex")]
    Regex(RawKeepRegex),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeepNotReplicated {
    pub(crate) keep_snapshot_at_cursor: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeepLastN {
    pub(crate) count: i64,
    pub(crate) regex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeepGrid {
    pub(crate) grid: String,
    pub(crate) regex: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeepRegex {
    pub(crate) regex: String,
    pub(crate) negate: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSend {
    pub(crate) encrypted: Option<bool>,
    pub(crate) raw: Option<bool>,
    pub(crate) send_properties: Option<bool>,
    pub(crate) backup_properties: Option<bool>,
    pub(crate) large_blocks: Option<bool>,
    pub(crate) compressed: Option<bool>,
    pub(crate) embedded_data: Option<bool>,
    pub(crate) saved: Option<bool>,
    pub(crate) bandwidth_limit: Option<RawBandwidthLimit>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBandwidthLimit {
    pub(crate) max: Option<String>,
    pub(crate) bucket_capacity: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecv {
    pub(crate) properties: Option<RawRecvProperties>,
    pub(crate) placeholder: Option<RawPlaceholder>,
    pub(crate) bandwidth_limit: Option<RawBandwidthLimit>,
    /// *zrelay extension*: allow `zfs recv -F` over a non-placeholder.
    pub(crate) force_overwrite: Option<bool>,
    /// *zrelay extension*: what the sending job may do to whole replicas.
    pub(crate) replicas: Option<RawRecvReplicas>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecvReplicas {
    pub(crate) rename: Option<bool>,
    pub(crate) destroy: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecvProperties {
    #[serde(default)]
    pub(crate) inherit: Vec<String>,
    #[serde(rename = "override", default)]
    pub(crate) override_: Ordered<String>,
    /// *zrelay extension*: protected properties whose sender's value is received.
    #[serde(default)]
    pub(crate) allow_from_sender: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub(crate) enum RawPlaceholderEncryption {
    #[serde(rename = "unspecified")]
    Unspecified,
    #[serde(rename = "off")]
    Off,
    #[serde(rename = "inherit")]
    Inherit,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlaceholder {
    pub(crate) encryption: Option<RawPlaceholderEncryption>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub(crate) enum RawGuarantee {
    #[serde(rename = "guarantee_resumability")]
    Resumability,
    #[serde(rename = "guarantee_incremental")]
    Incremental,
    #[serde(rename = "guarantee_nothing")]
    Nothing,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplication {
    pub(crate) protection: Option<RawProtection>,
    pub(crate) concurrency: Option<RawConcurrency>,
    /// *zrelay extension* (zrepl #403).
    pub(crate) snapshot_filter: Option<RawSnapshotFilter>,
    /// *zrelay extension*, push only (zrepl #397).
    pub(crate) schedule: Option<RawSchedule>,
    /// *zrelay extension*: zstd on the wire.
    pub(crate) wire_compression: Option<RawWireCompression>,
}

/// *zrelay extension* `replication.wire_compression`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWireCompression {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) level: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProtection {
    pub(crate) initial: Option<RawGuarantee>,
    pub(crate) incremental: Option<RawGuarantee>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConcurrency {
    pub(crate) steps: Option<i64>,
    pub(crate) size_estimates: Option<i64>,
}

/// *zrelay extension*: exactly one of `prefix` and `regex`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnapshotFilter {
    pub(crate) prefix: Option<String>,
    pub(crate) regex: Option<String>,
}

/// *zrelay extension*: exactly one of `interval` and `cron`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub(crate) interval: Option<String>,
    pub(crate) cron: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub(crate) enum RawInitial {
    #[serde(rename = "most_recent")]
    MostRecent,
    #[serde(rename = "all")]
    All,
    #[serde(rename = "fail")]
    Fail,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConflictResolution {
    pub(crate) initial_replication: Option<RawInitial>,
}
