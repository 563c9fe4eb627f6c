//! Replica fates and actions: renames found by GUID, gone sources, filter
//! changes and missing pools that never count as gone, the grace period.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zrelay_endpoint::FsListing;

use super::{listing, path, snap};
use crate::{
    gone, replica_actions, replica_fates, Fate, ReplicaAction, ReplicaFate, ReplicaRules,
    SourceSide,
};

fn placeholder(p: &str) -> FsListing {
    FsListing {
        placeholder: true,
        ..listing(p, &[])
    }
}

fn fates(matched: &[FsListing], everywhere: &[FsListing], recv: &[FsListing]) -> Vec<ReplicaFate> {
    replica_fates(
        SourceSide {
            matched,
            everywhere,
        },
        recv,
    )
}

fn fate_of(f: &[ReplicaFate], fs: &str) -> Option<Fate> {
    f.iter().find(|x| x.fs == path(fs)).map(|x| x.fate.clone())
}

#[test]
fn a_renamed_source_is_found_by_guid_and_its_children_move_with_it() {
    let new = listing("pool/new", &[snap("a", 1, 10), snap("b", 2, 11)]);
    let kid = listing("pool/new/kid", &[snap("k", 5, 10)]);
    let keep = listing("pool/keep", &[snap("x", 9, 3)]);
    let matched = [new.clone(), kid.clone(), keep.clone()];
    let recv = [
        placeholder("pool"),
        listing("pool/old", &[snap("a", 1, 10)]),
        listing("pool/old/kid", &[snap("k", 5, 10)]),
        listing("pool/keep", &[snap("x", 9, 3)]),
    ];
    let mut everywhere = matched.to_vec();
    everywhere.push(listing("pool", &[]));
    let f = fates(&matched, &everywhere, &recv);
    assert_eq!(
        f,
        vec![ReplicaFate {
            fs: path("pool/old"),
            fate: Fate::Renamed {
                to: path("pool/new")
            }
        }],
        "the child is not judged: it moves with its parent"
    );
}

#[test]
fn a_destroyed_source_is_gone_and_its_placeholder_parent_with_it() {
    let keep = listing("pool/keep", &[snap("x", 9, 3)]);
    let matched = [keep.clone()];
    let everywhere = [listing("pool", &[]), keep.clone()];
    let recv = [
        placeholder("pool/gone"),
        listing("pool/gone/a", &[snap("a", 1, 1)]),
        listing("pool/gone/b", &[snap("b", 2, 1)]),
        keep,
    ];
    let f = fates(&matched, &everywhere, &recv);
    assert_eq!(fate_of(&f, "pool/gone/a"), Some(Fate::Gone));
    assert_eq!(fate_of(&f, "pool/gone/b"), Some(Fate::Gone));
    assert_eq!(fate_of(&f, "pool/gone"), Some(Fate::Gone));
    assert_eq!(fate_of(&f, "pool/keep"), None);
    assert_eq!(gone(&f).len(), 3);
}

#[test]
fn unmatched_sources_and_snapshots_living_on_elsewhere_are_never_gone() {
    let matched = [listing("pool/a", &[snap("s", 1, 1)])];
    let everywhere = [
        matched[0].clone(),
        listing("pool/excluded", &[snap("e", 7, 1)]),
        listing("pool/moved-out", &[snap("m", 8, 1)]),
    ];
    let recv = [
        matched[0].clone(),
        listing("pool/excluded", &[snap("e", 7, 1)]),
        listing("pool/was-here", &[snap("m", 8, 1)]),
        // a placeholder parent of something kept stays
        placeholder("pool/p"),
        listing("pool/p/child", &[snap("m", 8, 1)]),
    ];
    let f = fates(&matched, &everywhere, &recv);
    for fs in ["pool/excluded", "pool/was-here", "pool/p/child", "pool/p"] {
        assert!(
            matches!(fate_of(&f, fs), Some(Fate::Kept { .. })),
            "{fs}: {:?}",
            fate_of(&f, fs)
        );
    }
    assert!(gone(&f).is_empty());
}

