//! Recording and reading: a whole invocation, restart and staleness, filters,
//! trim, the metrics' look-ups.

mod common;

use std::time::{Duration, SystemTime};

use common::{fresh, one_step, raw};
use zrelay_history::{
    render_table, Filter, History, HistoryError, InvocationId, Kind, Row, State, STALE_ERROR,
};
use zrelay_zfs::Classify;

/// The ids of every invocation left, in order.
async fn invocation_ids(h: &History) -> Vec<InvocationId> {
    let mut ids: Vec<InvocationId> = h
        .query(Filter::default())
        .await
        .unwrap()
        .iter()
        .map(|r| r.invocation.id)
        .collect();
    ids.sort();
    ids
}

fn job(j: &str) -> Filter {
    Filter {
        job: Some(j.into()),
        ..Filter::default()
    }
}

#[tokio::test]
async fn whole_invocation_round_trips() {
    let (_d, _p, h) = fresh().await;
    let before = SystemTime::now() - Duration::from_millis(1);
    let inv = h
        .begin_invocation("backup", Kind::Replication)
        .await
        .unwrap();

    let a1 = h.begin_attempt(inv).await.unwrap();
    let s1 = h
        .step_started(a1, "pool/a", Some("s1"), "s2", false, Some(1000))
        .await
        .unwrap();
    h.step_progress(s1, 300);
    h.step_finished(s1, State::Failed, 300, Some("connection reset"))
        .await
        .unwrap();
    h.end_attempt(a1, State::Failed, Some("connection reset"))
        .await
        .unwrap();

    let a2 = h.begin_attempt(inv).await.unwrap();
    let s2 = h
        .step_started(a2, "pool/a", Some("s1"), "s2", true, Some(1000))
        .await
        .unwrap();
    h.step_finished(s2, State::Completed, 1000, None)
        .await
        .unwrap();
    let s3 = h
        .step_queued(a2, "pool/b", None, "s2", false, None)
        .await
        .unwrap();
    h.step_begin(s3).await.unwrap();
    h.step_finished(s3, State::Completed, 77, None)
        .await
        .unwrap();
    h.end_attempt(a2, State::Completed, None).await.unwrap();
    h.end_invocation(inv, State::Completed, None).await.unwrap();

    let rows = h.query(job("backup")).await.unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r.step.as_ref().unwrap().id).collect();
    assert_eq!(ids, [s3, s2, s1], "newest first");
    let [r3, r2, r1] = &rows[..] else { panic!() };
    assert_eq!(r1.invocation.id, inv);
    assert_eq!(r1.invocation.job, "backup");
    assert_eq!(r1.invocation.kind, Kind::Replication);
    assert_eq!(r1.invocation.state, State::Completed);
    assert!(r1.invocation.started >= before);
    assert!(r1.invocation.finished.unwrap() >= r1.invocation.started);
    let at1 = r1.attempt.as_ref().unwrap();
    assert_eq!((at1.id, at1.n, at1.state), (a1, 1, State::Failed));
    assert_eq!(at1.error.as_deref(), Some("connection reset"));
    let st1 = r1.step.as_ref().unwrap();
    assert_eq!(st1.filesystem, "pool/a");
    assert_eq!(st1.from_snapshot.as_deref(), Some("s1"));
    assert_eq!(st1.to_snapshot, "s2");
    assert!(!st1.resumed);
    assert_eq!((st1.bytes, st1.bytes_expected), (300, Some(1000)));
    assert_eq!(st1.state, State::Failed);
    assert_eq!(r1.error(), Some("connection reset"));
    let at2 = r2.attempt.as_ref().unwrap();
    assert_eq!((at2.id, at2.n, at2.state), (a2, 2, State::Completed));
    let st2 = r2.step.as_ref().unwrap();
    assert!(st2.resumed);
    assert_eq!(
        (st2.bytes, st2.state, st2.error.as_deref()),
        (1000, State::Completed, None)
    );
    let st3 = r3.step.as_ref().unwrap();
    assert_eq!((st3.from_snapshot.as_deref(), st3.bytes), (None, 77));
    assert!(st3.finished.unwrap() >= st3.started);

    // --json: serializes and reads back the same.
    let json = serde_json::to_string(&rows).unwrap();
    assert!(json.contains(r#""state":"completed""#), "{json}");
    let back: Vec<Row> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rows);

    // Metrics after restart read these.
    let last = h.last_successful("backup").await.unwrap();
    assert_eq!(last, r1.invocation.finished);
    let (snap, at) = h
        .last_replicated("backup", "pool/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((snap.as_str(), Some(at)), ("s2", st2.finished));
    assert_eq!(h.last_replicated("backup", "pool/zzz").await.unwrap(), None);
    assert_eq!(h.last_successful("other").await.unwrap(), None);
    assert_eq!(
        h.last_successful_of("backup", Kind::Snapshot)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn restart_marks_stale_then_resumption_completes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let h = History::open(&path).await.unwrap();
    assert!(h.mark_stale_on_start().await.unwrap().is_empty());
    let inv = h
        .begin_invocation("backup", Kind::Replication)
        .await
        .unwrap();
    let att = h.begin_attempt(inv).await.unwrap();
    let a = h
        .step_started(att, "pool/a", Some("s1"), "s2", false, Some(10_000))
        .await
        .unwrap();
    let b = h
        .step_queued(att, "pool/b", None, "s2", false, None)
        .await
        .unwrap();
    h.step_progress(a, 4096);
    drop(h); // the daemon dies: nothing finished

    let h = History::open(&path).await.unwrap();
    let stale = h.mark_stale_on_start().await.unwrap();
    assert_eq!(stale.len(), 2, "{stale:?}");
    assert_eq!((stale[0].step.id, stale[1].step.id), (a, b));
    assert_eq!(stale[0].job, "backup");
    assert_eq!((stale[0].invocation, stale[0].attempt), (inv, att));
    assert_eq!(
        stale[0].step.bytes, 4096,
        "progress was written before the stop"
    );
    assert!(stale.iter().all(|s| s.step.state == State::Stale));
    assert!(
        h.mark_stale_on_start().await.unwrap().is_empty(),
        "only once"
    );

    // Taken up again by resumption.
    let inv2 = h
        .begin_invocation("backup", Kind::Replication)
        .await
        .unwrap();
    let att2 = h.begin_attempt(inv2).await.unwrap();
    let a2 = h
        .step_started(att2, "pool/a", Some("s1"), "s2", true, Some(10_000))
        .await
        .unwrap();
    h.step_finished(a2, State::Completed, 10_000, None)
        .await
        .unwrap();
    h.end_attempt(att2, State::Completed, None).await.unwrap();
    h.end_invocation(inv2, State::Completed, None)
        .await
        .unwrap();

    let rows = h
        .query(Filter {
            fs: Some("pool/a".into()),
            ..Filter::default()
        })
        .await
        .unwrap();
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            let s = r.step.as_ref().unwrap();
            (s.id, s.to_snapshot.as_str(), s.state, s.resumed)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (a2, "s2", State::Completed, true),
            (a, "s2", State::Stale, false)
        ]
    );
    assert_eq!(rows[1].invocation.state, State::Stale);
    assert_eq!(rows[1].attempt.as_ref().unwrap().state, State::Stale);
    assert_eq!(rows[1].error(), Some(STALE_ERROR));
    let table = render_table(&rows);
    let lines: Vec<_> = table.lines().collect();
    assert!(
        lines[1].contains("completed") && lines[1].contains("(resumed)"),
        "{table}"
    );
    assert!(
        lines[2].contains("stale") && lines[2].contains("daemon stopped"),
        "{table}"
    );
}

