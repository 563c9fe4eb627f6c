//! The executor against the fake ZFS through the local endpoints, after a
//! replication through the endpoints: batching, holds, failures, dry run, protection.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{
    BatchResult, CommitReq, DestroyOutcome, EndpointError, FsFilter, FsListing, FsVersion, JobId,
    LocalReceiver, LocalSender, PrepareReq, Receiver, RecvOptions, SendOptions, Sender, StepReq,
};
use zrelay_fake::{FakeOp, FakeZfs};
use zrelay_planner::InitialPolicy;
use zrelay_pruning::{
    prune, KeepRule, PruneOptions, PruneReport, Side, SideKind, PROTECTED_BASE, PROTECTED_NEWEST,
};
use zrelay_replication::{Driver, DriverConfig};
use zrelay_zfs::process::SendStream;
use zrelay_zfs::{DatasetPath, SnapshotName, Zfs};

type R<T> = zrelay_endpoint::Result<T>;

/// Records every `destroy_snapshots` call; fails those of `fail_fs`.
struct Wrapped {
    inner: Arc<dyn Sender>,
    calls: Mutex<Vec<(String, Vec<String>)>>,
    fail_fs: Option<DatasetPath>,
}

#[async_trait]
impl Sender for Wrapped {
    async fn list_filesystems(&self) -> R<Vec<FsListing>> {
        self.inner.list_filesystems().await
    }
    async fn estimate(&self, steps: &[StepReq], c: usize) -> R<Vec<R<u64>>> {
        self.inner.estimate(steps, c).await
    }
    async fn prepare(&self, r: &[PrepareReq]) -> R<BatchResult<EndpointError>> {
        self.inner.prepare(r).await
    }
    async fn send(&self, step: &StepReq) -> R<Box<dyn SendStream>> {
        self.inner.send(step).await
    }
    async fn commit(&self, r: &[CommitReq]) -> R<BatchResult<EndpointError>> {
        self.inner.commit(r).await
    }
    async fn abort(&self, f: &[DatasetPath]) -> R<BatchResult<EndpointError>> {
        self.inner.abort(f).await
    }
    async fn list_versions(&self, fs: &DatasetPath) -> R<Vec<FsVersion>> {
        self.inner.list_versions(fs).await
    }
    async fn replication_cursor(&self, fs: &DatasetPath) -> R<Option<FsVersion>> {
        self.inner.replication_cursor(fs).await
    }
    async fn destroy_snapshots(&self, fs: &DatasetPath, snaps: &[String]) -> R<DestroyOutcome> {
        let short = fs.last_component().to_string();
        self.calls.lock().unwrap().push((short, snaps.to_vec()));
        if self.fail_fs.as_ref() == Some(fs) {
            return Err(EndpointError::Transport("connection reset".into()));
        }
        self.inner.destroy_snapshots(fs, snaps).await
    }
    fn describe(&self) -> String {
        "wrapped".into()
    }
}

struct World {
    zfs: Arc<FakeZfs>,
    src: DatasetPath,
    dst: DatasetPath,
}

impl World {
    /// `pool/src/{a,b}` with snapshots `s1..=s<n>` each, replicated to `pool/dst`
    /// when `replicate`.
    async fn new(n: usize, replicate: bool) -> World {
        let zfs = Arc::new(FakeZfs::new());
        let pool = zfs.add_pool("pool").unwrap();
        let src = pool.child("src").unwrap();
        let dst = pool.child("dst").unwrap();
        zfs.create(&src, &[]).await.unwrap();
        zfs.create(&dst, &[]).await.unwrap();
        let w = World { zfs, src, dst };
        for f in ["a", "b"] {
            w.zfs.create(&w.fs(f), &[]).await.unwrap();
            for i in 1..=n {
                w.snap(f, &format!("s{i}")).await;
            }
        }
        if replicate {
            w.replicate().await;
        }
        w
    }

    fn fs(&self, f: &str) -> DatasetPath {
        self.src.child(f).unwrap()
    }

