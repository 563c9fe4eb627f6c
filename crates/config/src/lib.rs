//! `zrelay-config`: zrelay's configuration, which is zrepl's (v0.7) YAML
//! configuration read unchanged, plus a few documented zrelay extensions.
//!
//! Invariants:
//! - Parsing is strict and two-phase. Phase 1 reads the YAML into raw serde
//!   structs that mirror zrepl's keys exactly (`deny_unknown_fields`
//!   everywhere, enums chosen by their `type` key); phase 2 validates them
//!   into the [`model`] types and fills in zrepl's defaults. A [`Config`]
//!   exists only if every rule passed: nothing is silently dropped or
//!   guessed.
//! - Every error about the contents names the file, the 1-based line and
//!   column of the offending key, and its key path, e.g.
//!   `/etc/zrepl/zrepl.yml:14:7: jobs[1] (name "backup").connect.type:
//!   unknown variant "tcpp", expected one of tcp, tls, ssh+stdinserver, local`.
//!   Errors of either phase carry positions because both work on a YAML tree
//!   whose every node remembers where it was written.
//! - Values are parsed exactly as zrepl parses them: intervals with zrepl's
//!   duration syntax (`10m`, `1d`, `2w`), timeouts with Go's
//!   `time.ParseDuration` (`30s`, `1m30s`, `500ms`), sizes with zrepl's
//!   `datasizeunit` (`23.5 MiB`, bits vs bytes), retention grids, robfig
//!   cron expressions, Go time layouts; see [`units`], [`cron`],
//!   [`timestamp`].
//! - Rules across jobs hold: job names are unique and valid
//!   [`JobId`](zrelay_endpoint::JobId)s;
//!   no two sink/pull `root_fs` are equal or nested; local, tcp/tls and
//!   stdinserver listeners are not shared; every local connect names a
//!   local listener of this configuration.
//! - All configuration errors are permanent ([`ConfigError`]'s `class()`).
//! - The `snapshotting` types ([`Snapshotting`], [`TimestampFormat`],
//!   [`Hook`], [`HookKind`]), the naming rules ([`timestamp`]) and the cron
//!   grammar ([`cron`]) are the snapshotter's (`zrelay-snapshot`), re-exported
//!   here, so what validation accepts is exactly what the snapshotter runs.
//!   Time zones (`timestamp_location`, `TZ=` in cron) must exist in the
//!   system's time zone database.
//!
//! YAML crate: `libyaml-safer`, a maintained (0.3.0, December 2025),
//! dependency-free, safe Rust port of libyaml. zrepl's parser (go-yaml v2
//! through zrepl/yaml-config) is a Go port of libyaml too, so both accept
//! the same documents: e.g. zrepl's documented style `clients: {` … `}`
//! with quoted keys and the closing brace at the key's indentation, which
//! `saphyr-parser` and `yaml-rust2` reject ("invalid indentation"). It is
//! used at the event level to build our own marked tree (module `yaml`) that our
//! own serde `Deserializer` reads. Not chosen: `serde_yaml` (archived);
//! `serde_yaml_ng` and `serde_norway` (line/column for syntax errors only:
//! their `Value` drops positions, and serde's tagged enums buffer content,
//! so errors inside a `type`-tagged job or in phase 2 would lose their
//! line); `serde-saphyr` (positions only through `Spanned<T>`, saphyr's
//! stricter grammar, Rust 1.89 while the workspace targets 1.85). Scalars
//! are typed as go-yaml types them for zrepl (YAML 1.1 booleans such as
//! `yes` are accepted where a boolean is expected).
//!
//! Rendering: [`Config::render`] prints the validated configuration back in
//! zrepl's syntax with every default made explicit (`yaml`, `json`), or the
//! model's `Debug` form (`pretty`), for `zrelay configcheck`. The YAML output
//! parses back to the same [`Config`].
//!
//! zrelay extensions (not in zrepl; see `samples/extensions.yml`):
//! `replication.snapshot_filter` (`{prefix: …}` or `{regex: …}`),
//! `replication.schedule` (`{interval: …}` or `{cron: …}`, push jobs only),
//! `replication.wire_compression` (`{type: auto|off|zstd, level: 1-9}`),
//! `recv.force_overwrite` (bool).

mod de;
mod error;
mod goyaml;
pub mod job_hooks;
pub mod knobs;
pub mod model;
pub mod notify;
mod raw;
mod render;
mod validate;
mod warning;
mod yaml;

pub mod cron;
pub mod timestamp;
pub mod units;

