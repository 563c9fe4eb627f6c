//! The fake's in-memory pools and the synchronous operations on them.
//! Errors imitate what `RealZfs` makes of real `zfs` output.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use zrelay_zfs::api::ZfsVersion;
use zrelay_zfs::error::{Result, ZfsError};
use zrelay_zfs::name::{DatasetPath, VersionKind};
use zrelay_zfs::parse::{classify, legacy_placeholder_value, DatasetKind, ListedDataset, Version};

use super::stream::{splitmix64, Header};
use super::{FakeOp, Fault};

/// `creation` of txg 0; every txg is one second later.
const CREATION_BASE: i64 = 1_700_000_000;

/// A failed `zfs` command with `stderr`, classified like real output.
pub(crate) fn cmd_err(cmd: impl Into<String>, stderr: impl Into<String>) -> ZfsError {
    let stderr = stderr.into();
    ZfsError::Command {
        cmd: cmd.into(),
        status: "exit code 1".into(),
        kind: classify(&stderr),
        stderr,
    }
}

/// [`ZfsError::DatasetDoesNotExist`] for `name`.
pub(crate) fn missing(name: impl ToString) -> ZfsError {
    ZfsError::DatasetDoesNotExist {
        path: name.to_string(),
    }
}

/// A snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Snap {
    pub guid: u64,
    pub createtxg: u64,
    pub creation: i64,
    /// Cumulative bytes written to the filesystem when the snapshot was taken.
    pub data: u64,
    pub holds: BTreeSet<String>,
}

/// A bookmark: the identity of a snapshot, without its data.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub guid: u64,
    pub createtxg: u64,
    pub creation: i64,
    pub data: u64,
}

/// An encryption root's settings.
#[derive(Debug, Clone)]
pub(crate) struct EncRoot {
    pub cipher: String,
    pub loaded: bool,
}

/// Saved state of an interrupted `zfs recv -s`.
#[derive(Debug, Clone)]
pub(crate) struct Partial {
    /// The (non-resuming) header of the record being received.
    pub hdr: Header,
    /// Payload bytes received so far.
    pub bytes: u64,
    pub token: String,
    /// Whether the receive was `-F`.
    pub force: bool,
}

/// A filesystem.
#[derive(Debug, Clone)]
pub(crate) struct Dataset {
    pub guid: u64,
    pub createtxg: u64,
    pub creation: i64,
    /// Cumulative bytes written.
    pub data: u64,
    pub local: BTreeMap<String, String>,
    pub received: BTreeMap<String, String>,
    pub snaps: BTreeMap<String, Snap>,
    pub marks: BTreeMap<String, Mark>,
    pub enc: Option<EncRoot>,
    pub partial: Option<Partial>,
    /// Created by a full receive that has not completed yet.
    pub incomplete: bool,
}

impl Dataset {
    /// The most recent snapshot.
    pub fn newest(&self) -> Option<(&String, &Snap)> {
        self.snaps.iter().max_by_key(|(n, s)| (s.createtxg, *n))
    }

    /// Whether data was written since the most recent snapshot.
    pub fn modified(&self) -> bool {
        self.data != self.newest().map_or(0, |(_, s)| s.data)
    }

    /// A snapshot or bookmark with `guid`, as (createtxg, data).
    pub fn version_by_guid(&self, guid: u64) -> Option<(u64, u64)> {
        let s = self
            .snaps
            .values()
            .find(|s| s.guid == guid)
            .map(|s| (s.createtxg, s.data));
        s.or_else(|| {
            self.marks
                .values()
                .find(|m| m.guid == guid)
                .map(|m| (m.createtxg, m.data))
        })
    }
}

/// Everything one [`super::FakeZfs`] and its clones share.
pub(crate) struct State {
    pub txg: u64,
    rng: u64,
    used_guids: HashSet<u64>,
    pub datasets: BTreeMap<DatasetPath, Dataset>,
    pub calls: HashMap<FakeOp, u64>,
    pub faults: Vec<Fault>,
    pub send_fail_at: Option<u64>,
    pub recv_fail_at: Option<u64>,
    pub version: ZfsVersion,
    /// Pool features set to `disabled` (every other known one is active).
    pub disabled_features: HashSet<(String, String)>,
}

