//! zrepl's `filesystems` filter: a map of pattern → bool. `pool/a<` matches
//! `pool/a` and its whole subtree; `pool/a` matches only itself; `<` alone
//! matches every dataset of every pool. An exact pattern beats a subtree
//! pattern; among subtree patterns the longest (most specific) wins, so `<`
//! loses to every other rule. No match means "not included".

use serde::{Deserialize, Serialize};
use zrelay_zfs::name::NameError;
use zrelay_zfs::{DatasetPath, Zfs, ZfsError};

/// What a rule is about: one dataset, or every pool (the empty path of
/// zrepl's root pattern `<`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RulePath {
    /// The root above all pools (only as a subtree rule: `<`).
    AllPools,
    /// One dataset.
    Dataset(DatasetPath),
}

impl RulePath {
    /// The path as written in a pattern (without `<`): empty for [`RulePath::AllPools`].
    pub fn as_str(&self) -> &str {
        match self {
            RulePath::AllPools => "",
            RulePath::Dataset(d) => d.as_str(),
        }
    }

    /// The dataset, unless this is the root.
    pub fn dataset(&self) -> Option<&DatasetPath> {
        match self {
            RulePath::AllPools => None,
            RulePath::Dataset(d) => Some(d),
        }
    }

    /// Whether `path` is this path or below it.
    pub fn covers(&self, path: &DatasetPath) -> bool {
        match self {
            RulePath::AllPools => true,
            RulePath::Dataset(d) => path.has_prefix(d),
        }
    }

    /// Components of the path: 0 for the root, 1 for a pool.
    pub fn depth(&self) -> usize {
        self.dataset().map_or(0, DatasetPath::depth)
    }
}

impl std::fmt::Display for RulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RulePath> for String {
    fn from(p: RulePath) -> String {
        p.as_str().to_string()
    }
}

impl TryFrom<String> for RulePath {
    type Error = NameError;
    fn try_from(s: String) -> Result<RulePath, NameError> {
        if s.is_empty() {
            return Ok(RulePath::AllPools);
        }
        DatasetPath::parse(&s).map(RulePath::Dataset)
    }
}

/// One rule of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// The dataset the rule is about ([`RulePath::AllPools`] only with `subtree`).
    pub path: RulePath,
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

