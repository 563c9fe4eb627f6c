//! The receiver's check of a stream's `DRR_BEGIN` record against the step
//! it was announced as, before `zfs recv` starts.
//!
//! Invariants: no byte of a stream reaches `zfs recv` (nor is anything
//! created on the receiver) before its first [`BEGIN_LEN`] bytes parsed as a
//! BEGIN record ([`zrelay_zfs::stream_begin`]) whose toname
//! (`<step.fs>@<step.to.name>`), toguid and fromguid (0 for a full step) are
//! the step's; the record is then put back in front of the stream unchanged
//! ([`Prefixed`]). A compound stream (`-I`, `-p`) carries zero guids in its
//! first record: only its toname is checked here, and `zfs recv` checks each
//! substream; the post-receive GUID check catches the rest.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::stream_begin::{self, Expected, BEGIN_LEN};

use crate::error::{EndpointError, Result};
use crate::types::StepReq;

/// A stream whose first bytes were read and are given back first (then the
/// error that ended the read-ahead, if any, then the rest).
pub(super) struct Prefixed {
    head: Vec<u8>,
    at: usize,
    failed: Option<std::io::Error>,
    inner: Box<dyn SendStream>,
}

impl Prefixed {
    /// `head` (read from `inner`), then `failed`, then the rest of `inner`.
    pub(super) fn new(
        head: Vec<u8>,
        failed: Option<std::io::Error>,
        inner: Box<dyn SendStream>,
    ) -> Self {
        Prefixed {
            head,
            at: 0,
            failed,
            inner,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.head.len() {
            let n = (this.head.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

#[async_trait]
impl SendStream for Prefixed {
    async fn close(&mut self) -> zrelay_zfs::Result<()> {
        self.inner.close().await
    }
}

/// Read the BEGIN record of `stream` and check it against `step`; on
/// success the stream with the record put back, on refusal the stream is
/// closed and the error names the field (expected vs got).
pub(super) async fn check(step: &StepReq, mut stream: Box<dyn SendStream>) -> Result<Prefixed> {
    let mut head = vec![0u8; BEGIN_LEN];
    let mut got = 0;
    let read = loop {
        match stream.read(&mut head[got..]).await {
            Ok(0) => break Ok(()),
            Ok(n) => {
                got += n;
                if got == BEGIN_LEN {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    let refuse = |reason: String, temporary: bool| EndpointError::Stream {
        fs: step.fs.clone(),
        reason,
        temporary,
    };
    if let Err(io) = read {
        let send_err = stream.close().await.err();
        return Err(match send_err {
            Some(e) => EndpointError::zfs(format!("send of {step}"), e),
            None => refuse(format!("reading its BEGIN record: {io}"), true),
        });
    }
    let checked = stream_begin::parse(&head[..got])
        .map_err(|e| e.to_string())
        .and_then(|b| {
            let toname = format!("{}@{}", step.fs, step.to.name);
            b.check(&Expected {
                toname: &toname,
                toguid: step.to.guid,
                fromguid: step.from.as_ref().map(|f| f.guid),
            })
            .map_err(|e| e.to_string())
        });
    if let Err(reason) = checked {
        let _ = stream.close().await;
        return Err(refuse(
            format!("refused before zfs recv started: {reason}"),
            false,
        ));
    }
    Ok(Prefixed::new(head, None, stream))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use zrelay_fake::{FakeOp, FakeZfs};
    use zrelay_zfs::name::VersionKind;
    use zrelay_zfs::{SendArgs, SendFlags, SnapshotName, VersionRef, Zfs};

    use crate::types::{FsVersion, Protection, StepReq};
    use crate::{JobId, LocalReceiver, Receiver, RecvOptions};

    struct Garbage(std::io::Cursor<Vec<u8>>);
    impl AsyncRead for Garbage {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }
    #[async_trait::async_trait]
    impl zrelay_zfs::process::SendStream for Garbage {
        async fn close(&mut self) -> zrelay_zfs::Result<()> {
            Ok(())
        }
    }

    use super::*;

    async fn send(
        z: &FakeZfs,
        from: Option<(&SnapshotName, u64)>,
        to: &SnapshotName,
        g: u64,
    ) -> Box<dyn SendStream> {
        let a = SendArgs {
            fs: to.fs().clone(),
            from: from.map(|(f, g)| (VersionRef::Snapshot(f.clone()), g)),
            to: (to.clone(), g),
            encrypted: false,
            flags: SendFlags::default(),
            resume_token: None,
            intermediates: false,
        };
        z.send(&a.validate(z).await.unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn refuses_a_stream_that_is_not_the_step_before_zfs_recv() {
        let z = Arc::new(FakeZfs::new());
        let pool = z.add_pool("pool").unwrap();
        let src = pool.child("src").unwrap();
        let dst = pool.child("dst").unwrap();
        z.create(&src, &[]).await.unwrap();
        z.create(&dst, &[]).await.unwrap();
        let snap = |n: &str| SnapshotName::new(&src, n).unwrap();
        z.write(&src, 1000).unwrap();
        z.snapshot(&[snap("a")]).await.unwrap();
        z.write(&src, 300).unwrap();
        z.snapshot(&[snap("b")]).await.unwrap();
        let ga = z.guid("pool/src@a").await.unwrap();
        let gb = z.guid("pool/src@b").await.unwrap();
        let v = |n: &str, guid| FsVersion {
            kind: VersionKind::Snapshot,
            name: n.into(),
            guid,
            createtxg: 1,
            creation: 0,
        };
        let r = LocalReceiver::new(
            z.clone(),
            JobId::new("j").unwrap(),
            dst.clone(),
            RecvOptions::default(),
        );
        let step = StepReq {
            fs: src.clone(),
            from: None,
            to: v("a", ga),
            resume_token: None,
            protection: Protection::default(),
        };
        let target = r.target(&src).unwrap();
        let recvs = || z.calls(FakeOp::Recv) + z.calls(FakeOp::Create);
        let before = recvs();
        // garbage
        let g = Box::new(Garbage(std::io::Cursor::new(vec![7u8; 5000])));
        let e = r.receive(&step, g).await.unwrap_err().to_string();
        assert!(e.contains("magic") && e.contains("before zfs recv"), "{e}");
        // a short stream
        let g = Box::new(Garbage(std::io::Cursor::new(vec![0u8; 10])));
        let e = r.receive(&step, g).await.unwrap_err().to_string();
        assert!(e.contains("ended after 10 bytes"), "{e}");
        // @b announced as @a: toname differs
        let e = r
            .receive(&step, send(&z, None, &snap("b"), gb).await)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("toname") && e.contains("pool/src@b") && e.contains("pool/src@a"),
            "{e}"
        );
        // an incremental a->b announced as the full step b: fromguid differs
        let full_b = StepReq {
            to: v("b", gb),
            ..step.clone()
        };
        let e = r
            .receive(
                &full_b,
                send(&z, Some((&snap("a"), ga)), &snap("b"), gb).await,
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fromguid") && e.contains("0 (a full stream)"),
            "{e}"
        );
        // same name, other guid: toguid differs
        let wrong_guid = StepReq {
            to: v("a", ga ^ 1),
            ..step.clone()
        };
        let e = r
            .receive(&wrong_guid, send(&z, None, &snap("a"), ga).await)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("toguid"), "{e}");
        assert!(z.guid(target.as_str()).await.is_err(), "target created");
        assert_eq!(recvs(), before, "zfs recv or create ran");
        // the right stream is received
        r.receive(&step, send(&z, None, &snap("a"), ga).await)
            .await
            .unwrap();
        assert_eq!(z.guid(&format!("{target}@a")).await.unwrap(), ga);
    }

    /// `pool/src@a` (of `bytes` written) on a fake, a receiver into
    /// `pool/dst`, and the full step of `@a`.
    async fn one_snapshot(
        bytes: u64,
    ) -> (
        Arc<FakeZfs>,
        zrelay_zfs::DatasetPath,
        SnapshotName,
        u64,
        LocalReceiver,
        StepReq,
    ) {
        let z = Arc::new(FakeZfs::new());
        let pool = z.add_pool("pool").unwrap();
        let src = pool.child("src").unwrap();
        let dst = pool.child("dst").unwrap();
        z.create(&src, &[]).await.unwrap();
        z.create(&dst, &[]).await.unwrap();
        let a = SnapshotName::new(&src, "a").unwrap();
        z.write(&src, bytes).unwrap();
        z.snapshot(std::slice::from_ref(&a)).await.unwrap();
        let ga = z.guid("pool/src@a").await.unwrap();
        let r = LocalReceiver::new(
            z.clone(),
            JobId::new("j").unwrap(),
            dst.clone(),
            RecvOptions::default(),
        );
        let step = StepReq {
            fs: src.clone(),
            from: None,
            to: FsVersion {
                kind: VersionKind::Snapshot,
                name: "a".into(),
                guid: ga,
                createtxg: 1,
                creation: 0,
            },
            resume_token: None,
            protection: Protection::default(),
        };
        (z, src, a, ga, r, step)
    }

    /// The previous run's interrupted receive was still being saved when the
    /// sender listed this side, so the plan is a full step without a token.
    /// The receiver refuses to overwrite, but hands the partial state's token
    /// back, so the driver retries and resumes.
    #[tokio::test]
    async fn a_full_step_meeting_an_unplanned_partial_receive_hands_back_its_token() {
        let (z, src, a, ga, r, step) = one_snapshot(100_000).await;
        z.fail_recv_at_byte(20_000);
        let first = r.receive(&step, send(&z, None, &a, ga).await).await;
        let token = first.unwrap_err().resume_token().unwrap().to_string();
        // the stale plan: full, no token
        let e = r
            .receive(&step, send(&z, None, &a, ga).await)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("refusing to overwrite"), "{e}");
        assert_eq!(e.resume_token(), Some(token.as_str()), "{e}");
        // the retry resumes with it
        let resumed = StepReq {
            resume_token: Some(token.clone()),
            ..step.clone()
        };
        let mut args = SendArgs {
            fs: src.clone(),
            from: None,
            to: (a.clone(), ga),
            encrypted: false,
            flags: SendFlags::default(),
            resume_token: None,
            intermediates: false,
        };
        args.resume_token = Some(token);
        let s = z.send(&args.validate(&*z).await.unwrap()).await.unwrap();
        r.receive(&resumed, s).await.unwrap();
        let target = r.target(&src).unwrap();
        assert_eq!(z.guid(&format!("{target}@a")).await.unwrap(), ga);
    }

    /// The previous run's interrupted receive was still running when the
    /// sender listed this side: the plan is a full step onto nothing, and
    /// `zfs recv` finds the filesystem there. That is temporary (the retry
    /// sees the saved token), not a conflict that kills the filesystem.
    #[tokio::test]
    async fn a_full_step_whose_destination_appears_after_the_plan_is_temporary() {
        use zrelay_zfs::parse::StderrKind;
        use zrelay_zfs::{Classify, ZfsError};
        let (z, src, a, ga, r, full) = one_snapshot(1000).await;
        for (stderr, kind) in [
            ("cannot receive new filesystem stream: destination 'pool/dst/src' exists\nmust specify -F to overwrite it\n", StderrKind::AlreadyExists),
            ("cannot receive new filesystem stream: destination pool/dst/src contains partially-complete state from \"zfs receive -s\".\n", StderrKind::ResumableStateExists),
        ] {
            z.fail_next_with(FakeOp::Recv, move || ZfsError::Command {
                cmd: "zfs recv -s -u pool/dst/src".into(),
                status: "exit code 1".into(),
                stderr: stderr.into(),
                kind,
            });
            let e = r
                .receive(&full, send(&z, None, &a, ga).await)
                .await
                .unwrap_err();
            assert!(e.is_temporary(), "{kind:?}: {e}");
            assert!(e.to_string().contains("appeared after this step was planned"), "{e}");
        }
        // any other failure of the receive keeps its own class
        z.fail_next_with(FakeOp::Recv, || ZfsError::Command {
            cmd: "zfs recv -s -u pool/dst/src".into(),
            status: "exit code 1".into(),
            stderr: "cannot receive: permission denied\n".into(),
            kind: StderrKind::PermissionDenied,
        });
        let e = r
            .receive(&full, send(&z, None, &a, ga).await)
            .await
            .unwrap_err();
        assert!(e.is_permanent(), "{e}");
        // and the step then goes through
        r.receive(&full, send(&z, None, &a, ga).await)
            .await
            .unwrap();
        let target = r.target(&src).unwrap();
        assert_eq!(z.guid(&format!("{target}@a")).await.unwrap(), ga);
    }
}
