//! The rig of the hostile-peer suite: a real `zrelay daemon` (the binary under test, or
//! `$ZRELAY_BIN`) serving a sink and a source over tcp on loopback, with short limits;
//! raw protocol connections for the attacker; its RSS and log; a legitimate client.
//!
//! The daemon maps `127.0.0.1` to the identity `legit` and `127.0.0.2` to `mallory`: the
//! attacker connects from `127.0.0.2`, the legitimate client from `127.0.0.1`, so the
//! per-client cap keeps the legitimate client served however many connections the
//! attacker opens. No ZFS is needed: every attack is refused at the protocol level, and
//! a legitimate `ping` needs no ZFS either.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use zrelay_rpc::{RpcConfig, MAGIC, PROTOCOL_VERSION};
use zrelay_transport::tcp::TcpConnector;

/// The limits every test daemon runs with (short, so that the suite is quick).
pub const LIMITS: &str = "
    max_connections: 24
    max_connections_per_client: 8
    handshake_timeout: 2s
    idle_timeout: 2s
    frame_timeout: 2s
    max_request_size: 1 MiB
    max_request_memory: 4 MiB
    max_estimate_concurrency: 2
    max_steps_per_request: 100
";

/// The RSS growth any attack may cause (the debug daemon starts at about 24 MB; the
/// request memory budget of the test limits is 4 MiB per job).
pub const RSS_GROWTH_MAX_KB: u64 = 16 << 10;

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn zrelay_bin() -> PathBuf {
    std::env::var_os("ZRELAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_zrelay")))
}

/// A running daemon with a sink on `sink` and a source on `source`.
pub struct Daemon {
    child: Child,
    pub pid: u32,
    pub sink: u16,
    pub source: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Start a daemon with [`LIMITS`] (plus `ulimit -n nofile` when given).
    pub fn start(nofile: Option<u32>) -> Daemon {
        Self::start_with(LIMITS, nofile)
    }

    /// [`Daemon::start`] with other limits. Ports are picked free and then
    /// released, so another process may take one before the daemon binds
    /// it: a start that fails with "address in use" is retried on new ports.
    pub fn start_with(limits: &str, nofile: Option<u32>) -> Daemon {
        let mut tries = 0;
        loop {
            match Self::try_start(limits, nofile) {
                Ok(d) => return d,
                Err(log) if log.contains("in use") && tries < 3 => tries += 1,
                Err(log) => panic!("the daemon exited at start:\n{log}"),
            }
        }
    }

