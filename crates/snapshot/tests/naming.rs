//! Snapshot names: each timestamp format in UTC and in other locations.

use std::time::SystemTime;

use jiff::Timestamp;
use zrelay_snapshot::timestamp::{check_location, load_location};
use zrelay_snapshot::{SnapshotNamer, TimestampFormat};

fn at(s: &str) -> SystemTime {
    SystemTime::from(s.parse::<Timestamp>().unwrap())
}

fn name(format: &str, location: &str, t: &str) -> String {
    let f = TimestampFormat::parse(format).unwrap();
    SnapshotNamer::new("zrepl_", &f, location)
        .unwrap_or_else(|e| panic!("{format} {location}: {e}"))
        .name_at(at(t))
}

#[test]
fn named_formats_in_utc() {
    let t = "2024-05-14T21:16:23.045Z";
    assert_eq!(name("dense", "UTC", t), "zrepl_20240514_211623_000");
    assert_eq!(name("human", "UTC", t), "zrepl_2024-05-14_21:16:23");
    assert_eq!(name("iso-8601", "UTC", t), "zrepl_2024-05-14T21:16:23.045Z");
    assert_eq!(name("unix-seconds", "UTC", t), "zrepl_1715721383");
    assert_eq!(name("2006-01-02_15-04", "", t), "zrepl_2024-05-14_21-16");
}

#[test]
fn iso_8601_in_zones_uses_the_offset_at_that_time() {
    // Berlin: CEST (+02:00) in summer, CET (+01:00) in winter; `+` becomes `_`.
    let summer = "2024-05-14T21:16:23.045Z";
    let winter = "2024-01-14T21:16:23.045Z";
    assert_eq!(
        name("iso-8601", "Europe/Berlin", summer),
        "zrepl_2024-05-14T23:16:23.045_0200"
    );
    assert_eq!(
        name("iso-8601", "Europe/Berlin", winter),
        "zrepl_2024-01-14T22:16:23.045_0100"
    );
    assert_eq!(
        name("iso-8601", "America/New_York", summer),
        "zrepl_2024-05-14T17:16:23.045-0400"
    );
    assert_eq!(
        name("iso-8601", "Asia/Kolkata", summer),
        "zrepl_2024-05-15T02:46:23.045_0530"
    );
    assert_eq!(
        name("2006-01-02_15:04_MST", "Europe/Berlin", summer),
        "zrepl_2024-05-14_23:16_CEST"
    );
    assert_eq!(
        name("2006-01-02_15:04_MST-07:00", "Europe/Berlin", winter),
        "zrepl_2024-01-14_22:16_CET_01:00"
    );
}

#[test]
fn local_is_the_system_zone() {
    let t = "2024-05-14T21:16:23Z";
    let tz = jiff::tz::TimeZone::system();
    let local = t.parse::<Timestamp>().unwrap().to_zoned(tz);
    let offset = local.offset().seconds();
    let want_offset = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset > 0 { '_' } else { '-' };
        let a = offset.abs();
        format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
    };
    let want = format!(
        "zrepl_{}.000{want_offset}",
        local.strftime("%Y-%m-%dT%H:%M:%S")
    );
    assert_eq!(name("iso-8601", "Local", t), want);
}

#[test]
fn locations_are_checked_against_the_zone_database() {
    for ok in [
        "UTC",
        "",
        "Local",
        "Europe/Berlin",
        "Etc/GMT+2",
        "America/Argentina/Buenos_Aires",
    ] {
        assert_eq!(check_location(ok), Ok(()), "{ok}");
    }
    let e = check_location("Europe/Berln").unwrap_err().to_string();
    assert!(e.contains("unknown time zone \"Europe/Berln\""), "{e}");
    assert!(check_location("../etc/passwd")
        .unwrap_err()
        .to_string()
        .contains("invalid location"));
    assert!(load_location("Mars/Base").is_err());
}

#[test]
fn namer_refuses_what_zrepl_refuses() {
    let dense = TimestampFormat::Dense;
    let e = SnapshotNamer::new("zrepl_", &dense, "Europe/Berlin")
        .unwrap_err()
        .to_string();
    assert!(e.contains("requires UTC location"), "{e}");
    let slashes = TimestampFormat::parse("2006/01/02").unwrap();
    let e = SnapshotNamer::new("zrepl_", &slashes, "UTC")
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid snapshot name"), "{e}");
    let e = SnapshotNamer::new("zrepl_", &TimestampFormat::Iso8601, "Nowhere/City")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown time zone"), "{e}");
    // `-07:00` prints `+00:00` at offset 0, and only a positive offset's `+`
    // is replaced: fine in Berlin, an invalid name in UTC or London's winter
    // (zrepl would panic when snapshotting).
    let colon = TimestampFormat::parse("2006-01-02_15:04-07:00").unwrap();
    assert!(SnapshotNamer::new("zrepl_", &colon, "Europe/Berlin").is_ok());
    assert!(SnapshotNamer::new("zrepl_", &colon, "America/New_York").is_ok());
    for loc in ["UTC", "Europe/London"] {
        let e = SnapshotNamer::new("zrepl_", &colon, loc)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'+' is not allowed"), "{loc}: {e}");
    }
}
