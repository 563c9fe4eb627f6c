//! Unit and property tests of the resume-token decoder. The vectors marked
//! "real" were produced by OpenZFS (see each comment).

use proptest::prelude::*;

use super::*;

/// Real: zrepl's resume_token.go sample (OpenZFS, an incremental token whose
/// `zfs send -nvt` contents zrepl records).
const ZREPL_INCREMENTAL: &str = "1-c49b979a2-e0-789c636064000310a501c49c50360710a715e5e7a69766a63040c1eabb735735ce8f8d5400b2d991d4e52765a5269740f82080219f96569c5ac2000720793624f9a4ca92d46206547964fd25f91057f09e37babb88c9bf5503499e132c9f97989bcac050909f9f63a80f34abc421096616007c881d4c";

fn info(toname: &str) -> ResumeTokenInfo {
    ResumeTokenInfo {
        toname: SnapshotName::parse(toname).unwrap(),
        toguid: 0x854f02a2dd32cf0d,
        fromguid: None,
        object: 1,
        offset: 0,
        bytes: 0,
        large_block_ok: false,
        embed_ok: false,
        compress_ok: false,
        raw_ok: false,
        saved_ok: false,
        redact_snaps: None,
        book_redact_snaps: None,
    }
}

#[test]
fn decodes_zrepls_real_token() {
    let got = decode(ZREPL_INCREMENTAL).unwrap();
    let mut want = info("pool1/test@b");
    want.fromguid = Some(0x595d9f81aa9dddab);
    assert_eq!(got, want);
    // the kernel's key order, reproduced by to_nvlist
    assert_eq!(decode_nvlist(ZREPL_INCREMENTAL).unwrap(), want.to_nvlist());
}

#[test]
fn real_tokens_from_openzfs_2_3() {
    for (token, want) in super::vectors::REAL {
        let got = decode(token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&got, &want(), "{token}");
        // our encoder's nvlist is byte-identical to the kernel's
        let list = decode_nvlist(token).unwrap();
        assert_eq!(list, got.to_nvlist());
    }
}

#[test]
fn forged_rawok_in_a_string_is_not_raw() {
    // Finding 1: `zfs send -nvt` would print a second "\trawok = 1" line.
    let mut list = info("p/a@s").to_nvlist();
    // SnapshotName would refuse the newline; build the nvlist by hand
    for (k, v) in &mut list.pairs {
        if k == "toname" {
            *v = NvValue::Str("p/a@s\n\trawok = 1".into());
        }
    }
    let token = encode(&list);
    let e = decode(&token).unwrap_err().to_string();
    assert!(
        e.contains("toname") && e.contains("not a snapshot name"),
        "{e}"
    );
    // the nvlist itself has no rawok pair
    assert!(decode_nvlist(&token).unwrap().get("rawok").is_none());
}

