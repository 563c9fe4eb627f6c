//! Tests of name validation, including property tests.
use super::*;
use proptest::prelude::*;

fn p(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

#[test]
fn order_puts_parents_before_children_and_siblings_after_subtrees() {
    let mut v = [
        p("p/a-b"),
        p("p/a/b"),
        p("p/a"),
        p("p/a b"),
        p("p/a.b/c"),
        p("p"),
        p("p/a/b c"),
    ];
    v.sort();
    let got: Vec<&str> = v.iter().map(|d| d.as_str()).collect();
    assert_eq!(
        got,
        ["p", "p/a", "p/a/b", "p/a/b c", "p/a b", "p/a-b", "p/a.b/c"]
    );
}

#[test]
fn accepts_openzfs_valid_names() {
    for s in ["pool", "pool/a b/c", "p/a-b_c.d:e", "tank/fs/%recv", "P1/x"] {
        assert_eq!(p(s).as_str(), s);
    }
    assert_eq!(p("pool/a b/c").depth(), 3);
    assert_eq!(p("pool/a b/c").pool(), "pool");
    assert_eq!(p("pool/a b/c").last_component(), "c");
    assert_eq!(p("pool/a").parent(), Some(p("pool")));
    assert_eq!(p("pool").parent(), None);
    assert!(p("pool").is_pool());
}

#[test]
fn rejects_like_entity_namecheck() {
    let long = format!("pool/{}", "a".repeat(251));
    assert_eq!(long.len(), 256);
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("/pool", "leading slash"),
        ("pool/", "trailing slash"),
        ("pool//a", "empty component"),
        ("pool/a@b", "\"@\" is not allowed in a dataset path"),
        ("pool/a#b", "\"#\" is not allowed in a dataset path"),
        ("pool/./a", "\".\" is not allowed"),
        ("pool/..", "\"..\" is not allowed"),
        ("pool/a*b", "'*' is not allowed"),
        ("pool/a\tb", "'\\t' is not allowed"),
        ("pool/é", "'é' is not allowed"),
        ("1pool/a", "must begin with a letter"),
        ("mirror/a", "is reserved"),
        ("po%ol/a", "'%' is not allowed"),
        (&long, "256 bytes long"),
    ];
    for (s, msg) in cases {
        let err = DatasetPath::parse(s).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(msg), "{s:?}: {text}");
        assert!(
            text.contains(&format!("{s:?}")),
            "error must quote the name: {text}"
        );
        assert_eq!(err.name(), *s);
    }
    assert!(DatasetPath::parse(&long[..255]).is_ok());
    assert_eq!(
        DatasetPath::parse("pool/a@b").unwrap_err().to_string(),
        r#"invalid dataset name "pool/a@b": "@" is not allowed in a dataset path"#
    );
}

#[test]
fn versions() {
    let s = SnapshotName::parse("pool/a b@snap 1").unwrap();
    assert_eq!((s.fs().as_str(), s.name()), ("pool/a b", "snap 1"));
    assert_eq!(s.to_string(), "pool/a b@snap 1");
    let b = BookmarkName::parse("pool/a#b").unwrap();
    assert_eq!(b.full(), "pool/a#b");
    let v = VersionName::parse("pool/a#b").unwrap();
    assert_eq!(
        (v.kind(), v.as_bookmark()),
        (VersionKind::Bookmark, Some(b.clone()))
    );
    assert_eq!(VersionName::from(b), v);
    assert_eq!(
        VersionName::parse("pool/a@b").unwrap().as_snapshot(),
        Some(SnapshotName::parse("pool/a@b").unwrap())
    );
    for bad in [
        "pool/a",
        "pool/a@",
        "@a",
        "pool/a@b@c",
        "pool/a@b/c",
        "pool/a@.",
        "pool/a#b",
        "pool/a@b#c",
    ] {
        assert!(SnapshotName::parse(bad).is_err(), "{bad}");
    }
    assert!(BookmarkName::parse("pool/a@b").is_err());
    assert!(SnapshotName::new(&p("pool"), "x/y").is_err());
    let long = "a".repeat(250);
    assert!(SnapshotName::new(&p("pool"), &long).is_ok());
    assert!(SnapshotName::new(&p("pool"), &format!("{long}a")).is_err());
    assert!(VersionName::parse("pool")
        .unwrap_err()
        .to_string()
        .contains("missing \"@\" or \"#\""));
}

