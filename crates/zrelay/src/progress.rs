//! Progress lines for one-shot commands, from the driver's live report.

use std::collections::HashMap;
use std::time::Duration;

use zrelay_replication::{FsReport, FsState, Report, ReportHandle};

/// `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn line(f: &FsReport) -> String {
    let step = f
        .current_step
        .as_ref()
        .map(|s| {
            let step = match &s.from {
                Some(from) => format!("{from} => {}", s.to),
                None => format!("full {}", s.to),
            };
            if s.resumed {
                format!("{step} (resumed)")
            } else {
                step
            }
        })
        .unwrap_or_default();
    let expected = if f.bytes_expected > 0 {
        format!(" / {}", human_bytes(f.bytes_expected))
    } else {
        String::new()
    };
    let mut s = format!(
        "{:<12} {} [{}/{} steps] {}{} {}",
        f.state.as_str(),
        f.fs,
        f.steps_done,
        f.steps_total,
        human_bytes(f.bytes_replicated),
        expected,
        step
    );
    if let Some(e) = &f.last_error {
        s.push_str(&format!("\n             error: {e}"));
    }
    if let Some(i) = &f.info {
        s.push_str(&format!("\n             {i}"));
    }
    s
}

/// Print a line whenever a filesystem's state, step or (each second) bytes change.
pub async fn follow(report: ReportHandle, _tty: bool) {
    let mut last: HashMap<String, String> = HashMap::new();
    let mut last_state = String::new();
    loop {
        let r = report.snapshot();
        let st = r.state.as_str().to_string();
        if st != last_state {
            eprintln!("attempt {}: {}", r.attempt, st);
            last_state = st;
        }
        for f in &r.filesystems {
            let l = line(f);
            if last.get(&f.fs) != Some(&l) && f.state != FsState::Ready {
                eprintln!("  {l}");
                last.insert(f.fs.clone(), l);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The final per-filesystem table.
pub fn summary(r: &Report) {
    eprintln!(
        "replication {} after {} attempt(s):",
        r.state.as_str(),
        r.attempt
    );
    for f in &r.filesystems {
        eprintln!("  {}", line(f));
        if let Some(i) = &f.info {
            eprintln!("             {i}");
        }
    }
    if let Some(e) = &r.planning_error {
        eprintln!("  planning error: {e}");
    }
}

/// A job's status, several lines, for `zrelay status --mode dump`.
pub fn job_status(j: &zrelay_daemon::status::JobStatus) -> String {
    use std::fmt::Write;
    let state = serde_json::to_value(j.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut s = format!("job {} ({}, {}): {state}", j.name, j.kind, j.endpoint);
    if j.kind == "sink" || j.kind == "source" {
        let _ = write!(s, ", {} connection(s) served", j.connections);
    } else {
        let _ = write!(s, ", {} invocation(s)", j.invocations);
    }
    let (label, report) = match (&j.current, &j.last) {
        (Some(r), _) => ("running", Some(r)),
        (None, Some(r)) => ("last", Some(r)),
        _ => ("", None),
    };
    if let Some(r) = report {
        let _ = write!(
            s,
            "\n  {label} invocation: {} (attempt {})",
            r.state.as_str(),
            r.attempt
        );
        for f in &r.filesystems {
            let _ = write!(s, "\n    {}", line(f));
        }
        if let Some(e) = &r.planning_error {
            let _ = write!(s, "\n    planning error: {e}");
        }
    }
    if let Some(e) = &j.last_error {
        let _ = write!(s, "\n  last error: {e}");
    }
    let failed = j.state == zrelay_daemon::status::JobState::Failed;
    if j.restarts > 0 || failed {
        let _ = write!(s, "\n  restarted {} time(s) after failures", j.restarts);
        match j.restart_at {
            Some(at) if failed => {
                let now = zrelay_replication::report::unix(std::time::SystemTime::now());
                let _ = write!(s, "; next restart in {}s", at.saturating_sub(now));
            }
            None if failed => {
                let _ = write!(s, "; not restarted (permanent failure)");
            }
            _ => {}
        }
    }
    if let Some(sn) = &j.snapshotter {
        let state = serde_json::to_value(sn.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = write!(s, "\n  snapshotter ({}): {state}", sn.kind);
        if let Some(t) = sn.next_run {
            let now = std::time::SystemTime::now();
            let secs = t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0);
            let _ = write!(s, ", next snapshot in {secs}s");
        }
        if let Some(r) = &sn.last_report {
            let done = r.snapshotted().count();
            let _ = write!(s, ", last @{} on {done} filesystem(s)", r.name);
        }
        if let Some(e) = &sn.last_error {
            let _ = write!(s, "\n  snapshotter error: {e}");
        }
    }
    for p in &j.last_pruning {
        let destroyed: usize = p.filesystems.iter().map(|f| f.destroyed.len()).sum();
        let _ = write!(s, "\n  last pruning ({:?}): {destroyed} destroyed", p.side);
        if let Some(e) = &p.error {
            let _ = write!(s, ", error: {e}");
        }
    }
    if let Some(at) = j.next_run_at {
        let now = zrelay_replication::report::unix(std::time::SystemTime::now());
        let _ = write!(s, "\n  next run in {}s", at.saturating_sub(now));
    }
    let now = zrelay_replication::report::unix(std::time::SystemTime::now());
    for t in &j.targets {
        let _ = write!(s, "\n  {}", target_line(t, now));
        let report = t.current.as_ref().or(t.last.as_ref());
        for f in report.map(|r| r.filesystems.as_slice()).unwrap_or_default() {
            let _ = write!(s, "\n      {}", line(f));
        }
        if let Some(e) = &t.last_error {
            let _ = write!(s, "\n      last error: {e}");
        }
    }
    s
}

/// One target of a fan-out job on one line: state, health, backoff, lag.
pub fn target_line(t: &zrelay_daemon::status::TargetStatus, now: u64) -> String {
    use std::fmt::Write;
    let name = |v: serde_json::Result<serde_json::Value>| {
        v.ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let h = &t.health;
    let mut s = format!(
        "target {} ({}): {}, {} since {}s",
        t.name,
        t.endpoint,
        name(serde_json::to_value(t.state)),
        name(serde_json::to_value(h.health)),
        now.saturating_sub(h.since)
    );
    if h.failures > 0 {
        let _ = write!(
            s,
            ", backoff {}s after {} failure(s)",
            h.backoff_seconds, h.failures
        );
        if let Some(until) = h.backoff_until {
            let _ = write!(s, ", next attempt in {}s", until.saturating_sub(now));
        }
    }
    match t.lag_seconds {
        Some(l) => {
            let _ = write!(s, ", lag {l}s");
        }
        None => s.push_str(", lag unknown"),
    }
    if !h.protecting {
        s.push_str(", no longer protects the sender's snapshots (protection_grace)");
    }
    if let Some(e) = &h.error {
        let _ = write!(s, "; health check: {e}");
    }
    s
}

/// A snapshot round, one line per filesystem.
pub fn snapshot_summary(r: &zrelay_snapshot::SnapshotReport) -> String {
    use std::fmt::Write;
    let mut s = format!("snapshot @{}:\n", r.name);
    if let Some(e) = &r.error {
        let _ = writeln!(s, "  round failed: {e}");
    }
    for f in &r.filesystems {
        let state = match (f.ok, f.snapshotted) {
            (true, _) => "done",
            (false, true) => "done, hook errors",
            (false, false) => "failed",
        };
        let _ = write!(s, "  {state:<18} {}", f.fs);
        if let Some(e) = &f.error {
            let _ = write!(s, ": {e}");
        }
        s.push('\n');
    }
    s
}
