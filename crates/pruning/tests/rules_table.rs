//! Table tests of the keep rules (zrepl's `keep_*_test.go` cases and the
//! grid's edges), through the public `evaluate`.

use std::collections::BTreeSet;
use std::time::Duration;

use zrelay_pruning::{evaluate, Cursor, GridInterval, KeepRule, PruneError, Snap, NO_RULES};
use zrelay_zfs::Classify;

/// `name` created at `creation`, with `createtxg` = `txg` and a GUID derived from it.
fn s(name: &str, creation: i64, txg: u64) -> Snap {
    Snap {
        name: name.into(),
        guid: 1000 + txg,
        createtxg: txg,
        creation,
    }
}

/// Snapshots named after their creation time, createtxg in creation order.
fn at(times: &[i64]) -> Vec<Snap> {
    let mut sorted = times.to_vec();
    sorted.sort();
    times
        .iter()
        .map(|t| {
            let txg = sorted.iter().position(|x| x == t).unwrap() as u64 + 1;
            s(&t.to_string(), *t, txg)
        })
        .collect()
}

fn kept(rules: &[KeepRule], snaps: &[Snap], cursor: Option<&Cursor>) -> BTreeSet<String> {
    evaluate(rules, snaps, cursor)
        .unwrap()
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| d.name)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn gi(count: u32, secs: u64, keep: Option<u32>) -> GridInterval {
    GridInterval {
        count,
        length: Duration::from_secs(secs),
        keep,
    }
}

fn grid(intervals: Vec<GridInterval>, regex: &str) -> KeepRule {
    KeepRule::Grid {
        intervals,
        regex: regex.into(),
    }
}

fn last_n(count: usize, regex: Option<&str>) -> KeepRule {
    KeepRule::LastN {
        count,
        regex: regex.map(String::from),
    }
}

#[test]
fn grid_table() {
    let all = ".*";
    let cases: Vec<(&str, KeepRule, Vec<i64>, Vec<&str>)> = vec![
        (
            // (90,100] and (80,90]: keep=1 keeps the oldest of each bucket;
            // 90 is on the edge (older bucket), 80 at the grid's end (outside)
            "2x10s keep=1, edges",
            grid(vec![gi(2, 10, Some(1))], all),
            vec![100, 95, 91, 90, 85, 81, 80, 79],
            vec!["91", "81"],
        ),
        (
            "keep=all then keep=2",
            grid(vec![gi(1, 10, None), gi(1, 20, Some(2))], all),
            vec![100, 95, 91, 90, 85, 81, 75, 71, 70, 10],
            vec!["100", "95", "91", "75", "71"],
        ),
        (
            "keep larger than the bucket keeps all of it",
            grid(vec![gi(3, 10, Some(5))], all),
            vec![100, 99, 85, 84, 83, 71, 70],
            vec!["100", "99", "85", "84", "83", "71"],
        ),
        (
            "one snapshot: the youngest is bucket 0",
            grid(vec![gi(1, 60, Some(1))], all),
            vec![5],
            vec!["5"],
        ),
        (
            "zrepl sample 1x1h(keep=all) | 24x1h | 35x1d, hourly + older",
            grid(
                vec![
                    gi(1, 3600, None),
                    gi(24, 3600, Some(1)),
                    gi(35, 86_400, Some(1)),
                ],
                all,
            ),
            // now, 30 min ago, 1h ago (edge: bucket 1 of the grid), 1h30,
            // 25h ago (edge: first day bucket), 26h, 60 days ago (outside)
            vec![
                1_000_000,
                1_000_000 - 1800,
                1_000_000 - 3600,
                1_000_000 - 5400,
                1_000_000 - 25 * 3600,
                1_000_000 - 26 * 3600,
                1_000_000 - 60 * 86_400,
            ],
            vec!["1000000", "998200", "994600", "906400"],
        ),
        (
            "no snapshots",
            grid(vec![gi(1, 10, None)], all),
            vec![],
            vec![],
        ),
    ];
    for (what, rule, times, want) in cases {
        assert_eq!(kept(&[rule], &at(&times), None), set(&want), "{what}");
    }
}

