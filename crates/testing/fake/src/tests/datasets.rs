//! Datasets, properties, snapshots, bookmarks, holds, destroys and fault injection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test]
async fn create_get_set_inherit() {
    let z = FakeZfs::new();
    let pool = z.add_pool("pool").unwrap();
    assert!(z.add_pool("pool").is_err());
    let a = p("pool/a");
    let missing = z.create(&p("pool/x/y"), &[]).await.unwrap_err();
    assert!(
        matches!(&missing, ZfsError::DatasetDoesNotExist { path } if path == "pool/x"),
        "{missing:?}"
    );
    z.create(&a, &[("zrepl:placeholder".into(), "on".into())])
        .await
        .unwrap();
    let again = z.create(&a, &[]).await.unwrap_err();
    assert_eq!(kind(&again), Some(StderrKind::AlreadyExists), "{again:?}");
    let child = a.child("c").unwrap();
    z.create(&child, &[]).await.unwrap();

    let got = z
        .get(
            child.as_str(),
            &[
                "zrepl:placeholder",
                "readonly",
                "encryption",
                "receive_resume_token",
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        got["zrepl:placeholder"],
        PropertyValue {
            value: "on".into(),
            source: "inherited from pool/a".into()
        }
    );
    assert_eq!(
        got["readonly"],
        PropertyValue {
            value: "off".into(),
            source: "default".into()
        }
    );
    assert_eq!(got["encryption"].value, "off");
    assert_eq!(got["receive_resume_token"].value, "-");
    z.set(
        &child,
        &[
            ("readonly".into(), "on".into()),
            ("user:x".into(), "1".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        z.get(child.as_str(), &["readonly"]).await.unwrap()["readonly"].source,
        "local"
    );
    assert!(
        z.write(&child, 1).is_err(),
        "readonly filesystem took a write"
    );
    z.inherit(&child, "readonly").await.unwrap();
    assert_eq!(
        z.get(child.as_str(), &["readonly"]).await.unwrap()["readonly"].value,
        "off"
    );
    assert!(z.set(&child, &[("guid".into(), "1".into())]).await.is_err());
    assert!(z.get(child.as_str(), &["no_such_prop"]).await.is_err());
    let unset = z.get(pool.as_str(), &["user:x"]).await.unwrap();
    assert_eq!(
        unset["user:x"],
        PropertyValue {
            value: "-".into(),
            source: "-".into()
        }
    );
    let mp = z.get(child.as_str(), &["mountpoint"]).await.unwrap();
    assert_eq!(mp["mountpoint"].value, "/pool/a/c");

    // createtxg grows, guids differ
    let l = z.list(&pool).await.unwrap();
    assert_eq!(l.len(), 3);
    assert!(l[0].createtxg < l[1].createtxg && l[1].createtxg < l[2].createtxg);
    assert!(l[1].placeholder && l[2].placeholder && !l[0].placeholder);
    assert_ne!(l[1].guid, l[2].guid);
    assert!(z.version().await.unwrap().userland.contains("fake"));
}

#[tokio::test]
async fn encryption_is_inherited_from_the_root() {
    let z = FakeZfs::new();
    z.add_pool("pool").unwrap();
    let enc = p("pool/enc");
    z.create(
        &enc,
        &[
            ("encryption".into(), "on".into()),
            ("keyformat".into(), "passphrase".into()),
        ],
    )
    .await
    .unwrap();
    z.create(&p("pool/enc/c"), &[]).await.unwrap();
    let got = z
        .get("pool/enc/c", &["encryption", "encryptionroot", "keystatus"])
        .await
        .unwrap();
    assert_eq!(got["encryption"].value, "aes-256-gcm");
    assert_eq!(got["encryption"].source, "inherited from pool/enc");
    assert_eq!(got["encryptionroot"].value, "pool/enc");
    assert_eq!(got["keystatus"].value, "available");
    z.set_key_loaded(&enc, false).unwrap();
    let l = z.list(&enc).await.unwrap();
    assert_eq!(l[1].encryption_root, Some(enc.clone()));
    assert_eq!(l[1].key_status.as_deref(), Some("unavailable"));
}

#[tokio::test]
async fn snapshots_are_atomic_and_share_a_txg() {
    let z = FakeZfs::new();
    z.add_pool("pool").unwrap();
    let (a, b) = (p("pool/a"), p("pool/b"));
    z.create(&a, &[]).await.unwrap();
    z.create(&b, &[]).await.unwrap();
    let err = z
        .snapshot(&[sn(&a, "s"), sn(&p("pool/nope"), "s")])
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(StderrKind::DatasetDoesNotExist), "{err:?}");
    assert!(
        !z.exists("pool/a@s"),
        "a failed snapshot call created something"
    );
    z.snapshot(&[sn(&a, "s"), sn(&b, "s")]).await.unwrap();
    let ta = z.get("pool/a@s", &["createtxg"]).await.unwrap()["createtxg"]
        .value
        .clone();
    let tb = z.get("pool/b@s", &["createtxg"]).await.unwrap()["createtxg"]
        .value
        .clone();
    assert_eq!(ta, tb);
    assert_ne!(
        z.guid("pool/a@s").await.unwrap(),
        z.guid("pool/b@s").await.unwrap()
    );
    let dup = z.snapshot(&[sn(&a, "s")]).await.unwrap_err();
    assert_eq!(kind(&dup), Some(StderrKind::AlreadyExists));
}

#[tokio::test]
async fn bookmarks_and_holds() {
    let (z, src, _) = setup().await;
    let (a, b) = (sn(&src, "a"), sn(&src, "b"));
    let (ga, gb) = (
        z.guid("pool/src@a").await.unwrap(),
        z.guid("pool/src@b").await.unwrap(),
    );
    let bm = BookmarkName::new(&src, "m").unwrap();
    z.bookmark(&VersionRef::Snapshot(a.clone()), ga, &bm)
        .await
        .unwrap();
    z.bookmark(&VersionRef::Snapshot(a.clone()), ga, &bm)
        .await
        .unwrap();
    let e = z
        .bookmark(&VersionRef::Snapshot(b.clone()), gb, &bm)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ZfsError::BookmarkExists { existing, expected, .. } if existing == ga && expected == gb)
    );
    // copy a bookmark: same guid
    let copy = BookmarkName::new(&src, "copy").unwrap();
    z.bookmark(&VersionRef::Bookmark(bm.clone()), ga, &copy)
        .await
        .unwrap();
    assert_eq!(z.guid(&copy.to_string()).await.unwrap(), ga);
    let gone = BookmarkName::new(&src, "gone").unwrap();
    let e = z
        .bookmark(
            &VersionRef::Bookmark(gone.clone()),
            1,
            &BookmarkName::new(&src, "x").unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ZfsError::DatasetDoesNotExist { path } if *path == gone.to_string()),
        "{e:?}"
    );

    z.hold(&a, "t").await.unwrap();
    z.hold(&a, "t").await.unwrap();
    z.hold(&a, "u").await.unwrap();
    assert_eq!(
        z.holds(&a).await.unwrap(),
        vec!["t".to_string(), "u".to_string()]
    );
    let e = z
        .destroy(&DestroyTarget::Snapshot(a.clone()))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(StderrKind::Held), "{e:?}");
    z.release(&a, "t").await.unwrap();
    z.release(&a, "t").await.unwrap();
    z.release(&sn(&src, "none"), "t").await.unwrap();
    assert!(z
        .hold(&sn(&src, "none"), "t")
        .await
        .unwrap_err()
        .is_does_not_exist());
    let vs = z.list_versions(&src).await.unwrap();
    assert_eq!(names(&vs), ["@a", "#copy", "#m", "@b"]);
    assert_eq!(vs[0].userrefs, Some(1));
    assert_eq!(vs[1].userrefs, None);
}

