//! Phase 1: a serde `Deserializer` over the marked YAML tree.
//!
//! Why not serde's own tagged-enum support: `#[serde(tag = "type")]` buffers
//! the whole mapping before choosing the variant, and errors raised while
//! reading the buffer have no position. Instead the raw enums are plain
//! (externally tagged) serde enums named [`TAGGED`], and this deserializer
//! reads a mapping with a `type` key as such an enum: `type` picks the
//! variant, the other keys are the variant's struct (with
//! `deny_unknown_fields`). Any other enum reads from a scalar (its variant
//! name). Every error carries the key path and position of the
//! node it is about.
//!
//! Scalars are typed by what the target asks for (as go-yaml does): any
//! scalar reads as a string; plain `true`/`false` (and YAML 1.1's
//! `yes`/`no`/`on`/`off`, which zrepl's go-yaml accepts) as booleans; plain
//! decimal integers as integers. Null reads as `None`, or as an empty
//! sequence or mapping.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;

use zrelay_zfs::peer_text::peer;

use crate::error::KeyPath;
use crate::goyaml::go_int;
use crate::yaml::{Entry, Mark, Node, Value};

/// The serde name of every enum chosen by a `type` key
/// (`#[serde(rename = "type-tagged")]`); other enums are plain strings.
pub(crate) const TAGGED: &str = "type-tagged";

/// A phase-1 error: a message and where it happened.
#[derive(Debug)]
pub(crate) struct DeError {
    pub(crate) msg: String,
    pub(crate) at: Option<(KeyPath, Mark)>,
}

impl DeError {
    fn new(msg: impl Into<String>) -> DeError {
        DeError {
            msg: msg.into(),
            at: None,
        }
    }

    /// Attach a position unless a deeper one is already attached.
    fn at(mut self, path: &KeyPath, mark: Mark) -> DeError {
        if self.at.is_none() {
            self.at = Some((path.clone(), mark));
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

fn one_of(expected: &[&str]) -> String {
    expected.join(", ")
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {unexp}"))
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("invalid value {unexp}, expected {exp}"))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(format!(
            "unknown variant \"{}\", expected one of {}",
            peer(variant),
            one_of(expected)
        ))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        if expected.is_empty() {
            DeError::new(format!(
                "unknown key \"{}\": no keys are allowed here",
                peer(field)
            ))
        } else {
            DeError::new(format!(
                "unknown key \"{}\", expected one of {}",
                peer(field),
                one_of(expected)
            ))
        }
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("missing required key {field:?}"))
    }
    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(format!("duplicate key {field:?}"))
    }
}

/// Deserialize `T` from a document root (`None`: an empty document).
pub(crate) fn from_root<T: DeserializeOwned>(root: Option<&Node>) -> Result<T, DeError> {
    let empty = Node {
        value: Value::Map(Vec::new()),
        mark: Mark::default(),
    };
    let node = root.unwrap_or(&empty);
    T::deserialize(De {
        node,
        path: KeyPath::root(),
        mark: node.mark,
        skip_type: false,
    })
}

/// YAML 1.1 booleans, as go-yaml v2 (zrepl's parser) resolves them.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "y" | "Y" | "on" | "On" | "ON" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "n" | "N" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// The deserializer for one node.
struct De<'a> {
    node: &'a Node,
    path: KeyPath,
    /// Where errors about this node are reported (its key, if it has one).
    mark: Mark,
    /// Hide the `type` key (the node is a tagged enum's content).
    skip_type: bool,
}

impl<'a> De<'a> {
    fn mismatch(&self, what: &str) -> DeError {
        DeError::new(format!("expected {what}, found {}", self.node.describe()))
            .at(&self.path, self.mark)
    }

    /// The text of a plain, non-null scalar.
    fn plain(&self) -> Option<&'a str> {
        match &self.node.value {
            Value::Scalar { text, plain: true } if !self.node.is_null() => Some(text),
            _ => None,
        }
    }

    fn map_access(&self) -> MapAcc<'a> {
        let entries: &'a [Entry] = match &self.node.value {
            Value::Map(e) => e,
            _ => &[],
        };
        MapAcc {
            iter: entries.iter(),
            path: self.path.clone(),
            skip_type: self.skip_type,
            current: None,
        }
    }
}

