//! Printing a validated configuration for `zrelay configcheck`.
//!
//! `yaml` and `json` print the configuration in zrepl's syntax with every
//! default made explicit (a `bandwidth_limit` that is off is omitted); the
//! YAML parses back to the same [`Config`]. `pretty` prints the validated
//! model (`Debug`). `--what`: `all` and `config` print everything, `jobs`
//! prints `jobs:` (a valid include file), `logging` prints `logging:`.

use std::str::FromStr;
use std::time::Duration;

use zrelay_endpoint::FsFilter;
use zrelay_transport::{ConnectOptions, ServeOptions};

use crate::model::*;

/// `configcheck --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// The validated model, Rust `Debug` style.
    Pretty,
    /// zrepl YAML.
    Yaml,
    /// The same tree as JSON.
    Json,
}

/// `configcheck --what`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderWhat {
    /// Everything (same as `config`).
    All,
    /// Everything.
    Config,
    /// Only `jobs`.
    Jobs,
    /// Only the logging outlets.
    Logging,
}

/// A `--format` or selection that is not one of the known words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}, expected {expected}")]
pub struct UnknownChoice {
    /// `format` or `selection`.
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// The words accepted.
    pub expected: &'static str,
}

impl FromStr for RenderFormat {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "pretty" => Ok(RenderFormat::Pretty),
            "yaml" => Ok(RenderFormat::Yaml),
            "json" => Ok(RenderFormat::Json),
            _ => Err(UnknownChoice {
                what: "format",
                value: s.to_string(),
                expected: "pretty, yaml or json",
            }),
        }
    }
}

impl FromStr for RenderWhat {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, UnknownChoice> {
        match s {
            "all" => Ok(RenderWhat::All),
            "config" => Ok(RenderWhat::Config),
            "jobs" => Ok(RenderWhat::Jobs),
            "logging" => Ok(RenderWhat::Logging),
            _ => Err(UnknownChoice {
                what: "selection",
                value: s.to_string(),
                expected: "all, config, jobs or logging",
            }),
        }
    }
}

impl Config {
    /// Render (part of) the configuration; see the module docs.
    pub fn render(&self, format: RenderFormat, what: RenderWhat) -> String {
        if format == RenderFormat::Pretty {
            return match what {
                RenderWhat::All | RenderWhat::Config => format!("{self:#?}\n"),
                RenderWhat::Jobs => format!("{:#?}\n", self.jobs),
                RenderWhat::Logging => format!("{:#?}\n", self.global.logging),
            };
        }
        let jobs = || ("jobs", Out::L(self.jobs.iter().map(job).collect()));
        let tree = match what {
            RenderWhat::All | RenderWhat::Config => {
                Out::map([("global", global(&self.global)), jobs()])
            }
            RenderWhat::Jobs => Out::map([jobs()]),
            RenderWhat::Logging => Out::map([("logging", logging(&self.global.logging))]),
        };
        let mut s = String::new();
        if format == RenderFormat::Json {
            tree.json(0, &mut s);
        } else {
            tree.yaml(0, &mut s);
        }
        s.push('\n');
        s
    }
}

/// An ordered JSON/YAML tree.
enum Out {
    S(String),
    B(bool),
    N(u64),
    L(Vec<Out>),
    M(Vec<(String, Out)>),
}

impl Out {
    fn map<const N: usize>(entries: [(&str, Out); N]) -> Out {
        Out::M(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn s(s: impl ToString) -> Out {
        Out::S(s.to_string())
    }

    /// JSON, indented by two spaces per level.
    fn json(&self, indent: usize, buf: &mut String) {
        let pad = |n: usize| format!("\n{}", " ".repeat(n));
        match self {
            Out::S(s) => buf.push_str(&quote(s)),
            Out::B(b) => buf.push_str(&b.to_string()),
            Out::N(n) => buf.push_str(&n.to_string()),
            Out::L(items) if items.is_empty() => buf.push_str("[]"),
            Out::M(entries) if entries.is_empty() => buf.push_str("{}"),
            Out::L(items) => {
                buf.push('[');
                for (i, x) in items.iter().enumerate() {
                    buf.push_str(if i > 0 { "," } else { "" });
                    buf.push_str(&pad(indent + 2));
                    x.json(indent + 2, buf);
                }
                buf.push_str(&pad(indent));
                buf.push(']');
            }
            Out::M(entries) => {
                buf.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    buf.push_str(if i > 0 { "," } else { "" });
                    buf.push_str(&pad(indent + 2));
                    buf.push_str(&quote(k));
                    buf.push_str(": ");
                    v.json(indent + 2, buf);
                }
                buf.push_str(&pad(indent));
                buf.push('}');
            }
        }
    }

    /// Block-style YAML at `indent` (the caller has written the key or `- `).
    fn yaml(&self, indent: usize, buf: &mut String) {
        let pad = " ".repeat(indent);
        match self {
            Out::L(items) if items.is_empty() => buf.push_str("[]"),
            Out::M(entries) if entries.is_empty() => buf.push_str("{}"),
            Out::L(items) => {
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        buf.push('\n');
                        buf.push_str(&pad);
                    }
                    buf.push_str("- ");
                    x.yaml(indent + 2, buf);
                }
            }
            Out::M(entries) => {
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        buf.push('\n');
                        buf.push_str(&pad);
                    }
                    buf.push_str(&yaml_scalar(k));
                    buf.push(':');
                    match v {
                        Out::M(e) if !e.is_empty() => {
                            buf.push('\n');
                            buf.push_str(&" ".repeat(indent + 2));
                            v.yaml(indent + 2, buf);
                        }
                        Out::L(l) if !l.is_empty() => {
                            buf.push('\n');
                            buf.push_str(&pad);
                            v.yaml(indent, buf);
                        }
                        _ => {
                            buf.push(' ');
                            v.yaml(indent + 2, buf);
                        }
                    }
                }
            }
            Out::S(s) => buf.push_str(&yaml_scalar(s)),
            Out::B(b) => buf.push_str(&b.to_string()),
            Out::N(n) => buf.push_str(&n.to_string()),
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A string as a YAML scalar: plain when unambiguous, else double-quoted.
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '+'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        s.to_string()
    } else {
        quote(s)
    }
}