#[tokio::test]
async fn batched_destroy_reports_held_and_destroys_the_rest() {
    let (z, src, _) = setup().await;
    z.snapshot(&[sn(&src, "c")]).await.unwrap();
    z.hold(&sn(&src, "b"), "keep").await.unwrap();
    let all: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let r = z.destroy_snapshots(&src, &all).await.unwrap();
    assert_eq!(r.destroyed, vec!["a".to_string(), "c".to_string()]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].snapshot, "pool/src@b");
    assert_eq!(r.failed[0].reason, DestroyReason::Held);
    assert_eq!(names(&z.list_versions(&src).await.unwrap()), ["@b"]);
    let e = z
        .destroy_snapshots(&src, &["zz".to_string()])
        .await
        .unwrap_err();
    assert!(e.is_does_not_exist(), "{e:?}");
    assert_eq!(
        z.destroy_snapshots(&src, &[]).await.unwrap(),
        DestroyReport::default()
    );
}

#[tokio::test]
async fn destroy_and_rollback_rules() {
    let (z, src, _) = setup().await;
    let e = z
        .destroy(&DestroyTarget::Dataset(src.clone()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has children"), "{e}");
    let e = z
        .destroy(&DestroyTarget::Dataset(p("pool")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not apply to pools"), "{e}");
    let e = z.rollback(&sn(&src, "a")).await.unwrap_err();
    assert!(e.to_string().contains("more recent snapshots"), "{e}");
    z.write(&src, 5).unwrap();
    assert_eq!(
        z.get(src.as_str(), &["written"]).await.unwrap()["written"].value,
        "5"
    );
    z.rollback(&sn(&src, "b")).await.unwrap();
    assert_eq!(
        z.get(src.as_str(), &["written"]).await.unwrap()["written"].value,
        "0"
    );
    let bm = DestroyTarget::Bookmark(BookmarkName::new(&src, "nope").unwrap());
    assert!(z.destroy(&bm).await.unwrap_err().is_does_not_exist());
    z.destroy_idempotent(&bm).await.unwrap();
    let e = z.list(&p("pool/none")).await.unwrap_err();
    assert!(matches!(&e, ZfsError::DatasetDoesNotExist { path } if path == "pool/none"));
}

#[tokio::test]
async fn fault_injection_and_call_counts() {
    let (z, src, _) = setup().await;
    let a = sn(&src, "a");
    z.reset_calls();
    z.fail_next(FakeOp::Hold, "boom");
    assert!(matches!(z.hold(&a, "t").await, Err(ZfsError::Injected(m)) if m == "boom"));
    z.hold(&a, "t").await.unwrap();
    assert_eq!(z.calls(FakeOp::Hold), 2);
    z.fail_times(FakeOp::List, 2, "list down");
    assert!(z.list(&src).await.is_err());
    assert!(z.list(&src).await.is_err());
    z.list(&src).await.unwrap();
    assert_eq!(z.calls(FakeOp::List), 3);
    z.fail_always(FakeOp::Get, "get down");
    for _ in 0..3 {
        assert!(z.guid("pool/src@a").await.is_err());
    }
    z.clear_faults();
    z.guid("pool/src@a").await.unwrap();
    z.fail_next_with(FakeOp::Destroy, || {
        state::cmd_err("zfs destroy", "dataset is busy")
    });
    let e = z
        .destroy(&DestroyTarget::Snapshot(sn(&src, "b")))
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(StderrKind::Busy));
    assert!(z.exists("pool/src@b"));

    // a receive that dies after n bytes keeps the resumable state
    let v = args(&z, None, &a).await.validate(&z).await.unwrap();
    let mut stream = z.send(&v).await.unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    z.fail_recv_at_byte(700);
    let target = p("pool/dst/t");
    let mut sink = z.recv(&RecvArgs::new(target.clone())).await.unwrap();
    let mut written = 0;
    let e = loop {
        match sink.write(&all[written..]).await {
            Ok(n) => written += n,
            Err(e) => break e,
        }
    };
    assert_eq!(written, 700, "{e}");
    assert!(matches!(sink.finish().await, Err(ZfsError::Injected(_))));
    let token = z.list(&target).await.unwrap()[0]
        .resume_token
        .clone()
        .expect("token");
    assert!(z.resume_token_info(&token).await.unwrap().bytes > 0);

    // a stream cut at byte n yields exactly n bytes and then a read error
    z.fail_send_at_byte(123);
    let mut stream = z.send(&v).await.unwrap();
    let mut got = Vec::new();
    let e = stream.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(got.len(), 123);
    assert!(e.to_string().contains("injected"), "{e}");
}
