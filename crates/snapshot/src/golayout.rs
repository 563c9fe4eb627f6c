//! Go's `time.Time.Format` for the tokens of Go's layout syntax, which is
//! what zrepl's `timestamp_format` accepts besides the named formats
//! (`daemon/snapper/snapname/timestamp/timestamp.go` calls `t.Format`).

use crate::timestamp::ZonedTime;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Go's `time.Time.Format` for the tokens of Go's layout syntax.
pub(crate) fn go_format(layout: &str, t: &ZonedTime) -> String {
    let local = t.unix_secs + i64::from(t.offset_secs);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let (hour, min, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
    let weekday = (days + 4).rem_euclid(7) as usize;
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[month as usize - 1] + day + u32::from(month > 2 && is_leap(year));
    let h12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let mname = MONTHS[month as usize - 1];

    let b = layout.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let has = |i: usize, s: &str| layout[i..].starts_with(s);
    while i < b.len() {
        let (text, n): (String, usize) = match b[i] {
            b'J' if has(i, "January") => (mname.into(), 7),
            b'J' if has(i, "Jan") => (mname[..3].into(), 3),
            b'M' if has(i, "Monday") => (DAYS[weekday].into(), 6),
            b'M' if has(i, "Mon") => (DAYS[weekday][..3].into(), 3),
            b'M' if has(i, "MST") => (zone_name(t), 3),
            b'0' if has(i, "002") => (format!("{yday:03}"), 3),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => {
                let v = match b[i + 1] {
                    b'1' => format!("{month:02}"),
                    b'2' => format!("{day:02}"),
                    b'3' => format!("{h12:02}"),
                    b'4' => format!("{min:02}"),
                    b'5' => format!("{sec:02}"),
                    _ => format!("{:02}", year.rem_euclid(100)),
                };
                (v, 2)
            }
            b'1' if has(i, "15") => (format!("{hour:02}"), 2),
            b'1' => (month.to_string(), 1),
            b'2' if has(i, "2006") => (format!("{year:04}"), 4),
            b'2' => (day.to_string(), 1),
            b'_' if has(i, "_2006") => ("_".into(), 1),
            b'_' if has(i, "_2") => (format!("{day:>2}"), 2),
            b'_' if has(i, "__2") => (format!("{yday:>3}"), 3),
            b'3' => (h12.to_string(), 1),
            b'4' => (min.to_string(), 1),
            b'5' => (sec.to_string(), 1),
            b'P' if has(i, "PM") => ((if hour >= 12 { "PM" } else { "AM" }).into(), 2),
            b'p' if has(i, "pm") => ((if hour >= 12 { "pm" } else { "am" }).into(), 2),
            b'-' | b'Z' => match tz_token(&layout[i..]) {
                Some((tok, n)) => (numeric_zone(tok, t.offset_secs), n),
                None => ((b[i] as char).into(), 1),
            },
            b'.' | b',' if i + 1 < b.len() && matches!(b[i + 1], b'0' | b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    ((b[i] as char).into(), 1)
                } else {
                    let digits = j - i - 1;
                    let frac = format!("{:09}", t.nanos)[..digits.min(9)].to_string();
                    let v = if ch == b'9' {
                        let trimmed = frac.trim_end_matches('0');
                        if trimmed.is_empty() {
                            String::new()
                        } else {
                            format!("{}{trimmed}", b[i] as char)
                        }
                    } else {
                        format!("{}{frac}", b[i] as char)
                    };
                    (v, j - i)
                }
            }
            _ => {
                let c = layout[i..].chars().next().unwrap_or(' ');
                (c.to_string(), c.len_utf8())
            }
        };
        out.push_str(&text);
        i += n;
    }
    out
}

fn zone_name(t: &ZonedTime) -> String {
    if t.zone.is_empty() {
        numeric_zone("-0700", t.offset_secs)
    } else {
        t.zone.clone()
    }
}

/// The numeric time zone token at the start of `s`, if any.
fn tz_token(s: &str) -> Option<(&'static str, usize)> {
    const TOKENS: [&str; 10] = [
        "-07:00:00",
        "-070000",
        "-07:00",
        "-0700",
        "-07",
        "Z07:00:00",
        "Z070000",
        "Z07:00",
        "Z0700",
        "Z07",
    ];
    TOKENS
        .iter()
        .find(|t| s.starts_with(**t))
        .map(|t| (*t, t.len()))
}

fn numeric_zone(tok: &str, offset: i32) -> String {
    if tok.starts_with('Z') && offset == 0 {
        return "Z".into();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    match &tok[1..] {
        "07" => format!("{sign}{h:02}"),
        "0700" => format!("{sign}{h:02}{m:02}"),
        "07:00" => format!("{sign}{h:02}:{m:02}"),
        "070000" => format!("{sign}{h:02}{m:02}{s:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{s:02}"),
    }
}
