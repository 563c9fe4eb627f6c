//! The batched operations on real OpenZFS: how many `zfs` commands a clean batch costs
//! (counted with the runner's `InvocationLog`), and that the fallbacks to single-item
//! calls give the same results as the batched commands.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context as _, Result};
use zrelay_testing::conformance::{self, Fixture};
use zrelay_zfs::cmd::Runner;
use zrelay_zfs::{
    BookmarkName, DatasetPath, RealZfs, SendArgs, SendFlags, SnapshotName, VersionRef, Zfs,
};

use crate::harness::Ctx;

/// The invocation counts at one moment: in total and per verb.
struct Count {
    total: u64,
    per_verb: BTreeMap<String, u64>,
}

fn count(zfs: &RealZfs) -> Count {
    Count {
        total: zfs.log().total(),
        per_verb: zfs.log().per_verb(),
    }
}

/// Check that exactly `want` commands ran since `before`, all of them `verb`.
fn ran(zfs: &RealZfs, before: &Count, verb: &str, want: u64, what: &str) -> Result<()> {
    let now = count(zfs);
    let total = now.total - before.total;
    let of_verb = now.per_verb.get(verb).copied().unwrap_or(0)
        - before.per_verb.get(verb).copied().unwrap_or(0);
    let recent: Vec<String> = zfs
        .log()
        .recent()
        .iter()
        .rev()
        .take(total as usize)
        .map(|i| i.cmdline.clone())
        .collect();
    ensure!(
        total == want && of_verb == want,
        "{what}: {total} commands ({of_verb} `zfs {verb}`), expected {want} `zfs {verb}`: {recent:?}"
    );
    Ok(())
}

fn all_ok(what: &str, r: &[zrelay_zfs::Result<()>]) -> Result<()> {
    for (i, r) in r.iter().enumerate() {
        if let Err(e) = r {
            bail!("{what}: item {i} failed: {e}");
        }
    }
    Ok(())
}

/// A snapshot of `fs` whose GUID is above `i64::MAX` (negative as a Lua number).
async fn high_guid_snapshot(ctx: &Ctx, fs: &DatasetPath) -> Result<(SnapshotName, u64)> {
    for i in 0..64 {
        let s = SnapshotName::new(fs, &format!("high {i}"))?;
        ctx.zfs.snapshot(std::slice::from_ref(&s)).await?;
        let g = ctx.zfs.guid(&s.to_string()).await?;
        if g > i64::MAX as u64 {
            return Ok((s, g));
        }
        ctx.zfs
            .destroy(&zrelay_zfs::DestroyTarget::Snapshot(s))
            .await?;
    }
    bail!("64 snapshots without a guid above i64::MAX")
}

