//! Parser tables and robfig/cron v3's `TestNext` table (`spec_test.go`),
//! with the `time.Local` cases pinned to UTC.

use std::time::SystemTime;

use jiff::Timestamp;

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
        ("TZ=Mars/Olympus_Mons 0 3 * * *", "unknown time zone"),
        ("CRON_TZ=../etc 0 3 * * *", "invalid location"),
    ] {
        let e = parse_cron(s).unwrap_err().to_string();
        assert!(e.contains(why), "{s}: {e}");
    }
}

#[test]
fn errors_name_the_expression_and_field() {
    let e = parse_cron("0 0 32 * *").unwrap_err();
    let CronError::Invalid { spec, fault } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(spec, "0 0 32 * *");
    assert_eq!(fault.field(), Some("day of month"));
    assert_eq!(
        e.to_string(),
        "\"0 0 32 * *\": day of month field \"32\": end of range (32) above maximum (31)"
    );
    let e = parse_cron("* * * * x,").unwrap_err();
    assert!(
        e.to_string()
            .contains("day of week field \"x\": failed to parse int"),
        "{e}"
    );
    assert_eq!(parse_cron("").unwrap_err(), CronError::Empty);
    let e = CronSchedule::parse("TZ=Mars/Olympus_Mons 0 3 * * *").unwrap_err();
    assert!(
        matches!(e, CronError::Location(LocationError::Unknown { .. })),
        "{e:?}"
    );
}

#[test]
fn star_bits_follow_robfig() {
    let f = parse_cron("0 0 * * mon").unwrap();
    assert!(f.dom_star && !f.dow_star);
    let f = parse_cron("0 0 */1 * ?").unwrap();
    assert!(f.dom_star && f.dow_star);
    let f = parse_cron("0 0 */2 * 1-5").unwrap();
    assert!(!f.dom_star && !f.dow_star, "a step above 1 is no star");
    let f = parse_cron("0 0 1,* * 1").unwrap();
    assert!(f.dom_star, "any star part makes the field a star");
}

fn ts(s: &str) -> SystemTime {
    SystemTime::from(
        s.parse::<Timestamp>()
            .unwrap_or_else(|e| panic!("{s}: {e}")),
    )
}

fn next(spec: &str, from: &str) -> Option<SystemTime> {
    CronSchedule::parse(spec).unwrap().next_after(ts(from))
}

