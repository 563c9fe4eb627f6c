//! Table tests of `incremental_path` and the version order.

use super::{book, snap};
use crate::{incremental_path, sort_versions, Conflict};
use zrelay_endpoint::FsVersion;

/// Sender history `@a @b @c @d` (guids 1..4, txg 10, 20, 30, 40).
fn abcd() -> [FsVersion; 4] {
    [
        snap("a", 1, 10),
        snap("b", 2, 20),
        snap("c", 3, 30),
        snap("d", 4, 40),
    ]
}

/// The same snapshot as the receiver lists it: same guid, its own createtxg.
fn recv(v: &FsVersion, txg: u64) -> FsVersion {
    snap(&v.name, v.guid, txg)
}

#[test]
fn incremental_from_receiver_newest_to_sender_newest() {
    let [a, b, c, d] = abcd();
    let receiver = [recv(&a, 5), recv(&b, 6)];
    let path = incremental_path(&receiver, &[a, b.clone(), c.clone(), d.clone()]).unwrap();
    assert_eq!(path, vec![b, c, d]);
}

#[test]
fn input_order_does_not_matter() {
    let [a, b, c, d] = abcd();
    let receiver = [recv(&b, 6), recv(&a, 5)];
    let sender = [d.clone(), b.clone(), a, c.clone()];
    assert_eq!(incremental_path(&receiver, &sender).unwrap(), vec![b, c, d]);
}

#[test]
fn up_to_date() {
    let [a, b, ..] = abcd();
    let err = incremental_path(&[recv(&a, 5), recv(&b, 6)], &[a, b.clone()]).unwrap_err();
    assert_eq!(err, Conflict::MostRecentAlreadyPresent { newest: b });
    assert!(err.is_up_to_date());
    assert!(err.to_string().contains("@b"), "{err}");
}

#[test]
fn newer_sender_bookmarks_are_not_targets() {
    let [a, b, ..] = abcd();
    let err = incremental_path(&[recv(&a, 5)], &[a.clone(), book("b", b.guid, 20)]).unwrap_err();
    assert_eq!(err, Conflict::MostRecentAlreadyPresent { newest: a });
}

#[test]
fn no_common_ancestor() {
    let [a, b, ..] = abcd();
    let receiver = [snap("x", 91, 5), snap("y", 92, 6)];
    let err = incremental_path(&receiver, &[a, b.clone()]).unwrap_err();
    assert_eq!(
        err,
        Conflict::NoCommonAncestor {
            sender_newest: Some(b),
            receiver_newest: snap("y", 92, 6),
        }
    );
    assert!(!err.is_up_to_date());
    let msg = err.to_string();
    for needle in [
        "@y",
        "@b",
        "unrelated history",
        "Nothing will be overwritten",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    }
}

#[test]
fn no_common_ancestor_with_empty_sender() {
    let err = incremental_path(&[snap("x", 91, 5)], &[]).unwrap_err();
    assert_eq!(
        err,
        Conflict::NoCommonAncestor {
            sender_newest: None,
            receiver_newest: snap("x", 91, 5),
        }
    );
    assert!(
        err.to_string().contains("no snapshots or bookmarks"),
        "{err}"
    );
}

#[test]
fn diverged() {
    let [a, b, c, d] = abcd();
    // The receiver has @c and @d of its own (other guids): taken after @b.
    let receiver = [recv(&a, 5), recv(&b, 6), snap("c", 33, 7), snap("d", 44, 8)];
    let err = incremental_path(&receiver, &[a, b, c, d]).unwrap_err();
    assert_eq!(
        err,
        Conflict::Diverged {
            common: snap("b", 2, 6),
            receiver_newer: vec![snap("c", 33, 7), snap("d", 44, 8)],
        }
    );
    assert!(
        err.to_string().starts_with(
            "diverged: receiver has snapshots @c, @d newer than the most recent common \
             snapshot @b; the sender does not have them."
        ),
        "{err}"
    );
}

#[test]
fn diverged_single_snapshot_message() {
    let [a, b, ..] = abcd();
    let err = incremental_path(&[recv(&a, 5), snap("z", 99, 6)], &[a, b]).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "diverged: receiver has snapshot @z newer than the most recent common snapshot @a;"
        ),
        "{err}"
    );
}

#[test]
fn receiver_newest_destroyed_on_sender_is_diverged() {
    // The sender destroyed @b without a bookmark: the receiver's @b is unknown to it.
    let [a, b, c, _] = abcd();
    let err = incremental_path(&[recv(&a, 5), recv(&b, 6)], &[a, c]).unwrap_err();
    assert!(
        matches!(&err, Conflict::Diverged { common, receiver_newer }
            if common.name == "a" && receiver_newer == &vec![recv(&b, 6)]),
        "{err:?}"
    );
}

#[test]
fn cursor_bookmark_as_incremental_source() {
    // @b was destroyed on the sender, the replication cursor bookmark keeps its guid.
    let [a, b, c, d] = abcd();
    let cursor = book("zrepl_CURSOR_G_0000000000000002_J_job", b.guid, b.createtxg);
    let sender = [a.clone(), cursor.clone(), c.clone(), d.clone()];
    let path = incremental_path(&[recv(&a, 5), recv(&b, 6)], &sender).unwrap();
    assert_eq!(path, vec![cursor, c, d]);
}