    async fn snap(&self, f: &str, name: &str) {
        let fs = self.fs(f);
        self.zfs.write(&fs, 10_000).unwrap();
        let snap = SnapshotName::new(&fs, name).unwrap();
        self.zfs.snapshot(&[snap]).await.unwrap();
    }

    fn sender(&self) -> Arc<dyn Sender> {
        Arc::new(LocalSender::new(
            self.zfs.clone(),
            JobId::new("t").unwrap(),
            FsFilter::subtree(&self.src),
            SendOptions::default(),
        ))
    }

    fn wrapped(&self, fail: Option<&str>) -> Arc<Wrapped> {
        Arc::new(Wrapped {
            inner: self.sender(),
            calls: Mutex::new(Vec::new()),
            fail_fs: fail.map(|f| self.fs(f)),
        })
    }

    fn receiver(&self) -> Arc<dyn Receiver> {
        Arc::new(LocalReceiver::new(
            self.zfs.clone(),
            JobId::new("t").unwrap(),
            self.dst.clone(),
            RecvOptions::default(),
        ))
    }

    /// Replicate every snapshot of every filesystem the receiver lacks with
    /// the replication driver (initial policy `all`): steps, then the
    /// receiver's last-received hold and the sender's cursor.
    async fn replicate(&self) {
        let cfg = DriverConfig {
            initial: InitialPolicy::All,
            ..DriverConfig::default()
        };
        let r = Driver::new(
            cfg,
            self.sender(),
            self.receiver(),
            CancellationToken::new(),
        )
        .run()
        .await;
        assert!(r.succeeded(), "{r:#?}");
    }

    async fn names(&self, fs: &DatasetPath, snapshots: bool) -> Vec<String> {
        let vs = self.zfs.list_versions(fs).await.unwrap();
        vs.iter()
            .filter(|v| (v.kind == zrelay_zfs::name::VersionKind::Snapshot) == snapshots)
            .map(|v| v.name.clone())
            .collect()
    }

    async fn guid(&self, f: &str, snap: &str) -> u64 {
        let vs = self.zfs.list_versions(&self.fs(f)).await.unwrap();
        vs.iter().find(|v| v.name == snap).unwrap().guid
    }
}

/// `rules`, compiled.
fn rules(rules: Vec<KeepRule>) -> zrelay_pruning::KeepRules {
    zrelay_pruning::KeepRules::new(rules).unwrap()
}

fn sender_rules() -> Vec<KeepRule> {
    vec![
        KeepRule::NotReplicated {
            keep_snapshot_at_cursor: true,
        },
        KeepRule::LastN {
            count: 1,
            regex: None,
        },
    ]
}

fn fs_report<'a>(r: &'a PruneReport, w: &World, f: &str) -> &'a zrelay_pruning::FsPruneReport {
    r.fs(&w.fs(f))
        .unwrap_or_else(|| panic!("{f} not in {r:#?}"))
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// After replicating s1..s5 and snapshotting s6, s7: the sender keeps s5
/// (cursor) and s6, s7 (not replicated); s1..s4 go.
async fn sender_world() -> World {
    let w = World::new(5, true).await;
    for f in ["a", "b"] {
        w.snap(f, "s6").await;
        w.snap(f, "s7").await;
    }
    w
}