#[tokio::test]
async fn filters_by_job_fs_since_and_limit() {
    let (_d, _p, h) = fresh().await;
    one_step(&h, "a", "pool/x", "s1", State::Completed).await;
    one_step(&h, "a", "pool/x/child", "s1", State::Failed).await;
    one_step(&h, "b", "pool/xy", "s1", State::Completed).await;
    let snap = h.begin_invocation("a", Kind::Snapshot).await.unwrap();
    h.end_invocation(snap, State::Completed, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (late, _, _) = one_step(&h, "b", "pool/x", "s2", State::Completed).await;

    let all = h.query(Filter::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.windows(2).all(|w| w[0].time() >= w[1].time()),
        "newest first"
    );
    assert_eq!(all[0].invocation.id, late);

    let a = h.query(job("a")).await.unwrap();
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|r| r.invocation.job == "a"));
    assert!(a
        .iter()
        .any(|r| r.invocation.kind == Kind::Snapshot && r.step.is_none()));

    let fs = |f: &str| Filter {
        fs: Some(f.into()),
        ..Filter::default()
    };
    let mut x: Vec<_> = h
        .query(fs("pool/x"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.step.unwrap().filesystem)
        .collect();
    x.sort();
    assert_eq!(x, ["pool/x", "pool/x", "pool/x/child"], "not pool/xy");
    let ax = Filter {
        job: Some("a".into()),
        ..fs("pool/x")
    };
    assert_eq!(h.query(ax).await.unwrap().len(), 2);

    let recent = Filter {
        since: Some(since),
        ..Filter::default()
    };
    let recent = h.query(recent).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].invocation.id, late);

    let limited = Filter {
        limit: Some(2),
        ..Filter::default()
    };
    let limited = h.query(limited).await.unwrap();
    assert_eq!(limited, all[..2]);
    assert!(h.query(job("nobody")).await.unwrap().is_empty());
}

