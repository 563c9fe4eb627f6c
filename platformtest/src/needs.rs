//! What a case needs of OpenZFS beyond the oldest line the suite runs on
//! (2.1, Debian bookworm's own), and why.
//!
//! A case listed here is skipped on an older OpenZFS, with its reason, and
//! is never counted as passed. The list is short on purpose: everything else
//! must pass on every line in the matrix.

use zrelay_zfs::ZfsVersion;

/// `(case, the first OpenZFS version that has what it needs, what that is)`.
const NEEDS: &[(&str, (u32, u32, u32), &str)] = &[];

/// Why `case` cannot run on `version`, if it cannot.
pub fn missing(case: &str, version: &ZfsVersion) -> Option<String> {
    NEEDS
        .iter()
        .find(|(c, min, _)| *c == case && version.numeric < *min)
        .map(|(_, (a, b, c), what)| {
            format!(
                "needs OpenZFS {a}.{b}.{c} or later ({what}); this is {}",
                version.short()
            )
        })
}