#[tokio::test]
async fn sender_destroys_in_one_call_per_filesystem_or_in_batches() {
    for (max_batch, want_calls) in [
        (0usize, vec![strs(&["s1", "s2", "s3", "s4"])]),
        (3, vec![strs(&["s1", "s2", "s3"]), strs(&["s4"])]),
    ] {
        let w = sender_world().await;
        let ep = w.wrapped(None);
        w.zfs.reset_calls();
        let opts = PruneOptions {
            max_batch,
            ..PruneOptions::default()
        };
        let r = prune(&Side::Sender(ep.clone()), &rules(sender_rules()), &opts).await;
        assert!(r.succeeded(), "{r:#?}");
        let calls = ep.calls.lock().unwrap().clone();
        for f in ["a", "b"] {
            let mine: Vec<Vec<String>> = calls
                .iter()
                .filter(|(fs, _)| fs == f)
                .map(|(_, n)| n.clone())
                .collect();
            assert_eq!(mine, want_calls, "max_batch {max_batch}, fs {f}");
            let fr = fs_report(&r, &w, f);
            assert_eq!(fr.destroyed, strs(&["s1", "s2", "s3", "s4"]));
            let kept: Vec<&str> = fr.kept.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(kept, ["s5", "s6", "s7"]);
            assert_eq!(w.names(&w.fs(f), true).await, strs(&["s5", "s6", "s7"]));
            // the cursor bookmark is untouched
            assert!(!w.names(&w.fs(f), false).await.is_empty());
        }
        // `src` itself has no snapshots: no call for it
        let zfs_calls = w.zfs.calls(FakeOp::DestroySnapshots);
        assert_eq!(zfs_calls as usize, calls.len(), "{calls:?}");
        let reasons = &fs_report(&r, &w, "a").kept[0].1;
        assert!(
            reasons
                .contains(&"not_replicated: at the cursor (keep_snapshot_at_cursor)".to_string()),
            "{reasons:?}"
        );
    }
}

#[tokio::test]
async fn held_snapshot_is_reported_kept_never_forced() {
    let w = sender_world().await;
    let s2 = SnapshotName::new(&w.fs("a"), "s2").unwrap();
    w.zfs.hold(&s2, "mine").await.unwrap();
    let r = prune(
        &Side::Sender(w.sender()),
        &rules(sender_rules()),
        &PruneOptions::default(),
    )
    .await;
    let fr = fs_report(&r, &w, "a");
    assert!(fr.error.is_none(), "{fr:#?}");
    assert_eq!(fr.destroyed, strs(&["s1", "s3", "s4"]));
    let (name, why) = &fr.kept[0];
    assert_eq!(name, "s2");
    assert!(
        why[0].contains("held") && why[0].contains("never forced"),
        "{why:?}"
    );
    assert!(w.zfs.exists(&s2.full()));
    assert!(r
        .render()
        .contains("@s2  (kept: no rule keeps it, but zfs did not destroy it"));
}

#[tokio::test]
async fn one_failing_filesystem_does_not_stop_the_others() {
    let w = sender_world().await;
    let ep = w.wrapped(Some("a"));
    let r = prune(
        &Side::Sender(ep),
        &rules(sender_rules()),
        &PruneOptions::default(),
    )
    .await;
    assert!(!r.succeeded());
    let a = fs_report(&r, &w, "a");
    assert!(
        a.error.as_deref().unwrap().contains("connection reset"),
        "{a:#?}"
    );
    assert!(a.destroyed.is_empty());
    assert_eq!(a.kept.len(), 7, "everything survives on a: {a:#?}");
    assert!(a.kept[0].1[0].contains("destroying failed"));
    let b = fs_report(&r, &w, "b");
    assert!(b.error.is_none());
    assert_eq!(b.destroyed, strs(&["s1", "s2", "s3", "s4"]));
    assert_eq!(w.names(&w.fs("a"), true).await.len(), 7);
}

#[tokio::test]
async fn dry_run_destroys_nothing() {
    let w = sender_world().await;
    w.zfs.reset_calls();
    let opts = PruneOptions {
        dry_run: true,
        ..PruneOptions::default()
    };
    let r = prune(&Side::Sender(w.sender()), &rules(sender_rules()), &opts).await;
    assert!(r.succeeded() && r.dry_run, "{r:#?}");
    assert_eq!(w.zfs.calls(FakeOp::DestroySnapshots), 0);
    for f in ["a", "b"] {
        let fr = fs_report(&r, &w, f);
        assert_eq!(fr.would_destroy, strs(&["s1", "s2", "s3", "s4"]));
        assert!(fr.destroyed.is_empty());
        assert_eq!(w.names(&w.fs(f), true).await.len(), 7);
    }
    let text = r.render();
    assert!(text.contains("sender pruning (dry run)"), "{text}");
    assert!(
        text.contains("@s1  (would destroy: no rule keeps it)"),
        "{text}"
    );
    assert!(
        text.contains("@s7  (kept: not_replicated: newer than the cursor; last_n 1)"),
        "{text}"
    );
}