#[test]
fn components_and_prefixes() {
    assert!(validate_component("client 1.example:x").is_ok());
    for bad in ["", ".", "..", "a/b", "a@b", "a%b", "a\nb"] {
        assert!(validate_component(bad).is_err(), "{bad:?}");
    }
    let ab = p("a/b");
    assert!(p("a/b/c").has_prefix(&ab) && ab.has_prefix(&ab));
    assert!(!p("a/bb").has_prefix(&ab) && !p("a").has_prefix(&ab));
    assert_eq!(
        p("a/b/c d/e").strip_prefix(&ab),
        Some(vec!["c d".into(), "e".into()])
    );
    assert_eq!(ab.strip_prefix(&ab), Some(vec![]));
    assert_eq!(p("a/bb").strip_prefix(&ab), None);
    assert!(ab.is_ancestor_of(&p("a/b/c")) && !ab.is_ancestor_of(&ab));
    assert_eq!(ab.child("c").unwrap(), p("a/b/c"));
    assert!(ab.child("c/d").is_err() && ab.child("").is_err() && ab.child("..").is_err());
    assert_eq!(ab.join_relative("c/d").unwrap(), p("a/b/c/d"));
    assert_eq!(ab.join(Vec::<String>::new()).unwrap(), ab);
    let mut v = [p("a/b c"), p("a/b/c"), p("a/b"), p("a")];
    v.sort();
    assert_eq!(v, [p("a"), p("a/b"), p("a/b/c"), p("a/b c")]);
}

