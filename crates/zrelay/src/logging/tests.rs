//! Formats, filters, the event hook and the chrome trace.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tracing::{info_span, Level};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::Registry;
use zrelay_config::{LogFormat, LogLevel, LogOutlet, OutletKind};

use super::format::{self, FormatOpts};
use super::syslog::{civil_from_days, facility_code, packet, stamp};
use super::{build, LogGuard, LogOptions, Sinks};

/// An in-memory writer.
#[derive(Clone, Default)]
pub(super) struct Buf(Arc<Mutex<Vec<u8>>>);

impl Buf {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub(super) fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }
}

impl io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buf {
    type Writer = Buf;

    fn make_writer(&'a self) -> Buf {
        self.clone()
    }
}

pub(super) fn stdout(level: LogLevel, format: LogFormat, time: bool) -> LogOutlet {
    LogOutlet {
        level,
        format,
        kind: OutletKind::Stdout { time, color: false },
    }
}

/// Build the subscriber with stdout into a buffer, run `f` under it.
pub(super) fn run(
    outlets: &[LogOutlet],
    opts: LogOptions,
    sinks: Sinks,
    f: impl FnOnce(),
) -> LogGuard {
    let (d, g) = build(outlets, opts, sinks).unwrap();
    tracing::dispatcher::with_default(&d, f);
    g
}

pub(super) fn sinks(buf: &Buf) -> Sinks {
    Sinks {
        stdout: Some(BoxMakeWriter::new(buf.clone())),
        ..Sinks::default()
    }
}

/// job → attempt → filesystem → step, one info and one debug event.
pub(super) fn nested_event() {
    let _job = info_span!("job", job = %"prod").entered();
    let _attempt = info_span!("attempt", n = 1).entered();
    let _fs = info_span!("filesystem", fs = %"pool/a b").entered();
    let _step = info_span!("step", step = %"@a->@b").entered();
    tracing::info!(bytes = 42, "step done");
    tracing::debug!("debug detail");
}

/// `format` lines of [`nested_event`] through a bare layer (level info).
fn lines_of(format: LogFormat, time: bool) -> Vec<String> {
    let buf = Buf::default();
    let layer = format::layer(format, FormatOpts::plain(time), buf.clone());
    let sub =
        Registry::default().with(layer.with_filter(tracing::level_filters::LevelFilter::INFO));
    tracing::subscriber::with_default(sub, nested_event);
    buf.lines()
}

#[test]
fn human_line_shape() {
    let lines = lines_of(LogFormat::Human, true);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert!(
        l.starts_with(|c: char| c.is_ascii_digit()),
        "no timestamp: {l}"
    );
    assert!(
        l.contains(
            " INFO job{job=prod}:attempt{n=1}:filesystem{fs=pool/a b}:step{step=@a->@b}: \
             zrelay::logging::tests: step done bytes=42"
        ),
        "{l}"
    );
    let l = &lines_of(LogFormat::Human, false)[0];
    assert!(l.trim_start().starts_with("INFO job{job=prod}:"), "{l}");
}

#[test]
fn json_line_shape() {
    for time in [true, false] {
        let lines = lines_of(LogFormat::Json, time);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["fields"]["message"], "step done");
        assert_eq!(v["fields"]["bytes"], 42);
        assert_eq!(v["span"]["name"], "step");
        assert_eq!(v["span"]["step"], "@a->@b");
        let names: Vec<&str> = v["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["job", "attempt", "filesystem", "step"]);
        assert_eq!(v["spans"][0]["job"], "prod");
        assert_eq!(v["spans"][2]["fs"], "pool/a b");
        assert_eq!(v.get("timestamp").is_some(), time, "{v}");
    }
}

/// key=value pairs of a logfmt line (values unquoted).
fn logfmt_pairs(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let (k, v) = rest.split_once('=').expect("key=value");
        let (val, next) = if let Some(q) = v.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = v.find(' ').unwrap_or(v.len());
            (v[..end].to_string(), &v[end..])
        };
        out.push((k.to_string(), val));
        rest = next.trim_start();
    }
    out
}

#[test]
fn logfmt_line_shape() {
    let lines = lines_of(LogFormat::Logfmt, true);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let pairs = logfmt_pairs(&lines[0]);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {k} in {}", lines[0]))
    };
    assert_eq!(pairs[0].0, "ts", "{}", lines[0]);
    assert_eq!(get("level"), "info");
    assert_eq!(get("target"), "zrelay::logging::tests");
    assert_eq!(get("span"), "step");
    assert_eq!(get("span_path"), "job>attempt>filesystem>step");
    assert_eq!(get("message"), "step done");
    assert_eq!(get("bytes"), "42");
    assert_eq!(get("job"), "prod");
    assert_eq!(get("n"), "1");
    assert_eq!(get("fs"), "pool/a b");
    assert_eq!(get("step"), "@a->@b");
    let untimed = &lines_of(LogFormat::Logfmt, false)[0];
    assert!(untimed.starts_with("level=info "), "{untimed}");
}

