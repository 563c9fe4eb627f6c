//! Phase 2: raw structs → validated model, with zrepl's defaults.
//!
//! Every error names the file, the line and column of the offending key (by
//! looking its key path up in the marked tree) and the key path. Rules that
//! span jobs (unique names, non-overlapping receive roots, local listener
//! names) run after all files' jobs are validated.

pub(crate) mod global;
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

use crate::error::{invalid, locate, ConfigError, KeyPath};
use crate::model::{Config, Job, JobKind};
use crate::raw::{Ordered, RawConfig};
use crate::units;
use crate::yaml::Node;

pub(crate) type R<T> = Result<T, ConfigError>;

/// One parsed file: its name, its marked tree and its raw structs.
pub(crate) struct Source {
    pub(crate) file: PathBuf,
    pub(crate) root: Option<Node>,
    pub(crate) raw: RawConfig,
}

/// Error reporting for one file.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) root: Option<&'a Node>,
}

impl<'a> Cx<'a> {
    pub(crate) fn of(src: &'a Source) -> Cx<'a> {
        Cx {
            file: &src.file,
            root: src.root.as_ref(),
        }
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
        let d = units::parse_go_duration(s).map_err(|e| self.err(path, e))?;
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
    pub(crate) fn filter(&self, path: &KeyPath, m: &Ordered<bool>) -> R<FsFilter> {
        FsFilter::new(&m.0).map_err(|e| match &e {
            FilterError::Pattern { pattern, .. } => self.err(&path.k(pattern), e),
            FilterError::Duplicate(pattern) => self.err(&path.k(pattern), e),
        })
    }
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
    let mut jobs: Vec<Job> = Vec::new();
    let mut sites: Vec<Site<'_>> = Vec::new();
    for src in std::iter::once(main).chain(includes) {
        let cx = Cx::of(src);
        for (i, raw) in src.raw.jobs.iter().enumerate() {
            let path = KeyPath::root().k("jobs").i(i);
            jobs.push(jobs::job(cx, &path, raw, &global)?);
            sites.push(Site { cx, path });
        }
    }
    cross_job_rules(&jobs, &sites)?;
    Ok(Config {
        origin: main.file.clone(),
        global,
        jobs,
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
                             receiving jobs must not receive into the same or nested datasets",
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
                same_serve(ja, sa, va, sb, vb)?;
            }
        }
    }
    jobs::check_local_connects(jobs, sites)
}

/// Two serving jobs must not share a listener, address or stdinserver identity.
fn same_serve(
    ja: &Job,
    sa: &Site<'_>,
    va: &ServeOptions,
    sb: &Site<'_>,
    vb: &ServeOptions,
) -> R<()> {
    let conflict = |key: &str, what: String| {
        Err(sb.cx.err(
            &sb.path.k("serve").k(key),
            format!(
                "{what} is also used by job {:?} ({})",
                ja.name.as_str(),
                sa.cx.at(&sa.path.k("serve").k(key))
            ),
        ))
    };
    match (va, vb) {
        (ServeOptions::Local { listener_name: a }, ServeOptions::Local { listener_name: b })
            if a == b =>
        {
            conflict("listener_name", format!("local listener name {b:?}"))
        }
        (
            ServeOptions::Tcp { listen: a, .. } | ServeOptions::Tls { listen: a, .. },
            ServeOptions::Tcp { listen: b, .. } | ServeOptions::Tls { listen: b, .. },
        ) if a == b => conflict("listen", format!("listen address {b:?}")),
        (
            ServeOptions::Stdinserver {
                client_identities: a,
                ..
            },
            ServeOptions::Stdinserver {
                client_identities: b,
                ..
            },
        ) => match b.iter().find(|id| a.contains(id)) {
            Some(id) => conflict(
                "client_identities",
                format!("stdinserver client identity {id:?}"),
            ),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
