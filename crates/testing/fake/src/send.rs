//! What a fake `zfs send` would stream: one [`Header`] per snapshot.

use zrelay_zfs::api::VersionRef;
use zrelay_zfs::error::{Result, ZfsError};
use zrelay_zfs::parse::ResumeTokenInfo;
use zrelay_zfs::send_args::ValidatedSendArgs;

use super::state::{cmd_err, missing, State};
use super::stream::Header;

/// Decode a resume token with the same decoder `RealZfs` uses.
pub(crate) fn token_info(token: &str) -> Result<ResumeTokenInfo> {
    zrelay_zfs::resume_token::decode(token).map_err(|e| ZfsError::SendValidation(e.to_string()))
}

impl State {
    /// The records of a send, after the checks `zfs send` itself makes.
    pub fn plan_send(&self, v: &ValidatedSendArgs) -> Result<Vec<Header>> {
        let args = v.args();
        if args.flags.saved {
            return Err(ZfsError::Unsupported(
                "the fake does not implement zfs send -S".into(),
            ));
        }
        if let Some(info) = v.token() {
            return self.plan_resume(v, info);
        }
        let fs = &args.fs;
        let to = &args.to.0;
        let cmd = format!("zfs send {to}");
        let ds = self.ds(fs)?;
        let to_snap = ds.snaps.get(to.name()).ok_or_else(|| missing(to))?;
        let raw = v.raw();
        let enc = self.encryption_of(fs);
        if let Some((_, e)) = &enc {
            if !raw && !e.loaded {
                return Err(cmd_err(
                    cmd,
                    format!("cannot send '{to}': encryption key for '{fs}' is not loaded"),
                ));
            }
        }
        let props = if args.flags.send_properties || args.flags.backup_properties {
            let mut p: Vec<(String, String)> = ds.received.clone().into_iter().collect();
            p.extend(ds.local.clone());
            Some(p)
        } else {
            None
        };
        let base =
            |name: &str, guid: u64, creation: i64, fromguid: Option<u64>, size: u64| Header {
                src: fs.clone(),
                to: name.to_string(),
                toguid: guid,
                creation,
                fromguid,
                raw,
                encryption: if raw {
                    enc.as_ref().map(|(_, e)| e.cipher.clone())
                } else {
                    None
                },
                size,
                offset: 0,
                resume: false,
                props: props.clone(),
                large_blocks: args.flags.large_blocks,
                embedded: args.flags.embedded_data,
                compressed: args.flags.compressed,
            };
        let Some((from, _)) = &args.from else {
            return Ok(vec![base(
                to.name(),
                to_snap.guid,
                to_snap.creation,
                None,
                to_snap.data,
            )]);
        };
        let (from_guid, from_txg, from_data) = match from {
            VersionRef::Snapshot(s) => ds
                .snaps
                .get(s.name())
                .map(|s| (s.guid, s.createtxg, s.data)),
            VersionRef::Bookmark(b) => ds
                .marks
                .get(b.name())
                .map(|m| (m.guid, m.createtxg, m.data)),
        }
        .ok_or_else(|| missing(from))?;
        if from_txg >= to_snap.createtxg {
            let msg = format!(
                "cannot send '{to}': incremental source ({from}) must be earlier than the target"
            );
            return Err(cmd_err(cmd, msg));
        }
        if !args.intermediates {
            let size = to_snap.data.saturating_sub(from_data);
            return Ok(vec![base(
                to.name(),
                to_snap.guid,
                to_snap.creation,
                Some(from_guid),
                size,
            )]);
        }
        let mut between: Vec<(&String, &super::state::Snap)> = ds
            .snaps
            .iter()
            .filter(|(_, s)| s.createtxg > from_txg && s.createtxg <= to_snap.createtxg)
            .collect();
        between.sort_by_key(|(n, s)| (s.createtxg, *n));
        let mut prev = (from_guid, from_data);
        let mut out = Vec::new();
        for (name, s) in between {
            out.push(base(
                name,
                s.guid,
                s.creation,
                Some(prev.0),
                s.data.saturating_sub(prev.1),
            ));
            prev = (s.guid, s.data);
        }
        Ok(out)
    }

    fn plan_resume(&self, v: &ValidatedSendArgs, info: &ResumeTokenInfo) -> Result<Vec<Header>> {
        let cmd = "zfs send -t <token>".to_string();
        let to = &info.toname;
        let gone = || {
            cmd_err(
                cmd.clone(),
                format!("cannot resume send: '{to}' used in the initial send no longer exists"),
            )
        };
        let ds = self.datasets.get(to.fs()).ok_or_else(gone)?;
        let s = ds.snaps.get(to.name()).ok_or_else(gone)?;
        if s.guid != info.toguid {
            let msg = format!("cannot resume send: '{to}' is no longer the same snapshot used in the initial send");
            return Err(cmd_err(cmd, msg));
        }
        let from_data = match info.fromguid {
            None => 0,
            Some(g) => {
                let Some((_, data)) = ds.version_by_guid(g) else {
                    let msg =
                        format!("cannot resume send: incremental source {g:#x} no longer exists");
                    return Err(cmd_err(cmd, msg));
                };
                data
            }
        };
        let size = s.data.saturating_sub(from_data);
        let enc = self.encryption_of(to.fs());
        Ok(vec![Header {
            src: to.fs().clone(),
            to: to.name().to_string(),
            toguid: s.guid,
            creation: s.creation,
            fromguid: info.fromguid,
            // OpenZFS ORs the command line's flags (`-w`) with the token's
            raw: info.raw_ok || v.raw(),
            encryption: if info.raw_ok || v.raw() {
                enc.map(|(_, e)| e.cipher.clone())
            } else {
                None
            },
            size,
            offset: info.bytes.min(size),
            resume: true,
            props: None,
            large_blocks: info.large_block_ok,
            embedded: info.embed_ok,
            compressed: info.compress_ok || v.args().flags.compressed,
        }])
    }
}
