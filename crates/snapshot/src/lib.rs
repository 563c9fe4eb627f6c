//! `zrelay-snapshot`: zrepl's snapshotter (`snapshotting` of push, source
//! and snap jobs): periodic, cron and manual schedules, zrepl's snapshot
//! naming, hooks, and one atomic `zfs snapshot` per pool.
//!
//! Invariants:
//! - Names are zrepl's: `prefix` + the timestamp in `timestamp_format` and
//!   `timestamp_location` ([`timestamp`]), one name per round for every
//!   filesystem. Time zones come from the system database (`jiff`); an
//!   unknown zone is a configuration error, never a runtime surprise.
//! - The filesystems of a round are exactly those the job's filter matches
//!   at the start of the round (one [`zrelay_zfs::Zfs::list`] per filter
//!   root), placeholders included as in zrepl.
//! - All snapshots of a round within one pool are created by ONE
//!   [`zrelay_zfs::Zfs::snapshot`] call, so they share a transaction group
//!   (zrepl #62); only if that call fails are the pool's filesystems retried
//!   one by one, and the report says so (`atomic: false`).
//! - Hooks keep zrepl's per-filesystem guarantees (`round` module): pre
//!   edges in configuration order before the snapshot, post edges in
//!   reverse order after it and only for pre edges that succeeded; a failed
//!   `err_is_fatal` pre hook prevents that filesystem's snapshot and its
//!   later hooks; every hook is bounded by its `timeout`.
//! - Schedules: periodic rounds start at zrepl's sync point (aligned to the
//!   newest snapshot of the prefix) and then every interval; cron rounds at
//!   robfig/cron's next fire time; manual ones never. Any kind also runs on
//!   demand ([`Trigger`], [`Snapshotter::snapshot_now`]; a zrelay
//!   extension, zrepl #888). Rounds never overlap.
//! - Time is read only through a [`Clock`], so schedules are testable under
//!   `tokio::time::pause()` with [`TokioClock`].
//! - Every round produces a [`SnapshotReport`]; the [`SnapshotterStatus`]
//!   (state, next run, last report) is readable at any time.
//! - Errors are [`SnapshotError`]s, each temporary or permanent.
//!
//! zrepl sources followed: `daemon/snapper/{snapper.go,periodic.go,cron.go,
//! impl.go}`, `daemon/snapper/snapname/{snapname.go,timestamp/timestamp.go}`,
//! `daemon/hooks/{hook_exec.go,hook_type_command.go,hook_logging.go,
//! hook_type_postgres_checkpoint.go,hook_type_mysql_lock_tables.go}`,
//! `zfs/zfs.go` (`ZFSListMapping`), and robfig/cron v3's `spec.go`/`parser.go`.

pub mod clock;
pub mod cron;
pub mod error;
mod golayout;
pub mod hooks;
pub mod model;
mod plan;
pub mod report;
mod round;
mod run;
pub mod schedule;
mod snapshotter;
pub mod timestamp;

pub use clock::{Clock, FileClock, SystemClock, TokioClock};
pub use cron::{parse_cron, CronError, CronFault, CronFields, CronSchedule, RangeFault};
pub use error::SnapshotError;
pub use hooks::{DsnError, HookError};
pub use model::{Hook, HookKind, Snapshotting, TimestampFormat};
pub use plan::SnapshotPlan;
pub use report::{
    FsReport, HookEdge, HookOutcome, HookStatus, RoundCause, SnapshotReport, SnapshotterState,
    SnapshotterStatus,
};
pub use schedule::{sync_point, Schedule};
pub use snapshotter::{Snapshotter, Trigger, MANUAL_PREFIX};
pub use timestamp::{FormatError, LocationError, NamingError, SnapshotNamer, ZonedTime};
