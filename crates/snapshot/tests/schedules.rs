//! Schedules under `tokio::time::pause()` with a [`TokioClock`]: periodic
//! sync-up and interval, cron fire times and skips, manual, triggers,
//! cancellation and the status.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{ds, fake_with, filter, Recording};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zrelay_fake::FakeZfs;
use zrelay_snapshot::{
    RoundCause, SnapshotReport, Snapshotter, SnapshotterState, Snapshotting, TimestampFormat,
    TokioClock, Trigger,
};
use zrelay_zfs::{SnapshotName, Zfs};

const H: Duration = Duration::from_secs(3600);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn periodic(interval: Duration) -> Snapshotting {
    Snapshotting::Periodic {
        prefix: "zrepl_".into(),
        interval,
        hooks: vec![],
        timestamp_format: TimestampFormat::Iso8601,
        timestamp_location: "UTC".into(),
    }
}

fn cron(spec: &str) -> Snapshotting {
    Snapshotting::Cron {
        prefix: "auto_".into(),
        cron: spec.into(),
        hooks: vec![],
        timestamp_format: TimestampFormat::Human,
        timestamp_location: "UTC".into(),
    }
}

/// A periodic snapshotter of `tank<` every 10 minutes on `clock`.
fn periodic_600(fake: FakeZfs, clock: Arc<dyn zrelay_snapshot::Clock>) -> Snapshotter {
    Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        periodic(secs(600)),
        Arc::new(fake),
    )
    .unwrap()
    .with_clock(clock)
}

struct Running {
    cancel: CancellationToken,
    trigger: mpsc::Sender<Trigger>,
    done: mpsc::Receiver<SnapshotReport>,
    handle: Snapshotter,
    task: tokio::task::JoinHandle<()>,
}

fn start(s: Snapshotter) -> Running {
    let cancel = CancellationToken::new();
    let (trigger, trigger_rx) = mpsc::channel(4);
    let (done_tx, done) = mpsc::channel(16);
    let handle = s.clone();
    let c = cancel.clone();
    let task = tokio::spawn(async move {
        let mut trigger_rx = trigger_rx;
        s.run(c, &mut trigger_rx, done_tx).await;
    });
    Running {
        cancel,
        trigger,
        done,
        handle,
        task,
    }
}

impl Running {
    async fn next_report(&mut self) -> SnapshotReport {
        self.done.recv().await.expect("a report")
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
        assert_eq!(
            self.handle.status().borrow().state,
            SnapshotterState::Stopped
        );
    }
}

/// The fake's `creation` of the snapshot it makes next (it derives
/// creation from the txg), after making an old `zrepl_` snapshot of `fs`.
async fn old_snapshot(fake: &FakeZfs, fs: &str, name: &str) -> SystemTime {
    fake.snapshot(&[SnapshotName::new(&ds(fs), name).unwrap()])
        .await
        .unwrap();
    let listed = fake.list(&ds(fs)).await.unwrap();
    let v = listed[0].versions.iter().find(|v| v.name == name).unwrap();
    SystemTime::UNIX_EPOCH + secs(v.creation as u64)
}

