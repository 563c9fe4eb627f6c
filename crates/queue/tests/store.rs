//! The SQLite store: transitions through the database, persistence, dead
//! records, operator actions, queries.

mod common;

use common::*;
use zrelay_queue::{
    DeadReason, EnqueueOutcome, Filter, Op, Queue, QueueError, State, TargetName, TransitionError,
    SCHEMA_VERSION,
};
use zrelay_zfs::{Classify, ErrorClass};

#[tokio::test]
async fn a_record_goes_through_its_life() {
    let (_dir, path) = db_path();
    let (q, clock) = manual(&path).await;
    let k = key("backup", "offsite", "pool/a");
    assert_eq!(
        q.enqueue(k.clone(), snap("s1", 11)).await.unwrap(),
        EnqueueOutcome::Created
    );
    assert_eq!(
        q.enqueue(k.clone(), snap("s2", 12)).await.unwrap(),
        EnqueueOutcome::Updated
    );
    let got = q
        .acquire(&worker("w1"), &Filter::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.record.state, got.record.snapshot.clone()),
        (State::InProgress, snap("s2", 12))
    );
    assert_eq!(
        q.get(&k).await.unwrap().unwrap(),
        got.record,
        "stored as returned"
    );
    assert!(q
        .acquire(&worker("w2"), &Filter::default())
        .await
        .unwrap()
        .is_none());
    clock.advance(10 * S);
    assert_eq!(q.heartbeat(&got.claim).await.unwrap(), t0() + 40 * S);
    let done = q.complete(&got.claim).await.unwrap();
    assert_eq!(
        (done.state, done.attempts, done.lease),
        (State::Completed, 0, None)
    );
    assert_eq!(
        q.enqueue(k.clone(), snap("s2", 12)).await.unwrap(),
        EnqueueOutcome::AlreadyDone
    );
    assert_eq!(
        q.enqueue(k.clone(), snap("s3", 13)).await.unwrap(),
        EnqueueOutcome::Requeued
    );
    assert_eq!(q.get(&k).await.unwrap().unwrap().state, State::Ready);
}

#[tokio::test]
async fn failures_back_off_then_die_and_success_resets() {
    let (_dir, path) = db_path();
    let (q, clock) = manual(&path).await;
    let k = key("backup", "offsite", "pool/a");
    q.enqueue(k.clone(), snap("s1", 1)).await.unwrap();
    let all = Filter::default();
    // two failures: backoff 1 s, then 2 s
    for (attempt, wait) in [(1, S), (2, 2 * S)] {
        let got = q.acquire(&worker("w"), &all).await.unwrap().unwrap();
        let r = q.fail(&got.claim, temporary("dataset busy")).await.unwrap();
        assert_eq!((r.state, r.attempts), (State::Failed, attempt));
        assert_eq!(
            r.next_eligible,
            Some(zrelay_queue::Clock::now(&clock) + wait)
        );
        assert_eq!(q.next_eligible(&all).await.unwrap(), r.next_eligible);
        clock.advance(wait - std::time::Duration::from_millis(1));
        assert!(
            q.acquire(&worker("w"), &all).await.unwrap().is_none(),
            "in backoff"
        );
        clock.advance(std::time::Duration::from_millis(1));
    }
    // a success resets the count
    let got = q.acquire(&worker("w"), &all).await.unwrap().unwrap();
    assert_eq!(got.record.attempts, 2);
    assert_eq!(q.complete(&got.claim).await.unwrap().attempts, 0);
    // four in a row: dead
    q.enqueue(k.clone(), snap("s2", 2)).await.unwrap();
    for n in 1..=4u32 {
        let got = q.acquire(&worker("w"), &all).await.unwrap().unwrap();
        let r = q.fail(&got.claim, temporary("dataset busy")).await.unwrap();
        assert_eq!(r.attempts, n);
        clock.advance(10 * S);
    }
    let r = q.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (r.state, r.dead_reason),
        (State::Dead, Some(DeadReason::AttemptsExhausted))
    );
    let e = r.last_error.unwrap();
    assert_eq!(
        (e.message.as_str(), e.class),
        ("step failed: dataset busy", ErrorClass::Temporary)
    );
    assert!(
        q.acquire(&worker("w"), &all).await.unwrap().is_none(),
        "dead is never acquired"
    );
}

