//! `RealZfs`'s bookmarks: the single, GUID-checked `bookmark`, and `bookmark_many`, which
//! creates a batch with one ZFS channel program per pool (`zfs program`, OpenZFS ≥ 2.0).
//!
//! Both decide in the order `zfs bookmark` does: a missing source is
//! [`ZfsError::DatasetDoesNotExist`] naming the source; an existing bookmark is success
//! when its GUID is the expected one and [`ZfsError::BookmarkExists`] otherwise; a source
//! whose GUID is not the expected one is [`ZfsError::GuidMismatch`] naming the source, and
//! nothing is created.
//!
//! Channel programs can read neither a bookmark's GUID nor whether it exists
//! (`zfs.get_prop` and `zfs.exists` refuse bookmarks), so the GUIDs of bookmark sources
//! are checked beforehand, and those of existing bookmarks afterwards, with one `zfs get`
//! each (only when there are any). A request the program cannot settle, and every request
//! of a pool whose program fails (not root, no channel programs, a Lua error), is retried
//! with the single `bookmark`, which is idempotent.

use std::collections::BTreeMap;

use crate::api::{guid_in, PropertyValue, VersionRef};
use crate::cmd::stderr_kind;
use crate::error::{Result, ZfsError};
use crate::name::BookmarkName;
use crate::parse::{parse_program_table, StderrKind};
use crate::real::{not_found_as, RealZfs};
use crate::real_batch::arg_chunks;
use crate::Zfs;

/// The channel program; see its header for the protocol.
pub(crate) const BOOKMARK_PROGRAM: &str = include_str!("lua/bookmark_many.lua");

/// One bookmark request: `(source, expected GUID, new bookmark)`.
type Req = (VersionRef, u64, BookmarkName);

/// What to do with a request, given `zfs get guid` of its source and of the bookmark.
enum Precheck {
    /// Settled (`Err` is the request's result).
    Done,
    /// Nothing is in the way: create it.
    Create,
}

fn precheck(
    (from, guid, bm): &Req,
    src: Result<BTreeMap<String, PropertyValue>>,
    existing: Result<BTreeMap<String, PropertyValue>>,
) -> Result<Precheck> {
    let actual = guid_in(&from.to_string(), &src?)?;
    if let Ok(props) = existing {
        return existing_is(bm, guid_in(&bm.to_string(), &props)?, *guid).map(|()| Precheck::Done);
    }
    ZfsError::check_guid(&from.to_string(), actual, *guid)?;
    Ok(Precheck::Create)
}

/// `Ok` when the existing bookmark `bm` has the expected GUID.
fn existing_is(bm: &BookmarkName, existing: u64, expected: u64) -> Result<()> {
    if existing == expected {
        Ok(())
    } else {
        Err(ZfsError::BookmarkExists {
            bookmark: bm.to_string(),
            existing,
            expected,
        })
    }
}

/// What the program said about one request.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Created,
    Exists,
    NoSource,
    Mismatch(u64),
    /// Anything else: ask the single `bookmark`.
    Unsettled,
}

fn outcome(s: Option<&str>) -> Outcome {
    match s {
        Some("ok") => Outcome::Created,
        Some("exists") => Outcome::Exists,
        Some("nosrc") => Outcome::NoSource,
        Some(s) => match s.strip_prefix("mismatch:").map(str::parse::<i64>) {
            // Lua numbers are int64: a guid above i64::MAX comes back negative
            Some(Ok(g)) => Outcome::Mismatch(g as u64),
            _ => Outcome::Unsettled,
        },
        None => Outcome::Unsettled,
    }
}

/// The program's arguments for `reqs` (see the program's header); bookmark sources
/// must have been checked already.
fn program_args(reqs: &[(usize, &Req)]) -> Vec<String> {
    let mut a = Vec::with_capacity(reqs.len() * 5);
    for (_, (from, guid, bm)) in reqs {
        let kind = match from {
            VersionRef::Snapshot(_) => "s",
            VersionRef::Bookmark(_) => "b",
        };
        a.extend([
            kind.to_string(),
            from.to_string(),
            bm.to_string(),
            bm.fs().to_string(),
            format!("g{}", *guid as i64),
        ]);
    }
    a
}

