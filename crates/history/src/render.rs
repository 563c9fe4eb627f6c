//! [`render_table`]: the record for humans.

use std::time::{Duration, SystemTime};

use crate::model::Row;

const HEADER: [&str; 8] = [
    "TIME (UTC)",
    "JOB",
    "FS",
    "STEP",
    "STATE",
    "BYTES",
    "DURATION",
    "ERROR",
];

/// Renders rows as an aligned text table with the columns time (UTC), job,
/// fs, step, state, bytes, duration and error, one line per row, in the
/// order given, ending with a newline. A row without a step shows its kind
/// (and attempt number) in the step column.
pub fn render_table(rows: &[Row]) -> String {
    let cells: Vec<[String; 8]> = rows.iter().map(cells).collect();
    let mut width = HEADER.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&cells) {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn cells(row: &Row) -> [String; 8] {
    let inv = &row.invocation;
    let (fs, step, bytes, started, finished) = match (&row.step, &row.attempt) {
        (Some(s), _) => {
            let mut what = format!(
                "{} -> {}",
                s.from_snapshot.as_deref().unwrap_or("(full)"),
                s.to_snapshot
            );
            if s.resumed {
                what.push_str(" (resumed)");
            }
            if let Some(a) = row.attempt.as_ref().filter(|a| a.n > 1) {
                what = format!("{what} [attempt {}]", a.n);
            }
            let bytes = match s.bytes_expected {
                Some(e) => format!("{}/{}", format_bytes(s.bytes), format_bytes(e)),
                None => format_bytes(s.bytes),
            };
            (s.filesystem.clone(), what, bytes, s.started, s.finished)
        }
        (None, Some(a)) => (
            "-".to_owned(),
            format!("{} attempt {}", inv.kind, a.n),
            "-".to_owned(),
            a.started,
            a.finished,
        ),
        (None, None) => (
            "-".to_owned(),
            inv.kind.to_string(),
            "-".to_owned(),
            inv.started,
            inv.finished,
        ),
    };
    let duration = finished
        .and_then(|f| f.duration_since(started).ok())
        .map_or_else(|| "-".to_owned(), format_duration);
    let error = row
        .error()
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    [
        format_time(started),
        inv.job.clone(),
        fs,
        step,
        row.state().to_string(),
        bytes,
        duration,
        error,
    ]
}

fn format_time(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A duration for humans: `850ms`, `12s`, `3m12s`, `2h05m`, `3d04h`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::model::*;

    #[test]
    fn units() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_secs(192)), "3m12s");
        assert_eq!(format_duration(Duration::from_secs(7500)), "2h05m");
        assert_eq!(
            format_duration(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3d04h"
        );
    }

    #[test]
    fn table_has_the_columns_and_aligns() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let invocation = InvocationRecord {
            id: InvocationId(1),
            job: "backup".into(),
            kind: Kind::Replication,
            started: t0,
            finished: None,
            state: State::Failed,
            error: Some("boom".into()),
        };
        let attempt = AttemptRecord {
            id: AttemptId(1),
            n: 2,
            started: t0,
            finished: None,
            state: State::Failed,
            error: None,
        };
        let step = StepRecord {
            id: StepId(1),
            filesystem: "pool/a".into(),
            from_snapshot: None,
            to_snapshot: "s1".into(),
            resumed: true,
            started: t0,
            finished: Some(t0 + Duration::from_secs(65)),
            bytes_expected: Some(2048),
            bytes: 1024,
            state: State::Failed,
            error: Some("cannot\nreceive".into()),
        };
        let rows = [
            Row {
                invocation: invocation.clone(),
                attempt: Some(attempt),
                step: Some(step),
            },
            Row {
                invocation,
                attempt: None,
                step: None,
            },
        ];
        let t = render_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("TIME (UTC)"), "{t}");
        for col in ["JOB", "FS", "STEP", "STATE", "BYTES", "DURATION", "ERROR"] {
            assert!(lines[0].contains(col), "{t}");
        }
        assert!(lines[1].starts_with("2023-11-14 22:13:20  backup"), "{t}");
        assert!(
            lines[1].contains("(full) -> s1 (resumed) [attempt 2]"),
            "{t}"
        );
        assert!(lines[1].contains("1.0 KiB/2.0 KiB"), "{t}");
        assert!(lines[1].contains("1m05s"), "{t}");
        assert!(lines[1].ends_with("cannot receive"), "{t}");
        assert!(lines[2].ends_with("boom"), "{t}");
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][col..col + 6], "failed");
    }
}
