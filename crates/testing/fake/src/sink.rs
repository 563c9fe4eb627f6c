//! The [`RecvSink`] of the fake: parses the stream format of [`super::stream`]
//! as it is written, applies each record when its trailer arrives, and keeps
//! resumable state when the input ends early. The stream's first 312 bytes
//! must be a real `DRR_BEGIN` record ([`zrelay_zfs::stream_begin`]) agreeing with
//! the first record, as `zfs recv` refuses a stream without one.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::AsyncWrite;

use zrelay_zfs::api::RecvArgs;
use zrelay_zfs::error::{Result, ZfsError};
use zrelay_zfs::name::SnapshotName;
use zrelay_zfs::parse::StderrKind;
use zrelay_zfs::process::RecvSink;

use super::lock;
use super::recv::what;
use super::state::{cmd_err, missing, State};
use super::stream::{filler, Header, DONE};
use zrelay_zfs::stream_begin::{self, StreamBegin, BEGIN_LEN, DMU_SUBSTREAM};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Begin,
    Header,
    Payload,
    Trailer,
    Done,
}

/// Why the receive stopped before the end of the stream.
#[derive(Debug, Clone)]
enum Stop {
    Stderr(String),
    Injected(String),
}

/// Longest header line accepted.
const MAX_LINE: usize = 1 << 20;

/// The fake `zfs recv`.
pub(crate) struct FakeRecvSink {
    shared: Arc<Mutex<State>>,
    args: RecvArgs,
    force: bool,
    phase: Phase,
    line: Vec<u8>,
    /// The stream's BEGIN record, once read.
    begin: Option<StreamBegin>,
    /// The record being received, once its header was accepted.
    cur: Option<Header>,
    /// Payload position within `cur`.
    pos: u64,
    records: usize,
    written: u64,
    fail_at: Option<u64>,
    stop: Option<Stop>,
    done: Option<std::result::Result<(), String>>,
}

impl FakeRecvSink {
    pub fn new(
        shared: Arc<Mutex<State>>,
        args: RecvArgs,
        force: bool,
        fail_at: Option<u64>,
    ) -> Self {
        FakeRecvSink {
            shared,
            args,
            force,
            phase: Phase::Begin,
            line: Vec::new(),
            begin: None,
            cur: None,
            pos: 0,
            records: 0,
            written: 0,
            fail_at,
            stop: None,
            done: None,
        }
    }

    fn cmd(&self) -> String {
        let a = &self.args;
        let mut c = "zfs recv".to_string();
        for (on, f) in [
            (a.resumable, " -s"),
            (a.unmounted, " -u"),
            (self.force, " -F"),
        ] {
            if on {
                c.push_str(f);
            }
        }
        format!("{c} {}", a.fs)
    }

    fn fail(&mut self, stderr: String) {
        self.stop.get_or_insert(Stop::Stderr(stderr));
    }

