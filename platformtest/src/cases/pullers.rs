//! One source, two pullers on their own daemons (`per_client_cursors`,
//! zrepl #380), on real ZFS over tls: each puller has its own cursor, one
//! puller's pruning keeps what the other has not received, and both stay
//! incremental.

use anyhow::{ensure, Context as _, Result};

use super::daemons::{global, Tree};
use crate::daemons::{free_port, tail, Daemon, Scratch, SecondPool};
use crate::harness::Ctx;
use crate::tls::TestPki;

fn pull_job(dir: &str, name: &str, cn: &str, port: u16, root_fs: &str) -> String {
    format!(
        "{}jobs:\n  - name: {name}\n    type: pull\n    connect: {{type: tls, address: \"127.0.0.1:{port}\", ca: \"{dir}/ca.pem\", cert: \"{dir}/{cn}.pem\", key: \"{dir}/{cn}.key\", server_cn: \"source.test\"}}\n    root_fs: \"{root_fs}\"\n    interval: manual\n    pruning:\n      keep_sender:\n        - type: not_replicated\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
        global(dir, name)
    )
}

/// The puller under `root` has every round of `app`.
async fn has_all_rounds(ctx: &Ctx, root: &str, app: &str) -> Result<()> {
    let got = ctx
        .sh(&format!(
            "zfs list -H -t snapshot -o name -d 1 '{root}/{app}'"
        ))
        .await?;
    for n in ["zrelay_1", "zrelay_2", "zrelay_3", "zrelay_4"] {
        ensure!(got.contains(&format!("@{n}")), "{root}: {got}");
    }
    Ok(())
}

/// Two pull daemons pull one source daemon's tree; `a` pulls every round,
/// `b` only the first and the last.
pub async fn two_pullers_own_cursors(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let dir = scratch.dir.display().to_string();
    let b = SecondPool::create(ctx).await?;
    let (root_a, root_b) = (format!("{}/pa", b.name), format!("{}/pb", b.name));
    ctx.sh(&format!("zfs create '{root_a}' && zfs create '{root_b}'"))
        .await?;
    let tree = Tree::create(ctx, 1_000_000).await?;
    let port = free_port()?;
    let pki = TestPki::new()?;
    pki.write(&scratch, &["source.test"], &["a", "b"])?;
    let source = format!(
        "{}jobs:\n  - name: source\n    type: source\n    per_client_cursors: true\n    serve: {{type: tls, listen: \"127.0.0.1:{port}\", ca: \"{dir}/ca.pem\", cert: \"{dir}/source.test.pem\", key: \"{dir}/source.test.key\", client_cns: [\"a\", \"b\"]}}\n    filesystems:\n      \"{}<\": true\n    snapshotting:\n      type: manual\n",
        global(&dir, "source"),
        tree.src
    );
    let source_cfg = scratch.write("source.yml", &source)?;
    let a_cfg = scratch.write("a.yml", &pull_job(&dir, "pull_a", "a", port, &root_a))?;
    let b_cfg = scratch.write("b.yml", &pull_job(&dir, "pull_b", "b", port, &root_b))?;
    let start = |name: &'static str, cfg| {
        let scratch = &scratch;
        async move {
            Daemon::start(
                name,
                cfg,
                &scratch.path(&format!("{name}.sock")),
                &scratch.path(&format!("{name}.log")),
            )
            .await
        }
    };
    let source = start("source", &source_cfg).await?;
    let pa = start("pull_a", &a_cfg).await?;
    let pb = start("pull_b", &b_cfg).await?;
    let app = tree.app.to_string();
    let snapshots = || async {
        ctx.sh(&format!("zfs list -H -t snapshot -o name -d 1 '{app}'"))
            .await
    };
    let result = async {
        pa.wakeup_ok("pull_a").await?;
        pb.wakeup_ok("pull_b").await?;
        let bookmarks = ctx
            .sh(&format!("zfs list -H -t bookmark -o name '{app}'"))
            .await?;
        ensure!(
            bookmarks.contains("_J_source:a") && bookmarks.contains("_J_source:b"),
            "one cursor per puller: {bookmarks}"
        );
        for (i, round) in ["zrelay_2", "zrelay_3"].iter().enumerate() {
            ctx.write(&tree.app, &format!("r{i}.bin"), 300_000).await?;
            tree.snapshot(ctx, round).await?;
            let out = pa.wakeup_ok("pull_a").await?;
            ensure!(out.contains(&format!("=> @{round}")), "{out}");
            if i == 1 {
                ensure!(
                    out.contains(
                        "@zrelay_2  (kept: protected: client b of this source has not received it yet"
                    ),
                    "a's pruning keeps what b lacks, naming b:\n{out}"
                );
            }
        }
        // a's not_replicated would destroy zrelay_1 and zrelay_2; b has
        // received zrelay_1 (its cursor), not zrelay_2
        let left = snapshots().await?;
        ensure!(
            left.contains("@zrelay_2") && !left.contains("@zrelay_1"),
            "the source keeps exactly what b still needs:\n{left}"
        );
        ctx.write(&tree.app, "last.bin", 300_000).await?;
        tree.snapshot(ctx, "zrelay_4").await?;
        let out = pb.wakeup_ok("pull_b").await?;
        // zrelay_1 is gone on the source: b's first step starts at its
        // own cursor bookmark
        ensure!(
            out.matches("[3/3 steps]").count() == 2
                && out.contains("@zrelay_3 => @zrelay_4")
                && !out.contains("full @"),
            "b stays incremental from its own cursor, three steps each:\n{out}"
        );
        // the source kept only what someone still needs: check GUIDs and
        // data against the newest, and that each puller has every round
        tree.verify(ctx, &root_b, &["zrelay_4"], "last.bin").await?;
        has_all_rounds(ctx, &root_b, &app).await?;
        pa.wakeup_ok("pull_a").await?;
        tree.verify(ctx, &root_a, &["zrelay_4"], "last.bin").await?;
        has_all_rounds(ctx, &root_a, &app).await?;
        // both have everything now: a's pruning keeps only the newest
        let left = snapshots().await?;
        ensure!(
            !left.contains("@zrelay_2") && left.contains("@zrelay_4"),
            "once both received them, pruning goes on:\n{left}"
        );
        Ok(())
    }
    .await;
    result.with_context(|| {
        format!(
            "--- pull_a log:\n{}\n--- pull_b log:\n{}\n--- source log:\n{}",
            tail(&pa.log_text()),
            tail(&pb.log_text()),
            tail(&source.log_text())
        )
    })?;
    pa.stop().await?;
    pb.stop().await?;
    source.stop().await?;
    Ok(())
}
