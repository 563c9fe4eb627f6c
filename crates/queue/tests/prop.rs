//! Random operation sequences on the pure state machine keep its
//! invariants: at most one valid lease holder per record, a consistent
//! record after every step (a lease exactly when in_progress, so none when
//! completed), attempts bounded by the policy, and refusals change nothing.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use zrelay_queue::{Claim, LastError, Record, State, TargetSnapshot};
use zrelay_zfs::ErrorClass;

#[derive(Debug, Clone)]
enum Action {
    Enqueue(Option<u8>),
    Acquire(usize),
    Heartbeat(usize),
    Complete(usize),
    Fail(usize, bool),
    /// heartbeat (0), complete (1) or fail (2) with any claim ever issued
    Stale(usize, u8),
    Expire,
    Retry,
    Advance(u16),
}

fn action() -> impl Strategy<Value = Action> {
    let w = 0usize..3;
    prop_oneof![
        proptest::option::of(0u8..4).prop_map(Action::Enqueue),
        w.clone().prop_map(Action::Acquire),
        w.clone().prop_map(Action::Heartbeat),
        w.clone().prop_map(Action::Complete),
        (w, any::<bool>()).prop_map(|(w, p)| Action::Fail(w, p)),
        (0usize..8, 0u8..3).prop_map(|(i, op)| Action::Stale(i, op)),
        Just(Action::Expire),
        Just(Action::Retry),
        (0u16..40).prop_map(Action::Advance),
    ]
}

fn holds(r: &Record, c: &Claim) -> bool {
    r.state == State::InProgress
        && r.generation == c.generation
        && r.lease.as_ref().is_some_and(|l| l.owner == c.owner)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn invariants_hold_over_random_sequences(actions in proptest::collection::vec(action(), 1..60)) {
        let p = policy();
        let workers = [worker("w0"), worker("w1"), worker("w2")];
        let mut now = t0();
        let mut r = Record::new(key("j", "t", "pool/fs"), None, now);
        let mut claims: [Option<Claim>; 3] = [None, None, None];
        // every claim ever issued; only the newest may ever succeed
        let mut issued: Vec<Claim> = Vec::new();
        for a in actions {
            let before = r.clone();
            let ok = match a {
                Action::Enqueue(s) => {
                    let snap = s.map(|n| TargetSnapshot::new(&format!("s{n}"), u64::from(n)).unwrap());
                    r.enqueue(snap, now);
                    true
                }
                Action::Acquire(w) => match r.acquire(&workers[w], now, &p) {
                    Ok(c) => { issued.push(c.clone()); claims[w] = Some(c); true }
                    Err(_) => false,
                },
                Action::Heartbeat(w) => claims[w].as_ref().is_some_and(|c| r.heartbeat(c, now, &p).is_ok()),
                Action::Complete(w) => claims[w].as_ref().is_some_and(|c| r.complete(c, now).is_ok()),
                Action::Fail(w, permanent) => claims[w].as_ref().is_some_and(|c| {
                    let class = if permanent { ErrorClass::Permanent } else { ErrorClass::Temporary };
                    r.fail(c, LastError { message: "x".into(), class }, now, &p).is_ok()
                }),
                Action::Stale(i, op) => {
                    let Some(c) = (!issued.is_empty()).then(|| issued[i % issued.len()].clone()) else { continue };
                    let ok = match op {
                        0 => r.heartbeat(&c, now, &p).is_ok(),
                        1 => r.complete(&c, now).is_ok(),
                        _ => r.fail(&c, LastError { message: "x".into(), class: ErrorClass::Temporary }, now, &p).is_ok(),
                    };
                    if ok {
                        prop_assert_eq!(before.state, State::InProgress);
                        prop_assert_eq!(Some(&c), issued.last(), "a stale claim succeeded");
                    }
                    ok
                }
                Action::Expire => r.expire(now).is_ok(),
                Action::Retry => r.retry(now).is_ok(),
                Action::Advance(s) => { now += Duration::from_secs(u64::from(s)); true }
            };
            if !ok {
                prop_assert_eq!(&r, &before, "a refused transition changed the record");
            }
            prop_assert!(r.check_invariants().is_ok(), "{:?}: {:?}", r.check_invariants(), r);
            let holders = claims.iter().flatten().filter(|c| holds(&r, c)).count();
            prop_assert!(holders <= 1, "{} holders of {:?}", holders, r);
            prop_assert_eq!(holders == 1, r.state == State::InProgress, "an in_progress record has its holder");
            if r.state == State::Completed {
                prop_assert!(r.lease.is_none() && r.attempts == 0);
            }
            prop_assert!(r.attempts <= p.max_attempts());
            if r.state == State::Failed {
                prop_assert!(r.attempts >= 1 && r.next_eligible.is_some());
            }
            prop_assert!(r.generation >= before.generation);
        }
    }
}
