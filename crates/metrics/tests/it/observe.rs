//! `observe_report` and `observe_zfs_log`: what they record, and that
//! observing again never double counts.

use std::collections::BTreeMap;

use zrelay_metrics::Metrics;
use zrelay_replication::{AttemptState, FsReport, FsState, Report, ReportHandle};
use zrelay_zfs::cmd::Runner;

use crate::encode::sample;

fn fs(name: &str, state: FsState, expected: u64, replicated: u64) -> FsReport {
    let mut f = FsReport::new(name.to_string());
    f.state = state;
    f.bytes_expected = expected;
    f.bytes_replicated = replicated;
    f
}

fn report(started_at: u64, attempt: u32, state: AttemptState, fss: Vec<FsReport>) -> Report {
    let fin = matches!(state, AttemptState::Completed | AttemptState::Cancelled);
    Report {
        state,
        attempt,
        state_seconds: BTreeMap::from([
            (AttemptState::Planning, 2.0),
            (AttemptState::Working, 30.0),
            (AttemptState::Completed, 5.0),
        ]),
        started_at,
        finished_at: fin.then_some(started_at + 40),
        planning_error: None,
        next_attempt_at: None,
        filesystems: fss,
    }
}

fn bytes(out: &str, job: &str, fs: &str) -> Option<u64> {
    let l = format!("{{zrelay_job=\"{job}\",filesystem=\"{fs}\"}}");
    sample(out, "zrelay_replication_bytes_replicated_total", &l).map(|v| v.parse().unwrap())
}

fn pending(out: &str, job: &str, fs: &str) -> Option<u64> {
    let l = format!("{{zrelay_job=\"{job}\",filesystem=\"{fs}\"}}");
    sample(out, "zrelay_filesystem_bytes_pending", &l).map(|v| v.parse().unwrap())
}

fn job_gauge(out: &str, name: &str, job: &str) -> Option<i64> {
    sample(out, name, &format!("{{zrelay_job=\"{job}\"}}")).map(|v| v.parse().unwrap())
}

fn state_count(out: &str, job: &str, state: &str) -> Option<u64> {
    let l = format!("{{zrelay_job=\"{job}\",state=\"{state}\"}}");
    sample(out, "zrelay_replication_state_time_count", &l).map(|v| v.parse().unwrap())
}

#[test]
fn live_report_twice_counts_bytes_once() {
    let m = Metrics::new("0.1.0", "v");
    let r = report(
        1000,
        1,
        AttemptState::Working,
        vec![
            fs("p/a", FsState::Stepping, 500, 200),
            fs("p/b", FsState::Ready, 70, 0),
        ],
    );
    m.observe_report("j", &r);
    m.observe_report("j", &r);
    let out = m.encode();
    assert_eq!(bytes(&out, "j", "p/a"), Some(200));
    assert_eq!(bytes(&out, "j", "p/b"), Some(0));
    assert_eq!(pending(&out, "j", "p/a"), Some(300));
    assert_eq!(pending(&out, "j", "p/b"), Some(70));
    // Not final: no run-level values yet.
    assert_eq!(state_count(&out, "j", "working"), None);
    assert_eq!(
        job_gauge(&out, "zrelay_replication_filesystem_errors", "j"),
        None
    );
    assert_eq!(
        job_gauge(&out, "zrelay_replication_last_successful", "j"),
        None
    );
}

#[test]
fn progress_attempts_and_runs_add_deltas() {
    let m = Metrics::new("0.1.0", "v");
    let at = |run, attempt, n| {
        report(
            run,
            attempt,
            AttemptState::Working,
            vec![fs("p/a", FsState::Stepping, 1000, n)],
        )
    };
    m.observe_report("j", &at(1000, 1, 100));
    m.observe_report("j", &at(1000, 1, 250)); // +150
    m.observe_report("j", &at(1000, 2, 40)); // a new attempt restarts from 0: +40
    m.observe_report("j", &at(1000, 2, 40)); // +0
    m.observe_report("j", &at(2000, 1, 10)); // a new run: +10
    m.observe_report("j", &at(1000, 2, 900)); // stale: ignored
    let out = m.encode();
    assert_eq!(bytes(&out, "j", "p/a"), Some(300));
    assert_eq!(pending(&out, "j", "p/a"), Some(990));
    // Jobs are separate.
    m.observe_report("k", &at(1000, 1, 5));
    let out = m.encode();
    assert_eq!(bytes(&out, "k", "p/a"), Some(5));
    assert_eq!(bytes(&out, "j", "p/a"), Some(300));
}

