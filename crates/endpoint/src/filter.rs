//! zrepl's `filesystems` filter: a map of pattern → bool. `pool/a<` matches
//! `pool/a` and its whole subtree; `pool/a` matches only itself. An exact
//! pattern beats a subtree pattern; among subtree patterns the longest
//! (most specific) wins. No match means "not included".

use serde::{Deserialize, Serialize};
use zrelay_zfs::name::NameError;
use zrelay_zfs::DatasetPath;

/// One rule of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// The dataset the rule is about.
    pub path: DatasetPath,
    /// Whether the rule covers the subtree (`<` suffix).
    pub subtree: bool,
    /// Include (`true`) or exclude (`false`).
    pub include: bool,
}

/// A filesystems filter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FsFilter {
    rules: Vec<FilterRule>,
}

/// Why a filter pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The pattern is not a dataset path (after removing `<`).
    #[error("invalid filesystems pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// Why the path is invalid.
        #[source]
        source: NameError,
    },
    /// The same pattern appears twice.
    #[error("duplicate filesystems pattern {0:?}")]
    Duplicate(String),
}

impl FsFilter {
    /// Build from `(pattern, include)` pairs, e.g. `("pool/data<", true)`.
    pub fn new<S: AsRef<str>>(entries: &[(S, bool)]) -> Result<FsFilter, FilterError> {
        let mut rules: Vec<FilterRule> = Vec::new();
        for (pattern, include) in entries {
            let pattern = pattern.as_ref();
            let (p, subtree) = match pattern.strip_suffix('<') {
                Some(p) => (p, true),
                None => (pattern, false),
            };
            let path = DatasetPath::parse(p).map_err(|source| FilterError::Pattern {
                pattern: pattern.to_string(),
                source,
            })?;
            if rules.iter().any(|r| r.path == path && r.subtree == subtree) {
                return Err(FilterError::Duplicate(pattern.to_string()));
            }
            rules.push(FilterRule {
                path,
                subtree,
                include: *include,
            });
        }
        Ok(FsFilter { rules })
    }

    /// A filter that includes `root` and its subtree.
    pub fn subtree(root: &DatasetPath) -> FsFilter {
        FsFilter {
            rules: vec![FilterRule {
                path: root.clone(),
                subtree: true,
                include: true,
            }],
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[FilterRule] {
        &self.rules
    }

    /// The rule that decides `path`, if any.
    pub fn deciding_rule(&self, path: &DatasetPath) -> Option<&FilterRule> {
        if let Some(exact) = self.rules.iter().find(|r| !r.subtree && &r.path == path) {
            return Some(exact);
        }
        self.rules
            .iter()
            .filter(|r| r.subtree && path.has_prefix(&r.path))
            .max_by_key(|r| r.path.depth())
    }

    /// Whether `path` passes the filter.
    pub fn matches(&self, path: &DatasetPath) -> bool {
        self.deciding_rule(path).is_some_and(|r| r.include)
    }

    /// The minimal set of roots whose recursive listings cover every
    /// dataset the filter can include.
    pub fn list_roots(&self) -> Vec<DatasetPath> {
        let mut roots: Vec<DatasetPath> = self
            .rules
            .iter()
            .filter(|r| r.include)
            .map(|r| r.path.clone())
            .collect();
        roots.sort_by(|a, b| a.depth().cmp(&b.depth()).then(a.as_str().cmp(b.as_str())));
        let mut minimal: Vec<DatasetPath> = Vec::new();
        for r in roots {
            if !minimal.iter().any(|m| r.has_prefix(m)) {
                minimal.push(r);
            }
        }
        minimal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DatasetPath {
        DatasetPath::parse(s).unwrap()
    }

    #[test]
    fn zrepl_semantics() {
        let f = FsFilter::new(&[
            ("pool/data<", true),
            ("pool/data/tmp<", false),
            ("pool/data/tmp/keep", true),
            ("pool/data/exact", false),
            ("other/one", true),
        ])
        .unwrap();
        assert!(f.matches(&p("pool/data")));
        assert!(f.matches(&p("pool/data/a/b")));
        assert!(!f.matches(&p("pool/data/tmp")));
        assert!(!f.matches(&p("pool/data/tmp/x")));
        assert!(f.matches(&p("pool/data/tmp/keep")));
        assert!(!f.matches(&p("pool/data/tmp/keep/child")));
        assert!(!f.matches(&p("pool/data/exact")));
        assert!(f.matches(&p("pool/data/exact/child")));
        assert!(
            !f.matches(&p("pool/database")),
            "a sibling prefix is no match"
        );
        assert!(!f.matches(&p("pool")));
        assert!(f.matches(&p("other/one")));
        assert!(!f.matches(&p("other/one/two")));
        assert_eq!(f.list_roots(), vec![p("other/one"), p("pool/data")]);
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = FsFilter::new(&[("pool/a@b<", true)]).unwrap_err();
        assert!(e.to_string().contains("\"pool/a@b<\""), "{e}");
        let e = FsFilter::new(&[("p/a", true), ("p/a", false)]).unwrap_err();
        assert_eq!(e, FilterError::Duplicate("p/a".into()));
    }
}
