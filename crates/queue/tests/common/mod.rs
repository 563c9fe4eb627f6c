//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zrelay_queue::{
    Clock, JobId, ManualClock, Policy, Queue, RecordKey, TargetName, TargetSnapshot, WorkerId,
};
use zrelay_zfs::{Classify, DatasetPath, ErrorClass};

pub const S: Duration = Duration::from_secs(1);

/// A fixed start time.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// 30 s lease, backoff 1 s → 8 s, dead after 4 failures.
pub fn policy() -> Policy {
    Policy::new(30 * S, S, 8 * S, 4).unwrap()
}

pub fn key(job: &str, target: &str, fs: &str) -> RecordKey {
    RecordKey::new(
        JobId::new(job).unwrap(),
        TargetName::new(target).unwrap(),
        DatasetPath::parse(fs).unwrap(),
    )
}

pub fn snap(name: &str, guid: u64) -> Option<TargetSnapshot> {
    Some(TargetSnapshot::new(name, guid).unwrap())
}

pub fn worker(n: &str) -> WorkerId {
    WorkerId::new(n).unwrap()
}

/// A fresh database file in a new temporary directory.
pub fn db_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("queue.db");
    (dir, path)
}

/// A queue on `path` with a manual clock at [`t0`].
pub async fn manual(path: &std::path::Path) -> (Queue, ManualClock) {
    let clock = ManualClock::new(t0());
    let q = Queue::open(path, policy(), Arc::new(clock.clone()) as Arc<dyn Clock>)
        .await
        .unwrap();
    (q, clock)
}

/// An error of a chosen class, as a replication step would report it.
#[derive(Debug, thiserror::Error)]
#[error("step failed: {0}")]
pub struct StepError(pub &'static str, pub ErrorClass);

impl Classify for StepError {
    fn class(&self) -> ErrorClass {
        self.1
    }
}

pub fn temporary(msg: &'static str) -> zrelay_queue::LastError {
    zrelay_queue::LastError::of(&StepError(msg, ErrorClass::Temporary))
}

pub fn permanent(msg: &'static str) -> zrelay_queue::LastError {
    zrelay_queue::LastError::of(&StepError(msg, ErrorClass::Permanent))
}
