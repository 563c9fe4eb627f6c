//! `zrelay replicate`: one-shot replication between two dataset trees on this
//! host, through the same engine the daemon uses (local sender and receiver).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;
use zrelay_endpoint::{
    FsFilter, Guarantee, JobId, LocalReceiver, LocalSender, PlaceholderEncryption, Protection,
    RecvOptions, SendOptions,
};
use zrelay_planner::InitialPolicy;
use zrelay_replication::{Driver, DriverConfig, FsState, Report};
use zrelay_zfs::{DatasetPath, RealZfs, SendFlags, Zfs};

use crate::progress;

/// `conflict_resolution.initial_replication`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Initial {
    /// Full send of the newest snapshot only.
    MostRecent,
    /// Full send of the oldest snapshot, then every later one.
    All,
    /// Refuse; the operator seeds the receiver.
    Fail,
}

/// A `replication.protection` kind (named as in zrepl).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, ValueEnum)]
pub enum Protect {
    /// Step holds: interrupted steps can always resume.
    GuaranteeResumability,
    /// Tentative cursor: incremental replication stays possible.
    GuaranteeIncremental,
    /// No abstractions.
    GuaranteeNothing,
}

impl From<Protect> for Guarantee {
    fn from(p: Protect) -> Guarantee {
        match p {
            Protect::GuaranteeResumability => Guarantee::GuaranteeResumability,
            Protect::GuaranteeIncremental => Guarantee::GuaranteeIncremental,
            Protect::GuaranteeNothing => Guarantee::GuaranteeNothing,
        }
    }
}

/// `recv.placeholder.encryption`.
#[derive(Clone, Copy, ValueEnum)]
pub enum PhEnc {
    /// Fail when a placeholder would be created under an encrypted parent.
    Unspecified,
    /// Create placeholders with encryption=off.
    Off,
    /// Placeholders inherit the parent's encryption.
    Inherit,
}

/// Options of `zrelay replicate`.
#[derive(Args)]
pub struct ReplicateArgs {
    /// The job name; it is part of the hold tags and bookmark names, so keep it stable.
    #[arg(long)]
    pub job: String,
    /// Replicate this filesystem and its subtree (repeatable).
    #[arg(long = "from", required = true)]
    pub from: Vec<String>,
    /// Exclude this filesystem (append `<` for its subtree; repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Receive under this root: `<to>/<sender path>`. It must exist.
    #[arg(long)]
    pub to: String,
    /// `conflict_resolution.initial_replication`.
    #[arg(long, value_enum, default_value = "most-recent")]
    pub initial: Initial,
    /// `replication.protection.initial`.
    #[arg(long, value_enum, default_value = "guarantee-resumability")]
    pub protection_initial: Protect,
    /// `replication.protection.incremental`.
    #[arg(long, value_enum, default_value = "guarantee-resumability")]
    pub protection_incremental: Protect,
    /// `replication.concurrency.steps`: steps of different filesystems
    /// running at once.
    #[arg(long, default_value_t = zrelay_replication::DEFAULT_STEPS)]
    pub steps: usize,
    /// `replication.concurrency.size_estimates`: estimate stream sizes with
    /// dry-run sends, this many at once. Without it the sizes come from
    /// space properties, with no extra command.
    #[arg(long)]
    pub size_estimates: Option<usize>,
    /// `send.encrypted`: only encrypted filesystems, sent raw.
    #[arg(long)]
    pub encrypted: bool,
    /// `send.raw` (-w).
    #[arg(long)]
    pub raw: bool,
    /// `send.send_properties` (-p).
    #[arg(long)]
    pub send_properties: bool,
    /// `send.backup_properties` (-b).
    #[arg(long)]
    pub backup_properties: bool,
    /// `send.large_blocks` (-L).
    #[arg(long)]
    pub large_blocks: bool,
    /// `send.compressed` (-c).
    #[arg(long)]
    pub compressed: bool,
    /// `send.embedded_data` (-e).
    #[arg(long)]
    pub embedded_data: bool,
    /// `recv.properties.override`: PROP=VALUE (repeatable).
    #[arg(long = "override", value_name = "PROP=VALUE")]
    pub override_props: Vec<String>,
    /// `recv.properties.inherit`: PROP (repeatable).
    #[arg(long = "inherit", value_name = "PROP")]
    pub inherit_props: Vec<String>,
    /// `recv.placeholder.encryption`.
    #[arg(long, value_enum, default_value = "unspecified")]
    pub placeholder_encryption: PhEnc,
    /// Allow a full receive with -F over an existing non-placeholder filesystem.
    #[arg(long)]
    pub force_overwrite: bool,
    /// Abort a step that moves no byte for this many seconds.
    #[arg(long, default_value_t = 600)]
    pub watchdog_secs: u64,
    /// Attempts before giving up on temporary errors.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Do not print progress.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_path(what: &str, s: &str) -> Result<DatasetPath> {
    DatasetPath::parse(s).with_context(|| format!("{what} {s:?}"))
}

