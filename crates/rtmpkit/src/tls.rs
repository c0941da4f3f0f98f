//! RTMPS: RTMP over TLS, with rustls (client spec, "Options, with
//! defaults": "`rtmps://` URLs connect over TLS; default port 443").
//!
//! - A client verifies the server's certificate by default, against the
//!   Mozilla roots that `webpki-roots` ships, plus any CA given with
//!   [`client_config`]. [`insecure_client_config`] skips the check (it still
//!   checks the handshake signatures, so the bytes come from the holder of
//!   the certificate's key, whoever that is).
//! - The server reads a PEM certificate chain and key from files;
//!   [`ServerCertificate::reload`] reads them again while the server runs
//!   (sessions already up keep their TLS state; new handshakes get the new
//!   certificate).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use rustls::{ClientConfig, ServerConfig};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads every certificate of a PEM file.
fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{}: no CERTIFICATE block in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// A client configuration that trusts the built-in web roots plus the CA
/// certificates in `extra_ca_files` (PEM).
pub fn client_config(extra_ca_files: &[PathBuf]) -> io::Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for path in extra_ca_files {
        for cert in read_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("{}: not a usable CA: {e}", path.display())))?;
        }
    }
    Ok(verifying(roots))
}

fn verifying(roots: rustls::RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The default client configuration: the built-in web roots only, built
/// once per process.
pub(crate) fn default_client_config() -> Arc<ClientConfig> {
    static DEFAULT: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            verifying(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// A client configuration that accepts any certificate: for tests and
/// private networks only. Whoever sits between client and server can read
/// and change the stream.
pub fn insecure_client_config() -> Arc<ClientConfig> {
    let provider = provider();
    let verifier = AnyCertificate(provider.clone());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts every certificate; checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server's certificate chain and key, read from PEM files, which
/// [`ServerCertificate::reload`] reads again. Clones share one certificate.
#[derive(Debug, Clone)]
pub struct ServerCertificate {
    inner: Arc<CertificateFiles>,
}

#[derive(Debug)]
struct CertificateFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertificateFiles {
    fn read(&self) -> io::Result<Arc<CertifiedKey>> {
        read_certified_key(&self.cert, &self.key, &self.provider)
    }
}

fn read_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> io::Result<Arc<CertifiedKey>> {
    let chain = read_certs(cert)?;
    let key_pem = std::fs::read(key)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", key.display())))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid(format!("{}: no usable private key: {e}", key.display())))?;
    let certified = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        invalid(format!(
            "{} and {} do not make a usable certificate: {e}",
            cert.display(),
            key.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

impl ServerCertificate {
    /// Reads a PEM certificate chain (leaf first) and its PEM private key.
    pub fn load(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> io::Result<Self> {
        let (cert, key) = (cert.into(), key.into());
        let provider = provider();
        let current = read_certified_key(&cert, &key, &provider)?;
        Ok(ServerCertificate {
            inner: Arc::new(CertificateFiles {
                cert,
                key,
                provider,
                current: RwLock::new(current),
            }),
        })
    }

    /// Reads the files again. On error the certificate in use stays.
    pub fn reload(&self) -> io::Result<()> {
        let fresh = self.inner.read()?;
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// A rustls server configuration that always presents the current
    /// certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let config = ServerConfig::builder_with_provider(self.inner.provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        Arc::new(config)
    }
}

impl ResolvesServerCert for ServerCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.inner
                .current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Names the cause of a failed TLS handshake in one phrase.
pub(crate) fn describe_failure(e: &io::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return "the peer closed the connection during the TLS handshake".into();
    }
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<R>()) else {
        return e.to_string();
    };
    match tls {
        R::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "the server's certificate was issued by an unknown CA (not trusted here)".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the server's certificate does not match the host name ({tls})")
            }
            C::Expired | C::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({tls})")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet ({tls})")
            }
            _ => format!("the server's certificate was refused ({tls})"),
        },
        R::AlertReceived(A::UnknownCA | A::BadCertificate | A::CertificateUnknown) => {
            format!("the peer refused our side of the handshake ({tls})")
        }
        R::AlertReceived(_) => format!("the peer ended the handshake ({tls})"),
        R::InvalidMessage(_) | R::InappropriateMessage { .. } => {
            format!("the peer does not speak TLS here ({tls}); plain rtmp:// on a TLS port?")
        }
        R::NoCertificatesPresented => "no certificate was presented".into(),
        other => other.to_string(),
    }
}
