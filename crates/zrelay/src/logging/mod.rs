//! zrepl's logging outlets (`global.logging`) on `tracing`.
//!
//! [`init`] installs a global registry with one layer per outlet, each with
//! its own level filter (or the `ZRELAY_LOG` directives when given):
//!
//! - `stdout`: tracing-subscriber's `fmt` (human), its JSON format, or
//!   `tracing-logfmt`, through a non-blocking, lossy writer.
//! - `syslog`: one datagram per event to `/dev/log` (see [`syslog`]).
//! - `tcp`: one line per event over TCP or TLS, dropped when the peer is
//!   slow or down (see [`tcp`]).
//!
//! As in zrepl, the first outlet receives the errors of the others (the
//! first outlet's own errors go to stderr). Optional extras: a callback per
//! event with the enclosing `job` span's name (for
//! `zrelay_daemon_log_entries`) and a chrome trace file.

mod events;
mod format;
mod report;
mod syslog;
mod tcp;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_net;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use tracing::{Dispatch, Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Filter, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Registry;
use zrelay_config::{LogLevel, LogOutlet, OutletKind};

pub use events::EventCallback;
use format::FormatOpts;
use report::{Reporter, OUTLET_TARGET};

/// Where syslog datagrams go unless a test says otherwise.
pub const DEFAULT_SYSLOG_PATH: &str = "/dev/log";

/// How long dropping the [`LogGuard`] waits for each tcp outlet's queue.
const TCP_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Options of [`init`] beyond the configured outlets.
#[derive(Default, Clone)]
pub struct LogOptions {
    /// `ZRELAY_LOG` directives; when set they replace every outlet's level.
    pub env_filter: Option<String>,
    /// Write a chrome trace (chrome://tracing, Perfetto) to this file.
    pub chrome_trace: Option<PathBuf>,
    /// Called for every event that passes any outlet's filter, with the
    /// name of the nearest enclosing span carrying a `job` field.
    pub on_event: Option<EventCallback>,
}

/// Flushes the chrome trace and the outlets' queues when dropped.
#[must_use = "dropping the guard stops the chrome trace and flushes the outlets"]
pub struct LogGuard {
    tcp: Vec<tcp::Flusher>,
    _stdout: Option<tracing_appender::non_blocking::WorkerGuard>,
    _chrome: Option<tracing_chrome::FlushGuard>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        for t in &self.tcp {
            t.flush(TCP_FLUSH_TIMEOUT);
        }
        // Then the stdout worker and the chrome trace, in field order.
    }
}

/// Install the global subscriber for `outlets`.
// Remove the allow once main.rs calls `init`.
pub fn init(outlets: &[LogOutlet], opts: LogOptions) -> Result<LogGuard> {
    let (dispatch, guard) = build(outlets, opts, Sinks::default())?;
    dispatch
        .try_init()
        .context("a global tracing subscriber is already installed")?;
    Ok(guard)
}

/// Where the outlets write; tests replace the defaults.
pub(crate) struct Sinks {
    /// The stdout outlet's writer; `None`: a non-blocking process stdout.
    pub stdout: Option<BoxMakeWriter>,
    /// The syslog socket.
    pub syslog_path: PathBuf,
}

impl Default for Sinks {
    fn default() -> Self {
        Sinks {
            stdout: None,
            syslog_path: PathBuf::from(DEFAULT_SYSLOG_PATH),
        }
    }
}

type BoxLayer = Box<dyn Layer<Registry> + Send + Sync>;
type BoxFilter = Box<dyn Filter<Registry> + Send + Sync>;