/// Five items over two filesystems cost one command per batch; a second pool costs one
/// more `zfs program`; `SendArgs::validate` costs one `zfs get`.
pub async fn batch_ops_one_command_each(ctx: &Ctx) -> Result<()> {
    let z = &ctx.zfs;
    let (a, b) = (ctx.ds("fs a"), ctx.ds("fs b"));
    z.create(&a, &[]).await?;
    z.create(&b, &[]).await?;
    let mut snaps = Vec::new();
    for (fs, names) in [(&a, &["1", "2"][..]), (&b, &["1", "2"][..])] {
        for n in names {
            let s = SnapshotName::new(fs, n)?;
            z.snapshot(std::slice::from_ref(&s)).await?;
            snaps.push(s);
        }
    }
    let (high, high_guid) = high_guid_snapshot(ctx, &a).await?;
    snaps.push(high);
    let names: Vec<String> = snaps.iter().map(|s| s.to_string()).collect();

    let mut with_missing = names.clone();
    with_missing.extend([
        format!("{a}@missing"),
        format!("{a}#missing"),
        ctx.ds("no fs").to_string(),
    ]);
    let c = count(z);
    let got = z.get_many(&with_missing, &["guid", "createtxg"]).await?;
    ran(z, &c, "get", 1, "get_many of 5 and 3 missing")?;
    ensure!(
        got[5..]
            .iter()
            .all(|(_, r)| r.as_ref().is_err_and(|e| e.is_does_not_exist())),
        "missing names: {:?}",
        &got[5..]
    );
    let c = count(z);
    let got = z.get_many(&names, &["guid", "createtxg"]).await?;
    ran(z, &c, "get", 1, "get_many of 5")?;
    let mut guids = Vec::new();
    for (n, r) in &got {
        let p = r
            .as_ref()
            .map_err(|e| anyhow::anyhow!("get_many {n}: {e}"))?;
        guids.push(p["guid"].value.parse::<u64>()?);
    }
    ensure!(guids[4] == high_guid, "guids {guids:?}");

    let tag = "zrelay batch";
    let c = count(z);
    all_ok("hold_many", &z.hold_many(&snaps, tag).await?)?;
    ran(z, &c, "hold", 1, "hold_many of 5")?;
    let c = count(z);
    all_ok("hold_many again", &z.hold_many(&snaps, tag).await?)?;
    ran(z, &c, "hold", 1, "hold_many of 5 already held")?;
    let mut mixed = snaps.clone();
    mixed.push(SnapshotName::new(&a, "missing")?);
    mixed.push(SnapshotName::new(&ctx.ds("no fs"), "x")?);
    let c = count(z);
    let r = z.hold_many(&mixed, tag).await?;
    ran(z, &c, "hold", 1, "hold_many of 5 held, 2 missing")?;
    all_ok("hold_many mixed", &r[..5])?;
    ensure!(
        r[5..]
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.is_does_not_exist())),
        "missing snapshots: {:?}",
        &r[5..]
    );
    let c = count(z);
    let held = z.holds_many(&mixed).await?;
    ran(z, &c, "holds", 1, "holds_many of 7")?;
    for (i, (s, t)) in held.iter().enumerate() {
        let want: &[&str] = if i < 5 { &[tag] } else { &[] };
        ensure!(t == want, "holds of {s}: {t:?}");
    }

    let marks: Vec<BookmarkName> = snaps
        .iter()
        .map(|s| BookmarkName::new(s.fs(), &format!("m {}", s.name())))
        .collect::<std::result::Result<_, _>>()?;
    let reqs: Vec<_> = snaps
        .iter()
        .zip(&guids)
        .zip(&marks)
        .map(|((s, g), m)| (VersionRef::Snapshot(s.clone()), *g, m.clone()))
        .collect();
    let c = count(z);
    all_ok("bookmark_many", &z.bookmark_many(&reqs).await?)?;
    ran(z, &c, "program", 1, "bookmark_many of 5 in one pool")?;
    let c = count(z);
    all_ok("bookmark_many again", &z.bookmark_many(&reqs).await?)?;
    let now = count(z);
    ensure!(
        now.total - c.total == 2,
        "bookmark_many of 5 existing: {} commands, expected a program and a get",
        now.total - c.total
    );
    for (m, g) in marks.iter().zip(&guids) {
        ensure!(
            z.guid(&m.to_string()).await? == *g,
            "{m} has the wrong guid"
        );
    }
    mixed_bookmarks_settle_in_the_program(ctx, &snaps[..2], &guids[..2], &marks[0]).await?;

    let c = count(z);
    all_ok("release_many", &z.release_many(&mixed, tag).await?)?;
    ran(z, &c, "release", 1, "release_many of 5 held, 2 missing")?;
    ensure!(
        z.holds_many(&snaps)
            .await?
            .iter()
            .all(|(_, t)| t.is_empty()),
        "holds left after release_many"
    );

    let c = count(z);
    all_ok("destroy_bookmarks", &z.destroy_bookmarks(&marks).await?)?;
    // `zfs destroy` takes one bookmark per call on OpenZFS 2.3 and channel programs
    // cannot destroy bookmarks: this batch stays one command per bookmark
    ran(
        z,
        &c,
        "destroy",
        marks.len() as u64,
        "destroy_bookmarks of 5",
    )?;

    validate_costs_one_get(ctx, &a).await?;
    bookmark_many_two_pools(ctx, &a, &snaps[4]).await
}

