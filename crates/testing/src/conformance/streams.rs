//! Conformance cases for send and receive: validation, resumability, forced
//! receives and the send-stream lifecycle.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cases::{ds, fs_with_snaps, snap, version_names};
use super::{CaseResult, Fixture, Outcome};
use crate::ensure_case;
use zrelay_zfs::api::{RecvArgs, VersionRef};
use zrelay_zfs::error::ZfsError;
use zrelay_zfs::name::{DatasetPath, SnapshotName};
use zrelay_zfs::send_args::{SendArgs, SendFlags, ValidatedSendArgs};

async fn full_args(fx: &dyn Fixture, s: &SnapshotName) -> Result<SendArgs, String> {
    let guid = fx.zfs().guid(&s.to_string()).await.ctx("guid")?;
    Ok(SendArgs {
        fs: s.fs().clone(),
        from: None,
        to: (s.clone(), guid),
        encrypted: false,
        flags: SendFlags::default(),
        resume_token: None,
        intermediates: false,
    })
}

async fn validated(fx: &dyn Fixture, args: SendArgs) -> Result<ValidatedSendArgs, String> {
    args.validate(fx.zfs()).await.ctx("validate")
}

/// Send everything of `args` into a receive; returns the bytes moved.
async fn transfer(
    fx: &dyn Fixture,
    args: SendArgs,
    recv: &RecvArgs,
    force: bool,
) -> Result<u64, ZfsError> {
    let v = args.validate(fx.zfs()).await?;
    let mut stream = fx.zfs().send(&v).await?;
    let mut sink = if force {
        fx.zfs().recv_force_rollback(recv).await?
    } else {
        fx.zfs().recv(recv).await?
    };
    let copied = tokio::io::copy(&mut stream, &mut sink).await;
    let _ = stream.close().await;
    match copied {
        Ok(n) => sink.finish().await.map(|_| n),
        Err(e) => {
            // the receive's own verdict explains a broken pipe better than EPIPE
            sink.finish().await?;
            Err(ZfsError::Stream {
                what: "copy".into(),
                source: e,
            })
        }
    }
}

async fn two_snapshot_fs(fx: &dyn Fixture, rel: &str) -> Result<DatasetPath, String> {
    fs_with_snaps(fx, rel, &["1", "2"]).await
}

pub(super) async fn receive_force_rollback_works_unencrypted(fx: &dyn Fixture) -> Outcome {
    let src = two_snapshot_fs(fx, "src").await?;
    let dst = fs_with_snaps(fx, "dst", &["existing a", "existing b"]).await?;
    let recv = RecvArgs::new(dst.clone());
    transfer(fx, full_args(fx, &snap(&src, "1")).await?, &recv, true)
        .await
        .ctx("forced full receive")?;
    let names = version_names(fx, &dst, None).await?;
    ensure_case!(
        names == vec!["1".to_string()],
        "receiver versions after recv -F: {names:?}"
    );
    Ok(())
}

pub(super) async fn receive_without_force_refuses_existing(fx: &dyn Fixture) -> Outcome {
    let src = two_snapshot_fs(fx, "src").await?;
    let dst = fs_with_snaps(fx, "dst", &["mine"]).await?;
    let res = transfer(
        fx,
        full_args(fx, &snap(&src, "1")).await?,
        &RecvArgs::new(dst.clone()),
        false,
    )
    .await;
    ensure_case!(
        res.is_err(),
        "a full receive over an existing filesystem succeeded"
    );
    let names = version_names(fx, &dst, None).await?;
    ensure_case!(
        names == vec!["mine".to_string()],
        "receiver was modified: {names:?}"
    );
    Ok(())
}

pub(super) async fn receive_checks_expected_guid(fx: &dyn Fixture) -> Outcome {
    let src = two_snapshot_fs(fx, "src").await?;
    let mut recv = RecvArgs::new(ds(fx, "dst"));
    recv.expect = Some(("1".into(), 0xdead_beef));
    match transfer(fx, full_args(fx, &snap(&src, "1")).await?, &recv, false).await {
        Err(ZfsError::GuidMismatch {
            expected: 0xdead_beef,
            ..
        }) => Ok(()),
        other => Err(format!("expected GuidMismatch, got {other:?}")),
    }
}

