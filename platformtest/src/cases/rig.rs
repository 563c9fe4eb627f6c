//! Cases that prove the rig itself: pools, filesystems, versions, holds, and
//! send/receive (full, incremental, interrupted and resumed) on real OpenZFS.
//! Dataset names contain spaces on purpose.

use anyhow::{bail, ensure, Result};
use zrelay_zfs::{BookmarkName, RecvArgs, SendArgs, SendFlags, SnapshotName, VersionRef, Zfs};

use crate::harness::Ctx;

/// The pool exists, is healthy and is imported under its unique name.
pub async fn rig_create_pool(ctx: &Ctx) -> Result<()> {
    let health = ctx.sh("zpool list -H -o health \"$POOL\"").await?;
    ensure!(health.trim() == "ONLINE", "pool health {health:?}");
    Ok(())
}

/// A filesystem whose name has spaces is created and listed.
pub async fn rig_create_filesystem(ctx: &Ctx) -> Result<()> {
    let fs = ctx.ds("a b/c d");
    ensure!(
        ctx.zfs.create(&fs, &[]).await.is_err(),
        "create without the parent must fail"
    );
    ctx.zfs.create(&ctx.ds("a b"), &[]).await?;
    ctx.zfs.create(&fs, &[]).await?;
    let listed = ctx.zfs.list(&ctx.root).await?;
    ensure!(
        listed.iter().any(|d| d.path == fs),
        "{fs} not listed: {listed:?}"
    );
    Ok(())
}

/// Snapshot, bookmark, hold and release, checked with the plain zfs CLI.
pub async fn rig_snapshot_bookmark_hold_release(ctx: &Ctx) -> Result<()> {
    let fs = ctx.ds("with space");
    ctx.zfs.create(&fs, &[]).await?;
    let snap = SnapshotName::new(&fs, "s 1")?;
    ctx.zfs.snapshot(std::slice::from_ref(&snap)).await?;
    let guid = ctx.zfs.guid(&snap.to_string()).await?;
    let bm = BookmarkName::new(&fs, "b 1")?;
    ctx.zfs
        .bookmark(&VersionRef::Snapshot(snap.clone()), guid, &bm)
        .await?;
    let cli = ctx
        .sh(&format!("zfs list -H -o name,guid -t bookmark '{fs}'"))
        .await?;
    ensure!(
        cli.trim() == format!("{bm}\t{guid}"),
        "bookmark listing {cli:?}"
    );
    ctx.zfs.hold(&snap, "zrelay test").await?;
    let holds = ctx.sh(&format!("zfs holds -H '{snap}'")).await?;
    ensure!(holds.contains("zrelay test"), "holds {holds:?}");
    if ctx.sh(&format!("zfs destroy '{snap}'")).await.is_ok() {
        bail!("a held snapshot was destroyed");
    }
    ctx.zfs.release(&snap, "zrelay test").await?;
    ensure!(ctx.zfs.holds(&snap).await?.is_empty());
    ctx.sh(&format!("zfs destroy '{snap}'")).await?;
    Ok(())
}

async fn send_to(ctx: &Ctx, args: SendArgs, recv: RecvArgs) -> Result<u64> {
    let valid = args.validate(&ctx.zfs).await?;
    let mut stream = ctx.zfs.send(&valid).await?;
    let mut sink = ctx.zfs.recv(&recv).await?;
    let n = tokio::io::copy(&mut stream, &mut sink).await?;
    stream.close().await?;
    sink.finish().await?;
    Ok(n)
}

fn args(
    fs: &zrelay_zfs::DatasetPath,
    from: Option<(SnapshotName, u64)>,
    to: (SnapshotName, u64),
) -> SendArgs {
    SendArgs {
        fs: fs.clone(),
        from: from.map(|(s, g)| (VersionRef::Snapshot(s), g)),
        to,
        encrypted: false,
        flags: SendFlags::default(),
        resume_token: None,
        intermediates: false,
    }
}

