//! The `zrelay` binary's tools against real ZFS: `zfs-abstraction
//! list|release-stale|release-all`, `test placeholder`, `test
//! decoderesumetoken` and `test filesystems`. Abstractions are created with
//! zrepl's names written out here, not with zrelay's helpers.

use std::collections::BTreeSet;

use anyhow::{ensure, Context as _, Result};
use tokio::process::Command;
use zrelay_zfs::{BookmarkName, DatasetPath, SnapshotName, VersionRef, Zfs};

use crate::daemons::{zrelay_bin, Scratch};
use crate::harness::Ctx;

/// Run `zrelay <args>`; returns (success, stdout, stderr).
async fn zrelay(args: &[&str]) -> Result<(bool, String, String)> {
    let out = Command::new(zrelay_bin()?)
        .args(args)
        .output()
        .await
        .context("running zrelay")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `zrelay <args>`, which must succeed; its stdout.
async fn zrelay_ok(args: &[&str]) -> Result<String> {
    let (ok, out, err) = zrelay(args).await?;
    ensure!(ok, "zrelay {args:?} failed:\n{err}\n{out}");
    Ok(out)
}

/// Snapshot `fs@name` and return it with its guid.
async fn snap(ctx: &Ctx, fs: &DatasetPath, name: &str) -> Result<(SnapshotName, u64)> {
    let s = SnapshotName::new(fs, name)?;
    ctx.zfs.snapshot(std::slice::from_ref(&s)).await?;
    let guid = ctx.zfs.guid(&s.to_string()).await?;
    Ok((s, guid))
}

async fn bookmark(ctx: &Ctx, s: &SnapshotName, guid: u64, name: &str) -> Result<String> {
    let b = BookmarkName::new(s.fs(), name)?;
    ctx.zfs
        .bookmark(&VersionRef::Snapshot(s.clone()), guid, &b)
        .await?;
    Ok(b.to_string())
}

/// `(Type, FullPath, Tag)` of every line of `list --json`.
fn listed(json_lines: &str) -> Result<BTreeSet<(String, String, String)>> {
    let mut out = BTreeSet::new();
    for line in json_lines.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        out.insert((s("Type"), s("FullPath"), s("Tag")));
    }
    Ok(out)
}

