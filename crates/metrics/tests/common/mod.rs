//! Shared by the dashboard tests.

use zrelay_metrics::{Metrics, Side};

/// Metrics as a daemon exports them once its jobs have run: a sample in
/// every family.
pub fn with_a_sample_in_every_family() -> Metrics {
    let m = Metrics::new("0.0.0", "test");
    m.replication_state_time("j", "working", 1.0);
    m.bytes_replicated("j", "p/a", 1);
    m.filesystem_errors("j", 0);
    m.last_successful("j", 1);
    m.pruning_time("j", Side::Sender, 1.0);
    m.log_entry("j", "warn");
    m.zfs_command("zfs", "send", 1.0);
    m.fs_lag("j", "p/a", Side::Receiver, 1);
    m.bytes_pending("j", "p/a", 1);
    m.snapshot_taken("j", true);
    m.unmatched_user_specified("j", 0);
    m
}
