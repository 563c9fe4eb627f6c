//! zrepl's self-signed setup: each host has one self-signed certificate,
//! and the other side names that very certificate as its `ca`.
//!
//! `openssl req -x509`, as zrepl's documentation has it, marks the
//! certificate as a CA (`basicConstraints=CA:TRUE`). Go's verifier, and so
//! zrepl, accepts a peer certificate that is itself in the trust pool;
//! webpki refuses a CA certificate as an end entity. These verifiers wrap
//! rustls' webpki verifiers and accept, where webpki refused, a peer
//! certificate that is **byte for byte** one of the configured `ca`
//! certificates, still checking what Go checks of such a chain of one:
//! the validity period and, for a server, `server_cn` against the SANs.
//! The handshake signatures are verified by the wrapped verifiers, so the
//! peer must hold the certificate's private key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The handshake-signature methods, which both verifiers leave to the
/// wrapped webpki verifier (`self.inner`).
macro_rules! delegate_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    };
}

/// The configured `ca` certificates a peer may present as they are.
#[derive(Debug, Clone)]
pub(crate) struct Pinned(Vec<CertificateDer<'static>>);

impl Pinned {
    pub(crate) fn new(ca: &[CertificateDer<'static>]) -> Self {
        Pinned(ca.to_vec())
    }

    /// `cert` is one of the `ca` certificates and valid at `now`.
    fn accepts(&self, cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), Error> {
        if !self.0.iter().any(|c| c.as_ref() == cert.as_ref()) {
            return Err(Error::General("not a pinned certificate".into()));
        }
        let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| Error::General(format!("cannot parse the certificate: {e}")))?;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let validity = x509.validity();
        if now < validity.not_before.timestamp() {
            return Err(Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet,
            ));
        }
        if now > validity.not_after.timestamp() {
            return Err(Error::InvalidCertificate(rustls::CertificateError::Expired));
        }
        Ok(())
    }
}

/// The client's verifier of the server.
#[derive(Debug)]
pub(crate) struct PinnedServerVerifier {
    pub(crate) inner: Arc<dyn ServerCertVerifier>,
    pub(crate) pinned: Pinned,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let refused = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if self.pinned.accepts(end_entity, now).is_err() {
            return Err(refused);
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    delegate_signatures!();
}

/// The server's verifier of clients.
#[derive(Debug)]
pub(crate) struct PinnedClientVerifier {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
    pub(crate) pinned: Pinned,
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(v) => Ok(v),
            Err(refused) => match self.pinned.accepts(end_entity, now) {
                Ok(()) => Ok(ClientCertVerified::assertion()),
                Err(_) => Err(refused),
            },
        }
    }

    delegate_signatures!();
}
