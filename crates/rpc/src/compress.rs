//! zstd compression of data streams on the wire (a zrelay extension,
//! negotiated per stream).
//!
//! Negotiation: the client's `sender.send` or `receiver.receive` request
//! carries `compress` when its job asks for compression; a server that
//! agrees says so in the reply that starts the stream (`{"compression":
//! "zstd"}` instead of `null`). A server that does not know the field (an
//! older zrelay) ignores it and replies `null`, and the stream goes out
//! uncompressed. Only a stream whose reply said `zstd` may carry
//! [`DATA_ZSTD`](crate::frame_kind::DATA_ZSTD) frames; anywhere else such a
//! frame is a protocol violation.
//!
//! Invariants:
//! - Every compressed frame is one complete zstd frame holding one chunk; it
//!   decompresses on its own (no state across frames), to at most the
//!   consumer's chunk limit ([`RpcConfig::max_data_chunk`](crate::RpcConfig)).
//!   A frame that would decompress to more, or does not decompress at all,
//!   fails the stream with an error naming the peer; the consumer never
//!   allocates more than two chunk limits for it.
//! - The producer sends a chunk compressed only when that saves at least an
//!   eighth of it; otherwise the raw chunk goes out as a plain data frame.
//!   After a chunk that did not compress, the next [`SKIP_AFTER_MISS`] chunks
//!   go out raw without trying, so incompressible data (a raw encrypted
//!   send, a `send -c` of compressed blocks) costs one compression attempt in
//!   `SKIP_AFTER_MISS + 1` chunks.
//! - The level a peer asks for is clamped to [`MAX_LEVEL`]: a client cannot
//!   make a server burn its CPU on high levels.

use std::io;

use serde::{Deserialize, Serialize};

use crate::FRAME_HEADER_LEN as HDR;

/// Highest zstd level a producer uses, whatever is asked.
pub const MAX_LEVEL: i32 = 9;

/// Chunks sent raw without trying after one that did not compress.
pub const SKIP_AFTER_MISS: u32 = 15;

/// What a job asks for its data streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Raw data frames.
    #[default]
    Off,
    /// zstd at this level (1 to [`MAX_LEVEL`]).
    Zstd {
        /// The zstd level.
        level: i32,
    },
}

/// The codec named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Codec {
    /// zstd frames.
    #[serde(rename = "zstd")]
    Zstd,
}

/// The `compress` field of a stream request: what the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompressReq {
    pub(crate) codec: Codec,
    /// The producer's level (clamped to 1..=[`MAX_LEVEL`] by whoever
    /// produces).
    pub(crate) level: i32,
}

impl CompressReq {
    /// The request for a job's setting.
    pub(crate) fn from_config(c: Compression) -> Option<CompressReq> {
        match c {
            Compression::Off => None,
            Compression::Zstd { level } => Some(CompressReq {
                codec: Codec::Zstd,
                level,
            }),
        }
    }
}

/// The reply that starts a stream, when the client asked for compression
/// (`null` otherwise, and from servers that do not know the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamStart {
    /// The codec the stream's compressed frames use; `None`: none.
    pub(crate) compression: Option<Codec>,
}

impl StreamStart {
    /// The reply agreeing to zstd.
    pub(crate) const ZSTD: StreamStart = StreamStart {
        compression: Some(Codec::Zstd),
    };

    /// The reply of a producer that compresses with `z` (or could not start
    /// a compressor).
    pub(crate) fn of(z: Option<&ZstdOut>) -> StreamStart {
        StreamStart {
            compression: z.map(|_| Codec::Zstd),
        }
    }

    /// Whether a reply (`null` or a [`StreamStart`]) agreed to zstd.
    pub(crate) fn zstd(reply: Option<StreamStart>) -> bool {
        matches!(
            reply,
            Some(StreamStart {
                compression: Some(Codec::Zstd)
            })
        )
    }
}