#[tokio::test]
async fn trim_deletes_old_history_but_keeps_what_metrics_need() {
    let (_d, path, h) = fresh().await;
    let (old_ok, _, _) = one_step(&h, "j", "pool/a", "s1", State::Completed).await;
    let (newest_ok, _, _) = one_step(&h, "j", "pool/a", "s2", State::Completed).await;
    let (failed, _, _) = one_step(&h, "j", "pool/b", "s2", State::Failed).await;
    let (other_fs, _, _) = one_step(&h, "j", "pool/c", "s0", State::Completed).await;
    let (newest_ok2, _, _) = one_step(&h, "j", "pool/a", "s3", State::Completed).await;
    let running = h.begin_invocation("j", Kind::Replication).await.unwrap();
    let att = h.begin_attempt(running).await.unwrap();
    h.step_started(att, "pool/a", None, "s4", false, None)
        .await
        .unwrap();
    let _ = newest_ok;

    assert_eq!(
        h.trim(Duration::from_secs(3600)).await.unwrap(),
        0,
        "all recent"
    );
    let future = SystemTime::now() + Duration::from_secs(3600);
    // Deleted: old_ok, newest_ok (superseded), failed. Kept: newest_ok2
    // (newest completed invocation, newest step of pool/a), other_fs (newest
    // step of pool/c), running.
    assert_eq!(h.trim_before(future).await.unwrap(), 3);
    let left = invocation_ids(&h).await;
    assert_eq!(left, [other_fs, newest_ok2, running]);
    assert!(!left.contains(&old_ok) && !left.contains(&failed));
    let (snap, _) = h.last_replicated("j", "pool/a").await.unwrap().unwrap();
    assert_eq!(snap, "s3");
    assert!(h.last_replicated("j", "pool/c").await.unwrap().is_some());
    assert!(h.last_successful("j").await.unwrap().is_some());
    drop(h);

    // Attempts and steps went with their invocations.
    let db = raw(&path);
    let count = |t: &str| -> i64 {
        db.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        (count("invocations"), count("attempts"), count("steps")),
        (3, 3, 3)
    );
}

#[tokio::test]
async fn ending_a_parent_ends_its_running_children_and_bad_calls_fail() {
    let (_d, _p, h) = fresh().await;
    let inv = h.begin_invocation("j", Kind::Replication).await.unwrap();
    let att = h.begin_attempt(inv).await.unwrap();
    let s = h
        .step_started(att, "pool/a", None, "s1", false, None)
        .await
        .unwrap();
    h.end_invocation(inv, State::Dead, Some("retries exhausted"))
        .await
        .unwrap();
    let rows = h.query(job("j")).await.unwrap();
    let step = rows[0].step.as_ref().unwrap();
    assert_eq!((step.id, step.state), (s, State::Failed));
    assert!(step.finished.is_some());
    assert_eq!(rows[0].attempt.as_ref().unwrap().state, State::Failed);
    assert_eq!(rows[0].invocation.state, State::Dead);
    assert_eq!(
        rows[0].invocation.error.as_deref(),
        Some("retries exhausted")
    );
    assert!(h.mark_stale_on_start().await.unwrap().is_empty());

    let e = h
        .end_invocation(inv, State::InFlight, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            HistoryError::NotFinal {
                state: State::InFlight
            }
        ),
        "{e}"
    );
    let e = h.begin_attempt(InvocationId(9999)).await.unwrap_err();
    assert!(
        matches!(
            e,
            HistoryError::NotFound {
                what: "invocation",
                id: 9999,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_temporary());
}

/// With an injected clock, records are dated and trimmed by it, not by the
/// system clock (the daemon passes its own clock, simulated in tests).
#[tokio::test]
async fn an_injected_clock_dates_and_trims() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let (_d, _p, h) = fresh().await;
    let secs = Arc::new(AtomicU64::new(1_798_761_600)); // 2027-01-01
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    let c = secs.clone();
    let h = h.with_clock(Arc::new(move || at(c.load(Ordering::Relaxed))));
    let (old, _, _) = one_step(&h, "j", "pool/a", "s1", State::Completed).await;
    secs.fetch_add(7200, Ordering::Relaxed);
    let (new, _, _) = one_step(&h, "j", "pool/a", "s2", State::Completed).await;
    let rows = h.query(Filter::default()).await.unwrap();
    let started = |id| {
        rows.iter()
            .find(|r| r.invocation.id == id)
            .map(|r| r.invocation.started)
            .unwrap()
    };
    assert_eq!(started(old), at(1_798_761_600));
    assert_eq!(started(new), at(1_798_761_600 + 7200));
    // by the injected clock the first is 2 h old; by the system clock both
    // are in the future and nothing would go
    assert_eq!(h.trim(Duration::from_secs(3600)).await.unwrap(), 1);
    assert_eq!(invocation_ids(&h).await, [new]);
}
