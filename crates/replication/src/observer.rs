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

/// Two observers of one run: `primary`'s step ids are the ones passed to
/// both on `step_finished`, so `secondary` must not rely on its own ids
/// (it gets the filesystem with every call).
pub struct Tee {
    /// Its ids are used.
    pub primary: std::sync::Arc<dyn Observer>,
    /// Sees every event too.
    pub secondary: std::sync::Arc<dyn Observer>,
}

impl Observer for Tee {
    fn attempt_started(&self, n: u32) {
        self.primary.attempt_started(n);
        self.secondary.attempt_started(n);
    }
    fn attempt_finished(&self, n: u32, state: AttemptState, error: Option<&str>) {
        self.primary.attempt_finished(n, state, error);
        self.secondary.attempt_finished(n, state, error);
    }
    fn step_started(&self, fs: &str, step: &StepReport) -> u64 {
        self.secondary.step_started(fs, step);
        self.primary.step_started(fs, step)
    }
    fn step_finished(&self, id: u64, fs: &str, bytes: u64, end: StepEnd) {
        self.secondary.step_finished(id, fs, bytes, end.clone());
        self.primary.step_finished(id, fs, bytes, end);
    }
}
