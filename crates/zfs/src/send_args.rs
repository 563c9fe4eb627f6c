//! Send arguments and their validation. SECURITY SENSITIVE.
//!
//! A `zfs send` can only be started from a [`ValidatedSendArgs`], and the only
//! way to get one is [`SendArgs::validate`]. Validation checks, against the
//! live system:
//! - `from` and `to` belong to the requested filesystem and have the GUIDs the
//!   caller named (so a renamed or re-created snapshot is never sent);
//! - the encryption policy: `encrypted` demands an encrypted filesystem and a
//!   raw send;
//! - a resume token, decoded in Rust from its binary form
//!   ([`crate::resume_token::decode`], never from `zfs send -nvt` text), names
//!   the same filesystem, the same `toguid` and `fromguid`, agrees with the
//!   encryption policy (`rawok` present exactly when the policy wants raw),
//!   and is neither a saved (`savedok`) nor a redacted send. A forged or
//!   mismatched token is refused here, before anything is sent.
//! - a raw policy always puts `-w` on the command line, with `-t` too:
//!   OpenZFS ORs the command line's flags with the token's, so a stream
//!   can never come out plaintext when the policy wants it raw.

use std::collections::BTreeMap;
use std::ffi::OsString;

use serde::{Deserialize, Serialize};

use crate::api::{PropertyValue, VersionRef, Zfs};
use crate::error::{Result, ZfsError};
use crate::name::{DatasetPath, SnapshotName};
use crate::parse::ResumeTokenInfo;

/// zfs send flags, named as in zrepl's `send` config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFlags {
    /// `-w`: send the raw (possibly encrypted) blocks.
    pub raw: bool,
    /// `-p`: include properties.
    pub send_properties: bool,
    /// `-b`: include only locally set properties (backup).
    pub backup_properties: bool,
    /// `-L`: large blocks.
    pub large_blocks: bool,
    /// `-c`: compressed blocks.
    pub compressed: bool,
    /// `-e`: embedded data.
    pub embedded_data: bool,
    /// `-S`: send the saved partial state of a partially received dataset.
    pub saved: bool,
}

/// Unvalidated send arguments, as the caller (planner or RPC peer) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendArgs {
    /// The filesystem to send from.
    pub fs: DatasetPath,
    /// Incremental source (snapshot or bookmark) and its GUID; `None` for a full send.
    pub from: Option<(VersionRef, u64)>,
    /// The snapshot to send and its GUID.
    pub to: (SnapshotName, u64),
    /// zrepl's `send.encrypted`: only encrypted filesystems, always raw. No default on purpose.
    pub encrypted: bool,
    /// The other flags.
    pub flags: SendFlags,
    /// Resume from this token instead of starting over.
    pub resume_token: Option<String>,
    /// `-I` (all intermediate snapshots) instead of `-i`.
    pub intermediates: bool,
}

/// Send arguments that passed [`SendArgs::validate`]; the only input `send` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedSendArgs {
    args: SendArgs,
    token: Option<ResumeTokenInfo>,
    fs_encrypted: bool,
    size_hint: Option<u64>,
}

/// What validation reads of the filesystem and both versions: what it
/// checks, and the space properties [`ValidatedSendArgs::size_hint`] comes from.
const VALIDATE_PROPS: &[&str] = &[
    "encryption",
    "guid",
    "written",
    "referenced",
    "logicalreferenced",
];

/// A stream size from the space properties of `to`, without a dry-run send:
/// the full stream carries what `to` references, an incremental one what
/// was written to `to` since the snapshot before it; an uncompressed stream
/// carries logical bytes, so the physical figure is scaled by `to`'s
/// compression ratio. Exact enough for progress; a step whose `from` is not
/// the snapshot just before `to` is underestimated. `None` for a resume
/// (the token says where it starts, not how much remains) or when a
/// property is missing.
fn size_hint(args: &SendArgs, to: &BTreeMap<String, PropertyValue>) -> Option<u64> {
    if args.resume_token.is_some() {
        return None;
    }
    let num = |p: &str| to.get(p).and_then(|v| v.value.parse::<u64>().ok());
    let (phys, logical) = (num("referenced")?, num("logicalreferenced")?);
    let physical = if args.from.is_some() {
        num("written")?
    } else {
        phys
    };
    let raw_or_compressed = args.encrypted || args.flags.raw || args.flags.compressed;
    if raw_or_compressed || phys == 0 {
        return Some(physical);
    }
    Some(
        u64::try_from(u128::from(physical) * u128::from(logical) / u128::from(phys))
            .unwrap_or(u64::MAX),
    )
}

fn refuse(msg: String) -> ZfsError {
    ZfsError::SendValidation(msg)
}

impl SendArgs {
    /// Check the arguments against the live system. SECURITY SENSITIVE.
    ///
    /// # Errors
    /// [`ZfsError::SendValidation`] naming what does not match;
    /// [`ZfsError::DatasetDoesNotExist`] for a missing filesystem or version.
    pub async fn validate<Z: Zfs + ?Sized>(self, zfs: &Z) -> Result<ValidatedSendArgs> {
        let names = self.precheck()?;
        // one `zfs get` for the filesystem and both versions
        let got = zfs.get_many(&names, VALIDATE_PROPS).await?;
        self.finish(zfs, &names, got).await
    }