#[test]
fn grid_regex_filters_and_anchors_at_the_youngest_match() {
    let snaps = vec![
        s("manual_new", 150, 6),
        s("zrepl_a", 100, 5),
        s("manual", 99, 4),
        s("zrepl_b", 95, 3),
        s("zrepl_old", 90, 2),
    ];
    let rule = grid(vec![gi(1, 10, None)], "^zrepl_");
    assert_eq!(
        kept(std::slice::from_ref(&rule), &snaps, None),
        set(&["zrepl_a", "zrepl_b"])
    );
    let d = evaluate(&[rule], &snaps, None).unwrap();
    assert_eq!(d[1].kept_by, ["grid 1x10s(keep=all) bucket 0"]);
    // no match at all: nothing kept
    let none = grid(vec![gi(1, 10, None)], "^nope");
    assert!(kept(&[none], &snaps, None).is_empty());
}

#[test]
fn grid_reason_names_segment_and_bucket() {
    let snaps = at(&[100, 85, 75]);
    let rule = grid(vec![gi(1, 10, None), gi(2, 10, Some(1))], ".*");
    let d = evaluate(&[rule], &snaps, None).unwrap();
    let reasons: Vec<_> = d.iter().map(|d| d.kept_by.join(",")).collect();
    assert_eq!(
        reasons,
        [
            "grid 1x10s(keep=all) bucket 0",
            "grid 2x10s bucket 0",
            "grid 2x10s bucket 1"
        ]
    );
}

/// What, rules, snapshots, the names kept.
type Case = (&'static str, Vec<KeepRule>, Vec<Snap>, Vec<&'static str>);

#[test]
fn last_n_table() {
    // zrepl's keep_last_n_test.go, minutes → seconds*60
    let m = |x: i64| 123 + x * 60;
    let s1 = vec![
        s("1", m(10), 1),
        s("2", m(20), 3),
        s("3", m(15), 2),
        s("4", m(30), 4),
        s("5", m(30), 5),
    ];
    let cases: Vec<Case> = vec![
        ("keep2", vec![last_n(2, None)], s1.clone(), vec!["4", "5"]),
        (
            "keep1 of two with same time",
            vec![last_n(1, None)],
            s1.clone(),
            vec!["5"],
        ),
        (
            "keepMany",
            vec![last_n(100, None)],
            s1.clone(),
            vec!["1", "2", "3", "4", "5"],
        ),
        ("empty input", vec![last_n(100, None)], vec![], vec![]),
        (
            "empty regex",
            vec![last_n(4, Some(""))],
            s1.clone(),
            vec!["2", "3", "4", "5"],
        ),
        (
            "multiple regexes",
            vec![last_n(2, Some("^a")), last_n(2, Some("^b"))],
            vec![
                s("a1", m(10), 1),
                s("b1", m(11), 2),
                s("a2", m(20), 3),
                s("b2", m(21), 4),
                s("a3", m(30), 5),
                s("b3", m(31), 6),
            ],
            vec!["a2", "a3", "b2", "b3"],
        ),
        (
            // 0.7 semantics: count > number of snapshots still drops the non-matching
            "keep more than matching",
            vec![last_n(4, Some("a"))],
            vec![s("a1", m(10), 1), s("b1", m(11), 2), s("a2", m(12), 3)],
            vec!["a1", "a2"],
        ),
        (
            // the clock stepped back an hour after "before": the snapshots
            // taken since are dated earlier but have the higher createtxg
            "clock stepped back: createtxg decides",
            vec![last_n(2, None)],
            vec![
                s("before", m(60), 1),
                s("after1", m(1), 2),
                s("after2", m(2), 3),
            ],
            vec!["after1", "after2"],
        ),
        (
            // same creation second: the higher createtxg is the newer
            "ties by createtxg",
            vec![last_n(1, None)],
            vec![s("b", 50, 2), s("a", 50, 3)],
            vec!["a"],
        ),
    ];
    for (what, rules, snaps, want) in cases {
        assert_eq!(kept(&rules, &snaps, None), set(&want), "{what}");
    }
    let d = evaluate(&[last_n(10, None)], &s1, None).unwrap();
    assert_eq!(d[0].kept_by, ["last_n 10"]);
}

