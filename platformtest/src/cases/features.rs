//! What zrelay needs of OpenZFS, detected on the real system: the version
//! (userland and module) and a pool's feature flags.

use anyhow::{ensure, Result};
use zrelay_zfs::parse::FeatureState;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use super::replication::{endpoints, run_once};
use crate::daemons::SecondPool;
use crate::harness::Ctx;

/// A sending pool created with every feature disabled (`zpool create -d`,
/// as an old pool or a `compatibility` setting leaves it): the sender
/// refuses it by pool and feature, with the command that enables it, before
/// anything is sent or bookmarked; once enabled, replication works and the
/// cursor bookmark is there.
pub async fn pool_without_bookmarks_is_refused_by_name(ctx: &Ctx) -> Result<()> {
    let b = SecondPool::create_with(ctx, "-d").await?;
    let features = ctx.zfs.pool_features(&b.name).await?;
    ensure!(
        features.get("bookmarks") == Some(&FeatureState::Disabled),
        "zpool create -d left feature@bookmarks {:?}",
        features.get("bookmarks")
    );
    let src = DatasetPath::parse(&format!("{}/src", b.name))?;
    ctx.zfs.create(&src, &[]).await?;
    ctx.zfs.snapshot(&[SnapshotName::new(&src, "1")?]).await?;
    let dst = ctx.ds("dst");
    ctx.zfs.create(&dst, &[]).await?;

    let (sender, _) = endpoints(ctx, &src, &dst);
    let e = match sender.list_filesystems().await {
        Ok(l) => anyhow::bail!("a pool without bookmarks was listed for sending: {l:?}"),
        Err(e) => e.to_string(),
    };
    ensure!(
        e.contains(&format!("pool '{}' has feature@bookmarks disabled", b.name))
            && e.contains(&format!("zpool set feature@bookmarks=enabled {}", b.name)),
        "unclear refusal: {e}"
    );
    let versions = ctx.zfs.list_versions(&src).await?;
    ensure!(versions.len() == 1, "something was made: {versions:?}");

    ctx.sh(&format!("zpool set feature@bookmarks=enabled '{}'", b.name))
        .await?;
    ensure!(
        sender.list_filesystems().await.is_ok(),
        "still refused after the feature was enabled"
    );
    run_once(ctx, &src, &dst, 1).await?;
    let versions = ctx.zfs.list_versions(&src).await?;
    ensure!(
        versions
            .iter()
            .any(|v| v.kind == zrelay_zfs::name::VersionKind::Bookmark),
        "no cursor bookmark after replication: {versions:?}"
    );
    println!(
        "       refused with: {}",
        e.chars().take(160).collect::<String>()
    );
    Ok(())
}

/// The version the suite reports is the one the module runs, and what
/// zrelay derives from it holds on every line in the matrix.
pub async fn version_and_features_are_detected(ctx: &Ctx) -> Result<()> {
    let v = &ctx.version;
    let loaded = std::fs::read_to_string("/sys/module/zfs/version")?;
    ensure!(
        v.kmod.as_deref().map(str::trim) == Some(loaded.trim()),
        "zfs version says kmod {:?}, the module says {loaded:?}",
        v.kmod
    );
    let f = v.features();
    ensure!(
        f.resumable_send_recv && f.bookmarks && f.encryption && f.bookmark_copy,
        "OpenZFS {} lacks something zrelay needs: {f:?}",
        v.short()
    );
    let out = tokio::process::Command::new(crate::daemons::zrelay_bin()?)
        .arg("version")
        .output()
        .await?;
    let out = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.contains(&format!("OpenZFS userland {}", v.userland)),
        "zrelay version: {out}"
    );
    Ok(())
}
