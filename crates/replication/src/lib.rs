//! `zrelay-replication`: the replication driver.
//!
//! Invariants:
//! - The driver talks to endpoints only through `zrelay_endpoint::{Sender,
//!   Receiver}`; planning is the pure `zrelay_planner::plan`.
//! - Steps of one filesystem run in order; a step starts only after the
//!   sender protected it (`prepare`), and a filesystem's progress is
//!   committed (receiver hold, sender cursor) only after the receiver
//!   confirmed the received snapshot's GUID.
//! - Temporary errors are retried with backoff, permanent ones are not; one
//!   failing filesystem never blocks the others.
//! - A step that moves no byte for the watchdog's timeout is aborted.
//! - The report is readable at any time through a [`ReportHandle`].
//! - After the last attempt, a failed filesystem without a resumable state
//!   keeps no step hold.

pub mod config;
pub mod driver;
pub mod error;
pub mod report;
pub mod schedule;
pub mod step;

pub use config::{DriverConfig, InvalidFilter, SnapshotFilter, DEFAULT_STEPS};
pub mod observer;
pub use driver::Driver;
pub use error::ReplicationError;
pub use observer::{NoObserver, Observer, StepEnd, Tee};
pub use report::{AttemptState, FsReport, FsState, Report, ReportHandle, StepReport};
