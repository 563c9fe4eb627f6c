//! The receive side: what a stream record does to the target, and the
//! partial state an interrupted resumable receive leaves behind.

use zrelay_zfs::api::RecvArgs;
use zrelay_zfs::name::DatasetPath;
use zrelay_zfs::parse::ResumeTokenInfo;

use super::state::{EncRoot, Partial, Snap, State};
use super::stream::Header;

#[derive(Debug)]
enum Kind {
    /// Create the filesystem.
    New,
    /// Replace an existing filesystem's contents (`-F`), destroying its snapshots.
    Overwrite { destroy: Vec<String> },
    /// Add a snapshot after `from`, destroying later snapshots (`-F`).
    Incremental { from: String, destroy: Vec<String> },
}

pub(super) fn what(h: &Header) -> &'static str {
    if h.resume {
        "resume"
    } else if h.fromguid.is_some() {
        "incremental"
    } else {
        "new filesystem"
    }
}

fn token_for(h: &Header, bytes: u64) -> Option<String> {
    let info = ResumeTokenInfo {
        toname: h.toname()?,
        toguid: h.toguid,
        fromguid: h.fromguid,
        object: 1,
        offset: bytes,
        bytes,
        large_block_ok: h.large_blocks,
        embed_ok: h.embedded,
        compress_ok: h.compressed,
        raw_ok: h.raw,
        saved_ok: false,
        redact_snaps: None,
        book_redact_snaps: None,
    };
    Some(info.encode())
}

fn recv_enc(h: &Header) -> Option<EncRoot> {
    h.encryption.as_ref().filter(|_| h.raw).map(|c| EncRoot {
        cipher: c.clone(),
        loaded: false,
    })
}

impl State {
    /// Check record `hdr` against `fs`: what it would do, with the record it
    /// completes (the saved one when resuming) and the effective `-F`.
    /// `Err` is zfs's stderr.
    fn recv_plan(
        &self,
        fs: &DatasetPath,
        hdr: &Header,
        force: bool,
    ) -> Result<(Kind, Header, bool), String> {
        let fail = |m: String| format!("cannot receive {} stream: {m}", what(hdr));
        let ds = self.datasets.get(fs);
        if hdr.resume {
            let Some(p) = ds.and_then(|d| d.partial.as_ref()) else {
                return Err(fail(format!(
                    "destination '{fs}' does not have any resumable receive state"
                )));
            };
            if (p.hdr.toguid, p.hdr.fromguid, p.hdr.size, p.bytes)
                != (hdr.toguid, hdr.fromguid, hdr.size, hdr.offset)
            {
                let msg = format!(
                    "resume stream (guid {:#x} at offset {}) does not match the partial state of '{fs}' (guid {:#x} at offset {})",
                    hdr.toguid, hdr.offset, p.hdr.toguid, p.bytes
                );
                return Err(fail(msg));
            }
            let force = force || p.force;
            let kind = self.recv_kind(fs, &p.hdr, force, true).map_err(fail)?;
            return Ok((kind, p.hdr.clone(), force));
        }
        if ds.is_some_and(|d| d.partial.is_some()) {
            return Err(fail(format!(
                "destination {fs} contains partially-complete state from \"zfs receive -s\"."
            )));
        }
        Ok((
            self.recv_kind(fs, hdr, force, false).map_err(fail)?,
            hdr.clone(),
            force,
        ))
    }