#[test]
fn next_robfig_table() {
    let u = |s: &str| format!("CRON_TZ=UTC {s}");
    let ny = |s: &str| format!("TZ=America/New_York {s}");
    let table: Vec<(String, &str, &str)> = vec![
        // Simple cases
        (
            u("0 0/15 * * * *"),
            "2012-07-09T14:45:00Z",
            "2012-07-09T15:00:00Z",
        ),
        (
            u("0 0/15 * * * *"),
            "2012-07-09T14:59:00Z",
            "2012-07-09T15:00:00Z",
        ),
        (
            u("0 0/15 * * * *"),
            "2012-07-09T14:59:59Z",
            "2012-07-09T15:00:00Z",
        ),
        // Wrap around hours
        (
            u("0 20-35/15 * * * *"),
            "2012-07-09T15:45:00Z",
            "2012-07-09T16:20:00Z",
        ),
        // Wrap around days
        (
            u("0 */15 * * * *"),
            "2012-07-09T23:46:00Z",
            "2012-07-10T00:00:00Z",
        ),
        (
            u("0 20-35/15 * * * *"),
            "2012-07-09T23:45:00Z",
            "2012-07-10T00:20:00Z",
        ),
        (
            u("15/35 20-35/15 * * * *"),
            "2012-07-09T23:35:51Z",
            "2012-07-10T00:20:15Z",
        ),
        (
            u("15/35 20-35/15 1/2 * * *"),
            "2012-07-09T23:35:51Z",
            "2012-07-10T01:20:15Z",
        ),
        (
            u("15/35 20-35/15 10-12 * * *"),
            "2012-07-09T23:35:51Z",
            "2012-07-10T10:20:15Z",
        ),
        (
            u("15/35 20-35/15 1/2 */2 * *"),
            "2012-07-09T23:35:51Z",
            "2012-07-11T01:20:15Z",
        ),
        (
            u("15/35 20-35/15 * 9-20 * *"),
            "2012-07-09T23:35:51Z",
            "2012-07-10T00:20:15Z",
        ),
        (
            u("15/35 20-35/15 * 9-20 Jul *"),
            "2012-07-09T23:35:51Z",
            "2012-07-10T00:20:15Z",
        ),
        // Wrap around months
        (
            u("0 0 0 9 Apr-Oct ?"),
            "2012-07-09T23:35:00Z",
            "2012-08-09T00:00:00Z",
        ),
        (
            u("0 0 0 */5 Apr,Aug,Oct Mon"),
            "2012-07-09T23:35:00Z",
            "2012-08-01T00:00:00Z",
        ),
        (
            u("0 0 0 */5 Oct Mon"),
            "2012-07-09T23:35:00Z",
            "2012-10-01T00:00:00Z",
        ),
        // Wrap around years
        (
            u("0 0 0 * Feb Mon"),
            "2012-07-09T23:35:00Z",
            "2013-02-04T00:00:00Z",
        ),
        (
            u("0 0 0 * Feb Mon/2"),
            "2012-07-09T23:35:00Z",
            "2013-02-01T00:00:00Z",
        ),
        // Wrap around minute, hour, day, month, and year
        (
            u("0 * * * * *"),
            "2012-12-31T23:59:45Z",
            "2013-01-01T00:00:00Z",
        ),
        // Leap year
        (
            u("0 0 0 29 Feb ?"),
            "2012-07-09T23:35:00Z",
            "2016-02-29T00:00:00Z",
        ),
        // Day of month OR day of week when neither is a star
        (
            u("0 0 1,15 * mon"),
            "2024-05-01T00:00:00Z",
            "2024-05-06T00:00:00Z",
        ),
        (
            u("0 0 1,15 * mon"),
            "2024-05-13T00:00:00Z",
            "2024-05-15T00:00:00Z",
        ),
        // Five fields: seconds are 0
        (
            u("30 4 * * *"),
            "2024-05-14T21:16:23Z",
            "2024-05-15T04:30:00Z",
        ),
        // Daylight saving time 2am EST (-5) -> 3am EDT (-4)
        (
            ny("0 30 2 11 Mar ?"),
            "2012-03-11T00:00:00-05:00",
            "2013-03-11T02:30:00-04:00",
        ),
        // hourly job
        (
            ny("0 0 * * * ?"),
            "2012-03-11T00:00:00-05:00",
            "2012-03-11T01:00:00-05:00",
        ),
        (
            ny("0 0 * * * ?"),
            "2012-03-11T01:00:00-05:00",
            "2012-03-11T03:00:00-04:00",
        ),
        (
            ny("0 0 * * * ?"),
            "2012-03-11T03:00:00-04:00",
            "2012-03-11T04:00:00-04:00",
        ),
        (
            ny("0 0 * * * ?"),
            "2012-03-11T04:00:00-04:00",
            "2012-03-11T05:00:00-04:00",
        ),
        // 1am nightly job
        (
            ny("0 0 1 * * ?"),
            "2012-03-11T00:00:00-05:00",
            "2012-03-11T01:00:00-05:00",
        ),
        (
            ny("0 0 1 * * ?"),
            "2012-03-11T01:00:00-05:00",
            "2012-03-12T01:00:00-04:00",
        ),
        // 2am nightly job (skipped)
        (
            ny("0 0 2 * * ?"),
            "2012-03-11T00:00:00-05:00",
            "2012-03-12T02:00:00-04:00",
        ),
        // Daylight saving time 2am EDT (-4) => 1am EST (-5)
        (
            ny("0 30 2 04 Nov ?"),
            "2012-11-04T00:00:00-04:00",
            "2012-11-04T02:30:00-05:00",
        ),
        (
            ny("0 30 1 04 Nov ?"),
            "2012-11-04T01:45:00-04:00",
            "2012-11-04T01:30:00-05:00",
        ),
        // hourly job
        (
            ny("0 0 * * * ?"),
            "2012-11-04T00:00:00-04:00",
            "2012-11-04T01:00:00-04:00",
        ),
        (
            ny("0 0 * * * ?"),
            "2012-11-04T01:00:00-04:00",
            "2012-11-04T01:00:00-05:00",
        ),
        (
            ny("0 0 * * * ?"),
            "2012-11-04T01:00:00-05:00",
            "2012-11-04T02:00:00-05:00",
        ),
        // 1am nightly job (runs twice)
        (
            ny("0 0 1 * * ?"),
            "2012-11-04T00:00:00-04:00",
            "2012-11-04T01:00:00-04:00",
        ),
        (
            ny("0 0 1 * * ?"),
            "2012-11-04T01:00:00-04:00",
            "2012-11-04T01:00:00-05:00",
        ),
        (
            ny("0 0 1 * * ?"),
            "2012-11-04T01:00:00-05:00",
            "2012-11-05T01:00:00-05:00",
        ),
        // 2am nightly job
        (
            ny("0 0 2 * * ?"),
            "2012-11-04T00:00:00-04:00",
            "2012-11-04T02:00:00-05:00",
        ),
        (
            ny("0 0 2 * * ?"),
            "2012-11-04T02:00:00-05:00",
            "2012-11-05T02:00:00-05:00",
        ),
        // 3am nightly job
        (
            ny("0 0 3 * * ?"),
            "2012-11-04T00:00:00-04:00",
            "2012-11-04T03:00:00-05:00",
        ),
        (
            ny("0 0 3 * * ?"),
            "2012-11-04T03:00:00-05:00",
            "2012-11-05T03:00:00-05:00",
        ),
        // Monthly job
        (
            ny("0 0 3 3 * ?"),
            "2012-11-04T00:00:00-04:00",
            "2012-12-03T03:00:00-05:00",
        ),
        // Midnight does not exist on DST days (robfig/cron#157)
        (
            "TZ=America/Sao_Paulo 0 0 9 10 * ?".into(),
            "2018-10-17T05:00:00-04:00",
            "2018-11-10T06:00:00-05:00",
        ),
        (
            "TZ=America/Sao_Paulo 0 0 9 22 * ?".into(),
            "2018-02-14T05:00:00-05:00",
            "2018-02-22T07:00:00-05:00",
        ),
        (
            // robfig skips a day whose midnight is missing when the hour
            // field wants midnight: the next one is a year later.
            "TZ=America/Sao_Paulo 0 0 0 4 Nov ?".into(),
            "2018-10-17T05:00:00-04:00",
            "2019-11-04T00:00:00-03:00",
        ),
    ];
    for (spec, from, want) in &table {
        assert_eq!(next(spec, from), Some(ts(want)), "{spec} after {from}");
    }
}