#[tokio::test(start_paused = true)]
async fn periodic_syncs_up_to_the_newest_snapshot_then_runs_every_interval() {
    let fake = fake_with(&["tank"], &["tank/a", "tank/b"]).await;
    let created = old_snapshot(&fake, "tank/a", "zrepl_old").await;
    old_snapshot(&fake, "tank/b", "other_newer").await; // another prefix: ignored
                                                        // Start 10 minutes after the old snapshot: the sync point is 50 minutes away.
    let origin = created + secs(600);
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        periodic(H),
        Arc::new(fake.clone()),
    )
    .unwrap()
    .with_clock(clock.clone());
    let mut r = start(s);
    tokio::task::yield_now().await;
    tokio::time::sleep(secs(1)).await;
    let st = r.handle.status().borrow().clone();
    assert_eq!(st.state, SnapshotterState::Waiting);
    assert_eq!(
        st.next_run,
        Some(created + H),
        "aligned to the newest zrepl_ snapshot"
    );
    for i in 0..3u32 {
        let rep = r.next_report().await;
        assert_eq!(rep.started, created + H * (i + 1), "round {i}");
        assert_eq!(rep.cause, RoundCause::Schedule);
        assert!(rep.ok(), "{rep:#?}");
        assert_eq!(rep.filesystems.len(), 3);
    }
    let st = r.handle.status().borrow().clone();
    assert_eq!(st.next_run, Some(created + H * 4));
    assert!(st.last_report.is_some() && st.last_error.is_none());
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn periodic_without_snapshots_starts_now() {
    let fake = fake_with(&["tank"], &[]).await;
    let origin = SystemTime::UNIX_EPOCH + secs(1_800_000_000);
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = periodic_600(fake, clock);
    let mut r = start(s);
    assert_eq!(r.next_report().await.started, origin);
    let second = r.next_report().await;
    assert_eq!(second.started, origin + secs(600));
    assert_eq!(second.name, "zrepl_2027-01-15T08:10:00.000Z");
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn periodic_sync_up_failure_waits_one_interval() {
    let fake = fake_with(&["tank"], &[]).await;
    let created = old_snapshot(&fake, "tank", "zrepl_future").await;
    // The clock is before the snapshot's creation: it is "from the future".
    let origin = created - secs(3600);
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = Snapshotter::new(
        "j",
        filter(&[("tank", true)]),
        periodic(secs(600)),
        Arc::new(fake),
    )
    .unwrap()
    .with_clock(clock);
    let mut r = start(s);
    tokio::time::sleep(secs(1)).await;
    let st = r.handle.status().borrow().clone();
    assert_eq!(st.state, SnapshotterState::ErrorWait);
    assert!(st.last_error.unwrap().contains("from the future"));
    assert_eq!(st.next_run, Some(origin + secs(600)));
    assert_eq!(r.next_report().await.started, origin + secs(600));
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn cron_fires_at_its_times() {
    let fake = fake_with(&["tank"], &[]).await;
    // 2024-05-14T10:07:30Z
    let origin = SystemTime::UNIX_EPOCH + secs(1_715_681_250);
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        cron("CRON_TZ=UTC */15 * * * *"),
        Arc::new(fake),
    )
    .unwrap()
    .with_clock(clock);
    let mut r = start(s);
    let names: Vec<String> = [
        r.next_report().await,
        r.next_report().await,
        r.next_report().await,
    ]
    .iter()
    .map(|x| x.name.clone())
    .collect();
    assert_eq!(
        names,
        [
            "auto_2024-05-14_10:15:00",
            "auto_2024-05-14_10:30:00",
            "auto_2024-05-14_10:45:00"
        ]
    );
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn cron_skips_fire_times_during_a_long_round() {
    let fake = fake_with(&["tank"], &[]).await;
    let mut zfs = Recording::new(fake);
    // every snapshot call takes 3 minutes and a second
    zfs.on_snapshot = Some(Arc::new(|_| {
        Box::pin(async { tokio::time::sleep(Duration::from_secs(181)).await })
    }));
    let origin = SystemTime::UNIX_EPOCH + secs(1_715_681_250); // 10:07:30
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        cron("CRON_TZ=UTC * * * * *"),
        Arc::new(zfs),
    )
    .unwrap()
    .with_clock(clock);
    let mut r = start(s);
    let first = r.next_report().await;
    assert_eq!(first.name, "auto_2024-05-14_10:08:00");
    assert_eq!(first.finished, origin + secs(30 + 181));
    tokio::time::sleep(secs(1)).await;
    let st = r.handle.status().borrow().clone();
    assert_eq!(st.skipped_while_running, 3, "10:09, 10:10 and 10:11 passed");
    assert_eq!(st.next_run, Some(origin + secs(30 + 240)), "10:12");
    assert_eq!(r.next_report().await.name, "auto_2024-05-14_10:12:00");
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn manual_runs_only_on_demand_and_triggers_do_not_move_schedules() {
    let fake = fake_with(&["tank"], &[]).await;
    let origin = SystemTime::UNIX_EPOCH + secs(1_800_000_000);
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        Snapshotting::Manual,
        Arc::new(fake.clone()),
    )
    .unwrap()
    .with_clock(clock.clone());
    let mut r = start(s);
    tokio::time::sleep(H * 48).await;
    assert!(
        r.done.try_recv().is_err(),
        "manual never snapshots by itself"
    );
    assert_eq!(r.handle.status().borrow().next_run, None);
    let (t, reply) = Trigger::with_reply();
    r.trigger.send(t).await.unwrap();
    let rep = reply.await.unwrap();
    assert_eq!(rep.cause, RoundCause::OnDemand);
    assert_eq!(rep.started, origin + H * 48);
    assert_eq!(r.next_report().await, rep);
    r.stop().await;

    // periodic: an on-demand round between two scheduled ones
    let s = Snapshotter::new("j", filter(&[("tank<", true)]), periodic(H), Arc::new(fake))
        .unwrap()
        .with_clock(clock);
    let start_at = origin + H * 48;
    let mut r = start(s);
    let first = r.next_report().await;
    // The newest zrepl_ snapshot (the manual round's) has the fake's old
    // creation time, so the sync point is now.
    assert_eq!(first.started, start_at);
    tokio::time::sleep(secs(600)).await;
    let (t, reply) = Trigger::with_reply();
    r.trigger.send(t).await.unwrap();
    assert_eq!(reply.await.unwrap().started, first.started + secs(600));
    assert_eq!(r.next_report().await.cause, RoundCause::OnDemand);
    assert_eq!(r.next_report().await.started, first.started + H);
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn snapshot_now_works_beside_a_running_schedule() {
    let fake = fake_with(&["tank"], &[]).await;
    let origin = SystemTime::UNIX_EPOCH + secs(1_800_000_000);
    let clock = Arc::new(TokioClock::starting_at(origin));
    let s = Snapshotter::new(
        "j",
        filter(&[("tank<", true)]),
        cron("CRON_TZ=UTC 0 0 * * *"),
        Arc::new(fake),
    )
    .unwrap()
    .with_clock(clock);
    let r = start(s);
    tokio::time::sleep(secs(5)).await;
    let rep = r.handle.snapshot_now().await;
    assert!(rep.ok());
    assert_eq!(r.handle.status().borrow().last_report, Some(rep));
    r.stop().await;
}

/// A wall clock that follows tokio's paused time but can be stepped, and
/// sleeps as the system clock does (rechecking at least every 10 s).
struct SteppedClock {
    inner: TokioClock,
    offset_secs: std::sync::atomic::AtomicI64,
}

impl SteppedClock {
    fn step(&self, secs: i64) {
        self.offset_secs
            .fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl zrelay_snapshot::Clock for SteppedClock {
    fn now(&self) -> SystemTime {
        let off = self.offset_secs.load(std::sync::atomic::Ordering::SeqCst);
        let t = self.inner.now();
        if off >= 0 {
            t + secs(off as u64)
        } else {
            t - secs(off.unsigned_abs())
        }
    }

    async fn sleep_until(&self, t: SystemTime) {
        while let Ok(left) = t.duration_since(self.now()) {
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(secs(10))).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn periodic_survives_the_wall_clock_stepping_back_and_forward() {
    let fake = fake_with(&["tank"], &[]).await;
    let origin = SystemTime::UNIX_EPOCH + secs(1_800_000_000);
    let clock = Arc::new(SteppedClock {
        inner: TokioClock::starting_at(origin),
        offset_secs: Default::default(),
    });
    let s = periodic_600(fake, clock.clone());
    let start_at = tokio::time::Instant::now();
    let mut r = start(s);
    assert_eq!(r.next_report().await.started, origin);
    // One minute later the clock steps back an hour: the next round still
    // comes one interval (plus the time to notice) after the step, not an
    // hour and ten minutes later.
    tokio::time::sleep(secs(60)).await;
    clock.step(-3600);
    let second = r.next_report().await;
    let waited = start_at.elapsed();
    assert!(
        waited <= secs(60 + 600 + 10),
        "the round after stepping back came after {waited:?}"
    );
    assert!(second.started < origin, "named by the stepped-back clock");
    // Then the clock steps forward two hours: one round at once, then the
    // interval again (no burst of rounds for the skipped intervals).
    tokio::time::sleep(secs(30)).await;
    let before = tokio::time::Instant::now();
    clock.step(7200);
    let third = r.next_report().await;
    assert!(before.elapsed() <= secs(10), "{:?}", before.elapsed());
    let fourth = r.next_report().await;
    assert_eq!(fourth.started, third.started + secs(600));
    assert_ne!(third.name, second.name);
    r.stop().await;
}
