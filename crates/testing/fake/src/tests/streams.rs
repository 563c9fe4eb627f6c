//! Send and receive: round trips, forced and encrypted receives, resumability.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test]
async fn full_and_incremental_round_trip() {
    let (z, src, _) = setup().await;
    let other = FakeZfs::new();
    other.add_pool("backup").unwrap();
    let target = p("backup/src");
    let (a, b) = (sn(&src, "a"), sn(&src, "b"));

    let v = args(&z, None, &a).await.validate(&z).await.unwrap();
    assert_eq!(z.send_dry(&v).await.unwrap().size, 1000);
    let mut recv = RecvArgs::new(target.clone());
    recv.expect = Some(("a".into(), z.guid("pool/src@a").await.unwrap()));
    let n = transfer(&z, &other, args(&z, None, &a).await, &recv, false)
        .await
        .unwrap();
    assert!(n > 1000, "full stream of {n} bytes");

    let inc = args(&z, Some(&a), &b).await;
    assert_eq!(
        z.send_dry(&inc.clone().validate(&z).await.unwrap())
            .await
            .unwrap()
            .size,
        300
    );
    recv.expect = Some(("b".into(), z.guid("pool/src@b").await.unwrap()));
    transfer(&z, &other, inc.clone(), &recv, false)
        .await
        .unwrap();
    let (src_vs, dst_vs) = (
        z.list_versions(&src).await.unwrap(),
        other.list_versions(&target).await.unwrap(),
    );
    let guids = |vs: &[zrelay_zfs::parse::Version]| {
        vs.iter()
            .map(|v| (v.name.clone(), v.guid, v.creation))
            .collect::<Vec<_>>()
    };
    assert_eq!(guids(&src_vs), guids(&dst_vs));

    // the same incremental again: the target's newest snapshot is no longer `a`
    let e = transfer(
        &z,
        &other,
        inc.clone(),
        &RecvArgs::new(target.clone()),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("does not match incremental source"),
        "{e}"
    );
    // a modified target refuses an incremental without -F
    z.write(&src, 10).unwrap();
    z.snapshot(&[sn(&src, "c")]).await.unwrap();
    other.write(&target, 1).unwrap();
    let bc = args(&z, Some(&b), &sn(&src, "c")).await;
    let e = transfer(
        &z,
        &other,
        bc.clone(),
        &RecvArgs::new(target.clone()),
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("has been modified"), "{e}");
    transfer(&z, &other, bc, &RecvArgs::new(target.clone()), true)
        .await
        .unwrap();
    assert_eq!(
        names(&other.list_versions(&target).await.unwrap()),
        ["@a", "@b", "@c"]
    );
    // a full stream into an existing filesystem needs -F
    let e = transfer(
        &z,
        &other,
        args(&z, None, &a).await,
        &RecvArgs::new(target.clone()),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(kind(&e), Some(StderrKind::AlreadyExists), "{e:?}");
    // a missing parent
    let e = transfer(
        &z,
        &other,
        args(&z, None, &a).await,
        &RecvArgs::new(p("backup/x/y")),
        false,
    )
    .await
    .unwrap_err();
    assert!(e.is_does_not_exist(), "{e:?}");
}

#[tokio::test]
async fn properties_and_intermediates() {
    let (z, src, dst) = setup().await;
    z.set(
        &src,
        &[("user:a".into(), "1".into()), ("user:b".into(), "2".into())],
    )
    .await
    .unwrap();
    z.snapshot(&[sn(&src, "c")]).await.unwrap();
    let mut a = args(&z, None, &sn(&src, "a")).await;
    a.flags.send_properties = true;
    let target = dst.child("t").unwrap();
    let mut recv = RecvArgs::new(target.clone());
    recv.inherit_props = vec!["user:b".into()];
    recv.override_props = vec![("user:c".into(), "3".into())];
    transfer(&z, &z, a, &recv, false).await.unwrap();
    let got = z
        .get(target.as_str(), &["user:a", "user:b", "user:c"])
        .await
        .unwrap();
    assert_eq!(
        (got["user:a"].value.as_str(), got["user:a"].source.as_str()),
        ("1", "received")
    );
    assert_eq!(got["user:b"].value, "-");
    assert_eq!(
        (got["user:c"].value.as_str(), got["user:c"].source.as_str()),
        ("3", "local")
    );
    let mut i = args(&z, Some(&sn(&src, "a")), &sn(&src, "c")).await;
    i.intermediates = true;
    assert_eq!(
        z.send_dry(&i.clone().validate(&z).await.unwrap())
            .await
            .unwrap()
            .size,
        300
    );
    transfer(&z, &z, i, &RecvArgs::new(target.clone()), false)
        .await
        .unwrap();
    assert_eq!(
        names(&z.list_versions(&target).await.unwrap()),
        ["@a", "@b", "@c"]
    );
}

#[tokio::test]
async fn force_receive_replaces_but_refuses_encrypted_targets() {
    let (z, src, dst) = setup().await;
    z.snapshot(&[sn(&dst, "old")]).await.unwrap();
    transfer(
        &z,
        &z,
        args(&z, None, &sn(&src, "b")).await,
        &RecvArgs::new(dst.clone()),
        true,
    )
    .await
    .unwrap();
    assert_eq!(names(&z.list_versions(&dst).await.unwrap()), ["@b"]);
    assert_eq!(z.calls(FakeOp::RecvForceRollback), 1);
    assert_eq!(z.calls(FakeOp::Recv), 1);

    let enc = p("pool/enc");
    z.create(&enc, &[("encryption".into(), "aes-256-gcm".into())])
        .await
        .unwrap();
    let e = transfer(
        &z,
        &z,
        args(&z, None, &sn(&src, "a")).await,
        &RecvArgs::new(enc.clone()),
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, ZfsError::RecvDestroyOrOverwriteEncrypted { ref fs, .. } if fs == "pool/enc"),
        "{e:?}"
    );
}

