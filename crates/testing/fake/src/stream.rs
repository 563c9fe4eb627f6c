//! The fake's stream format, its resume tokens, and the send side.
//!
//! A stream starts with a real `DRR_BEGIN` record ([`zrelay_zfs::stream_begin`],
//! 312 bytes: a substream header naming the snapshot and its guids, or for
//! several records a compound header with zero guids naming the last
//! snapshot, as `zfs send -I` writes), then a sequence of records, one per
//! snapshot, then a final line:
//!
//! ```text
//! ZRFAKE1 src=<fs> to=<snap> toguid=<hex> ... size=<payload bytes> offset=<start>\n
//! <size - offset bytes of deterministic filler>
//! ZRFAKE1-END <toguid hex>\n
//! ...more records (zfs send -I)...
//! ZRFAKE1-DONE\n
//! ```
//!
//! The filler is a function of the snapshot GUID and the byte position, so the
//! receiver verifies every byte; a stream cut short lacks its trailer and `DONE`.
//! Resume tokens are real-format OpenZFS tokens ([`zrelay_zfs::resume_token`]).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncRead, ReadBuf};

use zrelay_zfs::error::{Result, ZfsError};
use zrelay_zfs::name::{DatasetPath, SnapshotName};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::stream_begin::{StreamBegin, DMU_COMPOUNDSTREAM};

/// First word of a record header.
pub(crate) const MAGIC: &str = "ZRFAKE1";
/// The line that ends a complete stream.
pub(crate) const DONE: &str = "ZRFAKE1-DONE";

/// A record header: one snapshot's worth of stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sending filesystem.
    pub src: DatasetPath,
    /// Short name of the snapshot.
    pub to: String,
    /// Its GUID.
    pub toguid: u64,
    /// Its creation time (kept by the receiver, like OpenZFS).
    pub creation: i64,
    /// GUID of the incremental source; `None` for a full stream.
    pub fromguid: Option<u64>,
    /// `-w`.
    pub raw: bool,
    /// The cipher, for a raw stream of an encrypted filesystem.
    pub encryption: Option<String>,
    /// Payload bytes of the whole record.
    pub size: u64,
    /// Where this stream's payload starts (non-zero when resuming).
    pub offset: u64,
    /// Whether this is a resuming stream (`zfs send -t`).
    pub resume: bool,
    /// Properties, with `-p`.
    pub props: Option<Vec<(String, String)>>,
    /// `-L`, `-e`, `-c` (remembered in resume tokens).
    pub large_blocks: bool,
    /// `-e`.
    pub embedded: bool,
    /// `-c`.
    pub compressed: bool,
}

/// Percent-encode everything but a conservative set of characters.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"._:/@#-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unesc(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

impl Header {
    /// The header line, with its newline.
    pub fn encode(&self) -> String {
        let from = self
            .fromguid
            .map_or_else(|| "-".to_string(), |g| format!("{g:x}"));
        let enc = self
            .encryption
            .as_deref()
            .map_or_else(|| "-".to_string(), esc);
        let props = match &self.props {
            None => "-".to_string(),
            Some(p) => {
                let items: Vec<String> = p
                    .iter()
                    .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
                    .collect();
                format!("+{}", items.join(","))
            }
        };
        format!(
            "{MAGIC} src={} to={} toguid={:x} creation={} from={from} raw={} enc={enc} size={} offset={} resume={} \
             props={props} flags={}{}{}\n",
            esc(self.src.as_str()),
            esc(&self.to),
            self.toguid,
            self.creation,
            flag(self.raw),
            self.size,
            self.offset,
            flag(self.resume),
            flag(self.large_blocks),
            flag(self.embedded),
            flag(self.compressed),
        )
    }

    /// Parse a header line (without its newline).
    pub fn decode(line: &str) -> Option<Header> {
        let mut words = line.split(' ');
        if words.next()? != MAGIC {
            return None;
        }
        let mut kv = std::collections::HashMap::new();
        for w in words {
            let (k, v) = w.split_once('=')?;
            kv.insert(k, v);
        }
        let get = |k: &str| kv.get(k).copied();
        let hex = |k: &str| u64::from_str_radix(get(k)?, 16).ok();
        let num = |k: &str| get(k)?.parse::<u64>().ok();
        let bool_ = |k: &str| match get(k)? {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        };
        let props = match get("props")? {
            "-" => None,
            p => {
                let p = p.strip_prefix('+')?;
                let mut items = Vec::new();
                for item in p.split(',').filter(|i| !i.is_empty()) {
                    let (k, v) = item.split_once('=')?;
                    items.push((unesc(k)?, unesc(v)?));
                }
                Some(items)
            }
        };
        let flags = get("flags")?.as_bytes();
        if flags.len() != 3 {
            return None;
        }
        Some(Header {
            src: DatasetPath::parse(&unesc(get("src")?)?).ok()?,
            to: unesc(get("to")?)?,
            toguid: hex("toguid")?,
            creation: get("creation")?.parse().ok()?,
            fromguid: match get("from")? {
                "-" => None,
                _ => Some(hex("from")?),
            },
            raw: bool_("raw")?,
            encryption: match get("enc")? {
                "-" => None,
                e => Some(unesc(e)?),
            },
            size: num("size")?,
            offset: num("offset")?,
            resume: bool_("resume")?,
            props,
            large_blocks: flags[0] == b'1',
            embedded: flags[1] == b'1',
            compressed: flags[2] == b'1',
        })
    }

