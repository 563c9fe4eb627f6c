//! Validated ZFS names: dataset paths, snapshot, bookmark and version names.
//!
//! Invariants:
//! - Every value of a type in this module passed the checks of OpenZFS's `entity_namecheck`
//!   (`module/zcommon/zfs_namecheck.c`) for its kind of entity: the whole name is shorter than
//!   256 bytes (`ZFS_MAX_DATASET_NAME_LEN`), components use only `[A-Za-z0-9_.: -]` and `%`,
//!   no component is empty, `.` or `..`, there is no leading or trailing `/`, a dataset path has
//!   no `@`/`#`, and a snapshot (bookmark) name has exactly one `@` (`#`) with no `/` after it.
//! - The first component also passes `pool_namecheck`: it starts with a letter, has no `%` and
//!   is not one of the reserved names `mirror`, `raidz`, `draid`.
//! - `%` is accepted inside components because OpenZFS names internal datasets with it
//!   (`fs/%recv`); `libzfs` refuses it in names it creates, and so does [`validate_component`].
//! - Names from a peer pass [`validate_peer`] too: no `%` anywhere, since `zfs destroy`
//!   reads `fs@a%b` as a range (the RPC boundary applies it to every request and reply).
//! - Values are immutable: every constructor validates and returns a [`NameError`] otherwise.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `ZFS_MAX_DATASET_NAME_LEN`: every full name must be strictly shorter than this many bytes.
pub const MAX_NAME_LEN: usize = 256;

/// Which kind of name was being validated when a [`NameError`] occurred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// A filesystem or volume path.
    Dataset,
    /// `fs@snap`.
    Snapshot,
    /// `fs#book`.
    Bookmark,
    /// `fs@snap` or `fs#book`.
    Version,
    /// A single path component.
    Component,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Dataset => "dataset",
            NameKind::Snapshot => "snapshot",
            NameKind::Bookmark => "bookmark",
            NameKind::Version => "snapshot or bookmark",
            NameKind::Component => "path component",
        })
    }
}

/// Why a name is not a valid ZFS name. Every message quotes the offending name, escaped onto
/// one line and cut to [`MAX_NAME_LEN`] bytes (with its length when cut), e.g.
/// `invalid dataset name "pool/a@b": "@" is not allowed in a dataset path`. A hostile 60 MiB
/// name costs a few hundred bytes here, never a copy of itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NameError {
    /// The kind of name that was being validated.
    pub kind: NameKind,
    /// The name that failed validation, cut to at most [`MAX_NAME_LEN`] bytes (on a
    /// character boundary); `len` is its full length.
    pub name: String,
    /// The full length of the name, in bytes.
    pub len: usize,
    /// What is wrong with it.
    pub problem: NameProblem,
}

impl NameError {
    /// The name that failed validation (its first [`MAX_NAME_LEN`] bytes at most).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = crate::peer_text::show(&self.name, usize::MAX);
        write!(f, "invalid {} name \"{shown}\"", self.kind)?;
        if self.len > self.name.len() {
            write!(f, "…({} bytes)", self.len)?;
        }
        write!(f, ": {}", self.problem)
    }
}

