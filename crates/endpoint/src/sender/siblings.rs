//! Sibling clients of one source job (`per_client_cursors`): each client
//! has its own cursor, `<job>:<client>`, and a client's destroy request
//! never removes a snapshot that a sibling has not received yet.
//!
//! Invariants:
//! - A snapshot newer (by `createtxg`) than some sibling's replication
//!   cursor is kept, with the sibling named in the reason; so no sibling
//!   loses a snapshot it has not received (zrepl #631 on the pull side).
//! - A sibling's running step is protected by its step holds, which zfs
//!   itself refuses to destroy (reported as kept).
//! - A sibling that has never replicated has no cursor and protects
//!   nothing.

use std::collections::BTreeMap;

use crate::abstractions::{parse_bookmark, AbstractionKind};
use crate::types::FsVersion;
use crate::JobId;

/// The snapshots of one filesystem (its `versions`) that siblings of
/// `own` (the jobs named `<prefix><client>`) still need, with the reason.
pub fn needed_by_siblings(
    versions: &[FsVersion],
    own: &JobId,
    prefix: &str,
) -> BTreeMap<String, String> {
    // (cursor createtxg, client), oldest first
    let mut cursors: Vec<(u64, String)> = versions
        .iter()
        .filter(|v| !v.is_snapshot())
        .filter_map(|v| {
            let b = parse_bookmark(&v.name)?;
            let job = b.job?;
            let client = job.strip_prefix(prefix)?.to_string();
            (b.kind == AbstractionKind::CursorV2 && job != own.as_str())
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
                format!("protected: client {who} of this source has not received it yet (its replication cursor is older)"),
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
        let needed = needed_by_siblings(&versions, &a, "src:");
        assert_eq!(needed.keys().collect::<Vec<_>>(), ["s3", "s4", "s5"]);
        assert!(needed["s3"].contains("client b"), "{needed:?}");
        // b itself is protected only by a's cursor
        let needed = needed_by_siblings(&versions, &b, "src:");
        assert_eq!(needed.keys().collect::<Vec<_>>(), ["s5"]);
        assert!(needed["s5"].contains("client a"), "{needed:?}");
        // no sibling cursor: nothing
        let alone: Vec<FsVersion> = versions[..5].to_vec();
        assert!(needed_by_siblings(&alone, &a, "src:").is_empty());
    }
}
