//! Integration tests of zrelay-metrics: the encoded schema, observing
//! reports and the zfs log, the HTTP endpoint, and `promtool check metrics`.

mod encode;
mod http;
mod observe;
mod promtool;

use zrelay_metrics::{Metrics, Side};

/// A job name that needs escaping in the exposition formats.
pub const ODD_JOB: &str = "we\"ird\\job\nname";

/// Metrics with a value in every family, including odd label values.
pub fn populated() -> Metrics {
    let m = Metrics::new("0.1.0", "zrelay version=0.1.0 rustc=1.88");
    for job in ["prod_to_backup", ODD_JOB] {
        m.replication_state_time(job, "planning", 0.5);
        m.replication_state_time(job, "working", 42.0);
        m.bytes_replicated(job, "pool/data", 1000);
        m.bytes_replicated(job, "pool/data", 24);
        m.filesystem_errors(job, 2);
        m.last_successful(job, 1_700_000_000);
        m.pruning_time(job, Side::Sender, 1.5);
        m.pruning_time(job, Side::Receiver, 0.25);
        m.log_entry(job, "warn");
        m.log_entry(job, "warn");
        m.log_entry(job, "error");
        m.fs_lag(job, "pool/data", Side::Sender, 1_700_000_100);
        m.fs_lag(job, "pool/data", Side::Receiver, 1_700_000_050);
        m.bytes_pending(job, "pool/data", 4096);
        m.snapshot_taken(job, true);
        m.snapshot_taken(job, false);
    }
    m.zfs_command("zfs", "list", 0.02);
    m.zfs_command("zfs", "send", 12.0);
    m.control_request_begin("/status");
    m.control_request_finished("/status", 0.003);
    m
}
