//! Workers on separate connections to one file race to acquire: every
//! record is taken exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use zrelay_queue::{Filter, Queue, RecordKey, State, SystemClock};

const RECORDS: usize = 120;

async fn race(workers: usize, complete: bool) {
    let (_dir, path) = db_path();
    let setup = Queue::open(&path, policy(), Arc::new(SystemClock))
        .await
        .unwrap();
    for i in 0..RECORDS {
        let target = ["a", "b", "c"][i % 3];
        setup
            .enqueue(key("backup", target, &format!("pool/fs{i}")), None)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..workers {
        // each worker opens its own handle: its own SQLite connection
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let q = Queue::open(&path, policy(), Arc::new(SystemClock))
                .await
                .unwrap();
            let me = worker(&format!("w{w}"));
            let mut taken: Vec<RecordKey> = Vec::new();
            while let Some(got) = q.acquire(&me, &Filter::default()).await.unwrap() {
                assert_eq!(got.claim.owner, me);
                if complete {
                    q.complete(&got.claim).await.unwrap();
                }
                taken.push(got.claim.key);
                tokio::task::yield_now().await;
            }
            taken
        }));
    }
    let mut owners: BTreeMap<RecordKey, Vec<usize>> = BTreeMap::new();
    let mut per_worker = Vec::new();
    for (w, t) in tasks.into_iter().enumerate() {
        let taken = t.await.unwrap();
        per_worker.push(taken.len());
        for k in taken {
            owners.entry(k).or_default().push(w);
        }
    }
    let twice: Vec<_> = owners.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "taken more than once: {twice:?}");
    assert_eq!(
        owners.len(),
        RECORDS,
        "every record taken; per worker {per_worker:?}"
    );
    let want = if complete {
        State::Completed
    } else {
        State::InProgress
    };
    let rows = setup.list(&Filter::default()).await.unwrap();
    assert!(rows.iter().all(|r| r.state == want && r.generation == 1));
    let holders: BTreeSet<_> = rows
        .iter()
        .filter_map(|r| r.lease.as_ref())
        .map(|l| l.owner.clone())
        .collect();
    assert_eq!(holders.is_empty(), complete);
    eprintln!("{workers} workers, complete={complete}: taken per worker {per_worker:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_take_the_same_record() {
    race(2, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_acquiring_and_completing_take_each_record_once() {
    race(2, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_never_take_the_same_record() {
    race(4, false).await;
}