    /// Consume stream bytes; returns how many were used. Sets `stop` on failure.
    fn feed(&mut self, data: &[u8]) -> usize {
        let mut i = 0;
        while i < data.len() && self.stop.is_none() {
            match self.phase {
                Phase::Begin => {
                    let n = (BEGIN_LEN - self.line.len()).min(data.len() - i);
                    self.line.extend_from_slice(&data[i..i + n]);
                    i += n;
                    if self.line.len() == BEGIN_LEN {
                        match stream_begin::parse(&std::mem::take(&mut self.line)) {
                            Ok(b) => {
                                self.begin = Some(b);
                                self.phase = Phase::Header;
                            }
                            Err(_) => self
                                .fail("cannot receive: invalid stream (bad magic number)".into()),
                        }
                    }
                }
                Phase::Header | Phase::Trailer => {
                    let rest = &data[i..];
                    match rest.iter().position(|b| *b == b'\n') {
                        None => {
                            self.line.extend_from_slice(rest);
                            i = data.len();
                            if self.line.len() > MAX_LINE {
                                self.fail(
                                    "cannot receive: invalid stream (bad magic number)".into(),
                                );
                            }
                        }
                        Some(k) => {
                            self.line.extend_from_slice(&rest[..k]);
                            i += k + 1;
                            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line))
                                .into_owned();
                            self.on_line(&line);
                        }
                    }
                }
                Phase::Payload => {
                    let Some(h) = &self.cur else { break };
                    let (guid, size) = (h.toguid, h.size);
                    let n = ((size - self.pos) as usize).min(data.len() - i);
                    let mut want = vec![0u8; n];
                    filler(guid, self.pos, &mut want);
                    if let Some(bad) = want.iter().zip(&data[i..i + n]).position(|(a, b)| a != b) {
                        self.pos += bad as u64;
                        let msg = self.interrupt();
                        self.fail(msg);
                        break;
                    }
                    self.pos += n as u64;
                    i += n;
                    if self.pos == size {
                        self.phase = Phase::Trailer;
                    }
                }
                Phase::Done => i = data.len(),
            }
        }
        i
    }

    fn on_line(&mut self, line: &str) {
        if self.phase == Phase::Trailer {
            let Some(h) = self.cur.clone() else { return };
            if format!("{line}\n") != h.trailer() {
                let msg = self.interrupt();
                return self.fail(msg);
            }
            let res = lock(&self.shared).recv_commit(&self.args.fs, &h, &self.args, self.force);
            self.cur = None;
            match res {
                Ok(()) => {
                    self.records += 1;
                    self.phase = Phase::Header;
                }
                Err(e) => self.fail(e),
            }
            return;
        }
        if line == DONE && self.records > 0 {
            self.phase = Phase::Done;
            return;
        }
        let Some(h) = Header::decode(line).filter(|h| h.resume || h.offset == 0) else {
            return self.fail("cannot receive: invalid stream (bad magic number)".into());
        };
        if self.records == 0 {
            let agrees = self.begin.as_ref().is_some_and(|b| {
                b.hdrtype != DMU_SUBSTREAM
                    || (b.toguid == h.toguid && b.fromguid == h.fromguid.unwrap_or(0))
            });
            if !agrees {
                return self.fail(
                    "cannot receive: invalid stream (BEGIN record does not match its data)".into(),
                );
            }
        }
        let begun = lock(&self.shared).recv_begin(&self.args.fs, &h, self.force);
        if let Err(e) = begun {
            return self.fail(e);
        }
        self.pos = h.offset;
        self.phase = if h.offset >= h.size {
            Phase::Trailer
        } else {
            Phase::Payload
        };
        self.cur = Some(h);
    }

    /// The stream ended early: keep the partial state when resumable; returns zfs's stderr.
    fn interrupt(&mut self) -> String {
        let Some(h) = self.cur.take() else {
            return if self.records == 0 && self.line.is_empty() {
                "cannot receive: failed to read from stream".into()
            } else {
                "cannot receive: incomplete stream".into()
            };
        };
        let mut msg = format!(
            "cannot receive {} stream: checksum mismatch or incomplete stream",
            what(&h)
        );
        if self.args.resumable {
            if let Some(token) =
                lock(&self.shared).save_partial(&self.args.fs, &h, self.pos, self.force)
            {
                msg.push_str(&format!(
                    ".\nPartially received snapshot is saved.\nA resuming stream can be generated on the sending \
                     system by running:\n    zfs send -t {token}"
                ));
            }
        }
        msg
    }

    /// The receive's verdict, once the input has ended.
    fn conclude(&mut self) -> Result<()> {
        if self.stop.is_none() && self.phase != Phase::Done {
            let msg = self.interrupt();
            self.fail(msg);
        }
        match self.stop.clone() {
            Some(Stop::Injected(m)) => return Err(ZfsError::Injected(m)),
            Some(Stop::Stderr(stderr)) => {
                return Err(match cmd_err(self.cmd(), stderr) {
                    ZfsError::Command {
                        kind: StderrKind::DestroyOrOverwriteEncrypted,
                        stderr,
                        ..
                    } => ZfsError::RecvDestroyOrOverwriteEncrypted {
                        fs: self.args.fs.to_string(),
                        stderr,
                    },
                    e => e,
                });
            }
            None => {}
        }
        if let Some((snap, guid)) = &self.args.expect {
            let name = SnapshotName::new(&self.args.fs, snap)?;
            let st = lock(&self.shared);
            let actual = st
                .datasets
                .get(&self.args.fs)
                .and_then(|d| d.snaps.get(snap))
                .map(|s| s.guid);
            let actual = actual.ok_or_else(|| missing(&name))?;
            ZfsError::check_guid(&name.to_string(), actual, *guid)?;
        }
        Ok(())
    }

    fn broken(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("`{}` no longer reads its input", self.cmd()),
        )
    }
}

impl AsyncWrite for FakeRecvSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.done.is_some() || this.stop.is_some() {
            return Poll::Ready(Err(this.broken()));
        }
        let mut n = buf.len();
        if let Some(limit) = this.fail_at {
            if this.written >= limit && n > 0 {
                let msg = format!("`{}` died after {limit} bytes", this.cmd());
                this.interrupt();
                this.stop = Some(Stop::Injected(msg));
                return Poll::Ready(Err(this.broken()));
            }
            n = n.min(usize::try_from(limit - this.written).unwrap_or(usize::MAX));
        }
        let used = this.feed(&buf[..n]);
        this.written += used as u64;
        if this.stop.is_some() {
            return Poll::Ready(Err(this.broken()));
        }
        Poll::Ready(Ok(used))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl RecvSink for FakeRecvSink {
    async fn finish(&mut self) -> Result<()> {
        if let Some(done) = &self.done {
            return done.clone().map_err(ZfsError::Closed);
        }
        let res = self.conclude();
        self.done = Some(res.as_ref().map(drop).map_err(|e| e.to_string()));
        res
    }

    async fn abort(&mut self) {
        if self.done.is_none() {
            let res = self.conclude();
            self.done = Some(res.map_err(|e| e.to_string()));
        }
    }
}

impl Drop for FakeRecvSink {
    fn drop(&mut self) {
        if self.done.is_none() {
            let _ = self.conclude();
        }
    }
}
