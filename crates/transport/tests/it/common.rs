//! Shared test helpers: log capture, certificates, round trips.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, DnValue, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zrelay_transport::Conn;

/// Log lines captured from the current thread (use a current-thread
/// runtime so that spawned tasks log here too).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Capture WARN and above until the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let w = logs.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || w.clone())
            .finish();
        (logs.clone(), tracing::subscriber::set_default(sub))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Wait (up to 5s) for a WARN line containing all of `parts`.
    pub async fn wait_for(&self, parts: &[&str]) -> String {
        for _ in 0..250 {
            if let Some(line) = self
                .text()
                .lines()
                .find(|l| l.contains("WARN") && parts.iter().all(|p| l.contains(p)))
            {
                return line.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no WARN log line with {parts:?}; logs:\n{}", self.text());
    }
}

/// A test CA writing PEM files into a directory.
pub struct Pki {
    pub dir: PathBuf,
    pub name: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            ca,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A leaf certificate with subject CN `cn` and DNS SANs `sans`, for
    /// both server and client use; returns (cert, key) paths.
    pub fn leaf(&self, cn: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        self.leaf_cns(&[cn], sans)
    }

    /// [`Pki::leaf`] with one or two subject CNs, in this order (rcgen keeps
    /// one value per attribute type, so the second CN is written under the
    /// CN's OID as a custom type: the DER is the same).
    pub fn leaf_cns(&self, cns: &[&str], sans: &[&str]) -> (PathBuf, PathBuf) {
        assert!(matches!(cns.len(), 1 | 2), "one or two CNs");
        let cn = cns.join("+");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, cns[0]);
        if let Some(second) = cns.get(1) {
            let cn_oid = DnType::CustomDnType(vec![2, 5, 4, 3]);
            params
                .distinguished_name
                .push(cn_oid, DnValue::Utf8String(second.to_string()));
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let stem = format!("{}-{cn}", self.name);
        let (c, k) = (
            self.dir.join(format!("{stem}.crt")),
            self.dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

/// Bytes both ways, then the client's half-close reaches the server.
pub async fn round_trip(client: &mut Conn, server: &mut Conn) {
    let t = Duration::from_secs(10);
    tokio::time::timeout(t, async {
        client.write_all(b"ping from client").await.unwrap();
        client.flush().await.unwrap();
        let mut buf = [0u8; 16];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping from client");
        let big: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        let mut got = vec![0u8; big.len()];
        let send = async {
            server.write_all(&big).await.unwrap();
            server.flush().await.unwrap();
        };
        let recv = async { client.read_exact(&mut got).await.unwrap() };
        tokio::join!(send, recv);
        assert!(got == big, "payload corrupted");
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    })
    .await
    .expect("round trip timed out");
}
