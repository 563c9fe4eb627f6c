//! `zrelay monitor alive|snapshots|replication`: checks for Nagios, Icinga and the like
//! (zrepl's fork's `zrepl monitor`, bzfs's `--monitor-snapshots`).
//!
//! Invariants:
//! - The exit code is the plugin's: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN;
//!   a check that cannot look (no daemon config, no such job, zfs fails) is
//!   UNKNOWN, never OK.
//! - One line of text, `CHECK STATE - summary | perfdata`, or with `--json`
//!   one JSON object with the same facts.
//! - The judgement is a pure function of what was measured ([`judge_ages`],
//!   [`judge_alive`], [`judge_lag`]); only `run` does I/O.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use zrelay_daemon::control::{self, Request, Response};
use zrelay_daemon::status::{DaemonStatus, JobState};
use zrelay_zfs::{RealZfs, Zfs};

use crate::daemon::ConfigArg;

/// `zrelay monitor`.
#[derive(Args)]
pub struct MonitorArgs {
    #[command(subcommand)]
    check: Check,
}

#[derive(Subcommand)]
enum Check {
    /// Whether the daemon answers on its control socket (CRITICAL if not),
    /// and whether any job has failed (WARNING).
    Alive(Output),
    /// The age of the newest snapshot of each of a job's filesystems.
    Snapshots(SnapshotsArgs),
    /// The replication lag of each of a push or pull job's filesystems (and
    /// target): the age of the newest sender snapshot the receiver has, as
    /// the daemon saw it after its last invocation.
    Replication(ReplicationArgs),
}

#[derive(Args)]
struct ReplicationArgs {
    /// The push or pull job.
    #[arg(long)]
    job: String,
    /// Only this target of a fan-out push job.
    #[arg(long)]
    target: Option<String>,
    /// WARNING when a lag is longer than this (zrepl durations: 90m, 2h, 1d).
    #[arg(long, short = 'w', value_parser = duration)]
    warning: Duration,
    /// CRITICAL when a lag is longer than this, or nothing is replicated.
    #[arg(long, short = 'c', value_parser = duration)]
    critical: Duration,
    #[command(flatten)]
    out: Output,
}

#[derive(Args)]
struct Output {
    /// Print one JSON object instead of the plugin line.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SnapshotsArgs {
    /// The job (push, source or snap) whose filesystems to check.
    #[arg(long)]
    job: String,
    /// WARNING when a newest snapshot is older than this (zrepl durations: 90m, 2h, 1d).
    #[arg(long, short = 'w', value_parser = duration)]
    warning: Duration,
    /// CRITICAL when a newest snapshot is older than this.
    #[arg(long, short = 'c', value_parser = duration)]
    critical: Duration,
    /// Count only snapshots whose name starts with this prefix.
    #[arg(long)]
    prefix: Option<String>,
    #[command(flatten)]
    out: Output,
}

fn duration(s: &str) -> Result<Duration> {
    Ok(zrelay_config::units::parse_positive_duration(s)?)
}

/// A plugin state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// 0.
    Ok,
    /// 1.
    Warning,
    /// 2.
    Critical,
    /// 3.
    Unknown,
}

impl Level {
    fn code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => 3,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }
}

/// A check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The check.
    pub check: &'static str,
    /// Its state.
    pub status: Level,
    /// One line for a person.
    pub summary: String,
    /// Nagios performance data (`'label'=value[unit];warn;crit`).
    pub perfdata: Vec<String>,
}

/// How a check over per-filesystem ages words its verdict.
struct Wording {
    check: &'static str,
    /// The summary when nothing was measured.
    empty: &'static str,
    /// One filesystem with no age.
    none: fn(&str) -> String,
    /// One filesystem whose age is over a threshold (seconds).
    over: fn(&str, u64) -> String,
    /// Every filesystem within the thresholds (count, oldest seconds).
    ok: fn(usize, u64) -> String,
}

