//! Property tests over random linear histories.
//!
//! A sender took snapshots `s0..sN` (increasing createtxg, unique GUIDs); since then
//! some were destroyed, some keeping a bookmark. The receiver is absent, empty, a
//! placeholder, holds a subset of the history (its newest being `s_k`), has snapshots
//! of its own after such a subset (diverged), is unrelated, or has a partial receive.

use proptest::prelude::*;
use zrelay_endpoint::{FsListing, FsVersion};

use super::{book, full, listing, snap, token};
use crate::{incremental_path, plan, Conflict, FsPlan, InitialPolicy, ReceiverState};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    Snap,
    SnapAndBookmark,
    BookmarkOnly,
    Gone,
}

impl Keep {
    fn has_snap(self) -> bool {
        matches!(self, Keep::Snap | Keep::SnapAndBookmark)
    }
}

#[derive(Debug, Clone)]
enum Recv {
    Absent,
    Placeholder,
    NoSnapshots,
    /// Snapshots `s_j` for `j < newest` where `older[j]`, and `s_newest`; plus receiver
    /// bookmarks (newer, one with the GUID of `s_{newest+1}`) that must be ignored.
    Prefix {
        newest: usize,
        older: Vec<bool>,
    },
    /// A prefix, then `extra` snapshots the sender never had.
    Diverged {
        newest: usize,
        older: Vec<bool>,
        extra: usize,
    },
    Unrelated {
        n: usize,
    },
    Resume {
        to: usize,
        from: Option<usize>,
    },
}

#[derive(Debug, Clone)]
struct Case {
    history: Vec<FsVersion>,
    keep: Vec<Keep>,
    cursor: Option<usize>,
    recv: Recv,
    policy: InitialPolicy,
    seed: u64,
}

const FOREIGN: u64 = 1 << 40;

fn recv_strategy(n: usize) -> impl Strategy<Value = Recv> {
    prop_oneof![
        1 => Just(Recv::Absent),
        1 => Just(Recv::Placeholder),
        1 => Just(Recv::NoSnapshots),
        5 => (0..n, prop::collection::vec(any::<bool>(), n))
            .prop_map(|(newest, older)| Recv::Prefix { newest, older }),
        2 => (0..n, prop::collection::vec(any::<bool>(), n), 1usize..4)
            .prop_map(|(newest, older, extra)| Recv::Diverged { newest, older, extra }),
        1 => (1usize..4).prop_map(|n| Recv::Unrelated { n }),
        2 => (0..n, prop::option::of(0..n)).prop_map(|(to, from)| Recv::Resume { to, from }),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..10, 0u64..1_000_000, 1u64..1000).prop_flat_map(|(n, salt, base)| {
        (
            prop::collection::vec(1u64..5, n),
            prop::collection::vec(
                prop_oneof![
                    4 => Just(Keep::Snap),
                    1 => Just(Keep::SnapAndBookmark),
                    2 => Just(Keep::BookmarkOnly),
                    1 => Just(Keep::Gone),
                ],
                n,
            ),
            prop::option::of(0..n),
            recv_strategy(n),
            prop_oneof![
                Just(InitialPolicy::MostRecent),
                Just(InitialPolicy::All),
                Just(InitialPolicy::Fail)
            ],
            any::<u64>(),
        )
            .prop_map(move |(gaps, keep, cursor, recv, policy, seed)| {
                let mut txg = base;
                let history = gaps
                    .iter()
                    .enumerate()
                    .map(|(i, gap)| {
                        txg += gap;
                        snap(&format!("s{i}"), salt * 100 + i as u64 + 1, txg)
                    })
                    .collect();
                Case {
                    history,
                    keep,
                    cursor,
                    recv,
                    policy,
                    seed,
                }
            })
    })
}

/// The receiver's copy of `s_j`: same GUID, the receiver pool's own createtxg.
fn on_receiver(c: &Case, j: usize) -> FsVersion {
    snap(&c.history[j].name, c.history[j].guid, 1000 + 3 * j as u64)
}

fn sender_listing(c: &Case, path: &str) -> FsListing {
    let mut vs = Vec::new();
    for (v, k) in c.history.iter().zip(&c.keep) {
        let bm = book(&format!("{}_bm", v.name), v.guid, v.createtxg);
        match k {
            Keep::Snap => vs.push(v.clone()),
            Keep::SnapAndBookmark => vs.extend([bm, v.clone()]),
            Keep::BookmarkOnly => vs.push(bm),
            Keep::Gone => {}
        }
    }
    FsListing {
        cursor_guid: c.cursor.map(|i| c.history[i].guid),
        ..listing(path, &vs)
    }
}

