//! Table tests of `plan`: policies, receiver states, resume, reconcile, ordering.

use serde::de::value::{Error as DeError, StrDeserializer};
use serde::de::IntoDeserializer;
use serde::Deserialize;
use zrelay_endpoint::{FsListing, FsVersion};

use super::{book, full, inc, listing, path, snap, token};
use crate::{plan, Conflict, FsPlan, InitialPolicy, PlannedStep, ReceiverState};

fn sender_abc() -> (FsListing, [FsVersion; 3]) {
    let (a, b, c) = (snap("a", 1, 10), snap("b", 2, 20), snap("c", 3, 30));
    // Unsorted on purpose, with a bookmark of @a.
    let l = listing(
        "pool/fs",
        &[c.clone(), book("a", 1, 10), a.clone(), b.clone()],
    );
    (l, [a, b, c])
}

fn plan_one(sender: &FsListing, receiver: Option<&FsListing>, policy: InitialPolicy) -> FsPlan {
    let receivers: Vec<FsListing> = receiver.into_iter().cloned().collect();
    let mut plans = plan(std::slice::from_ref(sender), &receivers, policy);
    assert_eq!(plans.len(), 1);
    plans.remove(0)
}

#[test]
fn initial_policies_on_absent_receiver() {
    let (s, [a, b, c]) = sender_abc();
    let p = plan_one(&s, None, InitialPolicy::MostRecent);
    assert_eq!(p.receiver, ReceiverState::Absent);
    assert_eq!(p.fs, path("pool/fs"));
    assert_eq!(p.result, Ok(vec![full(&c)]));
    assert_eq!(p.reconcile, None);

    let p = plan_one(&s, None, InitialPolicy::All);
    assert_eq!(p.result, Ok(vec![full(&a), inc(&a, &b), inc(&b, &c)]));

    let p = plan_one(&s, None, InitialPolicy::Fail);
    let err = p.result.unwrap_err();
    assert_eq!(
        err,
        Conflict::InitialReplicationRefused {
            sender_newest: c.clone()
        }
    );
    assert!(err.to_string().contains("@c") && err.to_string().contains("`fail`"));
}

#[test]
fn default_policy_is_most_recent_and_serde_names() {
    assert_eq!(InitialPolicy::default(), InitialPolicy::MostRecent);
    for (s, want) in [
        ("most_recent", InitialPolicy::MostRecent),
        ("all", InitialPolicy::All),
        ("fail", InitialPolicy::Fail),
    ] {
        let de: StrDeserializer<'_, DeError> = s.into_deserializer();
        assert_eq!(InitialPolicy::deserialize(de).unwrap(), want);
        assert_eq!(want.as_str(), s);
    }
    let de: StrDeserializer<'_, DeError> = "mostrecent".into_deserializer();
    assert!(InitialPolicy::deserialize(de).is_err());
}

#[test]
fn no_sender_snapshots() {
    let s = listing("pool/fs", &[book("a", 1, 10)]);
    for policy in [
        InitialPolicy::MostRecent,
        InitialPolicy::All,
        InitialPolicy::Fail,
    ] {
        let p = plan_one(&s, None, policy);
        assert_eq!(p.result, Err(Conflict::NoSenderSnapshots));
    }
}

#[test]
fn placeholder_receiver_gets_initial_replication() {
    let (s, [_, _, c]) = sender_abc();
    // A placeholder counts as empty, even if it lists something.
    let r = FsListing {
        placeholder: true,
        ..listing("pool/fs", &[snap("zz", 99, 5)])
    };
    let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
    assert_eq!(p.receiver, ReceiverState::Placeholder);
    assert_eq!(p.result, Ok(vec![full(&c)]));
}

#[test]
fn present_receiver_without_snapshots_gets_initial_replication() {
    let (s, [a, b, c]) = sender_abc();
    let r = listing("pool/fs", &[book("a", a.guid, 5)]);
    let p = plan_one(&s, Some(&r), InitialPolicy::All);
    assert_eq!(p.receiver, ReceiverState::Present);
    assert_eq!(p.result, Ok(vec![full(&a), inc(&a, &b), inc(&b, &c)]));
}

