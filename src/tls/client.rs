//! TLS to the nodes: `backend.tls:` → rustls [`ClientConfig`], and the connector
//! that every backend connection (shared, dedicated, subscriber, health check) uses.

use super::{TlsError, VERSIONS, pem, provider};
use crate::config::BackendTlsFile;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Builds the client config of `f`: verification against `ca` (or the Mozilla
/// roots), or none with `insecure_skip_verify`; a client certificate with `cert`/`key`.
pub fn client_config(f: &BackendTlsFile) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let builder = if f.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let roots = match &f.ca {
            Some(ca) => pem::roots(ca)?,
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        builder.with_root_certificates(roots)
    };
    let config = match (&f.cert, &f.key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(pem::certs(cert)?, pem::key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::HalfPair),
    };
    Ok(Arc::new(config))
}

/// Parses a server name (DNS name or IP address).
pub fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName(name.to_string()))
}

/// A pool's backend TLS: the connector, or why it could not be built (then every
/// connection fails rather than falling back to plain text).
pub struct BackendTls {
    file: BackendTlsFile,
    ready: Result<(TlsConnector, Option<ServerName<'static>>), String>,
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTls")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
    }
}

impl Eq for BackendTls {}

impl BackendTls {
    /// Builds the connector of `file` for pool `pool`; warns when verification is off.
    pub fn new(pool: &str, file: &BackendTlsFile) -> BackendTls {
        if file.insecure_skip_verify {
            tracing::warn!(
                pool,
                "backend.tls.insecure_skip_verify is on: node certificates are NOT verified"
            );
        }
        let ready = (|| {
            let config = client_config(file)?;
            let name = file.server_name.as_deref().map(server_name).transpose()?;
            Ok::<_, TlsError>((TlsConnector::from(config), name))
        })();
        let ready = ready.map_err(|e: TlsError| {
            tracing::error!(pool, error = %e, "backend TLS settings unusable; node connections will fail");
            e.to_string()
        });
        BackendTls {
            file: file.clone(),
            ready,
        }
    }

    /// The settings this was built from.
    pub fn file(&self) -> &BackendTlsFile {
        &self.file
    }

    /// Runs the TLS handshake on `tcp`, to node host `host` (the name checked
    /// unless `server_name` is set).
    pub async fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let (connector, name) = self
            .ready
            .as_ref()
            .map_err(|e| std::io::Error::other(e.clone()))?;
        let name = match name {
            Some(n) => n.clone(),
            None => server_name(host).map_err(std::io::Error::other)?,
        };
        connector.connect(name, tcp).await
    }
}

/// Accepts every server certificate (`insecure_skip_verify`); handshake
/// signatures are still checked, so the peer holds the key of what it sent.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_dns_names_or_ip_addresses() {
        assert!(server_name("redis.internal").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(matches!(
            server_name("not a name"),
            Err(TlsError::ServerName(_))
        ));
    }

    #[test]
    fn half_a_client_pair_is_refused() {
        let f = BackendTlsFile {
            cert: Some("/nonexistent.pem".into()),
            ..BackendTlsFile::default()
        };
        assert!(matches!(client_config(&f), Err(TlsError::HalfPair)));
        let t = BackendTls::new("p", &f);
        assert!(t.ready.is_err());
    }
}