/// Existing bookmarks (same and other guid), a missing source and a source with another
/// guid are settled by the program and one `zfs get`, with no single-item retries.
async fn mixed_bookmarks_settle_in_the_program(
    ctx: &Ctx,
    snaps: &[SnapshotName],
    guids: &[u64],
    existing: &BookmarkName,
) -> Result<()> {
    let z = &ctx.zfs;
    let (s1, s2) = (&snaps[0], &snaps[1]);
    let fs = s1.fs();
    let snap = |s: &SnapshotName| VersionRef::Snapshot(s.clone());
    let reqs = vec![
        (snap(s1), guids[0], existing.clone()),
        (snap(s2), guids[1], existing.clone()),
        (
            snap(&SnapshotName::new(fs, "missing")?),
            guids[0],
            BookmarkName::new(fs, "x")?,
        ),
        (snap(s2), guids[0], BookmarkName::new(fs, "wrong")?),
        (snap(s1), guids[0], BookmarkName::new(fs, "mixed new")?),
    ];
    let c = count(z);
    let r = z.bookmark_many(&reqs).await?;
    let now = count(z);
    let programs = now.per_verb.get("program").copied().unwrap_or(0)
        - c.per_verb.get("program").copied().unwrap_or(0);
    ensure!(
        now.total - c.total == 2 && programs == 1,
        "mixed bookmark_many: {} commands ({programs} programs), expected a program and a get",
        now.total - c.total
    );
    use zrelay_zfs::ZfsError::*;
    let ok = matches!(
        (&r[0], &r[1], &r[2], &r[3], &r[4]),
        (
            Ok(()),
            Err(BookmarkExists { .. }),
            Err(DatasetDoesNotExist { .. }),
            Err(GuidMismatch { .. }),
            Ok(())
        )
    );
    ensure!(ok, "mixed bookmark_many: {r:?}");
    ensure!(
        z.get(&format!("{fs}#wrong"), &["guid"]).await.is_err(),
        "a bookmark was created from a source with another guid"
    );
    Ok(())
}

async fn validate_costs_one_get(ctx: &Ctx, fs: &DatasetPath) -> Result<()> {
    let z = &ctx.zfs;
    let (s1, s2) = (SnapshotName::new(fs, "1")?, SnapshotName::new(fs, "2")?);
    let (g1, g2) = (
        z.guid(&s1.to_string()).await?,
        z.guid(&s2.to_string()).await?,
    );
    let mark = BookmarkName::new(fs, "v")?;
    z.bookmark(&VersionRef::Snapshot(s1.clone()), g1, &mark)
        .await?;
    let froms = [
        None,
        Some((VersionRef::Snapshot(s1), g1)),
        Some((VersionRef::Bookmark(mark), g1)),
    ];
    for from in froms {
        let args = SendArgs {
            fs: fs.clone(),
            from: from.clone(),
            to: (s2.clone(), g2),
            encrypted: false,
            flags: SendFlags::default(),
            resume_token: None,
            intermediates: false,
        };
        let c = count(z);
        args.validate(z)
            .await
            .with_context(|| format!("validate from {from:?}"))?;
        ran(
            z,
            &c,
            "get",
            1,
            &format!("SendArgs::validate from {from:?}"),
        )?;
    }
    Ok(())
}