#[tokio::test]
async fn a_dead_record_blocks_no_other_filesystem_or_target() {
    let (_dir, path) = db_path();
    let (q, _clock) = manual(&path).await;
    let dead = key("backup", "offsite", "pool/a");
    let same_target = key("backup", "offsite", "pool/b");
    let other_target = key("backup", "usb", "pool/a");
    q.enqueue(dead.clone(), snap("s1", 1)).await.unwrap();
    let got = q
        .acquire(&worker("w"), &Filter::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.claim.key, dead);
    let r = q
        .fail(&got.claim, permanent("target diverged"))
        .await
        .unwrap();
    assert_eq!(
        (r.state, r.dead_reason, r.attempts),
        (State::Dead, Some(DeadReason::PermanentError), 1)
    );
    q.enqueue(same_target.clone(), snap("s1", 1)).await.unwrap();
    q.enqueue(other_target.clone(), snap("s1", 1))
        .await
        .unwrap();
    assert_eq!(
        q.enqueue(dead.clone(), snap("s2", 2)).await.unwrap(),
        EnqueueOutcome::StillDead
    );
    let offsite = Filter::target(TargetName::new("offsite").unwrap());
    let a = q.acquire(&worker("w"), &offsite).await.unwrap().unwrap();
    assert_eq!(a.claim.key, same_target);
    let b = q
        .acquire(&worker("w"), &Filter::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.claim.key, other_target);
    assert!(q
        .acquire(&worker("w"), &Filter::default())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn records_survive_reopening_the_database() {
    let (_dir, path) = db_path();
    let (q, _clock) = manual(&path).await;
    for fs in ["pool/a", "pool/b", "pool/c", "pool/d"] {
        q.enqueue(key("backup", "offsite", fs), snap("s1", u64::MAX - 1))
            .await
            .unwrap();
    }
    let all = Filter::default();
    let a = q.acquire(&worker("w1"), &all).await.unwrap().unwrap();
    q.complete(&a.claim).await.unwrap();
    let b = q.acquire(&worker("w1"), &all).await.unwrap().unwrap();
    q.fail(&b.claim, temporary("net down")).await.unwrap();
    let c = q.acquire(&worker("w1"), &all).await.unwrap().unwrap();
    q.enqueue(c.claim.key.clone(), snap("s2", 2)).await.unwrap();
    let before = q.list(&all).await.unwrap();
    assert_eq!(before.len(), 4);
    drop(q);
    let (q, _) = manual(&path).await;
    assert_eq!(
        q.list(&all).await.unwrap(),
        before,
        "every field round-trips"
    );
    let states: Vec<State> = before.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            State::Completed,
            State::Failed,
            State::InProgress,
            State::Ready
        ]
    );
    assert_eq!(before[0].snapshot.as_ref().unwrap().guid(), u64::MAX - 1);
    // the claim from before the restart is still good against the new handle
    assert_eq!(
        q.complete(&c.claim).await.unwrap().state,
        State::Ready,
        "pending taken up"
    );
}

