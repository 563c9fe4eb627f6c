//! Test certificates for the TLS cases: one CA, and leaf certificates whose
//! CN (and DNS SAN) is the given name, written as `<name>.pem`/`<name>.key`.

use anyhow::Result;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::daemons::Scratch;

/// A CA that signs test certificates.
pub struct TestPki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestPki {
    /// A fresh CA named "zrelay test CA".
    pub fn new() -> Result<TestPki> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "zrelay test CA");
        let cert = params.self_signed(&key)?;
        Ok(TestPki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Write `ca.pem`, and a certificate and key for each of `servers` and
    /// `clients` (CN = the name).
    pub fn write(&self, dir: &Scratch, servers: &[&str], clients: &[&str]) -> Result<()> {
        dir.write("ca.pem", &self.ca_pem)?;
        for name in servers.iter().chain(clients) {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(vec![name.to_string()])?;
            params.distinguished_name.push(DnType::CommonName, *name);
            let cert = params.signed_by(&key, &self.issuer)?;
            dir.write(&format!("{name}.pem"), &cert.pem())?;
            dir.write(&format!("{name}.key"), &key.serialize_pem())?;
        }
        Ok(())
    }
}
