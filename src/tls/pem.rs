//! Reading PEM files: certificate chains, private keys, CA sets. Errors name the
//! file and what is wrong with it, never its content.

use super::TlsError;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn bad(path: &Path, what: &'static str) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        what,
    }
}

/// Every certificate in the PEM file at `path` (at least one), in file order.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| bad(path, "not a valid PEM certificate file"))?;
    if certs.is_empty() {
        return Err(bad(path, "no PEM certificate (BEGIN CERTIFICATE) found"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        bad(
            path,
            "no valid PEM private key (PKCS#8, PKCS#1 or SEC1) found",
        )
    })
}

/// The CA certificates in the PEM file at `path` as a root store (at least one).
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs(path)?);
    if added == 0 {
        return Err(bad(path, "no usable CA certificate found"));
    }
    Ok(store)
}
