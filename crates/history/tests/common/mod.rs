//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use zrelay_history::{AttemptId, History, InvocationId, Kind, State, StepId};

/// A fresh database in a new temporary directory.
pub async fn fresh() -> (tempfile::TempDir, PathBuf, History) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("history.db");
    let h = History::open(&path).await.unwrap();
    (dir, path, h)
}

/// One invocation with one attempt and one step of `fs` to `to`, ended in `state`.
pub async fn one_step(
    h: &History,
    job: &str,
    fs: &str,
    to: &str,
    state: State,
) -> (InvocationId, AttemptId, StepId) {
    let inv = h.begin_invocation(job, Kind::Replication).await.unwrap();
    let att = h.begin_attempt(inv).await.unwrap();
    let step = h
        .step_started(att, fs, None, to, false, None)
        .await
        .unwrap();
    let error = (state != State::Completed).then_some("it broke");
    h.step_finished(step, state, 100, error).await.unwrap();
    h.end_attempt(att, state, error).await.unwrap();
    h.end_invocation(inv, state, error).await.unwrap();
    (inv, att, step)
}

/// Opens the file directly, behind the crate's back.
pub fn raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}