impl State {
    pub fn new(seed: u64) -> State {
        State {
            txg: 1,
            rng: seed,
            used_guids: HashSet::new(),
            datasets: BTreeMap::new(),
            calls: HashMap::new(),
            faults: Vec::new(),
            send_fail_at: None,
            recv_fail_at: None,
            version: ZfsVersion {
                userland: "2.3.2-fake".into(),
                kmod: Some("2.3.2-fake".into()),
                numeric: (2, 3, 2),
            },
            disabled_features: HashSet::new(),
        }
    }

    /// Start a new transaction group and return its number.
    pub fn next_txg(&mut self) -> u64 {
        self.txg += 1;
        self.txg
    }

    /// The `creation` time of `txg`.
    pub fn creation_of(txg: u64) -> i64 {
        CREATION_BASE + i64::try_from(txg).unwrap_or(i64::MAX - CREATION_BASE)
    }

    /// A fresh, unique, non-zero GUID.
    pub fn new_guid(&mut self) -> u64 {
        loop {
            self.rng = self.rng.wrapping_add(1);
            let g = splitmix64(self.rng);
            if g != 0 && self.used_guids.insert(g) {
                return g;
            }
        }
    }

    /// A new, empty filesystem created in a new txg.
    pub fn new_dataset(&mut self) -> Dataset {
        let txg = self.next_txg();
        Dataset {
            guid: self.new_guid(),
            createtxg: txg,
            creation: State::creation_of(txg),
            data: 0,
            local: BTreeMap::new(),
            received: BTreeMap::new(),
            snaps: BTreeMap::new(),
            marks: BTreeMap::new(),
            enc: None,
            partial: None,
            incomplete: false,
        }
    }

    pub fn ds(&self, fs: &DatasetPath) -> Result<&Dataset> {
        self.datasets.get(fs).ok_or_else(|| missing(fs))
    }

    pub fn ds_mut(&mut self, fs: &DatasetPath) -> Result<&mut Dataset> {
        self.datasets.get_mut(fs).ok_or_else(|| missing(fs))
    }

    /// `fs` and its ancestors, nearest first.
    pub(super) fn lineage(fs: &DatasetPath) -> Vec<DatasetPath> {
        std::iter::successors(Some(fs.clone()), DatasetPath::parent).collect()
    }

    /// The encryption root of `fs` and its settings, when `fs` is encrypted.
    pub fn encryption_of(&self, fs: &DatasetPath) -> Option<(DatasetPath, &EncRoot)> {
        State::lineage(fs).into_iter().find_map(|p| {
            self.datasets
                .get(&p)
                .and_then(|d| d.enc.as_ref())
                .map(|e| (p, e))
        })
    }

    pub fn add_pool(&mut self, name: &str) -> Result<DatasetPath> {
        let path = DatasetPath::parse(name)?;
        if !path.is_pool() {
            return Err(cmd_err(
                format!("zpool create {name}"),
                format!("cannot create '{name}': invalid pool name"),
            ));
        }
        if self.datasets.contains_key(&path) {
            return Err(cmd_err(
                format!("zpool create {name}"),
                format!("cannot create '{name}': pool already exists"),
            ));
        }
        let ds = self.new_dataset();
        self.datasets.insert(path.clone(), ds);
        Ok(path)
    }

    /// Write `n` bytes into `fs`.
    pub fn write(&mut self, fs: &DatasetPath, n: u64) -> Result<()> {
        if self.prop(fs, "readonly")?.0 == "on" {
            return Err(cmd_err(
                format!("write {fs}"),
                format!("cannot write to '{fs}': read-only file system"),
            ));
        }
        let ds = self.ds_mut(fs)?;
        if ds.incomplete {
            return Err(cmd_err(
                format!("write {fs}"),
                format!("cannot write to '{fs}': dataset is busy"),
            ));
        }
        ds.data += n;
        Ok(())
    }

