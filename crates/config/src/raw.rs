//! Phase 1: zrepl's YAML exactly as written, as serde structs.
//!
//! Every struct has `deny_unknown_fields`; the enums renamed `type-tagged`
//! are read by their `type` key (see [`crate::de`]), the others from a
//! string. Optional keys are `Option`s: defaults are filled in by
//! phase 2 ([`crate::validate`]), which also parses durations, sizes, grids,
//! cron expressions and names. Keys marked *zrelay extension* are not
//! zrepl's.

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A mapping kept in document order (`filesystems`, `clients`, properties).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ordered<V>(pub(crate) Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = m.next_entry::<String, V>()? {
                    v.push((k, x));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V_(std::marker::PhantomData))
    }
}

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) global: Option<RawGlobal>,
    #[serde(default)]
    pub(crate) jobs: Vec<RawJob>,
    /// zrepl 0.7: files or directories whose `jobs` are appended.
    #[serde(default)]
    pub(crate) include: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub(crate) logging: Option<Vec<RawOutlet>>,
    #[serde(default)]
    pub(crate) monitoring: Vec<RawMonitoring>,
    pub(crate) control: Option<RawControl>,
    pub(crate) serve: Option<RawGlobalServe>,
    /// zrelay extension.
    pub(crate) history: Option<RawHistory>,
    /// zrelay extension.
    pub(crate) queue: Option<RawQueue>,
    /// zrelay extension.
    pub(crate) notify: Option<crate::notify::RawNotify>,
}

/// zrelay extension: `global.queue`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub(crate) path: Option<String>,
    pub(crate) lease: Option<String>,
    pub(crate) backoff_start: Option<String>,
    pub(crate) backoff_max: Option<String>,
    pub(crate) max_attempts: Option<i64>,
}

