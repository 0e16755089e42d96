//! Reading the slot map from one node: connect (TLS and login as the pool's
//! connections do), `CLUSTER SHARDS`, and `CLUSTER SLOTS` when the node does not
//! know SHARDS (Redis before 7.0).

use super::map::{SlotMap, parse_shards, parse_slots};
use crate::backend::conn::ConnSpec;
use crate::backend::handshake;
use crate::backend::stream::{BackendStream, connect};
use crate::config::NodeAddr;
use crate::resp::reply::{is_error, reply_len};
use bytes::BytesMut;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest slot map reply read (a 1000-node cluster's SHARDS is well under 1 MiB).
const MAX_REPLY: usize = 16 << 20;
const SHARDS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$6\r\nSHARDS\r\n";
const SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// Why a node gave no slot map.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connecting, logging in or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The node answered with an error (e.g. cluster support disabled).
    #[error("node refused: {0}")]
    Refused(String),
    /// The reply was not a slot map.
    #[error("{0}")]
    Map(#[from] super::map::MapError),
    /// The reply was larger than 16 MiB.
    #[error("reply too large")]
    TooLarge,
}

/// The slot map as the node `spec` points at sees it, within `deadline`.
pub async fn slot_map(spec: &ConnSpec, deadline: Duration) -> Result<SlotMap, FetchError> {
    let fut = async {
        let tls = spec.tls.as_deref();
        let stream = connect(&spec.addr, deadline, tls).await?;
        match stream {
            BackendStream::Tcp(mut s) => ask(&mut s, spec, deadline).await,
            BackendStream::Unix(mut s) => ask(&mut s, spec, deadline).await,
            BackendStream::Tls(mut s) => ask(&mut s, spec, deadline).await,
        }
    };
    match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout").into()),
    }
}

async fn ask<S>(s: &mut S, spec: &ConnSpec, deadline: Duration) -> Result<SlotMap, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let login = handshake::commands(spec);
    if !login.is_empty() {
        handshake::run(s, &login, deadline).await?;
    }
    let asked = match &spec.addr {
        NodeAddr::Tcp(a) => a.as_str(),
        NodeAddr::Unix(_) | NodeAddr::Sentinel(_) => "",
    };
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let reply = query(s, SHARDS, &mut buf).await?;
    if !is_error(&reply) {
        return Ok(parse_shards(&reply, asked, spec.tls.is_some())?);
    }
    let reply = query(s, SLOTS, &mut buf).await?;
    if is_error(&reply) {
        let text = String::from_utf8_lossy(&reply[1..reply.len().saturating_sub(2)]);
        return Err(FetchError::Refused(text.into_owned()));
    }
    Ok(parse_slots(&reply, asked)?)
}

/// Sends `cmd` and reads its one reply.
async fn query<S>(s: &mut S, cmd: &[u8], buf: &mut BytesMut) -> Result<BytesMut, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.write_all(cmd).await?;
    loop {
        match reply_len(buf) {
            Ok(Some(n)) => return Ok(buf.split_to(n)),
            Ok(None) => {}
            Err(_) => return Err(super::map::MapError::Shape("RESP").into()),
        }
        if buf.len() > MAX_REPLY {
            return Err(FetchError::TooLarge);
        }
        if s.read_buf(buf).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
}
