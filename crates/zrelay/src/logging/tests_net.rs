//! The syslog and tcp outlets against local sockets.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;
use zrelay_config::{LogFormat, LogLevel, LogOutlet, OutletKind, TlsFiles};
use zrelay_transport::tls::{load_certs, load_key};

use super::format::{self, FormatOpts};
use super::report::Reporter;
use super::tcp::{self, TcpConfig};
use super::tests::{nested_event, run, stdout, Buf};
use super::{build, LogOptions, Sinks};

fn syslog(level: LogLevel, format: LogFormat, facility: &str, retry: Duration) -> LogOutlet {
    LogOutlet {
        level,
        format,
        kind: OutletKind::Syslog {
            facility: facility.into(),
            retry_interval: retry,
        },
    }
}

fn tcp_outlet(format: LogFormat, address: &str, net: &str, tls: Option<TlsFiles>) -> LogOutlet {
    LogOutlet {
        level: LogLevel::Info,
        format,
        kind: OutletKind::Tcp {
            address: address.into(),
            net: net.into(),
            retry_interval: Duration::from_secs(60),
            tls,
        },
    }
}

/// The datagrams that arrive until 300ms pass without one.
fn recv_all(sock: &UnixDatagram) -> Vec<String> {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

/// `<PRI>Mmm dd hh:mm:ss zrelay[PID]: ` at the start of `d`; the rest.
fn split_header(d: &str, pri: u16) -> &str {
    let rest = d
        .strip_prefix(&format!("<{pri}>"))
        .unwrap_or_else(|| panic!("want <{pri}>: {d}"));
    let (stamp, rest) = rest.split_at(15);
    let b = stamp.as_bytes();
    assert!(
        b[0].is_ascii_uppercase() && b[1].is_ascii_lowercase(),
        "{d}"
    );
    assert!(
        b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':',
        "{d}"
    );
    assert!(b[5].is_ascii_digit() && b[13].is_ascii_digit(), "{d}");
    let tag = format!(" zrelay[{}]: ", std::process::id());
    rest.strip_prefix(&tag)
        .unwrap_or_else(|| panic!("want {tag:?}: {d}"))
}

fn wait_for(buf: &Buf, part: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(l) = buf.lines().into_iter().find(|l| l.contains(part)) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no line with {part:?} in:\n{}", buf.text());
}

#[test]
fn syslog_datagram_shape_and_levels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let rx = UnixDatagram::bind(&path).unwrap();
    let buf = Buf::default();
    let outlets = [
        stdout(LogLevel::Info, LogFormat::Human, false),
        syslog(
            LogLevel::Warn,
            LogFormat::Logfmt,
            "local3",
            Duration::from_secs(10),
        ),
    ];
    let sinks = Sinks {
        stdout: Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
            buf.clone(),
        )),
        syslog_path: path,
    };
    let _g = run(&outlets, LogOptions::default(), sinks, || {
        nested_event();
        let _job = tracing::info_span!("job", job = %"prod").entered();
        tracing::warn!(k = "v w", "careful");
        tracing::error!("bad");
    });
    let got = recv_all(&rx);
    assert_eq!(got.len(), 2, "{got:?}");
    // local3 = 19: warn 19*8+4, error 19*8+3.
    let body = split_header(&got[0], 156);
    assert!(
        body.starts_with("level=warn target=zrelay::logging::tests_net span=job"),
        "{body}"
    );
    assert!(
        body.contains("message=careful k=\"v w\" job=prod"),
        "{body}"
    );
    assert!(
        split_header(&got[1], 155).contains("message=bad"),
        "{}",
        got[1]
    );
    let text = buf.text();
    assert!(
        text.contains("step done") && text.contains("careful"),
        "{text}"
    );
}

#[test]
fn syslog_retries_and_reports_on_the_first_outlet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let buf = Buf::default();
    let outlets = [
        stdout(LogLevel::Info, LogFormat::Human, false),
        syslog(
            LogLevel::Info,
            LogFormat::Human,
            "user",
            Duration::from_millis(100),
        ),
    ];
    let sinks = Sinks {
        stdout: Some(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
            buf.clone(),
        )),
        syslog_path: path.clone(),
    };
    let (d, _g) = build(&outlets, LogOptions::default(), sinks).unwrap();
    tracing::dispatcher::with_default(&d, || tracing::info!("lost"));
    let err = wait_for(&buf, "log outlet error");
    assert!(err.contains("ERROR zrelay::logging::outlet"), "{err}");
    assert!(err.contains("syslog outlet: connect to"), "{err}");
    let rx = UnixDatagram::bind(&path).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    tracing::dispatcher::with_default(&d, || tracing::info!("delivered"));
    let ok = wait_for(&buf, "recovered");
    assert!(ok.contains("(1 log messages dropped so far)"), "{ok}");
    let got = recv_all(&rx);
    assert_eq!(got.len(), 1, "the report went to syslog too: {got:?}");
    // user = 1: info 1*8+6.
    let body = split_header(&got[0], 14);
    assert!(
        body.starts_with("INFO zrelay::logging::tests_net: delivered"),
        "{body}"
    );
}

