//! Phase 2: raw structs → validated model, with zrepl's defaults.
//!
//! Every error names the file, the line and column of the offending key (by
//! looking its key path up in the marked tree) and the key path. Rules that
//! span jobs (unique names, non-overlapping receive roots, local listener
//! names) run after all files' jobs are validated.

pub(crate) mod global;
mod hazards;
mod jobs;
mod limits;
mod parts;
pub(crate) mod targets;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zrelay_endpoint::filter::FilterError;
use zrelay_endpoint::FsFilter;
use zrelay_transport::ServeOptions;
use zrelay_zfs::peer_text::peer;

use crate::error::{invalid, locate, ConfigError, KeyPath, Seg};
use crate::model::{Config, Job, JobKind};
use crate::raw::{Ordered, RawConfig};
use crate::units;
use crate::warning::Warnings;
use crate::yaml::{Node, Value};

pub(crate) type R<T> = Result<T, ConfigError>;

/// One parsed file: its name, its marked tree and its raw structs.
pub(crate) struct Source {
    pub(crate) file: PathBuf,
    pub(crate) root: Option<Node>,
    pub(crate) raw: RawConfig,
    /// Hazards found while validating it.
    pub(crate) warnings: Warnings,
}

/// Error reporting for one file.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) root: Option<&'a Node>,
    warnings: &'a Warnings,
}

impl<'a> Cx<'a> {
    pub(crate) fn of(src: &'a Source) -> Cx<'a> {
        Cx {
            file: &src.file,
            root: src.root.as_ref(),
            warnings: &src.warnings,
        }
    }

    /// Record a warning about the key at `path`: a hazard zrepl accepts.
    pub(crate) fn warn(&self, path: &KeyPath, msg: impl fmt::Display) {
        self.warnings.push(self.file, self.root, path, msg);
    }

    /// The value at `path` if it is a plain (unquoted) integer, as go-yaml
    /// resolves one (`10`, `0x10`, `1_000`).
    fn bare_int(&self, path: &KeyPath) -> Option<i128> {
        match &self.node(path)?.value {
            Value::Scalar { text, plain: true } => crate::goyaml::go_int(text).ok(),
            _ => None,
        }
    }

    /// The node at `path`, if the document has it.
    pub(crate) fn node(&self, path: &KeyPath) -> Option<&'a Node> {
        let mut node = self.root?;
        for seg in &path.0 {
            node = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => &entries.iter().find(|e| e.key == *k)?.value,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// An error about the key at `path`.
    pub(crate) fn err(&self, path: &KeyPath, msg: impl fmt::Display) -> ConfigError {
        invalid(self.file, self.root, path, msg)
    }

    /// `file:line:col` of `path`, for "also defined at" messages.
    pub(crate) fn at(&self, path: &KeyPath) -> String {
        let (m, _) = locate(self.root, path);
        format!("{}:{}:{}", self.file.display(), m.line, m.col)
    }

    /// A required non-empty string.
    pub(crate) fn non_empty<'s>(&self, path: &KeyPath, s: &'s str) -> R<&'s str> {
        if s.trim().is_empty() {
            return Err(self.err(path, "must not be empty"));
        }
        Ok(s)
    }

    /// A non-empty file path.
    pub(crate) fn file_path(&self, path: &KeyPath, s: &str) -> R<PathBuf> {
        Ok(PathBuf::from(self.non_empty(path, s)?))
    }

    /// The absolute path of a command run without arguments (hooks,
    /// notifications); `what` names it in the error (`hook`, `notify`).
    pub(crate) fn command_path(&self, path: &KeyPath, s: &str, what: &str) -> R<PathBuf> {
        if !Path::new(s).is_absolute() {
            return Err(self.err(path, format!("{what} command path {s:?} must be absolute")));
        }
        Ok(PathBuf::from(s))
    }