macro_rules! ints {
    ($($m:ident)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let (path, mark) = (self.path.clone(), self.mark);
            let Some(text) = self.plain() else {
                return Err(self.mismatch("an integer"));
            };
            let v = go_int(text).map_err(|m| DeError::new(m).at(&path, mark))?;
            let r = if let Ok(i) = i64::try_from(v) {
                visitor.visit_i64(i)
            } else if let Ok(u) = u64::try_from(v) {
                visitor.visit_u64(u)
            } else {
                return Err(self.mismatch("an integer"));
            };
            r.map_err(|e: DeError| e.at(&path, mark))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (path, mark) = (self.path.clone(), self.mark);
        let r = match &self.node.value {
            Value::Map(_) => visitor.visit_map(self.map_access()),
            Value::Seq(items) => visitor.visit_seq(SeqAcc::new(items, &self.path)),
            Value::Scalar { .. } if self.node.is_null() => visitor.visit_unit(),
            Value::Scalar { text, plain } => {
                if *plain && matches!(text.as_str(), "true" | "True" | "TRUE") {
                    visitor.visit_bool(true)
                } else if *plain && matches!(text.as_str(), "false" | "False" | "FALSE") {
                    visitor.visit_bool(false)
                } else if let (true, Ok(i)) = (*plain, text.parse::<i64>()) {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_str(text)
                }
            }
        };
        r.map_err(|e: DeError| e.at(&path, mark))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.plain().and_then(parse_bool) {
            Some(b) => visitor
                .visit_bool(b)
                .map_err(|e: DeError| e.at(&self.path, self.mark)),
            None => Err(self.mismatch("a boolean (true or false)")),
        }
    }

    ints!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
          deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.plain().and_then(|t| t.parse::<f64>().ok()) {
            Some(f) => visitor
                .visit_f64(f)
                .map_err(|e: DeError| e.at(&self.path, self.mark)),
            None => Err(self.mismatch("a number")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.node.is_null() => visitor
                .visit_str(text)
                .map_err(|e: DeError| e.at(&self.path, self.mark)),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.mismatch("bytes"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.mismatch("bytes"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(self.mismatch("null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(SeqAcc::new(items, &self.path)),
            _ if self.node.is_null() => visitor.visit_seq(SeqAcc::new(&[], &self.path)),
            _ => return Err(self.mismatch("a sequence")),
        };
        r.map_err(|e: DeError| e.at(&self.path, self.mark))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if !matches!(self.node.value, Value::Map(_)) && !self.node.is_null() {
            return Err(self.mismatch("a mapping"));
        }
        visitor
            .visit_map(self.map_access())
            .map_err(|e: DeError| e.at(&self.path, self.mark))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (path, mark) = (self.path.clone(), self.mark);
        let r = match &self.node.value {
            Value::Map(entries) if name == TAGGED => {
                let Some(tag) = entries.iter().find(|e| e.key == "type") else {
                    return Err(DeError::new("missing required key \"type\"").at(&path, mark));
                };
                visitor.visit_enum(EnumAcc {
                    de: self,
                    tag: Some(tag),
                })
            }
            _ if name == TAGGED => return Err(self.mismatch("a mapping with a `type` key")),
            Value::Scalar { .. } if !self.node.is_null() => visitor.visit_enum(EnumAcc {
                de: self,
                tag: None,
            }),
            _ => return Err(self.mismatch(&format!("one of {}", one_of(variants)))),
        };
        r.map_err(|e: DeError| e.at(&path, mark))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// A mapping key (or a `type` value, or a scalar enum): always a string.
struct KeyDe<'a> {
    key: &'a str,
    path: KeyPath,
    mark: Mark,
}

impl<'de> de::Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor
            .visit_str(self.key)
            .map_err(|e: DeError| e.at(&self.path, self.mark))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct MapAcc<'a> {
    iter: std::slice::Iter<'a, Entry>,
    path: KeyPath,
    skip_type: bool,
    current: Option<&'a Entry>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for e in self.iter.by_ref() {
            if self.skip_type && e.key == "type" {
                continue;
            }
            self.current = Some(e);
            return seed
                .deserialize(KeyDe {
                    key: &e.key,
                    path: self.path.k(&e.key),
                    mark: e.key_mark,
                })
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let e = self
            .current
            .take()
            .ok_or_else(|| DeError::new("value requested before its key"))?;
        seed.deserialize(De {
            node: &e.value,
            path: self.path.k(&e.key),
            mark: e.key_mark,
            skip_type: false,
        })
    }
}

struct SeqAcc<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: KeyPath,
    len: usize,
}

impl<'a> SeqAcc<'a> {
    fn new(items: &'a [Node], path: &KeyPath) -> SeqAcc<'a> {
        SeqAcc {
            iter: items.iter().enumerate(),
            path: path.clone(),
            len: items.len(),
        }
    }
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(De {
                    node,
                    path: self.path.i(i),
                    mark: node.mark,
                    skip_type: false,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}

/// An enum: from a scalar (`tag: None`) or from a mapping's `type` key.
struct EnumAcc<'a> {
    de: De<'a>,
    tag: Option<&'a Entry>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAcc<'a> {
    type Error = DeError;
    type Variant = EnumAcc<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), DeError> {
        let key = match self.tag {
            None => KeyDe {
                key: self.de.node.as_str().unwrap_or_default(),
                path: self.de.path.clone(),
                mark: self.de.mark,
            },
            Some(tag) => {
                let path = self.de.path.k("type");
                let Some(text) = tag.value.as_str() else {
                    let found = tag.value.describe();
                    return Err(DeError::new(format!("expected a type name, found {found}"))
                        .at(&path, tag.key_mark));
                };
                KeyDe {
                    key: text,
                    path,
                    mark: tag.key_mark,
                }
            }
        };
        let v = seed.deserialize(key)?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAcc<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        let (Some(tag), Value::Map(entries)) = (self.tag, &self.de.node.value) else {
            return Ok(());
        };
        match entries.iter().find(|e| e.key != "type") {
            None => Ok(()),
            Some(e) => {
                let t = tag.value.as_str().unwrap_or_default();
                Err(DeError::new(format!(
                    "unknown key {:?}: type {t:?} takes no keys besides `type`",
                    e.key
                ))
                .at(&self.de.path.k(&e.key), e.key_mark))
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        if self.tag.is_none() {
            return Err(self.de.mismatch("a mapping with a `type` key"));
        }
        seed.deserialize(De {
            skip_type: true,
            ..self.de
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.de.mismatch("a mapping with a `type` key"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if self.tag.is_none() {
            return Err(self.de.mismatch("a mapping with a `type` key"));
        }
        de::Deserializer::deserialize_struct(
            De {
                skip_type: true,
                ..self.de
            },
            "",
            fields,
            visitor,
        )
    }
}
