//! Resume tokens (`receive_resume_token`), decoded and encoded in Rust from
//! their binary form. SECURITY SENSITIVE: a token comes from the receiving
//! peer, and `zfs send -t` takes its flags (notably `rawok`) from it.
//!
//! The form, from OpenZFS (`get_receive_resume_token_impl` in dsl_dataset.c,
//! `zfs_send_resume_token_to_nvlist` in libzfs_sendrecv.c):
//! `<version>-<checksum>-<packed length>-<payload>`, `"%u-%llx-%llx-%s"`:
//! version 1; the checksum is word 0 of `fletcher_4_native_varsize` over the
//! compressed bytes (the sum, mod 2^64, of the host-order `u32` words; bytes
//! after the last whole word do not count); the packed length is the size of
//! the packed nvlist; the payload is the lowercase hex of the zlib stream
//! (`zfs_gzip_compress`, level 6) of the nvlist packed `NV_ENCODE_NATIVE`
//! ([`nvlist`]).
//!
//! Invariants:
//! - Never parsed from `zfs send -nvt` text: libnvpair prints string values
//!   verbatim, so a `toname` holding `"\n\trawok = 1"` would read as raw.
//! - [`decode`] is total and bounded: at most [`MAX_TOKEN_LEN`] characters
//!   and [`MAX_PACKED_LEN`] decompressed bytes are looked at; only the
//!   canonical text the kernel prints is accepted (so libzfs reads the same
//!   bytes we read); the checksum, the announced length, the nvlist layout,
//!   the key set ([`KEYS`]) and each key's type are checked; anything else is
//!   refused with an error naming it and showing the token through
//!   [`crate::peer_text`].

pub mod nvlist;

use std::io::Write;

use crate::name::SnapshotName;
use crate::peer_text::peer;
pub use nvlist::{NvList, NvValue};

/// The only token version (`ZFS_SEND_RESUME_TOKEN_VERSION`).
pub const TOKEN_VERSION: u32 = 1;
/// Longest token text accepted. Real tokens are 150-400 characters (an
/// nvlist of ~250 bytes compresses to ~120); redaction arrays add 8 bytes per
/// snapshot. 64 KiB is two orders of magnitude above any real token.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Largest announced (decompressed) nvlist accepted: 64 KiB.
pub const MAX_PACKED_LEN: u64 = 64 * 1024;

/// Every key the kernel (`get_receive_resume_token_impl`) and libzfs
/// (`lzc_flags_from_resume_nvl`, `zfs_send_resume_impl_cb_impl`) put in or
/// read from a token, with its type. Any other key is refused.
pub const KEYS: &[(&str, KeyType)] = &[
    ("fromguid", KeyType::U64),
    ("object", KeyType::U64),
    ("offset", KeyType::U64),
    ("bytes", KeyType::U64),
    ("toguid", KeyType::U64),
    ("toname", KeyType::Str),
    ("largeblockok", KeyType::Flag),
    ("embedok", KeyType::Flag),
    ("compressok", KeyType::Flag),
    ("rawok", KeyType::Flag),
    ("savedok", KeyType::Flag),
    ("redact_snaps", KeyType::U64Array),
    ("book_redact_snaps", KeyType::U64Array),
];

/// The type a key of [`KEYS`] must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `uint64`.
    U64,
    /// `string`.
    Str,
    /// `boolean` (a present/absent flag).
    Flag,
    /// `uint64 array`.
    U64Array,
}

/// The decoded contents of a `receive_resume_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeTokenInfo {
    /// `toname`: the snapshot being sent.
    pub toname: SnapshotName,
    /// `toguid`: the guid of that snapshot.
    pub toguid: u64,
    /// `fromguid`: the incremental source's guid; `None` for a full send.
    pub fromguid: Option<u64>,
    /// `object`: where the stream resumes.
    pub object: u64,
    /// `offset`: where the stream resumes within `object`.
    pub offset: u64,
    /// `bytes`: how much was received.
    pub bytes: u64,
    /// `largeblockok`: the stream was sent with `-L`.
    pub large_block_ok: bool,
    /// `embedok`: the stream was sent with `-e`.
    pub embed_ok: bool,
    /// `compressok`: the stream was sent with `-c`.
    pub compress_ok: bool,
    /// `rawok`: the stream was sent with `-w` (raw, encrypted).
    pub raw_ok: bool,
    /// `savedok`: a saved send (`-S`); the kernel never puts it in a token.
    pub saved_ok: bool,
    /// `redact_snaps`: the receiving dataset is redacted.
    pub redact_snaps: Option<Vec<u64>>,
    /// `book_redact_snaps`: the stream was a redacted send.
    pub book_redact_snaps: Option<Vec<u64>>,
}