    /// The trailer line of this record, with its newline.
    pub fn trailer(&self) -> String {
        format!("{MAGIC}-END {:x}\n", self.toguid)
    }

    /// The snapshot being sent, as a token names it.
    pub fn toname(&self) -> Option<SnapshotName> {
        SnapshotName::new(&self.src, &self.to).ok()
    }
}

/// SplitMix64, the fake's PRNG and filler hash.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fill `out` with the payload bytes of snapshot `guid` starting at position `pos`.
pub(crate) fn filler(guid: u64, pos: u64, out: &mut [u8]) {
    let word = |p: u64| splitmix64(guid ^ (p / 8).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut w = word(pos);
    for (p, b) in (pos..).zip(out.iter_mut()) {
        if p % 8 == 0 {
            w = word(p);
        }
        *b = (w >> ((p % 8) * 8)) as u8;
    }
}

/// One piece of a send stream.
#[derive(Debug)]
enum Segment {
    Bytes(Vec<u8>, usize),
    Filler { guid: u64, pos: u64, end: u64 },
}

/// How many bytes a send stream produces before it yields to the runtime.
const YIELD_EVERY: u64 = 1 << 20;

/// The fake `zfs send` output.
#[derive(Debug)]
pub(crate) struct FakeSendStream {
    segments: VecDeque<Segment>,
    emitted: u64,
    since_yield: u64,
    fail_at: Option<u64>,
    failed: bool,
    closed: bool,
    what: String,
}

impl FakeSendStream {
    /// A stream of `records`, failing after `fail_at` bytes when set.
    pub fn new(records: &[Header], fail_at: Option<u64>, what: String) -> Self {
        let mut segments = VecDeque::new();
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            let toname = |h: &Header| format!("{}@{}", h.src, h.to);
            let begin = if records.len() == 1 {
                StreamBegin::substream(&toname(first), first.toguid, first.fromguid)
            } else {
                let mut b = StreamBegin::substream(&toname(last), 0, None);
                b.hdrtype = DMU_COMPOUNDSTREAM;
                b
            };
            segments.push_back(Segment::Bytes(begin.encode().to_vec(), 0));
        }
        for h in records {
            segments.push_back(Segment::Bytes(h.encode().into_bytes(), 0));
            segments.push_back(Segment::Filler {
                guid: h.toguid,
                pos: h.offset,
                end: h.size,
            });
            segments.push_back(Segment::Bytes(h.trailer().into_bytes(), 0));
        }
        segments.push_back(Segment::Bytes(format!("{DONE}\n").into_bytes(), 0));
        FakeSendStream {
            segments,
            emitted: 0,
            since_yield: 0,
            fail_at,
            failed: false,
            closed: false,
            what,
        }
    }
}

impl AsyncRead for FakeSendStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(io::Error::other(ZfsError::Closed(this.what.clone()))));
        }
        if let Some(n) = this.fail_at {
            if this.emitted >= n {
                this.failed = true;
            }
        }
        if this.failed {
            let msg = format!(
                "{}: send stream cut after {} bytes",
                this.what, this.emitted
            );
            return Poll::Ready(Err(io::Error::other(ZfsError::Injected(msg))));
        }
        if this.since_yield >= YIELD_EVERY {
            this.since_yield = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut room = buf.remaining() as u64;
        if let Some(n) = this.fail_at {
            room = room.min(n - this.emitted);
        }
        while let Some(seg) = this.segments.front_mut() {
            let done = match seg {
                Segment::Bytes(b, at) => *at >= b.len(),
                Segment::Filler { pos, end, .. } => *pos >= *end,
            };
            if done {
                this.segments.pop_front();
            } else {
                break;
            }
        }
        let Some(seg) = this.segments.front_mut() else {
            return Poll::Ready(Ok(())); // EOF
        };
        let n = match seg {
            Segment::Bytes(b, at) => {
                let n = (b.len() - *at).min(room as usize);
                buf.put_slice(&b[*at..*at + n]);
                *at += n;
                n as u64
            }
            Segment::Filler { guid, pos, end } => {
                let n = (*end - *pos).min(room).min(64 * 1024);
                let mut chunk = vec![0u8; n as usize];
                filler(*guid, *pos, &mut chunk);
                buf.put_slice(&chunk);
                *pos += n;
                n
            }
        };
        this.emitted += n;
        this.since_yield += n;
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl SendStream for FakeSendStream {
    async fn close(&mut self) -> Result<()> {
        self.closed = true;
        self.segments.clear();
        Ok(())
    }
}
