//! The encoded schema: every family, its type, labels and values.

use std::time::{SystemTime, UNIX_EPOCH};

use zrelay_metrics::{Metrics, Side};

use crate::{populated, ODD_JOB};

/// The value of the sample `name{labels}` (labels as encoded), if present.
pub fn sample<'a>(out: &'a str, name: &str, labels: &str) -> Option<&'a str> {
    let prefix = format!("{name}{labels} ");
    out.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

fn has(out: &str, name: &str, labels: &str, value: &str) {
    assert_eq!(
        sample(out, name, labels),
        Some(value),
        "{name}{labels} in:\n{out}"
    );
}

const FAMILIES: &[(&str, &str)] = &[
    ("zrelay_start_time", "gauge"),
    ("zrelay_replication_state_time", "histogram"),
    ("zrelay_replication_bytes_replicated", "counter"),
    ("zrelay_replication_filesystem_errors", "gauge"),
    ("zrelay_replication_last_successful", "gauge"),
    ("zrelay_pruning_time", "histogram"),
    ("zrelay_daemon_log_entries", "counter"),
    ("zrelay_zfscmd_runtime", "histogram"),
    (
        "zrelay_filesystem_last_replicated_snapshot_timestamp",
        "gauge",
    ),
    ("zrelay_filesystem_bytes_pending", "gauge"),
    ("zrelay_control_request_begin", "counter"),
    ("zrelay_control_request_finished", "histogram"),
    ("zrelay_snapshotter_snapshots", "counter"),
];

#[test]
fn every_family_is_declared_with_help_and_type() {
    // Families without any series are left out; a fresh registry has only start_time.
    let fresh = Metrics::new("0.1.0", "v").encode();
    assert_eq!(fresh.matches("# TYPE ").count(), 1, "{fresh}");
    let out = populated().encode();
    for (name, ty) in FAMILIES {
        assert!(
            out.contains(&format!("\n# TYPE {name} {ty}\n")),
            "{name} {ty}:\n{out}"
        );
        assert!(out.contains(&format!("# HELP {name} ")), "{name} help");
    }
    assert!(out.ends_with("# EOF\n"), "{out}");
    let declared = out.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(declared, FAMILIES.len(), "undocumented families in:\n{out}");
}

#[test]
fn start_time_carries_version_labels_and_now() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let out = Metrics::new("0.1.0", "zrelay 0.1.0 (abc)").encode();
    let v: f64 = sample(
        &out,
        "zrelay_start_time",
        "{raw=\"0.1.0\",version_info=\"zrelay 0.1.0 (abc)\"}",
    )
    .expect("start_time sample")
    .parse()
    .unwrap();
    assert!(v >= before.floor() && v < before + 60.0, "{v} vs {before}");
}

