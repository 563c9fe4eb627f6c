//! Every configuration zrepl 0.7 accepts is accepted (issue #17).
//!
//! - `samples/zrepl/`: zrepl v0.7.0's own sample configurations
//!   (`internal/config/samples/`, `packaging/systemd-default-zrepl.yml`),
//!   copied unchanged (MIT, see its README).
//! - `samples/zrepl-accepts/`: one file per corner of zrepl's accepted
//!   space (defaults, nulls, durations, integers, variants, hazards). A
//!   file lists the warnings it must produce as `# warns: TEXT` lines (a
//!   substring of the warning as printed); a file without such lines must
//!   produce none.
//! - Parametric cases (every syslog facility, timestamp format spelling,
//!   log format and level) are generated here.
//!
//! Every accepted file also renders back to the same configuration.

use std::path::{Path, PathBuf};

use zrelay_config::*;

mod common;
use common::{samples_dir, yml_files};

fn samples(sub: &str) -> PathBuf {
    samples_dir().join(sub)
}

/// Load `f`, check it round-trips, and return its warnings as printed.
fn accepted(f: &Path) -> Vec<String> {
    let c =
        load(f).unwrap_or_else(|e| panic!("zrepl accepts {}, zrelay refuses: {e}", f.display()));
    let yaml = c.render(RenderFormat::Yaml, RenderWhat::All);
    let back = parse_str(&yaml, f)
        .unwrap_or_else(|e| panic!("{}: rendered YAML does not parse: {e}\n{yaml}", f.display()));
    assert_eq!(back, c, "{}: round trip differs\n{yaml}", f.display());
    c.warnings.iter().map(ToString::to_string).collect()
}

fn text(s: &str) -> Config {
    parse_str(s, Path::new("/etc/zrepl/zrepl.yml")).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

#[test]
fn zrepls_own_samples_are_accepted() {
    let dir = samples("zrepl");
    let files = yml_files(&dir);
    assert!(files.len() >= 19, "{files:?}");
    for f in files {
        let warnings = accepted(&f);
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "bandwidth_limit.yml" {
            // Two sinks serve the local listener "localsink".
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].contains(
                    "local listener name \"localsink\" is also used by job \"limited_sink\""
                ),
                "{warnings:?}"
            );
        } else {
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
    }
}

#[test]
fn zrepl_accepted_corners_are_accepted_with_their_warnings() {
    let files = yml_files(&samples("zrepl-accepts"));
    assert!(files.len() >= 15, "{files:?}");
    for f in files {
        let expected: Vec<String> = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("# warns: "))
            .map(str::to_string)
            .collect();
        let warnings = accepted(&f);
        for e in &expected {
            assert!(
                warnings.iter().any(|w| w.contains(e.as_str())),
                "{}: no warning contains {e:?}; got {warnings:#?}",
                f.display()
            );
        }
        assert_eq!(
            warnings.len(),
            expected.len(),
            "{}: expected {expected:#?}, got {warnings:#?}",
            f.display()
        );
        for w in &warnings {
            let file = f.display().to_string();
            assert!(w.starts_with(&format!("{file}:")), "{w}");
        }
    }
}

const SINK: &str = "jobs:\n- name: sink\n  type: sink\n  serve: {type: tcp, listen: \":2342\", clients: {\"10.0.0.1\": foo}}\n  root_fs: zroot/foo\n";

#[test]
fn every_syslog_facility_and_the_empty_default() {
    for fac in [
        "", "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
        "local7",
    ] {
        let c = text(&format!(
            "global:\n  logging:\n  - type: syslog\n    level: info\n    format: human\n    facility: {fac}\n{SINK}"
        ));
        assert!(c.warnings.is_empty(), "{fac}: {:?}", c.warnings);
    }
}

#[test]
fn every_log_level_and_format() {
    for level in ["error", "warn", "info", "debug"] {
        for format in ["human", "logfmt", "json"] {
            text(&format!(
                "global:\n  logging:\n  - {{type: stdout, level: {level}, format: {format}}}\n{SINK}"
            ));
        }
    }
}

