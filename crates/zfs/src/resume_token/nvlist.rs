//! The packed nvlist of a resume token: libnvpair's `NV_ENCODE_NATIVE`
//! encoding (module/nvpair/nvpair.c, `nvs_native_*`), restricted to the data
//! types a resume token uses.
//!
//! Layout, all integers in the packing host's byte order:
//! - `nvs_header_t`: `u8 encoding` (0 = native), `u8 endian` (1 = little),
//!   two reserved zero bytes;
//! - the nvlist: `i32 nvl_version` (0), `u32 nvl_nvflag` (1 = NV_UNIQUE_NAME,
//!   what `fnvlist_alloc` sets) — only these 8 bytes, not the whole `nvlist_t`;
//! - each pair: `nvpair_t {i32 nvp_size, i16 nvp_name_sz, i16 nvp_reserve,
//!   i32 nvp_value_elem, i32 nvp_type}`, the NUL-terminated name, zero padding
//!   to 8, the value, zero padding to 8; `nvp_size` covers all of it;
//! - four zero bytes end the list.
//!
//! Invariants of [`decode`]: it is total (never panics, whatever the input)
//! and accepts exactly the byte strings [`encode`] produces — canonical sizes,
//! zero padding and reserved fields, no duplicate names, only the types of
//! [`NvValue`], nothing after the end mark. So a value it returns is the only
//! reading of the bytes, the one libnvpair's `nvlist_unpack` makes too.
//! Big-endian packings are refused on little-endian hosts and vice versa, as
//! `nvlist_common` does (`ENOTSUP`).

use std::fmt;

/// `NV_ENCODE_NATIVE`.
const NV_ENCODE_NATIVE: u8 = 0;
/// `NV_ENCODE_XDR` (refused with its own message).
const NV_ENCODE_XDR: u8 = 1;
/// `NV_VERSION`.
const NV_VERSION: i32 = 0;
/// `NV_UNIQUE_NAME`.
const NV_UNIQUE_NAME: u32 = 1;
/// The host's `nvh_endian` (1 little, 0 big).
const HOST_ENDIAN: u8 = if cfg!(target_endian = "little") { 1 } else { 0 };
/// `sizeof (nvpair_t)`.
const NVP_HEADER: usize = 16;

const DATA_TYPE_BOOLEAN: i32 = 1;
const DATA_TYPE_UINT64: i32 = 8;
const DATA_TYPE_STRING: i32 = 9;
const DATA_TYPE_UINT64_ARRAY: i32 = 16;

/// A value of a pair: the data types resume tokens use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NvValue {
    /// `DATA_TYPE_BOOLEAN`: a flag, present or absent, with no value.
    Boolean,
    /// `DATA_TYPE_UINT64`.
    U64(u64),
    /// `DATA_TYPE_STRING` (UTF-8, no NUL).
    Str(String),
    /// `DATA_TYPE_UINT64_ARRAY`.
    U64Array(Vec<u64>),
}

/// An nvlist: its pairs in packed order, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvList {
    /// The pairs.
    pub pairs: Vec<(String, NvValue)>,
}

impl NvList {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&NvValue> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// What is wrong with a packed nvlist; `at` is the byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvError {
    /// Byte offset in the packed nvlist.
    pub at: usize,
    /// What is wrong there.
    pub what: String,
}

impl fmt::Display for NvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "packed nvlist at byte {}: {}", self.at, self.what)
    }
}

impl std::error::Error for NvError {}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

fn err<T>(at: usize, what: impl Into<String>) -> Result<T, NvError> {
    Err(NvError {
        at,
        what: what.into(),
    })
}

/// Reads fixed-size host-order integers out of `b`, bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
}

