//! Table tests for the value syntaxes: durations (zrepl's and Go's), data
//! sizes, retention grids, cron expressions, timestamp formats.

use std::time::Duration;

use zrelay_config::cron::parse_cron;
use zrelay_config::timestamp::{check_location, ZonedTime};
use zrelay_config::units::*;
use zrelay_config::{GridInterval, TimestampFormat};

const S: u64 = 1;
const M: u64 = 60;
const H: u64 = 3600;
const D: u64 = 86400;

#[test]
fn zrepl_durations() {
    let ok = [
        ("10m", 10 * M),
        ("1s", S),
        ("24h", 24 * H),
        ("1d", D),
        ("2w", 14 * D),
        (" 15 m ", 15 * M),
        ("+5m", 5 * M),
        ("90s", 90 * S),
    ];
    for (s, secs) in ok {
        assert_eq!(
            parse_positive_duration(s),
            Ok(Duration::from_secs(secs)),
            "{s}"
        );
    }
    assert_eq!(parse_zrepl_duration("0"), Ok(Duration::ZERO));
    for s in [
        "0",
        "0s",
        "-5m",
        "10",
        "10ms",
        "1.5h",
        "1h30m",
        "10 minutes",
        "",
        "m",
        "10y",
    ] {
        assert!(parse_positive_duration(s).is_err(), "{s} accepted");
    }
    assert!(parse_zrepl_duration("10")
        .unwrap_err()
        .to_string()
        .contains("missing time unit"));
}

#[test]
fn go_durations() {
    let ok = [
        ("30s", 30_000_000_000u64),
        ("1m30s", 90_000_000_000),
        ("500ms", 500_000_000),
        ("1h", 3_600_000_000_000),
        ("1.5h", 5_400_000_000_000),
        ("2h45m", 9_900_000_000_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),
        ("10us", 10_000),
        ("10µs", 10_000),
        ("10μs", 10_000),
        ("100ns", 100),
        ("0", 0),
        ("+10s", 10_000_000_000),
        ("-0", 0),
    ];
    for (s, nanos) in ok {
        assert_eq!(parse_go_duration(s), Ok(Duration::from_nanos(nanos)), "{s}");
    }
    for (s, why) in [
        ("10", "missing unit"),
        ("", "not a Go duration"),
        ("1d", "unknown unit \"d\""),
        ("s", "not a Go duration"),
        ("1h 30m", "unknown unit \"h \""),
        ("-5s", "must not be negative"),
        (".", "not a Go duration"),
        ("10 s", "unknown unit \" s\""),
    ] {
        let e = parse_go_duration(s).unwrap_err().to_string();
        assert!(e.contains(why), "{s}: {e}");
    }
}

#[test]
fn data_sizes() {
    let ok: [(&str, f64); 14] = [
        ("23.5 MiB", 23.5 * 1048576.0 * 8.0),
        ("1 B", 8.0),
        ("1B", 8.0),
        ("1 b", 1.0),
        ("100 Mb", 100e6),
        ("100 MB", 800e6),
        ("1 KiB", 8192.0),
        ("1 Kib", 1024.0),
        ("2 GiB", 2.0 * 1073741824.0 * 8.0),
        ("1 TB", 8e12),
        ("1 Ti", 0.0),
        ("800 bit", 800.0),
        ("-1 B", -8.0),
        ("-1", -8.0),
    ];
    for (s, bits) in ok {
        if s == "1 Ti" {
            assert!(parse_bits(s).is_err(), "{s}: a unit needs b or B");
            continue;
        }
        assert_eq!(parse_bits(s), Ok(bits), "{s}");
    }
    for s in [
        "23.5 MiBps",
        "1.5 bit",
        "MiB",
        "1 kB",
        " 1 B",
        "1 B ",
        "ten B",
        "1",
        "1 KB/s",
    ] {
        assert!(parse_bits(s).is_err(), "{s} accepted");
    }
    assert_eq!(parse_bytes("23.5 MiB"), Ok(24_641_536));
    assert_eq!(parse_bytes("12 b"), Ok(1));
    assert_eq!(parse_bytes("-1 B"), Ok(-1));
    assert!(parse_bytes("7 b")
        .unwrap_err()
        .to_string()
        .contains("less than 1 byte"));
}

