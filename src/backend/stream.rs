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
            NodeAddr::Sentinel(_) => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the sentinels have not named this master's primary yet",
            )),
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

macro_rules! each_stream {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            BackendStream::Tcp($s) => $e,
            BackendStream::Unix($s) => $e,
            BackendStream::Tls($s) => {
                let $s = &mut **$s;
                $e
            }
        }
    };
}

impl tokio::io::AsyncRead for BackendStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        each_stream!(self, s => std::pin::Pin::new(s).poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for BackendStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        each_stream!(self, s => std::pin::Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        each_stream!(self, s => std::pin::Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        each_stream!(self, s => std::pin::Pin::new(s).poll_shutdown(cx))
    }
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
