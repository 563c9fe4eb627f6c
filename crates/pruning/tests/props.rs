//! Property tests of the keep rules.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use zrelay_pruning::{evaluate, Cursor, GridInterval, KeepRule, Snap};

/// Up to 40 snapshots named `a<i>` or `b<i>`, creation in a small range (so
/// ties happen), distinct createtxgs.
fn snaps() -> impl Strategy<Value = Vec<Snap>> {
    prop::collection::vec((any::<bool>(), 0i64..400), 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (a, creation))| Snap {
                name: format!("{}{i}", if a { "a" } else { "b" }),
                guid: 10_000 + i as u64,
                createtxg: 1 + i as u64,
                creation,
            })
            .collect()
    })
}

fn interval() -> impl Strategy<Value = GridInterval> {
    (1u32..5, 1u64..60, prop::option::weighted(0.8, 1u32..4)).prop_map(|(count, secs, keep)| {
        GridInterval {
            count,
            length: Duration::from_secs(secs),
            keep,
        }
    })
}

/// A valid grid: lengths non-decreasing.
fn grid_intervals() -> impl Strategy<Value = Vec<GridInterval>> {
    prop::collection::vec(interval(), 1..4).prop_map(|mut v| {
        v.sort_by_key(|g| g.length);
        v
    })
}

fn regex() -> impl Strategy<Value = String> {
    prop::sample::select(vec![".*", "^a", "^b", "1"]).prop_map(String::from)
}

fn rule() -> impl Strategy<Value = KeepRule> {
    prop_oneof![
        (1usize..8, prop::option::of(regex()))
            .prop_map(|(count, regex)| KeepRule::LastN { count, regex }),
        (grid_intervals(), regex())
            .prop_map(|(intervals, regex)| KeepRule::Grid { intervals, regex }),
        (regex(), any::<bool>()).prop_map(|(regex, negate)| KeepRule::Regex { regex, negate }),
        any::<bool>().prop_map(|k| KeepRule::NotReplicated {
            keep_snapshot_at_cursor: k
        }),
    ]
}

fn key(s: &Snap) -> (i64, u64, String) {
    (s.creation, s.createtxg, s.name.clone())
}

/// `last_n`'s order: `createtxg` first (creation dates can go back with the clock).
fn last_n_key(s: &Snap) -> (u64, i64, String) {
    (s.createtxg, s.creation, s.name.clone())
}

fn kept(rules: &[KeepRule], snaps: &[Snap], cursor: Option<&Cursor>) -> BTreeSet<String> {
    evaluate(rules, snaps, cursor)
        .unwrap()
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| d.name)
        .collect()
}

fn matches(re: &str, name: &str) -> bool {
    regex::Regex::new(re).unwrap().is_match(name)
}

