//! Siblings: the clients of one source job (`per_client_cursors`), or the
//! targets of one fan-out push job (`targets`). Each sibling has its own
//! cursor, `<job>:<name>`, and a destroy through one sibling's sender never
//! removes a snapshot that another sibling has not received yet.
//!
//! Invariants:
//! - A snapshot newer (by `createtxg`) than some sibling's replication
//!   cursor is kept, with the sibling named in the reason; so no sibling
//!   loses a snapshot it has not received (zrepl #631, on both sides).
//! - A sibling in the `lapsed` set (a target unhealthy for longer than its
//!   grace) protects nothing, so a dead target cannot fill the pool.
//! - A sibling's running step is protected by its step holds, which zfs
//!   itself refuses to destroy (reported as kept).
//! - A sibling that has never replicated has no cursor and protects
//!   nothing.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::watch;

use crate::abstractions::{parse_bookmark, AbstractionKind};
use crate::types::FsVersion;
use crate::JobId;

/// What the siblings are to each other, for the kept reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiblingRole {
    /// Clients of one source job: "client b of this source".
    Client,
    /// Targets of one push job: "target b of this job".
    Target,
}

impl SiblingRole {
    fn describe(self, who: &str) -> String {
        match self {
            SiblingRole::Client => format!("client {who} of this source"),
            SiblingRole::Target => format!("target {who} of this job"),
        }
    }
}

/// A sender's siblings: the jobs named `<prefix><name>`, except the
/// `lapsed` names (updated by whoever judges them, the fan-out job's
/// health checks).
#[derive(Debug, Clone)]
pub struct Siblings {
    /// `<job>:`.
    pub prefix: String,
    /// Clients or targets.
    pub role: SiblingRole,
    /// Names that no longer protect anything.
    pub lapsed: watch::Receiver<BTreeSet<String>>,
}

impl Siblings {
    /// Siblings none of which ever lapses.
    pub fn new(prefix: impl Into<String>, role: SiblingRole) -> Siblings {
        let (tx, lapsed) = watch::channel(BTreeSet::new());
        // The receiver keeps the last value after the sender is gone.
        drop(tx);
        Siblings {
            prefix: prefix.into(),
            role,
            lapsed,
        }
    }
}

/// The snapshots of one filesystem (its `versions`) that the siblings of
/// `own` still need, with the reason.
pub fn needed_by_siblings(
    versions: &[FsVersion],
    own: &JobId,
    siblings: &Siblings,
) -> BTreeMap<String, String> {
    let lapsed = siblings.lapsed.borrow().clone();
    needed(versions, own, &siblings.prefix, siblings.role, &lapsed)
}

fn needed(
    versions: &[FsVersion],
    own: &JobId,
    prefix: &str,
    role: SiblingRole,
    lapsed: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    // (cursor createtxg, client), oldest first
    let mut cursors: Vec<(u64, String)> = versions
        .iter()
        .filter(|v| !v.is_snapshot())
        .filter_map(|v| {
            let b = parse_bookmark(&v.name)?;
            let job = b.job?;
            let client = job.strip_prefix(prefix)?.to_string();
            (b.kind == AbstractionKind::CursorV2
                && job != own.as_str()
                && !lapsed.contains(&client))
            .then_some((v.createtxg, client))
        })
        .collect();
    cursors.sort();
    versions
        .iter()
        .filter(|v| v.is_snapshot())
        .filter_map(|v| {
            // the sibling furthest behind that lacks it
            let (_, who) = cursors.iter().find(|(txg, _)| v.createtxg > *txg)?;
            Some((
                v.name.clone(),
                format!(
                    "protected: {} has not received it yet (its replication cursor is older)",
                    role.describe(who)
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use zrelay_zfs::name::VersionKind;

    use super::*;

    fn v(kind: VersionKind, name: &str, txg: u64) -> FsVersion {
        FsVersion {
            kind,
            name: name.into(),
            guid: txg * 7,
            createtxg: txg,
            creation: 0,
        }
    }

    #[test]
    fn a_sibling_keeps_what_it_has_not_received() {
        let a = JobId::new("src:a").unwrap();
        let b = JobId::new("src:b").unwrap();
        let snaps = (1..=5).map(|i| v(VersionKind::Snapshot, &format!("s{i}"), i * 10));
        let mut versions: Vec<FsVersion> = snaps.collect();
        // a's cursor at s4, b's at s2, another job's at s1
        versions.push(v(VersionKind::Bookmark, &a.cursor_bookmark(40 * 7), 40));
        versions.push(v(VersionKind::Bookmark, &b.cursor_bookmark(20 * 7), 20));
        let other = JobId::new("other").unwrap();
        versions.push(v(VersionKind::Bookmark, &other.cursor_bookmark(70), 10));
        let clients = Siblings::new("src:", SiblingRole::Client);
        let needed = needed_by_siblings(&versions, &a, &clients);
        assert_eq!(needed.keys().collect::<Vec<_>>(), ["s3", "s4", "s5"]);
        assert!(
            needed["s3"].contains("client b of this source"),
            "{needed:?}"
        );
        // b itself is protected only by a's cursor
        let needed = needed_by_siblings(&versions, &b, &clients);
        assert_eq!(needed.keys().collect::<Vec<_>>(), ["s5"]);
        assert!(needed["s5"].contains("client a"), "{needed:?}");
        // no sibling cursor: nothing
        let alone: Vec<FsVersion> = versions[..5].to_vec();
        assert!(needed_by_siblings(&alone, &a, &clients).is_empty());
    }

    #[test]
    fn a_lapsed_target_protects_nothing() {
        let t = |n: &str| JobId::new(&format!("push:{n}")).unwrap();
        let mut versions: Vec<FsVersion> = (1..=5)
            .map(|i| v(VersionKind::Snapshot, &format!("s{i}"), i * 10))
            .collect();
        versions.push(v(
            VersionKind::Bookmark,
            &t("east").cursor_bookmark(50 * 7),
            50,
        ));
        versions.push(v(
            VersionKind::Bookmark,
            &t("dead").cursor_bookmark(10 * 7),
            10,
        ));
        let (tx, lapsed) = watch::channel(BTreeSet::new());
        let targets = Siblings {
            prefix: "push:".into(),
            role: SiblingRole::Target,
            lapsed,
        };
        let needed = needed_by_siblings(&versions, &t("east"), &targets);
        assert_eq!(needed.keys().collect::<Vec<_>>(), ["s2", "s3", "s4", "s5"]);
        assert!(
            needed["s2"].contains("target dead of this job"),
            "{needed:?}"
        );
        tx.send_replace(["dead".to_string()].into());
        assert!(needed_by_siblings(&versions, &t("east"), &targets).is_empty());
    }
}