/// The rule of `entity_namecheck` / `pool_namecheck` a name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is the empty string.
    Empty,
    /// The name is this many bytes long, 256 or more.
    TooLong(usize),
    /// The name starts with `/`.
    LeadingSlash,
    /// The name ends with `/`.
    TrailingSlash,
    /// Two delimiters are adjacent, or one is at the start or the end.
    EmptyComponent,
    /// This character is outside `[A-Za-z0-9_.: -]` (and `%` where allowed).
    InvalidChar(char),
    /// This delimiter (`@`/`#`) is not allowed in this kind of name (e.g. `"dataset path"`).
    UnexpectedDelimiter(char, &'static str),
    /// A snapshot without `@`, a bookmark without `#`: the quoted delimiter(s) expected.
    MissingDelimiter(&'static str),
    /// More than one `@`/`#`.
    MultipleDelimiters,
    /// A `/` after the `@` or `#`.
    SlashAfterDelimiter,
    /// A component that is exactly `.`.
    SelfReference,
    /// A component that is exactly `..`.
    ParentReference,
    /// The pool name does not start with a letter.
    PoolNoLetter,
    /// The pool name is `mirror`, `raidz` or `draid`.
    PoolReserved,
    /// A `%` in a name that came from a peer ([`validate_peer`]).
    PeerPercent,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("the name is empty"),
            NameProblem::TooLong(n) => {
                write!(f, "the name is {n} bytes long, at most 255 are allowed")
            }
            NameProblem::LeadingSlash => f.write_str("leading slash"),
            NameProblem::TrailingSlash => f.write_str("trailing slash"),
            NameProblem::EmptyComponent => f.write_str("empty component"),
            NameProblem::InvalidChar(c) => {
                write!(
                    f,
                    "{c:?} is not allowed (allowed are letters, digits and \"-_.: \")"
                )
            }
            NameProblem::UnexpectedDelimiter(d, place) => {
                write!(f, "\"{d}\" is not allowed in a {place}")
            }
            NameProblem::MissingDelimiter(expected) => write!(f, "missing {expected} delimiter"),
            NameProblem::MultipleDelimiters => {
                f.write_str("more than one \"@\" or \"#\" delimiter")
            }
            NameProblem::SlashAfterDelimiter => {
                f.write_str("\"/\" is not allowed after the \"@\" or \"#\" delimiter")
            }
            NameProblem::SelfReference => f.write_str("\".\" is not allowed as a component"),
            NameProblem::ParentReference => f.write_str("\"..\" is not allowed as a component"),
            NameProblem::PoolNoLetter => f.write_str("the pool name must begin with a letter"),
            NameProblem::PoolReserved => {
                f.write_str("the pool name is reserved (mirror, raidz, draid)")
            }
            NameProblem::PeerPercent => f.write_str(
                "\"%\" is not allowed here (ZFS never creates such names, \
                 and `zfs destroy` reads it as a range of snapshots)",
            ),
        }
    }
}

/// OpenZFS `valid_char`.
fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | ' ')
}

/// Error context: which kind of name, and the full name to quote.
struct Ctx<'a> {
    kind: NameKind,
    name: &'a str,
}

impl Ctx<'_> {
    fn err(&self, problem: NameProblem) -> NameError {
        let mut end = self.name.len().min(MAX_NAME_LEN);
        while !self.name.is_char_boundary(end) {
            end -= 1;
        }
        NameError {
            kind: self.kind,
            name: self.name[..end].to_string(),
            len: self.name.len(),
            problem,
        }
    }
    fn check_len(&self) -> Result<(), NameError> {
        match self.name.len() {
            0 => Err(self.err(NameProblem::Empty)),
            n if n >= MAX_NAME_LEN => Err(self.err(NameProblem::TooLong(n))),
            _ => Ok(()),
        }
    }
    /// One component: non-empty, allowed characters, not `.`/`..`.
    fn check_component(&self, c: &str, allow_percent: bool) -> Result<(), NameError> {
        if c.is_empty() {
            return Err(self.err(NameProblem::EmptyComponent));
        }
        if let Some(ch) = c
            .chars()
            .find(|&ch| !(valid_char(ch) || (allow_percent && ch == '%')))
        {
            return Err(self.err(NameProblem::InvalidChar(ch)));
        }
        match c {
            "." => Err(self.err(NameProblem::SelfReference)),
            ".." => Err(self.err(NameProblem::ParentReference)),
            _ => Ok(()),
        }
    }
    /// A dataset path (the part before any delimiter).
    fn check_path(&self, path: &str) -> Result<(), NameError> {
        if path.starts_with('/') {
            return Err(self.err(NameProblem::LeadingSlash));
        }
        if path.ends_with('/') {
            return Err(self.err(NameProblem::TrailingSlash));
        }
        for c in path.split('/') {
            self.check_component(c, true)?;
        }
        let pool = path.split('/').next().unwrap_or(path);
        if pool.contains('%') {
            return Err(self.err(NameProblem::InvalidChar('%')));
        }
        if !pool.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(self.err(NameProblem::PoolNoLetter));
        }
        if matches!(pool, "mirror" | "raidz" | "draid") {
            return Err(self.err(NameProblem::PoolReserved));
        }
        Ok(())
    }
    /// The short name after `@`/`#`.
    fn check_short(&self, short: &str) -> Result<(), NameError> {
        if short.contains('/') {
            return Err(self.err(NameProblem::SlashAfterDelimiter));
        }
        if short.contains(['@', '#']) {
            return Err(self.err(NameProblem::MultipleDelimiters));
        }
        self.check_component(short, true)
    }
}

