//! The one check of what a peer sends, applied at the protocol boundary: every decoded
//! request on the server ([`request`]) and every decoded reply on the client ([`Reply`]).
//!
//! Invariants:
//! - Every dataset path, snapshot and bookmark name from a peer passes
//!   [`validate_peer`]: no `%` anywhere. Listed names may contain `%` (`fs/%recv`), but
//!   ZFS never creates such a name, and `zfs destroy fs@a%b` destroys a range; a peer's
//!   `%` is refused here, before any endpoint sees it. Short names are also valid
//!   components ([`validate_component`]).
//! - A resume token is at most [`MAX_RESUME_TOKEN`] bytes of `[0-9A-Za-z-]`.
//! - A request carries at most [`RpcConfig::max_request_items`] steps, commits,
//!   filesystems or snapshot names.
//! - Peer text kept from a reply (error messages in batch results, destroy reasons, a
//!   resume state's name) is kept only as [`peer_text`] shows it.
//! - Every refusal names the offending value, escaped and cut.

use zrelay_endpoint::{CommitReq, DestroyOutcome, FsListing, FsVersion, StepReq};
use zrelay_zfs::name::{
    validate_component, validate_peer, NameError, NameKind, VersionKind, MAX_NAME_LEN,
};
use zrelay_zfs::peer_text::{self, PEER_TEXT_MAX};
use zrelay_zfs::DatasetPath;

use crate::error::WireError;
use crate::frame::PEER_ERROR_MAX;
use crate::wire::{PingReply, Request};
use crate::RpcConfig;

/// Longest resume token accepted from a peer (real ones are a few hundred bytes).
pub(crate) const MAX_RESUME_TOKEN: usize = 16 << 10;

/// Why a value from a peer was refused. Every variant names the value,
/// escaped and cut.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// A dataset, snapshot or bookmark name is not valid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A snapshot name to destroy is not valid.
    #[error("{source} (destroying snapshots of {fs})")]
    Destroy {
        /// What is wrong with the name.
        source: NameError,
        /// The filesystem (already checked).
        fs: DatasetPath,
    },
    /// A resume token is not valid.
    #[error("invalid resume token \"{shown}\": {fault}")]
    Token {
        /// The token, as [`peer_text::peer`] shows it.
        shown: String,
        /// What is wrong with it.
        fault: TokenFault,
    },
    /// A request carries more items than allowed.
    #[error(
        "the request carries {n} {what}, this zrelay accepts at most {max} per request \
         (limits.max_steps_per_request); send smaller batches"
    )]
    TooMany {
        /// How many it carries.
        n: usize,
        /// Of what.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Something in a listing of a filesystem was refused.
    #[error("{source} (listing {fs})")]
    Listing {
        /// What was refused.
        source: Box<Refusal>,
        /// The listed filesystem (already checked).
        fs: DatasetPath,
    },
}

/// What is wrong with a resume token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenFault {
    #[error("it is empty")]
    Empty,
    #[error("longer than {MAX_RESUME_TOKEN} bytes")]
    TooLong,
    #[error("{0:?} is not allowed (only letters, digits and \"-\")")]
    BadChar(char),
}

type Checked = Result<(), Refusal>;

/// A dataset path from a peer.
fn path(p: &DatasetPath) -> Checked {
    Ok(validate_peer(p.as_str(), NameKind::Dataset)?)
}

/// A snapshot or bookmark short name from a peer.
fn short(name: &str, kind: NameKind) -> Checked {
    validate_peer(name, kind)?;
    Ok(validate_component(name)?)
}

fn version(v: &FsVersion) -> Checked {
    let kind = match v.kind {
        VersionKind::Snapshot => NameKind::Snapshot,
        VersionKind::Bookmark => NameKind::Bookmark,
    };
    short(&v.name, kind)
}

/// A resume token from a peer.
pub(crate) fn token(t: &str) -> Checked {
    let bad = |fault| {
        Err(Refusal::Token {
            shown: peer_text::peer(t),
            fault,
        })
    };
    if t.is_empty() {
        return bad(TokenFault::Empty);
    }
    if t.len() > MAX_RESUME_TOKEN {
        return bad(TokenFault::TooLong);
    }
    if let Some(c) = t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return bad(TokenFault::BadChar(c));
    }
    Ok(())
}

fn step(s: &StepReq) -> Checked {
    path(&s.fs)?;
    if let Some(f) = &s.from {
        version(f)?;
    }
    version(&s.to)?;
    match &s.resume_token {
        Some(t) => token(t),
        None => Ok(()),
    }
}

fn commit(c: &CommitReq) -> Checked {
    path(&c.fs)?;
    version(&c.to)
}