impl ResumeTokenInfo {
    /// The nvlist of this token, in the kernel's key order.
    pub fn to_nvlist(&self) -> NvList {
        let mut pairs = Vec::new();
        if let Some(g) = self.fromguid {
            pairs.push(("fromguid".to_string(), NvValue::U64(g)));
        }
        for (k, v) in [
            ("object", self.object),
            ("offset", self.offset),
            ("bytes", self.bytes),
            ("toguid", self.toguid),
        ] {
            pairs.push((k.to_string(), NvValue::U64(v)));
        }
        pairs.push(("toname".into(), NvValue::Str(self.toname.to_string())));
        for (on, k) in [
            (self.large_block_ok, "largeblockok"),
            (self.embed_ok, "embedok"),
            (self.compress_ok, "compressok"),
            (self.raw_ok, "rawok"),
            (self.saved_ok, "savedok"),
        ] {
            if on {
                pairs.push((k.to_string(), NvValue::Boolean));
            }
        }
        for (v, k) in [
            (&self.redact_snaps, "redact_snaps"),
            (&self.book_redact_snaps, "book_redact_snaps"),
        ] {
            if let Some(a) = v {
                pairs.push((k.to_string(), NvValue::U64Array(a.clone())));
            }
        }
        NvList { pairs }
    }

    /// The token text for this content ([`encode`] of [`Self::to_nvlist`]).
    pub fn encode(&self) -> String {
        encode(&self.to_nvlist())
    }
}

/// Why a token's zlib payload does not decompress to exactly the announced size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadFault {
    /// Not zlib at all.
    #[error("the payload is not a zlib stream: {0}")]
    NotZlib(String),
    /// More bytes than announced.
    #[error("the payload decompresses to more than the announced {announced} bytes")]
    TooLong {
        /// The announced size.
        announced: usize,
    },
    /// The stream ends early.
    #[error("the payload's zlib stream is truncated ({out} bytes out, {announced} announced)")]
    Truncated {
        /// Bytes decompressed.
        out: usize,
        /// The announced size.
        announced: usize,
    },
    /// Bytes after the stream's end.
    #[error("{0} bytes after the end of the payload's zlib stream")]
    Trailing(u64),
    /// Fewer bytes than announced.
    #[error("the payload decompresses to {out} bytes, but the token announces {announced}")]
    TooShort {
        /// Bytes decompressed.
        out: usize,
        /// The announced size.
        announced: usize,
    },
}

/// Why a resume token was refused. Each message shows the token escaped and
/// cut ([`peer`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeTokenError {
    /// Not of the form `1-<hex>-<hex>-<hex>` as the kernel prints it.
    #[error("resume token {token} is malformed: {reason}")]
    Format {
        /// The token, shown.
        token: String,
        /// What is wrong.
        reason: String,
    },
    /// The checksum does not match the payload.
    #[error(
        "resume token {token} has checksum {announced:#x}, but its payload sums to {actual:#x}"
    )]
    Checksum {
        /// The token, shown.
        token: String,
        /// The checksum in the token.
        announced: u64,
        /// The checksum of the payload.
        actual: u64,
    },
    /// The payload does not decompress to the announced nvlist size.
    #[error("resume token {token}: {reason}")]
    Payload {
        /// The token, shown.
        token: String,
        /// What is wrong.
        reason: PayloadFault,
    },
    /// The packed nvlist is malformed.
    #[error("resume token {token}: {source}")]
    Nvlist {
        /// The token, shown.
        token: String,
        /// The nvlist error.
        source: nvlist::NvError,
    },
    /// A key is unknown, of the wrong type, missing or has a bad value.
    #[error("resume token {token}: {reason}")]
    Contents {
        /// The token, shown.
        token: String,
        /// What is wrong, naming the key.
        reason: String,
    },
}

/// Word 0 of `fletcher_4_native_varsize`: the sum of the host-order `u32`
/// words of `b`, mod 2^64; trailing bytes (`len % 4`) are not summed.
pub fn fletcher4_word0(b: &[u8]) -> u64 {
    b.chunks_exact(4)
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .fold(0u64, u64::wrapping_add)
}

/// The canonical `%llx` of a number: lowercase hex without leading zeros.
fn parse_llx(s: &str) -> Option<u64> {
    let canonical = !s.is_empty()
        && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (s == "0" || !s.starts_with('0'));
    canonical.then(|| u64::from_str_radix(s, 16).ok()).flatten()
}

/// Decode a token's text to its nvlist. See the module invariants.
///
/// # Errors
/// [`ResumeTokenError`] naming what is wrong.
pub fn decode_nvlist(token: &str) -> Result<NvList, ResumeTokenError> {
    let show = || peer(token);
    let format = |reason: String| ResumeTokenError::Format {
        token: show(),
        reason,
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(format(format!(
            "{} characters, more than the {MAX_TOKEN_LEN} accepted",
            token.len()
        )));
    }
    let parts: Vec<&str> = token.split('-').collect();
    let [version, sum, len, hex] = parts[..] else {
        return Err(format(format!(
            "{} '-'-separated parts, expected 4",
            parts.len()
        )));
    };
    if version != "1" {
        return Err(format(format!(
            "version {}, only {TOKEN_VERSION} is known",
            peer(version)
        )));
    }
    let sum = parse_llx(sum).ok_or_else(|| format("checksum is not lowercase hex".into()))?;
    let len = parse_llx(len).ok_or_else(|| format("packed length is not lowercase hex".into()))?;
    if len > MAX_PACKED_LEN {
        return Err(format(format!(
            "announces a {len}-byte nvlist, more than the {MAX_PACKED_LEN} accepted"
        )));
    }
    if hex.is_empty() || hex.len() % 2 != 0 {
        return Err(format(format!(
            "payload of {} hex digits, expected a non-zero even number",
            hex.len()
        )));
    }
    let compressed = hex
        .as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let d = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            Some(d(p[0])? << 4 | d(p[1])?)
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| format("payload is not lowercase hex".into()))?;
    let actual = fletcher4_word0(&compressed);
    if actual != sum {
        return Err(ResumeTokenError::Checksum {
            token: show(),
            announced: sum,
            actual,
        });
    }
    let packed =
        inflate(&compressed, len as usize).map_err(|reason| ResumeTokenError::Payload {
            token: show(),
            reason,
        })?;
    nvlist::decode(&packed).map_err(|source| ResumeTokenError::Nvlist {
        token: show(),
        source,
    })
}