/// The subscriber for `outlets` (not installed) and its guard.
pub(crate) fn build(
    outlets: &[LogOutlet],
    opts: LogOptions,
    mut sinks: Sinks,
) -> Result<(Dispatch, LogGuard)> {
    let env = opts.env_filter.as_deref();
    if let Some(d) = env {
        EnvFilter::try_new(d).with_context(|| format!("ZRELAY_LOG: invalid directives {d:?}"))?;
    }
    let (reports, relay) = report::channel();
    let mut guard = LogGuard {
        tcp: Vec::new(),
        _stdout: None,
        _chrome: None,
    };
    let mut layers: Vec<BoxLayer> = Vec::new();
    for (i, outlet) in outlets.iter().enumerate() {
        let first = i == 0;
        let name = outlet_name(outlet);
        let reporter = Reporter::new(name.clone(), (!first).then(|| reports.clone()));
        let layer = match &outlet.kind {
            OutletKind::Stdout { time, color } => {
                let (writer, ansi) = match sinks.stdout.take() {
                    Some(w) => (w, *color),
                    None => {
                        let (w, g) = tracing_appender::non_blocking(std::io::stdout());
                        guard._stdout = Some(g);
                        (
                            BoxMakeWriter::new(w),
                            *color && std::io::stdout().is_terminal(),
                        )
                    }
                };
                let fo = FormatOpts { time: *time, ansi };
                format::layer(outlet.format, fo, writer)
            }
            OutletKind::Syslog {
                facility,
                retry_interval,
            } => {
                let code = syslog::facility_code(facility)
                    .with_context(|| format!("{name}: unknown syslog facility {facility:?}"))?;
                let w = syslog::SyslogWriter::new(
                    sinks.syslog_path.clone(),
                    code,
                    *retry_interval,
                    reporter,
                );
                format::layer(outlet.format, FormatOpts::plain(false), w)
            }
            OutletKind::Tcp {
                address,
                net,
                retry_interval,
                tls,
            } => {
                let cfg = tcp::TcpConfig::new(address, net, *retry_interval, tls.as_ref())
                    .with_context(|| name.clone())?;
                let (w, flusher) = tcp::spawn(cfg, reporter, tcp::QUEUE_LINES)?;
                guard.tcp.push(flusher);
                format::layer(outlet.format, FormatOpts::plain(true), w)
            }
        };
        layers.push(
            layer
                .with_filter(outlet_filter(outlet.level, env, first)?)
                .boxed(),
        );
    }
    let max = outlets.iter().map(|o| o.level).max();
    if let Some(cb) = opts.on_event {
        // Job spans are always seen, so that events below any outlet's
        // span level still find their job.
        let filter = union_filter(max, env)?.or(filter_fn(events::is_job_span));
        layers.push(events::JobLayer::new(cb).with_filter(filter).boxed());
    }
    if let Some(path) = &opts.chrome_trace {
        let (layer, g) = tracing_chrome::ChromeLayerBuilder::new()
            .file(path)
            .include_args(true)
            .trace_style(tracing_chrome::TraceStyle::Async)
            .build();
        guard._chrome = Some(g);
        layers.push(layer.with_filter(union_filter(max, env)?).boxed());
    }
    let dispatch = Dispatch::new(Registry::default().with(layers));
    relay.spawn(&dispatch)?;
    Ok((dispatch, guard))
}

fn outlet_name(o: &LogOutlet) -> String {
    match &o.kind {
        OutletKind::Stdout { .. } => "stdout outlet".into(),
        OutletKind::Syslog { .. } => "syslog outlet".into(),
        OutletKind::Tcp { address, .. } => format!("tcp outlet {address}"),
    }
}

/// The tracing level of a configured level.
pub fn level_filter(l: LogLevel) -> LevelFilter {
    match l {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
    }
}

/// Events up to `level`; spans up to `level` but at least info, so that an
/// error-only outlet still shows the job/filesystem context of its events.
fn level_and_spans(level: LevelFilter) -> BoxFilter {
    let spans = level.max(LevelFilter::INFO);
    let f = filter_fn(move |m: &Metadata<'_>| {
        let max = if m.is_span() { spans } else { level };
        max >= *m.level()
    });
    FilterExt::boxed(f.with_max_level_hint(spans))
}

/// An outlet's filter: its level (or `env`), and for all but the first
/// outlet none of the other outlets' error reports.
fn outlet_filter(level: LogLevel, env: Option<&str>, first: bool) -> Result<BoxFilter> {
    let base = match env {
        Some(d) => FilterExt::boxed(EnvFilter::try_new(d)?),
        None => level_and_spans(level_filter(level)),
    };
    Ok(if first {
        base
    } else {
        base.and(filter_fn(|m| m.target() != OUTLET_TARGET)).boxed()
    })
}

/// What passes any outlet's filter.
fn union_filter(max: Option<LogLevel>, env: Option<&str>) -> Result<BoxFilter> {
    Ok(match env {
        Some(d) => FilterExt::boxed(EnvFilter::try_new(d)?),
        None => level_and_spans(max.map_or(LevelFilter::OFF, level_filter)),
    })
}

/// The `level` label of `zrelay_daemon_log_entries` for a tracing level.
// Remove the allow once main.rs uses it for the on_event callback.
pub fn level_label(l: Level) -> &'static str {
    match l {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        _ => "debug",
    }
}
