//! Properties of the fake's filesystems, snapshots and bookmarks: `zfs get`,
//! `zfs set`, `zfs inherit`, with OpenZFS's sources (`local`, `received`,
//! `inherited from …`, `default`, `-`).

use std::collections::BTreeMap;

use zrelay_zfs::error::Result;
use zrelay_zfs::name::{BookmarkName, DatasetPath, SnapshotName, VersionKind};

use super::state::{cmd_err, missing, State};

/// Properties that are computed or fixed at creation.
const READONLY: &[&str] = &[
    "name",
    "type",
    "guid",
    "createtxg",
    "creation",
    "userrefs",
    "receive_resume_token",
    "encryption",
    "encryptionroot",
    "keystatus",
    "keyformat",
    "used",
    "referenced",
    "written",
    "logicalreferenced",
    "available",
    "origin",
    "mounted",
];
/// Inheritable native properties and their defaults.
const INHERITABLE: &[(&str, &str)] = &[
    ("readonly", "off"),
    ("compression", "on"),
    ("atime", "on"),
    ("relatime", "on"),
    ("recordsize", "131072"),
    ("sync", "standard"),
    ("checksum", "on"),
    ("dedup", "off"),
    ("copies", "1"),
    ("snapdir", "hidden"),
    ("xattr", "sa"),
    ("acltype", "off"),
];
/// Native properties that are not inherited, and their defaults.
const NOT_INHERITED: &[(&str, &str)] = &[
    ("canmount", "on"),
    ("keylocation", "none"),
    ("quota", "0"),
    ("refquota", "0"),
    ("reservation", "0"),
];

fn is_user_prop(p: &str) -> bool {
    p.contains(':')
}

fn known_native(p: &str) -> bool {
    p == "mountpoint"
        || READONLY.contains(&p)
        || INHERITABLE.iter().any(|(k, _)| *k == p)
        || NOT_INHERITED.iter().any(|(k, _)| *k == p)
}

/// `(value, source)` of a property.
type Prop = (String, String);

fn pv(v: impl ToString, s: impl ToString) -> Prop {
    (v.to_string(), s.to_string())
}

impl State {
    /// An effective property of filesystem `fs`.
    pub fn prop(&self, fs: &DatasetPath, p: &str) -> Result<Prop> {
        let ds = self.ds(fs)?;
        let inherited = || -> Option<Prop> {
            for (i, anc) in State::lineage(fs).iter().enumerate() {
                let d = self.datasets.get(anc)?;
                if let Some(v) = d.local.get(p) {
                    return Some(pv(
                        v,
                        if i == 0 {
                            "local".to_string()
                        } else {
                            format!("inherited from {anc}")
                        },
                    ));
                }
                if let Some(v) = d.received.get(p) {
                    return Some(pv(
                        v,
                        if i == 0 {
                            "received".to_string()
                        } else {
                            format!("inherited from {anc}")
                        },
                    ));
                }
            }
            None
        };
        Ok(match p {
            "name" => pv(fs, "-"),
            "type" => pv("filesystem", "-"),
            "guid" => pv(ds.guid, "-"),
            "createtxg" => pv(ds.createtxg, "-"),
            "creation" => pv(ds.creation, "-"),
            "used" | "referenced" | "logicalreferenced" => pv(ds.data, "-"),
            "written" => pv(
                ds.data - ds.newest().map_or(0, |(_, s)| s.data.min(ds.data)),
                "-",
            ),
            "available" => pv(1u64 << 40, "-"),
            "origin" | "userrefs" | "keyformat" => pv("-", "-"),
            "mounted" => pv("no", "-"),
            "receive_resume_token" => {
                pv(ds.partial.as_ref().map_or("-", |p| p.token.as_str()), "-")
            }
            "encryption" | "encryptionroot" | "keystatus" => match self.encryption_of(fs) {
                None if p == "encryption" => pv("off", "default"),
                None => pv("-", "-"),
                Some((root, e)) => match p {
                    "encryption" if &root == fs => pv(&e.cipher, "-"),
                    "encryption" => pv(&e.cipher, format!("inherited from {root}")),
                    "encryptionroot" => pv(root, "-"),
                    _ => pv(if e.loaded { "available" } else { "unavailable" }, "-"),
                },
            },
            "mountpoint" => self.mountpoint(fs),
            _ if is_user_prop(p) => inherited().unwrap_or_else(|| pv("-", "-")),
            _ => {
                if let Some((_, def)) = INHERITABLE.iter().find(|(k, _)| *k == p) {
                    inherited().unwrap_or_else(|| pv(def, "default"))
                } else if let Some((_, def)) = NOT_INHERITED.iter().find(|(k, _)| *k == p) {
                    let own = ds.local.get(p).map(|v| pv(v, "local"));
                    own.or_else(|| ds.received.get(p).map(|v| pv(v, "received")))
                        .unwrap_or_else(|| pv(def, "default"))
                } else {
                    return Err(cmd_err(
                        format!("zfs get {p} {fs}"),
                        format!("bad property list: invalid property '{p}'"),
                    ));
                }
            }
        })
    }