#[test]
fn recorded_values_show_with_their_labels() {
    let out = populated().encode();
    let j = "{zrelay_job=\"prod_to_backup\"";
    let fs = format!("{j},filesystem=\"pool/data\"}}");
    has(
        &out,
        "zrelay_replication_bytes_replicated_total",
        &fs,
        "1024",
    );
    has(&out, "zrelay_filesystem_bytes_pending", &fs, "4096");
    has(
        &out,
        "zrelay_replication_filesystem_errors",
        &format!("{j}}}"),
        "2",
    );
    has(
        &out,
        "zrelay_replication_last_successful",
        &format!("{j}}}"),
        "1700000000",
    );
    for (side, ts) in [("sender", "1700000100"), ("receiver", "1700000050")] {
        let l = format!("{j},filesystem=\"pool/data\",side=\"{side}\"}}");
        has(
            &out,
            "zrelay_filesystem_last_replicated_snapshot_timestamp",
            &l,
            ts,
        );
    }
    has(
        &out,
        "zrelay_daemon_log_entries_total",
        &format!("{j},level=\"warn\"}}"),
        "2",
    );
    has(
        &out,
        "zrelay_daemon_log_entries_total",
        &format!("{j},level=\"error\"}}"),
        "1",
    );
    has(
        &out,
        "zrelay_snapshotter_snapshots_total",
        &format!("{j},result=\"ok\"}}"),
        "1",
    );
    has(
        &out,
        "zrelay_snapshotter_snapshots_total",
        &format!("{j},result=\"error\"}}"),
        "1",
    );

    let st = format!("{j},state=\"working\"}}");
    has(&out, "zrelay_replication_state_time_sum", &st, "42.0");
    has(&out, "zrelay_replication_state_time_count", &st, "1");
    let b = "{le=\"10.0\",zrelay_job=\"prod_to_backup\",state=\"working\"}";
    has(&out, "zrelay_replication_state_time_bucket", b, "0");
    let b = "{le=\"60.0\",zrelay_job=\"prod_to_backup\",state=\"working\"}";
    has(&out, "zrelay_replication_state_time_bucket", b, "1");

    let ps = format!("{j},prune_side=\"sender\"}}");
    has(&out, "zrelay_pruning_time_sum", &ps, "1.5");
    let pr = format!("{j},prune_side=\"receiver\"}}");
    has(&out, "zrelay_pruning_time_sum", &pr, "0.25");

    let z = "{zfsbinary=\"zfs\",zfsverb=\"send\"}";
    has(&out, "zrelay_zfscmd_runtime_sum", z, "12.0");
    has(&out, "zrelay_zfscmd_runtime_count", z, "1");
    let z = "{zfsbinary=\"zfs\",zfsverb=\"list\"}";
    has(&out, "zrelay_zfscmd_runtime_count", z, "1");

    has(
        &out,
        "zrelay_control_request_begin_total",
        "{endpoint=\"/status\"}",
        "1",
    );
    has(
        &out,
        "zrelay_control_request_finished_count",
        "{endpoint=\"/status\"}",
        "1",
    );
}

#[test]
fn label_values_are_escaped() {
    let out = populated().encode();
    assert!(
        !out.contains(ODD_JOB),
        "raw newline/quote leaked into the output"
    );
    let l = "{zrelay_job=\"we\\\"ird\\\\job\\nname\",filesystem=\"pool/data\"}";
    has(&out, "zrelay_replication_bytes_replicated_total", l, "1024");
}

#[test]
fn filesystem_errors_can_be_negative_and_gauges_overwrite() {
    let m = Metrics::new("0.1.0", "v");
    m.filesystem_errors("j", 3);
    m.filesystem_errors("j", -1);
    m.bytes_pending("j", "p/a", 10);
    m.bytes_pending("j", "p/a", 0);
    let out = m.encode();
    has(
        &out,
        "zrelay_replication_filesystem_errors",
        "{zrelay_job=\"j\"}",
        "-1",
    );
    has(
        &out,
        "zrelay_filesystem_bytes_pending",
        "{zrelay_job=\"j\",filesystem=\"p/a\"}",
        "0",
    );
}

#[test]
fn forget_filesystem_drops_lag_and_pending_but_keeps_the_counter() {
    let m = Metrics::new("0.1.0", "v");
    m.bytes_replicated("j", "p/a", 5);
    m.bytes_pending("j", "p/a", 7);
    m.fs_lag("j", "p/a", Side::Sender, 1);
    m.fs_lag("j", "p/a", Side::Receiver, 1);
    m.forget_filesystem("j", "p/a");
    let out = m.encode();
    assert!(!out.contains("zrelay_filesystem_bytes_pending{"), "{out}");
    assert!(
        !out.contains("zrelay_filesystem_last_replicated_snapshot_timestamp{"),
        "{out}"
    );
    has(
        &out,
        "zrelay_replication_bytes_replicated_total",
        "{zrelay_job=\"j\",filesystem=\"p/a\"}",
        "5",
    );
}

#[test]
fn classic_text_renames_counter_families() {
    let t = populated().encode_text();
    assert!(
        t.contains("# TYPE zrelay_replication_bytes_replicated_total counter\n"),
        "{t}"
    );
    assert!(t.contains("# HELP zrelay_daemon_log_entries_total "), "{t}");
    assert!(t.contains("# TYPE zrelay_pruning_time histogram\n"), "{t}");
    assert!(!t.contains("# EOF"), "{t}");
}
