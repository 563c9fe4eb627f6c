//! Value syntaxes, exactly as zrepl parses them: zrepl's own durations,
//! Go's `time.ParseDuration`, data sizes (`datasizeunit`), retention grids
//! and `host:port`.

use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;

use crate::model::GridInterval;

/// The regular expression of zrepl's duration syntax.
const ZREPL_DURATION_RE: &str = r"^\s*([+-]?\d+)\s*(|s|m|h|d|w)\s*$";

/// A value that does not parse in its syntax. Every message names the
/// value, quoted (`{:?}`), and says what is wrong, in zrepl's or Go's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a zrepl duration.
    #[error("{value:?} is not a duration: {why}")]
    NotADuration {
        /// The value.
        value: String,
        /// Why.
        why: DurationFault,
    },
    /// Not a Go duration.
    #[error("{0:?} is not a Go duration (like 30s, 1m30s or 500ms)")]
    NotAGoDuration(String),
    /// A Go duration part without a unit.
    #[error("{0:?}: missing unit in duration")]
    MissingUnit(String),
    /// A Go duration with an unknown unit.
    #[error("{value:?}: unknown unit {unit:?} in duration")]
    UnknownUnit {
        /// The value.
        value: String,
        /// The unit.
        unit: String,
    },
    /// A Go duration too long for Go.
    #[error("{0:?}: duration out of range")]
    DurationOutOfRange(String),
    /// A negative duration (no key takes one).
    #[error("{0:?}: duration must not be negative")]
    Negative(String),
    /// A zero duration where a positive one is needed.
    #[error("{0:?}: duration must be positive")]
    NotPositive(String),
    /// Not a data size.
    #[error("cannot parse {value:?} as a data size{}", why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    NotADataSize {
        /// The value.
        value: String,
        /// Why, if more can be said.
        why: Option<SizeFault>,
    },
    /// `N bit` with a fractional N.
    #[error("{0:?}: unit bit must be an integer value")]
    FractionalBits(String),
    /// A data size too large.
    #[error("{0:?}: data size out of range")]
    SizeOutOfRange(String),
    /// A positive data size below one byte.
    #[error("{0:?} is less than 1 byte")]
    BelowOneByte(String),
    /// One segment of a retention grid is invalid.
    #[error("cannot parse interval {index} of {count}: {why}: {segment:?}")]
    Grid {
        /// 1-based position of the segment.
        index: usize,
        /// Number of segments.
        count: usize,
        /// The segment, trimmed.
        segment: String,
        /// Why.
        why: GridFault,
    },
    /// Not `host:port`.
    #[error("{value:?} is not host:port: {why}")]
    NotHostPort {
        /// The value.
        value: String,
        /// Why (Go's `net.SplitHostPort` words).
        why: &'static str,
    },
}

/// Why a value is not a zrepl duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationFault {
    /// The syntax does not match.
    #[error("must match {ZREPL_DURATION_RE}")]
    Syntax,
    /// The number does not fit.
    #[error("the number is out of range")]
    NumberOutOfRange,
    /// A non-zero number without a unit.
    #[error("missing time unit")]
    MissingUnit,
    /// The duration does not fit.
    #[error("out of range")]
    OutOfRange,
}

/// Why a value is not a data size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeFault {
    /// No number and unit.
    #[error("expected a number and a unit like `23.5 MiB`, `100 Mb` or `800 bit`")]
    Syntax,
    /// The number part is not a number.
    #[error("{0:?} is not a number")]
    NotANumber(String),
}