impl Cursor<'_> {
    fn bytes(&self, at: usize, n: usize) -> Result<&[u8], NvError> {
        match at.checked_add(n) {
            Some(end) if end <= self.b.len() => Ok(&self.b[at..end]),
            _ => err(
                at,
                format!(
                    "needs {n} bytes, only {} left",
                    self.b.len().saturating_sub(at)
                ),
            ),
        }
    }
    fn i32(&self, at: usize) -> Result<i32, NvError> {
        let s = self.bytes(at, 4)?;
        Ok(i32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn i16(&self, at: usize) -> Result<i16, NvError> {
        let s = self.bytes(at, 2)?;
        Ok(i16::from_ne_bytes([s[0], s[1]]))
    }
    fn u64(&self, at: usize) -> Result<u64, NvError> {
        let s = self.bytes(at, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_ne_bytes(a))
    }
    fn zeros(&self, at: usize, n: usize, what: &str) -> Result<(), NvError> {
        if self.bytes(at, n)?.iter().any(|&x| x != 0) {
            return err(at, format!("{what} is not zero"));
        }
        Ok(())
    }
}

/// Decode a packed nvlist. See the module invariants.
///
/// # Errors
/// [`NvError`] naming the offset and what is wrong there.
pub fn decode(b: &[u8]) -> Result<NvList, NvError> {
    let c = Cursor { b };
    let h = c.bytes(0, 4)?;
    match h[0] {
        NV_ENCODE_NATIVE => {}
        NV_ENCODE_XDR => return err(0, "XDR encoding (resume tokens are packed native)"),
        e => return err(0, format!("unknown encoding {e}")),
    }
    if h[1] != HOST_ENDIAN {
        return err(
            1,
            format!(
                "packed on a host of the other byte order (endian {}; libnvpair refuses it too)",
                h[1]
            ),
        );
    }
    c.zeros(2, 2, "reserved header byte")?;
    let version = c.i32(4)?;
    if version != NV_VERSION {
        return err(4, format!("unknown nvlist version {version}"));
    }
    let flag = c.i32(8)? as u32;
    if flag != NV_UNIQUE_NAME {
        return err(8, format!("nvflag {flag:#x}, expected NV_UNIQUE_NAME (1)"));
    }
    let mut at = 12;
    let mut list = NvList::default();
    loop {
        let size = c.i32(at)?;
        if size == 0 {
            at += 4;
            if at != b.len() {
                return err(
                    at,
                    format!("{} bytes after the end of the list", b.len() - at),
                );
            }
            return Ok(list);
        }
        let (name, value, next) = pair(&c, at, size)?;
        if list.get(&name).is_some() {
            return err(at, format!("duplicate pair {name:?}"));
        }
        list.pairs.push((name, value));
        at = next;
    }
}

/// One pair at `at` of `size` bytes: its name, value and the offset after it.
fn pair(c: &Cursor<'_>, at: usize, size: i32) -> Result<(String, NvValue, usize), NvError> {
    let size = usize::try_from(size).or_else(|_| err(at, format!("negative pair size {size}")))?;
    if size < align8(NVP_HEADER + 1) || size % 8 != 0 {
        return err(at, format!("bad pair size {size}"));
    }
    let body = c.bytes(at, size)?;
    let p = Cursor { b: body };
    let name_sz = p.i16(4)?;
    let name_sz = usize::try_from(name_sz)
        .ok()
        .filter(|&n| n > 0)
        .map_or_else(|| err(at + 4, format!("bad name size {name_sz}")), Ok)?;
    p.zeros(6, 2, "nvp_reserve")?;
    let nelem = p.i32(8)?;
    let ty = p.i32(12)?;
    let raw_name = p.bytes(NVP_HEADER, name_sz)?;
    let (last, text) = raw_name.split_last().expect("name_sz > 0");
    if *last != 0 || text.contains(&0) {
        return err(
            at + NVP_HEADER,
            "pair name is not one NUL-terminated string",
        );
    }
    let name = String::from_utf8(text.to_vec())
        .or_else(|_| err(at + NVP_HEADER, "pair name is not UTF-8"))?;
    let valoff = align8(NVP_HEADER + name_sz);
    if valoff > size {
        return err(
            at,
            format!("pair {name:?}: size {size} smaller than its name"),
        );
    }
    p.zeros(
        NVP_HEADER + name_sz,
        valoff - NVP_HEADER - name_sz,
        "name padding",
    )?;
    let region = size - valoff;
    let bad = |what: String| err(at, format!("pair {name:?}: {what}"));
    let (value, value_sz) = match (ty, nelem) {
        (DATA_TYPE_BOOLEAN, 0) => (NvValue::Boolean, 0),
        (DATA_TYPE_UINT64, 1) => (NvValue::U64(p.u64(valoff)?), 8),
        (DATA_TYPE_STRING, 1) => {
            let r = p.bytes(valoff, region)?;
            let Some(len) = r.iter().position(|&x| x == 0) else {
                return bad("string value without its NUL".into());
            };
            match std::str::from_utf8(&r[..len]) {
                Ok(s) => (NvValue::Str(s.to_string()), len + 1),
                Err(_) => return bad("string value is not UTF-8".into()),
            }
        }
        (DATA_TYPE_UINT64_ARRAY, n) if n >= 0 && (n as usize) <= region / 8 => {
            let n = n as usize;
            let v = (0..n)
                .map(|i| p.u64(valoff + 8 * i))
                .collect::<Result<Vec<_>, _>>()?;
            (NvValue::U64Array(v), 8 * n)
        }
        (DATA_TYPE_BOOLEAN | DATA_TYPE_UINT64 | DATA_TYPE_STRING | DATA_TYPE_UINT64_ARRAY, n) => {
            return bad(format!("type {ty} with {n} elements"))
        }
        (t, _) => return bad(format!("unsupported data type {t}")),
    };
    if align8(value_sz) != region {
        return bad(format!(
            "size {size} does not fit its {value_sz}-byte value (expected {})",
            valoff + align8(value_sz)
        ));
    }
    p.zeros(valoff + value_sz, region - value_sz, "value padding")?;
    Ok((name, value, at + size))
}

/// Pack `list` the way `fnvlist_pack` does on this host. Names and string
/// values must not contain NUL (they are cut there otherwise, which
/// [`decode`] then reads back cut).
pub fn encode(list: &NvList) -> Vec<u8> {
    let mut out = vec![NV_ENCODE_NATIVE, HOST_ENDIAN, 0, 0];
    out.extend_from_slice(&NV_VERSION.to_ne_bytes());
    out.extend_from_slice(&NV_UNIQUE_NAME.to_ne_bytes());
    for (name, value) in &list.pairs {
        let name = name.split('\0').next().unwrap_or_default();
        let name_sz = name.len() + 1;
        let valoff = align8(NVP_HEADER + name_sz);
        let (ty, nelem, bytes): (i32, i32, Vec<u8>) = match value {
            NvValue::Boolean => (DATA_TYPE_BOOLEAN, 0, Vec::new()),
            NvValue::U64(v) => (DATA_TYPE_UINT64, 1, v.to_ne_bytes().to_vec()),
            NvValue::Str(s) => {
                let mut b = s.split('\0').next().unwrap_or_default().as_bytes().to_vec();
                b.push(0);
                (DATA_TYPE_STRING, 1, b)
            }
            NvValue::U64Array(a) => (
                DATA_TYPE_UINT64_ARRAY,
                a.len() as i32,
                a.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            ),
        };
        let size = valoff + align8(bytes.len());
        let start = out.len();
        out.extend_from_slice(&(size as i32).to_ne_bytes());
        out.extend_from_slice(&(name_sz as i16).to_ne_bytes());
        out.extend_from_slice(&0i16.to_ne_bytes());
        out.extend_from_slice(&nelem.to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(name.as_bytes());
        out.resize(start + valoff, 0);
        out.extend_from_slice(&bytes);
        out.resize(start + size, 0);
    }
    out.extend_from_slice(&[0; 4]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NvList {
        NvList {
            pairs: vec![
                ("object".into(), NvValue::U64(1)),
                ("toname".into(), NvValue::Str("p/a@s".into())),
                ("rawok".into(), NvValue::Boolean),
                ("redact_snaps".into(), NvValue::U64Array(vec![1, 2])),
            ],
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let b = encode(&sample());
        // header, version 0, NV_UNIQUE_NAME, first pair: align8(16 + 7) + 8 bytes
        assert_eq!(&b[..4], &[0, HOST_ENDIAN, 0, 0]);
        assert_eq!(i32::from_ne_bytes(b[12..16].try_into().unwrap()), 32);
        assert_eq!(&b[b.len() - 4..], &[0; 4]);
        assert_eq!(decode(&b).unwrap(), sample());
    }

    #[test]
    fn refusals_name_the_problem() {
        let good = encode(&sample());
        let mut xdr = good.clone();
        xdr[0] = 1;
        assert!(decode(&xdr).unwrap_err().what.contains("XDR"));
        let mut other = good.clone();
        other[1] ^= 1;
        assert!(decode(&other).unwrap_err().what.contains("byte order"));
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0; 8]);
        assert!(decode(&trailing)
            .unwrap_err()
            .what
            .contains("after the end"));
        let dup = NvList {
            pairs: vec![
                ("rawok".into(), NvValue::Boolean),
                ("rawok".into(), NvValue::Boolean),
            ],
        };
        assert!(decode(&encode(&dup))
            .unwrap_err()
            .what
            .contains("duplicate pair \"rawok\""));
        let mut ty = good.clone();
        ty[12 + 12] = 3; // object becomes DATA_TYPE_INT16
        assert!(decode(&ty).unwrap_err().what.contains("type 3"));
        let mut pad = good.clone();
        pad[12 + 16 + 7] = 1; // name padding of "object"
        assert!(decode(&pad).unwrap_err().what.contains("padding"));
        assert!(decode(&good[..good.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
    }
}
