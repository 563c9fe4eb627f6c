//! A client's received properties do not take effect on the sink.
//!
//! A push job sends a filesystem with `send.properties: true` whose
//! `mountpoint`, `setuid`, `exec` and `devices` are set locally on the
//! client. On a sink with the default `recv` (zrelay passes `zfs recv -x`
//! for each protected property), the received filesystem inherits them from
//! the sink's `root_fs` (set to `off` there, so that the source is visible);
//! with `recv.properties.allow_from_sender` listing them, it has the
//! client's values, received. A volume below it is sent with its properties
//! too and must arrive (`zfs recv -x mountpoint` of a volume is an error, so
//! the receiver must tell the two apart).

use anyhow::{ensure, Result};
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

use crate::daemons::{free_port, guid, tail, Daemon, Site};
use crate::harness::Ctx;

const PROPS: [&str; 4] = ["mountpoint", "setuid", "exec", "devices"];

/// `zfs get -H -o property,value,source` of [`PROPS`], as (property, value, source).
async fn props(ctx: &Ctx, fs: &str) -> Result<Vec<(String, String, String)>> {
    let out = ctx
        .sh(&format!(
            "zfs get -H -o property,value,source {} '{fs}'",
            PROPS.join(",")
        ))
        .await?;
    Ok(out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f.get(1).unwrap_or(&"").to_string(),
                f.get(2).unwrap_or(&"").to_string(),
            )
        })
        .collect())
}

/// Replicate `evil` to a sink whose `recv` is `recv` into `root_fs`; returns
/// the received filesystem's properties.
async fn replicate(
    ctx: &Ctx,
    site: &Site,
    root_fs: &str,
    recv: &str,
    evil: &DatasetPath,
    snap: &str,
) -> Result<Vec<(String, String, String)>> {
    let port = free_port()?;
    let sink = format!(
        "{}jobs:\n  - name: sink\n    type: sink\n    root_fs: \"{root_fs}\"\n    serve: {{type: tcp, listen: \"127.0.0.1:{port}\", clients: {{\"127.0.0.1\": \"alice\"}}}}\n{recv}",
        site.global("sink", "")
    );
    let push = format!(
        "{}jobs:\n  - name: push\n    type: push\n    connect: {{type: tcp, address: \"127.0.0.1:{port}\"}}\n    filesystems:\n      \"{evil}<\": true\n    send:\n      send_properties: true\n    snapshotting:\n      type: manual\n    pruning:\n      keep_sender:\n        - type: last_n\n          count: 100\n      keep_receiver:\n        - type: last_n\n          count: 100\n",
        site.global("push", "")
    );
    let p = |n: &str| site.scratch.path(n);
    let sink_cfg = site.scratch.write("sink.yml", &sink)?;
    let push_cfg = site.scratch.write("push.yml", &push)?;
    let sink = Daemon::start("sink", &sink_cfg, &p("sink.sock"), &p("sink.log")).await?;
    let push = Daemon::start("push", &push_cfg, &p("push.sock"), &p("push.log")).await?;
    let woke = push.wakeup_ok("push").await;
    let sink_log = sink.log_text();
    push.stop().await?;
    sink.stop().await?;
    if let Err(e) = woke {
        anyhow::bail!("{e}\n--- sink log:\n{}", tail(&sink_log));
    }
    let received = format!("{root_fs}/alice/{evil}");
    // The volume came too: `-x mountpoint` (an error for a volume) was not
    // passed for its stream.
    let vol = format!("{evil}/vol@{snap}");
    let (a, b) = (
        guid(ctx, &vol).await?,
        guid(ctx, &format!("{root_fs}/alice/{vol}")).await?,
    );
    ensure!(a == b, "{vol}: guid {b} on the sink, {a} on the client");
    props(ctx, &received).await
}

/// `SecurityRecvClientPropertiesDoNotApplyOnTheSink`.
pub async fn client_properties_do_not_apply_on_the_sink(ctx: &Ctx) -> Result<()> {
    let site = Site::new(ctx).await?;
    let evil_mp = format!("/some/evil/{}", ctx.pool);
    let evil = ctx.ds("src/evil");
    ctx.sh(&format!(
        "zfs create -p -o mountpoint='{evil_mp}' -o setuid=on -o exec=on -o devices=on '{evil}'"
    ))
    .await?;
    ctx.write(&evil, "data.bin", 100_000).await?;
    let vol = ctx.ds("src/evil/vol");
    ctx.sh(&format!("zfs create -V 4M -o compression=lz4 '{vol}'"))
        .await?;
    ctx.zfs
        .snapshot(&[
            SnapshotName::new(&evil, "zrelay_1")?,
            SnapshotName::new(&vol, "zrelay_1")?,
        ])
        .await?;
    let client = props(ctx, evil.as_str()).await?;
    for (p, v, s) in &client {
        let want = if p == "mountpoint" {
            evil_mp.as_str()
        } else {
            "on"
        };
        ensure!(v == want && s == "local", "client {p}={v} ({s})");
    }

    // The sink's own choices, which the received filesystem should inherit.
    let strict = format!("{}/strict", site.root_fs);
    let open = format!("{}/open", site.root_fs);
    for r in [&strict, &open] {
        ctx.sh(&format!(
            "zfs create -o setuid=off -o exec=off -o devices=off '{r}'"
        ))
        .await?;
    }

    // Default recv: nothing of the client's applies. The target exists as a
    // placeholder, so the full receive is `zfs recv -F` over it (where
    // libzfs skips `-x` for inherited values); then an incremental.
    let target = format!("{strict}/alice/{evil}");
    let parent = target.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
    ctx.sh(&format!(
        "zfs create -p '{parent}' && zfs create -o zrepl:placeholder=on '{target}'"
    ))
    .await?;
    let mut runs = Vec::new();
    runs.push(replicate(ctx, &site, &strict, "", &evil, "zrelay_1").await?);
    ctx.zfs
        .snapshot(&[
            SnapshotName::new(&evil, "zrelay_2")?,
            SnapshotName::new(&vol, "zrelay_2")?,
        ])
        .await?;
    runs.push(replicate(ctx, &site, &strict, "", &evil, "zrelay_2").await?);
    let (a, b) = (
        guid(ctx, &format!("{evil}@zrelay_2")).await?,
        guid(ctx, &format!("{target}@zrelay_2")).await?,
    );
    ensure!(
        a == b,
        "incremental: guid {b} on the sink, {a} on the client"
    );
    let sink_mp = format!("/{strict}/alice/{evil}");
    for (p, v, s) in runs.iter().flatten() {
        let got = &runs;
        ensure!(
            !s.starts_with("received") && !s.starts_with("local"),
            "default recv: {p}={v} has source {s:?}: {got:?}"
        );
        ensure!(
            s.starts_with("inherited from"),
            "default recv: {p}={v} ({s}) is not inherited: {got:?}"
        );
        let want = if p == "mountpoint" {
            sink_mp.as_str()
        } else {
            "off"
        };
        ensure!(v == want, "default recv: {p}={v}, want {want}: {got:?}");
    }

    // allow_from_sender: the client's values are received (a new filesystem).
    let allow = "    recv:\n      properties:\n        allow_from_sender: [mountpoint, setuid, exec, devices]\n";
    let got = replicate(ctx, &site, &open, allow, &evil, "zrelay_2").await?;
    for (p, v, s) in &got {
        let want = if p == "mountpoint" {
            evil_mp.as_str()
        } else {
            "on"
        };
        ensure!(
            v == want && s == "received",
            "allow_from_sender: {p}={v} ({s}), want {want} (received): {got:?}"
        );
    }
    Ok(())
}
