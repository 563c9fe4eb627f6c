//! Conformance cases for the remaining operations: atomic multi-dataset
//! snapshots, properties, rollback, and incremental sends from bookmarks and
//! with intermediates, received with `-o`/`-x`.

use super::cases::{ds, fs_with_snaps, snap, version_names};
use super::{CaseResult, Fixture, Outcome};
use crate::ensure_case;
use zrelay_zfs::api::{RecvArgs, VersionRef};
use zrelay_zfs::name::{BookmarkName, VersionKind};
use zrelay_zfs::send_args::{SendArgs, SendFlags};

pub(super) async fn snapshot_is_atomic_across_filesystems(fx: &dyn Fixture) -> Outcome {
    let a = fs_with_snaps(fx, "a", &[]).await?;
    let b = fs_with_snaps(fx, "b c", &[]).await?;
    fx.zfs()
        .snapshot(&[snap(&a, "tick"), snap(&b, "tick")])
        .await
        .ctx("snapshot")?;
    let ta = fx.zfs().list_versions(&a).await.ctx("list a")?;
    let tb = fx.zfs().list_versions(&b).await.ctx("list b")?;
    ensure_case!(ta.len() == 1 && tb.len() == 1, "versions {ta:?} {tb:?}");
    ensure_case!(
        ta[0].createtxg == tb[0].createtxg,
        "not one txg: {} vs {}",
        ta[0].createtxg,
        tb[0].createtxg
    );
    // one bad name fails the whole call: nothing is created
    let bad = fx
        .zfs()
        .snapshot(&[snap(&a, "second"), snap(&ds(fx, "missing"), "second")])
        .await;
    ensure_case!(bad.is_err(), "snapshot of a missing filesystem succeeded");
    let ta = fx.zfs().list_versions(&a).await.ctx("list a")?;
    ensure_case!(ta.len() == 1, "a partial snapshot was taken: {ta:?}");
    Ok(())
}

pub(super) async fn get_set_inherit_and_rollback(fx: &dyn Fixture) -> Outcome {
    let parent = fs_with_snaps(fx, "parent", &[]).await?;
    let child = parent.child("child").unwrap();
    let z = fx.zfs();
    z.create(&child, &[("zrepl:placeholder".into(), "on".into())])
        .await
        .ctx("create with props")?;
    let p = z
        .get(child.as_str(), &["zrepl:placeholder"])
        .await
        .ctx("get")?;
    ensure_case!(
        p["zrepl:placeholder"].value == "on" && p["zrepl:placeholder"].source == "local",
        "{p:?}"
    );
    z.set(&parent, &[("zrelay:test".into(), "from parent".into())])
        .await
        .ctx("set")?;
    z.set(&child, &[("zrelay:test".into(), "own".into())])
        .await
        .ctx("set")?;
    z.inherit(&child, "zrelay:test").await.ctx("inherit")?;
    let p = z.get(child.as_str(), &["zrelay:test"]).await.ctx("get")?;
    ensure_case!(
        p["zrelay:test"].value == "from parent",
        "after inherit: {p:?}"
    );
    ensure_case!(
        p["zrelay:test"].source.contains(parent.as_str()),
        "source {:?}",
        p["zrelay:test"].source
    );

    fx.write(&child, 10_000).await?;
    z.snapshot(&[snap(&child, "1")]).await.ctx("snapshot 1")?;
    fx.write(&child, 10_000).await?;
    z.snapshot(&[snap(&child, "2")]).await.ctx("snapshot 2")?;
    ensure_case!(
        z.rollback(&snap(&child, "1")).await.is_err(),
        "rollback past a newer snapshot succeeded"
    );
    z.rollback(&snap(&child, "2"))
        .await
        .ctx("rollback to the newest")?;
    let n = z.list_versions(&child).await.ctx("list")?.len();
    ensure_case!(n == 2, "rollback destroyed snapshots: {n} left");
    Ok(())
}

pub(super) async fn incremental_from_bookmark_and_intermediates(fx: &dyn Fixture) -> Outcome {
    let src = fs_with_snaps(fx, "src", &["1", "2", "3", "4"]).await?;
    let z = fx.zfs();
    let g = |n: &'static str| {
        let s = snap(&src, n);
        async move { z.guid(&s.to_string()).await.ctx("guid") }
    };
    let (g1, g2, g4) = (g("1").await?, g("2").await?, g("4").await?);
    let dst = ds(fx, "dst");
    let mut recv = RecvArgs::new(dst.clone());
    recv.override_props = vec![("zrelay:received".into(), "yes".into())];
    recv.inherit_props = vec!["compression".into()];
    let send = |from: Option<(VersionRef, u64)>,
                to: &'static str,
                guid: u64,
                intermediates: bool| SendArgs {
        fs: src.clone(),
        from,
        to: (snap(&src, to), guid),
        encrypted: false,
        flags: SendFlags::default(),
        resume_token: None,
        intermediates,
    };
    let copy = |args: SendArgs, recv: RecvArgs| async move {
        let v = args.validate(z).await.ctx("validate")?;
        let mut st = z.send(&v).await.ctx("send")?;
        let mut sink = z.recv(&recv).await.ctx("recv")?;
        tokio::io::copy(&mut st, &mut sink).await.ctx("copy")?;
        st.close().await.ctx("close")?;
        sink.finish().await.ctx("finish")
    };
    copy(send(None, "1", g1, false), recv.clone()).await?;
    // from a bookmark whose snapshot is gone
    let bm = BookmarkName::new(&src, "b1").unwrap();
    z.bookmark(&VersionRef::Snapshot(snap(&src, "1")), g1, &bm)
        .await
        .ctx("bookmark")?;
    z.destroy_snapshots(&src, &["1".into()])
        .await
        .ctx("destroy @1")?;
    copy(
        send(Some((VersionRef::Bookmark(bm), g1)), "2", g2, false),
        recv.clone(),
    )
    .await?;
    // -I brings @3 along with @4
    copy(
        send(
            Some((VersionRef::Snapshot(snap(&src, "2")), g2)),
            "4",
            g4,
            true,
        ),
        recv,
    )
    .await?;
    let names = version_names(fx, &dst, Some(VersionKind::Snapshot)).await?;
    ensure_case!(names == vec!["1", "2", "3", "4"], "receiver has {names:?}");
    let p = z.get(dst.as_str(), &["zrelay:received"]).await.ctx("get")?;
    ensure_case!(p["zrelay:received"].value == "yes", "-o not applied: {p:?}");
    Ok(())
}

