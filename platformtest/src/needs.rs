//! What a case needs of OpenZFS beyond the oldest line the suite runs on
//! (2.1, Debian bookworm's own), and why.
//!
//! A case listed here is skipped on an older OpenZFS, with its reason, and
//! is never counted as passed. The list is empty today: everything zrelay
//! uses is in 2.1 (docs/openzfs.md), so every case must pass on every line
//! in the matrix.

use zrelay_zfs::ZfsVersion;

/// `(case, the first OpenZFS version that has what it needs, what that is)`.
type Need = (&'static str, (u32, u32, u32), &'static str);

const NEEDS: &[Need] = &[];

/// Why `case` cannot run on `version`, if it cannot.
pub fn missing(case: &str, version: &ZfsVersion) -> Option<String> {
    missing_in(NEEDS, case, version)
}

fn missing_in(needs: &[Need], case: &str, version: &ZfsVersion) -> Option<String> {
    needs
        .iter()
        .find(|(c, min, _)| *c == case && version.oldest() < *min)
        .map(|(_, (a, b, c), what)| {
            format!(
                "needs OpenZFS {a}.{b}.{c} or later ({what}); this is {}",
                version.short()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_skipped_only_below_its_version_with_the_reason() {
        let needs: &[Need] = &[("SnapshotsChangedSkip", (2, 2, 0), "snapshots_changed")];
        let v21 = ZfsVersion::parse("zfs-2.1.11-1\nzfs-kmod-2.1.11-1\n").unwrap();
        let v23 = ZfsVersion::parse("zfs-2.3.2-2\nzfs-kmod-2.3.2-2\n").unwrap();
        assert_eq!(
            missing_in(needs, "SnapshotsChangedSkip", &v21).as_deref(),
            Some("needs OpenZFS 2.2.0 or later (snapshots_changed); this is 2.1.11")
        );
        assert_eq!(missing_in(needs, "SnapshotsChangedSkip", &v23), None);
        assert_eq!(missing_in(needs, "Other", &v21), None);
        // a new userland over an old module is as old as the module
        let mixed = ZfsVersion::parse("zfs-2.3.2-2\nzfs-kmod-2.1.11-1\n").unwrap();
        assert!(missing_in(needs, "SnapshotsChangedSkip", &mixed).is_some());
    }
}
