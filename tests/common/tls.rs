//! TLS for the tests: a small PKI made with rcgen in a temp dir, and a blocking
//! rustls client speaking RESP ([`TlsConn`]).

#![allow(dead_code)]

use super::resp::{Reply, encode, read_reply};
use super::util::{IO_TIMEOUT, TempDir};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A certificate authority whose files live in a temp dir.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate (PEM).
    pub cert: PathBuf,
    dir: PathBuf,
    name: String,
}

/// A certificate and its key, as files.
#[derive(Clone, Debug)]
pub struct Pair {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/name-ca.pem`.
    pub fn new(dir: &TempDir, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let cert = dir.join(&format!("{name}-ca.pem"));
        std::fs::write(&cert, issuer.pem()).unwrap();
        Ca {
            issuer,
            cert,
            dir: dir.path().to_path_buf(),
            name: name.to_string(),
        }
    }

    /// A leaf certificate for `localhost` and 127.0.0.1 with common name `cn`,
    /// written as `cn.pem` / `cn.key`.
    pub fn issue(&self, cn: &str) -> Pair {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair {
            cert: self.dir.join(format!("{cn}.pem")),
            key: self.dir.join(format!("{cn}.key")),
        };
        std::fs::write(&pair.cert, cert.pem()).unwrap();
        std::fs::write(&pair.key, key.serialize_pem()).unwrap();
        pair
    }
}

/// Replaces `to` with `from`'s content in one rename (as a deploy tool does).
pub fn replace_file(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config trusting the CA certificates in `cas`, with an optional client pair.
pub fn client_config(cas: &[&Path], client: Option<&Pair>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        Some(p) => {
            let certs = CertificateDer::pem_file_iter(&p.cert)
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            b.with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(&p.key).unwrap())
                .unwrap()
        }
        None => b.with_no_client_auth(),
    })
}

type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A blocking RESP client over TLS, with IO timeouts.
pub struct TlsConn {
    reader: BufReader<Stream>,
}

impl TlsConn {
    /// Connects to 127.0.0.1:`port` and finishes the handshake.
    pub fn connect(port: u16, config: &Arc<rustls::ClientConfig>) -> io::Result<TlsConn> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(IO_TIMEOUT))?;
        tcp.set_write_timeout(Some(IO_TIMEOUT))?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(TlsConn {
            reader: BufReader::with_capacity(64 * 1024, s),
        })
    }

    /// The common name of the server's certificate (its leaf's subject, raw DER search).
    pub fn peer_cert_der(&self) -> Vec<u8> {
        let certs = self
            .reader
            .get_ref()
            .conn
            .peer_certificates()
            .unwrap_or_default();
        certs.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Changes the read timeout.
    pub fn set_timeout(&self, t: Duration) {
        self.reader
            .get_ref()
            .sock
            .set_read_timeout(Some(t))
            .unwrap();
    }

    /// Sends one command and reads its reply.
    pub fn try_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        self.send(args)?;
        read_reply(&mut self.reader)
    }

    /// Sends one command without reading.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        let s = self.reader.get_mut();
        s.write_all(&encode(args))?;
        s.flush()
    }

    /// Reads one reply.
    pub fn read(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// Sends one command and reads its reply; panics on IO errors.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("TLS command failed: {e}"))
    }
}

/// Whether a TLS client trusting `ca` gets PONG from `port` (a readiness check).
pub fn tls_ping(port: u16, config: &Arc<rustls::ClientConfig>) -> bool {
    let Ok(mut c) = TlsConn::connect(port, config) else {
        return false;
    };
    matches!(c.try_cmd(&["PING"]), Ok(Reply::Status(s)) if s == "PONG")
}
