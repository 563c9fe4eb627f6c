//! The `syslog` outlet: one datagram per event to `/dev/log`.
//!
//! Datagrams use the local BSD format that glibc's `syslog(3)` sends to
//! `/dev/log` and that journald and rsyslog parse:
//! `<PRI>Mmm dd hh:mm:ss zrelay[PID]: MESSAGE` (timestamp in UTC; both
//! daemons stamp local messages with their own receive time anyway), with
//! PRI = facility * 8 + severity. The socket is non-blocking: a message
//! that does not fit is dropped, never waited for. When the socket is
//! missing or broken, messages are dropped and connecting is retried after
//! `retry_interval`.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use super::report::Reporter;

/// The syslog tag (program name).
const TAG: &str = "zrelay";

/// Longer messages are cut (a datagram must fit the socket buffer).
pub(crate) const MAX_MESSAGE: usize = 32 * 1024;

/// The code of a syslog facility name (`local0`, `daemon`, …).
pub(crate) fn facility_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 12] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp",
    ];
    let name = name.trim().to_ascii_lowercase();
    if let Some(i) = NAMES.iter().position(|n| *n == name) {
        return u8::try_from(i).ok();
    }
    match name.strip_prefix("local")?.parse::<u8>() {
        Ok(n @ 0..=7) => Some(16 + n),
        _ => None,
    }
}

/// The syslog severity of a level.
pub(crate) fn severity(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The outlet's `MakeWriter`: each event's line becomes one datagram.
#[derive(Clone)]
pub(crate) struct SyslogWriter(Arc<Inner>);

struct Inner {
    path: PathBuf,
    facility: u8,
    retry: Duration,
    pid: u32,
    reporter: Reporter,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sock: Option<UnixDatagram>,
    /// No connection attempt before this instant.
    next_attempt: Option<Instant>,
    dropped: u64,
}

impl SyslogWriter {
    /// Datagrams to the socket at `path` with `facility` (a code).
    pub(crate) fn new(path: PathBuf, facility: u8, retry: Duration, reporter: Reporter) -> Self {
        SyslogWriter(Arc::new(Inner {
            path,
            facility,
            retry,
            pid: std::process::id(),
            reporter,
            state: Mutex::new(State::default()),
        }))
    }
}

impl SyslogWriter {
    fn datagram(&self, level: &Level) -> Datagram<'_> {
        Datagram {
            inner: &self.0,
            severity: severity(level),
            buf: Vec::new(),
        }
    }
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = Datagram<'a>;

    fn make_writer(&'a self) -> Datagram<'a> {
        self.datagram(&Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Datagram<'a> {
        self.datagram(meta.level())
    }
}

/// Collects one event's line and sends it when dropped.
pub(crate) struct Datagram<'a> {
    inner: &'a Inner,
    severity: u8,
    buf: Vec<u8>,
}

impl Write for Datagram<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Datagram<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let packet = packet(
                self.inner.facility,
                self.severity,
                SystemTime::now(),
                self.inner.pid,
                &self.buf,
            );
            self.inner.send(&packet);
        }
    }
}

/// The datagram for `message` (one formatted line).
pub(crate) fn packet(
    facility: u8,
    severity: u8,
    now: SystemTime,
    pid: u32,
    message: &[u8],
) -> Vec<u8> {
    let pri = u16::from(facility) * 8 + u16::from(severity);
    let mut msg = message.trim_ascii();
    if msg.len() > MAX_MESSAGE {
        msg = &msg[..MAX_MESSAGE];
    }
    let mut p = format!("<{pri}>{} {TAG}[{pid}]: ", stamp(now)).into_bytes();
    p.extend_from_slice(msg);
    p
}

impl Inner {
    fn send(&self, packet: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if st.sock.is_none() {
            if st.next_attempt.is_some_and(|t| now < t) {
                st.dropped += 1;
                return;
            }
            match connect(&self.path) {
                Ok(s) => st.sock = Some(s),
                Err(e) => {
                    st.next_attempt = Some(now + self.retry);
                    st.dropped += 1;
                    let why = format!("connect to {}: {e}", self.path.display());
                    self.reporter.down(&why);
                    return;
                }
            }
        }
        let Some(sock) = &st.sock else { return };
        match sock.send(packet) {
            Ok(_) => self.reporter.up(st.dropped),
            // The receiver is behind: drop rather than wait.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => st.dropped += 1,
            Err(e) => {
                st.sock = None;
                st.next_attempt = Some(now + self.retry);
                st.dropped += 1;
                let why = format!("send to {}: {e}", self.path.display());
                self.reporter.down(&why);
            }
        }
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// `Mmm dd hh:mm:ss` (day padded with a space) in UTC.
pub(crate) fn stamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (_, month, day) = civil_from_days(secs / 86_400);
    let s = secs % 86_400;
    format!(
        "{} {day:>2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01
/// (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