/// Validates a single component the way `libzfs` validates a name it is asked to create
/// (`zfs_component_namecheck` plus the `.`/`..` rule): used for client identities and any
/// other string that becomes one dataset path component. Unlike listed names, `%` is refused.
pub fn validate_component(s: &str) -> Result<(), NameError> {
    let ctx = Ctx {
        kind: NameKind::Component,
        name: s,
    };
    ctx.check_len()?;
    ctx.check_component(s, false)
}

/// The rule for names that come from a peer of the zrelay protocol (a request's dataset
/// paths, snapshot and bookmark names, a reply's listed paths and versions): the name, of
/// `kind`, must not contain `%` anywhere. Listed names may contain it (`fs/%recv`), but
/// ZFS never creates a snapshot, bookmark or dataset name with `%`, so no honest peer
/// sends one, and `zfs destroy fs@a%b` would destroy a range of snapshots.
pub fn validate_peer(s: &str, kind: NameKind) -> Result<(), NameError> {
    if s.contains('%') {
        return Err(Ctx { kind, name: s }.err(NameProblem::PeerPercent));
    }
    Ok(())
}

/// A validated filesystem or volume path such as `pool/a b/c`.
///
/// Ordering is component-wise, so a dataset sorts directly before its descendants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetPath(String);

impl DatasetPath {
    /// Validates `s` as a dataset path.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ctx = Ctx {
            kind: NameKind::Dataset,
            name: s,
        };
        ctx.check_len()?;
        if let Some(delim) = s.chars().find(|&c| c == '@' || c == '#') {
            return Err(ctx.err(NameProblem::UnexpectedDelimiter(delim, "dataset path")));
        }
        ctx.check_path(s)?;
        Ok(DatasetPath(s.to_string()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, pool first.
    pub fn components(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The pool name (first component).
    pub fn pool(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// The last component.
    pub fn last_component(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The number of components (`pool` is 1, `pool/a` is 2).
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'/').count() + 1
    }

    /// Whether this is a pool's root dataset.
    pub fn is_pool(&self) -> bool {
        !self.0.contains('/')
    }

    /// The parent dataset, `None` for a pool.
    pub fn parent(&self) -> Option<DatasetPath> {
        self.0
            .rfind('/')
            .map(|i| DatasetPath(self.0[..i].to_string()))
    }

    /// `self/component`, validating the component and the resulting length.
    pub fn child(&self, component: &str) -> Result<DatasetPath, NameError> {
        self.join([component])
    }

    /// `self/c1/c2/...`; each component is validated. An empty iterator yields `self`.
    pub fn join<I, S>(&self, components: I) -> Result<DatasetPath, NameError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let components: Vec<S> = components.into_iter().collect();
        let mut s = self.0.clone();
        for c in &components {
            s.push('/');
            s.push_str(c.as_ref());
        }
        let ctx = Ctx {
            kind: NameKind::Dataset,
            name: &s,
        };
        for c in &components {
            ctx.check_component(c.as_ref(), true)?;
        }
        DatasetPath::parse(&s)
    }

    /// `self/rel` for a relative path such as `a/b`; `""` yields `self`.
    pub fn join_relative(&self, rel: &str) -> Result<DatasetPath, NameError> {
        if rel.is_empty() {
            return Ok(self.clone());
        }
        DatasetPath::parse(&format!("{}/{}", self.0, rel))
    }

    /// Component-wise prefix test: `a/b` is a prefix of `a/b` and `a/b/c`, not of `a/bb`.
    pub fn has_prefix(&self, prefix: &DatasetPath) -> bool {
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0) && self.0.as_bytes()[prefix.0.len()] == b'/')
    }

    /// The components after `prefix`, or `None` if `prefix` is not a prefix of `self`.
    pub fn strip_prefix(&self, prefix: &DatasetPath) -> Option<Vec<String>> {
        if self.0 == prefix.0 {
            return Some(Vec::new());
        }
        if !self.has_prefix(prefix) {
            return None;
        }
        Some(
            self.0[prefix.0.len() + 1..]
                .split('/')
                .map(str::to_string)
                .collect(),
        )
    }

    /// Whether `self` is a strict ancestor of `other`.
    pub fn is_ancestor_of(&self, other: &DatasetPath) -> bool {
        self != other && other.has_prefix(self)
    }
}

