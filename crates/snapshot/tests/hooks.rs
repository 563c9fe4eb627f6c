//! Command hooks with small shell scripts: environment, order around the
//! atomic snapshots, `err_is_fatal`, post edges only after successful pre
//! edges, timeouts that kill the process group, output capture.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{command_hook, fake_with, filter, script, Recording};
use zrelay_snapshot::{
    FsReport, Hook, HookEdge, HookStatus, SnapshotReport, Snapshotter, Snapshotting,
    TimestampFormat,
};

const T30: Duration = Duration::from_secs(30);

fn periodic(hooks: Vec<Hook>) -> Snapshotting {
    Snapshotting::Periodic {
        prefix: "zrepl_".into(),
        interval: Duration::from_secs(600),
        hooks,
        timestamp_format: TimestampFormat::Dense,
        timestamp_location: "UTC".into(),
    }
}

/// A hook that appends `<tag> <ZREPL_HOOKTYPE> <ZREPL_FS>` to `log`, then runs `extra`.
fn recorder(dir: &Path, log: &Path, tag: &str, extra: &str) -> std::path::PathBuf {
    script(
        dir,
        tag,
        &format!(
            "echo \"{tag} $ZREPL_HOOKTYPE $ZREPL_FS\" >> '{}'\n{extra}",
            log.display()
        ),
    )
}

async fn round(
    fss: &[&str],
    pattern: &[(&str, bool)],
    hooks: Vec<Hook>,
    log: &Path,
) -> (SnapshotReport, Recording) {
    let fake = fake_with(&["tank"], fss).await;
    let mut zfs = Recording::new(fake);
    zfs.event_log = Some(log.to_path_buf());
    let s = Snapshotter::new(
        "job",
        filter(pattern),
        periodic(hooks),
        Arc::new(zfs.clone()),
    )
    .unwrap();
    (s.snapshot_now().await, zfs)
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            l.split(' ')
                .map(|w| w.split('@').next().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn fs<'a>(r: &'a SnapshotReport, p: &str) -> &'a FsReport {
    r.filesystems.iter().find(|f| f.fs.as_str() == p).unwrap()
}

fn steps(f: &FsReport) -> Vec<(usize, HookEdge, HookStatus)> {
    f.hooks
        .iter()
        .map(|h| (h.index, h.edge, h.status))
        .collect()
}

#[tokio::test]
async fn environment_of_a_hook() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let h = script(
        dir.path(),
        "env.sh",
        &format!("env | grep '^ZREPL_' | sort >> '{}'", out.display()),
    );
    let (r, _) = round(
        &["tank/a"],
        &[("tank/a", true)],
        vec![command_hook(&h, filter(&[("tank<", true)]), false, T30)],
        &dir.path().join("log"),
    )
    .await;
    assert!(r.ok(), "{r:#?}");
    let env = std::fs::read_to_string(&out).unwrap();
    let want = |t: &str| {
        format!(
            "ZREPL_DRYRUN=\nZREPL_FS=tank/a\nZREPL_HOOKTYPE={t}\nZREPL_SNAPNAME={}\nZREPL_TIMEOUT=30\n",
            r.name
        )
    };
    assert_eq!(env, want("pre_snapshot") + &want("post_snapshot"));
}

#[tokio::test]
async fn pre_in_config_order_post_as_a_stack_around_one_snapshot_per_pool() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let a = recorder(dir.path(), &log, "A", "");
    let b = recorder(dir.path(), &log, "B", "");
    let hooks = vec![
        command_hook(&a, filter(&[("tank<", true)]), false, T30),
        command_hook(&b, filter(&[("tank/a", true)]), false, T30),
    ];
    let (r, zfs) = round(
        &["tank/a", "tank/b"],
        &[("tank/a", true), ("tank/b", true)],
        hooks,
        &log,
    )
    .await;
    assert!(r.ok(), "{r:#?}");
    assert_eq!(zfs.calls().len(), 1);
    assert_eq!(
        lines(&log),
        [
            "A pre_snapshot tank/a",
            "B pre_snapshot tank/a",
            "A pre_snapshot tank/b",
            "snapshot tank/a tank/b",
            "A post_snapshot tank/b",
            "B post_snapshot tank/a",
            "A post_snapshot tank/a",
        ]
    );
    use HookEdge::*;
    use HookStatus::*;
    assert_eq!(
        steps(fs(&r, "tank/a")),
        [(0, Pre, Ok), (1, Pre, Ok), (1, Post, Ok), (0, Post, Ok)]
    );
    assert_eq!(steps(fs(&r, "tank/b")), [(0, Pre, Ok), (0, Post, Ok)]);
}