#[test]
fn retention_grids() {
    let g = |count, secs, keep| GridInterval {
        count,
        length: Duration::from_secs(secs),
        keep,
    };
    let table: [(&str, Vec<GridInterval>); 5] = [
        (
            "1x1h(keep=all) | 24x1h | 14x1d",
            vec![g(1, H, None), g(24, H, Some(1)), g(14, D, Some(1))],
        ),
        ("24x1h", vec![g(24, H, Some(1))]),
        (" 3 x 10m ( keep = 5 )", vec![]),
        (
            "1x1h(keep=3)|52x1w(keep=0)",
            vec![g(1, H, Some(3)), g(52, 7 * D, Some(0))],
        ),
        ("6x30d", vec![g(6, 30 * D, Some(1))]),
    ];
    for (s, want) in table {
        if want.is_empty() {
            assert!(
                parse_grid(s).is_err(),
                "{s}: `keep =` with spaces is not zrepl syntax"
            );
            continue;
        }
        assert_eq!(parse_grid(s), Ok(want), "{s}");
    }
    for (s, why) in [
        ("0x1h", "contains factor <= 0"),
        ("1h", "does not match"),
        ("24x1h |", "cannot parse interval 2 of 2"),
        ("1x1h(count=2)", "unknown parameters"),
        ("1x1h(keep=-1)", "cannot parse keep count"),
        ("1x0h", "must be positive"),
        ("1x1ms", "is not a duration"),
        ("", "cannot parse interval 1 of 1"),
    ] {
        let e = parse_grid(s).unwrap_err().to_string();
        assert!(e.contains(why), "{s}: {e}");
    }
}

#[test]
fn host_ports() {
    for s in [
        "backups.example.com:8888",
        ":8888",
        "0.0.0.0:8888",
        "[::1]:8888",
        "[fe80::1%eth0]:22",
        "host:ssh",
    ] {
        assert_eq!(check_host_port(s), Ok(()), "{s}");
    }
    for (s, why) in [
        ("backups.example.com", "missing port in address"),
        ("::1:8888", "too many colons"),
        ("[::1:8888", "missing ']'"),
        ("host:", "missing port"),
    ] {
        let e = check_host_port(s).unwrap_err().to_string();
        assert!(e.contains(why), "{s}: {e}");
    }
}

#[test]
fn cron_table() {
    for s in [
        "10 * * * *",
        "*/15 0-6 * * 1-5",
        "0 0 0 1 jan *",
        "CRON_TZ=Asia/Tokyo 0 9 * * *",
    ] {
        assert!(parse_cron(s).is_ok(), "{s}: {:?}", parse_cron(s));
    }
    for s in [
        "@hourly",
        "* * * *",
        "0 0 32 * *",
        "0 0 * * 8",
        "0 0 * * MON#2",
        "TZ=Europe/Berlin",
    ] {
        assert!(parse_cron(s).is_err(), "{s} accepted");
    }
}

fn t() -> ZonedTime {
    // 2024-05-14 21:16:23.045 UTC, a Tuesday
    ZonedTime::utc(1_715_721_383, 45_000_000)
}

