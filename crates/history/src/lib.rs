//! zrelay's durable record of every replication attempt, in embedded SQLite.
//!
//! Every invocation of a job (a replication, snapshot or prune run), each
//! attempt of it (the first try and each retry) and each filesystem step of
//! an attempt (one send/receive) is recorded with its start and end, bytes,
//! state and error. The record survives restarts: at start the daemon calls
//! [`History::mark_stale_on_start`], which turns everything the previous
//! daemon left queued or in flight into [`State::Stale`]; the step is then
//! taken up again (by resumption) as a new step row, so `zrelay history`
//! shows the stale row and, later, the completed one. After a restart the
//! last-successful and lag metrics come from [`History::last_successful`] and
//! [`History::last_replicated`]; [`History::trim`] deletes old history.
//!
//! # Storage
//!
//! One SQLite file (bundled SQLite, no system library) in WAL mode with
//! `synchronous = NORMAL`, foreign keys on and a 5 s busy timeout. The
//! directory is created 0700 and the file 0600 (a looser existing file is
//! tightened). All database work runs on one dedicated thread that owns the
//! connection; the API is async and never blocks the runtime.
//! [`History::step_progress`] only notes the bytes in memory; the thread
//! writes the latest value per step at most once a second, and before any
//! other operation, so queries see current progress.
//!
//! # Schema (version 1)
//!
//! Times are milliseconds since the Unix epoch (UTC); states are one of
//! `queued`, `in_flight`, `completed`, `failed`, `dead`, `stale`.
//!
//! ```text
//! schema_version (version INTEGER)             -- one row; absent table = version 0
//! invocations (id PK, job, kind CHECK IN ('replication','snapshot','prune'),
//!              started, finished NULL, state, error NULL)
//! attempts    (id PK, invocation FK -> invocations ON DELETE CASCADE,
//!              n >= 1 UNIQUE per invocation, started, finished NULL, state, error NULL)
//! steps       (id PK, attempt FK -> attempts ON DELETE CASCADE, job,
//!              filesystem, from_snapshot NULL (full send), to_snapshot,
//!              resumed 0|1, started, finished NULL, bytes_expected NULL,
//!              bytes, state, error NULL)
//! ```
//!
//! `steps.job` repeats the invocation's job so the metrics' look-ups use one
//! index (`steps (job, filesystem, finished)`). Opening applies the missing
//! migrations from the file's version, each in an immediate transaction; a
//! file with a newer version than this build knows is refused with
//! [`HistoryError::FutureSchema`]. A file that is not an SQLite database (or
//! is damaged) gives [`HistoryError::Corrupt`], naming the path.
//!
//! Ending an invocation or attempt ends its children that are still queued
//! or in flight as `failed` ("still running when its parent ended").
//!
//! # Example
//!
//! ```no_run
//! # async fn f() -> zrelay_history::Result<()> {
//! use zrelay_history::{History, Kind, State};
//! let h = History::open("/var/lib/zrelay/history.db").await?;
//! for s in h.mark_stale_on_start().await? {
//!     eprintln!("{} {}@{} was interrupted", s.job, s.step.filesystem, s.step.to_snapshot);
//! }
//! let inv = h.begin_invocation("backup", Kind::Replication).await?;
//! let att = h.begin_attempt(inv).await?;
//! let step = h.step_started(att, "pool/a", Some("s1"), "s2", false, Some(4096)).await?;
//! h.step_progress(step, 1024);
//! h.step_finished(step, State::Completed, 4096, None).await?;
//! h.end_attempt(att, State::Completed, None).await?;
//! h.end_invocation(inv, State::Completed, None).await?;
//! # Ok(()) }
//! ```

mod error;
mod model;
mod ops;
mod render;
mod schema;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use error::{HistoryError, Result};
pub use model::{
    AttemptId, AttemptRecord, Filter, InvocationId, InvocationRecord, Kind, Row, StaleStep, State,
    StepId, StepRecord, UnknownName,
};
pub use ops::STALE_ERROR;
pub use render::{format_bytes, format_duration, render_table};
pub use schema::SCHEMA_VERSION;