    fn recv_kind(
        &self,
        fs: &DatasetPath,
        hdr: &Header,
        force: bool,
        resuming: bool,
    ) -> Result<Kind, String> {
        let mismatch = || format!("most recent snapshot of {fs} does not match incremental source");
        match (self.datasets.get(fs), hdr.fromguid) {
            (None, None) => match fs.parent() {
                Some(p) if self.datasets.contains_key(&p) => Ok(Kind::New),
                _ => Err("dataset does not exist".into()),
            },
            (None, Some(_)) => Err(format!("destination '{fs}' does not exist")),
            (Some(ds), None) if resuming && ds.incomplete => Ok(Kind::New),
            (Some(ds), None) => {
                if !force {
                    return Err(format!(
                        "destination '{fs}' exists\nmust specify -F to overwrite it"
                    ));
                }
                if self.encryption_of(fs).is_some() || (hdr.raw && hdr.encryption.is_some()) {
                    return Err("zfs receive -F cannot be used to destroy an encrypted filesystem or overwrite an \
                                unencrypted one with an encrypted one"
                        .into());
                }
                if let Some((n, _)) = ds.snaps.iter().find(|(_, s)| !s.holds.is_empty()) {
                    return Err(format!("destination has snapshots (eg. {fs}@{n})\nmust destroy them to overwrite it"));
                }
                Ok(Kind::Overwrite {
                    destroy: ds.snaps.keys().cloned().collect(),
                })
            }
            (Some(ds), Some(g)) => {
                let (newest_name, newest) = ds.newest().ok_or_else(mismatch)?;
                let (from, destroy) = if newest.guid == g {
                    if ds.modified() && !force {
                        return Err(format!(
                            "destination {fs} has been modified\nsince most recent snapshot"
                        ));
                    }
                    (newest_name.clone(), Vec::new())
                } else if force {
                    let (name, s) = ds
                        .snaps
                        .iter()
                        .find(|(_, s)| s.guid == g)
                        .ok_or_else(mismatch)?;
                    let later: Vec<(&String, &Snap)> = ds
                        .snaps
                        .iter()
                        .filter(|(_, o)| o.createtxg > s.createtxg)
                        .collect();
                    if let Some((n, _)) = later.iter().find(|(_, o)| !o.holds.is_empty()) {
                        return Err(format!("cannot destroy snapshot {fs}@{n}: dataset is busy"));
                    }
                    (
                        name.clone(),
                        later.into_iter().map(|(n, _)| n.clone()).collect(),
                    )
                } else {
                    return Err(mismatch());
                };
                if ds.snaps.contains_key(&hdr.to) && !destroy.contains(&hdr.to) {
                    return Err(format!("destination '{fs}@{}' exists", hdr.to));
                }
                Ok(Kind::Incremental { from, destroy })
            }
        }
    }

    /// A record's header arrived: check it; `-F` of a full stream destroys the
    /// target's snapshots now, like zrepl does before `zfs recv -F`.
    pub(super) fn recv_begin(
        &mut self,
        fs: &DatasetPath,
        hdr: &Header,
        force: bool,
    ) -> Result<(), String> {
        if let (Kind::Overwrite { destroy }, _, _) = self.recv_plan(fs, hdr, force)? {
            if let Some(ds) = self.datasets.get_mut(fs) {
                for n in destroy {
                    ds.snaps.remove(&n);
                }
            }
        }
        Ok(())
    }

    /// A record arrived completely: apply it.
    pub(super) fn recv_commit(
        &mut self,
        fs: &DatasetPath,
        hdr: &Header,
        args: &RecvArgs,
        force: bool,
    ) -> Result<(), String> {
        let (kind, h, _) = self.recv_plan(fs, hdr, force)?;
        if !self.datasets.contains_key(fs) {
            let mut ds = self.new_dataset();
            ds.enc = recv_enc(&h);
            self.datasets.insert(fs.clone(), ds);
        }
        let txg = self.next_txg();
        let Some(ds) = self.datasets.get_mut(fs) else {
            return Err(format!("cannot receive: '{fs}' vanished"));
        };
        let (base, destroy) = match kind {
            Kind::New => (0, Vec::new()),
            Kind::Overwrite { destroy } => (0, destroy),
            Kind::Incremental { from, destroy } => {
                (ds.snaps.get(&from).map_or(0, |s| s.data), destroy)
            }
        };
        for n in destroy {
            ds.snaps.remove(&n);
        }
        let data = base + h.size;
        let snap = Snap {
            guid: h.toguid,
            createtxg: txg,
            creation: h.creation,
            data,
            holds: Default::default(),
        };
        ds.snaps.insert(h.to.clone(), snap);
        ds.data = data;
        ds.partial = None;
        ds.incomplete = false;
        for (k, v) in h.props.iter().flatten() {
            if !args.inherit_props.contains(k) {
                ds.received.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &args.override_props {
            ds.local.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    /// Keep the partial state of an interrupted record; returns its token.
    pub(super) fn save_partial(
        &mut self,
        fs: &DatasetPath,
        hdr: &Header,
        bytes: u64,
        force: bool,
    ) -> Option<String> {
        if hdr.resume {
            let p = self.datasets.get_mut(fs)?.partial.as_mut()?;
            if p.hdr.toguid != hdr.toguid {
                return None;
            }
            p.bytes = bytes;
            p.token = token_for(&p.hdr, bytes)?;
            return Some(p.token.clone());
        }
        let (kind, h, force) = self.recv_plan(fs, hdr, force).ok()?;
        let token = token_for(&h, bytes)?;
        if matches!(kind, Kind::New) && !self.datasets.contains_key(fs) {
            let mut ds = self.new_dataset();
            ds.enc = recv_enc(&h);
            ds.incomplete = true;
            self.datasets.insert(fs.clone(), ds);
        }
        let ds = self.datasets.get_mut(fs)?;
        ds.partial = Some(Partial {
            hdr: h,
            bytes,
            token: token.clone(),
            force,
        });
        Some(token)
    }
}
