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

/// A stream whose first bytes were read and are given back first.
pub(super) struct Prefixed {
    head: Vec<u8>,
    at: usize,
    inner: Box<dyn SendStream>,
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
    Ok(Prefixed {
        head,
        at: 0,
        inner: stream,
    })
}