#[tokio::test]
async fn receiver_keeps_the_protected_base_and_the_newest_and_skips_placeholders() {
    let w = World::new(5, true).await;
    let keep_nothing = vec![KeepRule::Regex {
        regex: "^nothing$".into(),
        negate: false,
    }];
    let s3 = w.guid("a", "s3").await;
    let opts = PruneOptions {
        protect: vec![(w.fs("a"), s3)],
        ..PruneOptions::default()
    };
    let r = prune(&Side::Receiver(w.receiver()), &rules(keep_nothing), &opts).await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(r.side, SideKind::Receiver);
    let a = fs_report(&r, &w, "a");
    assert_eq!(a.destroyed, strs(&["s1", "s2", "s4"]));
    assert_eq!(
        a.kept,
        vec![
            ("s3".to_string(), vec![PROTECTED_BASE.to_string()]),
            ("s5".to_string(), vec![PROTECTED_NEWEST.to_string()]),
        ]
    );
    let b = fs_report(&r, &w, "b");
    assert_eq!(b.destroyed, strs(&["s1", "s2", "s3", "s4"]));
    // `pool/src` only exists on the receiver as a placeholder parent
    let skipped: Vec<_> = r
        .filesystems
        .iter()
        .filter(|f| f.skipped.is_some())
        .collect();
    assert!(
        skipped
            .iter()
            .all(|f| f.destroyed.is_empty() && f.kept.is_empty()),
        "{skipped:#?}"
    );
    assert!(
        r.filesystems
            .iter()
            .any(|f| f.skipped.as_deref() == Some("filesystem is placeholder")),
        "{r:#?}"
    );
    // the next incremental still works from the kept base
    for f in ["a", "b"] {
        w.snap(f, "s6").await;
    }
    w.replicate().await;
    let ra = w.dst.join_relative("pool/src/a").unwrap();
    assert_eq!(w.names(&ra, true).await, strs(&["s3", "s5", "s6"]));
    // the report serializes with zrepl's side names
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"side\":\"receiver\""), "{json}");
    let back: PruneReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

#[tokio::test]
async fn cursor_is_required_as_zrepl_requires_it() {
    // sender without a replication: every filesystem is refused, nothing destroyed
    let w = World::new(3, false).await;
    let r1 = vec![KeepRule::LastN {
        count: 1,
        regex: None,
    }];
    let r = prune(
        &Side::Sender(w.sender()),
        &rules(r1.clone()),
        &PruneOptions::default(),
    )
    .await;
    let a = fs_report(&r, &w, "a");
    assert!(
        a.error
            .as_deref()
            .unwrap()
            .contains("one successful replication is required"),
        "{a:#?}"
    );
    assert_eq!(w.names(&w.fs("a"), true).await.len(), 3);
    // a snap job prunes without a cursor, but refuses not_replicated
    let r = prune(
        &Side::Local(w.sender()),
        &rules(r1),
        &PruneOptions::default(),
    )
    .await;
    assert!(r.succeeded(), "{r:#?}");
    assert_eq!(fs_report(&r, &w, "a").destroyed, strs(&["s1", "s2"]));
    let r = prune(
        &Side::Local(w.sender()),
        &rules(sender_rules()),
        &PruneOptions::default(),
    )
    .await;
    assert!(
        r.error.as_deref().unwrap().contains("not_replicated"),
        "{r:#?}"
    );
    // receiver: not_replicated needs the sender's cursor GUID
    let w = World::new(2, true).await;
    let r = prune(
        &Side::Receiver(w.receiver()),
        &rules(sender_rules()),
        &PruneOptions::default(),
    )
    .await;
    let a = fs_report(&r, &w, "a");
    assert!(
        a.error
            .as_deref()
            .unwrap()
            .contains("one successful replication"),
        "{a:#?}"
    );
}