/// zrepl's abstractions on `src` (s1 < s2 < s3) and `dst` (d1 < d2) for job
/// `j`, plus a user hold and a user bookmark; list them, release the stale
/// ones (dry run first), then release the rest of the step holds.
pub async fn zfs_abstraction_release_stale(ctx: &Ctx) -> Result<()> {
    let (src, dst) = (ctx.ds("src"), ctx.ds("dst"));
    ctx.zfs.create(&src, &[]).await?;
    ctx.zfs.create(&dst, &[]).await?;
    let (s1, g1) = snap(ctx, &src, "s1").await?;
    let (s2, g2) = snap(ctx, &src, "s2").await?;
    let (s3, g3) = snap(ctx, &src, "s3").await?;
    let (d1, _) = snap(ctx, &dst, "d1").await?;
    let (d2, _) = snap(ctx, &dst, "d2").await?;
    let c1 = bookmark(ctx, &s1, g1, &format!("zrepl_CURSOR_G_{g1:016x}_J_j")).await?;
    let c2 = bookmark(ctx, &s2, g2, &format!("zrepl_CURSOR_G_{g2:016x}_J_j")).await?;
    let t3 = bookmark(
        ctx,
        &s3,
        g3,
        &format!("zrepl_CURSORTENTATIVE__G_{g3:016x}_J_j"),
    )
    .await?;
    bookmark(ctx, &s1, g1, "mine").await?;
    let (step, lr) = ("zrepl_STEP_J_j", "zrepl_last_received_J_j");
    for (s, tag) in [
        (&s1, step),
        (&s3, step),
        (&s1, "keep"),
        (&d1, lr),
        (&d2, lr),
    ] {
        ctx.zfs.hold(s, tag).await?;
    }
    let e = |t: &str, p: &dyn ToString, tag: &str| (t.to_string(), p.to_string(), tag.to_string());
    let stale: BTreeSet<_> = [
        e("replication-cursor-bookmark-v2", &c1, ""),
        e("step-hold", &s1, step),
        e("last-received-hold", &d1, lr),
    ]
    .into();
    let live: BTreeSet<_> = [
        e("replication-cursor-bookmark-v2", &c2, ""),
        e("tentative-replication-cursor-bookmark-v2", &t3, ""),
        e("step-hold", &s3, step),
        e("last-received-hold", &d2, lr),
    ]
    .into();
    let all: BTreeSet<_> = stale.union(&live).cloned().collect();
    let fs_args = ["--fs", src.as_str(), "--fs", dst.as_str()];
    let list = || async move {
        let mut args = vec!["zfs-abstraction", "list", "--json"];
        args.extend(fs_args);
        listed(&zrelay_ok(&args).await?)
    };
    ensure!(list().await? == all, "list --json: {:#?}", list().await?);

    // zrepl's filter syntax for --fs selects the same
    let spec = format!("{}<:ok", ctx.root);
    let out = zrelay_ok(&["zfs-abstraction", "list", "--json", "--fs", &spec]).await?;
    ensure!(listed(&out)? == all, "list --fs {spec}: {out}");

    let mut dry = vec!["zfs-abstraction", "release-stale", "--dry-run"];
    dry.extend(fs_args);
    let out = zrelay_ok(&dry).await?;
    let would: BTreeSet<String> = out.lines().map(str::to_string).collect();
    let want: BTreeSet<String> = [
        format!("would destroy replication-cursor-bookmark-v2 {c1}"),
        format!("would destroy step-hold \"{step}\" on {s1}"),
        format!("would destroy last-received-hold \"{lr}\" on {d1}"),
    ]
    .into();
    ensure!(would == want, "release-stale --dry-run printed:\n{out}");
    ensure!(list().await? == all, "the dry run removed something");

    let mut real = vec!["zfs-abstraction", "release-stale"];
    real.extend(fs_args);
    let out = zrelay_ok(&real).await?;
    ensure!(
        out.lines().count() == 3 && out.lines().all(|l| l.ends_with(" ... OK")),
        "release-stale printed:\n{out}"
    );
    ensure!(
        list().await? == live,
        "after release-stale: {:#?}",
        list().await?
    );
    ensure!(ctx.zfs.holds(&s1).await? == ["keep"], "the user hold went");
    ensure!(
        ctx.zfs
            .list_versions(&src)
            .await?
            .iter()
            .any(|v| v.name == "mine"),
        "the user bookmark went"
    );
    // nothing stale is left
    let out = zrelay_ok(&dry).await?;
    ensure!(out.trim().is_empty(), "still stale:\n{out}");

    // release-all of one type and job
    let mut step_only = vec![
        "zfs-abstraction",
        "release-all",
        "--job",
        "j",
        "--type",
        "step-hold",
        "--json",
    ];
    step_only.extend(fs_args);
    let out = zrelay_ok(&step_only).await?;
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).with_context(|| format!("release-all --json: {out}"))?;
    ensure!(
        v["DestroyErr"] == "" && v["Abstraction"]["FullPath"] == s3.to_string(),
        "release-all --json: {out}"
    );
    ensure!(
        ctx.zfs.holds(&s3).await?.is_empty(),
        "step hold on s3 stayed"
    );

    // step holds are judged by the cursors: asking for one without the other is refused
    let (ok, _, err) = zrelay(&["zfs-abstraction", "release-stale", "--type", "step-hold"]).await?;
    ensure!(
        !ok && err.contains("replication-cursor-bookmark-v2"),
        "release-stale --type step-hold: {err}"
    );
    let (ok, _, err) = zrelay(&[
        "zfs-abstraction",
        "list",
        "--fs",
        &format!("{}/nope", ctx.root),
    ])
    .await?;
    ensure!(
        !ok && err.contains("does not exist"),
        "list of a missing fs: {err}"
    );
    Ok(())
}

