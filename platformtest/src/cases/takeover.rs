//! Taking over a live zrepl 0.7 setup on real ZFS: the state zrepl leaves
//! on both sides is laid down with plain `zfs` commands (v2 cursor
//! bookmarks, last-received holds, the step holds of an interrupted step
//! with the receiver's resume token, placeholders, a tentative cursor, and
//! stale abstractions), `zrelay zfs-abstraction release-stale` clears only
//! what is stale, and zrelay started with the same configuration resumes the
//! interrupted step and goes on incrementally: no full resend, the first
//! step's bytes below 10% of a full send.

use anyhow::{ensure, Context as _, Result};

use crate::daemons::{checksum, free_port, guid, tail, tcp_pair, Site};
use crate::harness::Ctx;
use zrelay_zfs::Zfs as _;

fn hex_guid(g: &str) -> Result<String> {
    Ok(format!("{:016x}", g.parse::<u64>().context("guid")?))
}

/// The bytes of the `step done` log line of `fs`'s step `what`.
fn step_bytes(log: &str, fs: &str, what: &str) -> Option<u64> {
    let needle = format!("{fs}: {what}");
    log.lines()
        .filter(|l| l.contains("step done") && l.contains(&needle))
        .find_map(|l| {
            let rest = &l[l.find(" bytes=")? + 7..];
            rest.split_whitespace().next()?.parse().ok()
        })
}

async fn holds(ctx: &Ctx, snap: &str) -> Result<String> {
    ctx.sh(&format!(
        "zfs holds -H '{snap}' | cut -f2 | sort | tr '\\n' ' '"
    ))
    .await
}

async fn bookmarks(ctx: &Ctx, fs: &str) -> Result<String> {
    ctx.sh(&format!(
        "zfs list -H -t bookmark -o name -d 1 '{fs}' | sed 's/.*#//' | sort | tr '\\n' ' '"
    ))
    .await
}

