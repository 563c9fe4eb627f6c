//! A YAML document as a tree whose every node remembers where it was written.
//!
//! Built from the event stream of `libyaml-safer` (a safe Rust port of
//! libyaml, of which zrepl's go-yaml is a Go port: both accept the same
//! documents). Scalars stay untyped text (with
//! whether they were plain): the serde layer types them by what the raw
//! struct asks for, as go-yaml does for zrepl. Anchors and aliases are
//! resolved, `<<` merge keys are applied, duplicate keys are errors, and more
//! than one document per file is an error.
//!
//! Hostile input ends in an error that names the file, the line and the limit,
//! in time linear in the file's size:
//! - nesting deeper than [`MAX_DEPTH`] collections is refused (so dropping,
//!   cloning and deserializing the tree never recurse deeper than that);
//! - aliases may copy at most [`MAX_ALIAS_NODES`] nodes in total (each node of
//!   each expansion counts; "billion laughs" files stop at the budget);
//! - duplicate keys and merge keys are checked with one hash map per mapping.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::path::Path;

use libyaml_safer::{Event, EventData, Parser, ScalarStyle};
use zrelay_zfs::peer_text::peer;

use crate::error::ConfigError;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) col: usize,
}

impl Default for Mark {
    fn default() -> Self {
        Mark { line: 1, col: 1 }
    }
}

impl Mark {
    fn of(m: libyaml_safer::Mark) -> Mark {
        Mark {
            line: m.line as usize + 1,
            col: m.column as usize + 1,
        }
    }
}

/// A node and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) mark: Mark,
}

/// The node kinds.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Text; `plain` is false for quoted, block or `!!str` scalars.
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with scalar keys, in document order, without duplicates.
    Map(Vec<Entry>),
}

/// One mapping entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_mark: Mark,
    pub(crate) value: Node,
}

impl Node {
    /// Whether this is YAML null (`~`, `null`, or nothing).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The text of a non-null scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// What kind of node this is, for error messages.
    pub(crate) fn describe(&self) -> String {
        if self.is_null() {
            return "null".into();
        }
        match &self.value {
            Value::Scalar { text, .. } => format!("string \"{}\"", peer(text)),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// The deepest nesting of sequences and mappings accepted. zrepl's
/// configurations nest about 8 deep.
pub(crate) const MAX_DEPTH: usize = 64;

/// How many nodes aliases may copy into the tree, in total over the file.
/// A node copied by an alias counts each time it is copied, with all its
/// descendants. Ten thousand times more than any real configuration needs.
pub(crate) const MAX_ALIAS_NODES: usize = 100_000;

enum Frame {
    Seq {
        items: Vec<Node>,
        mark: Mark,
        anchor: Option<String>,
        /// Nodes in this subtree so far (itself included).
        size: usize,
    },
    Map {
        entries: Vec<Entry>,
        /// The keys of `entries` and the line each was first written on.
        seen: HashMap<String, usize>,
        key: Option<(String, Mark)>,
        merges: Vec<Node>,
        mark: Mark,
        anchor: Option<String>,
        size: usize,
    },
}

struct Builder<'a> {
    file: &'a Path,
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes (nodes in the subtree).
    anchors: HashMap<String, (Node, usize)>,
    /// Nodes copied by aliases so far.
    alias_nodes: usize,
    root: Option<Node>,
    docs: usize,
}

/// Parse `text` into a tree; `None` for a document without content.
pub(crate) fn parse(text: &str, file: &Path) -> Result<Option<Node>, ConfigError> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        root: None,
        docs: 0,
    };
    let mut parser = Parser::new();
    let mut input = text.as_bytes();
    parser.set_input_string(&mut input);
    loop {
        // libyaml-safer 0.3.0 panics on some malformed input (a tag followed
        // directly by `,` in a flow sequence: `[!exec, x]`, found by the
        // `config` fuzz target); a broken file is an error, not a crash.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse()))
            .map_err(|_| {
                syntax(
                    file,
                    Mark::default(),
                    "the YAML parser gave up on this file (often a tag such as `!x` \
                     directly followed by `,` or `]`); check its syntax",
                )
            })?;
        let ev = parsed.map_err(|e| {
            let mark = e.problem_mark().map(Mark::of).unwrap_or_default();
            let message = match (e.context(), e.context_mark()) {
                (Some(c), Some(m)) => format!("{} {c} at line {}", e.problem(), m.line + 1),
                _ => e.problem().to_string(),
            };
            syntax(file, mark, message)
        })?;
        if matches!(ev.data, EventData::StreamEnd) {
            break;
        }
        b.event(ev)?;
    }
    Ok(b.root)
}

