//! Every transition of the pure state machine, and every refusal.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zrelay_zfs::{Classify, DatasetPath, ErrorClass};

use super::*;
use crate::model::{JobId, TargetName};

const S: Duration = Duration::from_secs(1);

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn policy() -> Policy {
    Policy::new(30 * S, S, 8 * S, 4).unwrap()
}

fn key() -> RecordKey {
    RecordKey::new(
        JobId::new("backup").unwrap(),
        TargetName::new("offsite").unwrap(),
        DatasetPath::parse("pool/data").unwrap(),
    )
}

fn snap(name: &str, guid: u64) -> Option<TargetSnapshot> {
    Some(TargetSnapshot::new(name, guid).unwrap())
}

fn worker(n: &str) -> WorkerId {
    WorkerId::new(n).unwrap()
}

fn temporary(msg: &str) -> LastError {
    LastError {
        message: msg.into(),
        class: ErrorClass::Temporary,
    }
}

fn permanent(msg: &str) -> LastError {
    LastError {
        message: msg.into(),
        class: ErrorClass::Permanent,
    }
}

fn ready() -> Record {
    Record::new(key(), snap("s1", 1), t0())
}

fn in_progress() -> (Record, Claim) {
    let mut r = ready();
    let c = r.acquire(&worker("w1"), t0(), &policy()).unwrap();
    (r, c)
}

fn completed() -> Record {
    let (mut r, c) = in_progress();
    r.complete(&c, t0()).unwrap();
    r
}

fn failed() -> Record {
    let (mut r, c) = in_progress();
    r.fail(&c, temporary("busy"), t0(), &policy()).unwrap();
    r
}

fn dead() -> Record {
    let (mut r, c) = in_progress();
    r.fail(&c, permanent("diverged"), t0(), &policy()).unwrap();
    r
}

fn all_but_in_progress() -> Vec<Record> {
    vec![ready(), completed(), failed(), dead()]
}

