//! Connecting to a node over TCP or a unix socket.

use crate::config::NodeAddr;
use std::time::Duration;
use tokio::net::{TcpStream, UnixStream};

/// A connected backend socket.
#[derive(Debug)]
pub enum BackendStream {
    /// TCP (with TCP_NODELAY set).
    Tcp(TcpStream),
    /// Unix domain socket.
    Unix(UnixStream),
}

/// Connects to `addr` within `timeout`.
pub async fn connect(addr: &NodeAddr, timeout: Duration) -> std::io::Result<BackendStream> {
    let fut = async {
        match addr {
            NodeAddr::Tcp(a) => {
                let s = TcpStream::connect(a.as_str()).await?;
                s.set_nodelay(true)?;
                Ok(BackendStream::Tcp(s))
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