use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use job_hooks::{HookEvent, JobHook};
pub use knobs::{KnobError, Knobs};
pub use model::*;
pub use notify::Notify;
pub use render::{RenderFormat, RenderWhat, UnknownChoice};
pub use validate::global::{
    default_logging, DEFAULT_CONTROL_SOCKPATH, DEFAULT_STDINSERVER_SOCKDIR,
};
pub use warning::ConfigWarning;

use error::KeyPath;
use validate::{Cx, Source};

/// Where [`find_config`] looks when no path is given, in order: zrelay's
/// own path, then zrepl's on Linux and on FreeBSD (`/usr/local/etc`), so a
/// zrepl installation is picked up unchanged.
pub const DEFAULT_CONFIG_PATHS: [&str; 3] = [
    "/etc/zrelay/zrelay.yml",
    "/etc/zrepl/zrepl.yml",
    "/usr/local/etc/zrepl/zrepl.yml",
];

/// Read and validate the configuration at `path` and the files it includes.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    parse_str(&text, path)
}

/// Validate `text` as the configuration file `origin`. `include` entries
/// are resolved relative to `origin`'s directory and read from disk.
pub fn parse_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let main = parse_source(text, origin)?;
    let mut includes = Vec::new();
    let dir = origin.parent().unwrap_or(Path::new("."));
    for (i, entry) in main.raw.include.iter().enumerate() {
        let at = KeyPath::root().k("include").i(i);
        for file in include_files(Cx::of(&main), &at, dir, entry)? {
            let src = parse_source(&read(&file)?, &file)?;
            let cx = Cx::of(&src);
            if src.raw.global.is_some() {
                return Err(cx.err(
                    &KeyPath::root().k("global"),
                    "included configuration files may only contain `jobs`",
                ));
            }
            if !src.raw.include.is_empty() {
                return Err(cx.err(
                    &KeyPath::root().k("include"),
                    "included configuration files must not include other files",
                ));
            }
            includes.push(src);
        }
    }
    validate::build(&main, &includes)
}

/// The configuration file to use: `explicit` (`--config`) if given, else
/// the first of [`DEFAULT_CONFIG_PATHS`] that exists.
pub fn find_config(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    find_config_under(explicit, Path::new("/"))
}

/// [`find_config`] with [`DEFAULT_CONFIG_PATHS`] taken below `root`
/// instead of `/` (tests); an explicit path is used as given.
pub fn find_config_under(explicit: Option<&Path>, root: &Path) -> Result<PathBuf, ConfigError> {
    let tried: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => DEFAULT_CONFIG_PATHS
            .iter()
            .map(|p| root.join(p.trim_start_matches('/')))
            .collect(),
    };
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(ConfigError::NotFound { tried }),
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Phase 1 for one file: YAML tree, then raw structs.
fn parse_source(text: &str, file: &Path) -> Result<Source, ConfigError> {
    let root = yaml::parse(text, file)?;
    let raw = de::from_root(root.as_ref()).map_err(|e| {
        let (path, mark) = e.at.clone().unwrap_or_default();
        let (_, key) = error::locate(root.as_ref(), &path);
        ConfigError::Invalid {
            file: file.to_path_buf(),
            line: mark.line,
            column: mark.col,
            key,
            message: e.msg,
        }
    })?;
    Ok(Source {
        file: file.to_path_buf(),
        root,
        raw,
        warnings: Default::default(),
    })
}

/// The files an `include` entry names: a `.yml` file, or every `*.yml`
/// file of a directory in name order.
fn include_files(
    cx: Cx<'_>,
    at: &KeyPath,
    dir: &Path,
    entry: &str,
) -> Result<Vec<PathBuf>, ConfigError> {
    if entry.is_empty() {
        return Err(cx.err(at, "include path must not be empty"));
    }
    let path = dir.join(entry);
    let meta = std::fs::metadata(&path)
        .map_err(|e| cx.err(at, format!("cannot include {}: {e}", path.display())))?;
    let is_yml = |p: &Path| p.extension().is_some_and(|x| x == "yml");
    if meta.is_dir() {
        let rd = std::fs::read_dir(&path)
            .map_err(|e| cx.err(at, format!("cannot read directory {}: {e}", path.display())))?;
        let mut files = Vec::new();
        for e in rd {
            let e = e.map_err(|e| {
                cx.err(at, format!("cannot read directory {}: {e}", path.display()))
            })?;
            let p = e.path();
            if is_yml(&p) && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        Ok(files)
    } else if meta.is_file() {
        if !is_yml(&path) {
            return Err(cx.err(
                at,
                format!(
                    "include config files must end with `.yml`: {}",
                    path.display()
                ),
            ));
        }
        Ok(vec![path])
    } else {
        Err(cx.err(at, format!("not a file or directory: {}", path.display())))
    }
}

#[cfg(test)]
mod tests;
