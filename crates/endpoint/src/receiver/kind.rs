//! What a stream will receive, read from its first records before `zfs recv`
//! starts: whether it carries properties at all, and whether it is a
//! filesystem or a volume. The receiver needs this for the `-x` arguments of
//! [`super::PROTECTED_PROPERTIES`]: `zfs recv -x mountpoint` of a volume
//! prints "property 'mountpoint' does not apply to datasets of this type"
//! (a warning on OpenZFS 2.3.2; an error in older libzfs
//! `zfs_setup_cmdline_props`), and a stream without properties needs none.
//!
//! Layout (include/sys/zfs_ioctl.h): a stream starts with a 312-byte
//! `DRR_BEGIN` record (`u32 drr_type, u32 drr_payloadlen, u64 drr_magic
//! = 0x2F5bacbac, u64 drr_versioninfo, u64 drr_creation_time, u32 drr_type
//! (objset: 2 filesystem, 3 volume), …`), in the sender's byte order. A
//! substream (`drr_versioninfo & 3 == 1`: `zfs send`, `-i`, `-w`, `-t`)
//! carries no properties. A compound stream (`== 2`: `-p`, `-b`, `-I`)
//! carries them in the payload's nvlist, followed by a `DRR_END` record and
//! the first substream, whose `DRR_BEGIN` names the objset type.
//!
//! Invariants: [`peek`] reads at most [`PEEK_MAX`] bytes and gives every
//! byte back, in order, before the rest of the stream (a read error is
//! returned after them); anything it does not recognise is
//! [`StreamKind::Unknown`], which the receiver treats as a filesystem
//! (protected), and `zfs recv` judges the stream itself.

use tokio::io::AsyncReadExt;
use zrelay_zfs::process::SendStream;
use zrelay_zfs::stream_begin::{self, BEGIN_LEN, DMU_SUBSTREAM};

use super::begin::Prefixed;

/// Size of a `dmu_replay_record_t`.
const RECORD: usize = BEGIN_LEN;
/// The largest compound payload (properties nvlist) read ahead; one
/// filesystem's properties take a few KiB.
const PAYLOAD_MAX: usize = 4 << 20;
/// The most [`peek`] reads.
const PEEK_MAX: usize = 3 * RECORD + PAYLOAD_MAX;

/// What a stream will receive, as far as the `-x` arguments care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A substream: no properties to exclude.
    NoProperties,
    /// A compound stream of a filesystem: properties to exclude.
    Filesystem,
    /// A compound stream of a volume: the protected properties do not apply.
    Volume,
    /// Not recognised (or cut short): treated as [`StreamKind::Filesystem`].
    Unknown,
}

impl StreamKind {
    /// Whether the receive gets `-x` for the protected properties.
    pub fn protect(self) -> bool {
        matches!(self, StreamKind::Filesystem | StreamKind::Unknown)
    }
}

/// Classify the bytes read so far; `Err(n)`: `n` bytes are needed in total.
fn classify(head: &[u8]) -> Result<StreamKind, usize> {
    if head.len() < RECORD {
        return Err(RECORD);
    }
    let Ok(first) = stream_begin::parse(head) else {
        return Ok(StreamKind::Unknown);
    };
    if first.hdrtype == DMU_SUBSTREAM {
        return Ok(StreamKind::NoProperties);
    }
    let payload = first.payload_len as usize;
    if payload > PAYLOAD_MAX {
        return Ok(StreamKind::Unknown);
    }
    // BEGIN, payload, END, then the first substream's BEGIN.
    let sub = RECORD + payload + RECORD;
    if head.len() < sub + RECORD {
        return Err(sub + RECORD);
    }
    match stream_begin::parse(&head[sub..]).map(|b| b.objset_type) {
        Ok(2) => Ok(StreamKind::Filesystem),
        Ok(3) => Ok(StreamKind::Volume),
        _ => Ok(StreamKind::Unknown),
    }
}