/// zlib-decompress `input` to exactly `len` bytes, never more.
fn inflate(input: &[u8], len: usize) -> Result<Vec<u8>, PayloadFault> {
    let mut d = flate2::Decompress::new(true);
    // one spare byte tells "longer than announced" from "exactly announced"
    let mut out = Vec::with_capacity(len + 1);
    let status = d
        .decompress_vec(input, &mut out, flate2::FlushDecompress::Finish)
        .map_err(|e| PayloadFault::NotZlib(e.to_string()))?;
    if out.len() > len {
        return Err(PayloadFault::TooLong { announced: len });
    }
    if status != flate2::Status::StreamEnd {
        return Err(PayloadFault::Truncated {
            out: out.len(),
            announced: len,
        });
    }
    if d.total_in() != input.len() as u64 {
        return Err(PayloadFault::Trailing(input.len() as u64 - d.total_in()));
    }
    if out.len() != len {
        return Err(PayloadFault::TooShort {
            out: out.len(),
            announced: len,
        });
    }
    Ok(out)
}

/// Encode `list` as a token, the way the kernel does.
pub fn encode(list: &NvList) -> String {
    let packed = nvlist::encode(list);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(&packed).expect("writing to a Vec");
    let compressed = z.finish().expect("writing to a Vec");
    let hex: String = compressed.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{TOKEN_VERSION}-{:x}-{:x}-{hex}",
        fletcher4_word0(&compressed),
        packed.len()
    )
}

/// Decode a token: [`decode_nvlist`], then the key set and types ([`KEYS`]),
/// the keys libzfs requires (`toname`, `toguid`, `object`, `offset`,
/// `bytes`), a valid snapshot `toname` and a non-zero `fromguid`.
///
/// # Errors
/// [`ResumeTokenError`] naming what is wrong.
pub fn decode(token: &str) -> Result<ResumeTokenInfo, ResumeTokenError> {
    let list = decode_nvlist(token)?;
    let bad = |reason: String| ResumeTokenError::Contents {
        token: peer(token),
        reason,
    };
    for (name, value) in &list.pairs {
        let Some((_, ty)) = KEYS.iter().find(|(k, _)| k == name) else {
            return Err(bad(format!("unknown key {:?}", peer(name))));
        };
        let ok = matches!(
            (ty, value),
            (KeyType::U64, NvValue::U64(_))
                | (KeyType::Str, NvValue::Str(_))
                | (KeyType::Flag, NvValue::Boolean)
                | (KeyType::U64Array, NvValue::U64Array(_))
        );
        if !ok {
            return Err(bad(format!(
                "key {name:?} has type {value:?}, expected {ty:?}"
            )));
        }
    }
    let u64_of = |k: &str| match list.get(k) {
        Some(NvValue::U64(v)) => Some(*v),
        _ => None,
    };
    let required = |k: &str| u64_of(k).ok_or_else(|| bad(format!("required key {k:?} is missing")));
    let array = |k: &str| match list.get(k) {
        Some(NvValue::U64Array(a)) => Some(a.clone()),
        _ => None,
    };
    let Some(NvValue::Str(toname)) = list.get("toname") else {
        return Err(bad("required key \"toname\" is missing".into()));
    };
    let toname = SnapshotName::parse(toname).map_err(|e| {
        bad(format!(
            "toname {} is not a snapshot name: {e}",
            peer(toname)
        ))
    })?;
    let fromguid = u64_of("fromguid");
    if fromguid == Some(0) {
        return Err(bad(
            "fromguid is 0 (the kernel leaves fromguid out of a full stream's token)".into(),
        ));
    }
    Ok(ResumeTokenInfo {
        toname,
        toguid: required("toguid")?,
        fromguid,
        object: required("object")?,
        offset: required("offset")?,
        bytes: required("bytes")?,
        large_block_ok: list.get("largeblockok").is_some(),
        embed_ok: list.get("embedok").is_some(),
        compress_ok: list.get("compressok").is_some(),
        raw_ok: list.get("rawok").is_some(),
        saved_ok: list.get("savedok").is_some(),
        redact_snaps: array("redact_snaps"),
        book_redact_snaps: array("book_redact_snaps"),
    })
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
