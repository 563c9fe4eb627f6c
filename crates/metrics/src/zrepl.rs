//! zrepl's metric names (`global.monitoring[].metric_names: zrepl`), so that
//! zrepl's Grafana dashboard and alert rules keep working after a switch.
//!
//! Invariants:
//! - Every family zrelay shares with zrepl ([`SHARED`]) is exported under
//!   zrepl's name (`zrepl_…`) and labels (`zrepl_job`, `jobid`), with zrepl's
//!   sample names: a counter's sample is the family name itself, as Go's
//!   client writes it (no `_total`), which only the text format 0.0.4 can
//!   carry, so this output is always 0.0.4.
//! - zrelay's own families (lag, pending bytes, snapshotter, targets, the
//!   queue) keep their `zrelay_` names and labels, unchanged.
//! - The families of zrepl's dashboard that have no zrelay counterpart are
//!   added with the nearest meaning ([`extras`]), each documented in its help
//!   text; nothing else is invented.

use std::fmt::Write as _;

use crate::Metrics;

/// zrelay's family (without `zrelay_`), whether it is a counter, and the
/// label zrepl uses for the job (`zrepl_job`, or `jobid`).
const SHARED: &[(&str, bool, &str)] = &[
    ("start_time", false, "zrepl_job"),
    ("replication_state_time", false, "zrepl_job"),
    ("replication_bytes_replicated", true, "zrepl_job"),
    ("replication_filesystem_errors", false, "zrepl_job"),
    ("replication_last_successful", false, "zrepl_job"),
    ("pruning_time", false, "zrepl_job"),
    ("daemon_log_entries", true, "zrepl_job"),
    ("control_request_begin", true, "zrepl_job"),
    ("control_request_finished", false, "zrepl_job"),
    ("zfscmd_runtime", false, "zrepl_job"),
    (
        "zfs_list_unmatched_user_specified_dataset_count",
        true,
        "jobid",
    ),
];

const SUFFIXES: &[&str] = &["total", "bucket", "sum", "count", "created"];

/// zrepl's name for metric (sample or family) `name`, and the job label.
fn rename(name: &str) -> Option<(String, &'static str)> {
    let rest = name.strip_prefix("zrelay_")?;
    for (fam, counter, job_label) in SHARED {
        if rest == *fam {
            return Some((format!("zrepl_{fam}"), job_label));
        }
        let Some(suffix) = rest
            .strip_prefix(fam)
            .and_then(|s| s.strip_prefix('_'))
            .filter(|s| SUFFIXES.contains(s))
        else {
            continue;
        };
        let name = if *counter && suffix == "total" {
            format!("zrepl_{fam}")
        } else {
            format!("zrepl_{fam}_{suffix}")
        };
        return Some((name, job_label));
    }
    None
}

/// Rewrite one line of 0.0.4 text.
fn line(l: &str) -> String {
    for kw in ["# HELP ", "# TYPE "] {
        if let Some(rest) = l.strip_prefix(kw) {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            return match rename(name) {
                Some((n, _)) => format!("{kw}{n} {tail}"),
                None => l.to_string(),
            };
        }
    }
    let end = l.find(['{', ' ']).unwrap_or(l.len());
    let Some((n, job_label)) = rename(&l[..end]) else {
        return l.to_string();
    };
    let rest = &l[end..];
    let rest = rest
        .replacen("{zrelay_job=\"", &format!("{{{job_label}=\""), 1)
        .replacen(",zrelay_job=\"", &format!(",{job_label}=\""), 1);
    format!("{n}{rest}")
}

/// The gauges of zrepl's dashboard that zrelay has no family for, with
/// the nearest meaning.
fn extras(out: &mut String) {
    let tasks = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_alive_tasks())
        .unwrap_or(0);
    let (size, resident) = statm().unwrap_or((0, 0));
    let gauges: [(&str, &str, u64); 5] = [
        (
            "zrepl_trace_active_tasks",
            "zrelay: tasks alive in the daemon's runtime (zrepl: active trace tasks)",
            tasks as u64,
        ),
        (
            "zrepl_endpoint_abstractions_cache_entry_count",
            "zrelay keeps no abstractions cache: always 0 (zrepl: entries of its cache)",
            0,
        ),
        (
            "go_goroutines",
            "zrelay: tasks alive in the daemon's runtime (zrepl: goroutines)",
            tasks as u64,
        ),
        (
            "go_memstats_sys_bytes",
            "zrelay: the process's virtual size, /proc/self/statm (zrepl: bytes obtained from the OS)",
            size,
        ),
        (
            "go_memstats_alloc_bytes",
            "zrelay: the process's resident set, /proc/self/statm (zrepl: heap bytes allocated)",
            resident,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
}

/// (virtual size, resident set) in bytes, on Linux.
fn statm() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    let (size, resident) = (it.next()??, it.next()??);
    const PAGE: u64 = 4096;
    Some((size * PAGE, resident * PAGE))
}

impl Metrics {
    /// The text format 0.0.4 with zrepl's names for the families zrelay
    /// shares with zrepl, zrelay's names for its own, and the gauges of
    /// zrepl's dashboard that zrelay has no family for.
    pub fn encode_zrepl(&self) -> String {
        let mut out = String::new();
        for l in self.encode_text().lines() {
            out.push_str(&line(l));
            out.push('\n');
        }
        extras(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_families_take_zrepl_names_and_own_ones_keep_theirs() {
        let m = Metrics::new("0.1.0", "zrelay 0.1.0");
        m.bytes_replicated("job a", "p/x", 5);
        m.pruning_time("job a", crate::Side::Sender, 0.2);
        m.unmatched_user_specified("job a", 2);
        m.fs_lag("job a", "p/x", crate::Side::Sender, 7);
        let t = m.encode_zrepl();
        assert!(
            t.contains(
                "\nzrepl_replication_bytes_replicated{zrepl_job=\"job a\",filesystem=\"p/x\"} 5\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("# TYPE zrepl_replication_bytes_replicated counter"),
            "{t}"
        );
        assert!(
            t.contains(
                "zrepl_pruning_time_bucket{le=\"0.5\",zrepl_job=\"job a\",prune_side=\"sender\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains("zrepl_zfs_list_unmatched_user_specified_dataset_count{jobid=\"job a\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("zrelay_filesystem_last_replicated_snapshot_timestamp{zrelay_job=\"job a\""),
            "zrelay's own family keeps its name: {t}"
        );
        assert!(t.contains("\ngo_goroutines "), "{t}");
        assert!(!t.contains("zrelay_replication_bytes"), "{t}");
        assert!(!t.contains("# EOF"));
    }
}