/// zrelay extension: `global.history`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHistory {
    pub(crate) path: Option<String>,
    pub(crate) max_age: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawControl {
    pub(crate) sockpath: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobalServe {
    pub(crate) stdinserver: Option<RawStdinserverGlobal>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStdinserverGlobal {
    pub(crate) sockdir: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub(crate) enum RawLevel {
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "warn")]
    Warn,
    #[serde(rename = "info")]
    Info,
    #[serde(rename = "debug")]
    Debug,
}

#[derive(Debug, Deserialize, Clone, Copy)]
pub(crate) enum RawFormat {
    #[serde(rename = "human")]
    Human,
    #[serde(rename = "logfmt")]
    Logfmt,
    #[serde(rename = "json")]
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawOutlet {
    #[serde(rename = "stdout")]
    Stdout(RawStdoutOutlet),
    #[serde(rename = "syslog")]
    Syslog(RawSyslogOutlet),
    #[serde(rename = "tcp")]
    Tcp(RawTcpOutlet),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStdoutOutlet {
    pub(crate) level: RawLevel,
    pub(crate) format: RawFormat,
    pub(crate) time: Option<bool>,
    pub(crate) color: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSyslogOutlet {
    pub(crate) level: RawLevel,
    pub(crate) format: RawFormat,
    pub(crate) facility: Option<String>,
    pub(crate) retry_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTcpOutlet {
    pub(crate) level: RawLevel,
    pub(crate) format: RawFormat,
    pub(crate) address: String,
    pub(crate) net: Option<String>,
    pub(crate) retry_interval: Option<String>,
    pub(crate) tls: Option<RawTlsFiles>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsFiles {
    pub(crate) ca: String,
    pub(crate) cert: String,
    pub(crate) key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawMonitoring {
    #[serde(rename = "prometheus")]
    Prometheus(RawPrometheus),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrometheus {
    pub(crate) listen: String,
    pub(crate) listen_freebind: Option<bool>,
    /// zrelay extension: `zrelay` (default) or `zrepl`.
    pub(crate) metric_names: Option<String>,
}

/// One job, by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawJob {
    #[serde(rename = "push")]
    Push(Box<RawPush>),
    #[serde(rename = "sink")]
    Sink(RawSink),
    #[serde(rename = "pull")]
    Pull(RawPull),
    #[serde(rename = "source")]
    Source(RawSource),
    #[serde(rename = "snap")]
    Snap(RawSnap),
}

impl RawJob {
    pub(crate) fn name(&self) -> &str {
        match self {
            RawJob::Push(j) => &j.name,
            RawJob::Sink(j) => &j.name,
            RawJob::Pull(j) => &j.name,
            RawJob::Source(j) => &j.name,
            RawJob::Snap(j) => &j.name,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPush {
    pub(crate) name: String,
    /// zrepl's one target; absent when `targets` (zrelay extension) is set.
    pub(crate) connect: Option<RawConnect>,
    /// zrelay extension: several targets, each with its own name.
    pub(crate) targets: Option<Vec<RawTarget>>,
    /// zrelay extension: how `targets` are driven.
    pub(crate) fan_out: Option<RawFanOut>,
    pub(crate) filesystems: Ordered<bool>,
    pub(crate) send: Option<RawSend>,
    pub(crate) snapshotting: RawSnapshotting,
    pub(crate) pruning: RawPruningSenderReceiver,
    pub(crate) replication: Option<RawReplication>,
    pub(crate) conflict_resolution: Option<RawConflictResolution>,
    /// zrelay extension: renamed and destroyed filesystems' replicas.
    pub(crate) replicas: Option<RawReplicas>,
    /// zrelay extension: commands around invocations and pruning.
    #[serde(default)]
    pub(crate) hooks: Vec<crate::job_hooks::RawJobHook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    pub(crate) name: String,
    pub(crate) serve: RawServe,
    pub(crate) root_fs: String,
    pub(crate) recv: Option<RawRecv>,
    /// zrelay extension.
    pub(crate) limits: Option<RawLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPull {
    pub(crate) name: String,
    pub(crate) connect: RawConnect,
    pub(crate) root_fs: String,
    pub(crate) interval: String,
    pub(crate) recv: Option<RawRecv>,
    pub(crate) pruning: RawPruningSenderReceiver,
    pub(crate) replication: Option<RawReplication>,
    pub(crate) conflict_resolution: Option<RawConflictResolution>,
    /// zrelay extension: commands around invocations and pruning.
    #[serde(default)]
    pub(crate) hooks: Vec<crate::job_hooks::RawJobHook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub(crate) name: String,
    pub(crate) serve: RawServe,
    pub(crate) filesystems: Ordered<bool>,
    pub(crate) send: Option<RawSend>,
    pub(crate) snapshotting: RawSnapshotting,
    /// zrelay extension.
    pub(crate) limits: Option<RawLimits>,
    /// zrelay extension: each client gets its own cursor and step holds.
    pub(crate) per_client_cursors: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnap {
    pub(crate) name: String,
    pub(crate) filesystems: Ordered<bool>,
    pub(crate) snapshotting: RawSnapshotting,
    pub(crate) pruning: RawPruningLocal,
}

/// `connect`, by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawConnect {
    #[serde(rename = "tcp")]
    Tcp(RawTcpConnect),
    #[serde(rename = "tls")]
    Tls(RawTlsConnect),
    #[serde(rename = "ssh+stdinserver")]
    Ssh(RawSshConnect),
    #[serde(rename = "local")]
    Local(RawLocalConnect),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTcpConnect {
    pub(crate) address: String,
    pub(crate) dial_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsConnect {
    pub(crate) address: String,
    pub(crate) ca: String,
    pub(crate) cert: String,
    pub(crate) key: String,
    pub(crate) server_cn: String,
    pub(crate) dial_timeout: Option<String>,
}

/// `ssh+stdinserver`. `transport_open_command` and `ssh_command` are read
/// and ignored, as zrepl does (it marks them unused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSshConnect {
    pub(crate) host: String,
    pub(crate) user: String,
    pub(crate) port: u16,
    pub(crate) identity_file: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) transport_open_command: Option<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) ssh_command: Option<String>,
    #[serde(default)]
    pub(crate) options: Vec<String>,
    pub(crate) dial_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocalConnect {
    pub(crate) listener_name: String,
    pub(crate) client_identity: String,
    pub(crate) dial_timeout: Option<String>,
}

/// `serve`, by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename = "type-tagged")]
pub(crate) enum RawServe {
    #[serde(rename = "tcp")]
    Tcp(RawTcpServe),
    #[serde(rename = "tls")]
    Tls(RawTlsServe),
    #[serde(rename = "stdinserver")]
    Stdinserver(RawStdinserverServe),
    #[serde(rename = "local")]
    Local(RawLocalServe),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTcpServe {
    pub(crate) listen: String,
    pub(crate) listen_freebind: Option<bool>,
    pub(crate) clients: Ordered<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsServe {
    pub(crate) listen: String,
    pub(crate) listen_freebind: Option<bool>,
    pub(crate) ca: String,
    pub(crate) cert: String,
    pub(crate) key: String,
    pub(crate) client_cns: Vec<String>,
    pub(crate) handshake_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStdinserverServe {
    pub(crate) client_identities: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocalServe {
    pub(crate) listener_name: String,
}

mod limits;
mod parts;
mod targets;
pub(crate) use limits::RawLimits;
pub(crate) use parts::*;
pub(crate) use targets::{RawFanOut, RawReplicas, RawTarget};
