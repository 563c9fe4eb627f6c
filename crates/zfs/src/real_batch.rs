//! `RealZfs`'s batched `get_many`, `hold_many`, `release_many` and `holds_many`: one
//! command for the whole batch (split only when the arguments would exceed
//! [`MAX_ARG_BYTES`]).
//!
//! `zfs get|hold|release|holds` continue past a failing argument, print one
//! `cannot … '<name>': <reason>` line for it and exit 1. Each item's result comes from
//! the output and those lines, exactly as the single-item call would report it: a
//! missing dataset, a tag already there (hold) or already gone (release). An item
//! whose outcome the output does not settle (an unknown message, usage text, a
//! command that did not run) is retried with the single-item call, so the results
//! are always those of the trait's default loops.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::PropertyValue;
use crate::error::{Result, ZfsError};
use crate::name::{BookmarkName, DatasetPath, NameError, SnapshotName};
use crate::parse::{named_errors, parse_get_rows, parse_holds, NamedErrors, StderrKind};
use crate::real::RealZfs;
use crate::Zfs;

/// Above this many bytes of names on one command line, a batch is split.
pub(crate) const MAX_ARG_BYTES: usize = 128 * 1024;

/// Properties of one name, as `get` returns them.
type Props = BTreeMap<String, PropertyValue>;