fn prefix(c: &Case, newest: usize, older: &[bool]) -> Vec<FsVersion> {
    let mut vs: Vec<FsVersion> = (0..newest)
        .filter(|&j| older[j])
        .map(|j| on_receiver(c, j))
        .collect();
    vs.push(on_receiver(c, newest));
    vs
}

fn receiver_listing(c: &Case, path: &str) -> Option<FsListing> {
    let n = c.history.len();
    let vs = match &c.recv {
        Recv::Absent => return None,
        Recv::Placeholder => {
            return Some(FsListing {
                placeholder: true,
                ..listing(path, &[on_receiver(c, 0)])
            })
        }
        Recv::NoSnapshots => vec![book("b", c.history[0].guid, 1000)],
        Recv::Prefix { newest, older } => {
            let mut vs = prefix(c, *newest, older);
            let next_guid = c.history.get(newest + 1).map_or(FOREIGN + 99, |v| v.guid);
            vs.push(book("stray", next_guid, 5000));
            vs.push(book("foreign", FOREIGN + 98, 5001));
            vs
        }
        Recv::Diverged {
            newest,
            older,
            extra,
        } => {
            let mut vs = prefix(c, *newest, older);
            vs.extend(
                (0..*extra).map(|j| snap(&format!("x{j}"), FOREIGN + j as u64, 4000 + j as u64)),
            );
            vs
        }
        Recv::Unrelated { n } => (0..*n)
            .map(|j| snap(&format!("u{j}"), 2 * FOREIGN + j as u64, 1000 + j as u64))
            .collect(),
        Recv::Resume { to, from } => {
            let t = token(from.map(|j| c.history[j].guid), c.history[*to].guid, "x@to");
            let base = from.filter(|&f| f < n).map(|f| vec![on_receiver(c, f)]);
            return Some(FsListing {
                resume: Some(t),
                ..listing(path, &base.unwrap_or_default())
            });
        }
    };
    Some(listing(path, &vs))
}

fn sender_snaps(c: &Case) -> Vec<&FsVersion> {
    c.history
        .iter()
        .zip(&c.keep)
        .filter(|(_, k)| k.has_snap())
        .map(|(v, _)| v)
        .collect()
}

fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

fn guids(vs: &[&FsVersion]) -> Vec<u64> {
    vs.iter().map(|v| v.guid).collect()
}

/// Invariants every plan must satisfy, whatever the scenario.
fn check_invariants(p: &FsPlan, s: &FsListing, r: Option<&FsListing>) -> Result<(), TestCaseError> {
    let Ok(steps) = &p.result else {
        return Ok(());
    };
    prop_assert!(!steps.is_empty());
    let newest_snap = s
        .versions
        .iter()
        .filter(|v| v.is_snapshot())
        .max_by_key(|v| v.createtxg);
    prop_assert_eq!(Some(&steps.last().unwrap().to), newest_snap);
    for (i, st) in steps.iter().enumerate() {
        prop_assert!(st.to.is_snapshot());
        prop_assert!(s.versions.contains(&st.to));
        if let Some(f) = &st.from {
            prop_assert!(s.versions.contains(f));
        }
        if i > 0 {
            let prev = &steps[i - 1].to;
            prop_assert!(st.to.createtxg > prev.createtxg);
            prop_assert_eq!(st.from.as_ref().map(|f| f.guid), Some(prev.guid));
            prop_assert!(st.from.as_ref().unwrap().is_snapshot());
            prop_assert!(st.resume.is_none());
        }
    }
    let resuming = r.and_then(|r| r.resume.as_ref()).is_some();
    prop_assert_eq!(steps[0].resume.is_some(), resuming);
    if resuming {
        return Ok(());
    }
    let mut rsnaps: Vec<&FsVersion> = r.filter(|r| !r.placeholder).map_or(Vec::new(), |r| {
        r.versions.iter().filter(|v| v.is_snapshot()).collect()
    });
    rsnaps.sort_by_key(|v| v.createtxg);
    match &steps[0].from {
        Some(f) => prop_assert_eq!(Some(f.guid), rsnaps.last().map(|v| v.guid)),
        None => prop_assert!(rsnaps.is_empty()),
    }
    Ok(())
}

