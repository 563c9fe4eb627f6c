//! Cron expressions as zrepl accepts them: robfig/cron v3 with
//! `Minute | Hour | Dom | Month | Dow | SecondOptional` and no descriptors.
//!
//! A small validator rather than a cron crate: the maintained crates
//! (`croner`, `cron`) accept syntax robfig rejects (`L`, `W`, `#`, `7` for
//! Sunday, `@daily`) or require the seconds field, so they would accept
//! configurations zrepl refuses.
//!
//! Grammar: an optional `TZ=zone ` or `CRON_TZ=zone ` prefix, then 5 fields
//! (minute hour day-of-month month day-of-week) or 6 (seconds first). A
//! field is a comma-separated list of `*`, `?`, `N`, `N-M`, each optionally
//! `/STEP`; `N/STEP` means `N-max/STEP`. Months accept `jan`..`dec`, days
//! of week `sun`..`sat` (case-insensitive). Bounds: seconds and minutes
//! 0-59, hours 0-23, day of month 1-31, month 1-12, day of week 0-6.

/// The parsed fields, as bit sets (bit `n` set: value `n` matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronFields {
    /// Seconds (0 when the field was omitted).
    pub seconds: u64,
    /// Minutes.
    pub minutes: u64,
    /// Hours.
    pub hours: u64,
    /// Days of month.
    pub days_of_month: u64,
    /// Months.
    pub months: u64,
    /// Days of week (0 = Sunday).
    pub days_of_week: u64,
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECONDS: Bounds = Bounds {
    name: "seconds",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Bounds = Bounds {
    name: "minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    name: "hours",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    name: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parse and validate a cron expression (see the module docs).
pub fn parse_cron(spec: &str) -> Result<CronFields, String> {
    if spec.is_empty() {
        return Err("empty cron expression".into());
    }
    let mut rest = spec;
    if rest.starts_with("TZ=") || rest.starts_with("CRON_TZ=") {
        let (prefix, tail) = rest
            .split_once(' ')
            .ok_or_else(|| format!("{spec:?}: a time zone prefix must be followed by fields"))?;
        let zone = &prefix[prefix.find('=').map_or(0, |i| i + 1)..];
        crate::timestamp::check_location(zone)?;
        rest = tail.trim();
    }
    if rest.starts_with('@') {
        return Err(format!(
            "{spec:?}: descriptors such as @daily are not accepted, write the fields"
        ));
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let fields: Vec<&str> = match fields.len() {
        5 => std::iter::once("0").chain(fields).collect(),
        6 => fields,
        n => {
            return Err(format!(
                "{spec:?}: expected 5 to 6 fields, found {n} (seconds are optional: [sec] min hour dom month dow)"
            ))
        }
    };
    let f = |i: usize, b: &Bounds| parse_field(fields[i], b).map_err(|e| format!("{spec:?}: {e}"));
    Ok(CronFields {
        seconds: f(0, &SECONDS)?,
        minutes: f(1, &MINUTES)?,
        hours: f(2, &HOURS)?,
        days_of_month: f(3, &DOM)?,
        months: f(4, &MONTHS)?,
        days_of_week: f(5, &DOW)?,
    })
}

fn parse_field(field: &str, b: &Bounds) -> Result<u64, String> {
    let mut bits = 0u64;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        bits |= parse_range(expr, b).map_err(|e| format!("{} field {expr:?}: {e}", b.name))?;
    }
    if bits == 0 {
        return Err(format!("{} field is empty", b.name));
    }
    Ok(bits)
}

fn parse_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let parts: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = parts[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max)
    } else {
        let start = int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err("too many hyphens".into()),
        };
        (start, end)
    };
    let step = match parts.len() {
        1 => 1,
        2 => {
            if single {
                end = b.max;
            }
            number(parts[1])?
        }
        _ => return Err("too many slashes".into()),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({})",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({})", b.max));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end})"
        ));
    }
    if step == 0 {
        return Err("step of range should be a positive number".into());
    }
    Ok((start..=end)
        .step_by(step as usize)
        .fold(0u64, |acc, v| acc | (1u64 << v)))
}

fn int_or_name(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if b.min == 1 { 1 } else { 0 });
    }
    number(s)
}

fn number(s: &str) -> Result<u32, String> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("failed to parse int from {s:?}"));
    }
    t.parse::<u32>()
        .map_err(|_| format!("number {s:?} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for s in [
            "10 * * * *",
            "0 */2 * * *",
            "30 0 * * * *",
            "0 0 1,15 * *",
            "0 9-17 * * mon-fri",
            "0 0 * JAN,jul SUN",
            "*/15 * * * * ?",
            "5/10 * * * *",
            "TZ=Europe/Berlin 0 3 * * *",
            "CRON_TZ=UTC 0 3 * * *",
            "  0   3  * * *  ",
        ] {
            assert!(parse_cron(s).is_ok(), "{s}: {:?}", parse_cron(s));
        }
        let f = parse_cron("5/20 * * * *").unwrap();
        assert_eq!(f.minutes, (1 << 5) | (1 << 25) | (1 << 45));
        assert_eq!(f.seconds, 1);
    }

    #[test]
    fn rejected() {
        for (s, why) in [
            ("", "empty"),
            ("@daily", "descriptors"),
            ("* * * *", "found 4"),
            ("* * * * * * *", "found 7"),
            ("60 * * * *", "above maximum"),
            ("* 24 * * *", "above maximum"),
            ("* * 0 * *", "below minimum"),
            ("* * * 13 *", "above maximum"),
            ("* * * * 7", "above maximum"),
            ("5-1 * * * *", "beyond end"),
            ("*/0 * * * *", "positive"),
            ("1-2-3 * * * *", "hyphens"),
            ("1/2/3 * * * *", "slashes"),
            ("x * * * *", "failed to parse int"),
            ("0 0 L * *", "failed to parse int"),
            ("0 0 * * 1#2", "failed to parse int"),
        ] {
            let e = parse_cron(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
