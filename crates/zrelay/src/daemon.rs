//! `zrelay daemon`, `zrelay signal`, `zrelay status` and `zrelay stdinserver`:
//! the daemon and the commands that talk to it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::info;
use zrelay_config::Config;
use zrelay_daemon::control::{self, Request, Response, Signal};
use zrelay_daemon::Daemon;
use zrelay_zfs::RealZfs;

use crate::progress;

/// A test hook: when set, the daemon's clock reads the time (Unix
/// seconds) from this file instead of the system clock.
pub const TEST_CLOCK_ENV: &str = "ZRELAY_TEST_CLOCK_FILE";

/// Where the configuration comes from: the global `--config FILE`, given
/// before or after the subcommand (as zrepl's), read by the commands that
/// need a configuration and ignored by the others.
#[derive(Args, Clone, Default)]
pub(crate) struct ConfigArg {
    /// The configuration file (default: the first that exists of
    /// /etc/zrelay/zrelay.yml, /etc/zrepl/zrepl.yml, /usr/local/etc/zrepl/zrepl.yml).
    /// Accepted before or after the subcommand.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

impl ConfigArg {
    pub(crate) fn load(&self) -> Result<Config> {
        let path = zrelay_config::find_config(self.config.as_deref())?;
        Ok(zrelay_config::load(&path)?)
    }
}

/// `zrelay daemon`.
#[derive(Args)]
pub struct DaemonArgs {}

/// Run every job of the configuration until SIGINT or SIGTERM.
pub async fn daemon(_a: DaemonArgs, cfg: &ConfigArg) -> Result<()> {
    let mut config = cfg.load()?;
    // The environment is read here, once; the daemon reads none of it.
    let env = |k: &str| std::env::var(k).ok();
    config.set_knobs(zrelay_config::Knobs::from_env(env)?);
    let ignored = zrelay_config::Knobs::ignored_set(env);
    let clock: Option<Arc<dyn zrelay_snapshot::Clock>> = std::env::var_os(TEST_CLOCK_ENV)
        .map(|path| Arc::new(zrelay_snapshot::FileClock::new(path)) as _);
    let metrics = Arc::new(zrelay_metrics::Metrics::new(
        env!("CARGO_PKG_VERSION"),
        concat!("zrelay ", env!("CARGO_PKG_VERSION")),
    ));
    let counted = metrics.clone();
    let _log = crate::logging::init(
        &config.global.logging,
        crate::logging::LogOptions {
            env_filter: std::env::var("ZRELAY_LOG").ok(),
            chrome_trace: std::env::var_os("ZRELAY_CHROME_TRACE").map(std::path::PathBuf::from),
            on_event: Some(Arc::new(move |level, job| {
                counted.log_entry(job.unwrap_or(""), crate::logging::level_label(level))
            })),
        },
    )?;
    info!(config = %config.origin.display(), jobs = config.jobs.len(), "starting");
    for w in &config.warnings {
        tracing::warn!("configuration: {w}");
    }
    for (knob, why) in ignored {
        tracing::warn!("{knob} is set but zrelay does not read it: {why}");
    }
    let cancel = CancellationToken::new();
    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down gracefully"),
            _ = int.recv() => info!("SIGINT: shutting down gracefully"),
        }
        stop.cancel();
    });
    let zfs = RealZfs::new();
    let log = zfs.log().clone();
    let mut daemon = Daemon::new(config, Arc::new(zfs))
        .with_invocation_log(log)
        .with_metrics(metrics);
    if let Some(clock) = clock {
        tracing::warn!("{TEST_CLOCK_ENV} is set: snapshotters and replication schedules follow that file's time, not the system clock (a test hook)");
        daemon = daemon.with_clock(clock);
    }
    daemon.run(cancel).await?;
    Ok(())
}

/// What to signal.
#[derive(Clone, Copy, ValueEnum)]
pub enum SignalName {
    /// Replicate (and prune) now.
    Wakeup,
    /// Abort the current invocation.
    Reset,
    /// Take a snapshot now (push, source and snap jobs; zrelay extension).
    Snapshot,
}

/// `zrelay signal`.
#[derive(Args)]
pub struct SignalArgs {
    /// The signal.
    signal: SignalName,
    /// The job.
    job: String,
    /// Wait until what the signal triggered (replication invocation or
    /// snapshot round) has finished, print its per-filesystem result, and
    /// exit non-zero if any filesystem failed.
    #[arg(long)]
    wait: bool,
}