#[test]
fn timestamp_formats() {
    let table = [
        ("dense", "20240514_211623_000"),
        ("DENSE", "20240514_211623_000"),
        ("human", "2024-05-14_21:16:23"),
        ("iso-8601", "2024-05-14T21:16:23.045Z"),
        ("unix-seconds", "1715721383"),
        ("2006-01-02", "2024-05-14"),
        ("Mon_Jan_2_15h04m05s", "Tue_May14_21h16m23s"), // `_2` is the space-padded day
        ("Monday January 02 06", "Tuesday May 14 24"),
        ("3:04PM pm", "9:16PM pm"),
        ("03_04_05.999999", "09_16_23.045"),
        ("05.000000,00", "23.045000,04"), // `,00` is a fraction too
        ("002__2_2", "13513514"),         // `__2`: padded year day, `_2`: padded day
        ("_2006", "_2024"),
        ("MST -0700 Z07:00 -07", "UTC +0000 Z +00"),
        ("1/2 2006", "5/14 2024"),
    ];
    for (layout, want) in table {
        let f = TimestampFormat::parse(layout).unwrap();
        assert_eq!(f.format(&t()), want, "{layout}");
    }
    let berlin = ZonedTime {
        unix_secs: 1_715_721_383,
        nanos: 0,
        offset_secs: 7200,
        zone: "CEST".into(),
    };
    let iso = TimestampFormat::parse("iso-8601").unwrap();
    assert_eq!(iso.format(&berlin), "2024-05-14T23:16:23.000_0200");
    let custom = TimestampFormat::parse("2006-01-02_15:04:05-07:00:00").unwrap();
    assert_eq!(custom.format(&berlin), "2024-05-14_23:16:23_02:00:00");
    let ny = ZonedTime {
        unix_secs: 1_715_721_383,
        nanos: 0,
        offset_secs: -4 * 3600,
        zone: "EDT".into(),
    };
    assert_eq!(iso.format(&ny), "2024-05-14T17:16:23.000-0400");

    assert_eq!(TimestampFormat::parse("Human"), Ok(TimestampFormat::Human));
    assert!(TimestampFormat::parse("2006+01")
        .unwrap_err()
        .to_string()
        .contains("'+' is not allowed"));
    assert!(TimestampFormat::parse("").is_err());
    assert!(TimestampFormat::Dense.requires_utc() && !TimestampFormat::Iso8601.requires_utc());
}

#[test]
fn timestamp_locations() {
    for l in [
        "UTC",
        "Local",
        "Europe/Berlin",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+2",
    ] {
        assert_eq!(check_location(l), Ok(()), "{l}");
    }
    for l in ["/etc/localtime", "../x", "Europe//Berlin", "Europe/Ber lin"] {
        assert!(check_location(l).is_err(), "{l} accepted");
    }
}

#[test]
fn timestamp_names_are_checked_in_configs() {
    let job = |extra: &str| {
        format!(
            "jobs:\n- name: s\n  type: snap\n  filesystems: {{\"p<\": true}}\n  snapshotting:\n    type: periodic\n    prefix: zrepl_\n    interval: 1h\n{extra}  pruning:\n    keep: []\n"
        )
    };
    let parse = |extra: &str| zrelay_config::parse_str(&job(extra), std::path::Path::new("t.yml"));
    assert!(parse("    timestamp_format: \"2006-01-02_15:04:05\"\n").is_ok());
    assert!(
        parse("    timestamp_format: iso-8601\n    timestamp_location: America/New_York\n").is_ok()
    );
    for (extra, why) in [
        (
            "    timestamp_format: \"2006/01/02\"\n",
            "invalid snapshot name",
        ),
        (
            "    timestamp_format: \"zrepl\"\n",
            "contains no time fields",
        ),
        (
            "    timestamp_format: human\n    timestamp_location: Local\n",
            "requires UTC location",
        ),
        (
            "    timestamp_location: \"Europe/../x\"\n",
            "invalid location",
        ),
    ] {
        let e = parse(extra).unwrap_err().to_string();
        assert!(e.contains(why), "{extra}: {e}");
    }
}

#[test]
fn unit_errors_name_the_value() {
    let e = parse_grid("1x1h|0x2h").unwrap_err();
    assert!(
        matches!(&e, UnitError::Grid { index: 2, count: 2, segment, why: GridFault::ZeroFactor } if segment == "0x2h"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "cannot parse interval 2 of 2: contains factor <= 0: \"0x2h\""
    );
    assert_eq!(
        parse_zrepl_duration("x").unwrap_err().to_string(),
        r#""x" is not a duration: must match ^\s*([+-]?\d+)\s*(|s|m|h|d|w)\s*$"#
    );
    assert_eq!(
        parse_bytes("1.5.5 MiB").unwrap_err().to_string(),
        r#"cannot parse "1.5.5 MiB" as a data size: "1.5.5" is not a number"#
    );
    assert_eq!(
        "toml"
            .parse::<zrelay_config::RenderFormat>()
            .unwrap_err()
            .to_string(),
        r#"unknown format "toml", expected pretty, yaml or json"#
    );
}