/// A job's pruning protects the receiver's copy of the sender's cursor
/// snapshot (the next incremental's base) even when it is not the
/// receiver's newest, whether the caller passes a listing of the sender or
/// not; without a listing of the sender, neither side is pruned.
#[tokio::test]
async fn job_pruner_keeps_the_cursor_base_on_the_receiver_whoever_calls() {
    let w = World::new(5, true).await;
    let ra = w.dst.join_relative("pool/src/a").unwrap();
    // a snapshot taken on the receiver: the newest there, not the cursor
    w.zfs
        .snapshot(&[SnapshotName::new(&ra, "local").unwrap()])
        .await
        .unwrap();
    let listing = w.sender().list_filesystems().await.unwrap();
    let s5 = w.guid("a", "s5").await;
    let protect = zrelay_pruning::receiver_protection(&listing);
    assert!(protect.contains(&(w.fs("a"), s5)), "{protect:?}");
    assert!(protect.iter().all(|(fs, _)| fs != &w.src), "{protect:?}");
    let keep_all = rules(vec![KeepRule::LastN {
        count: 100,
        regex: None,
    }]);
    let keep_nothing = rules(vec![KeepRule::Regex {
        regex: "^nothing$".into(),
        negate: false,
    }]);
    let pruner = zrelay_pruning::JobPruner::pair(
        w.sender(),
        w.receiver(),
        keep_all.clone(),
        keep_nothing.clone(),
        0,
    );
    let dry = pruner.run(true, Some(listing)).await;
    let dry_a = fs_report(&dry[1], &w, "a");
    assert_eq!(
        dry_a.would_destroy,
        strs(&["s1", "s2", "s3", "s4"]),
        "{dry_a:#?}"
    );
    let r = pruner.run(false, None).await;
    assert_eq!(r.len(), 2);
    assert!(r[0].succeeded() && r[1].succeeded(), "{r:#?}");
    let a = fs_report(&r[1], &w, "a");
    assert_eq!(a.destroyed, strs(&["s1", "s2", "s3", "s4"]));
    assert_eq!(
        a.kept,
        vec![
            ("s5".to_string(), vec![PROTECTED_BASE.to_string()]),
            ("local".to_string(), vec![PROTECTED_NEWEST.to_string()]),
        ]
    );
    assert_eq!(w.names(&ra, true).await, strs(&["s5", "local"]));
    // a sender that cannot be listed: nothing is pruned, both reports say why
    let failing = Arc::new(ListFails(w.sender()));
    let pruner = zrelay_pruning::JobPruner::pair(failing, w.receiver(), keep_all, keep_nothing, 0);
    let r = pruner.run(false, None).await;
    assert!(
        r.iter().all(|p| p
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cannot list the sender's replication cursors"))),
        "{r:#?}"
    );
    assert_eq!(w.names(&ra, true).await, strs(&["s5", "local"]));
}

/// A sender whose listing fails.
struct ListFails(Arc<dyn Sender>);

#[async_trait]
impl Sender for ListFails {
    async fn list_filesystems(&self) -> R<Vec<FsListing>> {
        Err(EndpointError::Transport("connection refused".into()))
    }
    async fn estimate(&self, steps: &[StepReq], c: usize) -> R<Vec<R<u64>>> {
        self.0.estimate(steps, c).await
    }
    async fn prepare(&self, r: &[PrepareReq]) -> R<BatchResult<EndpointError>> {
        self.0.prepare(r).await
    }
    async fn send(&self, step: &StepReq) -> R<Box<dyn SendStream>> {
        self.0.send(step).await
    }
    async fn commit(&self, r: &[CommitReq]) -> R<BatchResult<EndpointError>> {
        self.0.commit(r).await
    }
    async fn abort(&self, f: &[DatasetPath]) -> R<BatchResult<EndpointError>> {
        self.0.abort(f).await
    }
    async fn list_versions(&self, fs: &DatasetPath) -> R<Vec<FsVersion>> {
        self.0.list_versions(fs).await
    }
    async fn replication_cursor(&self, fs: &DatasetPath) -> R<Option<FsVersion>> {
        self.0.replication_cursor(fs).await
    }
    async fn destroy_snapshots(&self, fs: &DatasetPath, snaps: &[String]) -> R<DestroyOutcome> {
        self.0.destroy_snapshots(fs, snaps).await
    }
    fn describe(&self) -> String {
        "list-fails".into()
    }
}
