//! `global`: logging outlets, monitoring, control socket, stdinserver sockets.

use std::path::PathBuf;
use std::time::Duration;

use super::{Cx, R};
use crate::error::KeyPath;
use crate::model::{Global, LogFormat, LogLevel, LogOutlet, Monitoring, OutletKind, TlsFiles};
use crate::raw::{RawFormat, RawGlobal, RawLevel, RawMonitoring, RawOutlet};

/// zrelay's default control socket (zrepl: `/var/run/zrepl/control`).
pub const DEFAULT_CONTROL_SOCKPATH: &str = "/var/run/zrelay/control";
/// zrelay's default stdinserver socket directory (zrepl: `/var/run/zrepl/stdinserver`).
pub const DEFAULT_STDINSERVER_SOCKDIR: &str = "/var/run/zrelay/stdinserver";
/// Default `retry_interval` of syslog and tcp outlets.
const DEFAULT_RETRY: Duration = Duration::from_secs(10);

/// syslog facilities zrepl accepts.
const FACILITIES: [&str; 20] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// Networks a tcp outlet may dial.
const NETS: [&str; 6] = ["tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"];

/// The default logging: one stdout outlet, level warn, human, time and color on.
pub fn default_logging() -> Vec<LogOutlet> {
    vec![LogOutlet {
        level: LogLevel::Warn,
        format: LogFormat::Human,
        kind: OutletKind::Stdout {
            time: true,
            color: true,
        },
    }]
}

fn level(l: RawLevel) -> LogLevel {
    match l {
        RawLevel::Error => LogLevel::Error,
        RawLevel::Warn => LogLevel::Warn,
        RawLevel::Info => LogLevel::Info,
        RawLevel::Debug => LogLevel::Debug,
    }
}

fn format(f: RawFormat) -> LogFormat {
    match f {
        RawFormat::Human => LogFormat::Human,
        RawFormat::Logfmt => LogFormat::Logfmt,
        RawFormat::Json => LogFormat::Json,
    }
}

pub(super) fn global(cx: Cx<'_>, raw: Option<&RawGlobal>) -> R<Global> {
    let default = RawGlobal::default();
    let raw = raw.unwrap_or(&default);
    let path = KeyPath::root().k("global");
    let logging = match &raw.logging {
        None => default_logging(),
        Some(list) => outlets(cx, &path.k("logging"), list)?,
    };
    let mut monitoring = Vec::new();
    for (i, m) in raw.monitoring.iter().enumerate() {
        let p = path.k("monitoring").i(i);
        if i > 0 {
            let first = cx.at(&path.k("monitoring").i(0));
            return Err(cx.err(
                &p,
                format!("monitoring may be configured at most once (first at {first})"),
            ));
        }
        let RawMonitoring::Prometheus(m) = m;
        let zrepl_names = match m.metric_names.as_deref() {
            None | Some("zrelay") => false,
            Some("zrepl") => true,
            Some(other) => {
                return Err(cx.err(
                    &p.k("metric_names"),
                    format!(
                        "must be `zrelay` or `zrepl`, got \"{}\"",
                        other.escape_debug()
                    ),
                ))
            }
        };
        monitoring.push(Monitoring::Prometheus {
            listen: cx.host_port(&p.k("listen"), &m.listen)?,
            listen_freebind: m.listen_freebind.unwrap_or(false),
            zrepl_names,
        });
    }
    let control_sockpath = match raw.control.as_ref().and_then(|c| c.sockpath.as_deref()) {
        None => PathBuf::from(DEFAULT_CONTROL_SOCKPATH),
        Some(s) => cx.file_path(&path.k("control").k("sockpath"), s)?,
    };
    let sockdir = raw
        .serve
        .as_ref()
        .and_then(|s| s.stdinserver.as_ref())
        .and_then(|s| s.sockdir.as_deref());
    let stdinserver_sockdir = match sockdir {
        None => PathBuf::from(DEFAULT_STDINSERVER_SOCKDIR),
        Some(s) => cx.file_path(&path.k("serve").k("stdinserver").k("sockdir"), s)?,
    };
    let hist = raw.history.as_ref();
    let history_path = match hist.and_then(|h| h.path.as_deref()) {
        None => PathBuf::from(crate::model::DEFAULT_HISTORY_PATH),
        Some(s) => cx.file_path(&path.k("history").k("path"), s)?,
    };
    let history_max_age = match hist.and_then(|h| h.max_age.as_deref()) {
        None => crate::model::DEFAULT_HISTORY_MAX_AGE,
        Some(s) => crate::units::parse_positive_duration(s)
            .map_err(|e| cx.err(&path.k("history").k("max_age"), e))?,
    };
    let queue = queue(cx, &path.k("queue"), raw.queue.as_ref(), &history_path)?;
    Ok(Global {
        logging,
        monitoring,
        control_sockpath,
        stdinserver_sockdir,
        history_path,
        history_max_age,
        queue,
        notify: crate::notify::notify(cx, &path.k("notify"), raw.notify.as_ref())?,
        knobs: crate::Knobs::default(),
    })
}

