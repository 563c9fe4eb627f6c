//! go-yaml v2's resolution of plain scalars where zrepl's parser differs
//! from a plain decimal reading: integers (`1_000`, `0x10`, `010` = 8,
//! `10.0`), as zrepl's `count`, `port`, `steps`… and bare-integer
//! `time.Duration`s are read.

use zrelay_zfs::peer_text::peer;

/// An integer as go-yaml v2 resolves a plain scalar for zrepl's integer
/// fields: `_` ignored, an optional sign, Go's base prefixes (`0x`, `0o`,
/// `0b`, and a leading `0` for octal: `010` is 8), or a float without a
/// fractional part (`10.0`, `1e+3`). A fractional float is refused although
/// go-yaml truncates it (`count: 1.5` would keep 1 snapshot, fewer than
/// written).
pub(crate) fn go_int(text: &str) -> Result<i128, String> {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match plain.as_bytes().first() {
        Some(b'-') => (true, &plain[1..]),
        Some(b'+') => (false, &plain[1..]),
        _ => (false, plain.as_str()),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let int = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| i128::from_str_radix(digits, radix).ok())
        .flatten();
    if let Some(v) = int {
        return Ok(if neg { -v } else { v });
    }
    let float = regex_lite_float(&plain)
        .then(|| plain.parse::<f64>().ok())
        .flatten();
    match float {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i128),
        Some(_) => Err(format!(
            "expected an integer, found {} (zrepl would round it down)",
            peer(text)
        )),
        None => Err(format!(
            "expected an integer, found string {:?}",
            peer(text)
        )),
    }
}

/// go-yaml's `^[-+]?[0-9]*\.?[0-9]+([eE][-+][0-9]+)?$` (its plain floats).
fn regex_lite_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => digits(a) && !b.is_empty() && digits(b),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exp_ok = match exp {
        None => true,
        Some(e) => e
            .strip_prefix(['-', '+'])
            .is_some_and(|d| !d.is_empty() && digits(d)),
    };
    mantissa_ok && exp_ok
}
