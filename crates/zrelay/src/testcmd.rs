//! `zrelay test filesystems|placeholder|decoderesumetoken`: zrepl's `test`
//! commands, for checking a filter, the placeholder state of datasets, and
//! what a resume token contains.

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use zrelay_config::{Config, JobKind};
use zrelay_endpoint::abstractions::PLACEHOLDER_PROPERTY;
use zrelay_endpoint::filter::FilterRule;
use zrelay_endpoint::FsFilter;
use zrelay_zfs::parse::{is_placeholder_value, ResumeTokenInfo};
use zrelay_zfs::{DatasetPath, RealZfs, Zfs};

use crate::abstraction::list_all;
use crate::daemon::ConfigArg;

/// `zrelay test`.
#[derive(Args)]
pub struct TestArgs {
    #[command(subcommand)]
    command: TestCommand,
}

#[derive(Subcommand)]
enum TestCommand {
    /// Show which datasets a job's `filesystems` filter includes, and which rule decides.
    Filesystems(FilesystemsArgs),
    /// Show whether datasets are placeholders (a locally set `zrepl:placeholder`).
    Placeholder(PlaceholderArgs),
    /// Decode a `receive_resume_token` (in process, from its binary form; no zfs runs).
    Decoderesumetoken(DecodeArgs),
}

/// `zrelay test filesystems`.
#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["all", "input"])))]
struct FilesystemsArgs {
    /// The job (push, source or snap) whose filter to test.
    #[arg(long)]
    job: String,
    /// Test every dataset of every imported pool.
    #[arg(long)]
    all: bool,
    /// Test this dataset name (it need not exist).
    #[arg(long)]
    input: Option<String>,
}

/// `zrelay test placeholder`.
#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["all", "dataset"])))]
struct PlaceholderArgs {
    /// Every filesystem and volume of every imported pool.
    #[arg(long)]
    all: bool,
    /// This dataset.
    #[arg(long)]
    dataset: Option<String>,
}

/// `zrelay test decoderesumetoken`.
#[derive(Args)]
struct DecodeArgs {
    /// The token (the `receive_resume_token` property of a partial receive).
    #[arg(long)]
    token: String,
    /// Print JSON (zrepl's field names, plus the position and the other flags).
    #[arg(long)]
    json: bool,
}

/// Run a `test` subcommand.
pub async fn run(a: TestArgs, cfg: &ConfigArg) -> Result<()> {
    match a.command {
        TestCommand::Filesystems(a) => filesystems(a, cfg).await,
        TestCommand::Placeholder(a) => placeholder(a).await,
        TestCommand::Decoderesumetoken(a) => decode(a).await,
    }
}

/// The `filesystems` filter of job `name`, or why there is none.
pub(crate) fn job_filter<'a>(config: &'a Config, name: &str) -> Result<&'a FsFilter> {
    let Some(job) = config.job(name) else {
        let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
        bail!(
            "no job named {name:?} in {} (jobs: {})",
            config.origin.display(),
            names.join(", ")
        );
    };
    match &job.kind {
        JobKind::Push(j) => Ok(&j.filesystems),
        JobKind::Source(j) => Ok(&j.filesystems),
        JobKind::Snap(j) => Ok(&j.filesystems),
        other => bail!(
            "job {name:?} is a {} job, which has no filesystems filter (push, source and snap jobs have one)",
            other.type_name()
        ),
    }
}

/// A rule as written in the configuration: `pool/a<`, `pool/b`, `<`.
pub(crate) fn pattern(r: &FilterRule) -> String {
    format!("{}{}", r.path.as_str(), if r.subtree { "<" } else { "" })
}

/// `FS: included by rule "…"`, `FS: excluded by rule "…"` or `FS: excluded: no rule matches`.
pub(crate) fn verdict(filter: &FsFilter, fs: &DatasetPath) -> String {
    match filter.deciding_rule(fs) {
        Some(r) if r.include => format!("{fs}: included by rule {:?}", pattern(r)),
        Some(r) => format!("{fs}: excluded by rule {:?}", pattern(r)),
        None => format!("{fs}: excluded: no rule matches"),
    }
}

async fn filesystems(a: FilesystemsArgs, cfg: &ConfigArg) -> Result<()> {
    let config = cfg.load()?;
    let filter = job_filter(&config, &a.job)?;
    let paths = match &a.input {
        Some(input) => vec![DatasetPath::parse(input)
            .with_context(|| format!("--input {input:?} is not a dataset name"))?],
        None => list_all(&RealZfs::new())
            .await?
            .into_iter()
            .map(|d| d.path)
            .collect(),
    };
    for p in &paths {
        println!("{}", verdict(filter, p));
    }
    Ok(())
}

