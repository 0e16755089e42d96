//! The listener's TLS: `tls:` → rustls [`ServerConfig`], and the live config that
//! new handshakes use, swapped when the files change.

use super::{TlsError, VERSIONS, pem, provider};
use crate::config::ListenerTlsFile;
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio_rustls::TlsAcceptor;

/// Builds the server config of `f`: its certificate chain and key (which must
/// match), TLS 1.2/1.3, and with `client_ca` a required client certificate.
pub fn server_config(f: &ListenerTlsFile) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = pem::certs(&f.cert)?;
    let key = pem::key(&f.key)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let builder = match &f.client_ca {
        Some(ca) => {
            let roots = Arc::new(pem::roots(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_single_cert(certs, key)?))
}

/// What identifies one version of a file: device, inode, mtime (s, ns), size.
pub type Stamp = Option<(u64, u64, i64, i64, u64)>;

/// The stamp of the file at `path` (through symlinks), `None` when it is missing.
pub fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

/// A listener's live TLS config: new handshakes take the current one; a reload
/// replaces it only with a pair that loads and matches.
pub struct ServerTls {
    config: ArcSwap<ServerConfig>,
    file: ListenerTlsFile,
    stamps: Mutex<Vec<Stamp>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads `file`'s certificate, key and client CA.
    pub fn new(file: &ListenerTlsFile) -> Result<ServerTls, TlsError> {
        let stamps = stamps_of(file);
        Ok(ServerTls {
            config: ArcSwap::new(server_config(file)?),
            file: file.clone(),
            stamps: Mutex::new(stamps),
        })
    }

    /// The files this config was loaded from.
    pub fn file(&self) -> &ListenerTlsFile {
        &self.file
    }

    /// An acceptor with the current config (for one handshake).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    /// Reloads the files if any changed since the last look: `None` when none did,
    /// else whether the new config was taken (on error the old one stays).
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = stamps_of(&self.file);
        {
            let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return None;
            }
            *seen = now;
        }
        Some(server_config(&self.file).map(|c| self.config.store(c)))
    }
}

fn stamps_of(f: &ListenerTlsFile) -> Vec<Stamp> {
    let mut v = vec![stamp(&f.cert), stamp(&f.key)];
    if let Some(ca) = &f.client_ca {
        v.push(stamp(ca));
    }
    v
}
