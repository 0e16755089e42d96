//! Checks of the `tls:` and `backend.tls:` sections before anything binds: every
//! file must be readable and parse (and a key match its certificate); each problem
//! is reported at the line of its setting.

use super::checks::Report;
use super::locate::Seg::Key;
use super::*;
use crate::tls::{self, TlsError};

/// The listener's TLS settings, checked.
pub(super) fn listener(r: &mut Report, f: &FileConfig) -> Option<ListenerTlsFile> {
    let t = f.tls.as_ref()?;
    if f.listen.starts_with("unix:") {
        r.problem(
            &[Key("tls")],
            "TLS is only for a TCP listener (listen: host:port)",
        );
    }
    let file_ok = |r: &mut Report, key: &str, res: Result<(), TlsError>| {
        let ok = res.is_ok();
        r.check(&[Key("tls"), Key(key)], res.map_err(|e| e.to_string()));
        ok
    };
    let mut ok = file_ok(r, "cert", tls::pem::certs(&t.cert).map(drop));
    ok &= file_ok(r, "key", tls::pem::key(&t.key).map(drop));
    if let Some(ca) = &t.client_ca {
        ok &= file_ok(r, "client_ca", tls::pem::roots(ca).map(drop));
    }
    if ok && let Err(e) = tls::server::server_config(t) {
        r.problem(&[Key("tls")], format!("unusable certificate and key: {e}"));
    }
    Some(t.clone())
}

/// The TLS settings of a section that connects out (`backend`, `sentinel`), checked.
pub(super) fn client(
    r: &mut Report,
    section: &'static str,
    t: Option<&BackendTlsFile>,
) -> Option<BackendTlsFile> {
    let t = t?;
    let at = |k| [Key(section), Key("tls"), Key(k)];
    let mut ok = true;
    let mut file = |r: &mut Report, key: &'static str, res: Result<(), TlsError>| {
        ok &= res.is_ok();
        r.check(&at(key), res.map_err(|e| e.to_string()));
    };
    if let Some(ca) = &t.ca {
        file(r, "ca", tls::pem::roots(ca).map(drop));
    }
    if let Some(cert) = &t.cert {
        file(r, "cert", tls::pem::certs(cert).map(drop));
    }
    if let Some(key) = &t.key {
        file(r, "key", tls::pem::key(key).map(drop));
    }
    if let Some(name) = &t.server_name {
        file(r, "server_name", tls::client::server_name(name).map(drop));
    }
    if t.cert.is_some() != t.key.is_some() {
        r.problem(
            &[Key(section), Key("tls")],
            "cert and key must be given together",
        );
    } else if ok && let Err(e) = tls::client::client_config(t) {
        r.problem(
            &[Key(section), Key("tls")],
            format!("unusable settings: {e}"),
        );
    }
    if t.insecure_skip_verify {
        r.note(
            &at("insecure_skip_verify"),
            "server certificates are not verified",
        );
    }
    Some(t.clone())
}