#[test]
fn regex_and_negate() {
    let snaps = vec![
        s("zrepl_1", 1, 1),
        s("manual_1", 2, 2),
        s("zrepl_manual", 3, 3),
    ];
    let r = |re: &str, negate| KeepRule::Regex {
        regex: re.into(),
        negate,
    };
    assert_eq!(
        kept(&[r("^zrepl_", false)], &snaps, None),
        set(&["zrepl_1", "zrepl_manual"])
    );
    assert_eq!(
        kept(&[r("^zrepl_", true)], &snaps, None),
        set(&["manual_1"])
    );
    // unanchored, like Go's FindStringIndex
    assert_eq!(
        kept(&[r("manual", false)], &snaps, None),
        set(&["manual_1", "zrepl_manual"])
    );
    assert_eq!(kept(&[r("manual", true)], &snaps, None), set(&["zrepl_1"]));
}

#[test]
fn not_replicated_table() {
    let snaps = vec![
        s("s1", 10, 10),
        s("s2", 20, 20),
        s("s3", 30, 30),
        s("s4", 40, 40),
    ];
    let nr = |k| KeepRule::NotReplicated {
        keep_snapshot_at_cursor: k,
    };
    let at_s2 = Cursor {
        guid: 1020,
        createtxg: 20,
    };
    assert_eq!(
        kept(&[nr(true)], &snaps, Some(&at_s2)),
        set(&["s2", "s3", "s4"])
    );
    assert_eq!(kept(&[nr(false)], &snaps, Some(&at_s2)), set(&["s3", "s4"]));
    // the cursor's snapshot is gone: its bookmark's createtxg still decides
    let gone = Cursor {
        guid: 7,
        createtxg: 25,
    };
    assert_eq!(kept(&[nr(true)], &snaps, Some(&gone)), set(&["s3", "s4"]));
    // zrepl decides "at cursor counts as replicated" once for all rules
    assert_eq!(
        kept(&[nr(true), nr(false)], &snaps, Some(&at_s2)),
        set(&["s3", "s4"])
    );
    let d = evaluate(&[nr(true)], &snaps, Some(&at_s2)).unwrap();
    assert_eq!(d[2].kept_by, ["not_replicated: newer than the cursor"]);
    assert!(matches!(
        evaluate(&[nr(true)], &snaps, None),
        Err(PruneError::NoCursor)
    ));
    let e = evaluate(&[nr(true)], &snaps, None).unwrap_err().to_string();
    assert!(e.contains("one successful replication is required"), "{e}");
}

#[test]
fn rules_combine_as_a_union() {
    let snaps = at(&[100, 95, 91, 50, 40, 30]);
    let mut snaps = snaps;
    snaps[5].name = "keepme".into();
    let rules = vec![
        last_n(1, None),
        grid(vec![gi(1, 10, None)], ".*"),
        KeepRule::Regex {
            regex: "^keep".into(),
            negate: false,
        },
    ];
    assert_eq!(
        kept(&rules, &snaps, None),
        set(&["100", "95", "91", "keepme"])
    );
    let d = evaluate(&rules, &snaps, None).unwrap();
    assert_eq!(d[0].kept_by, ["last_n 1", "grid 1x10s(keep=all) bucket 0"]);
    assert!(!d[3].keep && d[3].kept_by.is_empty());
}

#[test]
fn no_rules_destroy_nothing_and_invalid_rules_are_errors() {
    let snaps = at(&[1, 2]);
    let d = evaluate(&[], &snaps, None).unwrap();
    assert!(d.iter().all(|d| d.keep && d.kept_by == [NO_RULES]));
    let bad = KeepRule::Regex {
        regex: "(".into(),
        negate: false,
    };
    let e = evaluate(&[bad], &snaps, None).unwrap_err();
    assert!(matches!(e, PruneError::InvalidRule { index: 0, .. }), "{e}");
    assert!(!e.is_temporary());
}