#[test]
fn serde_as_validated_strings() {
    assert_eq!(
        serde_json::to_string(&p("pool/a b")).unwrap(),
        r#""pool/a b""#
    );
    assert_eq!(
        serde_json::from_str::<DatasetPath>(r#""pool/a b""#).unwrap(),
        p("pool/a b")
    );
    let err = serde_json::from_str::<DatasetPath>(r#""pool/a@b""#).unwrap_err();
    assert!(
        err.to_string().contains("not allowed in a dataset path"),
        "{err}"
    );
    let snap: SnapshotName = serde_json::from_str(r#""p/a@x""#).unwrap();
    assert_eq!(String::from(snap), "p/a@x");
    assert!(serde_json::from_str::<SnapshotName>(r#""p/a#x""#).is_err());
    assert_eq!(
        serde_json::to_string(&VersionKind::Bookmark).unwrap(),
        r#""bookmark""#
    );
}

fn component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.: -]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

fn path() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z][a-zA-Z0-9_.: -]{0,8}",
        prop::collection::vec(component(), 0..6),
    )
        .prop_filter("reserved", |(pool, _)| {
            !matches!(pool.as_str(), "mirror" | "raidz" | "draid")
        })
        .prop_map(|(pool, comps)| {
            std::iter::once(pool)
                .chain(comps)
                .collect::<Vec<_>>()
                .join("/")
        })
}

proptest! {
    /// The byte-wise order (`/` lowest) is the component-wise order.
    #[test]
    fn order_is_component_wise(a in path(), b in path(), tail in "[ a-z.:_-]{0,3}") {
        let (a, b) = (DatasetPath::parse(&a).unwrap(), DatasetPath::parse(&b).unwrap());
        prop_assert_eq!(a.cmp(&b), a.components().cmp(b.components()));
        if let Ok(c) = DatasetPath::parse(&format!("{a}{tail}")) {
            prop_assert_eq!(a.cmp(&c), a.components().cmp(c.components()));
            prop_assert_eq!(c.cmp(&a), c.components().cmp(a.components()));
        }
    }

    #[test]
    fn valid_names_round_trip(s in path(), snap in component()) {
        let d = DatasetPath::parse(&s).unwrap();
        prop_assert_eq!(d.to_string(), s.clone());
        prop_assert_eq!(d.components().collect::<Vec<_>>().join("/"), s.clone());
        let full = format!("{s}@{snap}");
        let sn = SnapshotName::parse(&full).unwrap();
        prop_assert_eq!(sn.to_string(), full.clone());
        prop_assert_eq!(sn.fs(), &d);
        prop_assert_eq!(VersionName::parse(&full).unwrap().full(), full);
    }

    #[test]
    fn forbidden_chars_are_rejected(s in path(), pos in any::<prop::sample::Index>(), ch in any::<char>()) {
        prop_assume!(!valid_char(ch) && ch != '%' && ch != '/');
        let mut chars: Vec<char> = s.chars().collect();
        chars.insert(pos.index(chars.len() + 1), ch);
        let bad: String = chars.into_iter().collect();
        prop_assert!(DatasetPath::parse(&bad).is_err());
        prop_assert!(validate_component(&ch.to_string()).is_err());
    }

    #[test]
    fn prefix_relation(s in path(), extra in prop::collection::vec(component(), 0..4), suffix in "[0-9]{1,3}") {
        let base = DatasetPath::parse(&s).unwrap();
        let q = base.join(&extra).unwrap();
        prop_assert!(q.has_prefix(&base));
        prop_assert_eq!(q.strip_prefix(&base), Some(extra.clone()));
        prop_assert_eq!(base.is_ancestor_of(&q), !extra.is_empty());
        prop_assert!(base <= q);
        let sibling = DatasetPath::parse(&format!("{s}{suffix}")).unwrap();
        prop_assert!(!sibling.has_prefix(&base) && !base.has_prefix(&sibling));
        prop_assert_eq!(sibling.strip_prefix(&base), None);
    }
}

#[test]
fn peer_names_refuse_percent_anywhere() {
    for (s, kind) in [
        ("pool/fs@%", NameKind::Snapshot),
        ("pool/fs@a%b", NameKind::Snapshot),
        ("pool/%recv", NameKind::Dataset),
        ("pool/fs#%", NameKind::Bookmark),
    ] {
        let e = validate_peer(s, kind).unwrap_err();
        assert_eq!(e.problem, NameProblem::PeerPercent);
        let text = e.to_string();
        assert!(text.contains(s) && text.contains("range"), "{text}");
    }
    // Listed names keep accepting it; the peer rule is separate.
    assert!(DatasetPath::parse("pool/%recv").is_ok());
    assert!(validate_peer("pool/fs@a-b", NameKind::Snapshot).is_ok());
}

#[test]
fn name_errors_are_escaped_and_cut() {
    let long = format!("pool/{}\nforged", "x".repeat(60 << 20));
    let e = DatasetPath::parse(&long).unwrap_err();
    assert!(e.name().len() <= MAX_NAME_LEN);
    assert_eq!(e.len, long.len());
    let text = e.to_string();
    assert!(text.len() < 2 * MAX_NAME_LEN, "{}", text.len());
    assert!(text.contains(&format!("…({} bytes)", long.len())), "{text}");
    let e = DatasetPath::parse("pool/a\nINFO forged").unwrap_err();
    assert!(!e.to_string().contains('\n'), "{e}");
    assert!(e.to_string().contains("a\\nINFO"), "{e}");
}

#[test]
fn destroy_targets_never_hold_a_range() {
    use crate::api::{check_destroy_batch, DestroyTarget};
    let fs = DatasetPath::parse("pool/fs").unwrap();
    for n in ["%", "a%b", "%c"] {
        let e = check_destroy_batch(&fs, &["ok".into(), n.into()]).unwrap_err();
        assert!(e.to_string().contains(&format!("pool/fs@{n}")), "{e}");
    }
    let pct = DatasetPath::parse("pool/%x").unwrap();
    assert!(check_destroy_batch(&pct, &["a".into()]).is_err());
    assert!(check_destroy_batch(&fs, &["a".into(), "b".into()]).is_ok());
    let snap = SnapshotName::parse("pool/fs@a%b").unwrap();
    assert!(DestroyTarget::Snapshot(snap).check_no_range().is_err());
    assert!(DestroyTarget::Dataset(pct).check_no_range().is_err());
}
