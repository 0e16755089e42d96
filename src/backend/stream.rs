//! Connecting to a node over TCP (plain or TLS) or a unix socket.

use crate::config::NodeAddr;
use crate::tls::client::BackendTls;
use std::time::Duration;
use tokio::net::{TcpStream, UnixStream};

/// A connected backend socket.
#[derive(Debug)]
pub enum BackendStream {
    /// TCP (with TCP_NODELAY set).
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
    /// TLS over TCP (handshake done, certificate verified unless configured not to).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Connects to `addr` within `timeout` (the TLS handshake included, with `tls`;
/// unix sockets stay plain).
pub async fn connect(
    addr: &NodeAddr,
    timeout: Duration,
    tls: Option<&BackendTls>,
) -> std::io::Result<BackendStream> {
    let fut = async {
        match addr {
            NodeAddr::Tcp(a) => {
                let s = TcpStream::connect(a.as_str()).await?;
                s.set_nodelay(true)?;
                match tls {
                    Some(tls) => Ok(BackendStream::Tls(Box::new(
                        tls.connect(s, host_of(a)).await?,
                    ))),
                    None => Ok(BackendStream::Tcp(s)),
                }
            }
            NodeAddr::Unix(p) => Ok(BackendStream::Unix(UnixStream::connect(p).await?)),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timeout",
        )),
    }
}

/// The host part of `host:port` (without the brackets of an IPv6 address).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_host_of_an_address_is_what_certificates_are_checked_for() {
        assert_eq!(host_of("redis.internal:6379"), "redis.internal");
        assert_eq!(host_of("127.0.0.1:7001"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7001"), "::1");
    }
}