/// What the scenario says the plan must be.
fn check_scenario(c: &Case, p: &FsPlan, s: &FsListing) -> Result<(), TestCaseError> {
    let snaps = sender_snaps(c);
    let on_sender = |j: usize| c.keep[j] != Keep::Gone;
    let tos: Vec<u64> = p.steps().iter().map(|st| st.to.guid).collect();
    match &c.recv {
        Recv::Absent | Recv::Placeholder | Recv::NoSnapshots => {
            let want_state = match c.recv {
                Recv::Absent => ReceiverState::Absent,
                Recv::Placeholder => ReceiverState::Placeholder,
                _ => ReceiverState::Present,
            };
            prop_assert_eq!(p.receiver, want_state);
            let Some(&newest) = snaps.last() else {
                prop_assert_eq!(&p.result, &Err(Conflict::NoSenderSnapshots));
                return Ok(());
            };
            match c.policy {
                InitialPolicy::MostRecent => prop_assert_eq!(&p.result, &Ok(vec![full(newest)])),
                InitialPolicy::All => {
                    prop_assert_eq!(tos, guids(&snaps));
                    prop_assert!(p.steps()[0].from.is_none());
                }
                InitialPolicy::Fail => prop_assert_eq!(
                    &p.result,
                    &Err(Conflict::InitialReplicationRefused {
                        sender_newest: newest.clone()
                    })
                ),
            }
        }
        Recv::Prefix { newest: k, older } => {
            let k = *k;
            if on_sender(k) {
                let later: Vec<&FsVersion> = (k + 1..c.history.len())
                    .filter(|&j| c.keep[j].has_snap())
                    .map(|j| &c.history[j])
                    .collect();
                if later.is_empty() {
                    let Err(Conflict::MostRecentAlreadyPresent { newest }) = &p.result else {
                        return Err(TestCaseError::fail(format!("want up to date: {p:?}")));
                    };
                    prop_assert_eq!(newest.guid, c.history[k].guid);
                    prop_assert_eq!(newest.is_snapshot(), c.keep[k].has_snap());
                    let want = (s.cursor_guid != Some(newest.guid) && c.keep[k].has_snap())
                        .then(|| c.history[k].clone());
                    prop_assert_eq!(&p.reconcile, &want);
                } else {
                    prop_assert_eq!(tos, guids(&later));
                    let from = p.steps()[0].from.as_ref().unwrap();
                    prop_assert_eq!(from.guid, c.history[k].guid);
                    prop_assert_eq!(from.is_snapshot(), c.keep[k].has_snap());
                    let want = (s.cursor_guid != Some(from.guid) && c.keep[k].has_snap())
                        .then(|| c.history[k].clone());
                    prop_assert_eq!(&p.reconcile, &want);
                }
            } else {
                // The receiver's newest is unknown to the sender: an older common one
                // makes it diverged, none makes it unrelated.
                let rs: Vec<usize> = (0..k).filter(|&j| older[j]).collect();
                match rs.iter().rev().find(|&&j| on_sender(j)) {
                    Some(&j) => {
                        let Err(Conflict::Diverged {
                            common,
                            receiver_newer,
                        }) = &p.result
                        else {
                            return Err(TestCaseError::fail(format!("want diverged: {p:?}")));
                        };
                        prop_assert_eq!(common, &on_receiver(c, j));
                        let want: Vec<FsVersion> = rs
                            .iter()
                            .filter(|&&i| i > j)
                            .chain([&k])
                            .map(|&i| on_receiver(c, i))
                            .collect();
                        prop_assert_eq!(receiver_newer, &want);
                    }
                    None => prop_assert!(
                        matches!(&p.result, Err(Conflict::NoCommonAncestor { receiver_newest, .. })
                            if receiver_newest.guid == c.history[k].guid),
                        "{:?}",
                        p
                    ),
                }
            }
        }
        Recv::Diverged {
            newest: k,
            older,
            extra,
        } => {
            let common = (0..=*k).any(|j| (j == *k || older[j]) && on_sender(j));
            if common {
                let Err(Conflict::Diverged { receiver_newer, .. }) = &p.result else {
                    return Err(TestCaseError::fail(format!("want diverged: {p:?}")));
                };
                let tail: Vec<u64> = receiver_newer[receiver_newer.len() - extra..]
                    .iter()
                    .map(|v| v.guid)
                    .collect();
                prop_assert_eq!(
                    tail,
                    (0..*extra as u64).map(|j| FOREIGN + j).collect::<Vec<_>>()
                );
            } else {
                prop_assert!(
                    matches!(p.result, Err(Conflict::NoCommonAncestor { .. })),
                    "{:?}",
                    p
                );
            }
        }
        Recv::Unrelated { n } => {
            let Err(Conflict::NoCommonAncestor {
                receiver_newest,
                sender_newest,
            }) = &p.result
            else {
                return Err(TestCaseError::fail(format!(
                    "want no common ancestor: {p:?}"
                )));
            };
            prop_assert_eq!(receiver_newest.guid, 2 * FOREIGN + *n as u64 - 1);
            prop_assert_eq!(sender_newest.is_none(), s.versions.is_empty());
        }
        Recv::Resume { to, from } => {
            if !c.keep[*to].has_snap() {
                prop_assert!(
                    matches!(p.result, Err(Conflict::ResumeTokenNotOnSender { .. })),
                    "{:?}",
                    p
                );
            } else if *from == Some(*to) {
                prop_assert_eq!(
                    &p.result,
                    &Err(Conflict::ResumeTokenFromIsTo {
                        guid: c.history[*to].guid
                    })
                );
            } else {
                let want: Vec<u64> = (*to..c.history.len())
                    .filter(|&j| c.keep[j].has_snap())
                    .map(|j| c.history[j].guid)
                    .collect();
                prop_assert_eq!(tos, want);
                let first = &p.steps()[0];
                let want_from = from
                    .filter(|&f| on_sender(f))
                    .map(|f| (c.history[f].guid, c.keep[f].has_snap()));
                prop_assert_eq!(
                    first.from.as_ref().map(|f| (f.guid, f.is_snapshot())),
                    want_from
                );
            }
        }
    }
    // Fresh incremental steps: the cursor is reconciled to their base when
    // it is elsewhere and the base is a snapshot.
    let fresh = p.steps().first().filter(|st| st.resume.is_none());
    match fresh.and_then(|st| st.from.as_ref()) {
        Some(from) => {
            let want =
                (s.cursor_guid != Some(from.guid) && from.is_snapshot()).then_some(from.guid);
            prop_assert_eq!(p.reconcile.as_ref().map(|v| v.guid), want);
        }
        None if !p.is_up_to_date() => prop_assert_eq!(&p.reconcile, &None),
        None => {}
    }
    Ok(())
}