/// `test placeholder`: only a locally set `zrepl:placeholder=on` counts.
pub async fn test_placeholder(ctx: &Ctx) -> Result<()> {
    let ph = ctx.ds("ph");
    let child = ctx.ds("ph/child");
    ctx.zfs
        .create(&ph, &[("zrepl:placeholder".into(), "on".into())])
        .await?;
    ctx.zfs.create(&child, &[]).await?;
    let header = "IS_PLACEHOLDER\tDATASET\tzrepl:placeholder";
    let out = zrelay_ok(&["test", "placeholder", "--dataset", ph.as_str()]).await?;
    ensure!(out == format!("{header}\nyes\t{ph}\ton\n"), "{out:?}");
    let out = zrelay_ok(&["test", "placeholder", "--dataset", child.as_str()]).await?;
    ensure!(out == format!("{header}\nno\t{child}\t\n"), "{out:?}");
    let out = zrelay_ok(&["test", "placeholder", "--all"]).await?;
    for line in [
        format!("yes\t{ph}\ton"),
        format!("no\t{child}\t"),
        format!("no\t{}\t", ctx.root),
    ] {
        ensure!(
            out.lines().any(|l| l == line),
            "--all lacks {line:?}:\n{out}"
        );
    }
    let missing = format!("{}/missing", ctx.root);
    let (ok, _, err) = zrelay(&["test", "placeholder", "--dataset", &missing]).await?;
    ensure!(
        !ok && err.contains("does not exist"),
        "missing dataset: {err}"
    );
    Ok(())
}

/// `test decoderesumetoken` on the token of a real partial receive.
pub async fn test_decoderesumetoken(ctx: &Ctx) -> Result<()> {
    let src = ctx.ds("src");
    ctx.zfs.create(&src, &[]).await?;
    ctx.write(&src, "big", 3_000_000).await?;
    let (s, guid) = snap(ctx, &src, "s").await?;
    let dst = ctx.ds("dst");
    let cut = ctx
        .sh(&format!(
            "zfs send '{s}' | head -c 1000000 | zfs recv -s -u '{dst}'"
        ))
        .await;
    ensure!(cut.is_err(), "a truncated receive succeeded");
    let token = ctx
        .sh(&format!("zfs get -H -o value receive_resume_token '{dst}'"))
        .await?
        .trim()
        .to_string();
    ensure!(token.len() > 10, "no resume token on {dst}: {token:?}");
    let out = zrelay_ok(&["test", "decoderesumetoken", "--token", &token, "--json"]).await?;
    let v: serde_json::Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    ensure!(
        v["ToName"] == s.to_string()
            && v["ToGUID"] == guid
            && v["HasFromGUID"] == false
            && v["Bytes"].as_u64().is_some_and(|b| b > 0),
        "decoded: {out}"
    );
    let out = zrelay_ok(&["test", "decoderesumetoken", "--token", &token]).await?;
    ensure!(
        out.contains(&format!("toname:   {s}\n")) && out.contains("none, a full send"),
        "text: {out}"
    );
    let bad = "1-deadbeef-0-789c";
    let (ok, _, err) = zrelay(&["test", "decoderesumetoken", "--token", bad]).await?;
    ensure!(!ok && err.contains(bad), "invalid token: {err}");
    Ok(())
}