#[test]
fn refusals_name_what_is_wrong() {
    let good = info("p/a@s").encode();
    let cases: Vec<(String, &str)> = vec![
        ("2".to_string() + &good[1..], "version 2"),
        (good.replacen('-', "--", 1), "parts"),
        (format!("{good}0"), "even number"),
        (good.to_uppercase(), "lowercase hex"),
        ("1-1-10-".to_string() + &"00".repeat(4), "checksum"),
        (format!("1-1-{:x}-00", MAX_PACKED_LEN + 1), "more than the"),
        ("x".repeat(MAX_TOKEN_LEN + 1), "more than the 65536"),
    ];
    for (t, want) in cases {
        let e = decode(&t).unwrap_err().to_string();
        assert!(e.contains(want), "{t:.80}: {e}");
        assert!(e.len() < 1000, "token shown cut: {}", e.len());
    }
    // wrong announced length, both ways
    let (head, hex) = good.rsplit_once('-').unwrap();
    let (vs, len) = head.rsplit_once('-').unwrap();
    let len = u64::from_str_radix(len, 16).unwrap();
    for other in [len - 1, len + 1] {
        let e = decode(&format!("{vs}-{other:x}-{hex}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("announce"), "{e}");
    }
    // unknown key, wrong type, duplicate, missing, fromguid 0
    let mut l = info("p/a@s").to_nvlist();
    l.pairs.push(("evil".into(), NvValue::Boolean));
    assert!(decode(&encode(&l))
        .unwrap_err()
        .to_string()
        .contains("unknown key \"evil\""));
    let mut l = info("p/a@s").to_nvlist();
    l.pairs.push(("rawok".into(), NvValue::U64(0)));
    assert!(decode(&encode(&l))
        .unwrap_err()
        .to_string()
        .contains("\"rawok\" has type"));
    let mut l = info("p/a@s").to_nvlist();
    l.pairs.retain(|(k, _)| k != "toguid");
    assert!(decode(&encode(&l))
        .unwrap_err()
        .to_string()
        .contains("\"toguid\" is missing"));
    let mut i = info("p/a@s");
    i.fromguid = Some(0);
    assert!(decode(&i.encode())
        .unwrap_err()
        .to_string()
        .contains("fromguid is 0"));
    let mut l = info("p/a@s").to_nvlist();
    l.pairs.push(("rawok".into(), NvValue::Boolean));
    l.pairs.push(("rawok".into(), NvValue::Boolean));
    assert!(decode(&encode(&l))
        .unwrap_err()
        .to_string()
        .contains("duplicate pair"));
}

#[test]
fn trailing_garbage_after_the_zlib_stream() {
    let good = info("p/a@s").encode();
    let (head, hex) = good.rsplit_once('-').unwrap();
    let (v, len) = head.rsplit_once('-').unwrap();
    let (v, _) = v.split_once('-').unwrap();
    let mut bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    bytes.extend_from_slice(&[0; 4]);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let t = format!("{v}-{:x}-{len}-{hex}", fletcher4_word0(&bytes));
    assert!(decode(&t)
        .unwrap_err()
        .to_string()
        .contains("after the end"));
}

#[test]
fn fletcher_ignores_trailing_bytes() {
    assert_eq!(fletcher4_word0(&[1, 0, 0, 0, 2, 0, 0, 0, 9]), 3);
    assert_eq!(fletcher4_word0(&[0xff; 8]), 2 * 0xffff_ffff);
}

fn arb_value() -> impl Strategy<Value = NvValue> {
    prop_oneof![
        Just(NvValue::Boolean),
        any::<u64>().prop_map(NvValue::U64),
        "[^\\x00]{0,40}".prop_map(NvValue::Str),
        proptest::collection::vec(any::<u64>(), 0..6).prop_map(NvValue::U64Array),
    ]
}

fn arb_list() -> impl Strategy<Value = NvList> {
    proptest::collection::btree_map("[^\\x00]{1,20}", arb_value(), 0..8).prop_map(|m| NvList {
        pairs: m.into_iter().collect(),
    })
}

fn arb_info() -> impl Strategy<Value = ResumeTokenInfo> {
    let name = ("[a-z][a-z0-9 ]{0,8}", "[a-zA-Z0-9_.: -]{1,10}")
        .prop_filter("ok", |(_, s)| s != "." && s != "..")
        .prop_map(|(fs, s)| SnapshotName::parse(&format!("{fs}/x@{s}")).unwrap());
    (
        name,
        any::<(u64, Option<u64>, u64, u64, u64)>(),
        any::<[bool; 5]>(),
    )
        .prop_map(
            |(toname, (toguid, fromguid, object, offset, bytes), f)| ResumeTokenInfo {
                toname,
                toguid,
                fromguid: fromguid.filter(|g| *g != 0),
                object,
                offset,
                bytes,
                large_block_ok: f[0],
                embed_ok: f[1],
                compress_ok: f[2],
                raw_ok: f[3],
                saved_ok: f[4],
                redact_snaps: None,
                book_redact_snaps: None,
            },
        )
}

/// Cases per property; `ZRELAY_FUZZ_CASES` raises it for a long run.
fn cases() -> u32 {
    std::env::var("ZRELAY_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC*", t in "1-[0-9a-f]{1,9}-[0-9a-f]{1,4}-[0-9a-f]{0,200}") {
        let _ = decode(&s);
        let _ = decode(&t);
    }

    #[test]
    fn arbitrary_packed_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = nvlist::decode(&b);
        // with a valid header and zlib/checksum framing, the nvlist parser sees it all
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&b).unwrap();
        let c = z.finish().unwrap();
        let hex: String = c.iter().map(|x| format!("{x:02x}")).collect();
        let _ = decode(&format!("1-{:x}-{:x}-{hex}", fletcher4_word0(&c), b.len()));
    }

    #[test]
    fn nvlists_round_trip(l in arb_list()) {
        prop_assert_eq!(nvlist::decode(&nvlist::encode(&l)).unwrap(), l.clone());
        prop_assert_eq!(decode_nvlist(&encode(&l)).unwrap(), l);
    }

    #[test]
    fn infos_round_trip(i in arb_info()) {
        prop_assert_eq!(decode(&i.encode()).unwrap(), i);
    }

    /// The decoder accepts only canonical packings: whatever a mutated
    /// packing decodes to re-encodes to exactly the same bytes.
    #[test]
    fn accepted_packings_are_canonical(
        l in arb_list(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut b = nvlist::encode(&l);
        for (i, x) in &edits {
            let at = i.index(b.len());
            b[at] = *x;
        }
        if let Ok(got) = nvlist::decode(&b) {
            prop_assert_eq!(nvlist::encode(&got), b);
        }
    }

    /// A mutated token text either fails or decodes to exactly the encoded list.
    #[test]
    fn mutated_tokens_fail_or_are_unchanged(
        l in arb_list(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
    ) {
        let t = encode(&l);
        let mut chars: Vec<char> = t.chars().collect();
        for (i, c) in &edits {
            let at = i.index(chars.len());
            chars[at] = *c;
        }
        let m: String = chars.into_iter().collect();
        if let Ok(got) = decode_nvlist(&m) {
            prop_assert_eq!(got, l);
        }
    }
}