impl Ord for DatasetPath {
    /// Component-wise (`p/a` < `p/a/b` < `p/a-b`, parents before their
    /// children), computed on the bytes with `/` taken as lower than any
    /// other byte, which orders the same without splitting (names hold no
    /// NUL): planning sorts and looks up tens of thousands of paths.
    fn cmp(&self, other: &Self) -> Ordering {
        let key = |b: &u8| if *b == b'/' { 0 } else { *b };
        self.0
            .as_bytes()
            .iter()
            .map(key)
            .cmp(other.0.as_bytes().iter().map(key))
    }
}

impl PartialOrd for DatasetPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Implements the string conversions shared by all name types.
macro_rules! string_conversions {
    ($t:ty) => {
        impl FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                <$t>::parse(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                <$t>::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    };
}

string_conversions!(DatasetPath);

impl fmt::Display for DatasetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DatasetPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether a version is a snapshot (`@`) or a bookmark (`#`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionKind {
    /// `fs@name`.
    Snapshot,
    /// `fs#name`.
    Bookmark,
}

impl VersionKind {
    /// `@` or `#`.
    pub fn delimiter(self) -> char {
        match self {
            VersionKind::Snapshot => '@',
            VersionKind::Bookmark => '#',
        }
    }

    fn name_kind(self) -> NameKind {
        match self {
            VersionKind::Snapshot => NameKind::Snapshot,
            VersionKind::Bookmark => NameKind::Bookmark,
        }
    }
}

/// Splits and validates `fs<delim>short`; `kind == None` accepts either delimiter.
fn parse_version(s: &str, want: Option<VersionKind>) -> Result<VersionName, NameError> {
    let (path, found, short) = split_version(s, want, false)?;
    Ok(VersionName {
        fs: DatasetPath(path.to_string()),
        kind: found,
        name: short.to_string(),
    })
}

/// Validates `fs<delim>short` as [`VersionName::parse`] does, without
/// allocating, and returns its parts. With `fs_valid`, the caller vouches
/// that the dataset part is a valid path (it equals one already validated),
/// and only the length, the delimiter and the short name are checked: the
/// list parser meets the same dataset part on every snapshot row.
pub(crate) fn split_version(
    s: &str,
    want: Option<VersionKind>,
    fs_valid: bool,
) -> Result<(&str, VersionKind, &str), NameError> {
    let kind = want.map_or(NameKind::Version, VersionKind::name_kind);
    let ctx = Ctx { kind, name: s };
    ctx.check_len()?;
    let Some(at) = s.find(['@', '#']) else {
        let expected = match want {
            Some(VersionKind::Snapshot) => "\"@\"",
            Some(VersionKind::Bookmark) => "\"#\"",
            None => "\"@\" or \"#\"",
        };
        return Err(ctx.err(NameProblem::MissingDelimiter(expected)));
    };
    let found =
        [VersionKind::Snapshot, VersionKind::Bookmark][usize::from(s.as_bytes()[at] == b'#')];
    let (path, short) = (&s[..at], &s[at + 1..]);
    if path.is_empty() {
        return Err(ctx.err(NameProblem::EmptyComponent));
    }
    if !fs_valid {
        ctx.check_path(path)?;
    }
    ctx.check_short(short)?;
    if let Some(w) = want.filter(|&w| w != found) {
        let place = if w == VersionKind::Snapshot {
            "snapshot name"
        } else {
            "bookmark name"
        };
        return Err(ctx.err(NameProblem::UnexpectedDelimiter(found.delimiter(), place)));
    }
    Ok((path, found, short))
}

/// A snapshot or bookmark of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionName {
    fs: DatasetPath,
    kind: VersionKind,
    name: String,
}

impl VersionName {
    /// Parses `fs@name` or `fs#name`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        parse_version(s, None)
    }

    /// Builds `fs@short` or `fs#short`, validating `short` and the total length.
    pub fn new(fs: &DatasetPath, kind: VersionKind, short: &str) -> Result<Self, NameError> {
        parse_version(&format!("{}{}{}", fs, kind.delimiter(), short), Some(kind))
    }

    /// The dataset.
    pub fn fs(&self) -> &DatasetPath {
        &self.fs
    }

    /// Snapshot or bookmark.
    pub fn kind(&self) -> VersionKind {
        self.kind
    }

    /// The short name after the delimiter.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full name, `fs@name` or `fs#name`.
    pub fn full(&self) -> String {
        self.to_string()
    }

    /// The snapshot, if this is one.
    pub fn as_snapshot(&self) -> Option<SnapshotName> {
        (self.kind == VersionKind::Snapshot).then(|| SnapshotName {
            fs: self.fs.clone(),
            name: self.name.clone(),
        })
    }

    /// The bookmark, if this is one.
    pub fn as_bookmark(&self) -> Option<BookmarkName> {
        (self.kind == VersionKind::Bookmark).then(|| BookmarkName {
            fs: self.fs.clone(),
            name: self.name.clone(),
        })
    }
}

