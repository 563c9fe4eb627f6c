//! Parser for the one command that lists a whole subtree:
//! `zfs list -Hp -o <LIST_PROPS joined by ','> -t filesystem,volume,snapshot,bookmark -r <root>`.
//!
//! With `-H` rows are tab-separated and names never contain tabs (OpenZFS refuses them), so a
//! row splits unambiguously even when names contain spaces. With `-p` numbers are raw decimal
//! (`creation` in seconds since the epoch). A property that does not apply prints `-`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use sha2::{Digest, Sha512_256};

use super::{numbered_lines, ParseError};
use crate::name::{split_version, DatasetPath, NameError, VersionKind, VersionName};

/// The `-o` columns, in order. `zrepl:placeholder` is zrepl's user property.
pub const LIST_PROPS: &[&str] = &[
    "name",
    "type",
    "guid",
    "createtxg",
    "creation",
    "userrefs",
    "receive_resume_token",
    "zrepl:placeholder",
    "encryption",
    "encryptionroot",
    "keystatus",
];

const NAME: usize = 0;
const TYPE: usize = 1;
const GUID: usize = 2;
const CREATETXG: usize = 3;
const CREATION: usize = 4;
const USERREFS: usize = 5;
const RESUME_TOKEN: usize = 6;
const PLACEHOLDER: usize = 7;
const ENCRYPTION: usize = 8;
const ENCRYPTION_ROOT: usize = 9;
const KEY_STATUS: usize = 10;

/// A filesystem or a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// `type` is `filesystem`.
    Filesystem,
    /// `type` is `volume`.
    Volume,
}

/// A snapshot or bookmark of a listed dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Snapshot or bookmark.
    pub kind: VersionKind,
    /// The short name after `@` or `#`.
    pub name: String,
    /// `guid` (a bookmark has the guid of the snapshot it was made from).
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation`, seconds since the epoch.
    pub creation: i64,
    /// `userrefs` (number of holds); `None` for bookmarks.
    pub userrefs: Option<u64>,
}

impl Version {
    /// The full name, `fs@name` or `fs#name`.
    pub fn full_name(&self, fs: &DatasetPath) -> String {
        format!("{}{}{}", fs, self.kind.delimiter(), self.name)
    }

    /// The full name as a validated [`VersionName`].
    pub fn version_name(&self, fs: &DatasetPath) -> Result<VersionName, NameError> {
        VersionName::new(fs, self.kind, &self.name)
    }
}

/// One filesystem or volume with its snapshots and bookmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDataset {
    /// The dataset.
    pub path: DatasetPath,
    /// Filesystem or volume.
    pub kind: DatasetKind,
    /// `guid`.
    pub guid: u64,
    /// `createtxg`.
    pub createtxg: u64,
    /// `creation`, seconds since the epoch.
    pub creation: i64,
    /// `receive_resume_token`, `None` when `-`.
    pub resume_token: Option<String>,
    /// Whether `zrepl:placeholder` says placeholder: `on`, or zrepl's legacy value (see
    /// [`legacy_placeholder_value`]). `zfs list` cannot show the property's source, so a child of
    /// a placeholder that merely inherits `on` is reported as a placeholder too; use
    /// [`parse_placeholder_get`] where the distinction matters.
    pub placeholder: bool,
    /// `encryption`; `None` when `off` or `-`.
    pub encryption: Option<String>,
    /// `encryptionroot`; `None` when `-` or empty.
    pub encryption_root: Option<DatasetPath>,
    /// `keystatus` (`available`, `unavailable`); `None` when `-` or `none`.
    pub key_status: Option<String>,
    /// Snapshots and bookmarks, by `createtxg`, then snapshots before bookmarks, then name.
    pub versions: Vec<Version>,
}