fn syntax(file: &Path, mark: Mark, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        file: file.to_path_buf(),
        line: mark.line,
        column: mark.col,
        message: message.into(),
    }
}

impl Builder<'_> {
    fn err(&self, mark: Mark, message: impl Into<String>) -> ConfigError {
        syntax(self.file, mark, message)
    }

    fn event(&mut self, ev: Event) -> Result<(), ConfigError> {
        let mark = Mark::of(ev.start_mark);
        match ev.data {
            EventData::DocumentStart { .. } => {
                self.docs += 1;
                if self.docs > 1 {
                    return Err(self.err(mark, "only one YAML document per file is supported"));
                }
            }
            EventData::Scalar {
                anchor,
                tag,
                value,
                style,
                ..
            } => {
                let mut plain = style == ScalarStyle::Plain;
                if let Some(tag) = tag {
                    match tag.strip_prefix("tag:yaml.org,2002:") {
                        Some("str") => plain = false,
                        Some("int" | "bool" | "float" | "null") => {}
                        _ => {
                            return Err(
                                self.err(mark, format!("unsupported YAML tag {}", peer(&tag)))
                            )
                        }
                    }
                }
                let node = Node {
                    value: Value::Scalar { text: value, plain },
                    mark,
                };
                self.finish(node, 1, anchor)?;
            }
            EventData::Alias { anchor } => {
                let Some((node, size)) = self.anchors.get(&anchor) else {
                    return Err(self.err(
                        mark,
                        format!("alias *{} to an unknown anchor", peer(&anchor)),
                    ));
                };
                let size = *size;
                self.alias_nodes = self.alias_nodes.saturating_add(size);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(self.err(
                        mark,
                        format!(
                            "aliases expand to more than {MAX_ALIAS_NODES} nodes \
                             (alias *{} copies {size}); refusing to expand further",
                            peer(&anchor)
                        ),
                    ));
                }
                let node = node.clone();
                self.finish(node, size, None)?;
            }
            EventData::SequenceStart { anchor, tag, .. } => {
                self.check_collection_tag(mark, tag.as_deref(), "seq")?;
                self.check_depth(mark)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    mark,
                    anchor,
                    size: 1,
                })
            }
            EventData::MappingStart { anchor, tag, .. } => {
                self.check_collection_tag(mark, tag.as_deref(), "map")?;
                self.check_depth(mark)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    key: None,
                    merges: Vec::new(),
                    mark,
                    anchor,
                    size: 1,
                })
            }
            EventData::SequenceEnd => {
                if let Some(Frame::Seq {
                    items,
                    mark,
                    anchor,
                    size,
                }) = self.stack.pop()
                {
                    let node = Node {
                        value: Value::Seq(items),
                        mark,
                    };
                    self.finish(node, size, anchor)?;
                }
            }
            EventData::MappingEnd => {
                if let Some(Frame::Map {
                    mut entries,
                    mut seen,
                    merges,
                    mark,
                    anchor,
                    size,
                    ..
                }) = self.stack.pop()
                {
                    for merged in merges {
                        if let Value::Map(more) = merged.value {
                            for e in more {
                                if let Slot::Vacant(v) = seen.entry(e.key.clone()) {
                                    v.insert(e.key_mark.line);
                                    entries.push(e);
                                }
                            }
                        }
                    }
                    let node = Node {
                        value: Value::Map(entries),
                        mark,
                    };
                    self.finish(node, size, anchor)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Refuse a collection that would nest deeper than [`MAX_DEPTH`].
    fn check_depth(&self, mark: Mark) -> Result<(), ConfigError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.err(
                mark,
                format!("sequences and mappings nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn check_collection_tag(
        &self,
        mark: Mark,
        tag: Option<&str>,
        kind: &str,
    ) -> Result<(), ConfigError> {
        match tag {
            None => Ok(()),
            Some(t) if t.strip_prefix("tag:yaml.org,2002:") == Some(kind) => Ok(()),
            Some(t) => Err(self.err(mark, format!("unsupported YAML tag {}", peer(t)))),
        }
    }

    /// A complete node of `size` nodes: record its anchor and attach it to its parent.
    fn finish(
        &mut self,
        node: Node,
        size: usize,
        anchor: Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let file = self.file;
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match top {
            Frame::Seq {
                items, size: total, ..
            } => {
                *total = total.saturating_add(size);
                items.push(node)
            }
            Frame::Map {
                entries,
                seen,
                key,
                merges,
                size: total,
                ..
            } => match key.take() {
                None => match &node.value {
                    Value::Scalar { text, .. } => *key = Some((text.clone(), node.mark)),
                    _ => return Err(syntax(file, node.mark, "mapping keys must be scalars")),
                },
                Some((k, key_mark)) => {
                    *total = total.saturating_add(size).saturating_add(1);
                    if k == "<<" {
                        let ok = match &node.value {
                            Value::Map(_) => {
                                merges.push(node);
                                true
                            }
                            Value::Seq(items) => {
                                let all = items.iter().all(|n| matches!(n.value, Value::Map(_)));
                                if all {
                                    merges.extend(items.iter().cloned());
                                }
                                all
                            }
                            Value::Scalar { .. } => false,
                        };
                        if !ok {
                            return Err(syntax(
                                file,
                                key_mark,
                                "a merge key `<<` needs a mapping or a list of mappings",
                            ));
                        }
                        return Ok(());
                    }
                    match seen.entry(k.clone()) {
                        Slot::Occupied(prev) => {
                            let line = *prev.get();
                            return Err(syntax(
                                file,
                                key_mark,
                                format!(
                                    "duplicate key \"{}\" (first defined on line {line})",
                                    peer(&k)
                                ),
                            ));
                        }
                        Slot::Vacant(v) => {
                            v.insert(key_mark.line);
                        }
                    }
                    entries.push(Entry {
                        key: k,
                        key_mark,
                        value: node,
                    });
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(s: &str) -> Node {
        parse(s, Path::new("t.yml")).unwrap().unwrap()
    }

    #[test]
    fn marks_are_one_based() {
        let t = tree("a:\n  b: c\n");
        let Value::Map(e) = &t.value else { panic!() };
        assert_eq!(e[0].key_mark, Mark { line: 1, col: 1 });
        let Value::Map(inner) = &e[0].value.value else {
            panic!()
        };
        assert_eq!(inner[0].key_mark, Mark { line: 2, col: 3 });
    }

    #[test]
    fn zrepl_doc_style_flow_mappings() {
        // `}` at the key's indentation, quoted keys: zrepl's documented style.
        let t = tree("s:\n  c: {\n    \"a\" : \"p\",\n    \"b\": \"q\"\n  }\n");
        let c = t.get("s").unwrap().get("c").unwrap();
        assert_eq!(c.get("b").unwrap().as_str(), Some("q"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let t = tree("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n");
        let o = t.get("other").unwrap();
        assert_eq!(o.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(o.get("y").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n", Path::new("t.yml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.yml:3:1:"), "{s}");
        assert!(
            s.contains("duplicate key \"a\" (first defined on line 1)"),
            "{s}"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n", Path::new("t.yml")).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("t.yml:"), "{e}");
    }

    #[test]
    fn quoted_scalars_are_not_plain_and_null_is_recognised() {
        let t = tree("a: 'x'\nb:\nc: ~\n");
        assert!(matches!(
            t.get("a").unwrap().value,
            Value::Scalar { plain: false, .. }
        ));
        assert!(t.get("b").unwrap().is_null());
        assert!(t.get("c").unwrap().is_null());
        assert!(parse("", Path::new("t.yml")).unwrap().is_none());
        assert!(parse("a: 1\n---\nb: 2\n", Path::new("t.yml")).is_err());
    }
}