#[test]
fn snapshot_preferred_over_bookmark_with_same_guid() {
    let [a, b, c, _] = abcd();
    let cursor = book("zrepl_CURSOR_G_0000000000000002_J_job", b.guid, b.createtxg);
    // Bookmark listed after the snapshot: the sort puts it first anyway.
    let sender = [a, b.clone(), cursor, c.clone()];
    let path = incremental_path(&[recv(&b, 6)], &sender).unwrap();
    assert_eq!(path, vec![b, c]);
}

#[test]
fn receiver_bookmarks_are_ignored() {
    let [a, b, c, d] = abcd();
    // A receiver bookmark with @c's guid must not make @c the common ancestor, and an
    // unknown newer receiver bookmark must not make it diverged.
    let receiver = [
        recv(&a, 5),
        recv(&b, 6),
        book("c", c.guid, 7),
        book("other", 77, 8),
    ];
    let path = incremental_path(&receiver, &[a, b.clone(), c.clone(), d.clone()]).unwrap();
    assert_eq!(path, vec![b, c, d]);
}

#[test]
fn sender_bookmarks_between_snapshots_are_skipped() {
    let [a, b, c, d] = abcd();
    let sender = [
        a.clone(),
        book("b", b.guid, b.createtxg),
        c.clone(),
        book("cx", c.guid, c.createtxg),
        d.clone(),
    ];
    assert_eq!(
        incremental_path(&[recv(&a, 5)], &sender).unwrap(),
        vec![a, c, d]
    );
}

#[test]
fn empty_receiver_is_initial_replication_refused() {
    let [a, b, ..] = abcd();
    assert_eq!(
        incremental_path(&[book("a", a.guid, 5)], &[a, b.clone()]).unwrap_err(),
        Conflict::InitialReplicationRefused { sender_newest: b }
    );
    assert_eq!(
        incremental_path(&[], &[book("a", 1, 10)]).unwrap_err(),
        Conflict::NoSenderSnapshots
    );
}

#[test]
fn sort_order_is_txg_then_bookmark_then_name() {
    let sorted = sort_versions(&[
        snap("b", 2, 20),
        snap("a2", 9, 10),
        book("a", 1, 10),
        snap("a", 1, 10),
        book("0", 5, 15),
    ]);
    let names: Vec<String> = sorted.iter().map(FsVersion::rel_name).collect();
    assert_eq!(names, ["#a", "@a", "@a2", "#0", "@b"]);
}

#[test]
fn messages_name_the_versions() {
    let (b, c) = (snap("b", 2, 20), snap("c", 3, 30));
    let cases = [
        (
            Conflict::NoCommonAncestor {
                sender_newest: Some(c.clone()),
                receiver_newest: snap("y", 9, 5),
            },
            "no common snapshot: none of the receiver's snapshots (newest: @y) has the GUID of \
             a snapshot or bookmark on the sender (newest: @c), so the receiver's filesystem \
             has unrelated history. Nothing will be overwritten; to replicate, rename or \
             destroy the receiver's filesystem so that an initial replication starts over",
        ),
        (
            Conflict::NoCommonAncestor {
                sender_newest: None,
                receiver_newest: snap("y", 9, 5),
            },
            "no common snapshot: the sender has no snapshots or bookmarks of this filesystem, \
             while the receiver has snapshots (newest: @y). Nothing will be overwritten on the \
             receiver",
        ),
        (
            Conflict::Diverged {
                common: b.clone(),
                receiver_newer: vec![c.clone(), snap("d", 4, 40)],
            },
            "diverged: receiver has snapshots @c, @d newer than the most recent common snapshot \
             @b; the sender does not have them. Nothing will be overwritten; to continue, \
             destroy them on the receiver (`zfs rollback -r` to @b)",
        ),
        (
            Conflict::MostRecentAlreadyPresent { newest: c.clone() },
            "up to date: the receiver already has the sender's most recent version @c (guid 3)",
        ),
        (
            Conflict::NoSenderSnapshots,
            "the sender has no snapshots of this filesystem: nothing to replicate",
        ),
        (
            Conflict::InitialReplicationRefused { sender_newest: c },
            "initial replication refused: the receiver has no snapshots of this filesystem and \
             conflict_resolution.initial_replication is `fail` (the sender's newest snapshot is @c)",
        ),
        (
            Conflict::ResumeTokenNotOnSender {
                to_guid: 42,
                to_name: "pool/fs@x".into(),
            },
            "the receiver has a partial receive of pool/fs@x (guid 42), but the sender no longer \
             has that snapshot; abort the partial receive on the receiver (`zfs receive -A`) to \
             replicate again",
        ),
        (
            Conflict::ResumeTokenFromIsTo { guid: 42 },
            "invalid resume token on the receiver: its incremental source and target are the \
             same version (guid 42); abort the partial receive (`zfs receive -A`)",
        ),
    ];
    for (conflict, want) in cases {
        assert_eq!(conflict.to_string(), want);
        assert_eq!(conflict.is_up_to_date(), want.starts_with("up to date"));
    }
}
