//! The keep rules of zrepl's `pruning.keep_sender` / `keep_receiver` /
//! `keep`, as configured, and their validated, compiled form.
//!
//! Validation follows zrepl: `internal/pruning/keep_grid.go` (`newKeepGrid`:
//! non-empty regex, at least one interval, monotonically increasing interval
//! lengths unless every earlier interval is `keep=all`),
//! `pruning/retentiongrid/retentiongrid.go` (`makeBucketFromInterval`: keep
//! count 0 is not allowed), `pruning/keep_last_n.go` (`NewKeepLastN`: count
//! must be positive) and `config/retentiongrid.go` (factor and duration must
//! be positive).

use std::fmt;
use std::time::Duration;

use regex::Regex;

use crate::error::PruneError;

/// One keep rule. A snapshot is destroyed unless some rule keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeepRule {
    /// `type: not_replicated`: keep what the replication cursor has not
    /// passed yet (`pruning/keep_not_replicated.go`).
    NotReplicated {
        /// `keep_snapshot_at_cursor` (zrepl default true): also keep the
        /// snapshot the cursor points at.
        keep_snapshot_at_cursor: bool,
    },
    /// `type: last_n`: keep the `count` newest snapshots matching `regex`
    /// (all snapshots when `None`) (`pruning/keep_last_n.go`, 0.7 semantics).
    LastN {
        /// `count` (must be positive).
        count: usize,
        /// `regex`; snapshots not matching are not kept by this rule.
        regex: Option<String>,
    },
    /// `type: grid`: fit the snapshots matching `regex` into a retention grid
    /// anchored at the youngest of them (`pruning/keep_grid.go`,
    /// `pruning/retentiongrid/retentiongrid.go`).
    Grid {
        /// The grid's segments, youngest first.
        intervals: Vec<GridInterval>,
        /// `regex` (required); snapshots not matching are not kept by this rule.
        regex: String,
    },
    /// `type: regex`: keep the snapshots matching `regex` (or, with `negate`,
    /// those not matching) (`pruning/keep_regex.go`).
    Regex {
        /// `regex`.
        regex: String,
        /// `negate` (default false).
        negate: bool,
    },
}

/// One `N x DURATION(keep=K|all)` segment of a grid: `count` buckets of
/// `length`, each keeping its oldest `keep` snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GridInterval {
    /// How many buckets of this length.
    pub count: u32,
    /// The bucket length.
    pub length: Duration,
    /// Snapshots kept per bucket; `None` is `keep=all`.
    pub keep: Option<u32>,
}

/// A duration the way zrepl's config writes it: the largest of `w`, `d`,
/// `h`, `m` that divides it, else seconds (sub-second lengths, which zrepl
/// cannot parse, as `ms`/`ns`).
fn zrepl_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return if d.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ms", d.as_millis())
        } else {
            format!("{}ns", d.as_nanos())
        };
    }
    let s = d.as_secs();
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s > 0 && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

impl fmt::Display for GridInterval {
    /// `24x1h`, `1x1h(keep=all)`, `6x30d(keep=2)`: `(keep=1)` is zrepl's
    /// default and left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.count, zrepl_duration(self.length))?;
        match self.keep {
            None => write!(f, "(keep=all)"),
            Some(1) => Ok(()),
            Some(k) => write!(f, "(keep={k})"),
        }
    }
}

/// A whole grid as zrepl writes it: `1x1h(keep=all) | 24x1h | 35x1d`.
pub fn format_grid(intervals: &[GridInterval]) -> String {
    intervals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

impl fmt::Display for KeepRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepRule::NotReplicated {
                keep_snapshot_at_cursor,
            } => write!(
                f,
                "not_replicated (keep_snapshot_at_cursor={keep_snapshot_at_cursor})"
            ),
            KeepRule::LastN { count, regex: None } => write!(f, "last_n {count}"),
            KeepRule::LastN {
                count,
                regex: Some(r),
            } => write!(f, "last_n {count} regex {r:?}"),
            KeepRule::Grid { intervals, regex } => {
                write!(f, "grid {} regex {regex:?}", format_grid(intervals))
            }
            KeepRule::Regex { regex, negate } => {
                write!(f, "regex {regex:?}{}", if *negate { " negate" } else { "" })
            }
        }
    }
}

/// A validated rule with its regex compiled.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    NotReplicated {
        keep_at_cursor: bool,
    },
    LastN {
        count: usize,
        re: Option<Regex>,
    },
    Grid {
        intervals: Vec<GridInterval>,
        re: Regex,
    },
    Regex {
        re: Regex,
        negate: bool,
    },
}

fn compile_regex(index: usize, rule: &KeepRule, re: &str) -> Result<Regex, PruneError> {
    Regex::new(re).map_err(|e| PruneError::InvalidRule {
        index,
        rule: rule.to_string(),
        reason: format!("invalid regex {re:?}: {e}"),
    })
}

/// Why a retention grid is malformed (zrepl's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum GridFault {
    #[error("retention grid must specify at least one interval")]
    Empty,
    #[error("interval {0}: contains factor <= 0")]
    ZeroCount(GridInterval),
    #[error("interval {0}: duration must be positive")]
    ZeroLength(GridInterval),
    #[error("interval {0}: keep count 0 is not allowed")]
    KeepZero(GridInterval),
    #[error("retention grid interval length must be monotonically increasing")]
    Shrinking,
}