/// zrepl's legacy (0.0.x) placeholder value for `path`: the lowercase hex SHA-512/256 digest of
/// the path string (`computeLegacyHashBasedPlaceholderPropertyValue` in zrepl's `placeholder.go`).
pub fn legacy_placeholder_value(path: &DatasetPath) -> String {
    let digest = Sha512_256::digest(path.as_str().as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Whether a `zrepl:placeholder` value marks `path` as a placeholder (zrepl's
/// `isLocalPlaceholderPropertyValuePlaceholder`).
pub fn is_placeholder_value(path: &DatasetPath, value: &str) -> bool {
    value == "on" || (value.len() == 64 && value == legacy_placeholder_value(path))
}

const COLUMNS: usize = LIST_PROPS.len();

/// One row being parsed, for error messages.
struct Row<'a> {
    line_no: usize,
    line: &'a str,
    fields: [&'a str; COLUMNS],
}

impl Row<'_> {
    fn invalid(&self, field: usize, reason: &'static str) -> ParseError {
        ParseError::InvalidField {
            line_no: self.line_no,
            line: self.line.to_string(),
            field: LIST_PROPS[field],
            value: self.fields[field].to_string(),
            reason,
        }
    }

    fn name_err(&self, source: NameError) -> ParseError {
        ParseError::invalid_name(self.line_no, self.line, source)
    }

    fn u64(&self, field: usize) -> Result<u64, ParseError> {
        self.fields[field]
            .parse()
            .map_err(|_| self.invalid(field, "expected an unsigned integer"))
    }

    fn i64(&self, field: usize) -> Result<i64, ParseError> {
        self.fields[field]
            .parse()
            .map_err(|_| self.invalid(field, "expected an integer"))
    }

    /// `None` for `-` (and the empty string).
    fn opt(&self, field: usize) -> Option<&str> {
        Some(self.fields[field]).filter(|v| !v.is_empty() && *v != "-")
    }
}

/// One dataset's version names, to find one listed twice: foldhash, as the
/// keys are many and short, and the listing is the local `zfs`'s output.
type FastSet<'a> = HashSet<(VersionKind, &'a str), foldhash::fast::RandomState>;

/// Consecutive version rows of one dataset, as `zfs list -r` prints them:
/// attached to the dataset with one lookup, and the dataset part of their
/// names validated once.
struct Run<'a> {
    fs: &'a str,
    first: &'a str,
    versions: Vec<Version>,
}

/// Parses the stdout of the `zfs list` command described in the module docs.
///
/// Rows may come in any order; snapshots and bookmarks are attached to their dataset, whose
/// row must be present. The result is sorted by path (component-wise).
pub fn parse_list(stdout: &str) -> Result<Vec<ListedDataset>, ParseError> {
    let mut datasets: Vec<ListedDataset> = Vec::new();
    let mut index: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut runs: Vec<Run<'_>> = Vec::new();
    for (line_no, line) in numbered_lines(stdout) {
        if line.is_empty() {
            continue;
        }
        // Into a fixed array: no allocation per row (a listing has millions).
        let mut fields = [""; COLUMNS];
        let mut found = 0;
        for f in line.split('\t') {
            if let Some(slot) = fields.get_mut(found) {
                *slot = f;
            }
            found += 1;
        }
        if found != COLUMNS {
            return Err(ParseError::field_count(line_no, line, COLUMNS, found));
        }
        let row = Row {
            line_no,
            line,
            fields,
        };
        let name = row.fields[NAME];
        let kind = match row.fields[TYPE] {
            "filesystem" => DatasetKind::Filesystem,
            "volume" => DatasetKind::Volume,
            "snapshot" | "bookmark" => {
                let last = runs.last_mut();
                let known = last.as_ref().map(|r| r.fs);
                let (fs, version) = parse_version_row(&row, known)?;
                match last {
                    Some(r) if r.fs == fs => r.versions.push(version),
                    _ => runs.push(Run {
                        fs,
                        first: name,
                        versions: vec![version],
                    }),
                }
                continue;
            }
            _ => return Err(row.invalid(TYPE, "expected filesystem, volume, snapshot or bookmark")),
        };
        let path = DatasetPath::parse(name).map_err(|e| row.name_err(e))?;
        let encryption_root = match row.opt(ENCRYPTION_ROOT) {
            None => None,
            Some(root) => Some(DatasetPath::parse(root).map_err(|e| row.name_err(e))?),
        };
        let ds = ListedDataset {
            kind,
            guid: row.u64(GUID)?,
            createtxg: row.u64(CREATETXG)?,
            creation: row.i64(CREATION)?,
            resume_token: row.opt(RESUME_TOKEN).map(str::to_string),
            placeholder: is_placeholder_value(&path, row.fields[PLACEHOLDER]),
            encryption: row
                .opt(ENCRYPTION)
                .filter(|v| *v != "off")
                .map(str::to_string),
            encryption_root,
            key_status: row
                .opt(KEY_STATUS)
                .filter(|v| *v != "none")
                .map(str::to_string),
            versions: Vec::new(),
            path,
        };
        if index.insert(name, datasets.len()).is_some() {
            return Err(ParseError::duplicate(line_no, line, name));
        }
        datasets.push(ds);
    }
    for run in runs {
        let Some(&i) = index.get(run.fs) else {
            return Err(ParseError::MissingDataset {
                version: run.first.to_string(),
                fs: run.fs.to_string(),
            });
        };
        let ds = &mut datasets[i];
        if ds.versions.is_empty() {
            ds.versions = run.versions;
        } else {
            ds.versions.extend(run.versions);
        }
    }
    datasets.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let mut names: FastSet<'_> = FastSet::default();
    for ds in &mut datasets {
        ds.versions
            .sort_by(|a, b| (a.createtxg, a.kind, &a.name).cmp(&(b.createtxg, b.kind, &b.name)));
        names.clear();
        for v in &ds.versions {
            if !names.insert((v.kind, v.name.as_str())) {
                return Err(duplicate_version(stdout, &ds.path, v));
            }
        }
    }
    Ok(datasets)
}

