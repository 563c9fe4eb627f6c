//! Parser for the stderr of a batched `zfs destroy fs@a,b,c`.
//!
//! OpenZFS 2.x (`zfs_do_destroy` in zfs_main.c, `zfs_destroy_snaps_nvl` in libzfs_dataset.c):
//! - names that do not exist are skipped silently; when none exists the only output is
//!   `could not find any snapshots to destroy; check snapshot names.` (not per snapshot);
//! - a snapshot with clones is found before anything is destroyed, and then nothing is:
//!   `cannot destroy '<fs>@<snap>': snapshot has dependent clones`, then
//!   `use '-R' to destroy the following datasets:` and one dependent per line;
//! - otherwise `lzc_destroy_snaps` is atomic: if any snapshot cannot be destroyed, none is,
//!   and libzfs prints one line per refusing snapshot,
//!   `cannot destroy snapshot <fs>@<snap>: <reason>` (name not quoted), where the reason is
//!   `dataset is busy` (EBUSY), since OpenZFS 2.2 `it's being held. Run 'zfs holds -r
//!   <fs>@<snap>' to see holders.` when the snapshot has holds, `snapshot is cloned` (EEXIST),
//!   or another libzfs error text. Before 2.2 a held snapshot reports `dataset is busy`.
//!
//! Snapshot names may contain `": "` (space and colon are legal), so known reasons are matched
//! as suffixes; an unknown reason is split at the last `": "` that leaves a valid name (as zrepl's
//! greedy regular expression does).

use crate::name::{DatasetPath, SnapshotName, VersionName};

/// One snapshot that `zfs destroy` did not destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroyFailure {
    /// The full snapshot name, `fs@snap`.
    pub snapshot: String,
    /// Why.
    pub reason: DestroyReason,
}

/// Why a snapshot was not destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyReason {
    /// It has user holds (`it's being held`, OpenZFS >= 2.2).
    Held,
    /// `dataset is busy`; before OpenZFS 2.2 this is also how holds are reported.
    Busy,
    /// `snapshot has dependent clones` / `snapshot is cloned`.
    HasDependentClones,
    /// `dataset does not exist`.
    DoesNotExist,
    /// Any other reason, as zfs printed it.
    Other(String),
}

const HELD_MARKER: &str = ": it's being held. Run 'zfs holds -r ";
const CLONES_HINT: &str = "use '-R' to destroy the following datasets:";

/// Known reason texts, matched as suffixes of `<snap>: <reason>`.
const KNOWN: &[(&str, DestroyReason)] = &[
    ("dataset is busy", DestroyReason::Busy),
    ("pool or dataset is busy", DestroyReason::Busy),
    ("snapshot is cloned", DestroyReason::HasDependentClones),
    (
        "snapshot has dependent clones",
        DestroyReason::HasDependentClones,
    ),
    ("dataset does not exist", DestroyReason::DoesNotExist),
];

/// Parses the stderr of `zfs destroy <fs>@<snap>[,<snap>...]` into per-snapshot failures.
///
/// Returns `None` when any non-empty line is not in a recognised per-snapshot form, names
/// another dataset than `fs`, or when there is no failure at all: such output describes the
/// command as a whole (see [`super::stderr::classify`]).
pub fn parse_destroy_stderr(fs: &str, stderr: &str) -> Option<Vec<DestroyFailure>> {
    let mut out = Vec::new();
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let (snap, reason) = if let Some(rest) = line.strip_prefix("cannot destroy snapshot ") {
            split_unquoted(fs, rest.strip_prefix(fs)?.strip_prefix('@')?)?
        } else if let Some(rest) = line.strip_prefix("cannot destroy '") {
            // names cannot contain '\'', so the first "': " ends the name
            let (snap, text) = rest
                .strip_prefix(fs)?
                .strip_prefix('@')?
                .split_once("': ")?;
            if text == "snapshot has dependent clones" && lines.peek() == Some(&CLONES_HINT) {
                lines.next();
                while lines.next_if(|l| is_dependent_line(l)).is_some() {}
            }
            (snap, reason_for(text))
        } else {
            return None;
        };
        let snapshot = SnapshotName::parse(&format!("{fs}@{snap}")).ok()?;
        out.push(DestroyFailure {
            snapshot: snapshot.to_string(),
            reason,
        });
    }
    (!out.is_empty()).then_some(out)
}

