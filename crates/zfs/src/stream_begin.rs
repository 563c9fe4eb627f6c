//! The first record of a `zfs send` stream, `DRR_BEGIN`, parsed before any
//! byte reaches `zfs recv`. SECURITY SENSITIVE: the stream comes from a peer.
//!
//! Layout (`dmu_replay_record_t`, include/sys/zfs_ioctl.h), [`BEGIN_LEN`] =
//! 312 bytes in the sender's byte order: `u32 drr_type` (0 = `DRR_BEGIN`),
//! `u32 drr_payloadlen`, then `struct drr_begin { u64 drr_magic
//! (0x2F5bacbac), u64 drr_versioninfo, u64 drr_creation_time, u32 drr_type,
//! u32 drr_flags, u64 drr_toguid, u64 drr_fromguid, char drr_toname[256] }`,
//! zero-padded to the union's size. A stream from a host of the other byte
//! order has a byte-swapped magic, and every field is read swapped.
//!
//! What OpenZFS puts there (dmu_send.c, libzfs_sendrecv.c), for `zfs send`,
//! `-i`, `-w` and `-t`: a substream header (`drr_versioninfo & 3` = 1) with
//! the snapshot's guid, the incremental source's guid (0 for a full stream)
//! and the snapshot's full name `fs@snap` in the sender's namespace. With
//! `-I`, `-p`, `-b`, `-R` or holds libzfs first writes a compound header
//! (`& 3` = 2) whose guids are 0 and whose toname is `fs@tosnap`: only the
//! name can be checked there (the payload after it is a variable XDR nvlist,
//! then each snapshot's substream, which `zfs recv` itself checks).
//!
//! Invariants: [`parse`] is total (never panics); [`StreamBegin::check`]
//! names the first field that differs, with both values, escaped.

use crate::peer_text::peer;

/// Size of a `dmu_replay_record_t`.
pub const BEGIN_LEN: usize = 312;
/// `DMU_BACKUP_MAGIC`.
pub const DMU_BACKUP_MAGIC: u64 = 0x2_F5BA_CBAC;
/// `DMU_SUBSTREAM`.
pub const DMU_SUBSTREAM: u64 = 1;
/// `DMU_COMPOUNDSTREAM`.
pub const DMU_COMPOUNDSTREAM: u64 = 2;
/// `MAXNAMELEN`: size of `drr_toname`.
const TONAME_LEN: usize = 256;

/// A parsed `DRR_BEGIN` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBegin {
    /// The record came from a host of the other byte order.
    pub byteswapped: bool,
    /// `drr_payloadlen`: bytes of payload following the record.
    pub payload_len: u32,
    /// `DMU_GET_STREAM_HDRTYPE(drr_versioninfo)`: substream or compound.
    pub hdrtype: u64,
    /// `DMU_GET_FEATUREFLAGS(drr_versioninfo)`.
    pub features: u64,
    /// `drr_creation_time`.
    pub creation_time: u64,
    /// `drr_type` of the objset (2 = ZFS filesystem, 3 = zvol).
    pub objset_type: u32,
    /// `drr_flags`.
    pub flags: u32,
    /// `drr_toguid`.
    pub toguid: u64,
    /// `drr_fromguid`: 0 for a full stream.
    pub fromguid: u64,
    /// `drr_toname`: `fs@snap` in the sender's namespace.
    pub toname: String,
}

/// Why the first bytes of a stream are not a `DRR_BEGIN` record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BeginError {
    /// Fewer than [`BEGIN_LEN`] bytes.
    #[error("the stream ended after {0} bytes, before its {BEGIN_LEN}-byte BEGIN record")]
    Short(usize),
    /// Not a `zfs send` stream.
    #[error("not a zfs send stream: {0}")]
    Invalid(String),
}

/// The expected header of a step's stream.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `fs@snap` in the sender's namespace.
    pub toname: &'a str,
    /// The snapshot's guid.
    pub toguid: u64,
    /// The incremental source's guid; `None` for a full stream.
    pub fromguid: Option<u64>,
}

/// A field of the BEGIN record that differs from the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stream's BEGIN record has {field} {got}, but the step announced {expected}")]
pub struct BeginMismatch {
    /// `toname`, `toguid` or `fromguid`.
    pub field: &'static str,
    /// The announced value (shown).
    pub expected: String,
    /// The stream's value (shown).
    pub got: String,
}

