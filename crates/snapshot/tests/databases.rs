//! The database hooks against real servers started by the tests
//! (see `dbservers`): `postgres-checkpoint` must run a CHECKPOINT, and
//! `mysql-lock-tables` must hold the global read lock while the snapshot is
//! taken and release it afterwards.

mod common;
mod dbservers;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{fake_with, filter, Recording};
use dbservers::{skipped, Mariadb, Postgres};
use mysql_async::prelude::Queryable;
use tokio_postgres::NoTls;
use zrelay_snapshot::hooks::mysql::parse_dsn;
use zrelay_snapshot::{
    Hook, HookEdge, HookKind, HookStatus, Snapshotter, Snapshotting, TimestampFormat,
};

fn snapshotting(hook: Hook) -> Snapshotting {
    Snapshotting::Periodic {
        prefix: "zrepl_".into(),
        interval: Duration::from_secs(600),
        hooks: vec![hook],
        timestamp_format: TimestampFormat::Dense,
        timestamp_location: "UTC".into(),
    }
}

fn db_hook(kind: HookKind) -> Hook {
    Hook {
        kind,
        timeout: Duration::from_secs(20),
        filesystems: filter(&[("tank/db", true)]),
        err_is_fatal: true,
    }
}

async fn pg_client(dsn: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Requested checkpoints so far (PostgreSQL 17 moved the counter).
async fn checkpoints(dsn: &str) -> i64 {
    let c = pg_client(dsn).await;
    for q in [
        "SELECT num_requested FROM pg_stat_checkpointer",
        "SELECT checkpoints_req FROM pg_stat_bgwriter",
    ] {
        if let Ok(row) = c.query_one(q, &[]).await {
            return row.get(0);
        }
    }
    panic!("no checkpoint counter found");
}

#[tokio::test]
async fn postgres_checkpoint_hook_checkpoints() {
    let Some(pg) = Postgres::start().unwrap() else {
        return skipped("PostgreSQL (initdb, pg_ctl)", "postgresql");
    };
    let admin = pg.dsn("postgres");
    let before = checkpoints(&admin).await;

    let zfs = Recording::new(fake_with(&["tank"], &["tank/db", "tank/other"]).await);
    let hook = db_hook(HookKind::PostgresCheckpoint { dsn: admin.clone() });
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        snapshotting(hook),
        Arc::new(zfs.clone()),
    )
    .unwrap();
    let r = s.snapshot_now().await;
    assert!(r.ok(), "{r:#?}\n{}", pg.log());
    let db = r
        .filesystems
        .iter()
        .find(|f| f.fs.as_str() == "tank/db")
        .unwrap();
    assert_eq!(db.hooks.len(), 2);
    assert_eq!(
        (db.hooks[0].edge, db.hooks[0].status),
        (HookEdge::Pre, HookStatus::Ok)
    );
    assert!(r
        .filesystems
        .iter()
        .find(|f| f.fs.as_str() == "tank")
        .unwrap()
        .hooks
        .is_empty());

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = checkpoints(&admin).await;
    while after <= before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = checkpoints(&admin).await;
    }
    assert_eq!(after, before + 1, "exactly one CHECKPOINT was requested");

    // A role that may not CHECKPOINT: the fatal hook keeps tank/db unsnapshotted.
    pg_client(&admin)
        .await
        .batch_execute("CREATE ROLE plain LOGIN")
        .await
        .unwrap();
    let hook = db_hook(HookKind::PostgresCheckpoint {
        dsn: pg.dsn("plain"),
    });
    let zfs = Recording::new(fake_with(&["tank"], &["tank/db", "tank/other"]).await);
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        snapshotting(hook),
        Arc::new(zfs.clone()),
    )
    .unwrap();
    let r = s.snapshot_now().await;
    let db = r
        .filesystems
        .iter()
        .find(|f| f.fs.as_str() == "tank/db")
        .unwrap();
    assert!(!db.snapshotted, "{db:#?}");
    let err = db.hooks[0].error.as_deref().unwrap();
    assert!(
        err.contains("CHECKPOINT failed") && err.contains("CHECKPOINT"),
        "{err}"
    );
    assert!(
        err.contains("superuser") || err.contains("pg_checkpoint"),
        "{err}"
    );
    let calls = zfs.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].iter().all(|n| !n.starts_with("tank/db@")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn mysql_lock_tables_hook_holds_the_read_lock_during_the_snapshot() {
    let my = match Mariadb::start().await {
        Ok(Some(m)) => m,
        Ok(None) => return skipped("MariaDB (mariadb-install-db, mariadbd)", "mariadb-server"),
        Err(e) => panic!("{e}"),
    };
    let opts = parse_dsn(&my.dsn()).unwrap();
    let mut setup = mysql_async::Conn::new(opts.clone()).await.unwrap();
    setup.query_drop("CREATE DATABASE hooktest").await.unwrap();
    setup
        .query_drop("CREATE TABLE hooktest.t (i INT) ENGINE=InnoDB")
        .await
        .unwrap();

    // While the snapshot is taken, a write must wait for the global read lock.
    let during: Arc<Mutex<Vec<String>>> = Arc::default();
    let fake = fake_with(&["tank"], &["tank/db"]).await;
    let mut zfs = Recording::new(fake);
    let (seen, o) = (during.clone(), opts.clone());
    zfs.on_snapshot = Some(Arc::new(move |_| {
        let (seen, o) = (seen.clone(), o.clone());
        Box::pin(async move {
            let mut w = mysql_async::Conn::new(o).await.unwrap();
            w.query_drop("SET SESSION lock_wait_timeout = 1")
                .await
                .unwrap();
            let r = w.query_drop("INSERT INTO hooktest.t VALUES (1)").await;
            seen.lock().unwrap().push(format!("{r:?}"));
            let _ = w.disconnect().await;
        })
    }));
    let hook = db_hook(HookKind::MysqlLockTables { dsn: my.dsn() });
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        snapshotting(hook),
        Arc::new(zfs.clone()),
    )
    .unwrap();
    let r = s.snapshot_now().await;
    assert!(r.ok(), "{r:#?}\n{}", my.log());
    let seen = during.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].contains("Lock wait timeout"),
        "the write was not blocked: {seen:?}"
    );
    let db = r
        .filesystems
        .iter()
        .find(|f| f.fs.as_str() == "tank/db")
        .unwrap();
    let steps: Vec<_> = db.hooks.iter().map(|h| (h.edge, h.status)).collect();
    assert_eq!(
        steps,
        [
            (HookEdge::Pre, HookStatus::Ok),
            (HookEdge::Post, HookStatus::Ok)
        ]
    );

    // Released afterwards: the same write goes through at once.
    setup
        .query_drop("SET SESSION lock_wait_timeout = 1")
        .await
        .unwrap();
    setup
        .query_drop("INSERT INTO hooktest.t VALUES (2)")
        .await
        .unwrap();
    let n: Option<i64> = setup
        .query_first("SELECT COUNT(*) FROM hooktest.t")
        .await
        .unwrap();
    assert_eq!(n, Some(1), "only the write after the snapshot happened");
    let _ = setup.disconnect().await;

    // An unreachable server fails the fatal hook: no snapshot of tank/db.
    let bad = format!("root@unix({}.nope)/", my.socket.display());
    let hook = db_hook(HookKind::MysqlLockTables { dsn: bad });
    let zfs = Recording::new(fake_with(&["tank"], &["tank/db"]).await);
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        snapshotting(hook),
        Arc::new(zfs),
    )
    .unwrap();
    let r = s.snapshot_now().await;
    let db = r
        .filesystems
        .iter()
        .find(|f| f.fs.as_str() == "tank/db")
        .unwrap();
    assert!(!db.snapshotted);
    assert!(
        db.hooks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("FLUSH TABLES WITH READ LOCK"),
        "{db:#?}"
    );
    assert!(
        r.filesystems
            .iter()
            .find(|f| f.fs.as_str() == "tank")
            .unwrap()
            .snapshotted
    );
}
