//! The file: permissions, schema versions, corruption, read-only opening,
//! and concurrent use.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::{fresh, one_step, raw};
use zrelay_history::{Filter, History, HistoryError, Kind, State, SCHEMA_VERSION};
use zrelay_zfs::Classify;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn directory_is_0700_and_files_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("history.db");
    let h = History::open(&path).await.unwrap();
    one_step(&h, "j", "pool/a", "s1", State::Completed).await;
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    assert_eq!(mode(&path), 0o600);
    let wal = path.with_extension("db-wal");
    assert!(wal.exists(), "WAL mode");
    assert_eq!(mode(&wal), 0o600);
    drop(h);

    // A file others could read is tightened.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _h = History::open(&path).await.unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn new_file_is_migrated_from_version_0() {
    let (_d, path, h) = fresh().await;
    drop(h);
    let db = raw(&path);
    let v: i64 = db
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let jm: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jm, "wal");
    drop(db);
    // An existing empty file is a version-0 database.
    let empty = path.with_file_name("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let h = History::open(&empty).await.unwrap();
    one_step(&h, "j", "pool/a", "s1", State::Completed).await;
    drop(h);
    // Reopening an up-to-date file changes nothing.
    let h = History::open(&path).await.unwrap();
    assert!(h.query(Filter::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn future_schema_version_is_refused_clearly() {
    let (_d, path, h) = fresh().await;
    drop(h);
    raw(&path)
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    for ro in [false, true] {
        let e = if ro {
            History::open_read_only(&path).await.unwrap_err()
        } else {
            History::open(&path).await.unwrap_err()
        };
        assert!(
            matches!(e, HistoryError::FutureSchema { found: 99, supported, .. } if supported == SCHEMA_VERSION),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("99") && msg.contains("newer"), "{msg}");
        assert!(!e.is_temporary());
    }
}

#[tokio::test]
async fn corrupt_or_unreadable_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    std::fs::write(&path, "this is not a database\n".repeat(200)).unwrap();
    let e = History::open(&path).await.unwrap_err();
    assert!(matches!(e, HistoryError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert!(!e.is_temporary());
    assert_eq!(e.path(), Some(path.as_path()));

    // A directory where the file should be.
    let e = History::open(dir.path()).await.unwrap_err();
    assert!(matches!(e, HistoryError::Io { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
}

#[tokio::test]
async fn read_only_open_reads_and_refuses_writes() {
    let (dir, path, h) = fresh().await;
    one_step(&h, "j", "pool/a", "s1", State::Completed).await;
    let ro = History::open_read_only(&path).await.unwrap();
    assert_eq!(ro.query(Filter::default()).await.unwrap().len(), 1);
    // It sees what the writer adds while both are open.
    one_step(&h, "j", "pool/b", "s1", State::Completed).await;
    assert_eq!(ro.query(Filter::default()).await.unwrap().len(), 2);
    let e = ro.begin_invocation("j", Kind::Prune).await.unwrap_err();
    assert!(matches!(e, HistoryError::Sqlite { .. }), "{e:?}");

    // And with no daemon running (no WAL files left).
    drop((h, ro));
    let ro = History::open_read_only(&path).await.unwrap();
    assert_eq!(ro.query(Filter::default()).await.unwrap().len(), 2);

    let missing = dir.path().join("nope.db");
    let e = History::open_read_only(&missing).await.unwrap_err();
    assert!(matches!(e, HistoryError::Missing { .. }), "{e:?}");
    assert!(!missing.exists(), "read-only open creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_progress_from_many_tasks() {
    let (_d, _p, h) = fresh().await;
    let inv = h.begin_invocation("j", Kind::Replication).await.unwrap();
    let att = h.begin_attempt(inv).await.unwrap();
    let shared = h
        .step_started(att, "pool/shared", None, "s1", false, None)
        .await
        .unwrap();
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let h = Arc::clone(&h);
        tasks.push(tokio::spawn(async move {
            let fs = format!("pool/fs{t}");
            let id = h
                .step_started(att, &fs, None, "s1", false, Some(100_000))
                .await
                .unwrap();
            for i in 1..=2000u64 {
                h.step_progress(id, i * 10);
                h.step_progress(shared, t * 10_000 + i);
                if i % 500 == 0 {
                    // Reads interleave and see some progress.
                    let f = Filter {
                        fs: Some(fs.clone()),
                        ..Filter::default()
                    };
                    let rows = h.query(f).await.unwrap();
                    assert!(rows[0].step.as_ref().unwrap().bytes >= 10);
                    tokio::task::yield_now().await;
                }
            }
            (id, 20_000u64)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let rows = h.query(Filter::default()).await.unwrap();
    for (id, last) in &ids {
        let s = rows
            .iter()
            .filter_map(|r| r.step.as_ref())
            .find(|s| s.id == *id)
            .unwrap();
        assert_eq!(s.bytes, *last, "the last progress of {}", s.filesystem);
        assert_eq!(s.state, State::InFlight);
    }
    let shared_bytes = rows
        .iter()
        .filter_map(|r| r.step.as_ref())
        .find(|s| s.id == shared)
        .unwrap()
        .bytes;
    assert!(
        shared_bytes % 10_000 == 2000,
        "one task's last value: {shared_bytes}"
    );

    // Finishing wins over progress, before and after.
    let (id0, _) = ids[0];
    h.step_progress(id0, 1);
    h.step_finished(id0, State::Completed, 99_999, None)
        .await
        .unwrap();
    h.step_progress(id0, 5);
    let f = Filter {
        fs: Some("pool/fs0".into()),
        ..Filter::default()
    };
    let s = h.query(f).await.unwrap().remove(0).step.unwrap();
    assert_eq!((s.bytes, s.state), (99_999, State::Completed));
}
