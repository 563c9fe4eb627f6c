use super::*;
use crate::abstractions::JobId;
use zrelay_fake::FakeZfs;
use zrelay_zfs::parse::DatasetKind;
use zrelay_zfs::VersionRef;

fn p(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

fn snap(name: &str, txg: u64) -> Version {
    Version {
        kind: VersionKind::Snapshot,
        name: name.into(),
        guid: txg * 1000,
        createtxg: txg,
        creation: 0,
        userrefs: None,
    }
}

fn bm(name: &str, txg: u64) -> Version {
    Version {
        kind: VersionKind::Bookmark,
        userrefs: None,
        ..snap(name, txg)
    }
}

fn dataset(path: &str, versions: Vec<Version>) -> ListedDataset {
    ListedDataset {
        path: p(path),
        kind: DatasetKind::Filesystem,
        guid: 1,
        createtxg: 1,
        creation: 0,
        resume_token: None,
        placeholder: false,
        encryption: None,
        encryption_root: None,
        key_status: None,
        versions,
    }
}

fn job(j: &str) -> JobId {
    JobId::new(j).unwrap()
}

/// `(kind, fs, version, tag-or-empty, job-or-empty)`, for short assertions.
fn short(a: &Abstraction) -> (AbstractionKind, String, String, String) {
    (
        a.kind,
        a.full_path(),
        a.hold_tag.clone().unwrap_or_default(),
        a.job.clone().unwrap_or_default(),
    )
}

/// `p/a`: s1..s3 (txg 10, 20, 30) with job `j`'s cursors at s1 and s2, its
/// step holds on s1, s2, s3, a tentative cursor at s3, the legacy cursor,
/// job `k`'s step holds on s1 and s2 (no cursor), job `m`'s cursor at s3,
/// a user hold and a user bookmark. `p/b`: last-received holds of `j` on
/// s1 and s3, and a step hold of `j` on s1 (no cursor on `p/b`).
fn fixture() -> (Vec<ListedDataset>, Vec<(SnapshotName, Vec<String>)>) {
    let (j, k, m) = (job("j"), job("k"), job("m"));
    let a = dataset(
        "p/a",
        vec![
            snap("s1", 10),
            bm(&j.cursor_bookmark(10_000), 10),
            snap("s2", 20),
            bm(&j.cursor_bookmark(20_000), 20),
            snap("s3", 30),
            bm(&j.tentative_cursor_bookmark(30_000), 30),
            bm(&m.cursor_bookmark(30_000), 30),
            bm("zrepl_replication_cursor", 30),
            bm("my_bookmark", 30),
            // a cursor name with another guid than the bookmark's: not one
            bm(&j.cursor_bookmark(0xdead), 30),
        ],
    );
    let b = dataset("p/b", vec![snap("s1", 10), snap("s3", 30)]);
    let s = |fs: &str, n: &str| SnapshotName::parse(&format!("{fs}@{n}")).unwrap();
    let holds = vec![
        (
            s("p/a", "s1"),
            vec![j.step_hold_tag(), k.step_hold_tag(), "keep".into()],
        ),
        (s("p/a", "s2"), vec![j.step_hold_tag(), k.step_hold_tag()]),
        (s("p/a", "s3"), vec![j.step_hold_tag()]),
        (
            s("p/b", "s1"),
            vec![j.last_received_hold_tag(), j.step_hold_tag()],
        ),
        (s("p/b", "s3"), vec![j.last_received_hold_tag()]),
    ];
    (vec![a, b], holds)
}

#[test]
fn extraction_and_filters() {
    let (ds, holds) = fixture();
    let all = collect_abstractions(&ds, &holds, &AbstractionFilter::default());
    assert_eq!(all.len(), 13, "{all:#?}");
    assert!(all.iter().all(|a| a.hold_tag.as_deref() != Some("keep")));
    assert!(all.iter().all(|a| !a.version.contains("dead")));
    assert!(all.iter().all(|a| a.version != "my_bookmark"));
    // sorted by fs, then createtxg
    assert!(all
        .windows(2)
        .all(|w| (&w[0].fs, w[0].createtxg) <= (&w[1].fs, w[1].createtxg)));
    let v1 = all
        .iter()
        .find(|a| a.kind == AbstractionKind::CursorV1)
        .unwrap();
    assert_eq!(
        v1.to_string(),
        "replication-cursor-bookmark-v1 p/a#zrepl_replication_cursor"
    );
    let hold = all.iter().find(|a| a.kind.is_hold()).unwrap();
    assert_eq!(hold.to_string(), r#"step-hold "zrepl_STEP_J_j" on p/a@s1"#);

    let only_k = AbstractionFilter {
        jobs: ["k".to_string()].into(),
        ..Default::default()
    };
    let got: Vec<_> = collect_abstractions(&ds, &holds, &only_k)
        .iter()
        .map(short)
        .collect();
    // the legacy cursor has no job and passes any job filter, as in zrepl
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got
        .iter()
        .all(|(k, _, _, j)| j == "k" || *k == AbstractionKind::CursorV1));

    let lr = AbstractionFilter {
        kinds: [AbstractionKind::LastReceivedHold].into(),
        ..Default::default()
    };
    let got: Vec<_> = collect_abstractions(&ds, &holds, &lr)
        .iter()
        .map(|a| a.full_path())
        .collect();
    assert_eq!(got, ["p/b@s1", "p/b@s3"]);
}

#[test]
fn staleness_follows_zrepl() {
    let (ds, holds) = fixture();
    let all = collect_abstractions(&ds, &holds, &AbstractionFilter::default());
    let st = partition_stale(all.clone());
    assert_eq!(st.live.len() + st.stale.len(), all.len());
    let stale: Vec<_> = st.stale.iter().map(short).collect();
    let (j, k) = (job("j"), job("k"));
    let want = vec![
        // j on p/a: the older cursor, and the step holds at or before the newest cursor
        (
            AbstractionKind::StepHold,
            "p/a@s1".into(),
            j.step_hold_tag(),
            "j".into(),
        ),
        (
            AbstractionKind::StepHold,
            "p/a@s1".into(),
            k.step_hold_tag(),
            "k".into(),
        ),
        (
            AbstractionKind::CursorV2,
            format!("p/a#{}", j.cursor_bookmark(10_000)),
            String::new(),
            "j".into(),
        ),
        (
            AbstractionKind::StepHold,
            "p/a@s2".into(),
            j.step_hold_tag(),
            "j".into(),
        ),
        // j on p/b: the older last-received hold; its step hold is the newest one there
        (
            AbstractionKind::LastReceivedHold,
            "p/b@s1".into(),
            j.last_received_hold_tag(),
            "j".into(),
        ),
    ];
    assert_eq!(stale, want);
    let live: Vec<_> = st.live.iter().map(short).collect();
    for keep in [
        // newer than the cursor: an in-flight step
        (
            AbstractionKind::StepHold,
            "p/a@s3".to_string(),
            j.step_hold_tag(),
            "j".to_string(),
        ),
        // k has no cursor: its newest step hold protects the initial replication
        (
            AbstractionKind::StepHold,
            "p/a@s2".into(),
            k.step_hold_tag(),
            "k".into(),
        ),
        (
            AbstractionKind::StepHold,
            "p/b@s1".into(),
            j.step_hold_tag(),
            "j".into(),
        ),
        (
            AbstractionKind::LastReceivedHold,
            "p/b@s3".into(),
            j.last_received_hold_tag(),
            "j".into(),
        ),
        (
            AbstractionKind::TentativeCursor,
            format!("p/a#{}", j.tentative_cursor_bookmark(30_000)),
            String::new(),
            "j".into(),
        ),
        (
            AbstractionKind::CursorV1,
            "p/a#zrepl_replication_cursor".into(),
            String::new(),
            String::new(),
        ),
    ] {
        assert!(live.contains(&keep), "{keep:?} not live: {live:#?}");
    }
    // idempotent: what stays live is not stale a second time
    assert!(partition_stale(st.live).stale.is_empty());
}

#[test]
fn stale_needs_steps_and_cursors_together() {
    let f = |kinds: &[AbstractionKind]| AbstractionFilter {
        kinds: kinds.iter().copied().collect(),
        ..Default::default()
    };
    assert!(check_stale_kinds(&f(&[])).is_ok());
    assert!(check_stale_kinds(&f(&[AbstractionKind::LastReceivedHold])).is_ok());
    assert!(check_stale_kinds(&f(&[AbstractionKind::StepHold, AbstractionKind::CursorV2])).is_ok());
    let e = check_stale_kinds(&f(&[AbstractionKind::StepHold])).unwrap_err();
    assert!(
        e.to_string().contains("replication-cursor-bookmark-v2"),
        "{e}"
    );
    assert!(check_stale_kinds(&f(&[AbstractionKind::CursorV2])).is_err());
}

#[tokio::test]
async fn list_and_release_on_the_fake() {
    let zfs = FakeZfs::new();
    let pool = zfs.add_pool("tank").unwrap();
    let fs = pool.child("data").unwrap();
    zfs.create(&fs, &[]).await.unwrap();
    let j = job("j");
    let mut snaps = Vec::new();
    for n in ["s1", "s2", "s3"] {
        let s = SnapshotName::new(&fs, n).unwrap();
        zfs.snapshot(std::slice::from_ref(&s)).await.unwrap();
        let guid = zfs.guid(&s.to_string()).await.unwrap();
        let b = BookmarkName::new(&fs, &j.cursor_bookmark(guid)).unwrap();
        if n != "s3" {
            zfs.bookmark(&VersionRef::Snapshot(s.clone()), guid, &b)
                .await
                .unwrap();
        }
        zfs.hold(&s, &j.step_hold_tag()).await.unwrap();
        snaps.push(s);
    }
    zfs.hold(&snaps[0], "keep").await.unwrap();
    let listed = zfs.list(&pool).await.unwrap();
    let all = list_abstractions(&zfs, &listed, &AbstractionFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 5, "{all:#?}");
    let stale = partition_stale(all).stale;
    let names: Vec<_> = stale.iter().map(|a| a.to_string()).collect();
    assert_eq!(stale.len(), 3, "{names:?}");
    let results = release_abstractions(&zfs, &stale).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");

    let listed = zfs.list(&pool).await.unwrap();
    let left = list_abstractions(&zfs, &listed, &AbstractionFilter::default())
        .await
        .unwrap();
    let left: Vec<_> = left.iter().map(|a| a.to_string()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&format!(r#"step-hold "zrepl_STEP_J_j" on {}"#, snaps[2])));
    assert_eq!(zfs.holds(&snaps[0]).await.unwrap(), ["keep"]);
    // holds only: no holds listing when only bookmarks are asked for
    zfs.reset_calls();
    let bms = AbstractionFilter {
        kinds: [AbstractionKind::CursorV2].into(),
        ..Default::default()
    };
    let got = list_abstractions(&zfs, &listed, &bms).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(zfs.calls(zrelay_fake::FakeOp::Holds), 0);
}
