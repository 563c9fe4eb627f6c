//! Hooks for whoever keeps a record of a run (the daemon's durable history,
//! its metrics): attempts and steps as they start and end. Calls are
//! synchronous and must not block; an observer that does I/O hands the
//! events to its own task.

use crate::report::{AttemptState, StepReport};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// The receiver has the snapshot.
    Completed,
    /// Failed; retrying can help (the driver may retry it).
    Failed(String),
    /// Failed permanently; the driver will not retry it in this run.
    Dead(String),
}

/// Receives a run's events. Every method has an empty default.
pub trait Observer: Send + Sync {
    /// Attempt `n` (from 1) starts planning.
    fn attempt_started(&self, _n: u32) {}
    /// Attempt `n` ended in `state`; `error` is planning's error, if any.
    fn attempt_finished(&self, _n: u32, _state: AttemptState, _error: Option<&str>) {}
    /// A step of `fs` starts; the returned id is passed to `step_finished`.
    fn step_started(&self, _fs: &str, _step: &StepReport) -> u64 {
        0
    }
    /// The step `id` of `fs` ended after moving `bytes`.
    fn step_finished(&self, _id: u64, _fs: &str, _bytes: u64, _end: StepEnd) {}
}

/// The observer of a driver that has none.
pub struct NoObserver;

impl Observer for NoObserver {}