/// The newest snapshot's age of each filesystem (`None`: it has none).
pub fn judge_ages(ages: &[(String, Option<Duration>)], warn: Duration, crit: Duration) -> Verdict {
    judge(
        &Wording {
            check: "SNAPSHOTS",
            empty: "the job matches no filesystem",
            none: |fs| format!("{fs} has no snapshot"),
            over: |fs, s| format!("{fs} newest snapshot {s}s old"),
            ok: |n, s| format!("{n} filesystem(s), every newest snapshot at most {s}s old"),
        },
        ages,
        warn,
        crit,
    )
}

/// The replication lag of each filesystem (and target): `None` when the
/// receiver has none of its snapshots.
pub fn judge_lag(lags: &[(String, Option<Duration>)], warn: Duration, crit: Duration) -> Verdict {
    judge(
        &Wording {
            check: "REPLICATION",
            empty: "the daemon has not listed this job's receiver yet (no invocation has ended)",
            none: |fs| format!("{fs} has nothing replicated"),
            over: |fs, s| format!("{fs} lag {s}s"),
            ok: |n, s| format!("{n} filesystem(s), every lag at most {s}s"),
        },
        lags,
        warn,
        crit,
    )
}

/// The worst level over `ages` (none: CRITICAL), with the ones at that
/// level named, and performance data for each.
fn judge(
    w: &Wording,
    ages: &[(String, Option<Duration>)],
    warn: Duration,
    crit: Duration,
) -> Verdict {
    let perf = ages
        .iter()
        .map(|(fs, age)| {
            let v = age.map_or("U".to_string(), |a| format!("{}s", a.as_secs()));
            format!("'{fs}'={v};{};{}", warn.as_secs(), crit.as_secs())
        })
        .collect();
    let level = |age: &Option<Duration>| match age {
        None => Level::Critical,
        Some(a) if *a > crit => Level::Critical,
        Some(a) if *a > warn => Level::Warning,
        Some(_) => Level::Ok,
    };
    let worst = ages.iter().map(|(_, a)| level(a)).max();
    let Some(status) = worst else {
        return Verdict {
            check: w.check,
            status: Level::Unknown,
            summary: w.empty.into(),
            perfdata: Vec::new(),
        };
    };
    let bad: Vec<String> = ages
        .iter()
        .filter(|(_, a)| level(a) == status && status != Level::Ok)
        .map(|(fs, a)| match a {
            None => (w.none)(fs),
            Some(a) => (w.over)(fs, a.as_secs()),
        })
        .collect();
    let summary = if bad.is_empty() {
        let oldest = ages
            .iter()
            .filter_map(|(_, a)| *a)
            .max()
            .unwrap_or_default();
        (w.ok)(ages.len(), oldest.as_secs())
    } else {
        bad.join(", ")
    };
    Verdict {
        check: w.check,
        status,
        summary,
        perfdata: perf,
    }
}

/// The daemon's status, or why it could not be had.
pub fn judge_alive(status: Result<&DaemonStatus, String>) -> Verdict {
    match status {
        Err(e) => Verdict {
            check: "ALIVE",
            status: Level::Critical,
            summary: format!("the daemon does not answer: {e}"),
            perfdata: Vec::new(),
        },
        Ok(s) => {
            let failed: Vec<String> = s
                .jobs
                .iter()
                .filter(|j| j.state == JobState::Failed)
                .map(|j| format!("{} ({})", j.name, j.last_error.clone().unwrap_or_default()))
                .collect();
            Verdict {
                check: "ALIVE",
                status: if failed.is_empty() {
                    Level::Ok
                } else {
                    Level::Warning
                },
                summary: if failed.is_empty() {
                    format!("zrelay {} running {} job(s)", s.version, s.jobs.len())
                } else {
                    format!("failed job(s): {}", failed.join("; "))
                },
                perfdata: vec![
                    format!("'jobs'={}", s.jobs.len()),
                    format!("'failed'={}", failed.len()),
                ],
            }
        }
    }
}