/// At most `max` items of `what` in one request.
fn count(n: usize, max: usize, what: &'static str) -> Checked {
    if n > max {
        return Err(Refusal::TooMany { n, what, max });
    }
    Ok(())
}

/// Check a decoded request before it is dispatched. The error names the offending value.
pub(crate) fn request(req: &Request, cfg: &RpcConfig) -> Checked {
    use Request as R;
    let max = cfg.max_request_items;
    match req {
        R::Ping | R::SenderListFilesystems | R::ReceiverListFilesystems => Ok(()),
        R::SenderListVersions { fs }
        | R::SenderReplicationCursor { fs }
        | R::ReceiverListVersions { fs }
        | R::ReceiverDestroyReplica { fs } => path(fs),
        R::ReceiverRenameReplica { from, to } => {
            path(from)?;
            path(to)
        }
        R::SenderEstimate { steps, .. } => {
            count(steps.len(), max, "steps")?;
            steps.iter().try_for_each(step)
        }
        R::SenderPrepare { reqs } => {
            let n = reqs.iter().map(|r| r.steps.len().max(1)).sum();
            count(n, max, "steps")?;
            reqs.iter().try_for_each(|r| {
                path(&r.fs)?;
                r.steps.iter().try_for_each(step)
            })
        }
        R::SenderSend { step: s, .. } | R::ReceiverReceive { step: s, .. } => step(s),
        R::SenderCommit { reqs } | R::ReceiverCommit { reqs } => {
            count(reqs.len(), max, "commits")?;
            reqs.iter().try_for_each(commit)
        }
        R::SenderAbort { fss } => {
            count(fss.len(), max, "filesystems")?;
            fss.iter().try_for_each(path)
        }
        R::SenderDestroySnapshots { fs, snapshots }
        | R::ReceiverDestroySnapshots { fs, snapshots } => {
            count(snapshots.len(), max, "snapshot names")?;
            path(fs)?;
            snapshots.iter().try_for_each(|n| {
                if n.contains('%') {
                    // Named in full: this is what `zfs destroy` would have read as a range.
                    validate_peer(&format!("{fs}@{n}"), NameKind::Snapshot)?;
                }
                validate_component(n).map_err(|source| Refusal::Destroy {
                    source,
                    fs: fs.clone(),
                })
            })
        }
    }
}

/// A peer's error as this side keeps it: the message escaped onto one line and cut to
/// [`PEER_ERROR_MAX`] bytes; a resume token or receiving filesystem that is not valid is
/// dropped (the error stays, without it).
pub(crate) fn wire_error(mut w: WireError) -> WireError {
    w.message = peer_text::show(&w.message, PEER_ERROR_MAX);
    if w.resume_token.as_deref().is_some_and(|t| token(t).is_err()) {
        w.resume_token = None;
    }
    let fs_ok = |f: &str| {
        f.len() < MAX_NAME_LEN && DatasetPath::parse(f).ok().is_some_and(|p| path(&p).is_ok())
    };
    if w.receive_fs.as_deref().is_some_and(|f| !fs_ok(f)) {
        w.receive_fs = None;
    }
    w
}

/// A decoded reply from a server: checked (and its peer text made safe to show) before
/// the caller sees it.
pub(crate) trait Reply {
    /// Check and clean the reply; the error names the offending value.
    fn check(&mut self) -> Checked {
        Ok(())
    }
}

impl Reply for () {}
impl Reply for PingReply {}
impl Reply for Option<crate::compress::StreamStart> {}

impl Reply for Vec<FsListing> {
    fn check(&mut self) -> Checked {
        for l in self.iter_mut() {
            path(&l.path)?;
            let listing = |e| Refusal::Listing {
                source: Box::new(e),
                fs: l.path.clone(),
            };
            l.versions.iter().try_for_each(version).map_err(listing)?;
            if let Some(r) = &mut l.resume {
                token(&r.token).map_err(listing)?;
                r.to_name = peer_text::peer(&r.to_name);
            }
        }
        Ok(())
    }
}

impl Reply for Vec<FsVersion> {
    fn check(&mut self) -> Checked {
        self.iter().try_for_each(version)
    }
}

impl Reply for Option<FsVersion> {
    fn check(&mut self) -> Checked {
        self.iter().try_for_each(version)
    }
}

impl<T> Reply for Vec<Result<T, WireError>> {
    fn check(&mut self) -> Checked {
        for r in self.iter_mut() {
            if let Err(w) = r {
                *w = wire_error(std::mem::replace(w, WireError::new("", false)));
            }
        }
        Ok(())
    }
}