fn accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no connection: {e}"),
        }
    }
}

#[test]
fn tcp_lines_arrive() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let outlets = [tcp_outlet(LogFormat::Json, &addr, "tcp", None)];
    let (d, g) = build(&outlets, LogOptions::default(), Sinks::default()).unwrap();
    tracing::dispatcher::with_default(&d, || {
        nested_event();
        tracing::warn!("second");
    });
    let lines: Vec<String> = BufReader::new(accept(&l))
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["fields"]["message"], "step done");
    assert_eq!(first["spans"][0]["job"], "prod");
    let second: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(second["fields"]["message"], "second");
    let start = Instant::now();
    drop(g);
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// Emit `n` events with a `size`-byte field through a logfmt layer over
/// `w`; how long the caller took.
fn emit(w: &tcp::TcpWriter, n: usize, size: usize) -> Duration {
    let layer = format::layer(LogFormat::Logfmt, FormatOpts::plain(true), w.clone());
    let sub = Registry::default().with(layer);
    let pad = "x".repeat(size);
    let start = Instant::now();
    tracing::subscriber::with_default(sub, || {
        for i in 0..n {
            tracing::info!(i, pad = %pad, "event");
        }
    });
    start.elapsed()
}

#[test]
fn tcp_absent_peer_drops_without_blocking() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = TcpConfig::new(
        &format!("127.0.0.1:{port}"),
        "tcp4",
        Duration::from_secs(60),
        None,
    )
    .unwrap();
    let (w, flusher) = tcp::spawn(cfg, Reporter::new("test".into(), None), 8).unwrap();
    let took = emit(&w, 5000, 10);
    assert!(took < Duration::from_secs(3), "caller blocked for {took:?}");
    flusher.flush(Duration::from_secs(5));
    assert_eq!(w.dropped(), 5000);
}

#[test]
fn tcp_stalled_peer_drops_without_blocking() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let cfg = TcpConfig::new(&addr, "tcp", Duration::from_secs(60), None).unwrap();
    let (w, flusher) = tcp::spawn(cfg, Reporter::new("test".into(), None), 64).unwrap();
    // 80 MB: far more than the loopback socket buffers hold.
    let took = emit(&w, 20_000, 4096);
    assert!(took < Duration::from_secs(5), "caller blocked for {took:?}");
    assert!(w.dropped() > 0);
    let start = Instant::now();
    flusher.flush(Duration::from_millis(200));
    assert!(start.elapsed() < Duration::from_secs(2));
    // What was written is whole lines, in order.
    let mut first = String::new();
    BufReader::new(accept(&l)).read_line(&mut first).unwrap();
    assert!(first.contains(" i=0 "), "{first}");
}

#[test]
fn tcp_config_errors() {
    let d = Duration::from_secs(1);
    assert!(TcpConfig::new("localhost:1", "udp", d, None).is_err());
    assert!(TcpConfig::new("localhost", "tcp", d, None).is_err());
    assert!(TcpConfig::new("localhost:x", "tcp", d, None).is_err());
    let missing = TlsFiles {
        ca: "/nonexistent/ca.pem".into(),
        cert: "/nonexistent/c.pem".into(),
        key: "/nonexistent/k.pem".into(),
    };
    let e = TcpConfig::new("localhost:1", "tcp", d, Some(&missing)).err();
    assert!(format!("{e:?}").contains("tls.ca"), "{e:?}");
}

/// A CA and two leaves (server `localhost`, client `client`) in `dir`.
fn pki(dir: &Path) -> (PathBuf, [(PathBuf, PathBuf); 2]) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "log CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let leaf = |cn: &str| {
        let mut p = CertificateParams::new(vec![cn.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        let (c, k) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    (ca_path, [leaf("localhost"), leaf("client")])
}

#[test]
fn tcp_tls_with_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, [(scert, skey), (ccert, ckey)]) = pki(dir.path());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(load_certs("ca", &ca).unwrap().remove(0)).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let server = Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                load_certs("c", &scert).unwrap(),
                load_key("k", &skey).unwrap(),
            )
            .unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let conn = ServerConnection::new(server).unwrap();
        let lines: Vec<String> = BufReader::new(StreamOwned::new(conn, accept(&l)))
            .lines()
            .take(2)
            .map(Result::unwrap)
            .collect();
        tx.send(lines).unwrap();
    });
    let tls = TlsFiles {
        ca,
        cert: ccert,
        key: ckey,
    };
    let outlets = [tcp_outlet(
        LogFormat::Logfmt,
        &format!("localhost:{port}"),
        "tcp4",
        Some(tls),
    )];
    let _g = run(&outlets, LogOptions::default(), Sinks::default(), || {
        tracing::info!("over tls 1");
        tracing::info!("over tls 2");
    });
    let lines = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(lines[0].contains("message=\"over tls 1\""), "{lines:?}");
    assert!(lines[1].contains("message=\"over tls 2\""), "{lines:?}");
}
