//! [`ConfigError`] and the key paths and positions every error carries.

use std::fmt;
use std::path::{Path, PathBuf};

use zrelay_zfs::{Classify, ErrorClass};

use crate::yaml::{Mark, Node, Value};

/// Why a configuration could not be found, read or accepted.
///
/// Every configuration error is permanent: retrying with the same files
/// yields the same error ([`Classify::class`] is always `Permanent`). Errors about the
/// contents name the file, the 1-based line and column, and the key path,
/// e.g. `/etc/zrepl/zrepl.yml:14:7: jobs[1] (name "backup").connect.type:
/// unknown variant "tcpp", expected one of tcp, tls, ssh+stdinserver, local`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No configuration file exists at any of the searched paths.
    #[error("no configuration file found; tried {}", list_paths(tried))]
    NotFound {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("{}:{line}:{column}: invalid YAML: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The YAML is well-formed but the configuration is not valid.
    #[error("{}", Invalid::display(file, *line, *column, key, message))]
    Invalid {
        /// The file the offending key is in (the main file or an include).
        file: PathBuf,
        /// 1-based line of the offending key.
        line: usize,
        /// 1-based column of the offending key.
        column: usize,
        /// The key path, e.g. `jobs[1] (name "backup").connect.type`
        /// (empty for an error about the whole document).
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Classify for ConfigError {
    /// Always `Permanent`: a configuration error does not go away by retrying.
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

impl ConfigError {
    /// The file the error is about, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            ConfigError::NotFound { .. } => None,
            ConfigError::Io { path, .. } => Some(path),
            ConfigError::Syntax { file, .. } | ConfigError::Invalid { file, .. } => Some(file),
        }
    }

    /// The 1-based line the error is about, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } | ConfigError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

struct Invalid;

impl Invalid {
    fn display(file: &Path, line: usize, column: usize, key: &str, message: &str) -> String {
        if key.is_empty() {
            format!("{}:{line}:{column}: {message}", file.display())
        } else {
            format!("{}:{line}:{column}: {key}: {message}", file.display())
        }
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A key path from the document root, e.g. `jobs[1].connect.type`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    /// The document root.
    pub(crate) fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// `self.key`.
    pub(crate) fn k(&self, key: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.to_string()));
        KeyPath(v)
    }

    /// `self[index]`.
    pub(crate) fn i(&self, index: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(index));
        KeyPath(v)
    }
}

/// Whether a key can be shown without quotes in a key path.
fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
}

/// Where `path` points in `root`, and the path as shown to the user.
///
/// The position is that of the deepest existing key (a missing key is
/// reported at its parent). A sequence element that is a mapping with a
/// scalar `name` is annotated, e.g. `jobs[1] (name "backup")`.
pub(crate) fn locate(root: Option<&Node>, path: &KeyPath) -> (Mark, String) {
    let mut shown = String::new();
    let mut mark = root.map(|n| n.mark).unwrap_or_default();
    let mut node = root;
    for seg in &path.0 {
        match seg {
            Seg::Key(k) => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                if plain_key(k) && k.len() <= zrelay_zfs::peer_text::PEER_TEXT_MAX {
                    shown.push_str(k);
                } else {
                    shown.push_str(&format!("\"{}\"", zrelay_zfs::peer_text::peer(k)));
                }
                node = match node.map(|n| &n.value) {
                    Some(Value::Map(entries)) => entries.iter().find(|e| e.key == *k).map(|e| {
                        mark = e.key_mark;
                        &e.value
                    }),
                    _ => None,
                };
            }
            Seg::Index(i) => {
                shown.push_str(&format!("[{i}]"));
                node = match node.map(|n| &n.value) {
                    Some(Value::Seq(items)) => items.get(*i).inspect(|n| mark = n.mark),
                    _ => None,
                };
                if let Some(name) = node.and_then(|n| n.get("name")).and_then(Node::as_str) {
                    shown.push_str(&format!(
                        " (name \"{}\")",
                        zrelay_zfs::peer_text::peer(name)
                    ));
                }
            }
        }
    }
    (mark, shown)
}

/// Build an [`ConfigError::Invalid`] for `path` in the document `root` of `file`.
pub(crate) fn invalid(
    file: &Path,
    root: Option<&Node>,
    path: &KeyPath,
    message: impl fmt::Display,
) -> ConfigError {
    let (mark, key) = locate(root, path);
    ConfigError::Invalid {
        file: file.to_path_buf(),
        line: mark.line,
        column: mark.col,
        key,
        message: message.to_string(),
    }
}