fn reason_for(text: &str) -> DestroyReason {
    if text.starts_with("it's being held.") {
        return DestroyReason::Held;
    }
    KNOWN.iter().find(|(t, _)| *t == text).map_or_else(
        || DestroyReason::Other(text.to_string()),
        |(_, r)| r.clone(),
    )
}

/// Splits `<snap>: <reason>` where `<snap>` may itself contain `": "`.
fn split_unquoted<'a>(fs: &str, rest: &'a str) -> Option<(&'a str, DestroyReason)> {
    if let Some(i) = rest.find(HELD_MARKER) {
        return Some((&rest[..i], DestroyReason::Held));
    }
    for (text, reason) in KNOWN {
        if let Some(snap) = rest.strip_suffix(text).and_then(|r| r.strip_suffix(": ")) {
            return Some((snap, reason.clone()));
        }
    }
    rest.match_indices(": ")
        .map(|(i, _)| (&rest[..i], &rest[i + 2..]))
        .filter(|(snap, _)| SnapshotName::parse(&format!("{fs}@{snap}")).is_ok())
        .last()
        .map(|(snap, text)| (snap, DestroyReason::Other(text.to_string())))
}

/// A line of the dependents list after `use '-R' ...`: a dataset, snapshot or bookmark name.
fn is_dependent_line(l: &str) -> bool {
    !l.starts_with("cannot ") && (DatasetPath::parse(l).is_ok() || VersionName::parse(l).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fail(snapshot: &str, reason: DestroyReason) -> DestroyFailure {
        DestroyFailure {
            snapshot: snapshot.to_string(),
            reason,
        }
    }

    /// Port of zrepl's platformtest `UndestroyableSnapshotParsing`: `foo bar@1 2 3,4 5 6,7 8 9,
    /// 10 11 12` with holds on `4 5 6` and `7 8 9`; both OpenZFS >= 2.2 and older messages.
    #[test]
    fn undestroyable_snapshot_parsing() {
        let fs = "zpool/platformtest/foo bar";
        let held = |s: &str| {
            format!("cannot destroy snapshot {fs}@{s}: it's being held. Run 'zfs holds -r {fs}@{s}' to see holders.\n")
        };
        let stderr = held("4 5 6") + &held("7 8 9");
        let got = parse_destroy_stderr(fs, &stderr).unwrap();
        let want = vec![
            fail("zpool/platformtest/foo bar@4 5 6", DestroyReason::Held),
            fail("zpool/platformtest/foo bar@7 8 9", DestroyReason::Held),
        ];
        assert_eq!(got, want);

        let old = format!("cannot destroy snapshot {fs}@7 8 9: dataset is busy\ncannot destroy snapshot {fs}@4 5 6: dataset is busy\n");
        let got = parse_destroy_stderr(fs, &old).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|f| f.reason == DestroyReason::Busy));
        let mut names: Vec<&str> = got.iter().map(|f| f.snapshot.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "zpool/platformtest/foo bar@4 5 6",
                "zpool/platformtest/foo bar@7 8 9"
            ]
        );
    }

    #[test]
    fn undestroyable_snapshot_parsing_is_conservative() {
        let fs = "zroot/a";
        // another filesystem (zrepl: `m[1] != filesystem` => not a DestroySnapshotsError)
        assert_eq!(
            parse_destroy_stderr(fs, "cannot destroy snapshot zroot/b@x: dataset is busy\n"),
            None
        );
        assert_eq!(
            parse_destroy_stderr(fs, "cannot destroy snapshot zroot/a/b@x: dataset is busy\n"),
            None
        );
        // one unexpected line spoils the whole output
        let mixed = "cannot destroy snapshot zroot/a@x: dataset is busy\nsomething else\n";
        assert_eq!(parse_destroy_stderr(fs, mixed), None);
        for whole in [
            "could not find any snapshots to destroy; check snapshot names.\n",
            "cannot destroy snapshots: permission denied\n",
            "cannot open 'zroot/a': dataset does not exist\n",
            "",
        ] {
            assert_eq!(parse_destroy_stderr(fs, whole), None, "{whole:?}");
        }
    }

    #[test]
    fn reasons_and_tricky_names() {
        let fs = "p/a";
        let out = "cannot destroy snapshot p/a@x: dataset is busy: dataset is busy\n\
                   cannot destroy snapshot p/a@y: snapshot is cloned\n\
                   cannot destroy snapshot p/a@z: permission denied\n\
                   cannot destroy snapshot p/a@w: Input/output error\n\
                   cannot destroy snapshot p/a@a: b: it's being held. Run 'zfs holds -r p/a@a: b' to see holders.\n";
        assert_eq!(
            parse_destroy_stderr(fs, out).unwrap(),
            vec![
                fail("p/a@x: dataset is busy", DestroyReason::Busy),
                fail("p/a@y", DestroyReason::HasDependentClones),
                fail("p/a@z", DestroyReason::Other("permission denied".into())),
                fail("p/a@w", DestroyReason::Other("Input/output error".into())),
                fail("p/a@a: b", DestroyReason::Held),
            ]
        );
    }

    #[test]
    fn dependent_clones() {
        let out = "cannot destroy 'p/a@s1': snapshot has dependent clones\n\
                   use '-R' to destroy the following datasets:\n\
                   p/clone one\n\
                   p/clone one@x\n\
                   cannot destroy 'p/a@s 2': snapshot has dependent clones\n\
                   use '-R' to destroy the following datasets:\n\
                   p/c2\n";
        assert_eq!(
            parse_destroy_stderr("p/a", out).unwrap(),
            vec![
                fail("p/a@s1", DestroyReason::HasDependentClones),
                fail("p/a@s 2", DestroyReason::HasDependentClones)
            ]
        );
        let busy = "cannot destroy 'p/a@s1': dataset is busy\n";
        assert_eq!(
            parse_destroy_stderr("p/a", busy).unwrap(),
            vec![fail("p/a@s1", DestroyReason::Busy)]
        );
    }

    fn arb_reason() -> impl Strategy<Value = DestroyReason> {
        prop_oneof![
            Just(DestroyReason::Held),
            Just(DestroyReason::Busy),
            Just(DestroyReason::HasDependentClones),
            Just(DestroyReason::DoesNotExist),
            Just(DestroyReason::Other("Input/output error".into())),
        ]
    }

    fn render(fs: &str, f: &DestroyFailure) -> String {
        let s = &f.snapshot;
        if f.reason == DestroyReason::HasDependentClones {
            let hint = format!("{CLONES_HINT}\n{fs}/clone");
            return format!("cannot destroy '{s}': snapshot has dependent clones\n{hint}\n");
        }
        let reason = match &f.reason {
            DestroyReason::Held => {
                format!("it's being held. Run 'zfs holds -r {s}' to see holders.")
            }
            DestroyReason::Busy => "dataset is busy".into(),
            DestroyReason::DoesNotExist => "dataset does not exist".into(),
            DestroyReason::HasDependentClones | DestroyReason::Other(_) => {
                "Input/output error".into()
            }
        };
        format!("cannot destroy snapshot {s}: {reason}\n")
    }

    proptest! {
        #[test]
        fn rendered_failures_round_trip(
            fs in "[a-z][a-z0-9 ]{0,6}/[a-z0-9 :]{1,6}",
            items in prop::collection::vec(("[a-zA-Z0-9_.: -]{1,12}", arb_reason()), 1..6),
        ) {
            let items: Vec<DestroyFailure> = items
                .into_iter()
                .filter(|(s, _)| s != "." && s != "..")
                .map(|(s, reason)| fail(&format!("{fs}@{s}"), reason))
                .collect();
            prop_assume!(!items.is_empty() && DatasetPath::parse(&fs).is_ok());
            let text: String = items.iter().map(|f| render(&fs, f)).collect();
            prop_assert_eq!(parse_destroy_stderr(&fs, &text), Some(items));
        }

        #[test]
        fn arbitrary_stderr_never_panics(fs in "\\PC{0,10}", s in "(\\PC|\n)*") {
            let _ = parse_destroy_stderr(&fs, &s);
        }
    }
}