/// Interrupt a receive after `n` bytes; returns the token left behind.
async fn interrupt(
    fx: &dyn Fixture,
    v: &ValidatedSendArgs,
    recv: &RecvArgs,
    n: usize,
) -> Result<String, String> {
    let mut stream = fx.zfs().send(v).await.ctx("send")?;
    let mut sink = fx.zfs().recv(recv).await.ctx("recv")?;
    let mut left = n;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let k = stream
            .read(&mut buf[..left.min(64 * 1024)])
            .await
            .ctx("read")?;
        ensure_case!(k > 0, "stream ended before {n} bytes");
        sink.write_all(&buf[..k]).await.ctx("write")?;
        left -= k;
    }
    stream.close().await.ctx("close")?;
    sink.abort().await;
    let listed = fx.zfs().list(fx.root()).await.ctx("list")?;
    listed
        .into_iter()
        .find(|d| d.path == recv.fs)
        .and_then(|d| d.resume_token)
        .ok_or_else(|| {
            format!(
                "no receive_resume_token on {} after an interrupted receive",
                recv.fs
            )
        })
}

pub(super) async fn resumable_recv_and_token_handling(fx: &dyn Fixture) -> Outcome {
    let src = ds(fx, "src");
    fx.zfs().create(&src, &[]).await.ctx("create")?;
    fx.write(&src, 4 << 20).await?;
    let s = snap(&src, "s");
    fx.zfs()
        .snapshot(std::slice::from_ref(&s))
        .await
        .ctx("snapshot")?;
    let args = full_args(fx, &s).await?;
    let guid = args.to.1;
    let v = validated(fx, args.clone()).await?;
    let recv = RecvArgs::new(ds(fx, "dst"));
    let full = fx.zfs().send_dry(&v).await.ctx("estimate")?.size;
    let token = interrupt(fx, &v, &recv, 3 << 20).await?;
    let info = fx
        .zfs()
        .resume_token_info(&token)
        .await
        .ctx("decode token")?;
    ensure_case!(
        info.toguid == guid && info.toname == s,
        "token decodes to {info:?}"
    );
    ensure_case!(
        info.fromguid.is_none(),
        "full send token has fromguid {:?}",
        info.fromguid
    );
    let mut resume = args;
    resume.resume_token = Some(token);
    let mut recv = recv;
    recv.expect = Some(("s".into(), guid));
    let moved = transfer(fx, resume, &recv, false).await.ctx("resume")?;
    ensure_case!(
        moved < full,
        "resumed stream re-sent {moved} of {full} bytes"
    );
    let vs = fx.zfs().list_versions(&recv.fs).await.ctx("list")?;
    ensure_case!(
        vs.iter().any(|v| v.guid == guid),
        "snapshot missing after resume: {vs:?}"
    );
    // a token that is not one is refused with a clear error
    match fx.zfs().resume_token_info("1-garbage-token").await {
        Err(e) => ensure_case!(
            e.to_string().contains("token"),
            "bad-token error does not say so: {e}"
        ),
        Ok(i) => return Err(format!("a garbage token decoded to {i:?}")),
    }
    Ok(())
}

pub(super) async fn encrypted_send_of_unencrypted_forbidden(fx: &dyn Fixture) -> Outcome {
    let src = two_snapshot_fs(fx, "plain").await?;
    let mut args = full_args(fx, &snap(&src, "1")).await?;
    args.encrypted = true;
    match args.validate(fx.zfs()).await {
        Err(ZfsError::SendValidation(m)) if m.contains("not encrypted") => Ok(()),
        other => Err(format!("expected a refusal, got {other:?}")),
    }
}