fn queue(
    cx: Cx<'_>,
    path: &KeyPath,
    raw: Option<&crate::raw::RawQueue>,
    history_path: &std::path::Path,
) -> R<crate::model::QueueConfig> {
    let d = crate::model::QueueConfig::beside(history_path);
    let Some(r) = raw else { return Ok(d) };
    let dur =
        |key: &str, v: &Option<String>, default| cx.go_duration(&path.k(key), v, default, true);
    let backoff_start = dur("backoff_start", &r.backoff_start, d.backoff_start)?;
    let backoff_max = dur("backoff_max", &r.backoff_max, d.backoff_max)?;
    if backoff_start > backoff_max {
        return Err(cx.err(
            &path.k("backoff_max"),
            format!("must be at least backoff_start ({backoff_start:?}), got {backoff_max:?}"),
        ));
    }
    let max_attempts = match r.max_attempts {
        None => d.max_attempts,
        Some(n) if (1..=1000).contains(&n) => n as u32,
        Some(n) => {
            return Err(cx.err(
                &path.k("max_attempts"),
                format!("must be between 1 and 1000, got {n}"),
            ))
        }
    };
    Ok(crate::model::QueueConfig {
        path: match r.path.as_deref() {
            None => d.path,
            Some(s) => cx.file_path(&path.k("path"), s)?,
        },
        lease: dur("lease", &r.lease, d.lease)?,
        backoff_start,
        backoff_max,
        max_attempts,
    })
}

fn outlets(cx: Cx<'_>, path: &KeyPath, list: &[RawOutlet]) -> R<Vec<LogOutlet>> {
    let mut out = Vec::new();
    let mut stdout_at: Option<usize> = None;
    let mut syslog_at: Option<usize> = None;
    for (i, o) in list.iter().enumerate() {
        let p = path.i(i);
        let once = |seen: &mut Option<usize>, what: &str| -> R<()> {
            if let Some(first) = *seen {
                return Err(cx.err(
                    &p,
                    format!(
                        "a {what} outlet may be configured only once (first at {})",
                        cx.at(&path.i(first))
                    ),
                ));
            }
            *seen = Some(i);
            Ok(())
        };
        let outlet = match o {
            RawOutlet::Stdout(s) => {
                once(&mut stdout_at, "stdout")?;
                LogOutlet {
                    level: level(s.level),
                    format: format(s.format),
                    kind: OutletKind::Stdout {
                        time: s.time.unwrap_or(true),
                        color: s.color.unwrap_or(true),
                    },
                }
            }
            RawOutlet::Syslog(s) => {
                once(&mut syslog_at, "syslog")?;
                let facility = s.facility.clone().unwrap_or_else(|| "local0".into());
                if !FACILITIES.contains(&facility.as_str()) {
                    return Err(cx.err(
                        &p.k("facility"),
                        format!(
                            "invalid syslog facility {facility:?}, expected one of {}",
                            FACILITIES.join(", ")
                        ),
                    ));
                }
                LogOutlet {
                    level: level(s.level),
                    format: format(s.format),
                    kind: OutletKind::Syslog {
                        facility,
                        retry_interval: cx.go_duration(
                            &p.k("retry_interval"),
                            &s.retry_interval,
                            DEFAULT_RETRY,
                            true,
                        )?,
                    },
                }
            }
            RawOutlet::Tcp(t) => {
                let net = t.net.clone().unwrap_or_else(|| "tcp".into());
                if !NETS.contains(&net.as_str()) {
                    return Err(cx.err(
                        &p.k("net"),
                        format!("invalid net {net:?}, expected one of {}", NETS.join(", ")),
                    ));
                }
                let tls = match &t.tls {
                    None => None,
                    Some(f) => {
                        let tp = p.k("tls");
                        Some(TlsFiles {
                            ca: cx.file_path(&tp.k("ca"), &f.ca)?,
                            cert: cx.file_path(&tp.k("cert"), &f.cert)?,
                            key: cx.file_path(&tp.k("key"), &f.key)?,
                        })
                    }
                };
                LogOutlet {
                    level: level(t.level),
                    format: format(t.format),
                    kind: OutletKind::Tcp {
                        address: cx.host_port(&p.k("address"), &t.address)?,
                        net,
                        retry_interval: cx.go_duration(
                            &p.k("retry_interval"),
                            &t.retry_interval,
                            DEFAULT_RETRY,
                            true,
                        )?,
                        tls,
                    },
                }
            }
        };
        out.push(outlet);
    }
    Ok(out)
}