#[test]
fn incremental_plan() {
    let (s, [a, b, c]) = sender_abc();
    let r = listing("pool/fs", &[snap("a", a.guid, 5)]);
    let p = plan_one(&s, Some(&r), InitialPolicy::Fail);
    assert_eq!(p.receiver, ReceiverState::Present);
    assert_eq!(p.result, Ok(vec![inc(&a, &b), inc(&b, &c)]));
    assert_eq!(p.steps().len(), 2);
    assert!(!p.is_up_to_date());
    assert_eq!(p.conflict(), None);
    assert_eq!(p.steps()[0].to_string(), "@a => @b");
}

#[test]
fn conflicts_pass_through() {
    let (s, [a, b, _]) = sender_abc();
    let r = listing("pool/fs", &[snap("a", a.guid, 5), snap("x", 50, 6)]);
    let p = plan_one(&s, Some(&r), InitialPolicy::All);
    assert!(
        matches!(p.conflict(), Some(Conflict::Diverged { .. })),
        "{p:?}"
    );
    assert!(p.steps().is_empty());

    let r = listing("pool/fs", &[snap("x", 50, 6)]);
    let p = plan_one(&s, Some(&r), InitialPolicy::All);
    assert!(
        matches!(p.conflict(), Some(Conflict::NoCommonAncestor { .. })),
        "{p:?}"
    );
    assert_eq!(p.reconcile, None);
    let _ = b;
}

#[test]
fn resume_full_token() {
    let (s, [_, b, c]) = sender_abc();
    let t = token(None, b.guid, "pool/fs@b");
    let r = FsListing {
        resume: Some(t.clone()),
        ..FsListing::new(path("pool/fs"))
    };
    let p = plan_one(&s, Some(&r), InitialPolicy::Fail);
    let first = PlannedStep {
        from: None,
        to: b.clone(),
        resume: Some(t),
    };
    assert_eq!(p.result, Ok(vec![first.clone(), inc(&b, &c)]));
    assert_eq!(first.to_string(), "full @b (resuming)");
}

#[test]
fn resume_incremental_token_prefers_snapshot_source() {
    let (s, [a, b, c]) = sender_abc();
    let t = token(Some(a.guid), b.guid, "pool/fs@b");
    // The receiver's own versions are not consulted while resuming (even diverged ones).
    let r = FsListing {
        resume: Some(t.clone()),
        ..listing("pool/fs", &[snap("a", a.guid, 5), snap("x", 77, 6)])
    };
    let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
    let first = PlannedStep {
        from: Some(a.clone()),
        to: b.clone(),
        resume: Some(t),
    };
    assert_eq!(p.result, Ok(vec![first, inc(&b, &c)]));
}

#[test]
fn resume_from_bookmark_when_source_snapshot_is_gone() {
    let (b, c) = (snap("b", 2, 20), snap("c", 3, 30));
    let cursor = book("zrepl_CURSOR_G_0000000000000001_J_job", 1, 10);
    let s = listing("pool/fs", &[cursor.clone(), b.clone(), c.clone()]);
    let t = token(Some(1), c.guid, "pool/fs@c");
    let r = FsListing {
        resume: Some(t.clone()),
        ..listing("pool/fs", &[snap("a", 1, 5)])
    };
    let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
    // `to` is the newest: a single step.
    assert_eq!(
        p.result,
        Ok(vec![PlannedStep {
            from: Some(cursor),
            to: c,
            resume: Some(t)
        }])
    );
}

