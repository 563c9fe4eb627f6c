//! Classification of `zfs` stderr by the message texts of OpenZFS 2.x.
//!
//! libzfs prints `<action>: <description>` (`zfs_verror`): the action names the operation and
//! the object (`cannot open 'p/a'`), the description comes from `zfs_error_aux` or from the
//! errno mapping of `zfs_standard_error` (`ENOENT` → `dataset does not exist`, `EBUSY` →
//! `dataset is busy`, `EEXIST` → `dataset already exists`, `EPERM` → `permission denied`).
//! Patterns are matched in a fixed order, most specific first, against the whole text, so
//! multi-line output classifies by its most specific known message.

/// What a `zfs` command's stderr says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StderrKind {
    /// `dataset does not exist`, `could not find any snapshots to destroy; check snapshot
    /// names.`, `bookmark '<name>' does not exist.`
    DatasetDoesNotExist,
    /// `dataset already exists`, `zfs receive` of a full stream onto an existing dataset
    /// (`destination '<fs>' exists` / `must specify -F to overwrite it`), and `zfs hold` with a
    /// tag the snapshot already has (`tag already exists on this dataset`).
    AlreadyExists,
    /// `cannot create bookmark '<name>': bookmark exists`.
    BookmarkExists,
    /// `dataset is busy` / `pool or dataset is busy`.
    Busy,
    /// `cannot destroy snapshot <s>: it's being held. Run 'zfs holds -r <s>' to see holders.`
    Held,
    /// `snapshot has dependent clones` / `snapshot is cloned`.
    HasDependentClones,
    /// `zfs release` of a tag the snapshot does not have: `no such tag on this dataset`.
    NoSuchHoldTag,
    /// `permission denied` (also the `must be run as root` variant).
    PermissionDenied,
    /// The zfs binary lacks resumable send/receive: `invalid option 't'` (send),
    /// `invalid option 's'` / `invalid option 'A'` (receive).
    ResumeNotSupported,
    /// `resume token is corrupt (...)`.
    ResumeTokenCorrupt,
    /// The token's snapshots are gone from the sender: `'<s>' used in the initial send no
    /// longer exists`, `is no longer the same snapshot used in the initial send`,
    /// `incremental source 0x... no longer exists`.
    ResumeSourceGone,
    /// A new (non-resuming) receive onto a dataset with saved partial state:
    /// `contains partially-complete state from "zfs receive -s"`.
    ResumableStateExists,
    /// `zfs receive -A` without saved state: `does not have any resumable receive state to abort`.
    NoResumableState,
    /// `zfs receive -F cannot be used to destroy an encrypted filesystem or overwrite an
    /// unencrypted one with an encrypted one`.
    DestroyOrOverwriteEncrypted,
    /// Anything else.
    Other,
}

/// `(substring, kind)` in match order.
const PATTERNS: &[(&str, StderrKind)] = &[
    (
        "zfs receive -F cannot be used to destroy an encrypted filesystem",
        StderrKind::DestroyOrOverwriteEncrypted,
    ),
    (
        "zfs receive -F cannot be used to overwrite",
        StderrKind::DestroyOrOverwriteEncrypted,
    ),
    (
        "contains partially-complete state from \"zfs receive -s\"",
        StderrKind::ResumableStateExists,
    ),
    (
        "does not have any resumable receive state to abort",
        StderrKind::NoResumableState,
    ),
    ("resume token is corrupt", StderrKind::ResumeTokenCorrupt),
    (
        "used in the initial send no longer exists",
        StderrKind::ResumeSourceGone,
    ),
    (
        "is no longer the same snapshot used in the initial send",
        StderrKind::ResumeSourceGone,
    ),
    ("invalid option 't'", StderrKind::ResumeNotSupported),
    ("invalid option 's'", StderrKind::ResumeNotSupported),
    ("invalid option 'A'", StderrKind::ResumeNotSupported),
    ("it's being held", StderrKind::Held),
    ("has dependent clones", StderrKind::HasDependentClones),
    ("snapshot is cloned", StderrKind::HasDependentClones),
    (
        "tag already exists on this dataset",
        StderrKind::AlreadyExists,
    ),
    ("no such tag on this dataset", StderrKind::NoSuchHoldTag),
    ("bookmark exists", StderrKind::BookmarkExists),
    ("permission denied", StderrKind::PermissionDenied),
    ("Permission denied", StderrKind::PermissionDenied),
    ("dataset does not exist", StderrKind::DatasetDoesNotExist),
    // `zfs get` of a missing bookmark (OpenZFS 2.3): "cannot open 'p/a#b': no such pool or dataset"
    ("no such pool or dataset", StderrKind::DatasetDoesNotExist),
    (
        "could not find any snapshots to destroy",
        StderrKind::DatasetDoesNotExist,
    ),
    ("dataset already exists", StderrKind::AlreadyExists),
    ("must specify -F to overwrite it", StderrKind::AlreadyExists),
    ("dataset is busy", StderrKind::Busy),
];