/// Split `items` into runs whose `len`s add up to at most [`MAX_ARG_BYTES`] (each run
/// has at least one item).
pub(crate) fn arg_chunks<T>(items: &[T], len: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, it) in items.iter().enumerate() {
        let l = len(it) + 1;
        if i > start && bytes + l > MAX_ARG_BYTES {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += l;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// The canonical form of a dataset, snapshot or bookmark name, validated.
fn validated_name(name: &str) -> Result<String, NameError> {
    Ok(if name.contains('@') {
        SnapshotName::parse(name)?.to_string()
    } else if name.contains('#') {
        BookmarkName::parse(name)?.to_string()
    } else {
        DatasetPath::parse(name)?.to_string()
    })
}

/// `names` without repeats, in first-seen order.
fn unique<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    names.into_iter().filter(|n| seen.insert(*n)).collect()
}

/// How a failed batch settles one snapshot of a hold or release.
enum Settled {
    /// The outcome is known.
    Done(Result<()>),
    /// Ask the single-item call.
    Retry,
}

/// What the stderr of a failed `zfs hold|release` batch says about `snap`: messages naming
/// it, or its filesystem (`cannot open '<fs>'`). `ok` are the kinds that mean success; a
/// missing snapshot is `missing`'s result. Unmentioned snapshots succeeded when every line
/// was attributed (zfs prints a line for each argument that fails).
fn settle(
    errs: &NamedErrors,
    snap: &SnapshotName,
    ok: &[StderrKind],
    missing: impl Fn() -> Result<()>,
) -> Settled {
    let mut kinds = errs.kinds_for(&snap.to_string());
    kinds.extend(errs.kinds_for(snap.fs().as_str()));
    if kinds.is_empty() {
        return if errs.all_explained() {
            Settled::Done(Ok(()))
        } else {
            Settled::Retry
        };
    }
    if kinds.iter().all(|k| ok.contains(k)) {
        return Settled::Done(Ok(()));
    }
    if kinds
        .iter()
        .all(|k| ok.contains(k) || *k == StderrKind::DatasetDoesNotExist)
    {
        return Settled::Done(missing());
    }
    Settled::Retry
}

impl RealZfs {
    /// [`Zfs::get_many`] in one `zfs get` per [`MAX_ARG_BYTES`] of names.
    pub(crate) async fn get_many_batched(
        &self,
        names: &[String],
        props: &[&str],
    ) -> Result<Vec<(String, Result<Props>)>> {
        let canonical: Vec<Result<String, NameError>> =
            names.iter().map(|n| validated_name(n)).collect();
        let valid = unique(canonical.iter().filter_map(|c| c.as_deref().ok()));
        let mut found: BTreeMap<String, Option<Props>> = BTreeMap::new();
        for chunk in arg_chunks(&valid, |n| n.len()) {
            self.get_chunk(chunk, props, &mut found).await;
        }
        let mut out = Vec::with_capacity(names.len());
        for (name, c) in names.iter().zip(canonical) {
            let r = match c.map(|c| found.get(&c)) {
                Err(e) => Err(e.into()),
                Ok(Some(Some(p))) => Ok(p.clone()),
                Ok(Some(None)) => Err(not_found(name)),
                Ok(None) => self.get(name, props).await,
            };
            out.push((name.clone(), r));
        }
        Ok(out)
    }

    /// One `zfs get` of `names`; settles each name into `found` (`None`: it does not
    /// exist), or leaves it out for the single call.
    async fn get_chunk(
        &self,
        names: &[&str],
        props: &[&str],
        found: &mut BTreeMap<String, Option<Props>>,
    ) {
        let cmd = self
            .runner()
            .zfs()
            .args([
                "get",
                "-Hp",
                "-o",
                "name,property,value,source",
                &props.join(","),
            ])
            .args(names.iter().copied());
        let Ok((status, out, err)) = self.runner().output_unchecked(&cmd).await else {
            return;
        };
        let Ok(rows) = parse_get_rows(&out) else {
            tracing::debug!(cmd = %cmd, "unparsable zfs get output; asking per name");
            return;
        };
        let mut maps: BTreeMap<String, Props> = BTreeMap::new();
        for r in rows {
            maps.entry(r.name).or_default().insert(
                r.property,
                PropertyValue {
                    value: r.value,
                    source: r.source,
                },
            );
        }
        let errs = named_errors(&err);
        for name in names {
            let kinds = errs.kinds_for(name);
            let settled = match maps.remove(*name) {
                Some(map) if status.success() || kinds.is_empty() => Some(Some(map)),
                Some(_) => None,
                None if status.success() => Some(Some(Props::new())),
                None if !kinds.is_empty()
                    && kinds.iter().all(|k| *k == StderrKind::DatasetDoesNotExist) =>
                {
                    Some(None)
                }
                None if kinds.is_empty() && errs.all_explained() => Some(Some(Props::new())),
                None => None,
            };
            if let Some(r) = settled {
                found.insert(name.to_string(), r);
            }
        }
    }

    /// [`Zfs::hold_many`]: `zfs hold TAG s1 s2 …`.
    pub(crate) async fn hold_many_batched(
        &self,
        snaps: &[SnapshotName],
        tag: &str,
    ) -> Result<Vec<Result<()>>> {
        self.hold_or_release(snaps, tag, true).await
    }

    /// [`Zfs::release_many`]: `zfs release TAG s1 s2 …`.
    pub(crate) async fn release_many_batched(
        &self,
        snaps: &[SnapshotName],
        tag: &str,
    ) -> Result<Vec<Result<()>>> {
        self.hold_or_release(snaps, tag, false).await
    }

    async fn hold_or_release(
        &self,
        snaps: &[SnapshotName],
        tag: &str,
        hold: bool,
    ) -> Result<Vec<Result<()>>> {
        let verb = if hold { "hold" } else { "release" };
        let mut out = Vec::with_capacity(snaps.len());
        for chunk in arg_chunks(snaps, |s| s.to_string().len()) {
            let cmd = self
                .runner()
                .zfs()
                .args([verb, tag])
                .args(chunk.iter().map(|s| s.to_string()));
            let errs = match self.runner().output_unchecked(&cmd).await {
                Ok((status, _, _)) if status.success() => {
                    out.extend(chunk.iter().map(|_| Ok(())));
                    continue;
                }
                Ok((_, _, err)) => Some(named_errors(&err)),
                Err(_) => None,
            };
            for s in chunk {
                let settled = match &errs {
                    None => Settled::Retry,
                    Some(errs) if hold => settle(errs, s, &[StderrKind::AlreadyExists], || {
                        Err(not_found(&s.to_string()))
                    }),
                    Some(errs) => settle(errs, s, &[StderrKind::NoSuchHoldTag], || Ok(())),
                };
                out.push(match settled {
                    Settled::Done(r) => r,
                    Settled::Retry if hold => self.hold(s, tag).await,
                    Settled::Retry => self.release(s, tag).await,
                });
            }
        }
        Ok(out)
    }

    /// [`Zfs::holds_many`]: `zfs holds -H s1 s2 …`.
    pub(crate) async fn holds_many_batched(
        &self,
        snaps: &[SnapshotName],
    ) -> Result<Vec<(SnapshotName, Vec<String>)>> {
        let names: Vec<String> = snaps.iter().map(|s| s.to_string()).collect();
        let mut seen = BTreeSet::new();
        let distinct: Vec<(&str, &SnapshotName)> = names
            .iter()
            .map(String::as_str)
            .zip(snaps)
            .filter(|(n, _)| seen.insert(*n))
            .collect();
        let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for chunk in arg_chunks(&distinct, |(n, _)| n.len()) {
            let cmd = self
                .runner()
                .zfs()
                .args(["holds", "-H"])
                .args(chunk.iter().map(|(n, _)| *n));
            let Ok((status, out, err)) = self.runner().output_unchecked(&cmd).await else {
                continue;
            };
            let Ok(rows) = parse_holds(&out) else {
                continue;
            };
            let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (snap, tag) in rows {
                got.entry(snap).or_default().push(tag);
            }
            let errs = named_errors(&err);
            for (name, snap) in chunk {
                let mut kinds = errs.kinds_for(name);
                kinds.extend(errs.kinds_for(snap.fs().as_str()));
                let settled = if kinds.is_empty() {
                    (status.success() || errs.all_explained())
                        .then(|| got.remove(*name).unwrap_or_default())
                } else if kinds.iter().all(|k| *k == StderrKind::DatasetDoesNotExist)
                    && !got.contains_key(*name)
                {
                    Some(Vec::new())
                } else {
                    None
                };
                if let Some(t) = settled {
                    tags.insert(name.to_string(), t);
                }
            }
        }
        let mut out = Vec::with_capacity(snaps.len());
        for (s, name) in snaps.iter().zip(&names) {
            let t = match tags.get(name) {
                Some(t) => t.clone(),
                None => match self.holds(s).await {
                    Ok(t) => t,
                    Err(e) if e.is_does_not_exist() => Vec::new(),
                    Err(e) => return Err(e),
                },
            };
            out.push((s.clone(), t));
        }
        Ok(out)
    }
}

/// The typed "does not exist" for `name`, as the single-item calls report it.
pub(crate) fn not_found(name: &str) -> ZfsError {
    ZfsError::DatasetDoesNotExist {
        path: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit_and_keep_order() {
        let items: Vec<String> = (0..1000).map(|i| format!("{i:0>300}")).collect();
        let chunks = arg_chunks(&items, |s| s.len());
        assert!(chunks.len() > 1);
        assert!(chunks
            .iter()
            .all(|c| c.iter().map(|s| s.len() + 1).sum::<usize>() <= MAX_ARG_BYTES));
        let flat: Vec<&String> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(flat.len(), items.len());
        assert!(flat.iter().zip(&items).all(|(a, b)| *a == b));
        let huge = vec!["x".repeat(MAX_ARG_BYTES * 2)];
        assert_eq!(arg_chunks(&huge, |s| s.len()).len(), 1);
        assert!(arg_chunks::<String>(&[], |s| s.len()).is_empty());
    }

    #[test]
    fn names_are_validated_by_kind() {
        assert_eq!(validated_name("p/a b@s").unwrap(), "p/a b@s");
        assert_eq!(validated_name("p/a b#s").unwrap(), "p/a b#s");
        assert_eq!(validated_name("p/a b").unwrap(), "p/a b");
        for bad in ["-o", "p/a@b@c", "p/a#b@c", "", "p//a"] {
            assert!(validated_name(bad).is_err(), "{bad:?}");
        }
    }

    fn snap(s: &str) -> SnapshotName {
        SnapshotName::parse(s).unwrap()
    }

    #[test]
    fn settles_hold_outcomes_from_stderr() {
        let errs = named_errors(
            "cannot hold snapshot 'p/a@1': tag already exists on this dataset\n\
             cannot hold snapshot 'p/a@gone': dataset does not exist\n\
             cannot open 'p/nofs': dataset does not exist\n\
             cannot hold snapshot 'p/a@odd': dataset is busy\n",
        );
        let ok = [StderrKind::AlreadyExists];
        let missing = || Err(not_found("x"));
        let done = |s: &str| match settle(&errs, &snap(s), &ok, missing) {
            Settled::Done(r) => Some(r.is_ok()),
            Settled::Retry => None,
        };
        assert_eq!(done("p/a@1"), Some(true));
        assert_eq!(
            done("p/a@2"),
            Some(true),
            "unmentioned and all lines explained"
        );
        assert_eq!(done("p/a@gone"), Some(false));
        assert_eq!(done("p/nofs@x"), Some(false));
        assert_eq!(done("p/a@odd"), None);
        let noisy = named_errors("internal error: something\n");
        assert!(matches!(
            settle(&noisy, &snap("p/a@2"), &ok, missing),
            Settled::Retry
        ));
    }
}