use ops::StepSpec;
use worker::Worker;

/// A handle on the history database. Cheap to clone; the database thread
/// stops (after finishing queued work) when the last handle is dropped.
#[derive(Clone)]
pub struct History {
    worker: Arc<Worker>,
    now: Now,
}

/// Where a [`History`] reads the time it records and trims by.
pub type Now = Arc<dyn Fn() -> SystemTime + Send + Sync>;

fn system_now() -> Now {
    Arc::new(SystemTime::now)
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.worker.path())
            .finish()
    }
}

fn final_state(state: State) -> Result<State> {
    if state.is_final() {
        Ok(state)
    } else {
        Err(HistoryError::NotFinal { state })
    }
}

impl History {
    /// Opens the database at `path` read-write, creating the directory
    /// (0700) and the file (0600) if need be, and migrating the schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<History> {
        Ok(History {
            worker: Arc::new(Worker::start(path.as_ref(), false).await?),
            now: system_now(),
        })
    }

    /// Date records and trim by `now` instead of the system clock (the
    /// daemon passes its own clock, so a simulated clock dates history too).
    pub fn with_clock(mut self, now: Now) -> History {
        self.now = now;
        self
    }

    /// Opens an existing database read-only, for showing it while the
    /// daemon runs (`zrelay history`). Creates nothing and migrates nothing:
    /// a missing file gives [`HistoryError::Missing`], an older schema
    /// [`HistoryError::OldSchema`]. Writing operations fail.
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<History> {
        Ok(History {
            worker: Arc::new(Worker::start(path.as_ref(), true).await?),
            now: system_now(),
        })
    }

    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.worker.path().to_owned()
    }

    /// Turns every invocation, attempt and step still queued or in flight
    /// (left so by a daemon that died) into [`State::Stale`], with the error
    /// [`STALE_ERROR`]. Returns the steps, oldest first, for logging. Call it
    /// once at daemon start, before recording anything new.
    pub async fn mark_stale_on_start(&self) -> Result<Vec<StaleStep>> {
        self.worker.call(|db| db.mark_stale()).await
    }

    /// Records the start of a run of `job`, in flight.
    pub async fn begin_invocation(&self, job: &str, kind: Kind) -> Result<InvocationId> {
        let (job, now) = (job.to_owned(), (self.now)());
        self.worker
            .call(move |db| db.begin_invocation(&job, kind, now))
            .await
    }

    /// Records the end of an invocation. `state` must be final (completed,
    /// failed or dead); its attempts and steps still running end as failed.
    pub async fn end_invocation(
        &self,
        id: InvocationId,
        state: State,
        error: Option<&str>,
    ) -> Result<()> {
        let state = final_state(state)?;
        let (error, now) = (error.map(str::to_owned), (self.now)());
        self.worker
            .call(move |db| db.end_invocation(id, state, error.as_deref(), now))
            .await
    }

    /// Records the start of the next attempt (numbered 1, 2, …) of an
    /// invocation, in flight.
    pub async fn begin_attempt(&self, invocation: InvocationId) -> Result<AttemptId> {
        let now = (self.now)();
        self.worker
            .call(move |db| db.begin_attempt(invocation, now))
            .await
    }

    /// Records the end of an attempt. `state` must be final; its steps
    /// still running end as failed.
    pub async fn end_attempt(
        &self,
        id: AttemptId,
        state: State,
        error: Option<&str>,
    ) -> Result<()> {
        let state = final_state(state)?;
        let (error, now) = (error.map(str::to_owned), (self.now)());
        self.worker
            .call(move |db| db.end_attempt(id, state, error.as_deref(), now))
            .await
    }

    /// Records a step (a send of `fs` from `from`, `None` for a full send,
    /// to `to`) that starts now, in flight.
    pub async fn step_started(
        &self,
        attempt: AttemptId,
        fs: &str,
        from: Option<&str>,
        to: &str,
        resumed: bool,
        bytes_expected: Option<u64>,
    ) -> Result<StepId> {
        let spec = spec(fs, from, to, resumed, bytes_expected);
        self.step_insert(attempt, spec, State::InFlight).await
    }

    /// Records a planned step, queued; [`History::step_begin`] starts it.
    pub async fn step_queued(
        &self,
        attempt: AttemptId,
        fs: &str,
        from: Option<&str>,
        to: &str,
        resumed: bool,
        bytes_expected: Option<u64>,
    ) -> Result<StepId> {
        let spec = spec(fs, from, to, resumed, bytes_expected);
        self.step_insert(attempt, spec, State::Queued).await
    }

    async fn step_insert(
        &self,
        attempt: AttemptId,
        spec: StepSpec,
        state: State,
    ) -> Result<StepId> {
        let now = (self.now)();
        self.worker
            .call(move |db| db.step_insert(attempt, &spec, state, now))
            .await
    }

    /// Starts a queued step: in flight, its start time now.
    pub async fn step_begin(&self, id: StepId) -> Result<()> {
        let now = (self.now)();
        self.worker.call(move |db| db.step_begin(id, now)).await
    }

    /// Notes that a running step has transferred `bytes` so far. Cheap and
    /// synchronous (callable from progress callbacks): only the latest value
    /// per step is kept and written at most once a second. Progress for a
    /// step that has ended is ignored.
    pub fn step_progress(&self, id: StepId, bytes: u64) {
        self.worker.progress(id, bytes);
    }

    /// Records the end of a step with its final byte count. `state` must be
    /// final.
    pub async fn step_finished(
        &self,
        id: StepId,
        state: State,
        bytes: u64,
        error: Option<&str>,
    ) -> Result<()> {
        let state = final_state(state)?;
        self.worker.forget_progress(id);
        let (error, now) = (error.map(str::to_owned), (self.now)());
        self.worker
            .call(move |db| db.step_finished(id, state, bytes, error.as_deref(), now))
            .await
    }

    /// The rows matching `filter`, newest first (see [`Row::time`]).
    pub async fn query(&self, filter: Filter) -> Result<Vec<Row>> {
        self.worker.call(move |db| db.query(&filter)).await
    }

    /// When the newest completed replication invocation of `job` ended.
    pub async fn last_successful(&self, job: &str) -> Result<Option<SystemTime>> {
        self.last_successful_of(job, Kind::Replication).await
    }

    /// When the newest completed invocation of `job` of `kind` ended.
    pub async fn last_successful_of(&self, job: &str, kind: Kind) -> Result<Option<SystemTime>> {
        let job = job.to_owned();
        self.worker
            .call(move |db| db.last_successful(&job, kind))
            .await
    }

    /// The snapshot most recently replicated for `job` and `fs` (the
    /// `to_snapshot` of the newest completed step) and when that step ended.
    pub async fn last_replicated(
        &self,
        job: &str,
        fs: &str,
    ) -> Result<Option<(String, SystemTime)>> {
        let (job, fs) = (job.to_owned(), fs.to_owned());
        self.worker
            .call(move |db| db.last_replicated(&job, &fs))
            .await
    }

    /// Deletes invocations (with their attempts and steps) that ended more
    /// than `older_than` ago; returns how many invocations went. Running
    /// invocations are kept, and so are the newest completed invocation of
    /// each job and kind and the one holding the newest completed step of
    /// each job and filesystem, so the metrics survive a trim.
    pub async fn trim(&self, older_than: Duration) -> Result<usize> {
        let cutoff = (self.now)()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.trim_before(cutoff).await
    }

    /// Like [`History::trim`], with an absolute cutoff.
    pub async fn trim_before(&self, cutoff: SystemTime) -> Result<usize> {
        self.worker.call(move |db| db.trim_before(cutoff)).await
    }
}

fn spec(
    fs: &str,
    from: Option<&str>,
    to: &str,
    resumed: bool,
    bytes_expected: Option<u64>,
) -> StepSpec {
    StepSpec {
        filesystem: fs.to_owned(),
        from: from.map(str::to_owned),
        to: to.to_owned(),
        resumed,
        bytes_expected,
    }
}
