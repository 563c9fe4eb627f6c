//! Cron expressions as zrepl accepts them (`config/config.go` parses
//! `snapshotting.cron` with robfig/cron v3 and the options
//! `Minute | Hour | Dom | Month | Dow | SecondOptional`, no descriptors),
//! and the next fire time after an instant ([`CronSchedule::next_after`],
//! robfig's `SpecSchedule.Next`, which `daemon/snapper/cron.go` calls).
//!
//! A small implementation rather than a cron crate: the maintained crates
//! (`croner`, `cron`) accept syntax robfig rejects (`L`, `W`, `#`, `7` for
//! Sunday, `@daily`) or require the seconds field, so they would accept
//! configurations zrepl refuses, and they differ from robfig in the
//! day-of-month/day-of-week rule and around DST changes.
//!
//! Grammar: an optional `TZ=zone ` or `CRON_TZ=zone ` prefix, then 5 fields
//! (minute hour day-of-month month day-of-week) or 6 (seconds first). A
//! field is a comma-separated list of `*`, `?`, `N`, `N-M`, each optionally
//! `/STEP`; `N/STEP` means `N-max/STEP`. Months accept `jan`..`dec`, days
//! of week `sun`..`sat` (case-insensitive). Bounds: seconds and minutes
//! 0-59, hours 0-23, day of month 1-31, month 1-12, day of week 0-6.
//!
//! Day matching is robfig's: if the day-of-month or the day-of-week field
//! is a star (`*` or `?`, without a step above 1), a day must match both;
//! otherwise it must match either (`0 0 1,15 * mon`: the 1st, the 15th and
//! every Monday). Without a zone prefix the schedule runs in the system's
//! local zone, as robfig's default `time.Local`.

mod next;
#[cfg(test)]
mod tests;

use jiff::tz::TimeZone;

use crate::timestamp::LocationError;

/// A cron expression that cannot be used. Every message but the empty
/// one starts with the expression, quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The expression is empty.
    #[error("empty cron expression")]
    Empty,
    /// The expression is malformed.
    #[error("{spec:?}: {fault}")]
    Invalid {
        /// The expression.
        spec: String,
        /// What is wrong with it.
        fault: CronFault,
    },
    /// The `TZ=` zone of [`CronSchedule::parse`] cannot be loaded.
    #[error(transparent)]
    Location(#[from] LocationError),
}

/// What is wrong with a cron expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronFault {
    /// `TZ=zone` with nothing after it.
    #[error("a time zone prefix must be followed by fields")]
    ZoneWithoutFields,
    /// `@daily` and friends.
    #[error("descriptors such as @daily are not accepted, write the fields")]
    Descriptor,
    /// Not 5 or 6 fields.
    #[error(
        "expected 5 to 6 fields, found {0} (seconds are optional: [sec] min hour dom month dow)"
    )]
    FieldCount(usize),
    /// A field has no value.
    #[error("{field} field is empty")]
    EmptyField {
        /// The field's name, e.g. `day of week`.
        field: &'static str,
    },
    /// One comma-separated part of a field is invalid.
    #[error("{field} field {expr:?}: {fault}")]
    Range {
        /// The field's name, e.g. `day of week`.
        field: &'static str,
        /// The part.
        expr: String,
        /// What is wrong with it.
        fault: RangeFault,
    },
    /// The `TZ=` zone is unknown.
    #[error(transparent)]
    Location(LocationError),
}

impl CronFault {
    /// The field the fault is in, if it is in one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            CronFault::EmptyField { field } | CronFault::Range { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// What is wrong with one part (`N`, `N-M`, `*/S`, ...) of a field
/// (robfig's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeFault {
    /// `1-2-3`.
    #[error("too many hyphens")]
    TooManyHyphens,
    /// `1/2/3`.
    #[error("too many slashes")]
    TooManySlashes,
    /// The start is below the field's minimum.
    #[error("beginning of range ({start}) below minimum ({min})")]
    BelowMinimum {
        /// The start.
        start: u32,
        /// The minimum.
        min: u32,
    },
    /// The end is above the field's maximum.
    #[error("end of range ({end}) above maximum ({max})")]
    AboveMaximum {
        /// The end.
        end: u32,
        /// The maximum.
        max: u32,
    },
    /// The start is after the end.
    #[error("beginning of range ({start}) beyond end of range ({end})")]
    Reversed {
        /// The start.
        start: u32,
        /// The end.
        end: u32,
    },
    /// `/0`.
    #[error("step of range should be a positive number")]
    ZeroStep,
    /// Not a number (nor a name).
    #[error("failed to parse int from {0:?}")]
    NotANumber(String),
    /// A number too large.
    #[error("number {0:?} out of range")]
    OutOfRange(String),
}

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
    /// The day-of-month field is a star (robfig's `starBit`).
    pub dom_star: bool,
    /// The day-of-week field is a star (robfig's `starBit`).
    pub dow_star: bool,
}