/// What has to be listed to see every dataset a filter can include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRoots {
    /// Every pool (an including `<` rule): see [`FsFilter::roots_on`].
    AllPools,
    /// These datasets, recursively; none of them is below another.
    Datasets(Vec<DatasetPath>),
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
    /// Build from `(pattern, include)` pairs, e.g. `("pool/data<", true)`,
    /// or `("<", true)` for every dataset of every pool.
    pub fn new<S: AsRef<str>>(entries: &[(S, bool)]) -> Result<FsFilter, FilterError> {
        let mut rules: Vec<FilterRule> = Vec::new();
        // Linear duplicate check: a config may list very many patterns.
        let mut seen = std::collections::HashSet::new();
        for (pattern, include) in entries {
            let pattern = pattern.as_ref();
            let (p, subtree) = match pattern.strip_suffix('<') {
                Some(p) => (p, true),
                None => (pattern, false),
            };
            let path = if p.is_empty() && subtree {
                RulePath::AllPools
            } else {
                let d = DatasetPath::parse(p).map_err(|source| FilterError::Pattern {
                    pattern: pattern.to_string(),
                    source,
                })?;
                RulePath::Dataset(d)
            };
            if !seen.insert((path.clone(), subtree)) {
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
                path: RulePath::Dataset(root.clone()),
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
        if let Some(exact) = self
            .rules
            .iter()
            .find(|r| !r.subtree && r.path.dataset() == Some(path))
        {
            return Some(exact);
        }
        self.rules
            .iter()
            .filter(|r| r.subtree && r.path.covers(path))
            .max_by_key(|r| r.path.depth())
    }

    /// Whether `path` passes the filter.
    pub fn matches(&self, path: &DatasetPath) -> bool {
        self.deciding_rule(path).is_some_and(|r| r.include)
    }

    /// What recursive listings cover every dataset the filter can include:
    /// every pool when an including `<` rule exists, else the minimal set of
    /// datasets named by including rules.
    pub fn list_roots(&self) -> ListRoots {
        let mut roots: Vec<DatasetPath> = Vec::new();
        for r in self.rules.iter().filter(|r| r.include) {
            match &r.path {
                RulePath::AllPools => return ListRoots::AllPools,
                RulePath::Dataset(d) => roots.push(d.clone()),
            }
        }
        roots.sort_by(|a, b| a.depth().cmp(&b.depth()).then(a.as_str().cmp(b.as_str())));
        let mut minimal: Vec<DatasetPath> = Vec::new();
        for r in roots {
            if !minimal.iter().any(|m| r.has_prefix(m)) {
                minimal.push(r);
            }
        }
        ListRoots::Datasets(minimal)
    }

    /// [`FsFilter::list_roots`] made concrete on `zfs`: for "all pools", the
    /// pools of [`Zfs::pools`], without those the filter excludes entirely
    /// (`pool<: false` and no including rule below it).
    pub async fn roots_on(&self, zfs: &dyn Zfs) -> Result<Vec<DatasetPath>, ZfsError> {
        match self.list_roots() {
            ListRoots::Datasets(roots) => Ok(roots),
            ListRoots::AllPools => {
                let mut pools = zfs.pools().await?;
                pools.retain(|p| !self.excludes_whole(p));
                Ok(pools)
            }
        }
    }

    /// Whether no dataset in `root`'s subtree can pass: a `root<` exclusion
    /// and no including rule inside.
    fn excludes_whole(&self, root: &DatasetPath) -> bool {
        let own = self
            .rules
            .iter()
            .any(|r| r.subtree && !r.include && r.path.dataset() == Some(root));
        own && !self
            .rules
            .iter()
            .any(|r| r.include && r.path.dataset().is_some_and(|d| d.has_prefix(root)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zrelay_fake::FakeZfs;

    fn p(s: &str) -> DatasetPath {
        DatasetPath::parse(s).unwrap()
    }

    fn roots(v: &[&str]) -> ListRoots {
        ListRoots::Datasets(v.iter().map(|s| p(s)).collect())
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
        assert_eq!(f.list_roots(), roots(&["other/one", "pool/data"]));
    }

    /// `(filter, [(dataset, expected)], expected roots)`: the root pattern is
    /// the least specific rule of all.
    #[test]
    fn root_pattern_table() {
        type Case<'a> = (
            &'a [(&'a str, bool)],
            &'a [(&'a str, bool)],
            Option<&'a [&'a str]>,
        );
        let cases: &[Case<'_>] = &[
            (
                &[("<", true)],
                &[("pool", true), ("pool/a/b", true), ("other", true)],
                None,
            ),
            (
                &[("<", true), ("pool/tmp<", false)],
                &[
                    ("pool", true),
                    ("pool/a", true),
                    ("pool/tmp", false),
                    ("pool/tmp/x", false),
                    ("pool/tmpfoo", true),
                    ("other/x", true),
                ],
                None,
            ),
            (
                &[("pool/tmp<", false), ("pool/tmp/keep", true), ("<", true)],
                &[("pool/tmp/keep", true), ("pool/tmp/keep/c", false)],
                None,
            ),
            (
                &[("<", true), ("pool", false), ("other<", false)],
                &[
                    ("pool", false),
                    ("pool/a", true),
                    ("other", false),
                    ("other/a", false),
                ],
                None,
            ),
            (
                &[("<", false), ("pool/a<", true)],
                &[("pool", false), ("pool/a/b", true), ("other", false)],
                Some(&["pool/a"]),
            ),
            (&[("<", false)], &[("pool", false)], Some(&[])),
        ];
        for (rules, expect, want_roots) in cases {
            let f = FsFilter::new(rules).unwrap();
            for (ds, want) in *expect {
                assert_eq!(f.matches(&p(ds)), *want, "{rules:?} on {ds}");
            }
            let want_roots = match want_roots {
                None => ListRoots::AllPools,
                Some(r) => roots(r),
            };
            assert_eq!(f.list_roots(), want_roots, "{rules:?}");
        }
    }

    #[test]
    fn root_pattern_is_a_rule_like_the_others() {
        let f = FsFilter::new(&[("<", true), ("pool/x<", false)]).unwrap();
        let root = &f.rules()[0];
        assert_eq!((&root.path, root.subtree), (&RulePath::AllPools, true));
        assert_eq!(format!("{}<", root.path.as_str()), "<");
        assert_eq!(
            f.deciding_rule(&p("pool/x/y")).unwrap().path.as_str(),
            "pool/x"
        );
        let e = FsFilter::new(&[("<", true), ("<", false)]).unwrap_err();
        assert_eq!(e, FilterError::Duplicate("<".into()));
        for bad in ["", "<<", "pool<<"] {
            assert!(FsFilter::new(&[(bad, true)]).is_err(), "{bad:?} accepted");
        }
        // serde goes through the string form: the root is the empty path
        for rp in [RulePath::AllPools, RulePath::Dataset(p("pool/a"))] {
            let s: String = rp.clone().into();
            assert_eq!(RulePath::try_from(s).unwrap(), rp);
        }
    }

    #[tokio::test]
    async fn roots_on_lists_pools_not_excluded_entirely() {
        let zfs = FakeZfs::new();
        for pool in ["tank", "scratch", "backup"] {
            zfs.add_pool(pool).unwrap();
        }
        let f = FsFilter::new(&[
            ("<", true),
            ("scratch<", false),
            ("backup<", false),
            ("backup/keep", true),
        ])
        .unwrap();
        let got = f.roots_on(&zfs).await.unwrap();
        assert_eq!(got, vec![p("backup"), p("tank")]);
        let named = FsFilter::new(&[("tank/a<", true)]).unwrap();
        assert_eq!(named.roots_on(&zfs).await.unwrap(), vec![p("tank/a")]);
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = FsFilter::new(&[("pool/a@b<", true)]).unwrap_err();
        assert!(e.to_string().contains("\"pool/a@b<\""), "{e}");
        let e = FsFilter::new(&[("p/a", true), ("p/a", false)]).unwrap_err();
        assert_eq!(e, FilterError::Duplicate("p/a".into()));
    }
}
