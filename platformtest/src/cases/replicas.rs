//! Replica renames and deletion on real ZFS (zrelay extension `replicas`,
//! opt-in on both sides): a sink that did not opt in refuses to destroy; a
//! destroyed source's replica waits out `delete_after` (counted from the
//! first sighting, across a push daemon restart) and goes; a renamed
//! source's replica is renamed and its next step is incremental; a source
//! that merely left the filter keeps its replica; the dry run changes nothing.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};

use crate::daemons::{checksum, free_port, guid, tail, tcp_pair, Daemon, Site};
use crate::harness::Ctx;
use zrelay_zfs::{SnapshotName, Zfs as _};

const GRACE_SECS: u64 = 10;

fn sink_yml(site: &Site, serve: &str, opt_in: bool) -> String {
    let recv = if opt_in {
        "    recv:\n      replicas:\n        rename: true\n        destroy: true\n"
    } else {
        ""
    };
    format!(
        "{}jobs:\n  - name: sink\n    type: sink\n    root_fs: \"{}\"\n    serve: {serve}\n{recv}",
        site.global("sink", ""),
        site.root_fs
    )
}

fn push_yml(site: &Site, connect: &str, src: &str, exclude: &str) -> String {
    let exclude = if exclude.is_empty() {
        String::new()
    } else {
        format!("      \"{exclude}\": false\n")
    };
    format!(
        "{}jobs:\n  - name: push\n    type: push\n    connect: {connect}\n    filesystems:\n      \"{src}<\": true\n{exclude}    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: last_n\n          count: 100\n      keep_receiver:\n        - type: last_n\n          count: 100\n    replicas:\n      follow_renames: true\n      delete_after: {GRACE_SECS}s\n",
        site.global("push", "")
    )
}

async fn exists(ctx: &Ctx, name: &str) -> Result<bool> {
    Ok(ctx
        .sh(&format!(
            "zfs list -H -o name '{name}' >/dev/null 2>&1 && echo yes || echo no"
        ))
        .await?
        .trim()
        == "yes")
}

async fn start(site: &Site, name: &str, yml: &str, log: &str) -> Result<Daemon> {
    let cfg = site.scratch.write(&format!("{name}.yml"), yml)?;
    let p = |n: &str| site.scratch.path(n);
    Daemon::start(name, &cfg, &p(&format!("{name}.sock")), &p(log)).await
}