    /// A Go duration (`time.ParseDuration`) with a default; `positive`
    /// rejects zero (zrepl's `positive` tag; otherwise `zeropositive`).
    pub(crate) fn go_duration(
        &self,
        path: &KeyPath,
        v: &Option<String>,
        default: Duration,
        positive: bool,
    ) -> R<Duration> {
        let Some(s) = v else { return Ok(default) };
        let d = match self.bare_int(path) {
            // go-yaml sets a `time.Duration` from a plain integer as is:
            // nanoseconds, as zrepl reads it.
            Some(n) if n < 0 => {
                return Err(self.err(path, format!("{n}: must be 0 or positive")));
            }
            Some(n) if n > 0 => {
                let d = Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX));
                self.warn(
                    path,
                    format!(
                        "{n} has no unit: zrepl reads a bare integer as nanoseconds, so this is \
                         {d:?}; write a unit, e.g. {n}s"
                    ),
                );
                d
            }
            _ => units::parse_go_duration(s).map_err(|e| self.err(path, e))?,
        };
        if positive && d.is_zero() {
            return Err(self.err(path, format!("{s:?}: must be positive")));
        }
        Ok(d)
    }

    /// A positive zrepl duration (`10m`, `1d`).
    pub(crate) fn interval(&self, path: &KeyPath, s: &str) -> R<Duration> {
        units::parse_positive_duration(s).map_err(|e| self.err(path, e))
    }

    /// `host:port`.
    pub(crate) fn host_port(&self, path: &KeyPath, s: &str) -> R<String> {
        units::check_host_port(s).map_err(|e| self.err(path, e))?;
        Ok(s.to_string())
    }

    /// A regex (Go RE2 syntax, checked with the `regex` crate).
    pub(crate) fn regex(&self, path: &KeyPath, s: &str) -> R<String> {
        regex::Regex::new(s).map_err(|e| {
            let text = e.to_string();
            let why = text
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text.lines().last().unwrap_or_default())
                .to_string();
            self.err(path, format!("invalid regex {s:?}: {why}"))
        })?;
        Ok(s.to_string())
    }

    /// A `filesystems` filter (`"<"` is every dataset of every pool).
    ///
    /// zrepl checks a pattern's path only for `@#|<>*`, a tab and a
    /// trailing `/`: a pattern that passes that but can never name a ZFS
    /// dataset (`"!pool/a<"`, `"pool//a"`, a character ZFS does not allow)
    /// matches nothing in zrepl. It is dropped here, with a warning: the
    /// filter selects the same datasets.
    pub(crate) fn filter(&self, path: &KeyPath, m: &Ordered<bool>) -> R<FsFilter> {
        let err = |e: FilterError| match &e {
            FilterError::Pattern { pattern, .. } => self.err(&path.k(pattern), e),
            FilterError::Duplicate(pattern) => self.err(&path.k(pattern), e),
        };
        match FsFilter::new(&m.0) {
            Err(FilterError::Pattern { .. }) => {}
            other => return other.map_err(err),
        }
        let mut kept = Vec::with_capacity(m.0.len());
        for (pattern, include) in &m.0 {
            match FsFilter::new(&[(pattern, *include)]) {
                Err(FilterError::Pattern { source, .. }) if zrepl_pattern(pattern) => self.warn(
                    &path.k(pattern),
                    format!(
                        "{source}: zrepl accepts this pattern, and it matches no dataset; ignored"
                    ),
                ),
                _ => kept.push((pattern.as_str(), *include)),
            }
        }
        FsFilter::new(&kept).map_err(err)
    }
}

/// Whether zrepl's `DatasetMapFilter.Add` accepts `pattern`: at most a
/// trailing `<`, and a path (`zfs.NewDatasetPath`) without any of `@#|<>*`,
/// a tab, or a trailing `/`.
fn zrepl_pattern(pattern: &str) -> bool {
    let p = pattern.strip_suffix('<').unwrap_or(pattern);
    !p.contains(['@', '#', '|', '\t', '<', '>', '*']) && !p.ends_with('/')
}

/// Where a validated job came from, for rules across jobs.
pub(crate) struct Site<'a> {
    pub(crate) cx: Cx<'a>,
    pub(crate) path: KeyPath,
}

/// Validate the main file and the included files into a [`Config`].
pub(crate) fn build(main: &Source, includes: &[Source]) -> R<Config> {
    let cx = Cx::of(main);
    let global = global::global(cx, main.raw.global.as_ref())?;
    let logging_given = main
        .raw
        .global
        .as_ref()
        .is_some_and(|g| g.logging.is_some());
    hazards::global(cx, &global, logging_given);
    let mut jobs: Vec<Job> = Vec::new();
    let mut sites: Vec<Site<'_>> = Vec::new();
    for src in std::iter::once(main).chain(includes) {
        let cx = Cx::of(src);
        for (i, raw) in src.raw.jobs.iter().enumerate() {
            let path = KeyPath::root().k("jobs").i(i);
            let job = jobs::job(cx, &path, raw, &global)?;
            hazards::job(cx, &path, &job);
            jobs.push(job);
            sites.push(Site { cx, path });
        }
    }
    cross_job_rules(&jobs, &sites)?;
    let warnings = std::iter::once(main)
        .chain(includes)
        .flat_map(|src| src.warnings.take())
        .collect();
    Ok(Config {
        origin: main.file.clone(),
        global,
        jobs,
        warnings,
    })
}