#[test]
fn stdout_outlet_levels_and_env_override() {
    let buf = Buf::default();
    let outlets = [stdout(LogLevel::Info, LogFormat::Human, false)];
    let _g = run(&outlets, LogOptions::default(), sinks(&buf), nested_event);
    let text = buf.text();
    assert!(text.contains("step done"), "{text}");
    assert!(!text.contains("debug detail"), "{text}");

    let buf = Buf::default();
    let outlets = [stdout(LogLevel::Error, LogFormat::Human, false)];
    let _g = run(&outlets, LogOptions::default(), sinks(&buf), nested_event);
    assert_eq!(buf.text(), "");

    let buf = Buf::default();
    let opts = LogOptions {
        env_filter: Some("debug".into()),
        ..LogOptions::default()
    };
    let _g = run(&outlets, opts, sinks(&buf), nested_event);
    assert!(
        buf.text().contains("DEBUG job{job=prod}:"),
        "{}",
        buf.text()
    );

    let opts = LogOptions {
        env_filter: Some("zrelay=[".into()),
        ..LogOptions::default()
    };
    assert!(build(&outlets, opts, sinks(&Buf::default())).is_err());
}

#[test]
fn error_outlet_still_shows_span_context() {
    let buf = Buf::default();
    let outlets = [stdout(LogLevel::Warn, LogFormat::Logfmt, false)];
    let _g = run(&outlets, LogOptions::default(), sinks(&buf), || {
        let _job = info_span!("job", job = %"prod").entered();
        tracing::info!("hidden");
        tracing::warn!("shown");
    });
    let lines = buf.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("message=shown"), "{}", lines[0]);
    assert!(lines[0].contains("job=prod"), "{}", lines[0]);
}

type Seen = Arc<Mutex<Vec<(Level, Option<String>)>>>;

fn hook(seen: &Seen) -> LogOptions {
    let s = seen.clone();
    LogOptions {
        on_event: Some(Arc::new(move |l: Level, job: Option<&str>| {
            s.lock().unwrap().push((l, job.map(str::to_string)));
        })),
        ..LogOptions::default()
    }
}

#[test]
fn on_event_gets_the_enclosing_job() {
    let seen = Seen::default();
    let outlets = [stdout(LogLevel::Warn, LogFormat::Human, true)];
    let _g = run(&outlets, hook(&seen), sinks(&Buf::default()), || {
        {
            let _job = info_span!("job", job = %"prod").entered();
            let _a = info_span!("attempt", n = 2).entered();
            tracing::warn!("in prod");
            tracing::info!("below every outlet");
        }
        {
            let _s = info_span!("snapshotter", job = %"snaps").entered();
            tracing::error!("in snapshotter");
        }
        {
            let _c = info_span!("conn", job = %"sink", client = "a").entered();
            let _inner = info_span!("job", job = %"inner").entered();
            tracing::warn!("nearest wins");
        }
        tracing::warn!("no job");
    });
    let seen = seen.lock().unwrap().clone();
    let want = [
        (Level::WARN, Some("prod")),
        (Level::ERROR, Some("snaps")),
        (Level::WARN, Some("inner")),
        (Level::WARN, None),
    ];
    let want: Vec<(Level, Option<String>)> = want
        .iter()
        .map(|(l, j)| (*l, j.map(str::to_string)))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn chrome_trace_is_valid_json_with_the_spans() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    let opts = LogOptions {
        chrome_trace: Some(path.clone()),
        ..LogOptions::default()
    };
    let outlets = [stdout(LogLevel::Info, LogFormat::Json, true)];
    let (d, g) = build(&outlets, opts, sinks(&Buf::default())).unwrap();
    tracing::dispatcher::with_default(&d, || {
        nested_event();
        let _p = info_span!("pruning", job = %"prod").entered();
    });
    drop(g);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for want in ["job", "attempt", "filesystem", "step", "pruning"] {
        assert!(names.contains(&want), "{want} missing in {names:?}");
    }
}

#[test]
fn facilities() {
    assert_eq!(facility_code("kern"), Some(0));
    assert_eq!(facility_code("user"), Some(1));
    assert_eq!(facility_code("daemon"), Some(3));
    assert_eq!(facility_code("authpriv"), Some(10));
    assert_eq!(facility_code("local0"), Some(16));
    assert_eq!(facility_code("LOCAL7"), Some(23));
    assert_eq!(facility_code("local8"), None);
    assert_eq!(facility_code("nope"), None);
    let outlets = [LogOutlet {
        level: LogLevel::Info,
        format: LogFormat::Human,
        kind: OutletKind::Syslog {
            facility: "local9".into(),
            retry_interval: Duration::from_secs(1),
        },
    }];
    let err = build(&outlets, LogOptions::default(), Sinks::default()).err();
    assert!(format!("{err:?}").contains("local9"), "{err:?}");
}

#[test]
fn syslog_packet_and_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    assert_eq!(civil_from_days(1_709_164_800 / 86_400), (2024, 2, 29));
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    assert_eq!(stamp(at(1_709_164_800)), "Feb 29 00:00:00");
    assert_eq!(stamp(at(1_704_459_845)), "Jan  5 13:04:05");
    let p = packet(16, 3, at(1_704_459_845), 77, b" ERROR boom\n");
    assert_eq!(p, b"<131>Jan  5 13:04:05 zrelay[77]: ERROR boom");
    let long = vec![b'x'; 100_000];
    let p = packet(1, 7, SystemTime::now(), 1, &long);
    assert!(p.len() < 33 * 1024);
}
