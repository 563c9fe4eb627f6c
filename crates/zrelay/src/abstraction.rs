//! `zrelay zfs-abstraction list|release-all|release-stale|create step`:
//! zrepl's command for the holds and bookmarks replication leaves on ZFS
//! (step holds, last-received holds, replication cursors, tentative
//! cursors). `create step` places a step hold, as zrepl's does (for
//! debugging; replication places its own).
//!
//! Staleness is zrepl's (see `zrelay_endpoint::abstractions::listing`). As in
//! zrepl, no configuration is needed: the job comes from the names.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use zrelay_endpoint::abstractions::{
    check_stale_kinds, list_abstractions, partition_stale, release_abstractions, Abstraction,
    AbstractionFilter, AbstractionKind, JobId,
};
use zrelay_endpoint::FsFilter;
use zrelay_zfs::name::VersionKind;
use zrelay_zfs::parse::ListedDataset;
use zrelay_zfs::{DatasetPath, RealZfs, SnapshotName, Zfs};

/// `zrelay zfs-abstraction`.
#[derive(Args)]
pub struct ZabsArgs {
    #[command(subcommand)]
    command: ZabsCommand,
}

#[derive(Subcommand)]
enum ZabsCommand {
    /// List zrepl's abstractions (holds and cursor bookmarks).
    List(ListArgs),
    /// (DANGEROUS) Remove every matching abstraction: release the holds, destroy the bookmarks.
    ReleaseAll(ReleaseArgs),
    /// Remove the stale matching abstractions (those replication no longer needs).
    ReleaseStale(ReleaseArgs),
    /// Create an abstraction (for debugging; replication creates its own).
    #[command(subcommand)]
    Create(CreateCommand),
}

#[derive(Subcommand)]
enum CreateCommand {
    /// Place a step hold (`zrepl_STEP_J_<job>`) on a snapshot.
    Step(CreateStepArgs),
}

/// `zrelay zfs-abstraction create step`.
#[derive(Args)]
pub(crate) struct CreateStepArgs {
    /// The snapshot to hold (`pool/fs@snap`).
    #[arg(short = 't', long, value_name = "SNAP")]
    pub(crate) target: String,
    /// The job the hold is for.
    #[arg(short = 'j', long = "jobid", visible_alias = "job", value_name = "JOB")]
    pub(crate) jobid: String,
}

/// The filters shared by every subcommand.
#[derive(Args)]
struct FilterArgs {
    /// Only this filesystem (repeatable), or zrepl's filter syntax: a
    /// comma-separated list of `<pattern>:<ok|!>` (`pool/a<:ok,pool/a/tmp<:!`).
    /// Default: every dataset of every imported pool.
    #[arg(long = "fs", value_name = "FS")]
    fs: Vec<String>,
    /// Only abstractions of this job (repeatable). Default: any job.
    #[arg(long, value_name = "JOB")]
    job: Vec<String>,
    /// Only these types (comma-separated): step-hold, last-received-hold,
    /// tentative-replication-cursor-bookmark-v2, replication-cursor-bookmark-v1,
    /// replication-cursor-bookmark-v2. Default: all.
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',', value_parser = parse_kind)]
    types: Vec<AbstractionKind>,
    /// Accepted for compatibility with zrepl; zrelay lists in batched calls.
    #[arg(short = 'p', long, value_name = "N", default_value_t = 1)]
    concurrency: u32,
}

/// `zrelay zfs-abstraction list`.
#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Print one JSON object per abstraction and line.
    #[arg(long)]
    json: bool,
}

/// `zrelay zfs-abstraction release-all|release-stale`.
#[derive(Args)]
struct ReleaseArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Remove nothing: print what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<AbstractionKind> {
    AbstractionKind::from_name(s.trim()).ok_or_else(|| {
        let all: Vec<&str> = AbstractionKind::ALL.iter().map(|k| k.as_str()).collect();
        anyhow!("unknown abstraction type {s:?} (known: {})", all.join(", "))
    })
}

/// Run a `zfs-abstraction` subcommand.
pub async fn run(a: ZabsArgs) -> Result<()> {
    let zfs = RealZfs::new();
    match a.command {
        ZabsCommand::List(a) => {
            let abs = select(&zfs, &a.filter).await?.1;
            for x in &abs {
                if a.json {
                    println!("{}", serde_json::to_string(&abstraction_json(x))?);
                } else {
                    println!("{x}");
                }
            }
            Ok(())
        }
        ZabsCommand::ReleaseAll(a) => {
            let abs = select(&zfs, &a.filter).await?.1;
            release(&zfs, &abs, &a).await
        }
        ZabsCommand::ReleaseStale(a) => {
            let (filter, abs) = select(&zfs, &a.filter).await?;
            check_stale_kinds(&filter)?;
            let stale = partition_stale(abs).stale;
            release(&zfs, &stale, &a).await
        }
        ZabsCommand::Create(CreateCommand::Step(a)) => {
            println!("{}", create_step(&zfs, &a).await?);
            Ok(())
        }
    }
}