    pub fn create(&mut self, fs: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        let cmd = format!("zfs create {fs}");
        let Some(parent) = fs.parent() else {
            let msg = if self.datasets.contains_key(fs) {
                "dataset already exists"
            } else {
                "missing dataset name"
            };
            return Err(cmd_err(cmd, format!("cannot create '{fs}': {msg}")));
        };
        if !self.datasets.contains_key(&parent) {
            return Err(missing(parent));
        }
        if self.datasets.contains_key(fs) {
            return Err(cmd_err(
                cmd,
                format!("cannot create '{fs}': dataset already exists"),
            ));
        }
        let mut enc = None;
        let mut local = BTreeMap::new();
        for (k, v) in props {
            match k.as_str() {
                "encryption" if v == "off" => {}
                "encryption" => {
                    let cipher = if v == "on" { "aes-256-gcm" } else { v.as_str() };
                    enc = Some(EncRoot {
                        cipher: cipher.to_string(),
                        loaded: true,
                    });
                }
                "keyformat" | "pbkdf2iters" => {}
                _ => {
                    State::check_settable(fs, k, v, "set")?;
                    local.insert(k.clone(), v.clone());
                }
            }
        }
        let mut ds = self.new_dataset();
        ds.enc = enc;
        ds.local = local;
        self.datasets.insert(fs.clone(), ds);
        Ok(())
    }

    pub fn list(&self, root: &DatasetPath, depth1: bool) -> Result<Vec<ListedDataset>> {
        self.ds(root)?;
        let mut out = Vec::new();
        for (path, ds) in self.datasets.range(root.clone()..) {
            if !path.has_prefix(root) {
                break;
            }
            if depth1 && path.depth() > root.depth() + 1 {
                continue;
            }
            let placeholder = self.prop(path, "zrepl:placeholder")?.0;
            let enc = self.encryption_of(path);
            let mut versions: Vec<Version> = ds
                .snaps
                .iter()
                .map(|(n, s)| Version {
                    kind: VersionKind::Snapshot,
                    name: n.clone(),
                    guid: s.guid,
                    createtxg: s.createtxg,
                    creation: s.creation,
                    userrefs: Some(s.holds.len() as u64),
                })
                .chain(ds.marks.iter().map(|(n, m)| Version {
                    kind: VersionKind::Bookmark,
                    name: n.clone(),
                    guid: m.guid,
                    createtxg: m.createtxg,
                    creation: m.creation,
                    userrefs: None,
                }))
                .collect();
            versions.sort_by(|a, b| {
                (a.createtxg, a.kind, &a.name).cmp(&(b.createtxg, b.kind, &b.name))
            });
            out.push(ListedDataset {
                path: path.clone(),
                kind: DatasetKind::Filesystem,
                guid: ds.guid,
                createtxg: ds.createtxg,
                creation: ds.creation,
                resume_token: ds.partial.as_ref().map(|p| p.token.clone()),
                placeholder: placeholder == "on" || placeholder == legacy_placeholder_value(path),
                encryption: enc.as_ref().map(|(_, e)| e.cipher.clone()),
                encryption_root: enc.as_ref().map(|(r, _)| r.clone()),
                key_status: enc
                    .map(|(_, e)| if e.loaded { "available" } else { "unavailable" }.to_string()),
                versions,
            });
        }
        Ok(out)
    }

    pub fn recv_abort(&mut self, fs: &DatasetPath) -> Result<()> {
        let ds = self.ds_mut(fs)?;
        if ds.partial.is_none() {
            let msg = format!(
                "cannot abort receive: '{fs}' does not have any resumable receive state to abort"
            );
            return Err(cmd_err(format!("zfs recv -A {fs}"), msg));
        }
        if ds.incomplete {
            self.datasets.remove(fs);
        } else {
            ds.partial = None;
        }
        Ok(())
    }
}
