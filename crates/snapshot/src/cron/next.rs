//! robfig/cron v3's `SpecSchedule.Next` (`spec.go`), step for step, on
//! `jiff` zoned times. Go's `time.Date` resolves a wall-clock time that a
//! DST change skips or repeats to the earlier instant, so civil times are
//! resolved with [`jiff::tz::AmbiguousZoned::earlier`]; `Add` of hours,
//! minutes and seconds is absolute, `AddDate` is civil.

use std::time::SystemTime;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use super::{CronFields, CronSchedule};

impl CronSchedule {
    /// The first fire time strictly after `t` (whole seconds), or `None` if
    /// there is none within five years (e.g. `0 0 30 feb *`), as robfig.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let ts = Timestamp::try_from(t).ok()?;
        next(&self.fields, &self.tz, ts).map(SystemTime::from)
    }
}

/// The wall-clock time `dt` in `tz`, as Go's `time.Date`.
fn civil(tz: &TimeZone, dt: DateTime) -> Option<Zoned> {
    tz.to_ambiguous_zoned(dt).earlier().ok()
}

/// `z` moved by `secs` seconds of absolute time.
fn add_secs(z: &Zoned, secs: i64) -> Option<Zoned> {
    let ts = Timestamp::from_second(z.timestamp().as_second().checked_add(secs)?).ok()?;
    Some(ts.to_zoned(z.time_zone().clone()))
}

fn has(bits: u64, v: impl Into<i64>) -> bool {
    u32::try_from(v.into())
        .ok()
        .filter(|v| *v < 64)
        .is_some_and(|v| bits & (1u64 << v) != 0)
}

fn day_matches(f: &CronFields, z: &Zoned) -> bool {
    let dom = has(f.days_of_month, z.day());
    let dow = has(f.days_of_week, z.weekday().to_sunday_zero_offset());
    if f.dom_star || f.dow_star {
        dom && dow
    } else {
        dom || dow
    }
}

fn next(f: &CronFields, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
    // Start at the earliest possible time (the upcoming second).
    let mut z = Timestamp::from_second(t.as_second().checked_add(1)?)
        .ok()?
        .to_zoned(tz.clone());
    let mut added = false;
    let year_limit = z.year() + 5;

    'wrap: loop {
        if z.year() > year_limit {
            return None;
        }

        while !has(f.months, z.month()) {
            if !added {
                added = true;
                z = civil(tz, z.date().first_of_month().at(0, 0, 0, 0))?;
            }
            let dt = z.datetime().checked_add(1.month()).ok()?;
            z = civil(tz, dt)?;
            if z.month() == 1 {
                continue 'wrap;
            }
        }

        while !day_matches(f, &z) {
            if !added {
                added = true;
                z = civil(tz, z.date().at(0, 0, 0, 0))?;
            }
            let dt = z.datetime().checked_add(1.day()).ok()?;
            z = civil(tz, dt)?;
            // Midnight may not exist on DST days: go back to it, or forward
            // to the next day's.
            let h = i64::from(z.hour());
            if h != 0 {
                z = if h > 12 {
                    add_secs(&z, (24 - h) * 3600)?
                } else {
                    add_secs(&z, -h * 3600)?
                };
            }
            if z.day() == 1 {
                continue 'wrap;
            }
        }

        while !has(f.hours, z.hour()) {
            if !added {
                added = true;
                z = civil(tz, z.date().at(z.hour(), 0, 0, 0))?;
            }
            z = add_secs(&z, 3600)?;
            if z.hour() == 0 {
                continue 'wrap;
            }
        }

        while !has(f.minutes, z.minute()) {
            if !added {
                added = true;
                let s = z.timestamp().as_second();
                z = add_secs(&z, -s.rem_euclid(60))?;
            }
            z = add_secs(&z, 60)?;
            if z.minute() == 0 {
                continue 'wrap;
            }
        }

        while !has(f.seconds, z.second()) {
            added = true;
            z = add_secs(&z, 1)?;
            if z.second() == 0 {
                continue 'wrap;
            }
        }

        return Some(z.timestamp());
    }
}