/// Send a signal to a job of the running daemon.
pub async fn signal_cmd(a: SignalArgs, cfg: &ConfigArg) -> Result<()> {
    let config = cfg.load()?;
    let sig = match a.signal {
        SignalName::Wakeup => Signal::Wakeup,
        SignalName::Reset => Signal::Reset,
        SignalName::Snapshot => Signal::Snapshot,
    };
    if a.wait && matches!(sig, Signal::Reset) {
        bail!("--wait applies to wakeup and snapshot only");
    }
    let req = Request::Signal {
        job: a.job.clone(),
        signal: sig,
        wait: a.wait,
    };
    match control::request(&config.global.control_sockpath, &req).await? {
        Response::Signalled(s) => {
            eprintln!("{}", s.message);
            let mut ok = true;
            let mut blocked = Vec::new();
            if let Some(r) = &s.report {
                progress::summary(r);
                ok &= r.succeeded();
                blocked.extend(r.blocked().map(|f| f.fs.clone()));
            }
            if let Some(r) = &s.snapshot {
                eprint!("{}", progress::snapshot_summary(r));
                ok &= r.ok();
            }
            for p in &s.pruning {
                eprint!("{}", p.render());
                ok &= p.succeeded();
            }
            let mut behind = Vec::new();
            for t in &s.targets {
                eprintln!("target {}:", t.target);
                if let Some(why) = &t.skipped {
                    eprintln!("  {why}");
                    behind.push(t.target.as_str());
                }
                if let Some(r) = &t.report {
                    progress::summary(r);
                    if !r.succeeded() || r.blocked().next().is_some() {
                        behind.push(t.target.as_str());
                    }
                }
                for p in &t.pruning {
                    eprint!("{}", p.render());
                    ok &= p.succeeded();
                }
            }
            if !behind.is_empty() {
                bail!(
                    "job {}: not replicated to every target: {}",
                    a.job,
                    behind.join(", ")
                );
            }
            if !blocked.is_empty() {
                bail!(
                    "job {}: dead in the work queue, so not replicated: {} (`zrelay queue list` says why)",
                    a.job,
                    blocked.join(", ")
                );
            }
            if !ok {
                bail!("job {}: not every filesystem succeeded", a.job);
            }
            Ok(())
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// Output modes of `zrelay status`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusMode {
    /// A live terminal UI (the default on a terminal).
    Interactive,
    /// Plain text (the default when stdout is not a terminal).
    Dump,
    /// JSON, with the schema of docs/status-schema.md.
    Raw,
}

/// `zrelay status`.
#[derive(Args)]
pub struct StatusArgs {
    /// Output mode (default: interactive on a terminal, else dump).
    #[arg(long, value_enum)]
    mode: Option<StatusMode>,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// Dump mode: repeat every interval (e.g. 1s) until interrupted.
    /// Interactive mode: the refresh interval (default 1s). `--delay` is
    /// zrepl's spelling.
    #[arg(long, short = 'd', visible_alias = "delay", value_parser = parse_secs)]
    pub(crate) watch: Option<Duration>,
}

fn parse_secs(s: &str) -> Result<Duration> {
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| anyhow::anyhow!("invalid interval '{s}', expected seconds like 1s or 0.5"))
}

/// Ask the daemon for its status, keeping only `job` if given.
pub(crate) async fn fetch_status(
    sock: &std::path::Path,
    job: Option<&str>,
) -> Result<zrelay_daemon::status::DaemonStatus> {
    let mut st = match control::request(sock, &Request::Status).await? {
        Response::Status(s) => *s,
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    };
    if let Some(n) = job {
        st.jobs.retain(|j| j.name == n);
        if st.jobs.is_empty() {
            bail!("no job named \"{n}\"");
        }
    }
    Ok(st)
}

/// Show the running daemon's status.
pub async fn status(a: StatusArgs, cfg: &ConfigArg) -> Result<()> {
    let config = cfg.load()?;
    let sock = config.global.control_sockpath.clone();
    let tty = std::io::stdout().is_terminal();
    let mode = a.mode.unwrap_or(if tty {
        StatusMode::Interactive
    } else {
        StatusMode::Dump
    });
    if mode == StatusMode::Interactive {
        if !tty {
            bail!("--mode interactive needs a terminal; use --mode dump or --mode raw");
        }
        let every = a.watch.unwrap_or(Duration::from_secs(1));
        return crate::status_tui::run(sock, a.job, every).await;
    }
    loop {
        let st = fetch_status(&sock, a.job.as_deref()).await?;
        if mode == StatusMode::Raw {
            println!("{}", serde_json::to_string_pretty(&st)?);
            return Ok(());
        }
        if a.watch.is_some() && tty {
            print!("\x1b[2J\x1b[H");
        }
        for j in &st.jobs {
            println!("{}", progress::job_status(j));
        }
        if !st.zfs_running.is_empty() {
            println!("running zfs commands:");
            for c in &st.zfs_running {
                println!("  {}", c.cmdline);
            }
        }
        match a.watch {
            Some(d) => tokio::time::sleep(d).await,
            None => return Ok(()),
        }
    }
}

/// `zrelay stdinserver`.
#[derive(Args)]
pub struct StdinserverArgs {
    /// The client identity (one of a stdinserver serve's `client_identities`).
    identity: String,
}

/// The ssh forced command: connect stdin/stdout to the daemon's socket for
/// this identity.
pub async fn stdinserver(a: StdinserverArgs, cfg: &ConfigArg) -> Result<()> {
    let config = cfg.load()?;
    zrelay_transport::stdinserver_proxy(
        &config.global.stdinserver_sockdir,
        &a.identity,
        tokio::io::stdin(),
        tokio::io::stdout(),
    )
    .await?;
    Ok(())
}

/// `zrelay configcheck`.
#[derive(Args)]
pub struct ConfigcheckArgs {
    /// Print the validated configuration as: pretty, yaml (zrepl syntax,
    /// defaults written out) or json.
    #[arg(long, default_value = "pretty")]
    format: zrelay_config::RenderFormat,
    /// Which part to print: all, config, jobs or logging.
    #[arg(long, default_value = "all")]
    what: zrelay_config::RenderWhat,
    /// Only check; print nothing on success.
    #[arg(long, short)]
    quiet: bool,
    /// zrepl's flag to skip loading TLS certificate and key files. A no-op
    /// in zrelay, accepted for compatibility: configcheck never reads them
    /// (the daemon does, when a job starts).
    #[arg(long)]
    pub(crate) skip_cert_check: bool,
}

/// Parse and validate the configuration; exit 0 only if it is valid.
/// Warnings (hazards zrepl accepts) go to stderr as `warning: …`.
pub async fn configcheck(a: ConfigcheckArgs, cfg: &ConfigArg) -> Result<()> {
    let mut config = cfg.load()?;
    // The daemon would refuse a malformed knob at startup: so does the check.
    let env = |k: &str| std::env::var(k).ok();
    config.set_knobs(zrelay_config::Knobs::from_env(env)?);
    for (knob, why) in zrelay_config::Knobs::ignored_set(env) {
        eprintln!("warning: {knob} is set but zrelay does not read it: {why}");
    }
    // Hazards zrepl accepts: reported, not refused (exit 0).
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if !a.quiet {
        print!("{}", config.render(a.format, a.what));
    }
    eprintln!(
        "{}: valid, {} job(s)",
        config.origin.display(),
        config.jobs.len()
    );
    Ok(())
}

/// `zrelay prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// The job (push, pull or snap).
    job: String,
    /// Destroy nothing: list what would be destroyed on each side, and why
    /// each survivor survives; for a push job with `replicas` rules, also
    /// which replicas would be renamed or destroyed.
    #[arg(long)]
    dry_run: bool,
    /// Print the reports as JSON.
    #[arg(long)]
    json: bool,
}

/// Prune a job of the running daemon now (or only show what would go).
pub async fn prune(a: PruneArgs, cfg: &ConfigArg) -> Result<()> {
    let config = cfg.load()?;
    let req = Request::Prune {
        job: a.job.clone(),
        dry_run: a.dry_run,
    };
    let (reports, replicas) = match control::request(&config.global.control_sockpath, &req).await? {
        Response::Pruned { reports, replicas } => (reports, replicas),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    };
    if a.json && replicas.is_empty() {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else if a.json {
        // A job with `replicas` rules: the pruning reports and the replicas.
        let both = serde_json::json!({ "pruning": reports, "replicas": replicas });
        println!("{}", serde_json::to_string_pretty(&both)?);
    } else {
        for r in &reports {
            print!("{}", r.render());
        }
        for r in &replicas {
            print!("{}", r.render());
        }
    }
    if reports.iter().any(|r| !r.succeeded()) {
        bail!("job {}: pruning had errors", a.job);
    }
    let failed = replicas
        .iter()
        .any(|r| r.error.is_some() || r.replicas.iter().any(|l| l.error.is_some()));
    if failed {
        bail!("job {}: replica renames or destroys had errors", a.job);
    }
    Ok(())
}