/// `bookmark_many` over two pools: one `zfs program` each.
async fn bookmark_many_two_pools(ctx: &Ctx, a: &DatasetPath, high: &SnapshotName) -> Result<()> {
    let pool2 = format!("{}_second", ctx.pool);
    let vdev = format!("/var/tmp/{pool2}.img");
    ctx.sh(&format!(
        "truncate -s 128M {vdev} && zpool create -f -o cachefile=none -m /{pool2} {pool2} {vdev}"
    ))
    .await?;
    let result = async {
        let z = &ctx.zfs;
        let other = DatasetPath::parse(&format!("{pool2}/other fs"))?;
        z.create(&other, &[]).await?;
        let mut reqs = Vec::new();
        for (fs, n) in [
            (a, "1"),
            (a, "2"),
            (high.fs(), high.name()),
            (&other, "x"),
            (&other, "y"),
        ] {
            let s = SnapshotName::new(fs, n)?;
            if fs == &other {
                z.snapshot(std::slice::from_ref(&s)).await?;
            }
            let g = z.guid(&s.to_string()).await?;
            let m = BookmarkName::new(fs, &format!("two pools {n}"))?;
            reqs.push((VersionRef::Snapshot(s), g, m));
        }
        let c = count(z);
        all_ok(
            "bookmark_many over two pools",
            &z.bookmark_many(&reqs).await?,
        )?;
        ran(z, &c, "program", 2, "bookmark_many over two pools")?;
        for (_, g, m) in &reqs {
            ensure!(
                z.guid(&m.to_string()).await? == *g,
                "{m} has the wrong guid"
            );
        }
        Ok(())
    }
    .await;
    let cleanup = ctx
        .sh(&format!("zpool destroy -f {pool2}; rm -f {vdev}"))
        .await;
    result.and(cleanup.map(drop))
}

/// A fixture whose `zfs` refuses every batched command, so that `RealZfs` takes its
/// single-item fallbacks; each case gets its own root below the pool's.
struct FallbackFixture<'a> {
    ctx: &'a Ctx,
    zfs: RealZfs,
    root: DatasetPath,
}

#[async_trait::async_trait]
impl Fixture for FallbackFixture<'_> {
    fn zfs(&self) -> &dyn Zfs {
        &self.zfs
    }

    fn root(&self) -> &DatasetPath {
        &self.root
    }

    async fn write(&self, fs: &DatasetPath, bytes: usize) -> Result<(), String> {
        Fixture::write(self.ctx, fs, bytes).await
    }
}

/// The batch conformance cases pass when every batched command fails and `RealZfs`
/// falls back to single-item calls: the fallbacks give the batched results.
pub async fn batch_fallbacks_give_the_same_results(ctx: &Ctx) -> Result<()> {
    let refusals = format!("/var/tmp/{}-refusals", ctx.pool);
    let shim = format!("/var/tmp/{}-zfs-no-batches", ctx.pool);
    tokio::fs::write(
        &shim,
        format!(
            "#!/bin/sh\n\
             refuse() {{ echo \"$1\" >> '{refusals}'; echo 'injected: batched command refused' >&2; exit 1; }}\n\
             case \"$1\" in\n\
             program) refuse program ;;\n\
             hold|release|holds) [ $# -gt 3 ] && refuse \"$1\" ;;\n\
             get) [ $# -gt 6 ] && refuse get ;;\n\
             esac\n\
             exec zfs \"$@\"\n"
        ),
    )
    .await?;
    ctx.sh(&format!("chmod +x {shim}; rm -f {refusals}"))
        .await?;
    let mut failures = Vec::new();
    let cases = conformance::all()
        .into_iter()
        .filter(|c| c.name.starts_with("Batch") || c.name.contains("OneGet"));
    let mut n = 0;
    for case in cases {
        n += 1;
        let root = ctx.ds(&format!("fallback {n}"));
        ctx.zfs.create(&root, &[]).await?;
        let fx = FallbackFixture {
            ctx,
            zfs: RealZfs::with_runner(Runner::new(shim.clone(), "zpool")),
            root,
        };
        if let Err(e) = (case.run)(&fx).await {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    ensure!(n >= 5, "only {n} batch cases found");
    ensure!(
        failures.is_empty(),
        "with fallbacks: {}",
        failures.join("; ")
    );
    let refused = tokio::fs::read_to_string(&refusals)
        .await
        .unwrap_or_default();
    for verb in ["program", "hold", "release", "holds", "get"] {
        ensure!(
            refused.lines().any(|l| l == verb),
            "no batched `zfs {verb}` was refused, so its fallback was not exercised: {refused:?}"
        );
    }
    Ok(())
}