fn word<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// Parse the first [`BEGIN_LEN`] bytes of a stream.
///
/// # Errors
/// [`BeginError`] saying what is wrong.
pub fn parse(b: &[u8]) -> Result<StreamBegin, BeginError> {
    if b.len() < BEGIN_LEN {
        return Err(BeginError::Short(b.len()));
    }
    let b = &b[..BEGIN_LEN];
    let le = u64::from_le_bytes(word(b, 8));
    let swapped = if le == DMU_BACKUP_MAGIC {
        false
    } else if le == DMU_BACKUP_MAGIC.swap_bytes() {
        true
    } else {
        return Err(BeginError::Invalid(format!(
            "magic {le:#x} at byte 8, expected {DMU_BACKUP_MAGIC:#x} in either byte order"
        )));
    };
    let u32_at = |at| {
        let v = u32::from_le_bytes(word(b, at));
        if swapped {
            v.swap_bytes()
        } else {
            v
        }
    };
    let u64_at = |at| {
        let v = u64::from_le_bytes(word(b, at));
        if swapped {
            v.swap_bytes()
        } else {
            v
        }
    };
    let drr_type = u32_at(0);
    if drr_type != 0 {
        return Err(BeginError::Invalid(format!(
            "first record has type {drr_type}, expected 0 (DRR_BEGIN)"
        )));
    }
    let versioninfo = u64_at(16);
    let hdrtype = versioninfo & 3;
    if hdrtype != DMU_SUBSTREAM && hdrtype != DMU_COMPOUNDSTREAM {
        return Err(BeginError::Invalid(format!(
            "unknown stream header type {hdrtype}"
        )));
    }
    let name = &b[56..56 + TONAME_LEN];
    let Some(end) = name.iter().position(|&c| c == 0) else {
        return Err(BeginError::Invalid("toname is not NUL-terminated".into()));
    };
    let toname = String::from_utf8(name[..end].to_vec())
        .map_err(|_| BeginError::Invalid("toname is not UTF-8".into()))?;
    Ok(StreamBegin {
        byteswapped: swapped,
        payload_len: u32_at(4),
        hdrtype,
        features: (versioninfo >> 2) & 0x3fff_ffff,
        creation_time: u64_at(24),
        objset_type: u32_at(32),
        flags: u32_at(36),
        toguid: u64_at(40),
        fromguid: u64_at(48),
        toname,
    })
}

impl StreamBegin {
    /// A substream header for `toname`, as `zfs send` writes it.
    pub fn substream(toname: &str, toguid: u64, fromguid: Option<u64>) -> Self {
        StreamBegin {
            byteswapped: false,
            payload_len: 0,
            hdrtype: DMU_SUBSTREAM,
            features: 0,
            creation_time: 0,
            objset_type: 2,
            flags: 0,
            toguid,
            fromguid: fromguid.unwrap_or(0),
            toname: toname.to_string(),
        }
    }

    /// The record's bytes (little-endian, or big-endian when `byteswapped`);
    /// a toname longer than 255 bytes is cut.
    pub fn encode(&self) -> [u8; BEGIN_LEN] {
        let mut b = [0u8; BEGIN_LEN];
        let sw = self.byteswapped;
        let p32 = |b: &mut [u8; BEGIN_LEN], at: usize, v: u32| {
            let v = if sw { v.to_be_bytes() } else { v.to_le_bytes() };
            b[at..at + 4].copy_from_slice(&v);
        };
        let p64 = |b: &mut [u8; BEGIN_LEN], at: usize, v: u64| {
            let v = if sw { v.to_be_bytes() } else { v.to_le_bytes() };
            b[at..at + 8].copy_from_slice(&v);
        };
        p32(&mut b, 0, 0);
        p32(&mut b, 4, self.payload_len);
        p64(&mut b, 8, DMU_BACKUP_MAGIC);
        p64(
            &mut b,
            16,
            (self.features & 0x3fff_ffff) << 2 | (self.hdrtype & 3),
        );
        p64(&mut b, 24, self.creation_time);
        p32(&mut b, 32, self.objset_type);
        p32(&mut b, 36, self.flags);
        p64(&mut b, 40, self.toguid);
        p64(&mut b, 48, self.fromguid);
        let n = self.toname.len().min(TONAME_LEN - 1);
        b[56..56 + n].copy_from_slice(&self.toname.as_bytes()[..n]);
        b
    }