#[tokio::test]
async fn fatal_pre_error_stops_that_filesystem_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let a = recorder(dir.path(), &log, "A", "");
    let f = recorder(
        dir.path(),
        &log,
        "F",
        "[ \"$ZREPL_FS\" = tank/a ] && [ \"$ZREPL_HOOKTYPE\" = pre_snapshot ] && exit 3\nexit 0",
    );
    let c = recorder(dir.path(), &log, "C", "");
    let all = || filter(&[("tank<", true)]);
    let hooks = vec![
        command_hook(&a, all(), false, T30),
        command_hook(&f, all(), true, T30),
        command_hook(&c, all(), false, T30),
    ];
    let (r, zfs) = round(
        &["tank/a", "tank/b"],
        &[("tank/a", true), ("tank/b", true)],
        hooks,
        &log,
    )
    .await;
    assert_eq!(
        lines(&log),
        [
            "A pre_snapshot tank/a",
            "F pre_snapshot tank/a",
            "A pre_snapshot tank/b",
            "F pre_snapshot tank/b",
            "C pre_snapshot tank/b",
            "snapshot tank/b",
            "C post_snapshot tank/b",
            "F post_snapshot tank/b",
            "A post_snapshot tank/b",
            // zrelay releases what succeeded before the fatal error
            "A post_snapshot tank/a",
        ]
    );
    assert_eq!(zfs.calls(), [vec![format!("tank/b@{}", r.name)]]);
    let fa = fs(&r, "tank/a");
    assert!(!fa.ok && !fa.snapshotted);
    assert!(
        fa.error
            .as_deref()
            .unwrap()
            .contains("failed fatally: exit status 3"),
        "{fa:?}"
    );
    use HookEdge::*;
    use HookStatus::*;
    assert_eq!(
        steps(fa),
        [
            (0, Pre, Ok),
            (1, Pre, Err),
            (2, Pre, SkippedDueToFatalErr),
            (2, Post, SkippedDueToFatalErr),
            (1, Post, SkippedDueToFatalErr),
            (0, Post, Ok),
        ]
    );
    assert!(fs(&r, "tank/b").ok);
    assert!(!r.ok());
}

#[tokio::test]
async fn non_fatal_error_still_snapshots_and_skips_its_post_edge() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let a = recorder(dir.path(), &log, "A", "");
    let e = recorder(
        dir.path(),
        &log,
        "E",
        "echo to-stdout\necho oops >&2\nexit 1",
    );
    let hooks = vec![
        command_hook(&a, filter(&[("tank<", true)]), false, T30),
        command_hook(&e, filter(&[("tank<", true)]), false, T30),
    ];
    let (r, zfs) = round(&[], &[("tank", true)], hooks, &log).await;
    assert_eq!(zfs.calls().len(), 1);
    let t = fs(&r, "tank");
    assert!(t.snapshotted && !t.ok);
    assert!(
        t.error.as_deref().unwrap().contains("exit status 1"),
        "{t:?}"
    );
    use HookEdge::*;
    use HookStatus::*;
    assert_eq!(
        steps(t),
        [
            (0, Pre, Ok),
            (1, Pre, Err),
            (1, Post, SkippedDueToPreErr),
            (0, Post, Ok)
        ]
    );
    let out = &t.hooks[1].output;
    assert!(
        out.contains("to-stdout\n") && out.contains("oops\n"),
        "{out:?}"
    );
    assert_eq!(
        lines(&log),
        [
            "A pre_snapshot tank",
            "E pre_snapshot tank",
            "snapshot tank",
            "A post_snapshot tank"
        ]
    );
}

#[tokio::test]
async fn timeout_kills_the_hook_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let h = script(
        dir.path(),
        "slow.sh",
        &format!(
            "sleep 60 &\necho $! > '{}'\necho started\nwait",
            pidfile.display()
        ),
    );
    let hooks = vec![command_hook(
        &h,
        filter(&[("tank<", true)]),
        true,
        Duration::from_millis(500),
    )];
    let begin = Instant::now();
    let (r, zfs) = round(&[], &[("tank", true)], hooks, &dir.path().join("log")).await;
    assert!(
        begin.elapsed() < Duration::from_secs(10),
        "{:?}",
        begin.elapsed()
    );
    assert!(zfs.calls().is_empty(), "fatal timeout: no snapshot");
    let t = fs(&r, "tank");
    let pre = &t.hooks[0];
    assert_eq!(pre.status, HookStatus::Err);
    assert!(
        pre.error
            .as_deref()
            .unwrap()
            .contains("timed out after 500ms"),
        "{pre:?}"
    );
    assert!(pre.output.contains("started"), "{pre:?}");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(' ').nth(2).is_none_or(|st| st != "Z"))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(), "the hook's background child {pid} survived");
}

#[tokio::test]
async fn missing_command_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = vec![command_hook(
        &dir.path().join("nope.sh"),
        filter(&[("tank<", true)]),
        false,
        T30,
    )];
    let (r, _) = round(&[], &[("tank", true)], hooks, &dir.path().join("log")).await;
    let t = fs(&r, "tank");
    assert!(t.snapshotted && !t.ok);
    assert!(
        t.hooks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cannot start"),
        "{t:?}"
    );
}