/// `pools` names every imported pool (the fixture's among them), once each,
/// sorted, and each is a dataset `get` can read.
pub(super) async fn list_pools(fx: &dyn Fixture) -> Outcome {
    let pools = fx.zfs().pools().await.ctx("pools")?;
    let own = fx.root().pool();
    ensure_case!(
        pools.iter().any(|p| p.as_str() == own),
        "the fixture's pool {own:?} is missing from {pools:?}"
    );
    ensure_case!(
        pools.iter().all(|p| p.is_pool()),
        "not all pools: {pools:?}"
    );
    ensure_case!(
        pools.windows(2).all(|w| w[0] < w[1]),
        "not sorted and unique: {pools:?}"
    );
    for p in &pools {
        fx.zfs().guid(p.as_str()).await.ctx("guid of a pool")?;
    }
    Ok(())
}

/// `zfs destroy fs@%` destroys every snapshot and `fs@a%c` a range: the ZFS layer refuses
/// any `%` in a destroy target before a command is built, and nothing is destroyed.
pub(super) async fn destroy_never_takes_a_range(fx: &dyn Fixture) -> Outcome {
    use zrelay_zfs::api::DestroyTarget;
    use zrelay_zfs::name::SnapshotName;
    let fs = fs_with_snaps(fx, "range", &["a", "b", "c"]).await?;
    let z = fx.zfs();
    for names in [vec!["%"], vec!["a%c"], vec!["b", "%"]] {
        let names: Vec<String> = names.into_iter().map(String::from).collect();
        match z.destroy_snapshots(&fs, &names).await {
            Ok(r) => return Err(format!("destroy {names:?} ran: {r:?}")),
            Err(e) => ensure_case!(e.to_string().contains("range"), "destroy {names:?}: {e}"),
        }
    }
    let ranged = SnapshotName::parse(&format!("{fs}@a%c")).ctx("parse")?;
    ensure_case!(
        z.destroy(&DestroyTarget::Snapshot(ranged)).await.is_err(),
        "a single destroy of a range ran"
    );
    let left = version_names(fx, &fs, Some(VersionKind::Snapshot)).await?;
    ensure_case!(left == ["a", "b", "c"], "snapshots left: {left:?}");
    Ok(())
}

/// `rename` moves a filesystem with its children, snapshots, bookmarks and
/// holds, keeping GUIDs; it refuses an existing target and a missing parent.
pub(super) async fn rename_keeps_identity_and_refuses_clobbering(fx: &dyn Fixture) -> Outcome {
    let z = fx.zfs();
    let a = fs_with_snaps(fx, "ren a", &["s1", "s2"]).await?;
    let child = fs_with_snaps(fx, "ren a/kid", &["k1"]).await?;
    let s1 = snap(&a, "s1");
    z.hold(&s1, "zrelay_test_hold").await.ctx("hold")?;
    let mark = BookmarkName::new(&a, "m1").ctx("bookmark name")?;
    let g1 = z.guid(&s1.to_string()).await.ctx("guid s1")?;
    z.bookmark(&VersionRef::Snapshot(s1.clone()), g1, &mark)
        .await
        .ctx("bookmark")?;
    let kid_guid = z
        .guid(&snap(&child, "k1").to_string())
        .await
        .ctx("guid k1")?;
    let taken = fs_with_snaps(fx, "ren taken", &[]).await?;
    ensure_case!(
        z.rename(&a, &taken).await.is_err(),
        "rename onto an existing filesystem ran"
    );
    let orphan = ds(fx, "ren nowhere/b");
    ensure_case!(
        z.rename(&a, &orphan).await.is_err(),
        "rename under a missing parent ran"
    );
    let b = ds(fx, "ren b");
    z.rename(&a, &b).await.ctx("rename")?;
    ensure_case!(
        z.guid(a.as_str())
            .await
            .is_err_and(|e| e.is_does_not_exist()),
        "the old name still exists"
    );
    let s1b = snap(&b, "s1");
    ensure_case!(
        z.guid(&s1b.to_string()).await.ctx("guid after")? == g1,
        "the snapshot's GUID changed"
    );
    let holds = z.holds(&s1b).await.ctx("holds after")?;
    ensure_case!(
        holds == ["zrelay_test_hold"],
        "holds after the rename: {holds:?}"
    );
    let names = version_names(fx, &b, None).await?;
    ensure_case!(
        names == ["m1", "s1", "s2"] || names == ["s1", "m1", "s2"],
        "versions after the rename: {names:?}"
    );
    let kid = ds(fx, "ren b/kid");
    ensure_case!(
        z.guid(&snap(&kid, "k1").to_string())
            .await
            .ctx("child after")?
            == kid_guid,
        "the child did not move with its parent"
    );
    z.release(&s1b, "zrelay_test_hold").await.ctx("release")?;
    Ok(())
}
