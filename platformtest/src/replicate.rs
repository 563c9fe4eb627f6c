//! `zrelay-platformtest replicate SRC DST`: replicate every snapshot of SRC
//! into DST (full, then incremental steps) with live byte progress. The
//! quickstart's job until zrelay's own replication command exists.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::{
    DatasetPath, RealZfs, RecvArgs, SendArgs, SendFlags, SnapshotName, VersionRef, Zfs,
};

/// Replicate all snapshots of `src` into `dst`.
pub async fn run(src: &str, dst: &str) -> Result<()> {
    let zfs = RealZfs::new();
    let src = DatasetPath::parse(src)?;
    let dst = DatasetPath::parse(dst)?;
    let snaps: Vec<_> = zfs
        .list_versions(&src)
        .await?
        .into_iter()
        .filter(|v| v.kind == VersionKind::Snapshot)
        .collect();
    let mut from: Option<(SnapshotName, u64)> = None;
    for v in snaps {
        let to = SnapshotName::new(&src, &v.name)?;
        let args = SendArgs {
            fs: src.clone(),
            from: from.clone().map(|(s, g)| (VersionRef::Snapshot(s), g)),
            to: (to.clone(), v.guid),
            encrypted: false,
            flags: SendFlags::default(),
            resume_token: None,
            intermediates: false,
        };
        let valid = args.validate(&zfs).await?;
        let expected = zfs.send_dry(&valid).await?.size;
        let kind = if from.is_some() {
            "incremental"
        } else {
            "full"
        };
        println!("step {kind} -> {to}: about {expected} bytes");
        let mut stream = zfs.send(&valid).await?;
        let mut recv = RecvArgs::new(dst.clone());
        recv.unmounted = false;
        recv.expect = Some((v.name.clone(), v.guid));
        let mut sink = zfs.recv(&recv).await?;
        let started = Instant::now();
        let mut last = Instant::now();
        let mut done: u64 = 0;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = stream.read(&mut buf).await.context("reading zfs send")?;
            if n == 0 {
                break;
            }
            sink.write_all(&buf[..n])
                .await
                .context("writing zfs recv")?;
            done += n as u64;
            if last.elapsed() > Duration::from_millis(500) {
                last = Instant::now();
                println!(
                    "  {done} / {expected} bytes ({:.0}%)",
                    100.0 * done as f64 / expected.max(1) as f64
                );
            }
        }
        stream.close().await?;
        sink.finish().await?;
        println!(
            "  done: {done} bytes in {:.1}s, guid {:#x} verified",
            started.elapsed().as_secs_f64(),
            v.guid
        );
        from = Some((to, v.guid));
    }
    Ok(())
}
