//! tls: mutual authentication, identities from the client CN, refusals on
//! both sides, configuration errors naming the file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use zrelay_transport::tls::{subject_cn, TlsConnector, TlsListener};
use zrelay_transport::{
    connector, listen, ConnectOptions, Connector, Listener, ServeOptions, TransportError,
};
use zrelay_zfs::Classify;

use crate::common::{round_trip, Logs, Pki};

struct Setup {
    _dir: tempfile::TempDir,
    pki: Pki,
    other: Pki,
    listener: TlsListener,
    addr: SocketAddr,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "main");
    let other = Pki::new(dir.path(), "other");
    let (cert, key) = pki.leaf("backup-server", &["server.example"]);
    let listener = TlsListener::bind(
        "127.0.0.1:0",
        false,
        &pki.ca(),
        &cert,
        &key,
        &["client1".to_string(), "client2".to_string()],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    Setup {
        _dir: dir,
        pki,
        other,
        listener,
        addr,
    }
}

fn client(s: &Setup, pki: &Pki, cn: &str, server_cn: &str) -> Result<TlsConnector, TransportError> {
    let (cert, key) = pki.leaf(cn, &[]);
    TlsConnector::new(
        &s.addr.to_string(),
        &s.pki.ca(),
        &cert,
        &key,
        server_cn,
        Duration::from_secs(5),
    )
}

async fn accept(s: &mut Setup) -> zrelay_transport::Accepted {
    tokio::time::timeout(Duration::from_secs(10), s.listener.accept())
        .await
        .expect("accept timed out")
        .unwrap()
}

#[tokio::test]
async fn tls_round_trip_identity_is_client_cn() {
    let mut s = setup().await;
    let c = client(&s, &s.pki, "client1", "server.example").unwrap();
    let (conn, a) = tokio::join!(c.connect(), accept(&mut s));
    let mut conn = conn.unwrap();
    assert_eq!(a.identity.as_str(), "client1");
    assert!(a.peer.starts_with("127.0.0.1:"));
    let mut server = a.conn;
    round_trip(&mut conn, &mut server).await;
}

/// Connect as a client that presents no certificate at all.
async fn connect_without_cert(s: &Setup) {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(s.pki.ca()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let name = ServerName::try_from("server.example").unwrap();
    // With TLS 1.3 the client may finish before the server refuses it.
    let _ = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await;
}

#[tokio::test]
async fn tls_refusals_are_logged_and_accept_goes_on() {
    let (logs, _g) = Logs::capture();
    let mut s = setup().await;
    let good = client(&s, &s.pki, "client2", "server.example").unwrap();

    // No client certificate.
    connect_without_cert(&s).await;
    logs.wait_for(&["127.0.0.1:", "no client certificate"])
        .await;

    // A certificate of the right CA, but its CN is not in client_cns.
    let intruder = client(&s, &s.pki, "intruder", "server.example").unwrap();
    let _ = intruder.connect().await;
    logs.wait_for(&["127.0.0.1:", "CN 'intruder' is not in client_cns"])
        .await;

    // A certificate of another CA, with an allowed CN.
    let foreign = client(&s, &s.other, "client1", "server.example").unwrap();
    let _ = foreign.connect().await;
    logs.wait_for(&["127.0.0.1:", "untrusted client certificate"])
        .await;

    // None of them reached the caller; the next good client does.
    let (conn, a) = tokio::join!(good.connect(), accept(&mut s));
    conn.unwrap();
    assert_eq!(a.identity.as_str(), "client2");
}

#[tokio::test]
async fn tls_client_checks_server_name_and_ca() {
    let s = setup().await;
    let wrong_name = client(&s, &s.pki, "client1", "elsewhere.example").unwrap();
    let err = wrong_name.connect().await.err().expect("wrong server_cn");
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
    assert!(!err.is_temporary());
    assert!(
        err.to_string().contains("untrusted server certificate"),
        "{err}"
    );
    assert!(err.to_string().contains("elsewhere.example"), "{err}");

    // A client trusting only another CA refuses the server.
    let (cert, key) = s.other.leaf("client1", &[]);
    let c = TlsConnector::new(
        &s.addr.to_string(),
        &s.other.ca(),
        &cert,
        &key,
        "server.example",
        Duration::from_secs(5),
    )
    .unwrap();
    let err = c.connect().await.err().expect("server of another CA");
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn tls_handshake_timeout_drops_silent_peers() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "t");
    let (cert, key) = pki.leaf("srv", &["srv.example"]);
    let opts = ServeOptions::Tls {
        listen: "127.0.0.1:0".into(),
        listen_freebind: false,
        ca: pki.ca(),
        cert,
        key,
        client_cns: vec!["c".into()],
        handshake_timeout: Duration::from_millis(200),
    };
    let l = listen(&opts).await.unwrap();
    let addr = l.describe().trim_start_matches("tls ").to_string();
    let _silent = TcpStream::connect(&addr).await.unwrap();
    logs.wait_for(&["timed out"]).await;
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn tls_config_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "cfg");
    let (cert, key) = pki.leaf("c1", &["srv.example"]);
    let (_, other_key) = pki.leaf("c2", &[]);
    let garbage = write(
        dir.path(),
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\n!!!\n",
    );
    let empty = write(dir.path(), "empty.pem", "nothing here\n");
    let missing = dir.path().join("missing.pem");
    let ca = pki.ca();
    let conn = |ca: &Path, cert: &Path, key: &Path, cn: &str| {
        connector(&ConnectOptions::Tls {
            address: "127.0.0.1:1".into(),
            ca: ca.into(),
            cert: cert.into(),
            key: key.into(),
            server_cn: cn.into(),
            dial_timeout: Duration::from_secs(1),
        })
        .err()
        .expect("invalid")
    };
    let cases = [
        (
            conn(&missing, &cert, &key, "s"),
            "connect.ca",
            "missing.pem",
        ),
        (
            conn(&ca, &garbage, &key, "s"),
            "connect.cert",
            "garbage.pem",
        ),
        (conn(&ca, &cert, &empty, "s"), "connect.key", "empty.pem"),
        (conn(&empty, &cert, &key, "s"), "connect.ca", "empty.pem"),
        (
            conn(&ca, &cert, &other_key, "s"),
            "connect.cert",
            "cfg-c1.crt",
        ),
        (
            conn(&ca, &cert, &key, "not a name!"),
            "connect.server_cn",
            "not a name!",
        ),
    ];
    for (err, key_name, file) in cases {
        let s = err.to_string();
        assert!(matches!(err, TransportError::Config(_)), "{s}");
        assert!(
            s.contains(key_name) && s.contains(file),
            "want {key_name} and {file}: {s}"
        );
    }
    let serve = |cns: Vec<String>, key: &Path| ServeOptions::Tls {
        listen: "127.0.0.1:0".into(),
        listen_freebind: false,
        ca: pki.ca(),
        cert: cert.clone(),
        key: key.into(),
        client_cns: cns,
        handshake_timeout: Duration::from_secs(1),
    };
    let err = listen(&serve(vec!["ok".into(), "bad@cn".into()], &key))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("serve.client_cns"), "{err}");
    let err = listen(&serve(vec!["ok".into()], &missing))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("serve.key") && err.to_string().contains("missing.pem"));
}

