//! ssh+stdinserver, active side: the "ssh" program is a shell script here
//! (real OpenSSH is tested elsewhere).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zrelay_transport::{Conn, Connector, SshConnector, TransportError, BANNER};
use zrelay_zfs::Classify;

struct Fake {
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "not really a key\n").unwrap();
        Fake { dir, key }
    }

    /// A connector running `body` as a /bin/sh script.
    fn connector(&self, body: &str, dial_timeout: Duration) -> SshConnector {
        let script = self.dir.path().join("fake-ssh");
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        SshConnector::new(
            "backup.example",
            "zrelay",
            2222,
            &self.key,
            &[
                "ServerAliveInterval=10".to_string(),
                "Compression=no".to_string(),
            ],
            dial_timeout,
        )
        .unwrap()
        .with_program(script)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Connect, retrying when exec hits ETXTBSY (the script was just written
/// and another test thread forked meanwhile).
async fn connect(c: &SshConnector) -> Result<Conn, TransportError> {
    for _ in 0..20 {
        match c.connect().await {
            Err(e) if e.to_string().contains("Text file busy") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            r => return r,
        }
    }
    c.connect().await
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[tokio::test]
async fn ssh_handshake_then_bytes_both_ways() {
    let f = Fake::new();
    let args = f.path("args");
    let env = f.path("env");
    let body = format!(
        "printf '%s\\n' \"$@\" > '{}'\nenv > '{}'\nprintf 'ZRELAY-STDINSERVER 1\\n'\nexec cat",
        args.display(),
        env.display()
    );
    let c = f.connector(&body, Duration::from_secs(5));
    let mut conn = connect(&c).await.unwrap();

    let want = format!(
        "-p\n2222\n-T\n-i\n{}\n-o\nBatchMode=yes\n-o\nServerAliveInterval=10\n-o\nCompression=no\n-l\nzrelay\nbackup.example\n",
        f.key.display()
    );
    assert_eq!(read(&args), want);
    let env = read(&env);
    for var in ["SSH_AUTH_SOCK=", "HOME=", "USER=", "RUST_"] {
        assert!(
            !env.lines().any(|l| l.starts_with(var)),
            "{var} leaked:\n{env}"
        );
    }

    // cat echoes; closing our side ends cat, which ends the stream.
    conn.write_all(b"hello over ssh").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"hello over ssh");
    assert!(conn.write_all(b"x").await.is_err(), "write after shutdown");
}

#[tokio::test]
async fn ssh_permission_denied_reports_stderr_and_status() {
    let f = Fake::new();
    let c = f.connector(
        "echo 'zrelay@backup.example: Permission denied (publickey).' >&2\nexit 255",
        Duration::from_secs(5),
    );
    let err = connect(&c).await.err().expect("ssh failed");
    let s = err.to_string();
    assert!(matches!(err, TransportError::Auth { .. }), "{s}");
    assert!(s.contains("Permission denied (publickey)."), "{s}");
    assert!(s.contains("255"), "{s}");
    assert!(s.contains("zrelay@backup.example:2222"), "{s}");
}

#[tokio::test]
async fn ssh_network_failure_is_temporary() {
    let f = Fake::new();
    let c = f.connector(
        "echo 'ssh: connect to host backup.example port 2222: Connection refused' >&2\nexit 255",
        Duration::from_secs(5),
    );
    let err = connect(&c).await.err().expect("ssh failed");
    assert!(matches!(err, TransportError::Handshake { .. }), "{err}");
    assert!(err.is_temporary());
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[tokio::test]
async fn ssh_wrong_banner_is_refused() {
    let f = Fake::new();
    let c = f.connector(
        "echo 'Welcome to a login shell'\nexec cat",
        Duration::from_secs(5),
    );
    let err = connect(&c).await.err().expect("not a stdinserver");
    let s = err.to_string();
    assert!(s.contains("expected the banner"), "{s}");
    assert!(s.contains("Welcome to a login shell"), "{s}");
    assert!(s.contains(BANNER.trim()), "{s}");
}

#[tokio::test]
async fn ssh_silent_peer_times_out_with_dial_timeout() {
    let f = Fake::new();
    let c = f.connector(
        "echo 'connecting...' >&2\nexec sleep 30",
        Duration::from_millis(300),
    );
    let t0 = Instant::now();
    let err = connect(&c).await.err().expect("no banner");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("connecting..."), "{err}");
}

#[tokio::test]
async fn ssh_config_errors() {
    let f = Fake::new();
    let t = Duration::from_secs(1);
    let opts: &[String] = &[];
    let cases = [
        (
            SshConnector::new("-oProxyCommand=x", "u", 22, &f.key, opts, t),
            "connect.host",
        ),
        (
            SshConnector::new("h", "", 22, &f.key, opts, t),
            "connect.user",
        ),
        (
            SshConnector::new("h", "u", 0, &f.key, opts, t),
            "connect.port",
        ),
        (
            SshConnector::new("h", "u", 22, &f.path("nokey"), opts, t),
            "connect.identity_file",
        ),
        (
            SshConnector::new("h", "u", 22, &f.key, &[" ".to_string()], t),
            "connect.options",
        ),
    ];
    for (r, want) in cases {
        let err = r.expect_err("invalid");
        assert!(matches!(err, TransportError::Config(_)), "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }
    let c = f.connector("exit 0", t);
    assert_eq!(c.describe(), "ssh+stdinserver zrelay@backup.example:2222");
}