    /// [`SendArgs::validate`] for many sends, with ONE `zfs get` for all of
    /// them (resume tokens are decoded in process). One result per input,
    /// in order; the checks are exactly those of `validate`.
    pub async fn validate_many<Z: Zfs + ?Sized>(
        zfs: &Z,
        all: Vec<SendArgs>,
    ) -> Result<Vec<Result<ValidatedSendArgs>>> {
        let mut pre = Vec::with_capacity(all.len());
        let mut names = Vec::new();
        for a in all {
            match a.precheck() {
                Ok(n) => {
                    names.extend(n.iter().cloned());
                    pre.push((a, Ok(n)));
                }
                Err(e) => pre.push((a, Err(e))),
            }
        }
        let got = if names.is_empty() {
            Vec::new()
        } else {
            zfs.get_many(&names, VALIDATE_PROPS).await?
        };
        let mut got = got.into_iter();
        let mut out = Vec::with_capacity(pre.len());
        for (a, n) in pre {
            match n {
                Err(e) => out.push(Err(e)),
                Ok(n) => {
                    let mine: Vec<_> = got.by_ref().take(n.len()).collect();
                    out.push(a.finish(zfs, &n, mine).await);
                }
            }
        }
        Ok(out)
    }

    /// The checks that need no system, and the names to look up:
    /// `[fs, to, from?]`.
    fn precheck(&self) -> Result<Vec<String>> {
        let fs = &self.fs;
        let (to, _) = &self.to;
        if to.fs() != fs {
            return Err(refuse(format!("`to` {to} is not a snapshot of {fs}")));
        }
        if let Some((from, _)) = &self.from {
            if from.fs() != fs {
                return Err(refuse(format!("`from` {from} is not a version of {fs}")));
            }
            if self.intermediates && !matches!(from, VersionRef::Snapshot(_)) {
                return Err(refuse(format!("-I needs a snapshot as `from`, not {from}")));
            }
        }
        let mut names = vec![fs.to_string(), to.to_string()];
        if let Some((from, _)) = &self.from {
            names.push(from.to_string());
        }
        Ok(names)
    }

    /// The checks against the looked-up properties of `names`, then the token.
    async fn finish<Z: Zfs + ?Sized>(
        self,
        zfs: &Z,
        names: &[String],
        got: Vec<(String, Result<BTreeMap<String, PropertyValue>>)>,
    ) -> Result<ValidatedSendArgs> {
        let fs = &self.fs;
        let (_, to_guid) = &self.to;
        let mut got = got.into_iter();
        let mut next = |name: &str| match got.next() {
            Some((_, r)) => r,
            None => Err(ZfsError::Unsupported(format!(
                "zfs get returned no result for {name:?}"
            ))),
        };
        let props = next(fs.as_str())?;
        let fs_encrypted = props
            .get("encryption")
            .is_some_and(|p| p.value != "off" && p.value != "-");
        if self.encrypted && !fs_encrypted {
            return Err(refuse(format!(
                "encrypted send mandated by policy, but filesystem {fs} is not encrypted"
            )));
        }
        let to_props = next(&names[1]);
        let size_hint = to_props.as_ref().ok().and_then(|p| size_hint(&self, p));
        check_guid_in(&names[1], to_props, *to_guid)?;
        if let Some((_, guid)) = &self.from {
            let from_props = next(&names[2]);
            check_guid_in(&names[2], from_props, *guid)?;
        }
        let token = match &self.resume_token {
            None => None,
            Some(t) => Some(self.check_token(zfs, t).await?),
        };
        Ok(ValidatedSendArgs {
            args: self,
            token,
            fs_encrypted,
            size_hint,
        })
    }

    async fn check_token<Z: Zfs + ?Sized>(&self, _zfs: &Z, token: &str) -> Result<ResumeTokenInfo> {
        let info = crate::resume_token::decode(token).map_err(|e| refuse(e.to_string()))?;
        let fs = &self.fs;
        if info.toname.fs() != fs {
            return Err(refuse(format!(
                "resume token is for {}, not for the requested filesystem {fs}",
                info.toname
            )));
        }
        if info.toguid != self.to.1 {
            return Err(refuse(format!(
                "resume token toguid {:#x} does not match `to` {} ({:#x})",
                info.toguid, self.to.0, self.to.1
            )));
        }
        match (&self.from, info.fromguid) {
            (None, None) => {}
            (Some((from, guid)), Some(t)) if *guid == t => {
                let _ = from;
            }
            (Some((from, guid)), t) => {
                return Err(refuse(format!(
                    "resume token fromguid {t:?} does not match `from` {from} ({guid:#x})"
                )))
            }
            (None, Some(t)) => {
                return Err(refuse(format!(
                    "resume token is incremental (fromguid {t:#x}) but a full send was requested"
                )))
            }
        }
        let want_raw = self.encrypted || self.flags.raw;
        if want_raw && !info.raw_ok {
            return Err(refuse(
                "resume token would send plaintext, but the policy requires an encrypted (raw) send".into(),
            ));
        }
        if !want_raw && info.raw_ok {
            return Err(refuse(
                "resume token would send raw (encrypted) data, but a plain send was requested"
                    .into(),
            ));
        }
        if info.saved_ok {
            return Err(refuse(
                "resume token asks for a saved send (savedok), which zrelay never makes".into(),
            ));
        }
        if info.redact_snaps.is_some() || info.book_redact_snaps.is_some() {
            return Err(refuse(
                "resume token is for a redacted send, which zrelay never makes".into(),
            ));
        }
        Ok(info)
    }
}

