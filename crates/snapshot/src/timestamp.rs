//! `snapshotting.timestamp_format` and `timestamp_location`, as zrepl 0.7's
//! `daemon/snapper/snapname/timestamp/timestamp.go` and
//! `daemon/snapper/snapname/snapname.go`: the named formats are matched
//! case-insensitively, anything else is a Go time layout; `+` is not allowed
//! in a layout, and a `+` produced by a positive UTC offset becomes `_`;
//! `dense`, `human` and `unix-seconds` require the location `UTC`; the
//! snapshot name `prefix + timestamp` must be a valid ZFS name.
//!
//! Locations are resolved like Go's `time.LoadLocation`: `""` and `UTC` are
//! UTC, `Local` is the system's zone (`TZ`, else `/etc/localtime`), anything
//! else is looked up in the system time zone database (`/usr/share/zoneinfo`,
//! Debian package `tzdata`) through `jiff`. An unknown zone is an error at
//! configuration time ([`check_location`]).

use std::time::SystemTime;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use zrelay_zfs::name::NameError;

use crate::golayout::go_format;
use crate::model::TimestampFormat;

/// A `timestamp_format` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format is empty.
    #[error("timestamp_format must not be empty")]
    Empty,
    /// The format contains a `+`, which no snapshot name may.
    #[error("invalid format string {0:?}: character '+' is not allowed in ZFS snapshot names")]
    Plus(String),
}

/// A `timestamp_location` (or cron `TZ=`) that names no usable zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// Not `UTC`, `Local` or a plausible zone name.
    #[error("invalid location {0:?}: expected UTC, Local or a zone name like Europe/Berlin")]
    Invalid(String),
    /// A plausible name the system's zone database does not have.
    #[error(
        "unknown time zone {location:?}: not in the system time zone database \
         (/usr/share/zoneinfo, package tzdata): {reason}"
    )]
    Unknown {
        /// The location.
        location: String,
        /// What the zone database said.
        reason: String,
    },
}

/// A prefix, format and location that do not make valid, distinct
/// snapshot names (the messages are zrepl's where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// The location names no zone.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The format is only valid in UTC.
    #[error(
        "invalid format string {format:?} or location {location:?}: format string requires UTC location"
    )]
    NeedsUtc {
        /// The format, as configured.
        format: String,
        /// The location.
        location: String,
    },
    /// Prefix plus timestamp is not a valid snapshot name.
    #[error("invalid snapshot name would result from `prefix+$timestamp`: {0}")]
    InvalidName(NameError),
    /// Every snapshot would get the same name.
    #[error(
        "timestamp_format {format:?} contains no time fields: every snapshot would be named {name:?}"
    )]
    NoTimeFields {
        /// The format, as configured.
        format: String,
        /// The one name every snapshot would get.
        name: String,
    },
}

/// A moment and the zone it is shown in, for [`TimestampFormat::format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonedTime {
    /// Seconds since the Unix epoch.
    pub unix_secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// The zone's offset east of UTC, in seconds.
    pub offset_secs: i32,
    /// The zone's abbreviation (`UTC`, `CEST`), for the `MST` layout token.
    pub zone: String,
}

impl ZonedTime {
    /// `unix_secs` in UTC.
    pub fn utc(unix_secs: i64, nanos: u32) -> ZonedTime {
        ZonedTime {
            unix_secs,
            nanos,
            offset_secs: 0,
            zone: "UTC".into(),
        }
    }

    /// `t` shown in `tz` (offset and abbreviation in force at `t`).
    pub fn at(t: SystemTime, tz: &TimeZone) -> ZonedTime {
        let ts = Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH);
        let info = tz.to_offset_info(ts);
        ZonedTime {
            unix_secs: ts.as_second(),
            nanos: u32::try_from(ts.subsec_nanosecond()).unwrap_or(0),
            offset_secs: info.offset().seconds(),
            zone: info.abbreviation().to_string(),
        }
    }
}

