//! The database thread: owns the one connection, runs the jobs sent to it in
//! order, and writes coalesced step progress at most once a second (and
//! before every other job, so reads see the latest bytes).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;
use zrelay_zfs::Classify;

use crate::error::{HistoryError, Result};
use crate::model::StepId;
use crate::ops::{open_db, Db};

/// How long progress may sit in memory before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

type Job = Box<dyn FnOnce(&mut Db) + Send>;
type Pending = Arc<Mutex<HashMap<StepId, u64>>>;

pub(crate) struct Worker {
    sender: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    pending: Pending,
    path: PathBuf,
}

fn lock(p: &Mutex<HashMap<StepId, u64>>) -> MutexGuard<'_, HashMap<StepId, u64>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    /// Starts the thread, which opens the database; waits for the open.
    pub async fn start(path: &Path, read_only: bool) -> Result<Worker> {
        let (sender, rx) = mpsc::channel::<Job>();
        let (opened_tx, opened_rx) = oneshot::channel::<Result<()>>();
        let pending: Pending = Arc::default();
        let owned = path.to_owned();
        let thread_pending = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("zrelay-history".into())
            .spawn(move || match open_db(&owned, read_only) {
                Ok(db) => {
                    let _ = opened_tx.send(Ok(()));
                    run(db, &rx, &thread_pending);
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            })
            .map_err(|e| HistoryError::io(path, "start the database thread", e))?;
        let worker = Worker {
            sender: Some(sender),
            thread: Some(thread),
            pending,
            path: path.to_owned(),
        };
        match opened_rx.await {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(worker.closed()),
        }
    }

    fn closed(&self) -> HistoryError {
        HistoryError::Closed {
            path: self.path.clone(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database thread. The job runs even if the returned
    /// future is dropped.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            let _ = tx.send(f(db));
        });
        let sender = self.sender.as_ref().ok_or_else(|| self.closed())?;
        sender.send(job).map_err(|_| self.closed())?;
        rx.await.map_err(|_| self.closed())?
    }

    /// Notes a step's progress, to be written with the next flush.
    pub fn progress(&self, id: StepId, bytes: u64) {
        lock(&self.pending).insert(id, bytes);
    }

    /// Forgets unwritten progress of a step that is about to finish.
    pub fn forget_progress(&self, id: StepId) {
        lock(&self.pending).remove(&id);
    }
}

impl Drop for Worker {
    /// Lets the thread finish the queued jobs and the progress, then waits
    /// for it, so that a reopened database sees everything.
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(mut db: Db, rx: &mpsc::Receiver<Job>, pending: &Pending) {
    loop {
        match rx.recv_timeout(FLUSH_INTERVAL) {
            Ok(job) => {
                flush(&mut db, pending);
                if catch_unwind(AssertUnwindSafe(|| job(&mut db))).is_err() {
                    tracing::error!(path = %db.path.display(), "history: a database job panicked");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => flush(&mut db, pending),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                flush(&mut db, pending);
                return;
            }
        }
    }
}

fn flush(db: &mut Db, pending: &Pending) {
    let batch = std::mem::take(&mut *lock(pending));
    if batch.is_empty() {
        return;
    }
    if let Err(e) = db.flush_progress(&batch) {
        tracing::warn!(error = %e, "history: could not record step progress");
        if e.is_temporary() {
            let mut p = lock(pending);
            for (id, bytes) in batch {
                p.entry(id).or_insert(bytes);
            }
        }
    }
}