/// The producing side: compresses chunks that are worth it.
pub(crate) struct ZstdOut {
    cctx: zstd::bulk::Compressor<'static>,
    /// Header room, then the compressed chunk.
    out: Vec<u8>,
    skip: u32,
    /// Raw bytes in, bytes on the wire out (payloads only).
    pub(crate) raw: u64,
    pub(crate) wire: u64,
}

impl ZstdOut {
    /// A compressor at `level` (clamped) for chunks of up to `chunk` bytes.
    pub(crate) fn new(level: i32, chunk: usize) -> io::Result<ZstdOut> {
        Ok(ZstdOut {
            cctx: zstd::bulk::Compressor::new(level.clamp(1, MAX_LEVEL))?,
            out: vec![0u8; HDR + chunk],
            skip: 0,
            raw: 0,
            wire: 0,
        })
    }

    /// The producer's compressor for a stream that `compress` asks for
    /// (the request, or on the client the request the server agreed to);
    /// `None` when it does not, or when no compressor could be started
    /// (logged: the stream then goes out raw, which a negotiated stream
    /// allows; a server's reply then says so).
    pub(crate) fn agreed(
        compress: Option<CompressReq>,
        chunk: usize,
        peer: &str,
    ) -> Option<ZstdOut> {
        let c = compress?;
        ZstdOut::new(c.level, chunk)
            .map_err(|e| {
                tracing::warn!(peer, error = %e, "cannot start a zstd compressor; the stream goes out uncompressed");
            })
            .ok()
    }

    /// Compress `data`; `Some(buffer, n)`: `buffer[HDR..HDR + n]` is the
    /// compressed frame (header room in front). `None`: send `data` raw.
    pub(crate) fn compress(&mut self, data: &[u8]) -> Option<(&mut [u8], usize)> {
        self.raw += data.len() as u64;
        if self.skip > 0 {
            self.skip -= 1;
            self.wire += data.len() as u64;
            return None;
        }
        // Worth it only when it saves an eighth: a smaller room makes zstd
        // give up ("destination too small") instead of finishing a frame we
        // would not send.
        let room = data.len() - data.len() / 8;
        if self.out.len() < HDR + room {
            self.out.resize(HDR + room, 0);
        }
        match self
            .cctx
            .compress_to_buffer(data, &mut self.out[HDR..HDR + room])
        {
            Ok(n) if n > 0 => {
                self.wire += n as u64;
                Some((&mut self.out[..], n))
            }
            _ => {
                self.skip = SKIP_AFTER_MISS;
                self.wire += data.len() as u64;
                None
            }
        }
    }
}

/// The consuming side: one compressed frame at a time.
pub(crate) struct ZstdIn {
    dctx: zstd::bulk::Decompressor<'static>,
    /// The compressed payload being read: `comp[..filled]` arrived. It grows
    /// as bytes arrive (from [`FIRST_CHUNK`](crate::frame::FIRST_CHUNK),
    /// doubling), never to the announced length up front.
    pub(crate) comp: Vec<u8>,
    pub(crate) filled: usize,
    /// The current compressed frame's length.
    pub(crate) want: usize,
    /// Decompressed bytes, `plain[pos..]` not yet handed out.
    pub(crate) plain: Vec<u8>,
    pub(crate) pos: usize,
    limit: usize,
}

impl ZstdIn {
    /// A decoder whose frames decompress to at most `limit` bytes each.
    pub(crate) fn new(limit: usize) -> io::Result<ZstdIn> {
        Ok(ZstdIn {
            dctx: zstd::bulk::Decompressor::new()?,
            comp: Vec::new(),
            filled: 0,
            want: 0,
            plain: Vec::new(),
            pos: 0,
            limit,
        })
    }

    /// Start reading a compressed frame of `len` bytes.
    pub(crate) fn start(&mut self, len: usize) {
        self.filled = 0;
        self.want = len;
    }

    /// Whether a compressed frame is still arriving.
    pub(crate) fn reading(&self) -> bool {
        self.filled < self.want
    }