#[test]
fn final_report_records_run_values_once() {
    let m = Metrics::new("0.1.0", "v");
    let r = report(
        1000,
        1,
        AttemptState::Completed,
        vec![
            fs("p/a", FsState::Done, 500, 500),
            fs("p/b", FsState::Skipped, 0, 0),
        ],
    );
    assert!(r.succeeded());
    for _ in 0..3 {
        m.observe_report("j", &r);
    }
    let out = m.encode();
    assert_eq!(bytes(&out, "j", "p/a"), Some(500));
    assert_eq!(pending(&out, "j", "p/a"), Some(0));
    assert_eq!(state_count(&out, "j", "planning"), Some(1));
    assert_eq!(state_count(&out, "j", "working"), Some(1));
    // Terminal states are not observed: their time only grows after the end.
    assert_eq!(state_count(&out, "j", "completed"), None);
    let sum = sample(
        &out,
        "zrelay_replication_state_time_sum",
        "{zrelay_job=\"j\",state=\"working\"}",
    );
    assert_eq!(sum, Some("30.0"));
    assert_eq!(
        job_gauge(&out, "zrelay_replication_filesystem_errors", "j"),
        Some(0)
    );
    assert_eq!(
        job_gauge(&out, "zrelay_replication_last_successful", "j"),
        Some(1040)
    );
}

#[test]
fn failures_set_errors_and_keep_last_successful() {
    let m = Metrics::new("0.1.0", "v");
    let ok = report(
        1000,
        1,
        AttemptState::Completed,
        vec![fs("p/a", FsState::Done, 1, 1)],
    );
    m.observe_report("j", &ok);
    let mut failed = report(
        2000,
        3,
        AttemptState::Completed,
        vec![
            fs("p/a", FsState::Failed, 800, 300),
            fs("p/b", FsState::Failed, 0, 0),
            fs("p/c", FsState::Done, 0, 0),
        ],
    );
    failed.filesystems[0].last_error = Some("boom".into());
    m.observe_report("j", &failed);
    let out = m.encode();
    assert_eq!(
        job_gauge(&out, "zrelay_replication_filesystem_errors", "j"),
        Some(2)
    );
    assert_eq!(
        job_gauge(&out, "zrelay_replication_last_successful", "j"),
        Some(1040)
    );
    assert_eq!(pending(&out, "j", "p/a"), Some(500));
    assert_eq!(state_count(&out, "j", "working"), Some(2));

    let mut planning = report(3000, 1, AttemptState::Completed, vec![]);
    planning.planning_error = Some("cannot list filesystems".into());
    m.observe_report("j", &planning);
    let out = m.encode();
    assert_eq!(
        job_gauge(&out, "zrelay_replication_filesystem_errors", "j"),
        Some(-1)
    );
    assert_eq!(
        job_gauge(&out, "zrelay_replication_last_successful", "j"),
        Some(1040)
    );
}

#[test]
fn works_with_a_live_report_handle() {
    let m = Metrics::new("0.1.0", "v");
    let h = ReportHandle::new();
    h.set_state(AttemptState::Working);
    h.fs("p/a", |f| {
        f.state = FsState::Stepping;
        f.bytes_expected = 1000;
    });
    let live = h.start_counter("p/a");
    live.fetch_add(300, std::sync::atomic::Ordering::Relaxed);
    m.observe_report("j", &h.snapshot());
    m.observe_report("j", &h.snapshot());
    live.fetch_add(700, std::sync::atomic::Ordering::Relaxed);
    h.stop_counter("p/a");
    h.fs("p/a", |f| f.state = FsState::Done);
    h.set_state(AttemptState::Completed);
    m.observe_report("j", &h.snapshot());
    m.observe_report("j", &h.snapshot());
    let out = m.encode();
    assert_eq!(bytes(&out, "j", "p/a"), Some(1000));
    assert_eq!(pending(&out, "j", "p/a"), Some(0));
    assert_eq!(state_count(&out, "j", "working"), Some(1));
    assert!(job_gauge(&out, "zrelay_replication_last_successful", "j").unwrap() > 1_700_000_000);
}

#[tokio::test]
async fn zfs_log_invocations_are_recorded_once() {
    // `true`/`false` stand in for zfs/zpool: the log records them alike.
    let runner = Runner::new("true", "false");
    let m = Metrics::new("0.1.0", "v");
    for _ in 0..3 {
        runner.output(&runner.zfs().arg("list")).await.unwrap();
    }
    runner
        .output(&runner.zpool().arg("status"))
        .await
        .unwrap_err();
    assert_eq!(m.observe_zfs_log(runner.log()), 4);
    assert_eq!(m.observe_zfs_log(runner.log()), 0);
    runner.output(&runner.zfs().arg("list")).await.unwrap();
    assert_eq!(m.observe_zfs_log(runner.log()), 1);
    let out = m.encode();
    let count = |bin: &str, verb: &str| {
        let l = format!("{{zfsbinary=\"{bin}\",zfsverb=\"{verb}\"}}");
        sample(&out, "zrelay_zfscmd_runtime_count", &l).map(str::to_string)
    };
    assert_eq!(count("true", "list").as_deref(), Some("4"));
    assert_eq!(count("false", "status").as_deref(), Some("1"));
}