/// The error for a version listed twice, naming its second row.
fn duplicate_version(stdout: &str, fs: &DatasetPath, v: &Version) -> ParseError {
    let full = v.full_name(fs);
    let mut rows = numbered_lines(stdout).filter(|(_, l)| l.split('\t').next() == Some(&full));
    let (line_no, line) = rows.nth(1).unwrap_or((0, ""));
    ParseError::duplicate(line_no, line, &full)
}

/// A version row: its dataset part and the version. `known` is a dataset
/// part already validated (the previous row's).
fn parse_version_row<'a>(
    row: &Row<'a>,
    known: Option<&str>,
) -> Result<(&'a str, Version), ParseError> {
    let name = row.fields[NAME];
    let fs_valid = known.is_some_and(|k| {
        name.len() > k.len()
            && name.starts_with(k)
            && matches!(name.as_bytes()[k.len()], b'@' | b'#')
    });
    let (fs, kind, short) = split_version(name, None, fs_valid).map_err(|e| row.name_err(e))?;
    let expected = if row.fields[TYPE] == "snapshot" {
        VersionKind::Snapshot
    } else {
        VersionKind::Bookmark
    };
    if kind != expected {
        return Err(row.invalid(TYPE, "does not match the delimiter in the name"));
    }
    let userrefs = match (kind, row.opt(USERREFS)) {
        (VersionKind::Snapshot, Some(_)) => Some(row.u64(USERREFS)?),
        _ => None,
    };
    let version = Version {
        kind,
        name: short.to_string(),
        guid: row.u64(GUID)?,
        createtxg: row.u64(CREATETXG)?,
        creation: row.i64(CREATION)?,
        userrefs,
    };
    Ok((fs, version))
}

