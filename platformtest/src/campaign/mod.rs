//! The fault campaign: randomised faults on real OpenZFS, with the same
//! invariants checked after every round (issue #15).
//!
//! Each scenario is a platform case (`Campaign*`). It runs a push daemon and
//! a sink daemon on the guest's loopback, the push reaching the sink through
//! a fault proxy ([`proxy`]), injects one fault per round, lets the push
//! converge with at most [`world::MAX_WAKEUPS`] wakeups, and checks:
//! - **convergence**: every sender snapshot is on the receiver with the same
//!   guid, and the newest file of a random filesystem has the same sha256;
//! - **nothing lost**: no snapshot that the keep rules keep disappeared, on
//!   either side (a model: the newest `last_n` of everything seen so far
//!   must still be there);
//! - **abstractions**: no `zrepl_STEP` hold on either pool, exactly one
//!   last-received hold per received filesystem, exactly one cursor and no
//!   tentative cursor per sender filesystem;
//! - **no rollback**: the sink pool's history has no `zfs rollback`, no
//!   `recv -F` and no destroyed filesystem;
//! - **bounded daemons**: RSS and open descriptors under
//!   [`world::MAX_RSS_KIB`] and [`world::MAX_FDS`].
//!
//! Rounds per scenario come from `--campaign N` (stream cuts N, kills N/2,
//! the others N/25, at least one); without it, a short campaign that still
//! runs every scenario. The seed is printed and can be replayed with
//! `--seed`.

pub mod proxy;
pub mod scenarios;
pub mod scenarios_env;
pub mod world;

use std::sync::OnceLock;
use std::time::Instant;

use crate::harness::{Body, Case};

/// The campaign's settings, from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// `--campaign N`.
    pub scale: Option<u32>,
    /// `--seed S`.
    pub seed: Option<u64>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Set once from `main`.
pub fn configure(s: Settings) {
    let _ = SETTINGS.set(s);
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or_default()
}

/// Which scenario, for its round count.
#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    Cuts,
    Kills,
    Other,
}

/// Rounds of `s` in this run.
pub fn rounds(s: Scenario) -> u32 {
    match (settings().scale, s) {
        (None, Scenario::Cuts) => 4,
        (None, Scenario::Kills) => 4,
        (None, Scenario::Other) => 1,
        (Some(n), Scenario::Cuts) => n.max(1),
        (Some(n), Scenario::Kills) => (n / 2).max(1),
        (Some(n), Scenario::Other) => (n / 25).max(1),
    }
}

/// The seed of scenario `name`: `--seed` as given (the seed a scenario
/// printed replays that scenario), or the clock mixed with the name.
pub fn seed(name: &str) -> u64 {
    if let Some(s) = settings().seed {
        return s;
    }
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    name.bytes().fold(base, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What a campaign counted; printed as its summary line.
#[derive(Debug)]
pub struct Tally {
    pub name: &'static str,
    pub seed: u64,
    pub started: Instant,
    pub rounds: u32,
    pub faults: u32,
    pub missed: u32,
    pub wakeups: usize,
    pub max_wakeups: usize,
    pub checks: usize,
    pub checksums: usize,
    pub lost: usize,
    pub leaked_holds: usize,
    pub rollbacks: usize,
    pub dead: usize,
    pub max_rss_kib: u64,
    pub max_fds: usize,
    /// Scenario-specific facts for the summary.
    pub notes: Vec<String>,
}

impl Tally {
    pub fn new(name: &'static str, seed: u64) -> Tally {
        println!("campaign {name}: seed {seed}");
        Tally {
            name,
            seed,
            started: Instant::now(),
            rounds: 0,
            faults: 0,
            missed: 0,
            wakeups: 0,
            max_wakeups: 0,
            checks: 0,
            checksums: 0,
            lost: 0,
            leaked_holds: 0,
            rollbacks: 0,
            dead: 0,
            max_rss_kib: 0,
            max_fds: 0,
            notes: Vec::new(),
        }
    }

    /// Print the summary line and fail if an invariant was ever broken (or,
    /// with `need_faults`, if no fault fired at all).
    pub fn finish(&self, need_faults: bool) -> anyhow::Result<()> {
        println!("{}", self.summary());
        anyhow::ensure!(
            (!need_faults || self.faults > 0)
                && self.lost + self.leaked_holds + self.rollbacks + self.dead == 0,
            "{}",
            self.summary()
        );
        Ok(())
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        format!(
            "campaign {}: seed {}, {} rounds converged, {} faults fired ({} rounds where none fired), {} wakeups (at most {} in a round), {} invariant checks, {} checksums; lost snapshots {}, leaked holds {}, rollbacks {}, dead queue records {}; max RSS {} KiB, max descriptors {}; {:.0}s{}",
            self.name,
            self.seed,
            self.rounds,
            self.faults,
            self.missed,
            self.wakeups,
            self.max_wakeups,
            self.checks,
            self.checksums,
            self.lost,
            self.leaked_holds,
            self.rollbacks,
            self.dead,
            self.max_rss_kib,
            self.max_fds,
            self.started.elapsed().as_secs_f64(),
            if self.notes.is_empty() {
                String::new()
            } else {
                format!("; {}", self.notes.join("; "))
            }
        )
    }
}

macro_rules! case {
    ($name:literal, $f:path) => {
        Case {
            name: $name,
            run: Body::Platform(|ctx| Box::pin($f(ctx))),
        }
    };
}

/// The campaign's cases (the short campaign without `--campaign`).
pub fn cases() -> Vec<Case> {
    vec![
        case!("CampaignStreamCuts", scenarios::stream_cuts),
        case!("CampaignKills", scenarios::kills),
        case!("CampaignPruningRace", scenarios::pruning_race),
        case!("CampaignReceiverPoolFull", scenarios_env::pool_full),
        case!("CampaignPartition", scenarios_env::partition),
        case!("CampaignClockJumps", scenarios_env::clock_jumps),
    ]
}