/// `test filesystems` against a configuration written here.
pub async fn test_filesystems(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let root = &ctx.root;
    for rel in ["src", "src/a", "src/tmp", "src/tmp/keep", "other"] {
        ctx.zfs.create(&ctx.ds(rel), &[]).await?;
    }
    let cfg = scratch.write(
        "zrelay.yml",
        &format!(
            r#"global:
  control:
    sockpath: "{dir}/control.sock"
jobs:
  - name: pushjob
    type: push
    connect: {{type: tcp, address: "127.0.0.1:1"}}
    filesystems:
      "{root}/src<": true
      "{root}/src/tmp<": false
      "{root}/src/tmp/keep": true
    snapshotting: {{type: manual}}
    pruning:
      keep_sender: [{{type: not_replicated}}]
      keep_receiver: [{{type: last_n, count: 1}}]
  - name: sinkjob
    type: sink
    root_fs: "{root}/sink"
    serve: {{type: tcp, listen: "127.0.0.1:1", clients: {{"127.0.0.1": "x"}}}}
"#,
            dir = scratch.dir.display()
        ),
    )?;
    let cfg = cfg.to_str().context("config path")?;
    let t = |job: &'static str, what: Vec<String>| async move {
        let mut args = vec!["test", "filesystems", "--config", cfg, "--job", job];
        args.extend(what.iter().map(String::as_str));
        zrelay(&args).await
    };
    let input = |fs: String| vec!["--input".to_string(), fs];
    let (ok, out, err) = t("pushjob", input(format!("{root}/src/a/new"))).await?;
    ensure!(
        ok && out == format!("{root}/src/a/new: included by rule \"{root}/src<\"\n"),
        "{out}{err}"
    );
    let (ok, out, err) = t("pushjob", input("elsewhere/x".into())).await?;
    ensure!(
        ok && out == "elsewhere/x: excluded: no rule matches\n",
        "{out}{err}"
    );
    let (ok, out, err) = t("pushjob", vec!["--all".into()]).await?;
    ensure!(ok, "--all: {err}");
    for line in [
        format!("{root}/src: included by rule \"{root}/src<\""),
        format!("{root}/src/a: included by rule \"{root}/src<\""),
        format!("{root}/src/tmp: excluded by rule \"{root}/src/tmp<\""),
        format!("{root}/src/tmp/keep: included by rule \"{root}/src/tmp/keep\""),
        format!("{root}/other: excluded: no rule matches"),
    ] {
        ensure!(
            out.lines().any(|l| l == line),
            "--all lacks {line:?}:\n{out}"
        );
    }
    let (ok, _, err) = t("sinkjob", input("x".into())).await?;
    ensure!(
        !ok && err.contains("no filesystems filter"),
        "sink job: {err}"
    );
    let (ok, _, err) = t("nojob", input("x".into())).await?;
    ensure!(
        !ok && err.contains("no job named \"nojob\""),
        "unknown job: {err}"
    );
    Ok(())
}

/// `zfs-abstraction create step` places zrepl's step hold; `migrate
/// replication-cursor:v1-v2` removes a v1 cursor only once the owning job's
/// v2 cursor superseded it, and `--dry-run` removes nothing; `--config`
/// works before the subcommand.
pub async fn create_step_and_migrate_cursor(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let fs = ctx.ds("src");
    ctx.zfs.create(&fs, &[]).await?;
    let (s1, g1) = snap(ctx, &fs, "s1").await?;
    let (s2, g2) = snap(ctx, &fs, "s2").await?;
    let s1_name = s1.to_string();
    zrelay_ok(&[
        "zfs-abstraction",
        "create",
        "step",
        "-t",
        &s1_name,
        "-j",
        "pushjob",
    ])
    .await?;
    let holds = ctx.sh(&format!("zfs holds -H '{s1}'")).await?;
    ensure!(holds.contains("zrepl_STEP_J_pushjob"), "holds: {holds}");
    ctx.sh(&format!("zfs release zrepl_STEP_J_pushjob '{s1}'"))
        .await?;

    let v1 = bookmark(ctx, &s1, g1, "zrepl_replication_cursor").await?;
    let cfg = scratch.write(
        "zrelay.yml",
        &format!(
            "global:\n  control:\n    sockpath: \"{dir}/control.sock\"\njobs:\n  - name: pushjob\n    type: push\n    connect: {{type: tcp, address: \"127.0.0.1:1\"}}\n    filesystems:\n      \"{fs}\": true\n    snapshotting: {{type: manual}}\n    pruning:\n      keep_sender: [{{type: not_replicated}}]\n      keep_receiver: [{{type: last_n, count: 1}}]\n",
            dir = scratch.dir.display()
        ),
    )?;
    let cfg = cfg.to_str().context("config path")?;
    let bookmarks = || async {
        ctx.sh(&format!("zfs list -H -t bookmark -o name '{fs}'"))
            .await
    };
    let migrate = |dry: bool| async move {
        let mut args = vec!["--config", cfg, "migrate", "replication-cursor:v1-v2"];
        if dry {
            args.push("--dry-run");
        }
        zrelay(&args).await
    };
    // no v2 cursor yet: refused, the v1 cursor stays
    let (ok, out, err) = migrate(false).await?;
    ensure!(
        !ok,
        "without a v2 cursor the migration must refuse:\n{out}{err}"
    );
    ensure!(bookmarks().await?.contains(&v1), "v1 cursor destroyed");
    // the job's v2 cursor at a later snapshot supersedes it
    let v2 = format!("zrepl_CURSOR_G_{g2:016x}_J_pushjob");
    bookmark(ctx, &s2, g2, &v2).await?;
    let (ok, out, err) = migrate(true).await?;
    ensure!(ok, "dry run: {out}{err}");
    ensure!(bookmarks().await?.contains(&v1), "a dry run destroyed {v1}");
    let (ok, out, err) = migrate(false).await?;
    ensure!(ok, "migration: {out}{err}");
    let left = bookmarks().await?;
    ensure!(
        !left.contains("zrepl_replication_cursor") && left.contains(&v2),
        "after the migration: {left}"
    );
    Ok(())
}