fn not_allowed(e: TransitionError, op: Op, state: State) {
    match &e {
        TransitionError::NotAllowed {
            key: k,
            op: o,
            state: s,
        } => {
            assert_eq!((k, *o, *s), (&key(), op, state), "{e}");
        }
        other => panic!("expected NotAllowed({op}, {state}), got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("backup -> offsite: pool/data"), "{msg}");
    assert!(msg.contains(state.as_str()), "{msg}");
    assert!(e.is_permanent());
}

#[test]
fn states_of_the_fixtures() {
    assert_eq!(ready().state, State::Ready);
    assert_eq!(in_progress().0.state, State::InProgress);
    assert_eq!(completed().state, State::Completed);
    assert_eq!(failed().state, State::Failed);
    assert_eq!(dead().state, State::Dead);
    for r in [ready(), in_progress().0, completed(), failed(), dead()] {
        r.check_invariants().unwrap();
    }
}

#[test]
fn enqueue_on_ready_points_at_the_newest_snapshot() {
    let mut r = ready();
    assert_eq!(r.enqueue(snap("s2", 2), t0() + S), EnqueueOutcome::Updated);
    assert_eq!((r.state, r.snapshot.clone()), (State::Ready, snap("s2", 2)));
    assert_eq!((r.enqueued, r.updated), (t0(), t0() + S));
}

#[test]
fn enqueue_on_completed_requeues_unless_already_there() {
    let mut r = completed();
    assert_eq!(r.enqueue(snap("s1", 1), t0()), EnqueueOutcome::AlreadyDone);
    assert_eq!(r.state, State::Completed);
    assert_eq!(r.enqueue(snap("s2", 2), t0()), EnqueueOutcome::Requeued);
    assert_eq!((r.state, r.snapshot.clone()), (State::Ready, snap("s2", 2)));
    let mut r = completed();
    assert_eq!(
        r.enqueue(None, t0()),
        EnqueueOutcome::Requeued,
        "None: newest"
    );
    assert_eq!(r.state, State::Ready);
}

#[test]
fn enqueue_on_in_progress_is_pending_until_the_step_ends() {
    let (mut r, c) = in_progress();
    let lease = r.lease.clone();
    assert_eq!(r.enqueue(snap("s1", 1), t0()), EnqueueOutcome::Deferred);
    assert_eq!(r.pending, None, "the running step already aims there");
    assert_eq!(r.enqueue(snap("s2", 2), t0()), EnqueueOutcome::Deferred);
    assert_eq!(
        (r.state, &r.lease, &r.snapshot),
        (State::InProgress, &lease, &snap("s1", 1))
    );
    assert_eq!(r.pending.as_ref().unwrap().snapshot, snap("s2", 2));
    assert_eq!(r.complete(&c, t0()).unwrap(), State::Ready);
    assert_eq!(
        (r.snapshot.clone(), r.pending.clone()),
        (snap("s2", 2), None)
    );
    r.check_invariants().unwrap();
}

#[test]
fn pending_work_survives_a_failure_and_a_redrive() {
    let (mut r, c) = in_progress();
    r.enqueue(snap("s2", 2), t0());
    assert_eq!(
        r.fail(&c, temporary("x"), t0(), &policy()).unwrap(),
        State::Failed
    );
    assert_eq!(
        (r.snapshot.clone(), r.pending.clone()),
        (snap("s2", 2), None)
    );
    let (mut r, _) = in_progress();
    r.enqueue(snap("s3", 3), t0());
    r.expire(t0() + 30 * S).unwrap();
    assert_eq!((r.state, r.snapshot.clone()), (State::Ready, snap("s3", 3)));
}

#[test]
fn enqueue_on_failed_keeps_the_backoff() {
    let mut r = failed();
    let until = r.next_eligible;
    assert_eq!(r.enqueue(snap("s2", 2), t0()), EnqueueOutcome::Backoff);
    assert_eq!(
        (r.state, r.next_eligible, r.attempts),
        (State::Failed, until, 1)
    );
    assert_eq!(r.snapshot, snap("s2", 2));
}

#[test]
fn enqueue_on_dead_stays_dead() {
    let mut r = dead();
    assert_eq!(r.enqueue(snap("s2", 2), t0()), EnqueueOutcome::StillDead);
    assert_eq!(
        (r.state, r.dead_reason),
        (State::Dead, Some(DeadReason::PermanentError))
    );
    assert_eq!(r.snapshot, snap("s2", 2), "a retry aims at the newest");
}

#[test]
fn acquire_grants_a_lease_with_a_new_generation() {
    let mut r = ready();
    let c = r.acquire(&worker("w1"), t0(), &policy()).unwrap();
    assert_eq!(r.state, State::InProgress);
    assert_eq!(r.lease.as_ref().unwrap().expires, t0() + 30 * S);
    assert_eq!(
        (c.owner.clone(), c.generation, c.key.clone()),
        (worker("w1"), 1, key())
    );
    r.complete(&c, t0()).unwrap();
    r.enqueue(None, t0());
    assert_eq!(
        r.acquire(&worker("w1"), t0(), &policy())
            .unwrap()
            .generation,
        2
    );
}

#[test]
fn acquire_is_refused_from_in_progress_completed_and_dead() {
    let (mut r, _) = in_progress();
    not_allowed(
        r.acquire(&worker("w2"), t0(), &policy()).unwrap_err(),
        Op::Acquire,
        State::InProgress,
    );
    let mut r = completed();
    not_allowed(
        r.acquire(&worker("w2"), t0(), &policy()).unwrap_err(),
        Op::Acquire,
        State::Completed,
    );
    let mut r = dead();
    not_allowed(
        r.acquire(&worker("w2"), t0(), &policy()).unwrap_err(),
        Op::Acquire,
        State::Dead,
    );
}

#[test]
fn a_failed_record_is_acquired_only_after_its_backoff() {
    let mut r = failed();
    let e = r.acquire(&worker("w1"), t0(), &policy()).unwrap_err();
    assert_eq!(
        e,
        TransitionError::NotEligible {
            key: key(),
            until: t0() + S
        }
    );
    assert!(e.is_temporary());
    assert_eq!(r.state, State::Failed, "a refusal changes nothing");
    assert!(!r.is_eligible(t0()) && r.is_eligible(t0() + S));
    r.acquire(&worker("w1"), t0() + S, &policy()).unwrap();
    assert_eq!(
        (r.state, r.next_eligible, r.attempts),
        (State::InProgress, None, 1)
    );
}

#[test]
fn heartbeat_renews_only_the_current_lease() {
    let (mut r, c) = in_progress();
    assert_eq!(
        r.heartbeat(&c, t0() + 10 * S, &policy()).unwrap(),
        t0() + 40 * S
    );
    assert_eq!(r.lease.as_ref().unwrap().expires, t0() + 40 * S);
    let other = Claim {
        owner: worker("w2"),
        ..c.clone()
    };
    let stale = Claim {
        generation: 0,
        ..c.clone()
    };
    for bad in [other, stale] {
        let e = r.heartbeat(&bad, t0(), &policy()).unwrap_err();
        assert!(
            matches!(
                e,
                TransitionError::LeaseLost {
                    op: Op::Heartbeat,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("lost"), "{e}");
    }
    // past its expiry but not taken back: still held
    r.heartbeat(&c, t0() + 100 * S, &policy()).unwrap();
}

#[test]
fn heartbeat_complete_and_fail_lose_the_lease_after_a_redrive() {
    let (mut r, c) = in_progress();
    r.expire(t0() + 30 * S).unwrap();
    let lost = |e: TransitionError, op: Op| {
        assert!(
            matches!(&e, TransitionError::LeaseLost { op: o, state: State::Ready, .. } if *o == op),
            "{e:?}"
        );
    };
    lost(r.heartbeat(&c, t0(), &policy()).unwrap_err(), Op::Heartbeat);
    lost(r.complete(&c, t0()).unwrap_err(), Op::Complete);
    lost(
        r.fail(&c, temporary("x"), t0(), &policy()).unwrap_err(),
        Op::Fail,
    );
    // re-acquired by another worker: the old claim stays lost
    let c2 = r.acquire(&worker("w2"), t0() + 31 * S, &policy()).unwrap();
    let e = r.complete(&c, t0()).unwrap_err();
    assert!(
        matches!(e, TransitionError::LeaseLost { current: 2, .. }),
        "{e:?}"
    );
    assert_eq!(r.complete(&c2, t0() + 32 * S).unwrap(), State::Completed);
}

#[test]
fn claim_operations_on_ended_records_are_lost_leases() {
    let (_, c) = in_progress();
    for mut r in all_but_in_progress() {
        let state = r.state;
        let e = r.complete(&c, t0()).unwrap_err();
        assert!(
            matches!(e, TransitionError::LeaseLost { state: s, .. } if s == state),
            "{e:?}"
        );
        assert_eq!(r.state, state);
    }
}

#[test]
fn complete_resets_attempts_and_clears_the_error() {
    let mut r = failed();
    let c = r.acquire(&worker("w1"), t0() + S, &policy()).unwrap();
    assert_eq!(r.complete(&c, t0() + 2 * S).unwrap(), State::Completed);
    assert_eq!((r.attempts, &r.last_error, &r.lease), (0, &None, &None));
    r.check_invariants().unwrap();
}

#[test]
fn temporary_failures_back_off_exponentially_then_die() {
    let p = policy();
    let mut r = ready();
    let mut now = t0();
    let mut waits = vec![];
    loop {
        let c = r.acquire(&worker("w1"), now, &p).unwrap();
        let state = r.fail(&c, temporary("busy"), now, &p).unwrap();
        if state == State::Dead {
            break;
        }
        let wait = r.next_eligible.unwrap().duration_since(now).unwrap();
        waits.push(wait);
        now += wait;
    }
    assert_eq!(waits, vec![S, 2 * S, 4 * S], "doubling from start");
    assert_eq!(
        (r.attempts, r.dead_reason),
        (4, Some(DeadReason::AttemptsExhausted))
    );
    assert_eq!(r.last_error, Some(temporary("busy")));
    assert_eq!(p.backoff(5), 8 * S, "capped at max");
    assert_eq!(p.backoff(u32::MAX), 8 * S, "no overflow");
}

#[test]
fn a_permanent_failure_is_dead_at_once() {
    let (mut r, c) = in_progress();
    assert_eq!(
        r.fail(&c, permanent("diverged"), t0(), &policy()).unwrap(),
        State::Dead
    );
    assert_eq!(
        (r.attempts, r.dead_reason),
        (1, Some(DeadReason::PermanentError))
    );
    assert_eq!(r.last_error.as_ref().unwrap().class, ErrorClass::Permanent);
    assert_eq!((&r.lease, r.next_eligible), (&None, None));
}

#[test]
fn expire_redrives_only_an_expired_lease() {
    let (mut r, _) = in_progress();
    let e = r.expire(t0() + 29 * S).unwrap_err();
    assert!(
        matches!(e, TransitionError::NotExpired { .. }) && e.is_temporary(),
        "{e:?}"
    );
    assert_eq!(r.state, State::InProgress);
    assert_eq!(r.expire(t0() + 30 * S).unwrap(), worker("w1"));
    assert_eq!((r.state, r.attempts, &r.lease), (State::Ready, 0, &None));
    let err = r.last_error.as_ref().unwrap();
    assert!(err.message.starts_with(REDRIVE_ERROR) && err.message.contains("w1"));
    for mut r in all_but_in_progress() {
        let state = r.state;
        not_allowed(r.expire(t0() + 1000 * S).unwrap_err(), Op::Expire, state);
    }
}

#[test]
fn retry_revives_dead_and_failed_records() {
    for mut r in [dead(), failed()] {
        r.retry(t0() + S).unwrap();
        assert_eq!(
            (r.state, r.attempts, r.dead_reason, r.next_eligible),
            (State::Ready, 0, None, None)
        );
        assert!(r.last_error.is_some(), "kept for the operator");
        r.check_invariants().unwrap();
    }
    not_allowed(ready().retry(t0()).unwrap_err(), Op::Retry, State::Ready);
    not_allowed(
        completed().retry(t0()).unwrap_err(),
        Op::Retry,
        State::Completed,
    );
    not_allowed(
        in_progress().0.retry(t0()).unwrap_err(),
        Op::Retry,
        State::InProgress,
    );
}

#[test]
fn drop_is_refused_only_while_in_progress() {
    for r in all_but_in_progress() {
        r.check_drop().unwrap();
    }
    not_allowed(
        in_progress().0.check_drop().unwrap_err(),
        Op::Drop,
        State::InProgress,
    );
}

#[test]
fn policy_is_validated() {
    assert_eq!(
        Policy::new(Duration::ZERO, S, S, 1),
        Err(PolicyError::Zero { what: "the lease" })
    );
    assert!(matches!(
        Policy::new(S, Duration::ZERO, S, 1),
        Err(PolicyError::Zero { .. })
    ));
    assert!(matches!(
        Policy::new(S, 2 * S, S, 1),
        Err(PolicyError::BackoffOrder { .. })
    ));
    assert_eq!(Policy::new(S, S, S, 0), Err(PolicyError::NoAttempts));
    let d = Policy::default();
    assert_eq!(
        (
            d.lease(),
            d.backoff_start(),
            d.backoff_max(),
            d.max_attempts()
        ),
        (60 * S, 10 * S, 600 * S, 8)
    );
}

#[test]
fn invariants_catch_inconsistent_records() {
    let mut r = ready();
    r.lease = in_progress().0.lease;
    assert!(r.check_invariants().is_err());
    let mut r = completed();
    r.pending = Some(PendingWork { snapshot: None });
    assert!(r.check_invariants().is_err());
    let mut r = ready();
    r.dead_reason = Some(DeadReason::PermanentError);
    assert!(r.check_invariants().is_err());
}