/// A parsed cron expression with its time zone. Two schedules are equal
/// when they were written the same.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    spec: String,
    fields: CronFields,
    tz: TimeZone,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// Parse `spec`; the zone is the `TZ=`/`CRON_TZ=` prefix's, else the
    /// system's local zone.
    pub fn parse(spec: &str) -> Result<CronSchedule, CronError> {
        let (zone, fields) = parse_spec(spec)?;
        let tz = match zone {
            Some(z) => crate::timestamp::load_location(z)?,
            None => TimeZone::system(),
        };
        Ok(CronSchedule {
            spec: spec.to_string(),
            fields,
            tz,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.spec
    }

    /// The same fields, evaluated in `tz` instead.
    pub fn with_time_zone(mut self, tz: TimeZone) -> CronSchedule {
        self.tz = tz;
        self
    }

    /// The fields.
    pub fn fields(&self) -> &CronFields {
        &self.fields
    }

    /// The time zone the fields are evaluated in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const fn bounds(name: &'static str, min: u32, max: u32) -> Bounds {
    Bounds {
        name,
        min,
        max,
        names: &[],
    }
}

const SECONDS: Bounds = bounds("seconds", 0, 59);
const MINUTES: Bounds = bounds("minutes", 0, 59);
const HOURS: Bounds = bounds("hours", 0, 23);
const DOM: Bounds = bounds("day of month", 1, 31);
const MONTHS: Bounds = Bounds {
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    ..bounds("month", 1, 12)
};
const DOW: Bounds = Bounds {
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    ..bounds("day of week", 0, 6)
};

/// Parse and validate a cron expression (see the module docs). A zone
/// prefix must name a zone the system knows.
pub fn parse_cron(spec: &str) -> Result<CronFields, CronError> {
    let (zone, fields) = parse_spec(spec)?;
    if let Some(z) = zone {
        crate::timestamp::check_location(z).map_err(|e| invalid(spec, CronFault::Location(e)))?;
    }
    Ok(fields)
}

fn invalid(spec: &str, fault: CronFault) -> CronError {
    CronError::Invalid {
        spec: spec.to_string(),
        fault,
    }
}

/// The zone prefix (unchecked) and the fields.
fn parse_spec(spec: &str) -> Result<(Option<&str>, CronFields), CronError> {
    if spec.is_empty() {
        return Err(CronError::Empty);
    }
    let mut rest = spec;
    let mut zone = None;
    if rest.starts_with("TZ=") || rest.starts_with("CRON_TZ=") {
        let (prefix, tail) = rest
            .split_once(' ')
            .ok_or_else(|| invalid(spec, CronFault::ZoneWithoutFields))?;
        zone = Some(&prefix[prefix.find('=').map_or(0, |i| i + 1)..]);
        rest = tail.trim();
    }
    if rest.starts_with('@') {
        return Err(invalid(spec, CronFault::Descriptor));
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let fields: Vec<&str> = match fields.len() {
        5 => std::iter::once("0").chain(fields).collect(),
        6 => fields,
        n => return Err(invalid(spec, CronFault::FieldCount(n))),
    };
    let f = |i: usize, b: &Bounds| parse_field(fields[i], b).map_err(|e| invalid(spec, e));
    let (days_of_month, dom_star) = f(3, &DOM)?;
    let (days_of_week, dow_star) = f(5, &DOW)?;
    let fields = CronFields {
        seconds: f(0, &SECONDS)?.0,
        minutes: f(1, &MINUTES)?.0,
        hours: f(2, &HOURS)?.0,
        days_of_month,
        months: f(4, &MONTHS)?.0,
        days_of_week,
        dom_star,
        dow_star,
    };
    Ok((zone, fields))
}

/// The bits of a field and whether it is a star.
fn parse_field(field: &str, b: &Bounds) -> Result<(u64, bool), CronFault> {
    let mut bits = 0u64;
    let mut star = false;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        let (v, s) = parse_range(expr, b).map_err(|fault| CronFault::Range {
            field: b.name,
            expr: expr.to_string(),
            fault,
        })?;
        bits |= v;
        star |= s;
    }
    if bits == 0 {
        return Err(CronFault::EmptyField { field: b.name });
    }
    Ok((bits, star))
}

/// robfig's `getRange`: the bits, and whether the range is a star.
fn parse_range(expr: &str, b: &Bounds) -> Result<(u64, bool), RangeFault> {
    let parts: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = parts[0].split('-').collect();
    let single = low_high.len() == 1;
    let mut star = false;
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        star = true;
        (b.min, b.max)
    } else {
        let start = int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(RangeFault::TooManyHyphens),
        };
        (start, end)
    };
    let step = match parts.len() {
        1 => 1,
        2 => {
            if single {
                end = b.max;
            }
            let step = number(parts[1])?;
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return Err(RangeFault::TooManySlashes),
    };
    if start < b.min {
        return Err(RangeFault::BelowMinimum { start, min: b.min });
    }
    if end > b.max {
        return Err(RangeFault::AboveMaximum { end, max: b.max });
    }
    if start > end {
        return Err(RangeFault::Reversed { start, end });
    }
    if step == 0 {
        return Err(RangeFault::ZeroStep);
    }
    let bits = (start..=end)
        .step_by(step as usize)
        .fold(0u64, |acc, v| acc | (1u64 << v));
    Ok((bits, star))
}

fn int_or_name(s: &str, b: &Bounds) -> Result<u32, RangeFault> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if b.min == 1 { 1 } else { 0 });
    }
    number(s)
}

fn number(s: &str) -> Result<u32, RangeFault> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return Err(RangeFault::NotANumber(s.to_string()));
    }
    t.parse::<u32>()
        .map_err(|_| RangeFault::OutOfRange(s.to_string()))
}