/// Why a retention grid segment is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridFault {
    /// The segment's syntax.
    #[error("does not match `N x DURATION(keep=K|all)`")]
    Syntax,
    /// The factor does not fit.
    #[error("the factor is out of range")]
    FactorOutOfRange,
    /// `0 x ...`.
    #[error("contains factor <= 0")]
    ZeroFactor,
    /// The duration is invalid.
    #[error("{0}")]
    Length(Box<UnitError>),
    /// `(foo=...)`.
    #[error("interval parameter contains unknown parameters")]
    UnknownParameter,
    /// `keep=` is neither a number nor `all`.
    #[error("cannot parse keep count {0:?} (a number or `all`)")]
    Keep(String),
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// zrepl's duration syntax (`config_duration.go`):
/// `^\s*([\+-]?\d+)\s*(|s|m|h|d|w)\s*$`; a missing unit is allowed only for 0.
pub fn parse_zrepl_duration(s: &str) -> Result<Duration, UnitError> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = re(&RE, ZREPL_DURATION_RE);
    let bad = |why| UnitError::NotADuration {
        value: s.to_string(),
        why,
    };
    let c = re.captures(s).ok_or_else(|| bad(DurationFault::Syntax))?;
    let n: i64 = c[1]
        .parse()
        .map_err(|_| bad(DurationFault::NumberOutOfRange))?;
    let unit: u64 = match &c[2] {
        "" if n != 0 => return Err(bad(DurationFault::MissingUnit)),
        "" => 0,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 7 * 86400,
    };
    if n < 0 {
        return Err(UnitError::Negative(s.to_string()));
    }
    (n as u64)
        .checked_mul(unit)
        .map(Duration::from_secs)
        .ok_or_else(|| bad(DurationFault::OutOfRange))
}

/// A zrepl duration that must be positive (`interval`s, grid lengths).
pub fn parse_positive_duration(s: &str) -> Result<Duration, UnitError> {
    let d = parse_zrepl_duration(s)?;
    if d.is_zero() {
        return Err(UnitError::NotPositive(s.to_string()));
    }
    Ok(d)
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units
/// `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`; a bare `0` is allowed.
/// Negative durations are rejected (no zrepl key takes one).
pub fn parse_go_duration(s: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::NotAGoDuration(s.to_string());
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, r) = rest.split_at(int_len);
        let (frac_part, r) = match r.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", r),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = r
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(r.len(), |(i, _)| i);
        let (unit, r) = r.split_at(unit_len);
        let nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(UnitError::MissingUnit(s.to_string())),
            u => {
                return Err(UnitError::UnknownUnit {
                    value: s.to_string(),
                    unit: u.to_string(),
                })
            }
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut v = int.checked_mul(nanos).ok_or_else(bad)?;
        let mut scale = nanos;
        for d in frac_part.bytes().take(30) {
            scale /= 10;
            v += u128::from(d - b'0') * scale;
        }
        total = total.checked_add(v).ok_or_else(bad)?;
        rest = r;
    }
    if total > i64::MAX as u128 {
        return Err(UnitError::DurationOutOfRange(s.to_string()));
    }
    if neg && total > 0 {
        return Err(UnitError::Negative(s.to_string()));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// zrepl's `datasizeunit.Bits`:
/// `^([-0-9\.]*)\s*(bit|(|K|Ki|M|Mi|G|Gi|T|Ti)([bB]))$`, returned in bits.
/// `b` is bits, `B` is bytes; `K`, `M`, `G`, `T` are powers of 1000 and
/// `Ki`…`Ti` powers of 1024; `bit` needs an integer. zrelay also accepts a
/// bare `-1` (zrepl insists on a unit, `-1 B`).
pub fn parse_bits(s: &str) -> Result<f64, UnitError> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = re(&RE, r"^([-0-9.]*)\s*(bit|(|K|Ki|M|Mi|G|Gi|T|Ti)([bB]))$");
    if s.trim() == "-1" {
        return Ok(-8.0);
    }
    let bad = |why| UnitError::NotADataSize {
        value: s.to_string(),
        why,
    };
    let c = re.captures(s).ok_or_else(|| bad(Some(SizeFault::Syntax)))?;
    let num: f64 = c[1]
        .parse()
        .map_err(|_| bad(Some(SizeFault::NotANumber(c[1].to_string()))))?;
    if !num.is_finite() {
        return Err(bad(None));
    }
    if &c[2] == "bit" {
        if num.round() != num {
            return Err(UnitError::FractionalBits(s.to_string()));
        }
        return Ok(num);
    }
    let factor: f64 = match c.get(3).map_or("", |m| m.as_str()) {
        "" => 1.0,
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => 1024.0 * 1024.0 * 1024.0 * 1024.0,
    };
    let base = if &c[4] == "B" { 8.0 } else { 1.0 };
    Ok(num * factor * base)
}