    fn mountpoint(&self, fs: &DatasetPath) -> Prop {
        for (i, anc) in State::lineage(fs).iter().enumerate() {
            let Some(d) = self.datasets.get(anc) else {
                break;
            };
            let Some((v, src)) = d
                .local
                .get("mountpoint")
                .map(|v| (v, "local"))
                .or_else(|| d.received.get("mountpoint").map(|v| (v, "received")))
            else {
                continue;
            };
            if i == 0 {
                return pv(v, src);
            }
            let rel = fs.strip_prefix(anc).unwrap_or_default().join("/");
            let value = if v == "none" || v == "legacy" {
                v.clone()
            } else {
                format!("{}/{rel}", v.trim_end_matches('/'))
            };
            return pv(value, format!("inherited from {anc}"));
        }
        pv(format!("/{fs}"), "default")
    }

    /// `zfs get` of a dataset, snapshot or bookmark.
    pub fn get(&self, name: &str, props: &[&str]) -> Result<BTreeMap<String, (String, String)>> {
        let mut out = BTreeMap::new();
        if name.contains('@') || name.contains('#') {
            let (fs, kind, short) = if name.contains('@') {
                let s = SnapshotName::parse(name)?;
                (s.fs().clone(), VersionKind::Snapshot, s.name().to_string())
            } else {
                let b = BookmarkName::parse(name)?;
                (b.fs().clone(), VersionKind::Bookmark, b.name().to_string())
            };
            let ds = self.datasets.get(&fs).ok_or_else(|| missing(name))?;
            let (guid, createtxg, creation, data, refs) = match kind {
                VersionKind::Snapshot => {
                    let s = ds.snaps.get(&short).ok_or_else(|| missing(name))?;
                    (s.guid, s.createtxg, s.creation, s.data, Some(s.holds.len()))
                }
                VersionKind::Bookmark => {
                    let m = ds.marks.get(&short).ok_or_else(|| missing(name))?;
                    (m.guid, m.createtxg, m.creation, m.data, None)
                }
            };
            // a snapshot's `written`: its data since the snapshot before it
            let written = || {
                let prev = ds
                    .snaps
                    .values()
                    .filter(|o| o.createtxg < createtxg)
                    .max_by_key(|o| o.createtxg)
                    .map_or(0, |o| o.data);
                data.saturating_sub(prev)
            };
            for &p in props {
                let v = match p {
                    "name" => pv(name, "-"),
                    "type" => pv(
                        if refs.is_some() {
                            "snapshot"
                        } else {
                            "bookmark"
                        },
                        "-",
                    ),
                    "guid" => pv(guid, "-"),
                    "createtxg" => pv(createtxg, "-"),
                    "creation" => pv(creation, "-"),
                    "userrefs" => refs.map_or_else(|| pv("-", "-"), |r| pv(r, "-")),
                    "referenced" | "logicalreferenced" if refs.is_some() => pv(data, "-"),
                    "written" if refs.is_some() => pv(written(), "-"),
                    "used" if refs.is_some() => pv(0, "-"),
                    "encryption" | "encryptionroot" | "keystatus" if refs.is_some() => {
                        let (v, _) = self.prop(&fs, p)?;
                        pv(v, "-")
                    }
                    _ if is_user_prop(p) && refs.is_some() => match self.prop(&fs, p)? {
                        (v, s) if s == "local" || s == "received" => {
                            pv(v, format!("inherited from {fs}"))
                        }
                        other => other,
                    },
                    _ if is_user_prop(p) || known_native(p) => pv("-", "-"),
                    _ => {
                        return Err(cmd_err(
                            format!("zfs get {p} {name}"),
                            format!("bad property list: invalid property '{p}'"),
                        ))
                    }
                };
                out.insert(p.to_string(), v);
            }
            return Ok(out);
        }
        let fs = DatasetPath::parse(name)?;
        self.ds(&fs)?;
        for &p in props {
            out.insert(p.to_string(), self.prop(&fs, p)?);
        }
        Ok(out)
    }

    pub(super) fn check_settable(fs: &DatasetPath, k: &str, v: &str, verb: &str) -> Result<()> {
        let cmd = format!("zfs {verb} {k} {fs}");
        if READONLY.contains(&k) {
            return Err(cmd_err(
                cmd,
                format!("cannot {verb} property for '{fs}': '{k}' is readonly"),
            ));
        }
        if !is_user_prop(k) && !known_native(k) {
            return Err(cmd_err(
                cmd,
                format!("cannot {verb} property for '{fs}': invalid property '{k}'"),
            ));
        }
        if k == "readonly" && verb == "set" && v != "on" && v != "off" {
            return Err(cmd_err(
                cmd,
                format!("cannot set property for '{fs}': 'readonly' must be one of 'on | off'"),
            ));
        }
        Ok(())
    }

    pub fn set(&mut self, fs: &DatasetPath, props: &[(String, String)]) -> Result<()> {
        self.ds(fs)?;
        for (k, v) in props {
            State::check_settable(fs, k, v, "set")?;
        }
        let ds = self.ds_mut(fs)?;
        for (k, v) in props {
            ds.local.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    pub fn inherit(&mut self, fs: &DatasetPath, prop: &str) -> Result<()> {
        self.ds(fs)?;
        State::check_settable(fs, prop, "", "inherit")?;
        if NOT_INHERITED.iter().any(|(k, _)| *k == prop) {
            let msg = format!("cannot inherit {prop} for '{fs}': property cannot be inherited");
            return Err(cmd_err(format!("zfs inherit {prop} {fs}"), msg));
        }
        let ds = self.ds_mut(fs)?;
        ds.local.remove(prop);
        ds.received.remove(prop);
        Ok(())
    }
}
