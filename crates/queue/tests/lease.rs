//! Leases under tokio's paused clock: a crashed worker's record is re-driven
//! once its lease expires, a heartbeating worker keeps its record, and the
//! stale holder can no longer touch the record.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use zrelay_queue::{
    Filter, Op, Queue, QueueError, State, TokioClock, TransitionError, REDRIVE_ERROR,
};

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_redriven_and_the_old_holder_is_fenced() {
    let (_dir, path) = db_path();
    let q = Queue::open(&path, policy(), Arc::new(TokioClock::new(t0())))
        .await
        .unwrap();
    let crashed = key("backup", "offsite", "pool/a-crashed");
    let alive = key("backup", "offsite", "pool/b-alive");
    q.enqueue(crashed.clone(), snap("s1", 1)).await.unwrap();
    q.enqueue(alive.clone(), snap("s1", 1)).await.unwrap();
    let all = Filter::default();
    let lost = q.acquire(&worker("w1"), &all).await.unwrap().unwrap();
    assert_eq!(lost.claim.key, crashed);
    let kept = q.acquire(&worker("w2"), &all).await.unwrap().unwrap();
    assert_eq!(kept.claim.key, alive);

    // w2 heartbeats every 10 s; w1 has died and says nothing.
    let hb = {
        let (q, claim) = (q.clone(), kept.claim.clone());
        tokio::spawn(async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_secs(10)).await;
                q.heartbeat(&claim).await.unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(
        q.expire_leases().await.unwrap().is_empty(),
        "not expired yet"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let redriven = q.expire_leases().await.unwrap();
    assert_eq!(redriven.len(), 1, "only the silent worker's record");
    let r = &redriven[0];
    assert_eq!(
        (&r.key, r.state, r.attempts, &r.lease),
        (&crashed, State::Ready, 0, &None)
    );
    assert!(r
        .last_error
        .as_ref()
        .unwrap()
        .message
        .starts_with(REDRIVE_ERROR));
    // re-driven at once: no wakeup, no new snapshot, no backoff
    let again = q.acquire(&worker("w3"), &all).await.unwrap().unwrap();
    assert_eq!(
        (again.claim.key.clone(), again.claim.generation),
        (crashed.clone(), 2)
    );
    // the old holder is fenced off
    for e in [
        q.heartbeat(&lost.claim).await.unwrap_err(),
        q.complete(&lost.claim).await.map(|_| ()).unwrap_err(),
        q.fail(&lost.claim, temporary("late"))
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                QueueError::Transition(TransitionError::LeaseLost { current: 2, .. })
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        q.complete(&again.claim).await.unwrap().state,
        State::Completed
    );
    hb.await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        q.expire_leases().await.unwrap().is_empty(),
        "w2 is still within its lease"
    );
    let done = q.complete(&kept.claim).await.unwrap();
    assert_eq!(done.state, State::Completed);
}

#[tokio::test(start_paused = true)]
async fn leases_of_a_killed_daemon_are_redriven_after_a_restart() {
    let (_dir, path) = db_path();
    let k = key("backup", "offsite", "pool/a");
    let claim = {
        let q = Queue::open(&path, policy(), Arc::new(TokioClock::new(t0())))
            .await
            .unwrap();
        q.enqueue(k.clone(), snap("s1", 1)).await.unwrap();
        q.acquire(&worker("daemon"), &Filter::default())
            .await
            .unwrap()
            .unwrap()
            .claim
    };
    // the "restart": a new handle; the old daemon's lease still runs
    tokio::time::sleep(Duration::from_secs(5)).await;
    let q = Queue::open(&path, policy(), Arc::new(TokioClock::new(t0() + 5 * S)))
        .await
        .unwrap();
    assert!(q.expire_leases().await.unwrap().is_empty());
    assert_eq!(q.get(&k).await.unwrap().unwrap().state, State::InProgress);
    tokio::time::sleep(Duration::from_secs(25)).await;
    let r = q.expire_leases().await.unwrap();
    assert_eq!(r.len(), 1);
    let e = q.heartbeat(&claim).await.unwrap_err();
    assert!(
        matches!(
            e,
            QueueError::Transition(TransitionError::LeaseLost {
                op: Op::Heartbeat,
                state: State::Ready,
                ..
            })
        ),
        "{e:?}"
    );
    // the restarted daemon reuses its worker id: the generation still fences
    let again = q
        .acquire(&worker("daemon"), &Filter::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&again.claim.owner, again.claim.generation),
        (&claim.owner, 2)
    );
    let e = q.complete(&claim).await.unwrap_err();
    assert!(
        matches!(
            e,
            QueueError::Transition(TransitionError::LeaseLost {
                generation: 1,
                current: 2,
                ..
            })
        ),
        "{e:?}"
    );
    assert_eq!(
        q.complete(&again.claim).await.unwrap().state,
        State::Completed
    );
}