pub(super) async fn resume_token_different_filesystem_forbidden(fx: &dyn Fixture) -> Outcome {
    let a = ds(fx, "a");
    fx.zfs().create(&a, &[]).await.ctx("create")?;
    fx.write(&a, 1 << 20).await?;
    fx.zfs().snapshot(&[snap(&a, "s")]).await.ctx("snapshot")?;
    let b = two_snapshot_fs(fx, "b").await?;
    let va = validated(fx, full_args(fx, &snap(&a, "s")).await?).await?;
    let token = interrupt(fx, &va, &RecvArgs::new(ds(fx, "a copy")), 128 * 1024).await?;
    // a token for `a` presented for a send of `b`
    let mut forged = full_args(fx, &snap(&b, "1")).await?;
    forged.resume_token = Some(token);
    match forged.validate(fx.zfs()).await {
        Err(ZfsError::SendValidation(m)) if m.contains("not for the requested filesystem") => {
            Ok(())
        }
        other => Err(format!("expected a refusal, got {other:?}")),
    }
}

pub(super) async fn send_guid_mismatch_forbidden(fx: &dyn Fixture) -> Outcome {
    let src = two_snapshot_fs(fx, "src").await?;
    let mut args = full_args(fx, &snap(&src, "2")).await?;
    let g1 = fx
        .zfs()
        .guid(&snap(&src, "1").to_string())
        .await
        .ctx("guid")?;
    args.from = Some((VersionRef::Snapshot(snap(&src, "1")), g1 ^ 1));
    match args.validate(fx.zfs()).await {
        Err(ZfsError::GuidMismatch { .. }) => Ok(()),
        other => Err(format!("expected GuidMismatch, got {other:?}")),
    }
}

async fn big_stream_fs(fx: &dyn Fixture) -> Result<ValidatedSendArgs, String> {
    let fs = ds(fx, "big");
    fx.zfs().create(&fs, &[]).await.ctx("create")?;
    fx.write(&fs, 4 << 20).await?;
    fx.zfs().snapshot(&[snap(&fs, "s")]).await.ctx("snapshot")?;
    validated(fx, full_args(fx, &snap(&fs, "s")).await?).await
}

pub(super) async fn close_after_blocked_on_pipe_write(fx: &dyn Fixture) -> Outcome {
    let v = big_stream_fs(fx).await?;
    let mut stream = fx.zfs().send(&v).await.ctx("send")?;
    // let the producer fill the pipe and block
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stream
        .close()
        .await
        .ctx("close while the producer is blocked")?;
    let mut buf = [0u8; 16];
    ensure_case!(
        stream.read(&mut buf).await.is_err(),
        "read after close did not fail"
    );
    Ok(())
}

pub(super) async fn close_after_eof_read(fx: &dyn Fixture) -> Outcome {
    let v = big_stream_fs(fx).await?;
    let mut stream = fx.zfs().send(&v).await.ctx("send")?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all).await.ctx("read to EOF")?;
    ensure_case!(all.len() > 4 << 20, "stream only {} bytes", all.len());
    stream.close().await.ctx("close after EOF")?;
    Ok(())
}

pub(super) async fn multiple_close_after_eof(fx: &dyn Fixture) -> Outcome {
    let v = big_stream_fs(fx).await?;
    let mut stream = fx.zfs().send(&v).await.ctx("send")?;
    tokio::io::copy(&mut stream, &mut tokio::io::sink())
        .await
        .ctx("drain")?;
    stream.close().await.ctx("first close")?;
    stream.close().await.ctx("second close")?;
    Ok(())
}

pub(super) async fn multiple_close_before_eof(fx: &dyn Fixture) -> Outcome {
    let v = big_stream_fs(fx).await?;
    let mut stream = fx.zfs().send(&v).await.ctx("send")?;
    let mut buf = vec![0u8; 1024];
    stream.read_exact(&mut buf).await.ctx("read a little")?;
    stream.close().await.ctx("first close")?;
    stream.close().await.ctx("second close")?;
    Ok(())
}
