//! Tests of the fake: its semantics ([`datasets`]), streams and resumability
//! ([`streams`]).

mod datasets;
mod streams;

use super::*;
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::{DestroyReason, StderrKind};
use zrelay_zfs::send_args::{SendArgs, SendFlags};

fn p(s: &str) -> DatasetPath {
    DatasetPath::parse(s).unwrap()
}

fn sn(fs: &DatasetPath, n: &str) -> SnapshotName {
    SnapshotName::new(fs, n).unwrap()
}

fn kind(e: &ZfsError) -> Option<StderrKind> {
    match e {
        ZfsError::Command { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// A fake with pool `pool`, filesystem `pool/src` holding snapshots `a`, `b`
/// (1000 and 300 bytes written before each) and an empty `pool/dst`.
async fn setup() -> (FakeZfs, DatasetPath, DatasetPath) {
    let z = FakeZfs::new();
    let pool = z.add_pool("pool").unwrap();
    let src = pool.child("src").unwrap();
    let dst = pool.child("dst").unwrap();
    z.create(&src, &[]).await.unwrap();
    z.create(&dst, &[]).await.unwrap();
    z.write(&src, 1000).unwrap();
    z.snapshot(&[sn(&src, "a")]).await.unwrap();
    z.write(&src, 300).unwrap();
    z.snapshot(&[sn(&src, "b")]).await.unwrap();
    (z, src, dst)
}

async fn args(z: &FakeZfs, from: Option<&SnapshotName>, to: &SnapshotName) -> SendArgs {
    let mut from_arg = None;
    if let Some(f) = from {
        from_arg = Some((
            VersionRef::Snapshot(f.clone()),
            z.guid(&f.to_string()).await.unwrap(),
        ));
    }
    SendArgs {
        fs: to.fs().clone(),
        from: from_arg,
        to: (to.clone(), z.guid(&to.to_string()).await.unwrap()),
        encrypted: false,
        flags: SendFlags::default(),
        resume_token: None,
        intermediates: false,
    }
}

/// Send `args` from `src` into `recv` on `dst` through `tokio::io::copy`.
async fn transfer(
    src: &FakeZfs,
    dst: &FakeZfs,
    args: SendArgs,
    recv: &RecvArgs,
    force: bool,
) -> Result<u64> {
    let v = args.validate(src).await?;
    let mut stream = src.send(&v).await?;
    let mut sink = if force {
        dst.recv_force_rollback(recv).await?
    } else {
        dst.recv(recv).await?
    };
    let copied = tokio::io::copy(&mut stream, &mut sink).await;
    stream.close().await?;
    let res = sink.finish().await;
    match copied {
        Ok(n) => res.map(|()| n),
        Err(e) => Err(res.err().unwrap_or(ZfsError::Stream {
            what: "copy".into(),
            source: e,
        })),
    }
}

fn names(vs: &[zrelay_zfs::parse::Version]) -> Vec<String> {
    vs.iter()
        .map(|v| format!("{}{}", v.kind.delimiter(), v.name))
        .collect()
}

/// Cut a send of `args` after `cut` bytes into a resumable receive; returns the token.
async fn interrupted(z: &FakeZfs, args: &SendArgs, recv: &RecvArgs, cut: u64) -> String {
    let v = args.clone().validate(z).await.unwrap();
    // `cut` counts from after the stream's BEGIN record
    z.fail_send_at_byte(cut + zrelay_zfs::stream_begin::BEGIN_LEN as u64);
    let mut stream = z.send(&v).await.unwrap();
    let mut sink = z.recv(recv).await.unwrap();
    let e = tokio::io::copy(&mut stream, &mut sink).await.unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
    stream.close().await.unwrap();
    let e = sink.finish().await.unwrap_err();
    let token =
        zrelay_zfs::parse::recv_resume_token(&e.to_string()).expect("stderr names the token");
    let listed = z
        .list_depth1(recv.fs.parent().as_ref().unwrap())
        .await
        .unwrap();
    let ds = listed
        .iter()
        .find(|d| d.path == recv.fs)
        .expect("target listed");
    assert_eq!(ds.resume_token.as_deref(), Some(token.as_str()));
    token
}

#[test]
fn header_round_trips() {
    let h = stream::Header {
        src: p("p/a b"),
        to: "s 1,=%".into(),
        toguid: 0xdead_beef,
        creation: 1_700_000_123,
        fromguid: Some(7),
        raw: true,
        encryption: Some("aes-256-gcm".into()),
        size: 10,
        offset: 3,
        resume: true,
        props: Some(vec![("user:x".into(), "a=b, c".into())]),
        large_blocks: true,
        embedded: false,
        compressed: true,
    };
    let line = h.encode();
    assert_eq!(
        stream::Header::decode(line.trim_end_matches('\n')),
        Some(h.clone())
    );
    let none = stream::Header {
        props: Some(vec![]),
        fromguid: None,
        encryption: None,
        ..h
    };
    assert_eq!(
        stream::Header::decode(none.encode().trim_end_matches('\n')),
        Some(none)
    );
    assert!(VersionKind::Snapshot < VersionKind::Bookmark);
}