/// Hold the target snapshot with the job's step hold tag (idempotent) and
/// return the hold as an abstraction.
pub(crate) async fn create_step(zfs: &dyn Zfs, a: &CreateStepArgs) -> Result<Abstraction> {
    let job = JobId::new(&a.jobid).context("--jobid")?;
    let snap = SnapshotName::parse(&a.target).map_err(|e| {
        let hint = if a.target.contains('#') {
            " (a step hold is placed on a snapshot, not a bookmark)"
        } else {
            ""
        };
        anyhow!("--target {:?} is not a snapshot name{hint}: {e}", a.target)
    })?;
    let versions = zfs
        .list_versions(snap.fs())
        .await
        .with_context(|| format!("get info about target {:?}", a.target))?;
    let Some(v) = versions
        .iter()
        .find(|v| v.kind == VersionKind::Snapshot && v.name == snap.name())
    else {
        bail!("snapshot {snap} does not exist");
    };
    let tag = job.step_hold_tag();
    zfs.hold(&snap, &tag).await.context("create step hold")?;
    Ok(Abstraction {
        kind: AbstractionKind::StepHold,
        fs: snap.fs().clone(),
        version: v.name.clone(),
        hold_tag: Some(tag),
        job: Some(job.as_str().to_string()),
        guid: v.guid,
        createtxg: v.createtxg,
    })
}

/// Every dataset of every imported pool, with its snapshots and bookmarks.
pub(crate) async fn list_all(zfs: &dyn Zfs) -> Result<Vec<ListedDataset>> {
    let mut out = Vec::new();
    for pool in zfs.pools().await.context("listing the pools")? {
        out.extend(
            zfs.list(&pool)
                .await
                .with_context(|| format!("listing pool {pool}"))?,
        );
    }
    Ok(out)
}

/// `pattern:ok|!` pairs of one `--fs` value.
fn parse_fs_spec(spec: &str) -> Result<Vec<(String, bool)>> {
    spec.split(',')
        .map(|m| {
            let (pattern, verdict) = m.rsplit_once(':').ok_or_else(|| {
                anyhow!("--fs {spec:?}: expected a comma-separated list of <dataset-pattern>:<ok|!> pairs, got {m:?}")
            })?;
            let include = match verdict {
                "ok" => true,
                "!" => false,
                v => bail!("--fs {spec:?}: {m:?} must end in :ok or :!, not :{v}"),
            };
            Ok((pattern.to_string(), include))
        })
        .collect()
}