/// Read as much of `stream` as [`classify`] needs; the kind and the whole
/// stream, unchanged.
pub(super) async fn peek(mut stream: Box<dyn SendStream>) -> (StreamKind, Prefixed) {
    let mut head = Vec::new();
    let mut failed = None;
    let kind = loop {
        let need = match classify(&head) {
            Ok(kind) => break kind,
            Err(need) => need,
        };
        let want = (need - head.len()) as u64;
        match (&mut stream).take(want).read_to_end(&mut head).await {
            Ok(0) => break StreamKind::Unknown,
            Ok(_) => {}
            Err(e) => {
                failed = Some(e);
                break StreamKind::Unknown;
            }
        }
    };
    debug_assert!(head.len() <= PEEK_MAX);
    (kind, Prefixed::new(head, failed, stream))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use async_trait::async_trait;
    use tokio::io::{AsyncRead, ReadBuf};
    use zrelay_zfs::stream_begin::DMU_BACKUP_MAGIC as MAGIC;

    use super::*;

    /// A BEGIN record: `hdrtype` 1 or 2, objset `ost`, `payload` bytes after it.
    fn record(hdrtype: u64, ost: u32, payload: u32, swap: bool) -> Vec<u8> {
        let mut r = vec![0u8; RECORD];
        let w4 = |v: u32| {
            if swap {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w8 = |v: u64| {
            if swap {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        r[4..8].copy_from_slice(&w4(payload));
        r[8..16].copy_from_slice(&w8(MAGIC));
        r[16..24].copy_from_slice(&w8(hdrtype | (0x4 << 2)));
        r[32..36].copy_from_slice(&w4(ost));
        r
    }

    fn compound(ost: u32, payload: usize, swap: bool) -> Vec<u8> {
        let mut s = record(2, 0, payload as u32, swap);
        s.extend(vec![7u8; payload]);
        let mut end = vec![0u8; RECORD];
        end[if swap { 3 } else { 0 }] = 5; // DRR_END
        s.extend(end);
        s.extend(record(1, ost, 0, swap));
        s.extend(b"data after the headers");
        s
    }

    struct Bytes(std::io::Cursor<Vec<u8>>);

    impl AsyncRead for Bytes {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    #[async_trait]
    impl SendStream for Bytes {
        async fn close(&mut self) -> zrelay_zfs::Result<()> {
            Ok(())
        }
    }

    async fn kind_of(bytes: Vec<u8>) -> StreamKind {
        let (kind, mut s) = peek(Box::new(Bytes(std::io::Cursor::new(bytes.clone())))).await;
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, bytes, "the stream is given back unchanged");
        kind
    }

    #[tokio::test]
    async fn substreams_carry_no_properties() {
        let mut s = record(1, 2, 0, false);
        s.extend(b"records");
        assert_eq!(kind_of(s).await, StreamKind::NoProperties);
        assert!(!StreamKind::NoProperties.protect());
    }

    #[tokio::test]
    async fn compound_streams_name_filesystem_or_volume_in_either_byte_order() {
        for swap in [false, true] {
            assert_eq!(
                kind_of(compound(2, 1000, swap)).await,
                StreamKind::Filesystem
            );
            assert_eq!(kind_of(compound(3, 8, swap)).await, StreamKind::Volume);
            assert_eq!(kind_of(compound(9, 0, swap)).await, StreamKind::Unknown);
        }
        assert!(StreamKind::Filesystem.protect());
        assert!(!StreamKind::Volume.protect());
    }

    #[tokio::test]
    async fn anything_else_is_unknown_and_protected() {
        assert_eq!(kind_of(Vec::new()).await, StreamKind::Unknown);
        assert_eq!(kind_of(vec![1u8; 100]).await, StreamKind::Unknown);
        assert_eq!(kind_of(vec![0u8; 5000]).await, StreamKind::Unknown);
        // Cut inside the compound headers.
        let mut s = compound(3, 100, false);
        s.truncate(RECORD + 50);
        assert_eq!(kind_of(s).await, StreamKind::Unknown);
        // A payload over the bound is not read ahead.
        let s = record(2, 0, (PAYLOAD_MAX + 1) as u32, false);
        assert_eq!(kind_of(s).await, StreamKind::Unknown);
        assert!(StreamKind::Unknown.protect());
    }
}
