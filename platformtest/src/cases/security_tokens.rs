//! Issue #12, findings 1 and 6, on real OpenZFS: forged resume tokens cannot
//! turn an encrypted (raw) send into a plaintext one, a legitimate raw
//! partial receive resumes with `-w -t`, and a receiver refuses a stream
//! whose BEGIN record is not the announced step before `zfs recv` runs.

use std::sync::Arc;

use anyhow::{bail, ensure, Context as _, Result};
use zrelay_endpoint::types::{FsVersion, Protection, StepReq};
use zrelay_endpoint::{JobId, LocalReceiver, Receiver, RecvOptions};
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::resume_token::{self, NvValue};
use zrelay_zfs::{DatasetPath, RecvArgs, SendArgs, SendFlags, SnapshotName, Zfs, ZfsError};

use super::zfs_layer::snap_with_data;
use crate::harness::Ctx;

/// An encrypted filesystem with a passphrase in a key file (key loaded).
async fn passphrase_fs(ctx: &Ctx, rel: &str) -> Result<DatasetPath> {
    let fs = ctx.ds(rel);
    let key = format!("/var/tmp/{}.pass", ctx.pool);
    ctx.sh(&format!(
        "echo 'correct horse battery' > {key}; zfs create -o encryption=on -o keyformat=passphrase -o keylocation=file://{key} '{fs}'"
    ))
    .await?;
    Ok(fs)
}

fn args(to: &(SnapshotName, u64), encrypted: bool) -> SendArgs {
    SendArgs {
        fs: to.0.fs().clone(),
        from: None,
        to: to.clone(),
        encrypted,
        flags: SendFlags::default(),
        resume_token: None,
        intermediates: false,
    }
}

/// A shell pipeline cut after `cut` bytes into `zfs recv -s`; the token.
async fn partial(
    ctx: &Ctx,
    flags: &str,
    snap: &SnapshotName,
    dst: &DatasetPath,
    cut: usize,
) -> Result<String> {
    ctx.sh(&format!(
        "zfs send {flags} '{snap}' | head -c {cut} | zfs recv -s -u '{dst}' || true"
    ))
    .await?;
    let t = ctx.zfs.get(dst.as_str(), &["receive_resume_token"]).await?;
    let t = t["receive_resume_token"].value.clone();
    ensure!(t.starts_with("1-"), "no resume token on {dst}: {t:?}");
    Ok(t)
}

fn sends(ctx: &Ctx) -> u64 {
    ctx.zfs.log().per_verb().get("send").copied().unwrap_or(0)
}

/// Finding 1: a token whose toname string carries "\n\trawok = 1" (which
/// `zfs send -nvt` prints as a rawok line) and a real plaintext token are
/// both refused under `send.encrypted: true`; no `zfs send` runs.
pub async fn forged_rawok_token_refused(ctx: &Ctx) -> Result<()> {
    let enc = passphrase_fs(ctx, "enc").await?;
    let e1 = snap_with_data(ctx, &enc, "1", 1_500_000).await?;
    let plain_token = partial(ctx, "", &e1.0, &ctx.ds("r plain"), 600_000).await?;
    let mut list = resume_token::decode(&plain_token)?.to_nvlist();
    for (k, v) in &mut list.pairs {
        if k == "toname" {
            *v = NvValue::Str(format!("{}\n\trawok = 1", e1.0));
        }
    }
    let forged = resume_token::encode(&list);
    // the text zrelay used to parse is fooled: a "rawok = 1" line appears
    let text = ctx
        .sh(&format!("zfs send -nvt '{forged}' 2>&1 || true"))
        .await?;
    ensure!(text.contains("\trawok = 1"), "zfs send -nvt output: {text}");
    let before = sends(ctx);
    for (what, token, want) in [
        ("forged", &forged, "toname"),
        ("plaintext", &plain_token, "plaintext"),
    ] {
        let mut a = args(&e1, true);
        a.resume_token = Some(token.clone());
        match a.validate(&ctx.zfs).await {
            Err(ZfsError::SendValidation(m)) if m.contains(want) => {
                ensure!(!m.contains('\n'), "{what}: error not escaped: {m}");
            }
            other => bail!("{what} token under send.encrypted: {other:?}"),
        }
    }
    // the `send -nvt` above is the only send of this case
    ensure!(
        sends(ctx) == before,
        "a zfs send ran: {:?}",
        ctx.zfs.log().per_verb()
    );
    Ok(())
}