    /// Compare with what the step announced: toname always; toguid and
    /// fromguid for a substream (a compound header carries zeros there).
    ///
    /// # Errors
    /// The first field that differs.
    pub fn check(&self, want: &Expected<'_>) -> Result<(), BeginMismatch> {
        if self.toname != want.toname {
            return Err(BeginMismatch {
                field: "toname",
                expected: format!("\"{}\"", peer(want.toname)),
                got: format!("\"{}\"", peer(&self.toname)),
            });
        }
        if self.hdrtype == DMU_COMPOUNDSTREAM {
            return Ok(());
        }
        if self.toguid != want.toguid {
            return Err(BeginMismatch {
                field: "toguid",
                expected: format!("{:#x}", want.toguid),
                got: format!("{:#x}", self.toguid),
            });
        }
        let from = want.fromguid.unwrap_or(0);
        if self.fromguid != from {
            let show = |g: u64| {
                if g == 0 {
                    "0 (a full stream)".to_string()
                } else {
                    format!("{g:#x}")
                }
            };
            return Err(BeginMismatch {
                field: "fromguid",
                expected: show(from),
                got: show(self.fromguid),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_both_byte_orders() {
        let mut h = StreamBegin::substream("p/a@s", 0x1234, Some(0x99));
        h.features = 1 << 20 | 1 << 24;
        h.payload_len = 40;
        h.creation_time = 1_700_000_000;
        let b = h.encode();
        assert_eq!(&b[8..16], &DMU_BACKUP_MAGIC.to_le_bytes());
        assert_eq!(parse(&b).unwrap(), h);
        h.byteswapped = true;
        let b = h.encode();
        assert_eq!(&b[8..16], &DMU_BACKUP_MAGIC.to_be_bytes());
        assert_eq!(parse(&b).unwrap(), h);
    }

    /// Real: the first 64 bytes (the rest is zero) of `zfs send -i @s1
    /// tv/a@s2` and `zfs send -I @s1 tv/a@s2` on OpenZFS 2.3.2, x86_64.
    #[test]
    fn real_openzfs_records() {
        let mut b = [0u8; BEGIN_LEN];
        b[8..64].copy_from_slice(&[
            0xac, 0xcb, 0xba, 0xf5, 0x02, 0, 0, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0xe1, 0xee, 0x14,
            0x6b, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x0c, 0, 0, 0, 0x0d, 0x81, 0x0e, 0x37, 0x75, 0x7c,
            0xc2, 0x9e, 0xda, 0x3b, 0x3f, 0xef, 0xdb, 0xa4, 0x40, 0x13, b't', b'v', b'/', b'a',
            b'@', b's', b'2', 0,
        ]);
        let h = parse(&b).unwrap();
        assert_eq!(
            (
                h.hdrtype,
                h.toguid,
                h.fromguid,
                h.toname.as_str(),
                h.byteswapped
            ),
            (
                DMU_SUBSTREAM,
                0x9ec27c75370e810d,
                0x1340a4dbef3f3bda,
                "tv/a@s2",
                false
            )
        );
        assert_eq!((h.objset_type, h.flags, h.features), (2, 0xc, 4));
        assert_eq!(h.encode(), b);
        // -I: a compound header, zero guids, the last snapshot's name
        let mut c = [0u8; BEGIN_LEN];
        c[8..13].copy_from_slice(&[0xac, 0xcb, 0xba, 0xf5, 0x02]);
        c[16] = 2;
        c[56..63].copy_from_slice(b"tv/a@s2");
        let h = parse(&c).unwrap();
        assert_eq!(
            (h.hdrtype, h.toguid, h.fromguid),
            (DMU_COMPOUNDSTREAM, 0, 0)
        );
        assert_eq!(h.toname, "tv/a@s2");
    }

    #[test]
    fn refuses_what_is_not_a_begin_record() {
        assert_eq!(parse(&[0; 100]), Err(BeginError::Short(100)));
        let e = parse(&[b'x'; BEGIN_LEN]).unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        let mut b = StreamBegin::substream("p/a@s", 1, None).encode();
        b[0] = 5;
        assert!(parse(&b).unwrap_err().to_string().contains("type 5"));
        let mut b = StreamBegin::substream("p/a@s", 1, None).encode();
        b[56..312].fill(b'a');
        assert!(parse(&b).unwrap_err().to_string().contains("NUL"));
        let mut b = StreamBegin::substream("p/a@s", 1, None).encode();
        b[16] = 3;
        assert!(parse(&b).unwrap_err().to_string().contains("header type 3"));
    }

    #[test]
    fn check_names_the_field() {
        let h = StreamBegin::substream("p/a@s", 7, Some(5));
        let want = Expected {
            toname: "p/a@s",
            toguid: 7,
            fromguid: Some(5),
        };
        assert_eq!(h.check(&want), Ok(()));
        let e = h.check(&Expected { toguid: 8, ..want }).unwrap_err();
        assert_eq!(
            (e.field, e.expected.as_str(), e.got.as_str()),
            ("toguid", "0x8", "0x7")
        );
        let e = h
            .check(&Expected {
                fromguid: None,
                ..want
            })
            .unwrap_err();
        assert_eq!(e.field, "fromguid");
        assert!(e.to_string().contains("0 (a full stream)"), "{e}");
        let e = h
            .check(&Expected {
                toname: "p/a@t\n",
                ..want
            })
            .unwrap_err();
        assert_eq!(e.field, "toname");
        assert!(e.to_string().contains("p/a@t\\n"), "{e}");
        // a compound header has zero guids; only the name is checked
        let mut c = StreamBegin::substream("p/a@s", 0, None);
        c.hdrtype = DMU_COMPOUNDSTREAM;
        assert_eq!(c.check(&want), Ok(()));
        assert!(c
            .check(&Expected {
                toname: "p/b@s",
                ..want
            })
            .is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&b);
        }

        #[test]
        fn headers_round_trip(name in "[a-z/@]{0,255}", to in any::<u64>(), from in any::<u64>(), sw in any::<bool>()) {
            let mut h = StreamBegin::substream(&name, to, Some(from));
            h.byteswapped = sw;
            prop_assert_eq!(parse(&h.encode()).unwrap(), h);
        }
    }
}
