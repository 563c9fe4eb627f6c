//! The metric families, their label sets and the typed recording methods.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::observe::ObserveState;

/// A label value, escaped for the text formats when encoded.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct Lv(String);

impl From<&str> for Lv {
    fn from(s: &str) -> Self {
        Lv(s.to_string())
    }
}

impl EncodeLabelValue for Lv {
    fn encode(&self, enc: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        if !self.0.contains(['\\', '"', '\n']) {
            return enc.write_str(&self.0);
        }
        for c in self.0.chars() {
            match c {
                '\\' => enc.write_str("\\\\")?,
                '"' => enc.write_str("\\\"")?,
                '\n' => enc.write_str("\\n")?,
                c => enc.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StartLabels {
    raw: Lv,
    version_info: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    zrelay_job: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStateLabels {
    zrelay_job: Lv,
    state: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobFsLabels {
    zrelay_job: Lv,
    filesystem: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobFsSideLabels {
    zrelay_job: Lv,
    filesystem: Lv,
    side: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PruneLabels {
    zrelay_job: Lv,
    prune_side: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogLabels {
    zrelay_job: Lv,
    level: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZfsCmdLabels {
    zfsbinary: Lv,
    zfsverb: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SnapLabels {
    zrelay_job: Lv,
    result: Lv,
}

type Hist<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds a replication run spends in one state: 0.1 s to a day.
const STATE_TIME_BUCKETS: &[f64] = &[
    0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0,
];
/// One pruning run.
const PRUNING_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
/// One zfs command: 5 ms (`zfs get`) to hours (`zfs send`).
const ZFSCMD_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    7200.0,
];
/// One control request (zrepl's buckets).
const CONTROL_BUCKETS: &[f64] = &[
    1e-6, 10e-6, 100e-6, 500e-6, 1e-3, 10e-3, 100e-3, 200e-3, 400e-3, 800e-3, 1.0, 10.0, 20.0,
];

fn state_time_hist() -> Histogram {
    Histogram::new(STATE_TIME_BUCKETS.iter().copied())
}
fn pruning_hist() -> Histogram {
    Histogram::new(PRUNING_BUCKETS.iter().copied())
}
fn zfscmd_hist() -> Histogram {
    Histogram::new(ZFSCMD_BUCKETS.iter().copied())
}
fn control_hist() -> Histogram {
    Histogram::new(CONTROL_BUCKETS.iter().copied())
}

/// Which side of a replication a value is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The sending side.
    Sender,
    /// The receiving side.
    Receiver,
}

impl Side {
    /// `sender` or `receiver`, as the labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }
    }
}

/// The daemon's metrics: one registry with every `zrelay_` family.
/// Share it as `Arc<Metrics>`; every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    start_time: Family<StartLabels, Gauge<f64, AtomicU64>>,
    state_time: Hist<JobStateLabels>,
    bytes_replicated: Family<JobFsLabels, Counter>,
    fs_errors: Family<JobLabels, Gauge>,
    last_successful: Family<JobLabels, Gauge>,
    pruning_time: Hist<PruneLabels>,
    log_entries: Family<LogLabels, Counter>,
    zfscmd_runtime: Hist<ZfsCmdLabels>,
    fs_last_replicated: Family<JobFsSideLabels, Gauge>,
    bytes_pending: Family<JobFsLabels, Gauge>,
    control_begin: Family<EndpointLabels, Counter>,
    control_finished: Hist<EndpointLabels>,
    snapshots: Family<SnapLabels, Counter>,
    unmatched: Family<JobLabels, Counter>,
    /// Export zrepl's names too ([`Metrics::encode_zrepl`]).
    zrepl_names: std::sync::atomic::AtomicBool,
    pub(crate) manager: crate::manager::Manager,
    pub(crate) observed: Mutex<ObserveState>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn jf(job: &str, fs: &str) -> JobFsLabels {
    JobFsLabels {
        zrelay_job: job.into(),
        filesystem: fs.into(),
    }
}

fn jl(job: &str) -> JobLabels {
    JobLabels {
        zrelay_job: job.into(),
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Every family registered; `zrelay_start_time{raw,version_info}` set to now.
    /// `raw` is the bare version (`0.1.0`), `version_info` a longer description.
    pub fn new(raw: &str, version_info: &str) -> Self {
        let mut r = Registry::with_prefix("zrelay");
        let m = Metrics {
            start_time: Family::default(),
            state_time: Family::new_with_constructor(state_time_hist),
            bytes_replicated: Family::default(),
            fs_errors: Family::default(),
            last_successful: Family::default(),
            pruning_time: Family::new_with_constructor(pruning_hist),
            log_entries: Family::default(),
            zfscmd_runtime: Family::new_with_constructor(zfscmd_hist),
            fs_last_replicated: Family::default(),
            bytes_pending: Family::default(),
            control_begin: Family::default(),
            control_finished: Family::new_with_constructor(control_hist),
            snapshots: Family::default(),
            unmatched: Family::default(),
            zrepl_names: std::sync::atomic::AtomicBool::new(false),
            manager: crate::manager::Manager::register(&mut r),
            observed: Mutex::default(),
            registry: Registry::default(),
        };
        r.register(
            "start_time",
            "zrelay daemon start time (unix seconds) and version",
            m.start_time.clone(),
        );
        r.register(
            "replication_state_time",
            "Seconds a finished replication run spent in each state",
            m.state_time.clone(),
        );
        r.register(
            "replication_bytes_replicated",
            "Bytes replicated per filesystem",
            m.bytes_replicated.clone(),
        );
        r.register(
            "replication_filesystem_errors",
            "Filesystems that failed in the last finished run (-1: failed before listing filesystems)",
            m.fs_errors.clone(),
        );
        r.register(
            "replication_last_successful",
            "Unix time the last fully successful replication run finished",
            m.last_successful.clone(),
        );
        r.register(
            "pruning_time",
            "Seconds one pruning run took",
            m.pruning_time.clone(),
        );
        r.register(
            "daemon_log_entries",
            "Log entries by job and level",
            m.log_entries.clone(),
        );
        r.register(
            "zfscmd_runtime",
            "Wall-clock seconds of finished zfs/zpool commands",
            m.zfscmd_runtime.clone(),
        );
        r.register(
            "filesystem_last_replicated_snapshot_timestamp",
            "Creation time (unix seconds) of the newest snapshot present on both sides",
            m.fs_last_replicated.clone(),
        );
        r.register(
            "filesystem_bytes_pending",
            "Bytes the next replication must still send (0 when up to date)",
            m.bytes_pending.clone(),
        );
        r.register(
            "control_request_begin",
            "Control requests started",
            m.control_begin.clone(),
        );
        r.register(
            "control_request_finished",
            "Seconds control requests took",
            m.control_finished.clone(),
        );
        r.register(
            "snapshotter_snapshots",
            "Snapshots the snapshotter tried to take, by result",
            m.snapshots.clone(),
        );
        r.register(
            "zfs_list_unmatched_user_specified_dataset_count",
            "Datasets a job's filesystems filter names explicitly that a listing did not find",
            m.unmatched.clone(),
        );
        let m = Metrics { registry: r, ..m };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        m.start_time
            .get_or_create(&StartLabels {
                raw: raw.into(),
                version_info: version_info.into(),
            })
            .set(now);
        m
    }

    /// Seconds a replication run spent in `state` (an attempt-state name).
    pub fn replication_state_time(&self, job: &str, state: &str, secs: f64) {
        let l = JobStateLabels {
            zrelay_job: job.into(),
            state: state.into(),
        };
        self.state_time.get_or_create(&l).observe(secs);
    }

    /// `n` more bytes replicated for `fs`.
    pub fn bytes_replicated(&self, job: &str, fs: &str, n: u64) {
        self.bytes_replicated.get_or_create(&jf(job, fs)).inc_by(n);
    }

    /// Failed filesystems of the last finished run (−1: failed before listing).
    pub fn filesystem_errors(&self, job: &str, n: i64) {
        self.fs_errors.get_or_create(&jl(job)).set(n);
    }

    /// The last fully successful run finished at `ts` (unix seconds).
    pub fn last_successful(&self, job: &str, ts: u64) {
        self.last_successful
            .get_or_create(&jl(job))
            .set(clamp_i64(ts));
    }

    /// One pruning run on `side` took `secs`.
    pub fn pruning_time(&self, job: &str, side: Side, secs: f64) {
        let l = PruneLabels {
            zrelay_job: job.into(),
            prune_side: side.as_str().into(),
        };
        self.pruning_time.get_or_create(&l).observe(secs);
    }

    /// One log entry at `level` (`error`, `warn`, `info`, `debug`).
    pub fn log_entry(&self, job: &str, level: &str) {
        let l = LogLabels {
            zrelay_job: job.into(),
            level: level.into(),
        };
        self.log_entries.get_or_create(&l).inc();
    }

    /// A `binary verb …` command finished after `secs`.
    pub fn zfs_command(&self, binary: &str, verb: &str, secs: f64) {
        let l = ZfsCmdLabels {
            zfsbinary: binary.into(),
            zfsverb: verb.into(),
        };
        self.zfscmd_runtime.get_or_create(&l).observe(secs);
    }

    /// The newest snapshot of `fs` present on both sides was created at `ts`
    /// (unix seconds), as seen from `side`.
    pub fn fs_lag(&self, job: &str, fs: &str, side: Side, ts: u64) {
        let l = JobFsSideLabels {
            zrelay_job: job.into(),
            filesystem: fs.into(),
            side: side.as_str().into(),
        };
        self.fs_last_replicated.get_or_create(&l).set(clamp_i64(ts));
    }

    /// `n` bytes still to send for `fs` (0 when up to date).
    pub fn bytes_pending(&self, job: &str, fs: &str, n: u64) {
        self.bytes_pending
            .get_or_create(&jf(job, fs))
            .set(clamp_i64(n));
    }

    /// A control request to `endpoint` started.
    pub fn control_request_begin(&self, endpoint: &str) {
        let l = EndpointLabels {
            endpoint: endpoint.into(),
        };
        self.control_begin.get_or_create(&l).inc();
    }

    /// A control request to `endpoint` finished after `secs`.
    pub fn control_request_finished(&self, endpoint: &str, secs: f64) {
        let l = EndpointLabels {
            endpoint: endpoint.into(),
        };
        self.control_finished.get_or_create(&l).observe(secs);
    }

    /// The snapshotter tried to take a snapshot.
    pub fn snapshot_taken(&self, job: &str, ok: bool) {
        let l = SnapLabels {
            zrelay_job: job.into(),
            result: if ok { "ok" } else { "error" }.into(),
        };
        self.snapshots.get_or_create(&l).inc();
    }

    /// Drop `fs`'s lag and pending series (it is no longer replicated).
    /// Its byte counter stays, as counters must not go backwards.
    pub fn forget_filesystem(&self, job: &str, fs: &str) {
        self.bytes_pending.remove(&jf(job, fs));
        for side in [Side::Sender, Side::Receiver] {
            self.fs_last_replicated.remove(&JobFsSideLabels {
                zrelay_job: job.into(),
                filesystem: fs.into(),
                side: side.as_str().into(),
            });
        }
    }

    /// `n` datasets that `job`'s `filesystems` filter names explicitly were
    /// not found by one listing (zrepl's
    /// `zfs_list_unmatched_user_specified_dataset_count`).
    pub fn unmatched_user_specified(&self, job: &str, n: u64) {
        self.unmatched.get_or_create(&jl(job)).inc_by(n);
    }

    /// Serve zrepl's names ([`Metrics::encode_zrepl`]) from the endpoint
    /// (`global.monitoring[].metric_names: zrepl`).
    pub fn set_zrepl_names(&self, on: bool) {
        self.zrepl_names
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// See [`Metrics::set_zrepl_names`].
    pub fn zrepl_names(&self) -> bool {
        self.zrepl_names.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The registry, e.g. to encode it with another `prometheus-client` encoder.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// OpenMetrics 1.0 text, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The classic Prometheus text format 0.0.4 (counters' `HELP`/`TYPE`
    /// carry the `_total` name, no `# EOF`).
    pub fn encode_text(&self) -> String {
        crate::text::openmetrics_to_text(&self.encode())
    }
}