/// `zrelay monitor` on real ZFS: the Nagios exit codes OK (0), WARNING (1),
/// CRITICAL (2) and UNKNOWN (3), with performance data and `--json`.
pub async fn monitor_exit_codes(ctx: &Ctx) -> Result<()> {
    let scratch = Scratch::new(ctx)?;
    let root = &ctx.root;
    for rel in ["mon", "mon/a", "mon/empty"] {
        ctx.zfs.create(&ctx.ds(rel), &[]).await?;
    }
    snap(ctx, &ctx.ds("mon/a"), "zrepl_1").await?;
    let cfg = scratch.write(
        "zrelay.yml",
        &format!(
            "global:\n  control:\n    sockpath: \"{dir}/control.sock\"\njobs:\n  - name: snapjob\n    type: snap\n    filesystems:\n      \"{root}/mon/a\": true\n    snapshotting: {{type: manual}}\n    pruning:\n      keep: [{{type: last_n, count: 10}}]\n  - name: withempty\n    type: snap\n    filesystems:\n      \"{root}/mon<\": true\n    snapshotting: {{type: manual}}\n    pruning:\n      keep: [{{type: last_n, count: 10}}]\n",
            dir = scratch.dir.display()
        ),
    )?;
    let cfg = cfg.to_str().context("config path")?;
    let code = |args: Vec<&'static str>| async move {
        let mut all = vec!["--config", cfg, "monitor"];
        all.extend(args);
        let out = Command::new(zrelay_bin()?)
            .args(&all)
            .output()
            .await
            .context("running zrelay monitor")?;
        anyhow::Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    };
    let snaps =
        |job: &'static str, w: &'static str| vec!["snapshots", "--job", job, "-w", w, "-c", "1h"];
    let (c, out) = code(snaps("snapjob", "30m")).await?;
    ensure!(
        c == Some(0) && out.starts_with("SNAPSHOTS OK - 1 filesystem(s)"),
        "{c:?} {out}"
    );
    ensure!(out.contains(&format!("'{root}/mon/a'=")), "perfdata: {out}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (c, out) = code(snaps("snapjob", "1s")).await?;
    ensure!(
        c == Some(1) && out.starts_with("SNAPSHOTS WARNING"),
        "{c:?} {out}"
    );
    let (c, out) = code(snaps("withempty", "30m")).await?;
    ensure!(
        c == Some(2) && out.contains(&format!("{root}/mon/empty has no snapshot")),
        "{c:?} {out}"
    );
    let (c, out) = code(snaps("nosuchjob", "30m")).await?;
    ensure!(
        c == Some(3) && out.starts_with("SNAPSHOTS UNKNOWN"),
        "{c:?} {out}"
    );
    let (c, out) = code(vec!["alive", "--json"]).await?;
    ensure!(
        c == Some(2) && out.contains("\"status\":\"CRITICAL\""),
        "no daemon runs: {c:?} {out}"
    );
    Ok(())
}