    /// Where the next bytes of the compressed frame go (non-empty while
    /// [`ZstdIn::reading`]).
    pub(crate) fn room(&mut self) -> &mut [u8] {
        if self.filled == self.comp.len() {
            let next = (self.comp.len() * 2)
                .max(crate::frame::FIRST_CHUNK)
                .min(self.want);
            self.comp.resize(next, 0);
        }
        let end = self.want.min(self.comp.len());
        &mut self.comp[self.filled..end]
    }

    /// Bytes not yet handed out.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.plain[self.pos..]
    }

    /// The whole compressed frame has arrived: decompress it into `plain`.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        self.plain.clear();
        self.pos = 0;
        if self.plain.capacity() < self.limit {
            self.plain.reserve_exact(self.limit);
        }
        // Into the spare capacity: no zeroing per chunk. The capacity may
        // exceed the limit, so the limit is checked again.
        let r = self
            .dctx
            .decompress_to_buffer(&self.comp[..self.filled], &mut self.plain);
        match r {
            Ok(n) if n <= self.limit => Ok(()),
            r => {
                let e = match r {
                    Err(e) => e.to_string(),
                    Ok(n) => format!("it gave {n}"),
                };
                self.plain.clear();
                Err(format!(
                    "a compressed data chunk of {} bytes does not decompress to at most {} bytes: {e}",
                    self.filled,
                    self.limit
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        let words = ["zfs ", "send ", "snapshot ", "pool/", "data ", "42\n"];
        let mut x = 7u64;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.extend_from_slice(words[(x >> 33) as usize % words.len()].as_bytes());
        }
        v.truncate(n);
        v
    }

    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn feed(inp: &mut ZstdIn, frame: &[u8]) {
        inp.start(frame.len());
        let mut at = 0;
        while inp.reading() {
            let room = inp.room();
            let k = room.len().min(frame.len() - at).min(1000);
            room[..k].copy_from_slice(&frame[at..at + k]);
            inp.filled += k;
            at += k;
        }
        assert_eq!(at, frame.len());
    }

    #[test]
    fn compressible_chunks_round_trip_smaller() {
        let mut out = ZstdOut::new(1, 64 << 10).unwrap();
        let mut inp = ZstdIn::new(64 << 10).unwrap();
        let data = text(64 << 10);
        let (buf, n) = out.compress(&data).expect("text compresses");
        assert!(n < data.len() / 3, "{n} bytes for {}", data.len());
        feed(&mut inp, &buf[HDR..HDR + n]);
        inp.finish().unwrap();
        assert_eq!(inp.pending(), &data[..]);
    }

    #[test]
    fn incompressible_chunks_go_raw_and_later_ones_are_not_tried() {
        let mut out = ZstdOut::new(3, 64 << 10).unwrap();
        assert!(out.compress(&noise(64 << 10)).is_none());
        // Within the skip window even text goes raw, untried.
        for _ in 0..SKIP_AFTER_MISS {
            assert!(out.compress(&text(64 << 10)).is_none());
        }
        assert!(out.compress(&text(64 << 10)).is_some());
        assert_eq!(out.raw, (SKIP_AFTER_MISS as u64 + 2) * (64 << 10));
        assert!(out.wire < out.raw);
    }

    #[test]
    fn a_frame_that_decompresses_past_the_limit_is_refused() {
        let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 1).unwrap();
        assert!(bomb.len() < 1 << 10);
        let mut inp = ZstdIn::new(64 << 10).unwrap();
        feed(&mut inp, &bomb);
        let e = inp.finish().unwrap_err();
        assert!(
            e.contains("does not decompress to at most 65536 bytes"),
            "{e}"
        );
        assert!(inp.pending().is_empty());
        feed(&mut inp, b"hello");
        assert!(inp.finish().is_err());
    }

    #[test]
    fn the_level_is_clamped() {
        // Level 22 would need far more memory and time; clamped, it works
        // like MAX_LEVEL.
        let mut out = ZstdOut::new(22, 1 << 10).unwrap();
        assert!(out.compress(&text(1 << 10)).is_some());
        assert!(ZstdOut::new(-5, 1 << 10).is_ok());
    }
}
