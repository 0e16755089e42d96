//! TLS for the proxy (rustls, TLS 1.2 and 1.3 only, no OpenSSL).
//!
//! ```text
//! pem.rs      reading PEM certificate chains, private keys and CA sets
//! server.rs   tls: → rustls ServerConfig (mTLS with client_ca); the live config
//!             behind arc-swap, replaced when the files change (rotation)
//! client.rs   backend.tls: → rustls ClientConfig and the connector every backend
//!             connection uses (shared, dedicated, subscriber, health checks)
//! stream.rs   the accepted client TLS stream behind the session's ClientStream
//! rotate.rs   polling the listener's TLS files and counting each reload
//! ```
//!
//! No key material is ever logged: errors name files, never their content.

pub mod client;
pub mod pem;
pub mod rotate;
pub mod server;
pub mod stream;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Longest time a client may take to finish its TLS handshake before it is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The protocol versions offered and accepted: TLS 1.2 and 1.3.
pub const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Why a TLS setting could not be turned into a working configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file has no usable PEM item of the expected kind.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong (never the file's content).
        what: &'static str,
    },
    /// rustls refused the certificate, key or settings (e.g. a key not matching its certificate).
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA set cannot verify certificates.
    #[error("client CA: {0}")]
    Verifier(String),
    /// `backend.tls.server_name` (or a node's host) is not a DNS name or IP address.
    #[error("{0:?} is not a valid DNS name or IP address")]
    ServerName(String),
    /// Only one of `backend.tls.cert` and `backend.tls.key` is set.
    #[error("cert and key must be given together")]
    HalfPair,
}

/// The crypto provider every config is built with (ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