/// Parses `zfs get -Hp -o name,value,source -t filesystem,volume -r zrepl:placeholder <root>`
/// into each dataset's placeholder state, counting only a *locally set* value, as zrepl does
/// (an inherited `on` does not make a child a placeholder).
pub fn parse_placeholder_get(stdout: &str) -> Result<BTreeMap<DatasetPath, bool>, ParseError> {
    let mut out = BTreeMap::new();
    for (line_no, line) in numbered_lines(stdout) {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, value, source] = fields[..] else {
            return Err(ParseError::field_count(line_no, line, 3, fields.len()));
        };
        let path =
            DatasetPath::parse(name).map_err(|e| ParseError::invalid_name(line_no, line, e))?;
        let placeholder = source == "local" && is_placeholder_value(&path, value);
        if out.insert(path, placeholder).is_some() {
            return Err(ParseError::duplicate(line_no, line, name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> DatasetPath {
        DatasetPath::parse(s).unwrap()
    }

    /// `|` stands for the tab separator.
    fn rows(s: &str) -> String {
        s.replace('|', "\t")
    }

    // Shaped like real `zfs list -Hp -o <LIST_PROPS> -t all -r` output on OpenZFS 2.2.
    const SAMPLE: &str = "\
zroot|filesystem|7363614954386624542|1|1700000000|-|-|-|off|-|-
zroot/sink|filesystem|1111|50|1700000100|-|-|on|aes-256-gcm|zroot/sink|available
zroot/sink/c 1|filesystem|2222|60|1700000200|-|1-e604ea4bf-e0-789c63a2|on|aes-256-gcm|zroot/sink|available
zroot/sink/c 1@zrepl_2|snapshot|3333|80|1700000400|0|-|on|aes-256-gcm|zroot/sink|available
zroot/sink/c 1#zrepl_1|bookmark|4444|70|1700000300|-|-|-|-|-|-
zroot/sink/c 1@zrepl_1|snapshot|4444|70|1700000300|2|-|on|aes-256-gcm|zroot/sink|available
zroot/vol|volume|5555|90|1700000500|-|-|-|off|-|none
";

    #[test]
    fn parses_sample() {
        let got = parse_list(&rows(SAMPLE)).unwrap();
        let names: Vec<&str> = got.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            names,
            ["zroot", "zroot/sink", "zroot/sink/c 1", "zroot/vol"]
        );
        let c = &got[2];
        assert_eq!(c.resume_token.as_deref(), Some("1-e604ea4bf-e0-789c63a2"));
        assert!(c.placeholder);
        assert_eq!(c.encryption.as_deref(), Some("aes-256-gcm"));
        assert_eq!(c.encryption_root, Some(p("zroot/sink")));
        assert_eq!(c.key_status.as_deref(), Some("available"));
        let v: Vec<String> = c.versions.iter().map(|v| v.full_name(&c.path)).collect();
        let want = [
            "zroot/sink/c 1@zrepl_1",
            "zroot/sink/c 1#zrepl_1",
            "zroot/sink/c 1@zrepl_2",
        ];
        assert_eq!(v, want);
        assert_eq!(
            (c.versions[0].userrefs, c.versions[1].userrefs),
            (Some(2), None)
        );
        let vol = &got[3];
        assert_eq!(
            (vol.kind, &vol.encryption, &vol.key_status),
            (DatasetKind::Volume, &None, &None)
        );
        assert!(!got[0].placeholder && got[0].encryption_root.is_none());
        assert_eq!(parse_list("").unwrap(), vec![]);
    }

    #[test]
    fn legacy_placeholder_hash() {
        // zrepl 0.0.x: hex(sha512_256(path)), compared against the value on the dataset itself.
        let path = p("zroot/sink/c 1");
        let legacy = legacy_placeholder_value(&path);
        // NIST FIPS 180-4 test vector for SHA-512/256("abc").
        let abc = "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23";
        assert_eq!(legacy_placeholder_value(&p("abc")), abc);
        assert!(is_placeholder_value(&path, &legacy));
        // a child inheriting its parent's legacy value is not a placeholder
        assert!(!is_placeholder_value(&p("zroot/sink/c 1/child"), &legacy));
        assert!(!is_placeholder_value(&path, "off") && !is_placeholder_value(&path, "-"));
    }

    #[test]
    fn placeholder_get_counts_only_local_values() {
        let out = rows("p/a|on|local\np/a/b|on|inherited from p/a\np/c|-|-\np/d|off|local\n");
        let got = parse_placeholder_get(&out).unwrap();
        let want = [
            ("p/a", true),
            ("p/a/b", false),
            ("p/c", false),
            ("p/d", false),
        ];
        assert_eq!(got, want.iter().map(|(n, b)| (p(n), *b)).collect());
        assert!(parse_placeholder_get("p/a\ton\n").is_err());
    }

    #[test]
    fn rejects_malformed_rows() {
        let fs = "p|filesystem|1|2|3|-|-|-|off|-|-";
        let cases = [
            (
                "p|filesystem|1|2|3|-|-|-|off|-",
                "expected 11 tab-separated fields, found 10",
            ),
            ("p|pool|1|2|3|-|-|-|off|-|-", r#"line 1 "p\tpool"#),
            (
                "p|pool|1|2|3|-|-|-|off|-|-",
                r#""type" has invalid value "pool""#,
            ),
            (
                "p|filesystem|x|2|3|-|-|-|off|-|-",
                r#""guid" has invalid value "x""#,
            ),
            (
                "p@s|filesystem|1|2|3|-|-|-|off|-|-",
                "not allowed in a dataset path",
            ),
            (
                "p#s|snapshot|1|2|3|-|-|-|off|-|-",
                "does not match the delimiter",
            ),
            (
                "p@s|snapshot|1|2|3|x|-|-|off|-|-",
                r#""userrefs" has invalid value"#,
            ),
            (
                "p@s|snapshot|1|2|3|0|-|-|off|-|-",
                r#""p@s" is listed but its dataset "p" is not"#,
            ),
            (&format!("{fs}\n{fs}"), "listed more than once"),
            // after a valid row of the same dataset, the short name is
            // still checked, and a longer dataset part in full
            (
                &format!("{fs}\np@a|snapshot|1|2|3|0|-|-|off|-|-\np@b/c|snapshot|4|5|6|0|-|-|off|-|-"),
                "is not allowed after",
            ),
            (
                &format!("{fs}\np@a|snapshot|1|2|3|0|-|-|off|-|-\np/.@b|snapshot|4|5|6|0|-|-|off|-|-"),
                "is not allowed as a component",
            ),
            (
                &format!("{fs}\np@a|snapshot|1|2|3|0|-|-|off|-|-\np@a|snapshot|4|5|6|0|-|-|off|-|-"),
                "listed more than once",
            ),
            // the second row is named, even when the rows are apart
            (
                &format!("p@a|snapshot|1|2|3|0|-|-|off|-|-\n{fs}\np#a|bookmark|1|2|3|-|-|-|-|-|-\np@a|snapshot|4|5|6|0|-|-|off|-|-"),
                r#"line 4 "p@a\tsnapshot\t4"#,
            ),
        ];
        for (input, msg) in cases {
            let err = parse_list(&rows(input)).unwrap_err().to_string();
            assert!(err.contains(msg), "{input:?}: {err}");
        }
    }

    #[test]
    fn parses_a_thousand_filesystems_with_twenty_snapshots_each() {
        let mut out = String::from("big\tfilesystem\t1\t1\t1\t-\t-\t-\toff\t-\t-\n");
        for fs in 0..1000 {
            out += &rows(&format!("big/fs {fs}|filesystem|{fs}|2|2|-|-|-|off|-|-\n"));
            for s in 0..20 {
                let txg = 100 - s;
                out += &rows(&format!(
                    "big/fs {fs}@snap{s}|snapshot|{s}|{txg}|3|0|-|-|off|-|-\n"
                ));
            }
        }
        let got = parse_list(&out).unwrap();
        assert_eq!(got.len(), 1001);
        assert_eq!(got.iter().map(|d| d.versions.len()).sum::<usize>(), 20_000);
    }

    fn arb_version() -> impl Strategy<Value = Version> {
        let name = "[a-zA-Z0-9_.: -]{1,10}".prop_filter("not . or ..", |n| n != "." && n != "..");
        (any::<bool>(), name, any::<(u64, i64, u64)>(), 0u64..50).prop_map(
            |(bm, name, (guid, creation, refs), createtxg)| Version {
                kind: [VersionKind::Snapshot, VersionKind::Bookmark][usize::from(bm)],
                name,
                guid,
                createtxg,
                creation,
                userrefs: (!bm).then_some(refs),
            },
        )
    }

    /// A dataset and the raw `zrepl:placeholder` value zfs prints for it.
    fn arb_dataset() -> impl Strategy<Value = (ListedDataset, String)> {
        let path = prop::collection::vec("[a-z0-9 ]{1,6}", 0..3).prop_map(|c| {
            p(&["pool".to_string()]
                .into_iter()
                .chain(c)
                .collect::<Vec<_>>()
                .join("/"))
        });
        let enc = prop::option::of(prop::sample::select(vec![
            ("aes-256-gcm", "available"),
            ("aes-128-ccm", "unavailable"),
        ]));
        let token = prop::option::of("1-[0-9a-f]{1,30}");
        let versions = prop::collection::vec(arb_version(), 0..6);
        let ids = any::<(bool, u64, u64, i64)>();
        (path, ids, token, 0..5u8, enc, versions).prop_map(|(path, ids, token, ph, enc, vs)| {
            let raw = match ph {
                0 => "on".to_string(),
                1 => "off".to_string(),
                2 => "-".to_string(),
                3 => legacy_placeholder_value(&path),
                _ => legacy_placeholder_value(&p("pool/other")),
            };
            let unique: BTreeMap<_, _> = vs
                .into_iter()
                .map(|v| ((v.kind, v.name.clone()), v))
                .collect();
            let mut versions: Vec<Version> = unique.into_values().collect();
            versions.sort_by(|a, b| {
                (a.createtxg, a.kind, &a.name).cmp(&(b.createtxg, b.kind, &b.name))
            });
            let ds = ListedDataset {
                kind: [DatasetKind::Filesystem, DatasetKind::Volume][usize::from(ids.0)],
                guid: ids.1,
                createtxg: ids.2,
                creation: ids.3,
                resume_token: token,
                placeholder: matches!(ph, 0 | 3),
                encryption: enc.map(|e| e.0.to_string()),
                encryption_root: enc.map(|_| p("pool")),
                key_status: enc.map(|e| e.1.to_string()),
                versions,
                path,
            };
            (ds, raw)
        })
    }

    /// Renders rows exactly as `zfs list -Hp -o LIST_PROPS` prints them.
    fn render((d, placeholder): &(ListedDataset, String)) -> Vec<String> {
        let dash = |o: Option<String>| o.unwrap_or_else(|| "-".to_string());
        let enc = d.encryption.clone().unwrap_or_else(|| "off".to_string());
        let root = dash(d.encryption_root.as_ref().map(|r| r.to_string()));
        let keys = dash(d.key_status.clone());
        let ty = if d.kind == DatasetKind::Volume {
            "volume"
        } else {
            "filesystem"
        };
        let (guid, txg, creation) = (d.guid.to_string(), d.createtxg.to_string(), d.creation);
        let token = dash(d.resume_token.clone());
        let head = [
            d.path.to_string(),
            ty.into(),
            guid,
            txg,
            creation.to_string(),
            "-".into(),
        ];
        let tail = [
            token,
            placeholder.clone(),
            enc.clone(),
            root.clone(),
            keys.clone(),
        ];
        let mut out = vec![[&head[..], &tail[..]].concat().join("\t")];
        for v in &d.versions {
            let (g, t, c, name) = (v.guid, v.createtxg, v.creation, v.full_name(&d.path));
            out.push(match v.userrefs {
                Some(r) => format!(
                    "{name}\tsnapshot\t{g}\t{t}\t{c}\t{r}\t-\t{placeholder}\t{enc}\t{root}\t{keys}"
                ),
                None => format!("{name}\tbookmark\t{g}\t{t}\t{c}\t-\t-\t-\t-\t-\t-"),
            });
        }
        out
    }

    fn arb_listing() -> impl Strategy<Value = (Vec<ListedDataset>, Vec<String>)> {
        prop::collection::vec(arb_dataset(), 0..8).prop_flat_map(|gens| {
            let unique: BTreeMap<_, _> = gens.into_iter().map(|g| (g.0.path.clone(), g)).collect();
            let rows: Vec<String> = unique.values().flat_map(render).collect();
            let expected: Vec<ListedDataset> = unique.into_values().map(|g| g.0).collect();
            (Just(expected), Just(rows).prop_shuffle())
        })
    }

    proptest! {
        #[test]
        fn rendered_listing_round_trips((expected, rows) in arb_listing()) {
            let text = rows.iter().map(|r| format!("{r}\n")).collect::<String>();
            prop_assert_eq!(parse_list(&text).unwrap(), expected);
        }

        /// In `zfs list -r`'s own order (a dataset, then its versions), the
        /// parser takes its fast path: one lookup and one path check per run.
        #[test]
        fn grouped_listing_round_trips((expected, mut rows) in arb_listing()) {
            rows.sort_by(|a, b| {
                let key = |r: &str| {
                    let name = r.split('\t').next().unwrap_or_default();
                    let fs = name.split(['@', '#']).next().unwrap_or_default();
                    (p(fs), name.len() != fs.len())
                };
                key(a).cmp(&key(b))
            });
            let text = rows.iter().map(|r| format!("{r}\n")).collect::<String>();
            prop_assert_eq!(parse_list(&text).unwrap(), expected);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC*") {
            let _ = parse_list(&s);
            let _ = parse_placeholder_get(&s);
        }
    }
}