impl fmt::Display for VersionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.fs, self.kind.delimiter(), self.name)
    }
}

string_conversions!(VersionName);

/// Defines a name type with a fixed delimiter.
macro_rules! fixed_version {
    ($(#[$doc:meta])* $t:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $t {
            fs: DatasetPath,
            name: String,
        }

        impl $t {
            /// Parses the full name.
            pub fn parse(s: &str) -> Result<Self, NameError> {
                let v = parse_version(s, Some($kind))?;
                Ok($t { fs: v.fs, name: v.name })
            }

            /// Builds the name from a dataset and a short name, validating both together.
            pub fn new(fs: &DatasetPath, short: &str) -> Result<Self, NameError> {
                let v = VersionName::new(fs, $kind, short)?;
                Ok($t { fs: v.fs, name: v.name })
            }

            /// The dataset.
            pub fn fs(&self) -> &DatasetPath {
                &self.fs
            }

            /// The short name after the delimiter.
            pub fn name(&self) -> &str {
                &self.name
            }

            /// The full name.
            pub fn full(&self) -> String {
                self.to_string()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}{}", self.fs, $kind.delimiter(), self.name)
            }
        }

        impl From<$t> for VersionName {
            fn from(v: $t) -> VersionName {
                VersionName { fs: v.fs, kind: $kind, name: v.name }
            }
        }

        string_conversions!($t);
    };
}

fixed_version!(
    /// A validated snapshot name, `fs@name`.
    SnapshotName,
    VersionKind::Snapshot
);
fixed_version!(
    /// A validated bookmark name, `fs#name`.
    BookmarkName,
    VersionKind::Bookmark
);

#[cfg(test)]
mod tests;