/// Classifies `zfs` stderr. Unknown text is [`StderrKind::Other`].
pub fn classify(stderr: &str) -> StderrKind {
    if stderr.contains("cannot resume send: incremental source ")
        && stderr.contains(" no longer exists")
    {
        return StderrKind::ResumeSourceGone;
    }
    if let Some(kind) = PATTERNS
        .iter()
        .find(|(p, _)| stderr.contains(p))
        .map(|(_, k)| *k)
    {
        return kind;
    }
    // `zfs destroy p/a#b` when the bookmark is missing: "bookmark 'p/a#b' does not exist."
    if stderr
        .lines()
        .any(|l| l.starts_with("bookmark '") && l.trim_end().ends_with("' does not exist."))
    {
        return StderrKind::DatasetDoesNotExist;
    }
    StderrKind::Other
}

/// The resume token from a failed `zfs receive -s`, which ends with `A resuming stream can be
/// generated on the sending system by running:` and `    zfs send -t <token>`.
pub fn recv_resume_token(stderr: &str) -> Option<String> {
    const MARKER: &str = "A resuming stream can be generated on the sending system by running:";
    let rest = stderr[stderr.find(MARKER)? + MARKER.len()..].trim_start();
    let token = rest.strip_prefix("zfs send -t")?.trim_start();
    let token: String = token.chars().take_while(|c| !c.is_whitespace()).collect();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use StderrKind::*;

    #[test]
    fn classifies_real_messages() {
        let cases: &[(&str, StderrKind)] = &[
            ("cannot open 'zroot/nope': dataset does not exist\n", DatasetDoesNotExist),
            ("cannot open 'p/a b#nope': no such pool or dataset\n", DatasetDoesNotExist),
            ("could not find any snapshots to destroy; check snapshot names.\n", DatasetDoesNotExist),
            ("bookmark 'zroot/a#b' does not exist.\n", DatasetDoesNotExist),
            ("cannot create bookmark 'zroot/a#b': dataset does not exist\n", DatasetDoesNotExist),
            ("cannot create snapshot 'zroot/a@s': dataset already exists\n", AlreadyExists),
            ("cannot create 'zroot/a': dataset already exists\n", AlreadyExists),
            ("cannot receive new filesystem stream: destination 'zroot/a' exists\nmust specify -F to overwrite it\n", AlreadyExists),
            ("cannot create bookmark 'zroot/a#b': bookmark exists\n", BookmarkExists),
            ("cannot destroy 'zroot/a': dataset is busy\n", Busy),
            ("cannot destroy snapshot zroot/a@s: dataset is busy\n", Busy),
            ("cannot unmount '/zroot/a': pool or dataset is busy\n", Busy),
            ("cannot destroy snapshot zroot/a@s: it's being held. Run 'zfs holds -r zroot/a@s' to see holders.\n", Held),
            ("cannot destroy 'zroot/a@s': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\nzroot/c\n", HasDependentClones),
            ("cannot destroy snapshot zroot/a@s: snapshot is cloned\n", HasDependentClones),
            ("cannot hold snapshot 'zroot/a@s': tag already exists on this dataset\n", AlreadyExists),
            ("cannot release hold from snapshot 'zroot/a@s': no such tag on this dataset\n", NoSuchHoldTag),
            ("cannot create snapshots in 'cache/appdata': permission denied\n", PermissionDenied),
            ("Permission denied the ZFS utilities must be run as root.\n", PermissionDenied),
            ("invalid option 't'\nusage:\n\tsend [-DnPpRvLecwhb] [-[i|I] snapshot] <snapshot>\n", ResumeNotSupported),
            ("cannot resume send: resume token is corrupt (incorrect checksum)\n", ResumeTokenCorrupt),
            ("cannot resume send: 'zroot/a@s' used in the initial send no longer exists\n", ResumeSourceGone),
            ("cannot resume send: 'zroot/a@s' is no longer the same snapshot used in the initial send\n", ResumeSourceGone),
            ("cannot resume send: incremental source 0xa000000000000000 no longer exists\n", ResumeSourceGone),
            ("cannot receive new filesystem stream: destination zroot/a contains partially-complete state from \"zfs receive -s\".\n", ResumableStateExists),
            ("'zroot/a' does not have any resumable receive state to abort\n", NoResumableState),
            ("cannot receive new filesystem stream: zfs receive -F cannot be used to destroy an encrypted filesystem or overwrite an unencrypted one with an encrypted one\n", DestroyOrOverwriteEncrypted),
            ("cannot receive: failed to read from stream\n", Other),
            ("", Other),
        ];
        for (text, kind) in cases {
            assert_eq!(classify(text), *kind, "{text:?}");
        }
    }

    #[test]
    fn extracts_resume_token_from_failed_receive() {
        let stderr = "cannot receive incremental stream: checksum mismatch or incomplete stream.\n\
                      Partially received snapshot is saved.\n\
                      A resuming stream can be generated on the sending system by running:\n    \
                      zfs send -t 1-fdf224ef6-118-789c636064000310a501c49c50360710a715e5e7a6\n";
        assert_eq!(
            recv_resume_token(stderr).as_deref(),
            Some("1-fdf224ef6-118-789c636064000310a501c49c50360710a715e5e7a6")
        );
        assert_eq!(
            recv_resume_token("cannot receive: failed to read from stream\n"),
            None
        );
    }

    proptest! {
        #[test]
        fn arbitrary_stderr_never_panics(s in "(\\PC|\n)*") {
            let _ = classify(&s);
            let _ = recv_resume_token(&s);
        }
    }
}