/// The receive root of a sink or pull job.
fn receive_root(j: &Job) -> Option<&zrelay_zfs::DatasetPath> {
    match &j.kind {
        JobKind::Sink(s) => Some(&s.root_fs),
        JobKind::Pull(p) => Some(&p.root_fs),
        _ => None,
    }
}

fn serve_of(j: &Job) -> Option<&ServeOptions> {
    match &j.kind {
        JobKind::Sink(s) => Some(&s.serve),
        JobKind::Source(s) => Some(&s.serve),
        _ => None,
    }
}

fn cross_job_rules(jobs: &[Job], sites: &[Site<'_>]) -> R<()> {
    for (b, jb) in jobs.iter().enumerate() {
        let sb = &sites[b];
        for (a, ja) in jobs[..b].iter().enumerate() {
            let sa = &sites[a];
            if ja.name == jb.name {
                return Err(sb.cx.err(
                    &sb.path.k("name"),
                    format!(
                        "duplicate job name {:?} (also defined at {})",
                        jb.name.as_str(),
                        sa.cx.at(&sa.path.k("name"))
                    ),
                ));
            }
            if let (Some(ra), Some(rb)) = (receive_root(ja), receive_root(jb)) {
                let how = if ra == rb {
                    Some("is the same as")
                } else if rb.has_prefix(ra) {
                    Some("is inside")
                } else if ra.has_prefix(rb) {
                    Some("contains")
                } else {
                    None
                };
                if let Some(how) = how {
                    return Err(sb.cx.err(
                        &sb.path.k("root_fs"),
                        format!(
                            "root_fs {:?} of job {:?} {how} root_fs {:?} of job {:?} ({}): \
                             receiving jobs must not receive into the same or nested datasets \
                             (zrepl 0.7 accepts it, but each job's receive-side pruning would \
                             destroy the other job's snapshots)",
                            rb.as_str(),
                            jb.name.as_str(),
                            ra.as_str(),
                            ja.name.as_str(),
                            sa.cx.at(&sa.path.k("root_fs"))
                        ),
                    ));
                }
            }
            if let (Some(va), Some(vb)) = (serve_of(ja), serve_of(jb)) {
                same_serve(ja, sa, va, sb, vb);
            }
        }
    }
    jobs::check_local_connects(jobs, sites);
    Ok(())
}

/// Two serving jobs sharing a listener, address or stdinserver identity:
/// zrepl accepts it (the clash shows only at runtime), so it is a warning.
fn same_serve(ja: &Job, sa: &Site<'_>, va: &ServeOptions, sb: &Site<'_>, vb: &ServeOptions) {
    let clash = |key: &str, what: String, runtime: &str| {
        sb.cx.warn(
            &sb.path.k("serve").k(key),
            format!(
                "{what} is also used by job {:?} ({}): {runtime}",
                ja.name.as_str(),
                sa.cx.at(&sa.path.k("serve").k(key))
            ),
        )
    };
    match (va, vb) {
        (ServeOptions::Local { listener_name: a }, ServeOptions::Local { listener_name: b })
            if a == b =>
        {
            clash(
                "listener_name",
                format!("local listener name {:?}", peer(b)),
                "zrepl hands each connection to one of the jobs at random; in zrelay the job \
                 that starts first serves it and the other job's listener fails to start",
            )
        }
        (
            ServeOptions::Tcp { listen: a, .. } | ServeOptions::Tls { listen: a, .. },
            ServeOptions::Tcp { listen: b, .. } | ServeOptions::Tls { listen: b, .. },
        ) if a == b => clash(
            "listen",
            format!("listen address {:?}", peer(b)),
            "only one job can listen on it; the other job's listener fails to start",
        ),
        (
            ServeOptions::Stdinserver {
                client_identities: a,
                ..
            },
            ServeOptions::Stdinserver {
                client_identities: b,
                ..
            },
        ) => {
            if let Some(id) = b.iter().find(|id| a.contains(id)) {
                clash(
                    "client_identities",
                    format!("stdinserver client identity {:?}", peer(id)),
                    "both jobs serve it on the same socket; only one of them can",
                )
            }
        }
        _ => {}
    }
}