proptest! {
    #[test]
    fn last_n_keeps_exactly_the_newest_matching(snaps in snaps(), n in 1usize..10, re in prop::option::of(regex())) {
        let k = kept(&[KeepRule::LastN { count: n, regex: re.clone() }], &snaps, None);
        let matching: Vec<&Snap> = snaps
            .iter()
            .filter(|s| re.as_deref().is_none_or(|r| matches(r, &s.name)))
            .collect();
        prop_assert_eq!(k.len(), n.min(matching.len()));
        let oldest_kept = matching.iter().filter(|s| k.contains(&s.name)).map(|s| last_n_key(s)).min();
        for s in &snaps {
            let is_match = matching.iter().any(|m| m.name == s.name);
            if !is_match {
                prop_assert!(!k.contains(&s.name), "non-matching {} kept", s.name);
            } else if !k.contains(&s.name) {
                prop_assert!(Some(last_n_key(s)) < oldest_kept, "{} is newer than a kept one", s.name);
            }
        }
    }

    #[test]
    fn grid_keeps_at_most_its_capacity_and_nothing_outside(snaps in snaps(), intervals in grid_intervals(), re in regex()) {
        let rule = KeepRule::Grid { intervals: intervals.clone(), regex: re.clone() };
        let k = kept(&[rule], &snaps, None);
        let matching: Vec<&Snap> = snaps.iter().filter(|s| matches(&re, &s.name)).collect();
        let total: i64 = intervals.iter().map(|g| g.length.as_secs() as i64 * i64::from(g.count)).sum();
        let now = matching.iter().map(|s| s.creation).max();
        // per segment: count * keep, or every snapshot in its span for keep=all
        let mut capacity = 0usize;
        let mut start = 0i64;
        for g in &intervals {
            let span = g.length.as_secs() as i64 * i64::from(g.count);
            capacity += match g.keep {
                Some(keep) => (g.count * keep) as usize,
                None => matching
                    .iter()
                    .filter(|s| (start..start + span).contains(&(now.unwrap() - s.creation)))
                    .count(),
            };
            start += span;
        }
        prop_assert!(k.len() <= capacity, "kept {} > capacity {}", k.len(), capacity);
        for s in &snaps {
            if k.contains(&s.name) {
                prop_assert!(matches(&re, &s.name), "non-matching {} kept", s.name);
                prop_assert!(now.unwrap() - s.creation < total, "{} is outside the grid", s.name);
            }
        }
    }

    #[test]
    fn first_bucket_keeps_something_and_keep_all_keeps_the_youngest(snaps in snaps(), intervals in grid_intervals(), re in regex()) {
        let rule = KeepRule::Grid { intervals: intervals.clone(), regex: re.clone() };
        let k = kept(&[rule], &snaps, None);
        let matching: Vec<&Snap> = snaps.iter().filter(|s| matches(&re, &s.name)).collect();
        if let Some(youngest) = matching.iter().max_by_key(|s| key(s)) {
            let len0 = intervals[0].length.as_secs() as i64;
            let in_bucket0: Vec<&&Snap> = matching
                .iter()
                .filter(|s| youngest.creation - s.creation < len0)
                .collect();
            let kept0 = in_bucket0.iter().filter(|s| k.contains(&s.name)).count();
            let want = intervals[0].keep.map_or(in_bucket0.len(), |n| in_bucket0.len().min(n as usize));
            prop_assert_eq!(kept0, want);
            // the oldest of the bucket survive
            let newest_kept = in_bucket0.iter().filter(|s| k.contains(&s.name)).map(|s| key(s)).max();
            for s in in_bucket0.iter().filter(|s| !k.contains(&s.name)) {
                prop_assert!(Some(key(s)) > newest_kept, "{} dropped, an older one kept", s.name);
            }
            prop_assert!(kept0 >= 1);
            if intervals[0].keep.is_none() {
                prop_assert!(k.contains(&youngest.name));
            }
        }
    }

    #[test]
    fn evaluation_does_not_depend_on_input_order(
        (snaps, shuffled) in snaps().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        rules in prop::collection::vec(rule(), 0..4),
        cursor_at in 0u64..45,
    ) {
        let cursor = Cursor { guid: 10_000 + cursor_at, createtxg: 1 + cursor_at };
        let a: BTreeMap<String, (bool, Vec<String>)> = evaluate(&rules, &snaps, Some(&cursor))
            .unwrap()
            .into_iter()
            .map(|d| (d.name, (d.keep, d.kept_by)))
            .collect();
        let b: BTreeMap<String, (bool, Vec<String>)> = evaluate(&rules, &shuffled, Some(&cursor))
            .unwrap()
            .into_iter()
            .map(|d| (d.name, (d.keep, d.kept_by)))
            .collect();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn kept_is_the_union_of_each_rule(snaps in snaps(), rules in prop::collection::vec(rule(), 1..4), cursor_at in 0u64..45) {
        let cursor = Cursor { guid: 10_000 + cursor_at, createtxg: 1 + cursor_at };
        // not_replicated's at-cursor choice is shared by all its rules; keep
        // the union check to the other rules
        let rules: Vec<KeepRule> = rules.into_iter().filter(|r| !matches!(r, KeepRule::NotReplicated { .. })).collect();
        prop_assume!(!rules.is_empty());
        let all = kept(&rules, &snaps, Some(&cursor));
        let union: BTreeSet<String> = rules
            .iter()
            .flat_map(|r| kept(std::slice::from_ref(r), &snaps, Some(&cursor)))
            .collect();
        prop_assert_eq!(all, union);
    }
}