/// A zrepl duration (`10m`, `1d`), in the largest exact unit.
fn zrepl_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if s > 0 && s.checked_rem(n) == Some(0) {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// A Go duration (`30s`, `1m30s`, `500ms`).
pub(crate) fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return if d.subsec_nanos().checked_rem(1_000_000) == Some(0) {
            format!("{}ms", d.as_millis())
        } else {
            format!("{}ns", d.as_nanos())
        };
    }
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

fn filter(f: &FsFilter) -> Out {
    Out::M(
        f.rules()
            .iter()
            .map(|r| {
                let lt = if r.subtree { "<" } else { "" };
                (format!("{}{lt}", r.path.as_str()), Out::B(r.include))
            })
            .collect(),
    )
}

fn global(g: &Global) -> Out {
    let monitoring = g
        .monitoring
        .iter()
        .map(|m| match m {
            Monitoring::Prometheus {
                listen,
                listen_freebind,
                zrepl_names,
            } => {
                let mut m = vec![
                    ("type".to_string(), Out::s("prometheus")),
                    ("listen".to_string(), Out::s(listen)),
                    ("listen_freebind".to_string(), Out::B(*listen_freebind)),
                ];
                if *zrepl_names {
                    m.push(("metric_names".into(), Out::s("zrepl")));
                }
                Out::M(m)
            }
        })
        .collect();
    let mut m: Vec<(String, Out)> = vec![
        ("logging".into(), logging(&g.logging)),
        ("monitoring".into(), Out::L(monitoring)),
        (
            "control".into(),
            Out::map([("sockpath", Out::s(g.control_sockpath.display()))]),
        ),
        (
            "serve".into(),
            Out::map([(
                "stdinserver",
                Out::map([("sockdir", Out::s(g.stdinserver_sockdir.display()))]),
            )]),
        ),
        (
            "history".into(),
            Out::map([
                ("path", Out::s(g.history_path.display())),
                (
                    "max_age",
                    Out::s(format!("{}s", g.history_max_age.as_secs())),
                ),
            ]),
        ),
        (
            "queue".into(),
            Out::map([
                ("path", Out::s(g.queue.path.display())),
                ("lease", Out::S(go_duration(g.queue.lease))),
                ("backoff_start", Out::S(go_duration(g.queue.backoff_start))),
                ("backoff_max", Out::S(go_duration(g.queue.backoff_max))),
                ("max_attempts", Out::N(u64::from(g.queue.max_attempts))),
            ]),
        ),
    ];
    if let Some(n) = &g.notify {
        m.push((
            "notify".into(),
            Out::map([
                ("command", Out::s(n.command.display())),
                ("timeout", Out::S(go_duration(n.timeout))),
                ("min_interval", Out::S(go_duration(n.min_interval))),
            ]),
        ));
    }
    Out::M(m)
}

fn logging(outlets: &[LogOutlet]) -> Out {
    Out::L(outlets.iter().map(outlet).collect())
}

fn outlet(o: &LogOutlet) -> Out {
    let level = match o.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    };
    let format = match o.format {
        LogFormat::Human => "human",
        LogFormat::Logfmt => "logfmt",
        LogFormat::Json => "json",
    };
    let mut m = vec![
        ("level".to_string(), Out::s(level)),
        ("format".into(), Out::s(format)),
    ];
    let ty = match &o.kind {
        OutletKind::Stdout { time, color } => {
            m.push(("time".into(), Out::B(*time)));
            m.push(("color".into(), Out::B(*color)));
            "stdout"
        }
        OutletKind::Syslog {
            facility,
            retry_interval,
        } => {
            m.push(("facility".into(), Out::s(facility)));
            m.push((
                "retry_interval".into(),
                Out::S(go_duration(*retry_interval)),
            ));
            "syslog"
        }
        OutletKind::Tcp {
            address,
            net,
            retry_interval,
            tls,
        } => {
            m.push(("address".into(), Out::s(address)));
            m.push(("net".into(), Out::s(net)));
            m.push((
                "retry_interval".into(),
                Out::S(go_duration(*retry_interval)),
            ));
            if let Some(t) = tls {
                m.push((
                    "tls".into(),
                    Out::map([
                        ("ca", Out::s(t.ca.display())),
                        ("cert", Out::s(t.cert.display())),
                        ("key", Out::s(t.key.display())),
                    ]),
                ));
            }
            "tcp"
        }
    };
    m.insert(0, ("type".into(), Out::s(ty)));
    Out::M(m)
}

mod jobs;
use jobs::job;