#[test]
fn timestamp_formats_in_any_case() {
    // zrepl lower-cases the format name before matching it.
    for (format, location) in [
        ("dense", "UTC"),
        ("Dense", "UTC"),
        ("HUMAN", "UTC"),
        ("human", "\"\""),
        ("iso-8601", "Europe/Berlin"),
        ("ISO-8601", "Local"),
        ("unix-seconds", "UTC"),
        ("Unix-Seconds", "UTC"),
        ("\"2006-01-02_15-04-05\"", "America/New_York"),
    ] {
        text(&format!(
            "jobs:\n- name: s\n  type: snap\n  filesystems: {{\"p<\": true}}\n  snapshotting:\n    type: periodic\n    prefix: zrepl_\n    interval: 10m\n    timestamp_format: {format}\n    timestamp_location: {location}\n  pruning:\n    keep: [{{type: last_n, count: 1}}]\n"
        ));
    }
}

#[test]
fn go_yaml_integers() {
    let count = |v: &str| {
        let c = text(&format!(
            "jobs:\n- name: s\n  type: snap\n  filesystems: {{\"p<\": true}}\n  snapshotting: {{type: manual}}\n  pruning:\n    keep: [{{type: last_n, count: {v}}}]\n"
        ));
        let JobKind::Snap(s) = &c.jobs[0].kind else {
            panic!()
        };
        match &s.keep[0] {
            zrelay_pruning::KeepRule::LastN { count, .. } => *count,
            r => panic!("{r:?}"),
        }
    };
    assert_eq!(count("10"), 10);
    assert_eq!(count("+10"), 10);
    assert_eq!(count("1_000"), 1000);
    assert_eq!(count("0x10"), 16);
    assert_eq!(count("0o17"), 15);
    assert_eq!(count("0b101"), 5);
    assert_eq!(count("010"), 8, "a leading 0 is octal in go-yaml");
    assert_eq!(count("08"), 8, "not octal: go-yaml reads it as the float 8");
    assert_eq!(count("10.0"), 10);
    assert_eq!(count("1e+2"), 100);
    // go-yaml truncates 1.5 to 1: fewer snapshots kept than written.
    let e = parse_str(
        "jobs:\n- name: s\n  type: snap\n  filesystems: {\"p<\": true}\n  snapshotting: {type: manual}\n  pruning:\n    keep: [{type: last_n, count: 1.5}]\n",
        Path::new("x.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("expected an integer, found 1.5"), "{e}");
}

#[test]
fn bare_integer_timeouts_are_nanoseconds() {
    let c = text(
        "jobs:\n- name: p\n  type: pull\n  connect: {type: tcp, address: \"h:1\", dial_timeout: 1500}\n  root_fs: a/b\n  interval: manual\n  pruning: {keep_sender: [{type: not_replicated}], keep_receiver: [{type: last_n, count: 1}]}\n",
    );
    let JobKind::Pull(p) = &c.jobs[0].kind else {
        panic!()
    };
    let zrelay_transport::ConnectOptions::Tcp { dial_timeout, .. } = &p.connect else {
        panic!()
    };
    assert_eq!(*dial_timeout, std::time::Duration::from_nanos(1500));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = &c.warnings[0];
    assert_eq!((w.line, w.column), (4, 40), "{w}");
    assert_eq!(w.key, "jobs[0] (name \"p\").connect.dial_timeout");
    // Quoted, it is a string: go-yaml hands it to time.ParseDuration.
    let e = parse_str(
        "jobs:\n- name: p\n  type: pull\n  connect: {type: tcp, address: \"h:1\", dial_timeout: \"1500\"}\n  root_fs: a/b\n  interval: manual\n  pruning: {keep_sender: [{type: not_replicated}], keep_receiver: [{type: last_n, count: 1}]}\n",
        Path::new("x.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dial_timeout"), "{e}");
}

#[test]
fn warnings_escape_and_truncate_text_from_the_file() {
    let long = "x".repeat(500);
    let c = text(&format!(
        "jobs:\n- name: p\n  type: push\n  connect: {{type: local, listener_name: \"{long}\\e[31m\", client_identity: c}}\n  filesystems: {{\"p<\": true}}\n  snapshotting: {{type: manual}}\n  pruning: {{keep_sender: [{{type: not_replicated}}], keep_receiver: [{{type: last_n, count: 1}}]}}\n"
    ));
    let w = c.warnings[0].to_string();
    assert!(!w.contains('\u{1b}'), "{w}");
    assert!(w.len() < 600, "{}", w.len());
}