#[tokio::test]
async fn raw_send_of_encrypted_creates_an_encryption_root() {
    let z = FakeZfs::new();
    z.add_pool("pool").unwrap();
    let enc = p("pool/enc");
    z.create(&enc, &[("encryption".into(), "on".into())])
        .await
        .unwrap();
    z.write(&enc, 10).unwrap();
    z.snapshot(&[sn(&enc, "s")]).await.unwrap();
    let mut a = args(&z, None, &sn(&enc, "s")).await;
    a.encrypted = true;
    transfer(&z, &z, a, &RecvArgs::new(p("pool/copy")), false)
        .await
        .unwrap();
    let got = z
        .get("pool/copy", &["encryption", "encryptionroot", "keystatus"])
        .await
        .unwrap();
    assert_eq!(got["encryptionroot"].value, "pool/copy");
    assert_eq!(got["keystatus"].value, "unavailable");
    assert_eq!(got["encryption"].value, "aes-256-gcm");
}

#[tokio::test]
async fn interrupted_full_receive_resumes_to_completion() {
    let z = FakeZfs::new();
    z.add_pool("pool").unwrap();
    let src = p("pool/src");
    z.create(&src, &[]).await.unwrap();
    z.write(&src, 200_000).unwrap();
    z.snapshot(&[sn(&src, "s")]).await.unwrap();
    let target = p("pool/dst");
    let full = args(&z, None, &sn(&src, "s")).await;
    let token = interrupted(&z, &full, &RecvArgs::new(target.clone()), 50_000).await;
    // a brand-new filesystem: listed with its token, no snapshots, not receivable otherwise
    assert!(z.list_versions(&target).await.unwrap().is_empty());
    let info = z.resume_token_info(&token).await.unwrap();
    assert_eq!(
        (info.toname.clone(), info.toguid, info.fromguid),
        (sn(&src, "s"), full.to.1, None)
    );
    assert!(info.bytes > 0 && info.bytes < 50_000, "{info:?}");
    let e = transfer(&z, &z, full.clone(), &RecvArgs::new(target.clone()), false)
        .await
        .unwrap_err();
    assert_eq!(kind(&e), Some(StderrKind::ResumableStateExists), "{e:?}");

    // interrupt the resumed stream again, then finish it
    let mut resume = full.clone();
    resume.resume_token = Some(token.clone());
    let token2 = interrupted(&z, &resume, &RecvArgs::new(target.clone()), 30_000).await;
    let info2 = z.resume_token_info(&token2).await.unwrap();
    assert!(info2.bytes > info.bytes, "{info2:?}");
    resume.resume_token = Some(token2);
    let v = resume.clone().validate(&z).await.unwrap();
    assert_eq!(z.send_dry(&v).await.unwrap().size, 200_000 - info2.bytes);
    let mut recv = RecvArgs::new(target.clone());
    recv.expect = Some(("s".into(), full.to.1));
    let moved = transfer(&z, &z, resume, &recv, false).await.unwrap();
    assert!(
        moved < 200_000 - info2.bytes + 1000,
        "resumed stream moved {moved}"
    );
    let got = z
        .get(target.as_str(), &["receive_resume_token"])
        .await
        .unwrap();
    assert_eq!(got["receive_resume_token"].value, "-");
    assert_eq!(z.list_versions(&target).await.unwrap()[0].guid, full.to.1);
}