impl Reply for DestroyOutcome {
    fn check(&mut self) -> Checked {
        self.destroyed
            .iter()
            .try_for_each(|n| short(n, NameKind::Snapshot))?;
        for (n, why) in &mut self.kept {
            short(n, NameKind::Snapshot)?;
            *why = peer_text::show(why, PEER_TEXT_MAX);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zrelay_endpoint::{Guarantee, PrepareReq, Protection};

    fn v(name: &str) -> FsVersion {
        FsVersion {
            kind: VersionKind::Snapshot,
            name: name.into(),
            guid: 1,
            createtxg: 1,
            creation: 0,
        }
    }

    fn st(fs: &str, to: &str) -> StepReq {
        StepReq {
            fs: DatasetPath::parse(fs).unwrap(),
            from: None,
            to: v(to),
            resume_token: None,
            protection: Protection {
                initial: Guarantee::GuaranteeNothing,
                incremental: Guarantee::GuaranteeNothing,
            },
        }
    }

    fn fs(s: &str) -> DatasetPath {
        DatasetPath::parse(s).unwrap()
    }

    #[test]
    fn percent_is_refused_in_every_request_field() {
        let cfg = RpcConfig::default();
        let bad = [
            Request::SenderDestroySnapshots {
                fs: fs("p/a"),
                snapshots: vec!["ok".into(), "%".into()],
            },
            Request::ReceiverDestroySnapshots {
                fs: fs("p/a"),
                snapshots: vec!["a%b".into()],
            },
            Request::ReceiverDestroySnapshots {
                fs: fs("p/%x"),
                snapshots: vec!["a".into()],
            },
            Request::SenderListVersions { fs: fs("p/%") },
            Request::SenderSend {
                step: st("p/a", "s%"),
                compress: None,
            },
            Request::SenderEstimate {
                steps: vec![st("p/a/%b", "s")],
                concurrency: 1,
            },
            Request::SenderPrepare {
                reqs: vec![PrepareReq {
                    fs: fs("p/%"),
                    steps: vec![],
                }],
            },
            Request::ReceiverCommit {
                reqs: vec![CommitReq {
                    fs: fs("p/a"),
                    to: v("%"),
                    protection: Protection::default(),
                    incremental: false,
                }],
            },
            Request::SenderAbort {
                fss: vec![fs("p/%recv")],
            },
        ];
        for r in &bad {
            let e = request(r, &cfg).unwrap_err().to_string();
            assert!(e.contains('%') && e.contains("range"), "{}: {e}", r.name());
        }
        assert!(request(
            &Request::SenderDestroySnapshots {
                fs: fs("p/a"),
                snapshots: vec!["a,b".into()],
            },
            &cfg
        )
        .is_err());
        assert!(request(
            &Request::SenderSend {
                step: st("p/a", "ok"),
                compress: None,
            },
            &cfg
        )
        .is_ok());
    }

    #[test]
    fn tokens_and_counts_are_bounded() {
        let mut cfg = RpcConfig::default();
        let mut s = st("p/a", "b");
        s.resume_token = Some("1-abc\nINFO forged".into());
        let e = request(
            &Request::SenderSend {
                step: s.clone(),
                compress: None,
            },
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains('\n') && e.contains("\\n"), "{e}");
        s.resume_token = Some("1-".to_string() + &"a".repeat(8 << 20));
        let e = request(
            &Request::SenderSend {
                step: s,
                compress: None,
            },
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(e.len() < 600, "{}", e.len());
        assert!(e.contains("longer than 16384 bytes"), "{e}");
        cfg.max_request_items = 3;
        let e = request(
            &Request::SenderEstimate {
                steps: vec![st("p/a", "b"); 4],
                concurrency: 1,
            },
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("4 steps") && e.contains("at most 3"), "{e}");
    }

    #[test]
    fn replies_are_checked_and_cleaned() {
        let mut l = vec![FsListing::new(fs("p/%x"))];
        assert!(l.check().is_err());
        let mut l = FsListing::new(fs("p/a"));
        l.versions.push(v("a%b"));
        let e = vec![l].check().unwrap_err().to_string();
        assert!(e.ends_with(" (listing p/a)"), "{e}");
        let mut r: Vec<Result<(), WireError>> =
            vec![Err(WireError::new("x\nforged ".repeat(1000), false))];
        r.check().unwrap();
        let m = &r[0].as_ref().unwrap_err().message;
        // At most PEER_ERROR_MAX bytes of input, each escaped to at most a few bytes.
        assert!(!m.contains('\n') && m.len() < 4 * PEER_ERROR_MAX, "{m}");
        assert!(m.ends_with("(9000 bytes)"), "{m}");
        let mut d = DestroyOutcome {
            destroyed: vec!["%".into()],
            kept: vec![],
        };
        assert!(d.check().is_err());
        let w = wire_error(WireError {
            message: "m".into(),
            temporary: false,
            resume_token: Some("bad token".into()),
            receive_fs: Some("p/%".into()),
        });
        assert_eq!((w.resume_token, w.receive_fs), (None, None));
    }
}