#[test]
fn next_unsatisfiable_is_none() {
    assert_eq!(
        next("CRON_TZ=UTC 0 0 0 30 Feb ?", "2012-07-09T23:35:00Z"),
        None
    );
    assert_eq!(
        next("CRON_TZ=UTC 0 0 0 31 Apr ?", "2012-07-09T23:35:00Z"),
        None
    );
}

#[test]
fn next_is_strictly_after_and_ignores_subseconds() {
    let s = CronSchedule::parse("CRON_TZ=UTC * * * * * *").unwrap();
    let t = ts("2024-01-01T00:00:00.5Z");
    assert_eq!(s.next_after(t), Some(ts("2024-01-01T00:00:01Z")));
    let s = CronSchedule::parse("CRON_TZ=UTC 0 * * * *").unwrap();
    assert_eq!(
        s.next_after(ts("2024-01-01T10:00:00Z")),
        Some(ts("2024-01-01T11:00:00Z"))
    );
}

#[test]
fn without_prefix_the_local_zone_is_used() {
    let s = CronSchedule::parse("0 3 * * *").unwrap();
    assert_eq!(s.time_zone(), &jiff::tz::TimeZone::system());
    let berlin = jiff::tz::db().get("Europe/Berlin").unwrap();
    let s = s.with_time_zone(berlin);
    assert_eq!(
        s.next_after(ts("2024-07-01T12:00:00Z")),
        Some(ts("2024-07-02T03:00:00+02:00"))
    );
}
