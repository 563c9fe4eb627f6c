//! tls with zrepl's documented self-signed setup: each host makes one
//! certificate with `openssl req -x509` (which marks it a CA), and the other
//! side names that certificate as its `ca`. A peer presenting exactly that
//! certificate is accepted; another self-signed certificate with the same
//! CN, the right one under a wrong `server_cn`, or an expired one are not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use zrelay_transport::tls::{TlsConnector, TlsListener};
use zrelay_transport::{Connector, Listener, TransportError};

use crate::common::round_trip;

/// What `openssl req -x509 -newkey ... -subj /CN=<name> -addext
/// subjectAltName=DNS:<name>` writes: a self-signed CA certificate.
/// `expired` puts its validity in the past.
fn self_signed(dir: &Path, file: &str, name: &str, expired: bool) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{file}.crt")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

async fn serve(ca: &Path, cert: &Path, key: &Path) -> TlsListener {
    TlsListener::bind(
        "127.0.0.1:0",
        false,
        ca,
        cert,
        key,
        &["prod".to_string()],
        Duration::from_secs(5),
    )
    .await
    .unwrap()
}

fn connect(l: &TlsListener, ca: &Path, cert: &Path, key: &Path, server_cn: &str) -> TlsConnector {
    TlsConnector::new(
        &l.local_addr().to_string(),
        ca,
        cert,
        key,
        server_cn,
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test]
async fn zrepls_self_signed_pair_works_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (backups, backups_key) = self_signed(dir.path(), "backups", "backups", false);
    let (prod, prod_key) = self_signed(dir.path(), "prod", "prod", false);
    let mut l = serve(&prod, &backups, &backups_key).await;
    let c = connect(&l, &backups, &prod, &prod_key, "backups");
    let (conn, a) = tokio::join!(
        c.connect(),
        tokio::time::timeout(Duration::from_secs(5), l.accept())
    );
    let mut conn = conn.expect("the client accepts the pinned server certificate");
    let a = a
        .expect("the server accepts the pinned client certificate")
        .unwrap();
    assert_eq!(a.identity.as_str(), "prod");
    let mut server = a.conn;
    round_trip(&mut conn, &mut server).await;
}

#[tokio::test]
async fn a_self_signed_peer_must_be_the_pinned_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (backups, backups_key) = self_signed(dir.path(), "backups", "backups", false);
    let (prod, prod_key) = self_signed(dir.path(), "prod", "prod", false);
    // Another self-signed certificate with the same names.
    let (fake_prod, fake_prod_key) = self_signed(dir.path(), "fake-prod", "prod", false);
    let (fake_backups, fake_backups_key) =
        self_signed(dir.path(), "fake-backups", "backups", false);
    let (old_prod, old_prod_key) = self_signed(dir.path(), "old-prod", "prod", true);

    // The server refuses a client that is not its pinned `ca`, or expired.
    for (cert, key, ca_of_server) in [
        (&fake_prod, &fake_prod_key, &prod),
        (&old_prod, &old_prod_key, &old_prod),
    ] {
        let mut l = serve(ca_of_server, &backups, &backups_key).await;
        let c = connect(&l, &backups, cert, key, "backups");
        let (accepted, _) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(2), l.accept()),
            c.connect()
        );
        assert!(
            accepted.is_err(),
            "{} was accepted",
            cert.file_name().unwrap().to_string_lossy()
        );
    }

    // The client refuses a server that is not its pinned `ca`, or under a
    // `server_cn` its SANs do not name.
    let l = serve(&prod, &fake_backups, &fake_backups_key).await;
    let err = connect(&l, &backups, &prod, &prod_key, "backups")
        .connect()
        .await
        .err()
        .expect("an unpinned server");
    assert!(matches!(err, TransportError::Auth { .. }), "{err}");
    let l = serve(&prod, &backups, &backups_key).await;
    let err = connect(&l, &backups, &prod, &prod_key, "elsewhere")
        .connect()
        .await
        .err()
        .expect("a wrong server_cn");
    assert!(err.to_string().contains("elsewhere"), "{err}");
}
