//! One connection to a sentinel: connect, log in, ask, read replies.

use crate::backend::handshake;
use crate::backend::stream::{BackendStream, connect};
use crate::command::merge::info::bulk_text;
use crate::config::NodeAddr;
use crate::resp::reply::{array_elements, reply_len};
use crate::tls::client::BackendTls;
use bytes::{Bytes, BytesMut};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest reply read from a sentinel (a `SENTINEL replicas` of many replicas).
const MAX_REPLY: usize = 4 << 20;

/// How to reach the sentinels.
#[derive(Debug, Clone)]
pub struct Access {
    /// `AUTH` (and nothing else) sent after connecting; empty without a password.
    pub login: Vec<Bytes>,
    /// TLS to the sentinels.
    pub tls: Option<std::sync::Arc<BackendTls>>,
    /// Connect timeout.
    pub connect: Duration,
    /// Time one request may take.
    pub request: Duration,
}

/// A connected, logged-in sentinel.
#[derive(Debug)]
pub struct SentinelConn {
    stream: BackendStream,
    buf: BytesMut,
}

impl SentinelConn {
    /// Connects to `addr` and logs in.
    pub async fn open(addr: &NodeAddr, a: &Access) -> io::Result<SentinelConn> {
        let mut stream = connect(addr, a.connect, a.tls.as_deref()).await?;
        handshake::run(&mut stream, &a.login, a.connect.max(a.request)).await?;
        Ok(SentinelConn {
            stream,
            buf: BytesMut::with_capacity(4096),
        })
    }

    /// Sends a command and returns its reply, within `timeout`.
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> io::Result<Bytes> {
        let fut = async {
            self.send(args).await?;
            self.next().await
        };
        tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "sentinel timeout")))
    }

    /// Sends a command without waiting for its reply.
    pub async fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.stream.write_all(&handshake::command(args)).await
    }

    /// The next reply (or pushed message), however long it takes.
    pub async fn next(&mut self) -> io::Result<Bytes> {
        loop {
            match reply_len(&self.buf) {
                Ok(Some(n)) => return Ok(self.buf.split_to(n).freeze()),
                Ok(None) if self.buf.len() <= MAX_REPLY => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bad sentinel reply",
                    ));
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "sentinel closed",
                ));
            }
        }
    }
}

/// The texts of an array reply's bulk-string elements (`None` for a non-array,
/// a null array, or a non-string element).
pub fn strings(reply: &[u8]) -> Option<Vec<String>> {
    array_elements(reply)?
        .into_iter()
        .map(|r| bulk_text(reply.get(r)?))
        .collect()
}

/// The elements of an array reply, as byte slices.
pub fn elements(reply: &[u8]) -> Option<Vec<&[u8]>> {
    array_elements(reply)?
        .into_iter()
        .map(|r| reply.get(r))
        .collect()
}