/// A raw partial receive resumes with `zfs send -w -t` and completes.
pub async fn raw_resume_uses_w(ctx: &Ctx) -> Result<()> {
    let enc = passphrase_fs(ctx, "enc").await?;
    let e1 = snap_with_data(ctx, &enc, "1", 1_500_000).await?;
    let dst = ctx.ds("r raw");
    let token = partial(ctx, "-w", &e1.0, &dst, 600_000).await?;
    let info = resume_token::decode(&token)?;
    ensure!(info.raw_ok && info.toguid == e1.1, "{info:?}");
    let mut a = args(&e1, true);
    a.resume_token = Some(token);
    let v = a.validate(&ctx.zfs).await?;
    let argv: Vec<String> = v
        .zfs_args(false)
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    ensure!(argv[..3] == ["send", "-w", "-t"], "{argv:?}");
    let mut stream = ctx.zfs.send(&v).await?;
    let mut sink = ctx.zfs.recv(&RecvArgs::new(dst.clone())).await?;
    tokio::io::copy(&mut stream, &mut sink).await?;
    stream.close().await?;
    sink.finish().await?;
    let got = ctx.zfs.guid(&format!("{dst}@1")).await?;
    ensure!(got == e1.1, "guid {got:#x} != {:#x}", e1.1);
    let p = ctx
        .zfs
        .get(dst.as_str(), &["encryption", "keystatus"])
        .await?;
    ensure!(p["encryption"].value != "off", "received plaintext");
    Ok(())
}

/// Bytes as a send stream.
struct Bytes(std::io::Cursor<Vec<u8>>);

impl tokio::io::AsyncRead for Bytes {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

#[async_trait::async_trait]
impl SendStream for Bytes {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        Ok(())
    }
}

fn version(s: &(SnapshotName, u64)) -> FsVersion {
    FsVersion {
        kind: VersionKind::Snapshot,
        name: s.0.name().to_string(),
        guid: s.1,
        createtxg: 1,
        creation: 0,
    }
}

/// Finding 6: garbage, and a real stream of another snapshot announced as
/// this step, are refused before `zfs recv` runs; nothing is created.
pub async fn receive_begin_mismatch_refused(ctx: &Ctx) -> Result<()> {
    let src = ctx.ds("src");
    ctx.zfs.create(&src, &[]).await?;
    let s1 = snap_with_data(ctx, &src, "1", 100_000).await?;
    let s2 = snap_with_data(ctx, &src, "2", 100_000).await?;
    let root = ctx.ds("sink");
    ctx.zfs.create(&root, &[]).await?;
    let zfs: Arc<dyn Zfs> = Arc::new(ctx.zfs.clone());
    let r = LocalReceiver::new(
        zfs,
        JobId::new("sec")?,
        root.clone(),
        RecvOptions::default(),
    );
    let step = StepReq {
        fs: src.clone(),
        from: None,
        to: version(&s1),
        resume_token: None,
        protection: Protection::default(),
    };
    let recvs = || {
        ctx.zfs.log().per_verb().get("recv").copied().unwrap_or(0)
            + ctx
                .zfs
                .log()
                .per_verb()
                .get("receive")
                .copied()
                .unwrap_or(0)
    };
    let before = recvs();
    let garbage = Box::new(Bytes(std::io::Cursor::new(vec![0x41; 100_000])));
    let e = r
        .receive(&step, garbage)
        .await
        .err()
        .context("garbage accepted")?;
    ensure!(e.to_string().contains("magic"), "garbage: {e}");
    // a real stream of @2 announced as @1
    let v = args(&s2, false).validate(&ctx.zfs).await?;
    let stream = ctx.zfs.send(&v).await?;
    let e = r
        .receive(&step, stream)
        .await
        .err()
        .context("wrong snapshot accepted")?;
    let m = e.to_string();
    ensure!(
        m.contains("toname") && m.contains("@2") && m.contains("@1"),
        "wrong snapshot: {m}"
    );
    ensure!(
        recvs() == before,
        "zfs recv ran: {:?}",
        ctx.zfs.log().per_verb()
    );
    let target = r.target(&src)?;
    ensure!(
        ctx.zfs.guid(target.as_str()).await.is_err(),
        "{target} was created"
    );
    // the right stream passes the check and is received
    let v = args(&s1, false).validate(&ctx.zfs).await?;
    r.receive(&step, ctx.zfs.send(&v).await?).await?;
    ensure!(ctx.zfs.guid(&format!("{target}@1")).await? == s1.1);
    Ok(())
}
