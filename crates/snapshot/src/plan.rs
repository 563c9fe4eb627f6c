//! [`SnapshotPlan`]: a job's `snapshotting`, checked and compiled once (the
//! configuration builds it): the snapshot namer with its time zone, the
//! schedule with its parsed cron expression, the hooks checked. A
//! snapshotter built from a plan has no error path.

use crate::cron::CronSchedule;
use crate::error::{Result, SnapshotError};
use crate::hooks::check_hook;
use crate::model::{Snapshotting, TimestampFormat};
use crate::schedule::Schedule;
use crate::snapshotter::MANUAL_PREFIX;
use crate::timestamp::SnapshotNamer;

/// `snapshotting`, compiled. Derefs to the configuration as written; two
/// plans are equal when that is.
#[derive(Debug, Clone)]
pub struct SnapshotPlan {
    snapshotting: Snapshotting,
    pub(crate) namer: SnapshotNamer,
    pub(crate) schedule: Schedule,
}

impl SnapshotPlan {
    /// Check and compile `snapshotting`: the prefix and timestamp format
    /// give valid names, the time zones exist, the interval is positive,
    /// the cron expression parses, the hooks' paths and DSNs are valid.
    ///
    /// # Errors
    /// The first check that fails, naming the key.
    pub fn new(snapshotting: Snapshotting) -> Result<SnapshotPlan> {
        let config = SnapshotError::Config;
        let (prefix, format, location) = match &snapshotting {
            Snapshotting::Manual => (MANUAL_PREFIX, &TimestampFormat::Dense, "UTC"),
            Snapshotting::Periodic {
                prefix,
                timestamp_format,
                timestamp_location,
                ..
            }
            | Snapshotting::Cron {
                prefix,
                timestamp_format,
                timestamp_location,
                ..
            } => (
                prefix.as_str(),
                timestamp_format,
                timestamp_location.as_str(),
            ),
        };
        let namer =
            SnapshotNamer::new(prefix, format, location).map_err(|e| config(e.to_string()))?;
        let schedule = match &snapshotting {
            Snapshotting::Periodic { interval, .. } if interval.is_zero() => {
                return Err(config("interval must be positive".into()))
            }
            Snapshotting::Periodic { interval, .. } => Schedule::Periodic {
                interval: *interval,
            },
            Snapshotting::Cron { cron, .. } => Schedule::Cron(
                CronSchedule::parse(cron)
                    .map_err(|e| config(format!("cron syntax invalid: {e}")))?,
            ),
            Snapshotting::Manual => Schedule::Manual,
        };
        for (i, h) in snapshotting.hooks().iter().enumerate() {
            check_hook(h).map_err(|e| config(format!("hooks[{i}]: {e}")))?;
        }
        Ok(SnapshotPlan {
            snapshotting,
            namer,
            schedule,
        })
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

impl std::ops::Deref for SnapshotPlan {
    type Target = Snapshotting;
    fn deref(&self) -> &Snapshotting {
        &self.snapshotting
    }
}

impl PartialEq for SnapshotPlan {
    fn eq(&self, other: &Self) -> bool {
        self.snapshotting == other.snapshotting
    }
}

impl Eq for SnapshotPlan {}
