//! Value syntaxes, exactly as zrepl parses them: zrepl's own durations,
//! Go's `time.ParseDuration`, data sizes (`datasizeunit`), retention grids
//! and `host:port`.

use std::sync::OnceLock;
use std::time::Duration;

use regex::Regex;

use crate::model::GridInterval;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// zrepl's duration syntax (`config_duration.go`):
/// `^\s*([\+-]?\d+)\s*(|s|m|h|d|w)\s*$`; a missing unit is allowed only for 0.
pub fn parse_zrepl_duration(s: &str) -> Result<Duration, String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = re(&RE, r"^\s*([+-]?\d+)\s*(|s|m|h|d|w)\s*$");
    let c = re
        .captures(s)
        .ok_or_else(|| format!("{s:?} is not a duration: must match {}", re.as_str()))?;
    let n: i64 = c[1]
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: the number is out of range"))?;
    let unit: u64 = match &c[2] {
        "" if n != 0 => return Err(format!("{s:?} is not a duration: missing time unit")),
        "" => 0,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => 7 * 86400,
    };
    if n < 0 {
        return Err(format!("{s:?}: duration must not be negative"));
    }
    (n as u64)
        .checked_mul(unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is not a duration: out of range"))
}

/// A zrepl duration that must be positive (`interval`s, grid lengths).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_zrepl_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: duration must be positive"));
    }
    Ok(d)
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units
/// `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`; a bare `0` is allowed.
/// Negative durations are rejected (no zrepl key takes one).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a Go duration (like 30s, 1m30s or 500ms)");
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
            "" => return Err(format!("{s:?}: missing unit in duration")),
            u => return Err(format!("{s:?}: unknown unit {u:?} in duration")),
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
        return Err(format!("{s:?}: duration out of range"));
    }
    if neg && total > 0 {
        return Err(format!("{s:?}: duration must not be negative"));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// zrepl's `datasizeunit.Bits`:
/// `^([-0-9\.]*)\s*(bit|(|K|Ki|M|Mi|G|Gi|T|Ti)([bB]))$`, returned in bits.
/// `b` is bits, `B` is bytes; `K`, `M`, `G`, `T` are powers of 1000 and
/// `Ki`…`Ti` powers of 1024; `bit` needs an integer. zrelay also accepts a
/// bare `-1` (zrepl insists on a unit, `-1 B`).
pub fn parse_bits(s: &str) -> Result<f64, String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = re(&RE, r"^([-0-9.]*)\s*(bit|(|K|Ki|M|Mi|G|Gi|T|Ti)([bB]))$");
    if s.trim() == "-1" {
        return Ok(-8.0);
    }
    let c = re.captures(s).ok_or_else(|| {
        format!("cannot parse {s:?} as a data size: expected a number and a unit like `23.5 MiB`, `100 Mb` or `800 bit`")
    })?;
    let num: f64 = c[1].parse().map_err(|_| {
        format!(
            "cannot parse {s:?} as a data size: {:?} is not a number",
            &c[1]
        )
    })?;
    if !num.is_finite() {
        return Err(format!("cannot parse {s:?} as a data size"));
    }
    if &c[2] == "bit" {
        if num.round() != num {
            return Err(format!("{s:?}: unit bit must be an integer value"));
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
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let bits = parse_bits(s)?;
    let bytes = bits / 8.0;
    if bytes >= i64::MAX as f64 {
        return Err(format!("{s:?}: data size out of range"));
    }
    if bytes > 0.0 && bytes < 1.0 {
        return Err(format!("{s:?} is less than 1 byte"));
    }
    Ok(bytes as i64)
}

/// A retention grid (`retentiongrid.go`): segments `N x DURATION(keep=K|all)`
/// joined by `|`; `(keep=…)` is optional (default 1). `keep=all` is `None`.
pub fn parse_grid(s: &str) -> Result<Vec<GridInterval>, String> {
    static SEG: OnceLock<Regex> = OnceLock::new();
    static KEEP: OnceLock<Regex> = OnceLock::new();
    let seg = re(&SEG, r"^\s*(\d+)\s*x\s*([^(]+)\s*(\((.*)\))?\s*$");
    let keep_re = re(&KEEP, r"^\s*keep=(.+?)\s*$");
    let parts: Vec<&str> = s.split('|').collect();
    let n = parts.len();
    let mut out = Vec::with_capacity(n);
    for (i, part) in parts.iter().enumerate() {
        let fail = |why: String| {
            format!(
                "cannot parse interval {} of {n}: {why}: {:?}",
                i + 1,
                part.trim()
            )
        };
        let c = seg
            .captures(part)
            .ok_or_else(|| fail("does not match `N x DURATION(keep=K|all)`".into()))?;
        let count: u32 = c[1]
            .parse()
            .map_err(|_| fail("the factor is out of range".into()))?;
        if count == 0 {
            return Err(fail("contains factor <= 0".into()));
        }
        let length = parse_positive_duration(&c[2]).map_err(fail)?;
        let keep = match c.get(4) {
            None => Some(1),
            Some(params) => {
                let k = keep_re
                    .captures(params.as_str())
                    .ok_or_else(|| fail("interval parameter contains unknown parameters".into()))?;
                match &k[1] {
                    "all" => None,
                    v => Some(v.parse::<u32>().map_err(|_| {
                        fail(format!("cannot parse keep count {v:?} (a number or `all`)"))
                    })?),
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
pub fn check_host_port(s: &str) -> Result<(), String> {
    let bad = |why: &str| format!("{s:?} is not host:port: {why}");
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