impl RealZfs {
    /// [`Zfs::bookmark`]: one `zfs get guid` of the source and the bookmark, then, when
    /// nothing is in the way, `zfs bookmark`.
    pub(crate) async fn bookmark_checked(
        &self,
        from: &VersionRef,
        guid: u64,
        bm: &BookmarkName,
    ) -> Result<()> {
        let names = [from.to_string(), bm.to_string()];
        let mut got = self.get_many(&names, &["guid"]).await?.into_iter();
        let (Some((_, src)), Some((_, existing))) = (got.next(), got.next()) else {
            return Err(ZfsError::Unsupported(
                "zfs get returned too few results".into(),
            ));
        };
        let req = (from.clone(), guid, bm.clone());
        match precheck(&req, src, existing)? {
            Precheck::Done => Ok(()),
            Precheck::Create => self.bookmark_cli(from, guid, bm).await,
        }
    }

    /// `zfs bookmark from bm`; an existing bookmark (created meanwhile) is compared.
    async fn bookmark_cli(&self, from: &VersionRef, guid: u64, bm: &BookmarkName) -> Result<()> {
        let cmd = self
            .runner()
            .zfs()
            .args(["bookmark", &from.to_string(), &bm.to_string()]);
        match self.runner().output(&cmd).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    stderr_kind(&e),
                    Some(StderrKind::BookmarkExists | StderrKind::AlreadyExists)
                ) =>
            {
                existing_is(bm, self.guid(&bm.to_string()).await?, guid)
            }
            Err(e) => Err(not_found_as(e, &from.to_string())),
        }
    }

    /// [`Zfs::bookmark_many`]: one `zfs program` per pool (split like the other batches
    /// when the arguments get long).
    pub(crate) async fn bookmark_many_batched(&self, reqs: &[Req]) -> Result<Vec<Result<()>>> {
        let mut results: Vec<Option<Result<()>>> = reqs.iter().map(|_| None).collect();
        let mut checked = vec![false; reqs.len()];
        // bookmark sources: the program cannot read their guid, so check them here
        let bm_src: Vec<usize> = (0..reqs.len())
            .filter(|i| matches!(reqs[*i].0, VersionRef::Bookmark(_)))
            .collect();
        if !bm_src.is_empty() {
            let names: Vec<String> = bm_src
                .iter()
                .flat_map(|i| [reqs[*i].0.to_string(), reqs[*i].2.to_string()])
                .collect();
            let mut got = self.get_many(&names, &["guid"]).await?.into_iter();
            for i in &bm_src {
                let (Some((_, src)), Some((_, existing))) = (got.next(), got.next()) else {
                    break;
                };
                match precheck(&reqs[*i], src, existing) {
                    Ok(Precheck::Create) => checked[*i] = true,
                    Ok(Precheck::Done) => results[*i] = Some(Ok(())),
                    Err(e) => results[*i] = Some(Err(e)),
                }
            }
        }
        let mut by_pool: BTreeMap<&str, Vec<(usize, &Req)>> = BTreeMap::new();
        for (i, r) in reqs.iter().enumerate() {
            let ready = matches!(r.0, VersionRef::Snapshot(_)) || checked[i];
            if results[i].is_none() && ready && r.0.fs().pool() == r.2.fs().pool() {
                by_pool.entry(r.0.fs().pool()).or_default().push((i, r));
            }
        }
        let mut exists = Vec::new();
        for (pool, group) in by_pool {
            let len =
                |(_, (f, _, b)): &(usize, &Req)| f.to_string().len() + 2 * b.to_string().len() + 30;
            for chunk in arg_chunks(&group, len) {
                let said = self.run_bookmark_program(pool, chunk).await;
                for (k, (i, (from, guid, _))) in chunk.iter().enumerate() {
                    let said = said.as_ref().map(|t| t.get(&(k + 1).to_string()));
                    match outcome(said.and_then(|s| s.map(String::as_str))) {
                        Outcome::Created => results[*i] = Some(Ok(())),
                        Outcome::NoSource => {
                            results[*i] = Some(Err(ZfsError::DatasetDoesNotExist {
                                path: from.to_string(),
                            }))
                        }
                        // a "mismatch" naming the expected guid makes no sense: retry
                        Outcome::Mismatch(actual) if actual != *guid => {
                            results[*i] = Some(Err(ZfsError::GuidMismatch {
                                name: from.to_string(),
                                actual,
                                expected: *guid,
                            }))
                        }
                        Outcome::Mismatch(_) => {}
                        Outcome::Exists => exists.push(*i),
                        Outcome::Unsettled => {}
                    }
                }
            }
        }
        if !exists.is_empty() {
            let names: Vec<String> = exists.iter().map(|i| reqs[*i].2.to_string()).collect();
            let got = self.get_many(&names, &["guid"]).await?;
            for (i, (name, props)) in exists.iter().zip(got) {
                let (_, guid, bm) = &reqs[*i];
                if let Ok(g) = props.and_then(|p| guid_in(&name, &p)) {
                    results[*i] = Some(existing_is(bm, g, *guid));
                }
            }
        }
        let mut out = Vec::with_capacity(reqs.len());
        for ((from, guid, bm), r) in reqs.iter().zip(results) {
            out.push(match r {
                Some(r) => r,
                None => self.bookmark_checked(from, *guid, bm).await,
            });
        }
        Ok(out)
    }

    /// Run the bookmark program on `pool`; `None` when it failed as a whole.
    async fn run_bookmark_program(
        &self,
        pool: &str,
        reqs: &[(usize, &Req)],
    ) -> Option<BTreeMap<String, String>> {
        let cmd = self
            .runner()
            .zfs()
            .args(["program", "-j", pool, "-"])
            .args(program_args(reqs));
        let input = Some(BOOKMARK_PROGRAM.as_bytes());
        match self.runner().output_with_stdin(&cmd, input).await {
            Ok((status, out, _)) if status.success() => match parse_program_table(&out) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(cmd = %cmd, error = %e, "bookmark program output not understood; creating one by one");
                    None
                }
            },
            Ok((status, _, err)) => {
                tracing::info!(cmd = %cmd, ?status, stderr = %err.trim_end(), "bookmark program failed; creating one by one");
                None
            }
            Err(e) => {
                tracing::info!(cmd = %cmd, error = %e, "bookmark program did not run; creating one by one");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::SnapshotName;

    #[test]
    fn outcomes_parse() {
        assert_eq!(outcome(Some("ok")), Outcome::Created);
        assert_eq!(outcome(Some("exists")), Outcome::Exists);
        assert_eq!(outcome(Some("nosrc")), Outcome::NoSource);
        assert_eq!(outcome(Some("mismatch:42")), Outcome::Mismatch(42));
        assert_eq!(outcome(Some("mismatch:-1")), Outcome::Mismatch(u64::MAX));
        for other in [Some("err:22"), Some("mismatch:x"), Some(""), None] {
            assert_eq!(outcome(other), Outcome::Unsettled, "{other:?}");
        }
    }

    #[test]
    fn program_args_carry_signed_guids() {
        let fs = crate::name::DatasetPath::parse("p/a b").unwrap();
        let req: Req = (
            VersionRef::Snapshot(SnapshotName::new(&fs, "s").unwrap()),
            u64::MAX - 1,
            BookmarkName::new(&fs, "m").unwrap(),
        );
        let a = program_args(&[(0, &req)]);
        assert_eq!(a, ["s", "p/a b@s", "p/a b#m", "p/a b", "g-2"]);
    }

    #[test]
    fn precheck_order_is_that_of_zfs_bookmark() {
        let fs = crate::name::DatasetPath::parse("p/a").unwrap();
        let req: Req = (
            VersionRef::Snapshot(SnapshotName::new(&fs, "s").unwrap()),
            7,
            BookmarkName::new(&fs, "m").unwrap(),
        );
        let g = |v: u64| {
            Ok(BTreeMap::from([(
                "guid".to_string(),
                PropertyValue {
                    value: v.to_string(),
                    source: "-".into(),
                },
            )]))
        };
        let gone = || Err(ZfsError::DatasetDoesNotExist { path: "x".into() });
        // missing source first, even when the bookmark exists
        assert!(matches!(
            precheck(&req, gone(), g(7)),
            Err(ZfsError::DatasetDoesNotExist { .. })
        ));
        // an existing bookmark is compared before the source's guid
        assert!(matches!(precheck(&req, g(8), g(7)), Ok(Precheck::Done)));
        assert!(matches!(
            precheck(&req, g(7), g(8)),
            Err(ZfsError::BookmarkExists {
                existing: 8,
                expected: 7,
                ..
            })
        ));
        assert!(matches!(
            precheck(&req, g(8), gone()),
            Err(ZfsError::GuidMismatch {
                actual: 8,
                expected: 7,
                ..
            })
        ));
        assert!(matches!(precheck(&req, g(7), gone()), Ok(Precheck::Create)));
    }
}