    fn try_start(limits: &str, nofile: Option<u32>) -> Result<Daemon, String> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let (sink, source) = (free_port(), free_port());
        let clients = r#"{"127.0.0.1": "legit", "127.0.0.2": "mallory"}"#;
        let cfg = format!(
            "global:\n  logging:\n    - type: stdout\n      level: debug\n      format: human\n      color: false\n  control:\n    sockpath: \"{d}/ctl.sock\"\n  history:\n    path: \"{d}/history.sqlite\"\njobs:\n- name: sink\n  type: sink\n  serve: {{type: tcp, listen: \"127.0.0.1:{sink}\", clients: {clients}}}\n  root_fs: \"tank/sink\"\n  limits:{limits}- name: source\n  type: source\n  serve: {{type: tcp, listen: \"127.0.0.1:{source}\", clients: {clients}}}\n  filesystems: {{\"tank/src<\": true}}\n  snapshotting: {{type: manual}}\n  limits:{limits}"
        );
        let cfg_path = dir.path().join("zrelay.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.path().join("daemon.log");
        let logf = std::fs::File::create(&log).unwrap();
        let bin = zrelay_bin();
        let mut cmd = match nofile {
            // The shell lowers the descriptor limit, then becomes the daemon.
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "ulimit -n {n} && exec \"$0\" daemon --config \"$1\""
                    ))
                    .arg(&bin)
                    .arg(&cfg_path);
                c
            }
            None => {
                let mut c = Command::new(&bin);
                c.arg("daemon").arg("--config").arg(&cfg_path);
                c
            }
        };
        let child = cmd
            .env("ZRELAY_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let pid = child.id();
        let mut d = Daemon {
            child,
            pid,
            sink,
            source,
            log,
            _dir: dir,
        };
        let started = Instant::now();
        while !(d.listening(sink) && d.listening(source)) {
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!("({st})\n{}", d.log_text()));
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the daemon does not listen:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(d)
    }

    fn listening(&self, port: u16) -> bool {
        self.log_text().contains(&format!("127.0.0.1:{port}"))
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// VmRSS in KiB.
    pub fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The daemon is still running.
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the daemon died:\n{}",
            self.log_text()
        );
    }

    /// Wait (≤ 10 s) for a log line holding every one of `needles`; return it.
    pub async fn wait_log(&self, needles: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let log = self.log_text();
            if let Some(l) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no log line with {needles:?}:\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// No log line starts with `forged` (a peer's newline did not start a line).
    pub fn assert_no_forged_line(&self, forged: &str) {
        let log = self.log_text();
        assert!(
            !log.lines().any(|l| l.trim_start().starts_with(forged)),
            "a forged line {forged:?} reached the log:\n{}",
            tail(&log)
        );
    }

    /// A legitimate client (127.0.0.1) is served: a real ping on both jobs.
    pub async fn assert_legit_served(&self) {
        for (port, what) in [(self.sink, "receiver"), (self.source, "sender")] {
            let c =
                TcpConnector::new(&format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
            let info = tokio::time::timeout(
                Duration::from_secs(10),
                zrelay_rpc::ping(&c, &RpcConfig::default()),
            )
            .await
            .unwrap_or_else(|_| panic!("ping of the {what} timed out"))
            .unwrap_or_else(|e| panic!("ping of the {what}: {e}\n{}", tail(&self.log_text())));
            assert!(info.sender || info.receiver, "{info:?}");
        }
    }

    /// The end of every attack: alive, RSS under the bound, a legitimate client served.
    pub async fn check_after(&mut self, attack: &str, rss_before: u64) {
        self.assert_alive();
        let rss_after = self.rss_kb();
        println!(
            "FIGURE {attack}: rss_before={rss_before} kB rss_after={rss_after} kB (bound: +{RSS_GROWTH_MAX_KB} kB)"
        );
        assert!(
            rss_after < rss_before + RSS_GROWTH_MAX_KB,
            "{attack}: RSS grew from {rss_before} kB to {rss_after} kB"
        );
        self.assert_legit_served().await;
        self.assert_alive();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A raw TCP connection from the attacker's address, 127.0.0.2.
pub async fn mallory(port: u16) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    s.connect(([127, 0, 0, 1], port).into()).await.unwrap()
}

/// A hello with `version` and `software`.
pub fn hello(version: u32, software: &[u8]) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&(software.len() as u16).to_be_bytes());
    h.extend_from_slice(software);
    h
}

/// Send our hello and read the server's.
pub async fn handshake(s: &mut TcpStream) {
    s.write_all(&hello(PROTOCOL_VERSION, b"hostile"))
        .await
        .unwrap();
    read_hello(s).await;
}

/// Read the server's hello.
pub async fn read_hello(s: &mut TcpStream) {
    let mut fixed = [0u8; 14];
    s.read_exact(&mut fixed).await.unwrap();
    assert_eq!(fixed[..8], MAGIC);
    let mut sw = vec![0u8; u16::from_be_bytes([fixed[12], fixed[13]]) as usize];
    s.read_exact(&mut sw).await.unwrap();
}

/// Whether the server has closed `s` (EOF or reset) by now, without waiting.
pub fn is_closed(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match s.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// A frame: kind, length, payload.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The next non-heartbeat frame (kind, payload), or `None` at EOF / a reset.
pub async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    loop {
        let mut hdr = [0u8; 5];
        s.read_exact(&mut hdr).await.ok()?;
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
        assert!(len < 1 << 20, "the server sent a frame of {len} bytes");
        let mut p = vec![0u8; len];
        s.read_exact(&mut p).await.ok()?;
        if hdr[0] != zrelay_rpc::frame_kind::HEARTBEAT {
            return Some((hdr[0], p));
        }
    }
}

/// Wait until the server closes `s` (EOF or reset); the time it took. Anything the server
/// sends before is skipped.
pub async fn time_to_close(s: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server did not close the connection within {limit:?}"),
        }
    }
}

/// Run `n` attacker tasks at once.
pub async fn many<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let f = Arc::new(f);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let f = f.clone();
        set.spawn(async move { f(i).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}