fn print(v: &Verdict, json: bool) -> i32 {
    if json {
        println!(
            "{}",
            serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else if v.perfdata.is_empty() {
        println!("{} {} - {}", v.check, v.status.word(), v.summary);
    } else {
        println!(
            "{} {} - {} | {}",
            v.check,
            v.status.word(),
            v.summary,
            v.perfdata.join(" ")
        );
    }
    v.status.code()
}

fn unknown(check: &'static str, e: &anyhow::Error) -> Verdict {
    Verdict {
        check,
        status: Level::Unknown,
        summary: format!("{e:#}"),
        perfdata: Vec::new(),
    }
}

/// Run the check and exit with its code.
pub async fn run(a: MonitorArgs, cfg: &ConfigArg) -> ! {
    let (v, json) = match a.check {
        Check::Alive(o) => (
            alive(cfg).await.unwrap_or_else(|e| unknown("ALIVE", &e)),
            o.json,
        ),
        Check::Snapshots(s) => {
            let json = s.out.json;
            (
                snapshots(&s, cfg)
                    .await
                    .unwrap_or_else(|e| unknown("SNAPSHOTS", &e)),
                json,
            )
        }
        Check::Replication(r) => {
            let json = r.out.json;
            (
                replication(&r, cfg)
                    .await
                    .unwrap_or_else(|e| unknown("REPLICATION", &e)),
                json,
            )
        }
    };
    std::process::exit(print(&v, json))
}

async fn alive(cfg: &ConfigArg) -> Result<Verdict> {
    let config = cfg.load()?;
    let answer = control::request(&config.global.control_sockpath, &Request::Status).await;
    Ok(match answer {
        Ok(Response::Status(s)) => judge_alive(Ok(&s)),
        Ok(other) => judge_alive(Err(format!("unexpected answer {other:?}"))),
        Err(e) => judge_alive(Err(e.to_string())),
    })
}

async fn replication(a: &ReplicationArgs, cfg: &ConfigArg) -> Result<Verdict> {
    let config = cfg.load()?;
    let status = match control::request(&config.global.control_sockpath, &Request::Status).await? {
        Response::Status(s) => s,
        other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
    };
    let Some(job) = status.jobs.iter().find(|j| j.name == a.job) else {
        anyhow::bail!("the daemon has no job {:?}", a.job);
    };
    if job.kind != "push" && job.kind != "pull" {
        anyhow::bail!(
            "job {} is a {} job; only push and pull jobs replicate",
            job.name,
            job.kind
        );
    }
    let now = zrelay_replication::report::unix(SystemTime::now());
    let lag = |t: Option<u64>| t.map(|t| Duration::from_secs(now.saturating_sub(t)));
    let mut lags = Vec::new();
    if job.targets.is_empty() {
        if a.target.is_some() {
            anyhow::bail!("job {} has no targets (it is not a fan-out job)", job.name);
        }
        lags.extend(
            job.replicated
                .iter()
                .map(|f| (f.fs.clone(), lag(f.through))),
        );
    } else {
        let mut found = false;
        for t in &job.targets {
            if a.target.as_ref().is_some_and(|w| *w != t.name) {
                continue;
            }
            found = true;
            lags.extend(
                t.replicated
                    .iter()
                    .map(|f| (format!("{}:{}", t.name, f.fs), lag(f.through))),
            );
        }
        if !found {
            anyhow::bail!("job {} has no target {:?}", job.name, a.target);
        }
    }
    Ok(judge_lag(&lags, a.warning, a.critical))
}

async fn snapshots(a: &SnapshotsArgs, cfg: &ConfigArg) -> Result<Verdict> {
    let config = cfg.load()?;
    let filter = crate::testcmd::job_filter(&config, &a.job)?;
    let zfs = RealZfs::new();
    let now = SystemTime::now();
    let mut ages = Vec::new();
    for root in filter.roots_on(&zfs).await? {
        let listed = match zfs.list(&root).await {
            Ok(l) => l,
            Err(e) if e.is_does_not_exist() => continue,
            Err(e) => return Err(e.into()),
        };
        for d in listed.into_iter().filter(|d| filter.matches(&d.path)) {
            let versions = zfs.list_versions(&d.path).await?;
            let newest = versions
                .iter()
                .filter(|v| v.kind == zrelay_zfs::name::VersionKind::Snapshot)
                .filter(|v| a.prefix.as_deref().is_none_or(|p| v.name.starts_with(p)))
                .map(|v| v.creation)
                .max();
            let age = newest.map(|c| {
                let t = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(c).unwrap_or(0));
                now.duration_since(t).unwrap_or_default()
            });
            ages.push((d.path.to_string(), age));
        }
    }
    Ok(judge_ages(&ages, a.warning, a.critical))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn ages_are_judged_by_the_worst_filesystem() {
        let (w, c) = (Duration::from_secs(3600), Duration::from_secs(7200));
        let ok = judge_ages(&[("p/a".into(), s(60)), ("p/b".into(), s(600))], w, c);
        assert_eq!((ok.status, ok.status.code()), (Level::Ok, 0));
        assert!(
            ok.summary.contains("2 filesystem(s)") && ok.summary.contains("600s"),
            "{ok:?}"
        );
        assert_eq!(ok.perfdata[1], "'p/b'=600s;3600;7200");
        let warn = judge_ages(&[("p/a".into(), s(60)), ("p/b".into(), s(4000))], w, c);
        assert_eq!(
            (warn.status.code(), warn.summary.as_str()),
            (1, "p/b newest snapshot 4000s old")
        );
        let crit = judge_ages(&[("p/a".into(), s(9000)), ("p/b".into(), s(4000))], w, c);
        assert_eq!(crit.status.code(), 2);
        assert!(
            crit.summary.contains("p/a") && !crit.summary.contains("p/b"),
            "{crit:?}"
        );
        let none = judge_ages(&[("p/a".into(), None)], w, c);
        assert_eq!(none.status.code(), 2);
        assert!(none.summary.contains("has no snapshot") && none.perfdata[0].contains("=U;"));
        let empty = judge_ages(&[], w, c);
        assert_eq!(empty.status.code(), 3);
    }

    #[test]
    fn lags_are_judged_per_filesystem_and_target() {
        let (w, c) = (Duration::from_secs(600), Duration::from_secs(3600));
        let ok = judge_lag(&[("a:p/x".into(), s(30)), ("b:p/x".into(), s(90))], w, c);
        assert_eq!(ok.status, Level::Ok, "{ok:?}");
        assert_eq!(ok.check, "REPLICATION");
        assert!(ok.summary.contains("at most 90s"), "{ok:?}");
        let warn = judge_lag(&[("a:p/x".into(), s(30)), ("b:p/x".into(), s(900))], w, c);
        assert_eq!(
            (warn.status.code(), warn.summary.as_str()),
            (1, "b:p/x lag 900s")
        );
        let never = judge_lag(&[("a:p/x".into(), None)], w, c);
        assert_eq!(never.status.code(), 2);
        assert!(never.summary.contains("nothing replicated"), "{never:?}");
        assert_eq!(judge_lag(&[], w, c).status.code(), 3);
        // The wording is the check's own, not a rewrite of another's text.
        let odd = judge_lag(&[("p/class old newest snapshot ".into(), s(900))], w, c);
        assert_eq!(odd.summary, "p/class old newest snapshot  lag 900s");
    }

    #[test]
    fn alive_is_critical_without_a_daemon_and_warns_on_failed_jobs() {
        assert_eq!(
            judge_alive(Err("connection refused".into())).status.code(),
            2
        );
        let mut st = DaemonStatus {
            version: "0.1.0".into(),
            started_at: 0,
            jobs: vec![zrelay_daemon::status::JobStatus::new(
                "a",
                "push",
                String::new(),
            )],
            zfs_running: Vec::new(),
            chores: Vec::new(),
        };
        let v = judge_alive(Ok(&st));
        assert_eq!(v.status.code(), 0, "{v:?}");
        st.jobs[0].state = JobState::Failed;
        st.jobs[0].last_error = Some("address in use".into());
        let v = judge_alive(Ok(&st));
        assert_eq!(v.status.code(), 1);
        assert!(v.summary.contains("a (address in use)"), "{v:?}");
        let line = serde_json::to_string(&v).unwrap();
        assert!(line.contains("\"status\":\"WARNING\""), "{line}");
    }
}