/// The datasets `--fs` selects (all by default), listed.
async fn datasets(zfs: &dyn Zfs, fs: &[String]) -> Result<Vec<ListedDataset>> {
    let mut exact = Vec::new();
    let mut specs = Vec::new();
    for v in fs {
        // a dataset name may contain `:`; a value is a filter when every part ends in `:ok` or `:!`
        let is_spec = v.contains(':')
            && (v
                .split(',')
                .all(|m| m.ends_with(":ok") || m.ends_with(":!"))
                || DatasetPath::parse(v).is_err());
        if is_spec {
            specs.extend(parse_fs_spec(v)?);
        } else {
            exact.push(
                DatasetPath::parse(v)
                    .with_context(|| format!("--fs {v:?} is not a dataset name"))?,
            );
        }
    }
    if exact.is_empty() && specs.is_empty() {
        return list_all(zfs).await;
    }
    let mut out: Vec<ListedDataset> = Vec::new();
    for e in &exact {
        let listed = match zfs.list_depth1(e).await {
            Err(err) if err.is_does_not_exist() => bail!("filesystem {e} does not exist"),
            other => other.with_context(|| format!("listing {e}"))?,
        };
        out.extend(listed.into_iter().filter(|d| &d.path == e));
    }
    if !specs.is_empty() {
        let filter = FsFilter::new(&specs).context("--fs")?;
        for root in filter.roots_on(zfs).await.context("listing the pools")? {
            let listed = match zfs.list(&root).await {
                Err(err) if err.is_does_not_exist() => continue,
                other => other.with_context(|| format!("listing {root}"))?,
            };
            out.extend(listed.into_iter().filter(|d| filter.matches(&d.path)));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

/// The filter of the flags, and the abstractions it selects.
async fn select(zfs: &dyn Zfs, f: &FilterArgs) -> Result<(AbstractionFilter, Vec<Abstraction>)> {
    let mut jobs = BTreeSet::new();
    for j in &f.job {
        jobs.insert(JobId::new(j).context("--job")?.as_str().to_string());
    }
    let filter = AbstractionFilter {
        kinds: f.types.iter().copied().collect(),
        jobs,
    };
    let listed = datasets(zfs, &f.fs).await?;
    let abs = list_abstractions(zfs, &listed, &filter)
        .await
        .context("listing holds")?;
    Ok((filter, abs))
}

/// zrepl's JSON of an abstraction (`AbstractionJSON`), plus `Tag` for holds.
pub(crate) fn abstraction_json(a: &Abstraction) -> serde_json::Value {
    let vtype = if a.kind.is_hold() {
        "snapshot"
    } else {
        "bookmark"
    };
    json!({
        "Type": a.kind.as_str(),
        "FS": a.fs.as_str(),
        "Name": a.version,
        "FullPath": a.full_path(),
        "JobID": a.job,
        "Tag": a.hold_tag,
        "CreateTXG": a.createtxg,
        "FilesystemVersion": {
            "Type": vtype,
            "Name": a.version,
            "Guid": a.guid,
            "CreateTXG": a.createtxg,
        },
        "String": a.to_string(),
    })
}

/// Remove `abs` (or, with `--dry-run`, print what would go), as zrepl prints it.
async fn release(zfs: &dyn Zfs, abs: &[Abstraction], a: &ReleaseArgs) -> Result<()> {
    if a.dry_run {
        if a.json {
            let all: Vec<_> = abs.iter().map(abstraction_json).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            for x in abs {
                println!("would destroy {x}");
            }
        }
        eprintln!("dry run: {} abstraction(s) would be removed", abs.len());
        return Ok(());
    }
    let results = release_abstractions(zfs, abs)
        .await
        .context("removing abstractions")?;
    let mut failed = 0;
    for (x, r) in abs.iter().zip(&results) {
        let err = r.as_ref().err().map(|e| e.to_string());
        failed += usize::from(err.is_some());
        if a.json {
            let line = json!({
                "Abstraction": abstraction_json(x),
                "DestroyErr": err.clone().unwrap_or_default(),
            });
            println!("{}", serde_json::to_string(&line)?);
        } else {
            match &err {
                None => println!("destroy {x} ... OK"),
                Some(e) => println!("destroy {x} ... failed: {e}"),
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} abstraction(s) could not be removed",
            abs.len()
        );
    }
    eprintln!("{} abstraction(s) removed", abs.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_specs_and_types() {
        assert_eq!(
            parse_fs_spec("pool/a<:ok,pool/a/tmp<:!").unwrap(),
            vec![
                ("pool/a<".to_string(), true),
                ("pool/a/tmp<".to_string(), false)
            ]
        );
        let e = parse_fs_spec("pool/a<:yes").unwrap_err().to_string();
        assert!(e.contains(":ok or :!"), "{e}");
        assert_eq!(parse_kind("step-hold").unwrap(), AbstractionKind::StepHold);
        let e = parse_kind("step-bookmark").unwrap_err().to_string();
        assert!(
            e.contains("\"step-bookmark\"") && e.contains("last-received-hold"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn create_step_holds_the_snapshot_for_the_job() {
        let zfs = zrelay_fake::FakeZfs::new();
        let fs = zfs.add_pool("tank").unwrap().child("a").unwrap();
        zfs.create(&fs, &[]).await.unwrap();
        let s1 = SnapshotName::new(&fs, "s1").unwrap();
        zfs.snapshot(std::slice::from_ref(&s1)).await.unwrap();
        let args = |t: &str, j: &str| CreateStepArgs {
            target: t.into(),
            jobid: j.into(),
        };
        let a = create_step(&zfs, &args("tank/a@s1", "backup"))
            .await
            .unwrap();
        assert_eq!(
            a.to_string(),
            r#"step-hold "zrepl_STEP_J_backup" on tank/a@s1"#
        );
        assert_eq!(a.guid, zfs.guid("tank/a@s1").await.unwrap());
        assert_eq!(zfs.holds(&s1).await.unwrap(), ["zrepl_STEP_J_backup"]);
        // Idempotent, and listed as zrepl lists it.
        create_step(&zfs, &args("tank/a@s1", "backup"))
            .await
            .unwrap();
        let listed = zfs.list(&fs).await.unwrap();
        let abs = list_abstractions(&zfs, &listed, &AbstractionFilter::default())
            .await
            .unwrap();
        assert_eq!(abs, [a]);
        for (t, j, want) in [
            ("tank/a@nope", "backup", "does not exist"),
            ("tank/a#bm", "backup", "not a bookmark"),
            ("tank/a@s1", "_bad", "--jobid"),
        ] {
            let e = create_step(&zfs, &args(t, j)).await.unwrap_err();
            assert!(format!("{e:#}").contains(want), "{t} {j}: {e:#}");
        }
    }

    #[test]
    fn json_has_zrepls_fields() {
        let a = Abstraction {
            kind: AbstractionKind::StepHold,
            fs: DatasetPath::parse("p/a").unwrap(),
            version: "s1".into(),
            hold_tag: Some("zrepl_STEP_J_j".into()),
            job: Some("j".into()),
            guid: 7,
            createtxg: 9,
        };
        let j = abstraction_json(&a);
        assert_eq!(j["Type"], "step-hold");
        assert_eq!(j["FullPath"], "p/a@s1");
        assert_eq!(j["JobID"], "j");
        assert_eq!(j["Tag"], "zrepl_STEP_J_j");
        assert_eq!(j["FilesystemVersion"]["Guid"], 7);
        assert_eq!(j["String"], r#"step-hold "zrepl_STEP_J_j" on p/a@s1"#);
    }
}
