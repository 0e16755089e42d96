//! A client's pub/sub connection to one node: commands go out as they come, and
//! every frame that comes back (confirmations and messages) goes to the session,
//! through a bounded channel so that a client that stops reading stops the reading
//! of its subscriber connections too (Redis then applies its pub/sub output limit).

use super::conn::{ConnSpec, Timeouts};
use super::handshake;
use super::stream::{BackendStream, connect};
use crate::errors::BackendError;
use crate::resp::reply::reply_len;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Frames buffered per session before subscriber connections stop reading.
pub const SUB_CHANNEL: usize = 1024;

/// One frame from subscriber connection `sub` of a session (or its failure).
#[derive(Debug)]
pub struct SubFrame {
    /// Index of the subscriber connection in the session.
    pub sub: usize,
    /// A complete RESP frame, or why the connection ended.
    pub frame: Result<Bytes, BackendError>,
}

/// Handle to a subscriber connection; dropping it closes the connection.
#[derive(Debug)]
pub struct SubscriberHandle {
    tx: mpsc::UnboundedSender<Bytes>,
}

impl SubscriberHandle {
    /// Sends one command (SUBSCRIBE, UNSUBSCRIBE, ...).
    pub fn send(&self, frame: Bytes) {
        let _ = self.tx.send(frame);
    }
}

/// Spawns subscriber connection `sub`; frames go to `out`.
pub fn spawn(
    spec: ConnSpec,
    timeouts: Arc<Timeouts>,
    sub: usize,
    out: mpsc::Sender<SubFrame>,
) -> SubscriberHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let end = run(&spec, &timeouts, rx, sub, &out).await;
        if let Err(e) = end {
            tracing::debug!(node = %spec.node, error = ?e, "subscriber connection ended");
            let _ = out.send(SubFrame { sub, frame: Err(e) }).await;
        }
    });
    SubscriberHandle { tx }
}

async fn run(
    spec: &ConnSpec,
    timeouts: &Timeouts,
    rx: mpsc::UnboundedReceiver<Bytes>,
    sub: usize,
    out: &mpsc::Sender<SubFrame>,
) -> Result<(), BackendError> {
    let mut stream = connect(&spec.addr, timeouts.connect(), spec.tls.as_deref())
        .await
        .map_err(|_| BackendError::Down)?;
    let hello = handshake::commands(spec);
    let deadline = timeouts.connect().max(timeouts.request());
    let login = match &mut stream {
        BackendStream::Tcp(s) => handshake::run(s, &hello, deadline).await,
        BackendStream::Unix(s) => handshake::run(s, &hello, deadline).await,
        BackendStream::Tls(s) => handshake::run(s, &hello, deadline).await,
    };
    login.map_err(|_| BackendError::Down)?;
    match stream {
        BackendStream::Tcp(mut s) => {
            let (r, w) = s.split();
            pump(r, w, rx, sub, out).await
        }
        BackendStream::Unix(mut s) => {
            let (r, w) = s.split();
            pump(r, w, rx, sub, out).await
        }
        BackendStream::Tls(s) => {
            let (r, w) = tokio::io::split(s);
            pump(r, w, rx, sub, out).await
        }
    }
}

async fn pump<R, W>(
    mut rd: R,
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    sub: usize,
    out: &mpsc::Sender<SubFrame>,
) -> Result<(), BackendError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(c) => wr.write_all(&c).await.map_err(|_| BackendError::ConnectionLost)?,
                None => return Ok(()),
            },
            r = rd.read_buf(&mut buf) => {
                if !matches!(r, Ok(n) if n > 0) {
                    return Err(BackendError::ConnectionLost);
                }
                while let Some(n) = reply_len(&buf).map_err(|_| BackendError::Protocol)? {
                    let frame = buf.split_to(n).freeze();
                    if out.send(SubFrame { sub, frame: Ok(frame) }).await.is_err() {
                        return Ok(());
                    }
                }
                if buf.capacity() - buf.len() < 1024 {
                    buf.reserve(8 * 1024);
                }
            }
        }
    }
}