#[test]
fn resume_token_to_not_on_sender() {
    let (s, _) = sender_abc();
    let r = FsListing {
        resume: Some(token(None, 42, "pool/fs@gone")),
        ..FsListing::new(path("pool/fs"))
    };
    let err = plan_one(&s, Some(&r), InitialPolicy::MostRecent)
        .result
        .unwrap_err();
    assert_eq!(
        err,
        Conflict::ResumeTokenNotOnSender {
            to_guid: 42,
            to_name: "pool/fs@gone".into()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("pool/fs@gone") && msg.contains("42"), "{msg}");
    // A `to` that survives only as a bookmark cannot be resumed.
    let s = listing(
        "pool/fs",
        &[snap("a", 1, 10), book("b", 2, 20), snap("c", 3, 30)],
    );
    let r = FsListing {
        resume: Some(token(Some(1), 2, "pool/fs@b")),
        ..FsListing::new(path("pool/fs"))
    };
    let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
    assert!(matches!(
        p.result,
        Err(Conflict::ResumeTokenNotOnSender { to_guid: 2, .. })
    ));
}

#[test]
fn resume_token_from_is_to() {
    let (s, [_, b, _]) = sender_abc();
    let r = FsListing {
        resume: Some(token(Some(b.guid), b.guid, "pool/fs@b")),
        ..FsListing::new(path("pool/fs"))
    };
    let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
    assert_eq!(p.result, Err(Conflict::ResumeTokenFromIsTo { guid: 2 }));
    assert!(p.result.unwrap_err().to_string().contains("guid 2"));
}

#[test]
fn reconcile_when_up_to_date_and_cursor_elsewhere() {
    let (mut s, [a, _, c]) = sender_abc();
    let r = listing("pool/fs", &[snap("a", a.guid, 5), snap("c", c.guid, 6)]);
    for (cursor, want) in [
        (None, Some(c.clone())),
        (Some(a.guid), Some(c.clone())),
        (Some(c.guid), None),
    ] {
        s.cursor_guid = cursor;
        let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
        assert!(p.is_up_to_date(), "{p:?}");
        assert_eq!(p.conflict(), None);
        assert_eq!(
            p.result,
            Err(Conflict::MostRecentAlreadyPresent { newest: c.clone() })
        );
        assert_eq!(p.reconcile, want, "cursor {cursor:?}");
    }
}

#[test]
fn no_reconcile_when_common_snapshot_survives_only_as_bookmark() {
    let a = snap("a", 1, 10);
    let s = FsListing {
        cursor_guid: Some(a.guid),
        ..listing("pool/fs", &[a.clone(), book("b", 2, 20)])
    };
    let r = listing("pool/fs", &[snap("a", 1, 5), snap("b", 2, 6)]);
    let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
    assert_eq!(
        p.result,
        Err(Conflict::MostRecentAlreadyPresent {
            newest: book("b", 2, 20)
        })
    );
    assert_eq!(p.reconcile, None);
}

#[test]
fn reconcile_when_steps_start_where_the_cursor_is_not() {
    let (mut s, [a, ..]) = sender_abc();
    let r = listing("pool/fs", &[snap("a", a.guid, 5)]);
    for (cursor, want) in [(None, Some(a.clone())), (Some(a.guid), None)] {
        s.cursor_guid = cursor;
        let p = plan_one(&s, Some(&r), InitialPolicy::MostRecent);
        assert_eq!(p.steps()[0].from.as_ref(), Some(&a), "{p:?}");
        assert_eq!(p.reconcile, want, "cursor {cursor:?}");
    }
}

#[test]
fn no_reconcile_for_full_or_resumed_steps() {
    let (mut s, _) = sender_abc();
    s.cursor_guid = None;
    let p = plan_one(&s, None, InitialPolicy::MostRecent);
    assert!(p.steps()[0].from.is_none());
    assert_eq!(p.reconcile, None);
}

#[test]
fn parents_sorted_before_children_and_unrelated_receiver_fs_ignored() {
    let v = [snap("a", 1, 10)];
    // String order would put "pool/a-x" before "pool/a/b" ('-' < '/').
    let sender: Vec<FsListing> = ["pool/a-x", "pool/a/b", "pool", "pool/a"]
        .iter()
        .map(|p| listing(p, &v))
        .collect();
    let receiver = vec![
        listing("pool/a", &[snap("a", 1, 3)]),
        listing("pool/unrelated", &[snap("q", 8, 3)]),
        FsListing {
            placeholder: true,
            ..listing("pool", &[])
        },
    ];
    let plans = plan(&sender, &receiver, InitialPolicy::MostRecent);
    let order: Vec<&str> = plans.iter().map(|p| p.fs.as_str()).collect();
    assert_eq!(order, ["pool", "pool/a", "pool/a/b", "pool/a-x"]);
    let states: Vec<ReceiverState> = plans.iter().map(|p| p.receiver).collect();
    assert_eq!(
        states,
        [
            ReceiverState::Placeholder,
            ReceiverState::Present,
            ReceiverState::Absent,
            ReceiverState::Absent
        ]
    );
    assert!(plans[1].is_up_to_date());
    assert_eq!(plans[2].result, Ok(vec![full(&v[0])]));
}

#[test]
fn empty_sender_list_plans_nothing() {
    let r = vec![listing("pool/a", &[snap("a", 1, 3)])];
    assert!(plan(&[], &r, InitialPolicy::All).is_empty());
}