pub async fn takeover(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let src = ctx.ds("src");
    let (app, second) = (ctx.ds("src/app"), ctx.ds("src/second"));
    for fs in [&src, &app, &second] {
        ctx.zfs.create(fs, &[]).await?;
    }
    ctx.write(&app, "big.bin", 8 << 20).await?;
    ctx.write(&second, "small.bin", 200_000).await?;
    let snap_both = |name: &'static str| {
        let (app, second) = (app.clone(), second.clone());
        async move {
            ctx.sh(&format!("zfs snapshot '{app}@{name}' '{second}@{name}'"))
                .await
        }
    };
    snap_both("zrelay_1").await?;
    ctx.write(&app, "two.bin", 100_000).await?;
    snap_both("zrelay_2").await?;
    ctx.write(&app, "three.bin", 600_000).await?;
    ctx.write(&second, "three.bin", 100_000).await?;
    snap_both("zrelay_3").await?;
    let alice = format!("{}/alice", site.root_fs);
    let dst = |fs: &str| format!("{alice}/{fs}");

    // What zrepl 0.7 (push job `push`, sink job `sink`, client `alice`)
    // leaves behind: placeholders, zrelay_1 and zrelay_2 replicated with the
    // cursor and the last-received hold on zrelay_2, then a step to zrelay_3
    // interrupted mid-stream for `app` (step holds on both ends, a partial
    // receive with its token).
    let mut parents = Vec::new();
    let mut p = src.clone();
    loop {
        parents.push(dst(p.as_str()));
        match p.parent() {
            Some(q) => p = q,
            None => break,
        }
    }
    parents.push(alice.clone());
    parents.reverse();
    for p in &parents {
        ctx.sh(&format!("zfs create -o zrepl:placeholder=on '{p}'"))
            .await?;
    }
    for fs in [&app, &second] {
        let (s, d) = (fs.as_str(), dst(fs.as_str()));
        ctx.sh(&format!(
            "zfs send '{s}@zrelay_1' | zfs recv -u '{d}'; \
             zfs send -i @zrelay_1 '{s}@zrelay_2' | zfs recv -u '{d}'; \
             zfs hold zrepl_last_received_J_sink '{d}@zrelay_2'"
        ))
        .await?;
        let g2 = hex_guid(&guid(ctx, &format!("{s}@zrelay_2")).await?)?;
        ctx.sh(&format!(
            "zfs bookmark '{s}@zrelay_2' '{s}#zrepl_CURSOR_G_{g2}_J_push'"
        ))
        .await?;
    }
    let (a, d_app) = (app.as_str().to_string(), dst(app.as_str()));
    ctx.sh(&format!(
        "zfs hold zrepl_STEP_J_push '{a}@zrelay_2' '{a}@zrelay_3'; \
         (zfs send -i @zrelay_2 '{a}@zrelay_3' | head -c 300000 | zfs recv -s -u '{d_app}') || true; \
         zfs get -H -o value receive_resume_token '{d_app}' | grep -qv '^-$'"
    ))
    .await
    .context("an interrupted step with a resume token")?;
    // Stale and foreign abstractions: an older cursor and a step hold at or
    // before the cursor (stale), a tentative cursor (live), another job's
    // step hold and a user's hold (not ours to touch).
    let g1 = hex_guid(&guid(ctx, &format!("{a}@zrelay_1")).await?)?;
    ctx.sh(&format!(
        "zfs bookmark '{a}@zrelay_1' '{a}#zrepl_CURSOR_G_{g1}_J_push'; \
         zfs bookmark '{a}@zrelay_1' '{a}#zrepl_CURSORTENTATIVE__G_{g1}_J_push'; \
         zfs hold zrepl_STEP_J_push '{a}@zrelay_1'; \
         zfs hold zrepl_STEP_J_otherjob '{a}@zrelay_1'; \
         zfs hold keepme '{a}@zrelay_1'"
    ))
    .await?;
    let full = ctx
        .sh(&format!(
            "zfs send -nvP '{a}@zrelay_3' | awk '$1 == \"size\" {{print $2}}'"
        ))
        .await?
        .trim()
        .parse::<u64>()
        .context("full send size")?;

    // The operator's first step: release-stale clears only what is stale.
    let (serve, connect) = tcp_pair(free_port()?, "127.0.0.1");
    let pair = site.start_pair(&serve, &connect, &src, "").await?;
    let (ok, out, err) = pair
        .push
        .cli(&[
            "zfs-abstraction",
            "release-stale",
            "--fs",
            &format!("{src}<:ok"),
        ])
        .await?;
    let result = async {
        ensure!(ok, "release-stale: {out}{err}");
        let h1 = holds(ctx, &format!("{a}@zrelay_1")).await?;
        ensure!(
            h1.trim() == "keepme zrepl_STEP_J_otherjob",
            "zrelay_1's holds after release-stale: {h1:?}"
        );
        // As zrepl judges: a step hold at or before the cursor is stale (the
        // cursor protects that base), the one after it guards the in-flight step.
        let h2 = holds(ctx, &format!("{a}@zrelay_2")).await?;
        ensure!(
            !h2.contains("zrepl_STEP"),
            "the hold at the cursor is stale: {h2:?}"
        );
        let h3 = holds(ctx, &format!("{a}@zrelay_3")).await?;
        ensure!(
            h3.contains("zrepl_STEP_J_push"),
            "the in-flight step's hold on zrelay_3 was released: {h3:?}"
        );
        let b = bookmarks(ctx, &a).await?;
        ensure!(
            !b.contains(&format!("zrepl_CURSOR_G_{g1}_J_push"))
                && b.contains(&format!("zrepl_CURSORTENTATIVE__G_{g1}_J_push"))
                && b.contains("zrepl_CURSOR_G_"),
            "bookmarks after release-stale: {b}"
        );

        // zrelay takes over with zrepl's configuration.
        let out = pair.push.wakeup_ok("push").await?;
        let log = pair.push.log_text();
        let resumed = step_bytes(&log, &a, "@zrelay_2 => @zrelay_3")
            .with_context(|| format!("no resumed step of {a}:\n{out}"))?;
        ensure!(
            out.contains("@zrelay_2 => @zrelay_3 (resumed)"),
            "the interrupted step is resumed from the receiver's token:\n{out}"
        );
        println!("takeover: the first step (resumed) sent {resumed} bytes; a full send is {full}");
        ensure!(
            resumed * 10 < full,
            "the first step sent {resumed} bytes, a full send is {full}"
        );
        ensure!(
            step_bytes(&log, second.as_str(), "@zrelay_2 => @zrelay_3").is_some(),
            "{second} goes on incrementally:\n{out}"
        );
        ensure!(
            !log.contains("=> @zrelay_3 (full)") && !out.contains("full"),
            "no full send:\n{out}"
        );
        for fs in [&app, &second] {
            for s in ["zrelay_1", "zrelay_2", "zrelay_3"] {
                let (x, y) = (
                    guid(ctx, &format!("{fs}@{s}")).await?,
                    guid(ctx, &format!("{}@{s}", dst(fs.as_str()))).await?,
                );
                ensure!(
                    x == y,
                    "{fs}@{s}: guid {y} on the receiver, {x} on the sender"
                );
            }
        }
        for file in ["big.bin", "three.bin"] {
            let (x, y) = (
                checksum(ctx, &a, file).await?,
                checksum(ctx, &d_app, file).await?,
            );
            ensure!(x == y && x.len() == 64, "{file}: sha256 {y} vs {x}");
        }
        let tok = ctx
            .sh(&format!(
                "zfs get -H -o value receive_resume_token '{d_app}'"
            ))
            .await?;
        ensure!(
            tok.trim() == "-",
            "the partial receive is resumed and gone: {tok}"
        );
        let g3 = hex_guid(&guid(ctx, &format!("{a}@zrelay_3")).await?)?;
        let b = bookmarks(ctx, &a).await?;
        ensure!(
            b.contains(&format!("zrepl_CURSOR_G_{g3}_J_push")),
            "the cursor moved to zrelay_3: {b}"
        );
        for s in ["zrelay_2", "zrelay_3"] {
            let h = holds(ctx, &format!("{a}@{s}")).await?;
            ensure!(!h.contains("zrepl_STEP"), "step hold left on {s}: {h:?}");
        }
        let h = holds(ctx, &format!("{d_app}@zrelay_3")).await?;
        ensure!(
            h.contains("zrepl_last_received_J_sink"),
            "last-received hold: {h:?}"
        );
        let h = holds(ctx, &format!("{d_app}@zrelay_2")).await?;
        ensure!(
            !h.contains("zrepl_last_received"),
            "old last-received hold left: {h:?}"
        );
        let h1 = holds(ctx, &format!("{a}@zrelay_1")).await?;
        ensure!(
            h1.trim() == "keepme zrepl_STEP_J_otherjob",
            "another job's and the user's holds are untouched: {h1:?}"
        );
        Ok(())
    }
    .await;
    result.with_context(|| format!("--- push log:\n{}", tail(&pair.push.log_text())))?;
    pair.push.stop().await?;
    pair.sink.stop().await?;
    Ok(())
}