/// A data size in whole bytes, as zrepl converts it (`int64(bits / 8)`,
/// truncating). Negative means "no limit" where zrepl allows it.
pub fn parse_bytes(s: &str) -> Result<i64, UnitError> {
    let bits = parse_bits(s)?;
    let bytes = bits / 8.0;
    if bytes >= i64::MAX as f64 {
        return Err(UnitError::SizeOutOfRange(s.to_string()));
    }
    if bytes > 0.0 && bytes < 1.0 {
        return Err(UnitError::BelowOneByte(s.to_string()));
    }
    Ok(bytes as i64)
}

/// A retention grid (`retentiongrid.go`): segments `N x DURATION(keep=K|all)`
/// joined by `|`; `(keep=…)` is optional (default 1). `keep=all` is `None`.
pub fn parse_grid(s: &str) -> Result<Vec<GridInterval>, UnitError> {
    static SEG: OnceLock<Regex> = OnceLock::new();
    static KEEP: OnceLock<Regex> = OnceLock::new();
    let seg = re(&SEG, r"^\s*(\d+)\s*x\s*([^(]+)\s*(\((.*)\))?\s*$");
    let keep_re = re(&KEEP, r"^\s*keep=(.+?)\s*$");
    let parts: Vec<&str> = s.split('|').collect();
    let n = parts.len();
    let mut out = Vec::with_capacity(n);
    for (i, part) in parts.iter().enumerate() {
        let fail = |why| UnitError::Grid {
            index: i + 1,
            count: n,
            segment: part.trim().to_string(),
            why,
        };
        let c = seg.captures(part).ok_or_else(|| fail(GridFault::Syntax))?;
        let count: u32 = c[1]
            .parse()
            .map_err(|_| fail(GridFault::FactorOutOfRange))?;
        if count == 0 {
            return Err(fail(GridFault::ZeroFactor));
        }
        let length =
            parse_positive_duration(&c[2]).map_err(|e| fail(GridFault::Length(Box::new(e))))?;
        let keep = match c.get(4) {
            None => Some(1),
            Some(params) => {
                let k = keep_re
                    .captures(params.as_str())
                    .ok_or_else(|| fail(GridFault::UnknownParameter))?;
                match &k[1] {
                    "all" => None,
                    v => Some(
                        v.parse::<u32>()
                            .map_err(|_| fail(GridFault::Keep(v.to_string())))?,
                    ),
                }
            }
        };
        out.push(GridInterval {
            count,
            length,
            keep,
        });
    }
    Ok(out)
}

/// Go's `net.SplitHostPort` check (zrepl's `hostport` tag): `host:port`,
/// `[v6]:port` or `:port`.
pub fn check_host_port(s: &str) -> Result<(), UnitError> {
    let bad = |why: &'static str| UnitError::NotHostPort {
        value: s.to_string(),
        why,
    };
    let colon = s.rfind(':').ok_or_else(|| bad("missing port in address"))?;
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    if let Some(h) = host.strip_prefix('[') {
        let inner = h
            .strip_suffix(']')
            .ok_or_else(|| bad("missing ']' in address"))?;
        if inner.contains(['[', ']']) {
            return Err(bad("unexpected '[' or ']' in address"));
        }
    } else if host.contains(':') {
        return Err(bad("too many colons in address"));
    } else if host.contains(['[', ']']) {
        return Err(bad("unexpected '[' or ']' in address"));
    }
    if port.is_empty() {
        return Err(bad("missing port"));
    }
    Ok(())
}