#[test]
fn subject_cn_is_read_from_der() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "cn");
    let (cert, _) = pki.leaf("some-host", &[]);
    let der = CertificateDer::from_pem_file(cert).unwrap();
    assert_eq!(subject_cn(der.as_ref()).unwrap(), "some-host");
    assert!(subject_cn(b"junk").is_err());
}

#[test]
fn subject_with_two_cns_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "cn");
    let (cert, _) = pki.leaf_cns(&["client1", "evil\nline"], &[]);
    let der = CertificateDer::from_pem_file(cert).unwrap();
    // Both CNs really are in the subject, in this order.
    let (_, x) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let all: Vec<&str> = x
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(all, ["client1", "evil\nline"]);
    let e = subject_cn(der.as_ref()).unwrap_err().to_string();
    assert!(e.contains("has 2 CNs ('client1', 'evil\\nline')"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[tokio::test]
async fn tls_client_with_two_cns_is_refused_even_if_one_is_allowed() {
    let (logs, _g) = Logs::capture();
    let mut s = setup().await;
    // zrepl would see "client2" (the last CN), a first-CN reader "client1".
    for cns in [["client1", "client2"], ["intruder", "client1"]] {
        let (cert, key) = s.pki.leaf_cns(&cns, &[]);
        let c = TlsConnector::new(
            &s.addr.to_string(),
            &s.pki.ca(),
            &cert,
            &key,
            "server.example",
            Duration::from_secs(5),
        )
        .unwrap();
        let _ = c.connect().await;
        let want = format!("has 2 CNs ('{}', '{}')", cns[0], cns[1]);
        logs.wait_for(&["127.0.0.1:", "refused connection", &want])
            .await;
    }
    // Nothing reached the caller; a one-CN client does.
    let good = client(&s, &s.pki, "client1", "server.example").unwrap();
    let (conn, a) = tokio::join!(good.connect(), accept(&mut s));
    conn.unwrap();
    assert_eq!(a.identity.as_str(), "client1");
}

#[tokio::test]
async fn tls_handshakes_are_capped_and_repeated_refusals_are_counted_not_logged() {
    let (logs, _g) = Logs::capture();
    let mut s = setup().await;
    // Silent peers fill every handshake slot; the next connection is closed at once.
    let mut silent = Vec::new();
    for _ in 0..zrelay_transport::tls::MAX_HANDSHAKES {
        silent.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read(&mut extra, &mut buf),
    )
    .await
    .expect("a connection beyond the handshake cap must be closed at once");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    logs.wait_for(&["handshakes in progress; closing new connections"])
        .await;
    drop(silent);
    // The slots come back; the same refusal ten times is one log line.
    for _ in 0..10 {
        connect_without_cert(&s).await;
    }
    let good = client(&s, &s.pki, "client2", "server.example").unwrap();
    let (conn, a) = tokio::join!(good.connect(), accept(&mut s));
    conn.unwrap();
    assert_eq!(a.identity.as_str(), "client2");
    logs.wait_for(&["no client certificate"]).await;
    let lines = logs
        .text()
        .lines()
        .filter(|l| l.contains("no client certificate"))
        .count();
    assert_eq!(lines, 1, "{}", logs.text());
}