#[test]
fn a_missing_pool_or_an_empty_sender_judges_nothing_gone() {
    let recv = [listing("other/a", &[snap("s", 1, 1)])];
    let matched = [listing("pool/b", &[snap("t", 2, 1)])];
    let f = fates(&matched, &matched, &recv);
    assert!(
        matches!(&fate_of(&f, "other/a"), Some(Fate::Kept { reason }) if reason.contains("pool other")),
        "{f:?}"
    );
    let recv = [listing("pool/a", &[snap("s", 1, 1)])];
    let f = fates(&[], &[listing("pool", &[])], &recv);
    assert!(
        matches!(fate_of(&f, "pool/a"), Some(Fate::Kept { .. })),
        "{f:?}"
    );
}

#[test]
fn renames_are_not_followed_onto_existing_replicas_or_ambiguous_sources() {
    let new = listing("pool/new", &[snap("a", 1, 10)]);
    let copy = listing("pool/copy", &[snap("a", 1, 10)]);
    // the new name's replica exists already
    let recv = [listing("pool/old", &[snap("a", 1, 10)]), new.clone()];
    let one = std::slice::from_ref(&new);
    let f = fates(one, one, &recv);
    assert!(
        matches!(fate_of(&f, "pool/old"), Some(Fate::Kept { .. })),
        "{f:?}"
    );
    // two sender filesystems hold its snapshots
    let recv = [listing("pool/old", &[snap("a", 1, 10)])];
    let both = [new.clone(), copy];
    let f = fates(&both, &both, &recv);
    assert!(
        matches!(&fate_of(&f, "pool/old"), Some(Fate::Kept { reason }) if reason.contains("ambiguous")),
        "{f:?}"
    );
    // two replicas of one renamed source: only the first is renamed
    let recv = [
        listing("pool/old1", &[snap("a", 1, 10)]),
        listing("pool/old2", &[snap("a", 1, 10)]),
    ];
    let one = std::slice::from_ref(&new);
    let f = fates(one, one, &recv);
    assert!(matches!(
        fate_of(&f, "pool/old1"),
        Some(Fate::Renamed { .. })
    ));
    assert!(matches!(fate_of(&f, "pool/old2"), Some(Fate::Kept { .. })));
}

#[test]
fn actions_follow_the_rules_and_the_grace() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let f = vec![
        ReplicaFate {
            fs: path("pool/g"),
            fate: Fate::Gone,
        },
        ReplicaFate {
            fs: path("pool/g/deeper"),
            fate: Fate::Gone,
        },
        ReplicaFate {
            fs: path("pool/old"),
            fate: Fate::Renamed {
                to: path("pool/new"),
            },
        },
    ];
    let since: BTreeMap<_, _> = [(path("pool/g"), t0), (path("pool/g/deeper"), t0)].into();
    let hour = Duration::from_secs(3600);
    let off = replica_actions(&f, ReplicaRules::default(), &since, t0 + hour * 100);
    assert!(
        off.iter().all(|a| matches!(a, ReplicaAction::Keep { .. })),
        "default rules touch nothing: {off:?}"
    );
    let rules = ReplicaRules {
        follow_renames: true,
        delete_after: Some(hour),
    };
    let early = replica_actions(&f, rules, &since, t0 + hour / 2);
    assert_eq!(
        early[0],
        ReplicaAction::Rename {
            fs: path("pool/old"),
            to: path("pool/new")
        }
    );
    assert!(early[1..]
        .iter()
        .all(|a| matches!(a, ReplicaAction::Wait { due, .. } if *due == t0 + hour)));
    let late = replica_actions(&f, rules, &since, t0 + hour);
    let destroyed: Vec<_> = late
        .iter()
        .filter_map(|a| match a {
            ReplicaAction::Destroy { fs, .. } => Some(fs.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(destroyed, ["pool/g/deeper", "pool/g"], "deepest first");
    let unseen = replica_actions(&f, rules, &BTreeMap::new(), SystemTime::UNIX_EPOCH);
    assert!(unseen
        .iter()
        .any(|a| matches!(a, ReplicaAction::Wait { .. })));
}