async fn placeholder(a: PlaceholderArgs) -> Result<()> {
    let zfs = RealZfs::new();
    let paths = match &a.dataset {
        Some(ds) => vec![DatasetPath::parse(ds)
            .with_context(|| format!("--dataset {ds:?} is not a dataset name"))?],
        None => list_all(&zfs).await?.into_iter().map(|d| d.path).collect(),
    };
    let names: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let got = zfs
        .get_many(&names, &[PLACEHOLDER_PROPERTY])
        .await
        .context("reading the placeholder property")?;
    let mut rows = Vec::with_capacity(paths.len());
    for (p, (_, r)) in paths.iter().zip(got) {
        let props = match r {
            Ok(props) => props,
            Err(e) if e.is_does_not_exist() => bail!("dataset {p} does not exist"),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {PLACEHOLDER_PROPERTY} of {p}"))
            }
        };
        // only a locally set value counts; zrepl prints that raw value
        let local = props
            .get(PLACEHOLDER_PROPERTY)
            .filter(|v| v.source == "local")
            .map(|v| v.value.clone())
            .unwrap_or_default();
        let is = !local.is_empty() && is_placeholder_value(p, &local);
        rows.push(format!("{}\t{p}\t{local}", if is { "yes" } else { "no" }));
    }
    println!("IS_PLACEHOLDER\tDATASET\t{PLACEHOLDER_PROPERTY}");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

/// The decoded token as JSON: zrepl's `ResumeToken` fields first.
pub(crate) fn token_json(t: &ResumeTokenInfo) -> serde_json::Value {
    json!({
        "HasFromGUID": t.fromguid.is_some(),
        "HasToGUID": true,
        "FromGUID": t.fromguid.unwrap_or(0),
        "ToGUID": t.toguid,
        "ToName": t.toname.to_string(),
        "HasCompressOK": t.compress_ok,
        "CompressOK": t.compress_ok,
        "HasRawOk": t.raw_ok,
        "RawOK": t.raw_ok,
        "LargeBlockOK": t.large_block_ok,
        "EmbedOK": t.embed_ok,
        "SavedOK": t.saved_ok,
        "RedactSnaps": t.redact_snaps,
        "BookRedactSnaps": t.book_redact_snaps,
        "Object": t.object,
        "Offset": t.offset,
        "Bytes": t.bytes,
    })
}

/// The decoded token as text, one `field: value` a line.
pub(crate) fn token_text(t: &ResumeTokenInfo) -> String {
    let flags: Vec<&str> = [
        (t.large_block_ok, "largeblockok"),
        (t.embed_ok, "embedok"),
        (t.compress_ok, "compressok"),
        (t.raw_ok, "rawok"),
        (t.saved_ok, "savedok"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let from = match t.fromguid {
        Some(g) => format!("{g} ({g:#018x}), an incremental send"),
        None => "none, a full send".into(),
    };
    format!(
        "toname:   {}\ntoguid:   {} ({:#018x})\nfromguid: {from}\nobject:   {}\noffset:   {}\nbytes:    {}\nflags:    {}\n",
        t.toname,
        t.toguid,
        t.toguid,
        t.object,
        t.offset,
        t.bytes,
        if flags.is_empty() { "none".into() } else { flags.join(" ") }
    )
}

async fn decode(a: DecodeArgs) -> Result<()> {
    if a.token.trim().is_empty() {
        bail!("--token is empty: pass the receive_resume_token of a partial receive");
    }
    // the message shows the token (escaped, cut) and names what is wrong
    let info = match zrelay_zfs::resume_token::decode(a.token.trim()) {
        Ok(info) => info,
        Err(e) => bail!("cannot decode: {e}"),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&token_json(&info))?);
    } else {
        print!("{}", token_text(&info));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DatasetPath {
        DatasetPath::parse(s).unwrap()
    }

    #[test]
    fn verdicts_name_the_rule() {
        let f = FsFilter::new(&[("pool/a<", true), ("pool/a/tmp", false), ("<", false)]).unwrap();
        assert_eq!(
            verdict(&f, &p("pool/a/b")),
            r#"pool/a/b: included by rule "pool/a<""#
        );
        assert_eq!(
            verdict(&f, &p("pool/a/tmp")),
            r#"pool/a/tmp: excluded by rule "pool/a/tmp""#
        );
        assert_eq!(verdict(&f, &p("other")), r#"other: excluded by rule "<""#);
        let f = FsFilter::new(&[("pool/a", true)]).unwrap();
        assert_eq!(
            verdict(&f, &p("pool/b")),
            "pool/b: excluded: no rule matches"
        );
    }

    #[test]
    fn token_rendering() {
        let t = ResumeTokenInfo {
            toname: zrelay_zfs::SnapshotName::parse("p/a@s").unwrap(),
            toguid: 0xabc,
            fromguid: None,
            object: 1,
            offset: 2,
            bytes: 3,
            large_block_ok: true,
            embed_ok: false,
            compress_ok: true,
            raw_ok: false,
            saved_ok: false,
            redact_snaps: None,
            book_redact_snaps: None,
        };
        let text = token_text(&t);
        assert!(text.contains("toname:   p/a@s\n"), "{text}");
        assert!(text.contains("none, a full send"), "{text}");
        assert!(
            text.contains("flags:    largeblockok compressok\n"),
            "{text}"
        );
        let j = token_json(&t);
        assert_eq!(j["ToGUID"], 0xabc);
        assert_eq!(j["HasFromGUID"], false);
        assert_eq!(j["ToName"], "p/a@s");
        assert_eq!(j["Bytes"], 3);
    }
}