fn shuffled(l: &FsListing, seed: u64) -> FsListing {
    let mut l = l.clone();
    shuffle(&mut l.versions, seed);
    l
}

const PATHS: [&str; 5] = ["pool", "pool/a", "pool/a/b", "pool/a-b", "pool/c"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plan_follows_the_history(c in case_strategy()) {
        let s = sender_listing(&c, "pool/fs");
        let r = receiver_listing(&c, "pool/fs");
        let p = plan(std::slice::from_ref(&s), r.as_slice(), c.policy);
        prop_assert_eq!(p.len(), 1);
        let p = &p[0];
        check_invariants(p, &s, r.as_ref())?;
        check_scenario(&c, p, &s)?;

        // Same plan whatever the input order.
        let s2 = shuffled(&s, c.seed);
        let r2 = r.as_ref().map(|r| shuffled(r, c.seed.rotate_left(17)));
        let p2 = plan(std::slice::from_ref(&s2), r2.as_slice(), c.policy);
        prop_assert_eq!(&p2[0], p);

        // The planner's incremental steps are exactly the diff's path.
        if let Some(r) = r.as_ref().filter(|r| !r.placeholder && r.resume.is_none()) {
            if r.versions.iter().any(|v| v.is_snapshot()) {
                match incremental_path(&r2.as_ref().unwrap().versions, &s2.versions) {
                    Ok(path) => {
                        prop_assert!(path.len() >= 2);
                        let pairs: Vec<(u64, u64)> = path.windows(2).map(|w| (w[0].guid, w[1].guid)).collect();
                        let steps: Vec<(u64, u64)> =
                            p.steps().iter().map(|st| (st.from.as_ref().unwrap().guid, st.to.guid)).collect();
                        prop_assert_eq!(pairs, steps);
                    }
                    Err(e) => prop_assert_eq!(&p.result, &Err(e)),
                }
            }
        }
    }

    #[test]
    fn plan_is_per_fs_sorted_and_order_independent(
        cases in prop::collection::vec(case_strategy(), 1..=PATHS.len()),
        seed in any::<u64>(),
    ) {
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for (c, path) in cases.iter().zip(PATHS) {
            senders.push(sender_listing(c, path));
            receivers.extend(receiver_listing(c, path));
        }
        receivers.push(listing("pool/unrelated", &[snap("x", 7, 7)]));
        let p = plan(&senders, &receivers, InitialPolicy::All);
        let order: Vec<&str> = p.iter().map(|p| p.fs.as_str()).collect();
        prop_assert_eq!(order, PATHS[..cases.len()].to_vec());
        for (fs_plan, (s, path)) in p.iter().zip(senders.iter().zip(PATHS)) {
            let r: Vec<FsListing> = receivers.iter().filter(|r| r.path.as_str() == path).cloned().collect();
            prop_assert_eq!(fs_plan, &plan(std::slice::from_ref(s), &r, InitialPolicy::All)[0]);
        }
        shuffle(&mut senders, seed);
        shuffle(&mut receivers, seed.rotate_left(7));
        for (i, l) in senders.iter_mut().chain(receivers.iter_mut()).enumerate() {
            shuffle(&mut l.versions, seed.wrapping_add(i as u64));
        }
        prop_assert_eq!(plan(&senders, &receivers, InitialPolicy::All), p);
    }
}
