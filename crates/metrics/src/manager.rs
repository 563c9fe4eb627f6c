//! The replication manager's families (fan-out targets and the work
//! queue), registered with the others by [`crate::Metrics::new`].
//!
//! | family | type | labels | meaning |
//! |---|---|---|---|
//! | `zrelay_target_healthy` | gauge | `zrelay_job`, `target` | 1 when the target's last health check succeeded, else 0 |
//! | `zrelay_target_protecting` | gauge | `zrelay_job`, `target` | 0 once an unhealthy target's `protection_grace` expired (its cursor no longer keeps snapshots on the sender) |
//! | `zrelay_queue_records` | gauge | `zrelay_job`, `target`, `state` | work-queue records per state (`ready`, `in_progress`, `completed`, `failed`, `dead`) |
//! | `zrelay_target_steps_in_flight` | gauge | `zrelay_job`, `target` | steps running now |
//! | `zrelay_step_latency_seconds` | histogram | `zrelay_job`, `target` | how long finished steps took |
//! | `zrelay_step_delay_seconds` | histogram | `zrelay_job`, `target` | from a snapshot's creation to the start of the step that sends it |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::families::Lv;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabels {
    zrelay_job: Lv,
    target: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabels {
    zrelay_job: Lv,
    target: Lv,
    state: Lv,
}

const STEP_BUCKETS: [f64; 12] = [
    0.1,
    0.5,
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
];

fn step_hist() -> Histogram {
    Histogram::new(STEP_BUCKETS.iter().copied())
}

type Hist = Family<TargetLabels, Histogram, fn() -> Histogram>;

/// The manager's families.
pub(crate) struct Manager {
    healthy: Family<TargetLabels, Gauge>,
    protecting: Family<TargetLabels, Gauge>,
    queue: Family<QueueLabels, Gauge>,
    in_flight: Family<TargetLabels, Gauge>,
    latency: Hist,
    delay: Hist,
}

fn tl(job: &str, target: &str) -> TargetLabels {
    TargetLabels {
        zrelay_job: job.into(),
        target: target.into(),
    }
}

impl Manager {
    pub(crate) fn register(r: &mut Registry) -> Manager {
        let m = Manager {
            healthy: Family::default(),
            protecting: Family::default(),
            queue: Family::default(),
            in_flight: Family::default(),
            latency: Family::new_with_constructor(step_hist),
            delay: Family::new_with_constructor(step_hist),
        };
        r.register(
            "target_healthy",
            "1 when the target's last health check succeeded",
            m.healthy.clone(),
        );
        r.register(
            "target_protecting",
            "0 once an unhealthy target no longer keeps snapshots on the sender",
            m.protecting.clone(),
        );
        r.register(
            "queue_records",
            "Work-queue records by state",
            m.queue.clone(),
        );
        r.register(
            "target_steps_in_flight",
            "Replication steps running now",
            m.in_flight.clone(),
        );
        r.register(
            "step_latency_seconds",
            "Seconds finished replication steps took",
            m.latency.clone(),
        );
        r.register(
            "step_delay_seconds",
            "Seconds from a snapshot's creation to the start of its step",
            m.delay.clone(),
        );
        m
    }
}

impl crate::Metrics {
    /// A target's health and whether it still protects snapshots.
    pub fn target_health(&self, job: &str, target: &str, healthy: bool, protecting: bool) {
        let l = tl(job, target);
        self.manager
            .healthy
            .get_or_create(&l)
            .set(i64::from(healthy));
        self.manager
            .protecting
            .get_or_create(&l)
            .set(i64::from(protecting));
    }

    /// Work-queue records of a target in `state`.
    pub fn queue_depth(&self, job: &str, target: &str, state: &str, n: u64) {
        let l = QueueLabels {
            zrelay_job: job.into(),
            target: target.into(),
            state: state.into(),
        };
        self.manager
            .queue
            .get_or_create(&l)
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A step of the target starts (`delay`: seconds since its snapshot
    /// was created, when known).
    pub fn step_started(&self, job: &str, target: &str, delay: Option<f64>) {
        let l = tl(job, target);
        self.manager.in_flight.get_or_create(&l).inc();
        if let Some(d) = delay {
            self.manager.delay.get_or_create(&l).observe(d.max(0.0));
        }
    }

    /// A step of the target ended after `secs`.
    pub fn step_finished(&self, job: &str, target: &str, secs: f64) {
        let l = tl(job, target);
        self.manager.in_flight.get_or_create(&l).dec();
        self.manager.latency.get_or_create(&l).observe(secs);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn target_and_queue_families_are_exposed() {
        let m = crate::Metrics::new("0.1.0", "zrelay 0.1.0");
        m.target_health("fan", "east", false, true);
        m.queue_depth("fan", "east", "dead", 2);
        m.step_started("fan", "east", Some(42.0));
        m.step_started("fan", "east", None);
        m.step_finished("fan", "east", 3.0);
        let out = m.encode();
        for want in [
            r#"zrelay_target_healthy{zrelay_job="fan",target="east"} 0"#,
            r#"zrelay_target_protecting{zrelay_job="fan",target="east"} 1"#,
            r#"zrelay_queue_records{zrelay_job="fan",target="east",state="dead"} 2"#,
            r#"zrelay_target_steps_in_flight{zrelay_job="fan",target="east"} 1"#,
            r#"zrelay_step_latency_seconds_count{zrelay_job="fan",target="east"} 1"#,
            r#"zrelay_step_delay_seconds_sum{zrelay_job="fan",target="east"} 42.0"#,
        ] {
            assert!(out.contains(want), "{want}\n{out}");
        }
    }
}