#[tokio::test]
async fn interrupted_incremental_and_abort() {
    let (z, src, dst) = setup().await;
    let target = dst.child("t").unwrap();
    let (a, b) = (sn(&src, "a"), sn(&src, "b"));
    transfer(
        &z,
        &z,
        args(&z, None, &a).await,
        &RecvArgs::new(target.clone()),
        false,
    )
    .await
    .unwrap();
    let inc = args(&z, Some(&a), &b).await;
    let token = interrupted(&z, &inc, &RecvArgs::new(target.clone()), 200).await;
    let info = z.resume_token_info(&token).await.unwrap();
    assert_eq!(info.fromguid, Some(inc.from.as_ref().unwrap().1));
    // the target keeps its snapshot; -A discards the state
    assert_eq!(names(&z.list_versions(&target).await.unwrap()), ["@a"]);
    z.recv_abort(&target).await.unwrap();
    assert!(z.list(&target).await.unwrap()[0].resume_token.is_none());
    let e = z.recv_abort(&target).await.unwrap_err();
    assert_eq!(kind(&e), Some(StderrKind::NoResumableState), "{e:?}");
    // a token no longer matching the state is refused by the receiver
    let mut stale = inc.clone();
    stale.resume_token = Some(token);
    assert!(
        transfer(&z, &z, stale, &RecvArgs::new(target.clone()), false)
            .await
            .is_err()
    );
    transfer(&z, &z, inc.clone(), &RecvArgs::new(target.clone()), false)
        .await
        .unwrap();
    assert_eq!(
        names(&z.list_versions(&target).await.unwrap()),
        ["@a", "@b"]
    );

    // aborting an interrupted full receive removes the new filesystem
    let fresh = dst.child("fresh").unwrap();
    interrupted(
        &z,
        &args(&z, None, &b).await,
        &RecvArgs::new(fresh.clone()),
        700,
    )
    .await;
    z.recv_abort(&fresh).await.unwrap();
    assert!(!z.exists(fresh.as_str()));
}

#[tokio::test]
async fn truncated_stream_without_resumable_leaves_nothing() {
    let (z, src, dst) = setup().await;
    let target = dst.child("t").unwrap();
    let mut recv = RecvArgs::new(target.clone());
    recv.resumable = false;
    let v = args(&z, None, &sn(&src, "a"))
        .await
        .validate(&z)
        .await
        .unwrap();
    let mut stream = z.send(&v).await.unwrap();
    let mut buf = vec![0u8; 600];
    stream.read_exact(&mut buf).await.unwrap();
    let mut sink = z.recv(&recv).await.unwrap();
    sink.write_all(&buf).await.unwrap();
    let e = sink.finish().await.unwrap_err();
    assert!(e.to_string().contains("incomplete stream"), "{e}");
    assert!(!e.to_string().contains("zfs send -t"), "{e}");
    assert!(!z.exists(target.as_str()));
    assert!(matches!(sink.finish().await, Err(ZfsError::Closed(_))));
    // corruption is detected
    let mut stream = z.send(&v).await.unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.unwrap();
    let mid = all.len() / 2;
    all[mid] ^= 0xff;
    let mut sink = z.recv(&RecvArgs::new(target.clone())).await.unwrap();
    assert!(sink.write_all(&all).await.is_err());
    assert!(sink
        .finish()
        .await
        .unwrap_err()
        .to_string()
        .contains("checksum mismatch"));
}

#[tokio::test]
async fn resume_tokens_are_validated() {
    let e = FakeZfs::new()
        .resume_token_info("1-garbage-token")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ZfsError::SendValidation(m) if m.contains("token") && m.contains("malformed")),
        "{e:?}"
    );
    let (z, src, dst) = setup().await;
    let full = args(&z, None, &sn(&src, "b")).await;
    let token = interrupted(&z, &full, &RecvArgs::new(dst.child("t").unwrap()), 500).await;
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('0') { '1' } else { '0' });
    assert!(z.resume_token_info(&tampered).await.is_err());
    // the token is for a full send: an incremental request is refused
    let mut inc = args(&z, Some(&sn(&src, "a")), &sn(&src, "b")).await;
    inc.resume_token = Some(token.clone());
    assert!(matches!(
        inc.validate(&z).await,
        Err(ZfsError::SendValidation(_))
    ));
    // the sent snapshot is gone
    z.destroy(&DestroyTarget::Snapshot(sn(&src, "b")))
        .await
        .unwrap();
    let info = z.resume_token_info(&token).await.unwrap();
    assert_eq!(info.toname, sn(&src, "b"));
}