pub async fn renames_and_deletion(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let src = ctx.ds("src");
    let (a, b, keep) = (ctx.ds("src/a"), ctx.ds("src/b"), ctx.ds("src/keep"));
    ctx.zfs.create(&src, &[]).await?;
    for (fs, bytes) in [(&a, 400_000), (&b, 50_000), (&keep, 50_000)] {
        ctx.zfs.create(fs, &[]).await?;
        ctx.write(fs, "data.bin", bytes).await?;
    }
    let first: Vec<SnapshotName> = [&a, &b, &keep]
        .iter()
        .map(|fs| SnapshotName::new(fs, "zrelay_1"))
        .collect::<Result<_, _>>()?;
    ctx.zfs.snapshot(&first).await?;
    let dst = |fs: &str| format!("{}/alice/{fs}", site.root_fs);
    let (serve, connect) = tcp_pair(free_port()?, "127.0.0.1");
    let sink = start(&site, "sink", &sink_yml(&site, &serve, false), "sink.log").await?;
    let push = start(
        &site,
        "push",
        &push_yml(&site, &connect, src.as_str(), ""),
        "push.log",
    )
    .await?;

    // Phase 1: the sink did not opt in.
    let phase1 = async {
        push.wakeup_ok("push").await?;
        ensure!(exists(ctx, &dst(b.as_str())).await?, "b was replicated");
        ctx.sh(&format!("zfs destroy -r '{b}'")).await?;
        let t_gone = Instant::now();
        let (ok, out, err) = push.cli(&["prune", "--dry-run", "push"]).await?;
        ensure!(ok, "dry run: {out}{err}");
        ensure!(
            out.contains(&format!("{b}: wait")),
            "a destroyed source waits out its grace:\n{out}"
        );
        tokio::time::sleep(Duration::from_secs(GRACE_SECS).saturating_sub(t_gone.elapsed())).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (ok, out, err) = push.cli(&["prune", "push"]).await?;
        ensure!(
            !ok && out.contains("destroy failed") && out.contains("recv.replicas.destroy is off"),
            "a sink that did not opt in refuses:\n{out}{err}"
        );
        ensure!(
            exists(ctx, &dst(b.as_str())).await?,
            "refused, and b's replica is whole"
        );
        Ok(())
    }
    .await;
    phase1.with_context(|| format!("--- push log:\n{}", tail(&push.log_text())))?;
    push.stop().await?;
    sink.stop().await?;

    // Phase 2: the sink opts in; keep leaves the filter; a is renamed.
    let sink = start(&site, "sink", &sink_yml(&site, &serve, true), "sink2.log").await?;
    let push_cfg = push_yml(&site, &connect, src.as_str(), keep.as_str());
    let push = start(&site, "push", &push_cfg, "push2.log").await?;
    let a2 = ctx.ds("src/a2");
    let phase2 = async {
        ctx.sh(&format!("zfs rename '{a}' '{a2}'")).await?;
        ctx.write(&a2, "more.bin", 100_000).await?;
        ctx.zfs.snapshot(&[SnapshotName::new(&a2, "zrelay_2")?]).await?;
        let (ok, out, err) = push.cli(&["prune", "--dry-run", "push"]).await?;
        ensure!(ok, "dry run: {out}{err}");
        ensure!(
            out.contains(&format!("{a}: would rename to {a2}"))
                && out.contains(&format!("{b}: would destroy"))
                && out.contains(&format!("{keep}: keep")),
            "dry run:\n{out}"
        );
        ensure!(
            exists(ctx, &dst(a.as_str())).await? && exists(ctx, &dst(b.as_str())).await?,
            "the dry run changed nothing"
        );
        let out = push.wakeup_ok("push").await?;
        ensure!(
            out.contains("@zrelay_1 => @zrelay_2"),
            "the renamed filesystem's step is incremental:\n{out}"
        );
        ensure!(!exists(ctx, &dst(a.as_str())).await?, "the old name is gone");
        for s in ["zrelay_1", "zrelay_2"] {
            let (x, y) = (
                guid(ctx, &format!("{a2}@{s}")).await?,
                guid(ctx, &format!("{}@{s}", dst(a2.as_str()))).await?,
            );
            ensure!(x == y, "{a2}@{s}: guid {y} on the receiver, {x} on the sender");
        }
        for file in ["data.bin", "more.bin"] {
            let (x, y) = (
                checksum(ctx, a2.as_str(), file).await?,
                checksum(ctx, &dst(a2.as_str()), file).await?,
            );
            ensure!(x == y && x.len() == 64, "{file}: sha256 {y} vs {x}");
        }
        ensure!(
            !exists(ctx, &dst(b.as_str())).await?,
            "b's replica went: its grace passed before the restart"
        );
        ensure!(
            exists(ctx, &format!("{}@zrelay_1", dst(keep.as_str()))).await?,
            "a source that left the filter keeps its replica"
        );
        let holds = ctx
            .sh(&format!(
                "zfs list -H -r -t snapshot -o name '{}/alice' | while IFS= read -r s; do zfs holds -H \"$s\" | cut -f2; done | sort | uniq -c",
                site.root_fs
            ))
            .await?;
        ensure!(
            !holds.contains("zrepl_STEP") && holds.contains("zrepl_last_received_J_sink"),
            "no step hold is left, the last-received holds are there: {holds}"
        );
        // `zrelay monitor replication`: the plugin's four exit codes.
        let mon = |w: &'static str, c: &'static str, job: &'static str| {
            let push = &push;
            async move {
                push.cli(&["monitor", "replication", "--job", job, "-w", w, "-c", c])
                    .await
            }
        };
        let (ok, out, err) = mon("1h", "2h", "push").await?;
        ensure!(
            ok && out.starts_with("REPLICATION OK") && out.contains(&format!("'{a2}'=")),
            "{out}{err}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (w, c, job, word, code) in [
            ("1s", "1h", "push", "WARNING", 1),
            ("1s", "1s", "push", "CRITICAL", 2),
            ("1s", "1s", "nosuch", "UNKNOWN", 3),
        ] {
            let (_, out, err) = mon(w, c, job).await?;
            ensure!(
                out.starts_with(&format!("REPLICATION {word}"))
                    && err.contains(&format!("exit status: {code}")),
                "-w {w} -c {c} --job {job}: {out}{err}"
            );
        }
        Ok(())
    }
    .await;
    phase2.with_context(|| format!("--- push log:\n{}", tail(&push.log_text())))?;
    push.stop().await?;
    sink.stop().await?;
    Ok(())
}