impl TimestampFormat {
    /// Parse a `timestamp_format` value.
    pub fn parse(s: &str) -> Result<TimestampFormat, FormatError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "dense" => TimestampFormat::Dense,
            "human" => TimestampFormat::Human,
            "iso-8601" => TimestampFormat::Iso8601,
            "unix-seconds" => TimestampFormat::UnixSeconds,
            "" => return Err(FormatError::Empty),
            _ if s.contains('+') => return Err(FormatError::Plus(s.to_string())),
            _ => TimestampFormat::Custom(s.to_string()),
        })
    }

    /// The Go layout (`None` for `unix-seconds`).
    pub fn layout(&self) -> Option<&str> {
        match self {
            TimestampFormat::Dense => Some("20060102_150405_000"),
            TimestampFormat::Human => Some("2006-01-02_15:04:05"),
            TimestampFormat::Iso8601 => Some("2006-01-02T15:04:05.000Z0700"),
            TimestampFormat::UnixSeconds => None,
            TimestampFormat::Custom(l) => Some(l),
        }
    }

    /// zrepl's spelling in the configuration.
    pub fn as_config_str(&self) -> &str {
        match self {
            TimestampFormat::Dense => "dense",
            TimestampFormat::Human => "human",
            TimestampFormat::Iso8601 => "iso-8601",
            TimestampFormat::UnixSeconds => "unix-seconds",
            TimestampFormat::Custom(l) => l,
        }
    }

    /// Whether zrepl requires `timestamp_location: UTC` for this format.
    pub fn requires_utc(&self) -> bool {
        matches!(
            self,
            TimestampFormat::Dense | TimestampFormat::Human | TimestampFormat::UnixSeconds
        )
    }

    /// Format `t` as zrepl does (a `+` from a positive offset becomes `_`).
    pub fn format(&self, t: &ZonedTime) -> String {
        match self.layout() {
            None => t.unix_secs.to_string(),
            Some(layout) => {
                let s = go_format(layout, t);
                if t.offset_secs > 0 {
                    s.replacen('+', "_", 1)
                } else {
                    s
                }
            }
        }
    }
}

/// Whether `location` names UTC for Go's `time.LoadLocation`.
pub fn is_utc(location: &str) -> bool {
    matches!(location, "" | "UTC")
}

/// Check a location name: `UTC`, `Local`, or an IANA zone name such as
/// `Europe/Berlin` that the system time zone database knows.
pub fn check_location(location: &str) -> Result<(), LocationError> {
    load_location(location).map(drop)
}

/// Resolve a location name (see the module docs) to a time zone.
pub fn load_location(location: &str) -> Result<TimeZone, LocationError> {
    if is_utc(location) {
        return Ok(TimeZone::UTC);
    }
    if location == "Local" {
        return Ok(TimeZone::system());
    }
    let ok = !location.starts_with('/')
        && location.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '+'))
        });
    if !ok {
        return Err(LocationError::Invalid(location.to_string()));
    }
    jiff::tz::db()
        .get(location)
        .map_err(|e| LocationError::Unknown {
            location: location.to_string(),
            reason: e.to_string(),
        })
}

/// Check that `prefix` + the timestamp is a valid snapshot name and that
/// the format fits the location; the message is zrepl's.
pub fn check_snapshot_names(
    prefix: &str,
    format: &TimestampFormat,
    location: &str,
) -> Result<(), NamingError> {
    let tz = load_location(location)?;
    if format.requires_utc() && !is_utc(location) {
        return Err(NamingError::NeedsUtc {
            format: format.as_config_str().to_string(),
            location: location.to_string(),
        });
    }
    // Moments in both halves of the year (DST), shown in the location
    // itself: zrepl only replaces a `+` of a positive offset, so a layout
    // that prints `+00:00` in UTC (or in London's winter) makes an invalid
    // name there, which zrepl would only find out when snapshotting.
    let samples: Vec<ZonedTime> = [
        (1_590_969_600, 0),
        (1_640_959_198, 500_000_000),
        (1_606_780_800, 0),
        (1_625_097_600, 0),
    ]
    .into_iter()
    .map(|(s, n)| ZonedTime::at(SystemTime::UNIX_EPOCH + std::time::Duration::new(s, n), &tz))
    .collect();
    let names: Vec<String> = samples
        .iter()
        .map(|t| format!("{prefix}{}", format.format(t)))
        .collect();
    for n in &names {
        zrelay_zfs::name::validate_component(n).map_err(NamingError::InvalidName)?;
    }
    if names[0] == names[1] {
        return Err(NamingError::NoTimeFields {
            format: format.as_config_str().to_string(),
            name: names[0].clone(),
        });
    }
    Ok(())
}

/// Makes snapshot names `prefix + timestamp` (zrepl's `snapname.Formatter`).
#[derive(Debug, Clone)]
pub struct SnapshotNamer {
    prefix: String,
    format: TimestampFormat,
    tz: TimeZone,
}

impl SnapshotNamer {
    /// A namer for `prefix`, `format` and `location`, checked as
    /// [`check_snapshot_names`] checks them.
    pub fn new(
        prefix: &str,
        format: &TimestampFormat,
        location: &str,
    ) -> Result<Self, NamingError> {
        check_snapshot_names(prefix, format, location)?;
        Ok(SnapshotNamer {
            prefix: prefix.to_string(),
            format: format.clone(),
            tz: load_location(location)?,
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The snapshot name for the moment `t`.
    pub fn name_at(&self, t: SystemTime) -> String {
        let z = ZonedTime::at(t, &self.tz);
        format!("{}{}", self.prefix, self.format.format(&z))
    }
}