#[tokio::test]
async fn retry_and_drop() {
    let (_dir, path) = db_path();
    let (q, _clock) = manual(&path).await;
    let k = key("backup", "offsite", "pool/a");
    q.enqueue(k.clone(), snap("s1", 1)).await.unwrap();
    let e = q.retry(&k).await.unwrap_err();
    assert!(
        matches!(
            &e,
            QueueError::Transition(TransitionError::NotAllowed {
                op: Op::Retry,
                state: State::Ready,
                ..
            })
        ),
        "{e:?}"
    );
    let got = q
        .acquire(&worker("w"), &Filter::default())
        .await
        .unwrap()
        .unwrap();
    let e = q.drop_record(&k).await.unwrap_err();
    assert!(
        matches!(
            &e,
            QueueError::Transition(TransitionError::NotAllowed {
                op: Op::Drop,
                state: State::InProgress,
                ..
            })
        ),
        "{e:?}"
    );
    q.fail(&got.claim, permanent("conflict")).await.unwrap();
    let r = q.retry(&k).await.unwrap();
    assert_eq!(
        (r.state, r.attempts, r.dead_reason),
        (State::Ready, 0, None)
    );
    let got = q
        .acquire(&worker("w"), &Filter::default())
        .await
        .unwrap()
        .unwrap();
    q.complete(&got.claim).await.unwrap();
    assert_eq!(q.drop_record(&k).await.unwrap().state, State::Completed);
    assert_eq!(q.get(&k).await.unwrap(), None);
    let e = q.drop_record(&k).await.unwrap_err();
    assert!(
        matches!(&e, QueueError::NotFound { key, .. } if *key == k),
        "{e:?}"
    );
    assert!(e.to_string().contains("backup -> offsite: pool/a"), "{e}");
    assert!(e.is_permanent());
    let e = q.retry(&k).await.unwrap_err();
    assert!(matches!(e, QueueError::NotFound { .. }));
    let e = q.complete(&got.claim).await.unwrap_err();
    assert!(
        matches!(e, QueueError::NotFound { .. }),
        "a dropped record's lease is gone"
    );
    assert_eq!(q.enqueue(k, None).await.unwrap(), EnqueueOutcome::Created);
}

#[tokio::test]
async fn list_depth_and_json() {
    let (_dir, path) = db_path();
    let (q, _clock) = manual(&path).await;
    for (t, fs) in [
        ("offsite", "pool/a"),
        ("offsite", "pool/b"),
        ("usb", "pool/a"),
    ] {
        q.enqueue(key("backup", t, fs), snap("s1", 1))
            .await
            .unwrap();
    }
    q.enqueue(key("other", "usb", "tank/x"), None)
        .await
        .unwrap();
    let usb = Filter::target(TargetName::new("usb").unwrap());
    let got = q.acquire(&worker("w"), &usb).await.unwrap().unwrap();
    assert_eq!(
        got.claim.key,
        key("backup", "usb", "pool/a"),
        "oldest first"
    );
    let ready = Filter {
        state: Some(State::Ready),
        ..Filter::default()
    };
    assert_eq!(q.list(&ready).await.unwrap().len(), 3);
    let job = Filter {
        job: Some(key("other", "usb", "tank/x").job),
        ..usb.clone()
    };
    let rows = q.list(&job).await.unwrap();
    assert_eq!(rows.len(), 1);
    let d = q.depth(&Filter::default()).await.unwrap();
    assert_eq!((d.ready, d.in_progress, d.total()), (3, 1, 4));
    let by = q.depth_by_target(&Filter::default()).await.unwrap();
    assert_eq!(by[&TargetName::new("usb").unwrap()].in_progress, 1);
    assert_eq!(by[&TargetName::new("offsite").unwrap()].ready, 2);
    let json = serde_json::to_value(&got.record).unwrap();
    assert_eq!(json["state"], "in_progress");
    assert_eq!(json["key"]["filesystem"], "pool/a");
    assert_eq!(json["snapshot"]["guid"], 1);
    assert_eq!(json["lease"]["owner"], "w");
    assert_eq!(json["lease"]["expires"], "2023-11-14T22:13:50Z");
    assert_eq!(serde_json::to_value(d).unwrap()["in_progress"], 1);
}

#[tokio::test]
async fn a_newer_schema_and_a_corrupt_file_are_refused() {
    let (_dir, path) = db_path();
    drop(manual(&path).await);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE schema_version SET version = ?1",
        [SCHEMA_VERSION + 1],
    )
    .unwrap();
    drop(raw);
    let e = Queue::open(
        &path,
        policy(),
        std::sync::Arc::new(zrelay_queue::SystemClock),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, QueueError::FutureSchema { found, .. } if found == SCHEMA_VERSION + 1),
        "{e:?}"
    );
    let (_dir2, bad) = db_path();
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(
        &bad,
        b"this is not a database, just some text long enough .....",
    )
    .unwrap();
    let e = Queue::open(
        &bad,
        policy(),
        std::sync::Arc::new(zrelay_queue::SystemClock),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, QueueError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("queue.db"), "{e}");
}