/// Check that the GUID in `props` (the `zfs get` result of `name`) is `expected`.
fn check_guid_in(
    name: &str,
    props: Result<std::collections::BTreeMap<String, crate::api::PropertyValue>>,
    expected: u64,
) -> Result<()> {
    ZfsError::check_guid(name, crate::api::guid_in(name, &props?)?, expected)
}

/// Fetch the GUID of `name` and check it is `expected`.
pub(crate) async fn check_guid<Z: Zfs + ?Sized>(zfs: &Z, name: &str, expected: u64) -> Result<()> {
    ZfsError::check_guid(name, zfs.guid(name).await?, expected)
}

impl ValidatedSendArgs {
    /// The arguments as validated.
    pub fn args(&self) -> &SendArgs {
        &self.args
    }

    /// The decoded resume token, when resuming.
    pub fn token(&self) -> Option<&ResumeTokenInfo> {
        self.token.as_ref()
    }

    /// Whether the sending filesystem is encrypted.
    pub fn fs_encrypted(&self) -> bool {
        self.fs_encrypted
    }

    /// The stream's size as the space properties read by validation put it,
    /// without a dry-run send (see [`size_hint`]); `None` for a resume.
    pub fn size_hint(&self) -> Option<u64> {
        self.size_hint
    }

    /// Whether the stream will be raw.
    pub fn raw(&self) -> bool {
        self.args.encrypted || self.args.flags.raw
    }

    /// The `zfs` arguments (after the binary): `send [flags] [-i|-I from] to`,
    /// or `send [-w] -t token` (`-w` whenever the policy wants raw); with
    /// `dry`, `-nvP` is added for an estimate.
    pub fn zfs_args(&self, dry: bool) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["send".into()];
        if dry {
            a.push("-nvP".into());
        }
        if let Some(t) = &self.args.resume_token {
            if self.raw() {
                a.push("-w".into());
            }
            a.push("-t".into());
            a.push(t.into());
            return a;
        }
        let f = &self.args.flags;
        for (on, flag) in [
            (self.raw(), "-w"),
            (f.send_properties, "-p"),
            (f.backup_properties, "-b"),
            (f.large_blocks, "-L"),
            (f.compressed, "-c"),
            (f.embedded_data, "-e"),
            (f.saved, "-S"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        if let Some((from, _)) = &self.args.from {
            a.push(if self.args.intermediates { "-I" } else { "-i" }.into());
            a.push(from.to_string().into());
        }
        a.push(self.args.to.0.to_string().into());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(written: u64, referenced: u64, logical: u64) -> BTreeMap<String, PropertyValue> {
        [
            ("written", written),
            ("referenced", referenced),
            ("logicalreferenced", logical),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                PropertyValue {
                    value: v.to_string(),
                    source: "-".into(),
                },
            )
        })
        .collect()
    }

    fn args(from: bool) -> SendArgs {
        let fs = DatasetPath::parse("p/a").unwrap();
        SendArgs {
            to: (SnapshotName::parse("p/a@2").unwrap(), 2),
            from: from.then(|| {
                (
                    VersionRef::Snapshot(SnapshotName::parse("p/a@1").unwrap()),
                    1,
                )
            }),
            fs,
            encrypted: false,
            flags: SendFlags::default(),
            resume_token: None,
            intermediates: false,
        }
    }

    #[test]
    fn size_hints_come_from_the_space_properties_of_to() {
        // compression ratio 2: a plain stream carries logical bytes
        let p = props(1000, 4000, 8000);
        assert_eq!(size_hint(&args(false), &p), Some(8000));
        assert_eq!(size_hint(&args(true), &p), Some(2000));
        let mut compressed = args(true);
        compressed.flags.compressed = true;
        assert_eq!(size_hint(&compressed, &p), Some(1000));
        let mut raw = args(false);
        raw.encrypted = true;
        assert_eq!(size_hint(&raw, &p), Some(4000));
        let mut resume = args(true);
        resume.resume_token = Some("1-abc".into());
        assert_eq!(size_hint(&resume, &p), None);
        let mut missing = p.clone();
        missing.remove("written");
        assert_eq!(size_hint(&args(true), &missing), None);
        assert_eq!(size_hint(&args(false), &props(0, 0, 0)), Some(0));
    }
}
