//! `zrelay configcheck` and `zrelay daemon` on configurations zrepl accepts
//! with a hazard: configcheck prints each warning to stderr and exits 0
//! (and exits 1 on a refused one); the daemon logs each warning at startup.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn zrelay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zrelay"))
}

fn sample(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn configcheck_prints_warnings_and_exits_zero_refuses_with_one() {
    let out = zrelay()
        .args(["configcheck", "--quiet", "--config"])
        .arg(sample("zrepl-accepts/guarantee_nothing.yml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings.iter().any(|w| w.contains("guarantee_nothing")),
        "{err}"
    );

    let out = zrelay()
        .args(["configcheck", "--quiet", "--config"])
        .arg(sample("invalid/overlapping_root_fs.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused configuration");
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn the_daemon_logs_each_warning_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let cfg = dir.path().join("zrelay.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  logging:\n  - {{type: stdout, level: info, format: human, color: false}}\n  control: {{sockpath: \"{d}/ctl.sock\"}}\n  history: {{path: \"{d}/history.sqlite\"}}\njobs:\n- name: unprotected\n  type: push\n  connect: {{type: tcp, address: \"127.0.0.1:9\"}}\n  filesystems: {{\"pool<\": true}}\n  snapshotting: {{type: manual}}\n  replication:\n    protection: {{initial: guarantee_nothing, incremental: guarantee_resumability}}\n  pruning:\n    keep_sender: [{{type: not_replicated}}]\n    keep_receiver: [{{type: last_n, count: 10}}]\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = zrelay()
        .args(["daemon", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let text = loop {
        let mut text = String::new();
        std::fs::File::open(&log)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        if text.contains("configuration: ") || started.elapsed() > Duration::from_secs(20) {
            break text;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the daemon exited ({st}):\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = text
        .lines()
        .find(|l| l.contains("configuration: "))
        .unwrap_or_else(|| panic!("no warning logged:\n{text}"));
    assert!(
        line.contains("WARN") && line.contains("guarantee_nothing"),
        "{line}"
    );
}