fn check_grid(intervals: &[GridInterval]) -> Result<(), GridFault> {
    if intervals.is_empty() {
        return Err(GridFault::Empty);
    }
    let mut last = Duration::ZERO;
    for (i, g) in intervals.iter().enumerate() {
        if g.count == 0 {
            return Err(GridFault::ZeroCount(*g));
        }
        if g.length.is_zero() {
            return Err(GridFault::ZeroLength(*g));
        }
        if g.keep == Some(0) {
            return Err(GridFault::KeepZero(*g));
        }
        if g.length < last && !intervals[..i].iter().all(|p| p.keep.is_none()) {
            return Err(GridFault::Shrinking);
        }
        last = g.length;
    }
    Ok(())
}

/// Validate and compile `rules`. The first invalid rule is the error.
pub(crate) fn compile(rules: &[KeepRule]) -> Result<Vec<Compiled>, PruneError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let invalid = |reason: String| PruneError::InvalidRule {
                index,
                rule: rule.to_string(),
                reason,
            };
            Ok(match rule {
                KeepRule::NotReplicated {
                    keep_snapshot_at_cursor,
                } => Compiled::NotReplicated {
                    keep_at_cursor: *keep_snapshot_at_cursor,
                },
                KeepRule::LastN { count, regex } => {
                    if *count == 0 {
                        return Err(invalid(
                            "must specify positive number as 'keep last count', got 0".into(),
                        ));
                    }
                    let re = match regex {
                        Some(r) => Some(compile_regex(index, rule, r)?),
                        None => None,
                    };
                    Compiled::LastN { count: *count, re }
                }
                KeepRule::Grid { intervals, regex } => {
                    if regex.is_empty() {
                        return Err(invalid("Regex must not be empty".into()));
                    }
                    check_grid(intervals).map_err(|e| invalid(e.to_string()))?;
                    Compiled::Grid {
                        intervals: intervals.clone(),
                        re: compile_regex(index, rule, regex)?,
                    }
                }
                KeepRule::Regex { regex, negate } => Compiled::Regex {
                    re: compile_regex(index, rule, regex)?,
                    negate: *negate,
                },
            })
        })
        .collect()
}

/// Keep rules checked the way zrepl checks them when it builds them
/// (invalid regexes, `count: 0`, malformed grids) and compiled, once: the
/// configuration holds these, and pruning runs evaluate them without
/// compiling again. Two are equal when their rules are. Derefs to the rules
/// as written.
#[derive(Debug, Clone, Default)]
pub struct KeepRules {
    rules: Vec<KeepRule>,
    compiled: Vec<Compiled>,
}

impl KeepRules {
    /// Check and compile `rules`.
    ///
    /// # Errors
    /// The first invalid rule, by index.
    pub fn new(rules: Vec<KeepRule>) -> Result<KeepRules, PruneError> {
        let compiled = compile(&rules)?;
        Ok(KeepRules { rules, compiled })
    }

    /// The compiled rules.
    pub(crate) fn compiled(&self) -> &[Compiled] {
        &self.compiled
    }

    /// Whether some rule can keep a snapshot named `name` some of the time
    /// (`not_replicated` and `last_n` without a regex always can; the
    /// others when their regex says so).
    pub fn may_keep(&self, name: &str) -> bool {
        self.compiled.iter().any(|c| match c {
            Compiled::NotReplicated { .. } => true,
            Compiled::LastN { re, .. } => re.as_ref().is_none_or(|r| r.is_match(name)),
            Compiled::Grid { re, .. } => re.is_match(name),
            Compiled::Regex { re, negate } => re.is_match(name) != *negate,
        })
    }
}

impl std::ops::Deref for KeepRules {
    type Target = [KeepRule];
    fn deref(&self) -> &[KeepRule] {
        &self.rules
    }
}

impl PartialEq for KeepRules {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

impl Eq for KeepRules {}

/// Check `rules` as [`KeepRules::new`] does, without keeping them.
///
/// # Errors
/// The first invalid rule, by index.
pub fn check_rules(rules: &[KeepRule]) -> Result<(), PruneError> {
    compile(rules).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(count: u32, secs: u64, keep: Option<u32>) -> GridInterval {
        GridInterval {
            count,
            length: Duration::from_secs(secs),
            keep,
        }
    }

    #[test]
    fn grid_displays_as_zrepl_writes_it() {
        let grid = [
            g(1, 3600, None),
            g(24, 3600, Some(1)),
            g(35, 86_400, Some(1)),
            g(6, 30 * 86_400, Some(2)),
            g(2, 604_800, Some(1)),
            g(3, 90, Some(1)),
        ];
        assert_eq!(
            format_grid(&grid),
            "1x1h(keep=all) | 24x1h | 35x1d | 6x30d(keep=2) | 2x1w | 3x90s"
        );
    }

    #[test]
    fn invalid_rules_are_errors() {
        let bad = [
            KeepRule::Regex {
                regex: "(".into(),
                negate: false,
            },
            KeepRule::LastN {
                count: 0,
                regex: None,
            },
            KeepRule::LastN {
                count: 1,
                regex: Some("[".into()),
            },
            KeepRule::Grid {
                intervals: vec![],
                regex: ".*".into(),
            },
            KeepRule::Grid {
                intervals: vec![g(1, 60, Some(0))],
                regex: ".*".into(),
            },
            KeepRule::Grid {
                intervals: vec![g(1, 60, Some(1))],
                regex: String::new(),
            },
            KeepRule::Grid {
                intervals: vec![g(1, 3600, Some(1)), g(1, 60, Some(1))],
                regex: ".*".into(),
            },
        ];
        for rule in bad {
            assert!(check_rules(std::slice::from_ref(&rule)).is_err(), "{rule}");
        }
        // shorter intervals after keep=all ones are fine (keep_grid.go)
        let ok = KeepRule::Grid {
            intervals: vec![g(1, 3600, None), g(4, 60, Some(1)), g(4, 3600, Some(1))],
            regex: ".*".into(),
        };
        check_rules(&[ok]).unwrap();
    }
}