/// Build the endpoints and the driver from the arguments.
pub fn build(args: &ReplicateArgs, zfs: Arc<dyn Zfs>) -> Result<(Driver, CancellationToken)> {
    let job = JobId::new(&args.job)?;
    let mut rules: Vec<(String, bool)> = Vec::new();
    for f in &args.from {
        parse_path("--from", f)?;
        rules.push((format!("{f}<"), true));
    }
    for e in &args.exclude {
        rules.push((e.clone(), false));
    }
    let filter = FsFilter::new(&rules)?;
    let to = parse_path("--to", &args.to)?;
    let mut override_props = Vec::new();
    for o in &args.override_props {
        let Some((k, v)) = o.split_once('=') else {
            bail!("--override {o:?}: expected PROP=VALUE");
        };
        override_props.push((k.to_string(), v.to_string()));
    }
    let send = SendOptions {
        encrypted: args.encrypted,
        flags: SendFlags {
            raw: args.raw,
            send_properties: args.send_properties,
            backup_properties: args.backup_properties,
            large_blocks: args.large_blocks,
            compressed: args.compressed,
            embedded_data: args.embedded_data,
            saved: false,
        },
    };
    let recv = RecvOptions {
        override_props,
        inherit_props: args.inherit_props.clone(),
        placeholder_encryption: match args.placeholder_encryption {
            PhEnc::Unspecified => PlaceholderEncryption::Unspecified,
            PhEnc::Off => PlaceholderEncryption::Off,
            PhEnc::Inherit => PlaceholderEncryption::Inherit,
        },
        force_overwrite: args.force_overwrite,
        // The received filesystems' mountpoint, setuid, exec, devices and
        // shares come from the target's tree, as on a sink.
        allow_from_sender: Vec::new(),
        // A one-off replication renames and destroys no whole replicas.
        replicas: Default::default(),
    };
    let sender = LocalSender::new(zfs.clone(), job.clone(), filter, send);
    let receiver = LocalReceiver::new(zfs, job, to, recv);
    let cfg = DriverConfig {
        protection: Protection {
            initial: args.protection_initial.into(),
            incremental: args.protection_incremental.into(),
        },
        initial: match args.initial {
            Initial::MostRecent => InitialPolicy::MostRecent,
            Initial::All => InitialPolicy::All,
            Initial::Fail => InitialPolicy::Fail,
        },
        steps: args.steps.max(1),
        size_estimates: args.size_estimates.map_or(0, |n| n.max(1)),
        max_attempts: args.max_attempts.max(1),
        watchdog: Duration::from_secs(args.watchdog_secs.max(1)),
        ..DriverConfig::default()
    };
    let cancel = CancellationToken::new();
    let driver = Driver::new(cfg, Arc::new(sender), Arc::new(receiver), cancel.clone());
    Ok((driver, cancel))
}

/// Run `zrelay replicate`.
pub async fn run(args: ReplicateArgs) -> Result<()> {
    let zfs: Arc<dyn Zfs> = Arc::new(RealZfs::new());
    let (driver, cancel) = build(&args, zfs)?;
    let report = driver.report();
    let ticker = (!args.quiet).then(|| {
        let report = report.clone();
        let tty = std::io::stderr().is_terminal();
        tokio::spawn(progress::follow(report, tty))
    });
    let interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping; partial receives stay resumable");
            interrupt.cancel();
        }
    });
    let span = tracing::info_span!("job", name = %args.job);
    let final_report = tracing::Instrument::instrument(driver.run(), span).await;
    if let Some(t) = ticker {
        t.abort();
    }
    finish(&final_report, args.json, args.quiet)
}

fn finish(report: &Report, json: bool, quiet: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if !quiet {
        progress::summary(report);
    }
    if let Some(e) = &report.planning_error {
        bail!("replication failed: {e}");
    }
    let failed: Vec<&str> = report.failed().map(|f| f.fs.as_str()).collect();
    if !failed.is_empty() {
        bail!(
            "{} filesystem(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    if report
        .filesystems
        .iter()
        .all(|f| f.state == FsState::Skipped)
        && !report.filesystems.is_empty()
    {
        eprintln!("nothing replicated: no filesystem has snapshots");
    }
    Ok(())
}