/// Full then incremental send/receive between two trees; GUIDs and file checksums match.
pub async fn rig_send_recv_full_and_incremental(ctx: &Ctx) -> Result<()> {
    let src = ctx.ds("src fs");
    ctx.zfs.create(&src, &[]).await?;
    ctx.write(&src, "one", 200_000).await?;
    let s1 = SnapshotName::new(&src, "one")?;
    ctx.zfs.snapshot(std::slice::from_ref(&s1)).await?;
    let g1 = ctx.zfs.guid(&s1.to_string()).await?;
    ctx.zfs.create(&ctx.ds("dst"), &[]).await?;
    let dst = ctx.ds("dst/copy of src");
    let mut recv = RecvArgs::new(dst.clone());
    recv.unmounted = false;
    recv.expect = Some(("one".into(), g1));
    let full = send_to(ctx, args(&src, None, (s1.clone(), g1)), recv.clone()).await?;
    ensure!(full > 200_000, "full stream only {full} bytes");

    ctx.write(&src, "two", 100_000).await?;
    let s2 = SnapshotName::new(&src, "two")?;
    ctx.zfs.snapshot(std::slice::from_ref(&s2)).await?;
    let g2 = ctx.zfs.guid(&s2.to_string()).await?;
    recv.expect = Some(("two".into(), g2));
    let incr = send_to(ctx, args(&src, Some((s1, g1)), (s2, g2)), recv).await?;
    ensure!(
        incr > 100_000 && incr < full,
        "incremental stream {incr} bytes (full was {full})"
    );

    let received = ctx.zfs.list_versions(&dst).await?;
    let guids: Vec<u64> = received.iter().map(|v| v.guid).collect();
    ensure!(guids == vec![g1, g2], "receiver guids {guids:x?}");
    let sums = ctx
        .sh(&format!("cd \"$(zfs get -H -o value mountpoint '{src}')\" && sha256sum one two; cd \"$(zfs get -H -o value mountpoint '{dst}')\" && sha256sum one two"))
        .await?;
    let lines: Vec<&str> = sums.lines().collect();
    ensure!(
        lines.len() == 4 && lines[0] == lines[2] && lines[1] == lines[3],
        "checksums differ: {sums}"
    );
    Ok(())
}

/// An interrupted `zfs recv -s` leaves a receive_resume_token, and `zfs send -t` completes it.
pub async fn rig_interrupted_recv_resumes_with_token(ctx: &Ctx) -> Result<()> {
    let src = ctx.ds("src");
    ctx.zfs.create(&src, &[]).await?;
    ctx.write(&src, "big", 3_000_000).await?;
    let s = SnapshotName::new(&src, "s")?;
    ctx.zfs.snapshot(std::slice::from_ref(&s)).await?;
    let guid = ctx.zfs.guid(&s.to_string()).await?;
    let dst = ctx.ds("dst");
    // cut the stream off after 1 MB: the receive fails and saves its state
    let cut = ctx
        .sh(&format!(
            "zfs send '{s}' | head -c 1000000 | zfs recv -s -u '{dst}'"
        ))
        .await;
    ensure!(cut.is_err(), "a truncated receive succeeded");
    let listed = ctx.zfs.list(&ctx.root).await?;
    let token = listed
        .iter()
        .find(|d| d.path == dst)
        .and_then(|d| d.resume_token.clone())
        .ok_or_else(|| anyhow::anyhow!("no receive_resume_token on {dst}: {listed:?}"))?;
    let info = ctx.zfs.resume_token_info(&token).await?;
    ensure!(
        info.toguid == guid && info.toname == s,
        "token decodes to {info:?}"
    );
    ensure!(info.bytes > 0, "token says nothing was received: {info:?}");

    let mut resume = args(&src, None, (s.clone(), guid));
    resume.resume_token = Some(token);
    let mut recv = RecvArgs::new(dst.clone());
    recv.expect = Some(("s".into(), guid));
    let rest = send_to(ctx, resume, recv).await?;
    ensure!(rest < 3_000_000, "resumed stream re-sent {rest} bytes");
    let after = ctx.zfs.list(&ctx.root).await?;
    let d = after.iter().find(|d| d.path == dst).expect("dst exists");
    ensure!(d.resume_token.is_none(), "token still set after resume");
    ensure!(
        d.versions.iter().any(|v| v.guid == guid),
        "snapshot not received"
    );
    Ok(())
}
