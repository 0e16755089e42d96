//! The pool's script and function log, replayed on nodes that join or come back.
//!
//! SCRIPT LOAD, FUNCTION LOAD/RESTORE/DELETE/FLUSH and SCRIPT FLUSH go to every
//! node; a node added by a reload (or one that returns empty after a restart) has
//! none of it, so EVALSHA would get NOSCRIPT and FCALL "Function not found" on its
//! keys. The proxy keeps what succeeded, in order, compacted (a FLUSH drops what it
//! flushes, a library loaded again replaces its earlier load, a script is kept once),
//! bounded by [`MAX_LOG_BYTES`]; it is replayed on a node before the node takes
//! traffic (see [`crate::reload`] and [`crate::app`]). Replayed loads use REPLACE, so
//! replaying on a node that still has them is harmless.

use super::conn::ConnSpec;
use super::handshake;
use super::pool::Node;
use super::stream::{BackendStream, connect};
use crate::resp::Proto;
use crate::resp::Request;
use crate::resp::reply::{is_error, reply_len};
use bytes::{Bytes, BytesMut};
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most bytes of commands the log keeps; beyond it new entries are dropped with a
/// warning (they reach the nodes of the pool now, not the nodes that join later).
pub const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;

/// What an entry does, for compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// SCRIPT LOAD of this body.
    Script(Bytes),
    /// SCRIPT FLUSH.
    ScriptFlush,
    /// FUNCTION LOAD of this library (`None`: its name could not be read).
    Load(Option<Bytes>),
    /// FUNCTION DELETE of this library.
    Delete(Bytes),
    /// FUNCTION RESTORE (libraries unknown to the proxy).
    Restore,
    /// FUNCTION FLUSH, or FUNCTION RESTORE with the FLUSH policy.
    FunctionFlush,
}

impl Kind {
    fn is_function(&self) -> bool {
        !matches!(self, Kind::Script(_) | Kind::ScriptFlush)
    }
}

/// One logged command: what it does and the request to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    kind: Kind,
    frame: Bytes,
}

fn is(arg: Option<&[u8]>, word: &[u8]) -> bool {
    arg.is_some_and(|a| a.eq_ignore_ascii_case(word))
}

/// The log entry for `req` if it is one of the commands the log keeps.
pub fn entry_for(req: &Request) -> Option<Entry> {
    let (cmd, sub) = (req.get(0), req.get(1));
    let (kind, frame) = if is(cmd, b"script") && is(sub, b"load") {
        (Kind::Script(Bytes::copy_from_slice(req.get(2)?)), None)
    } else if is(cmd, b"script") && is(sub, b"flush") {
        (Kind::ScriptFlush, None)
    } else if is(cmd, b"function") && is(sub, b"load") {
        let code = req.get(req.argc().checked_sub(1)?)?;
        let frame = Request::from_args(&[&b"FUNCTION"[..], b"LOAD", b"REPLACE", code]);
        (Kind::Load(library_name(code)), Some(frame.frame().clone()))
    } else if is(cmd, b"function") && is(sub, b"delete") {
        (Kind::Delete(Bytes::copy_from_slice(req.get(2)?)), None)
    } else if is(cmd, b"function") && is(sub, b"flush") {
        (Kind::FunctionFlush, None)
    } else if is(cmd, b"function") && is(sub, b"restore") {
        return Some(restore_entry(req.get(2)?, req.get(3)));
    } else {
        return None;
    };
    let frame = frame.unwrap_or_else(|| req.frame().clone());
    Some(Entry { kind, frame })
}

/// FUNCTION RESTORE: with FLUSH it replaces every library; otherwise it is replayed
/// with REPLACE (APPEND would fail on a node that has the libraries already).
fn restore_entry(payload: &[u8], policy: Option<&[u8]>) -> Entry {
    let flush = is(policy, b"flush");
    let policy: &[u8] = if flush { b"FLUSH" } else { b"REPLACE" };
    let frame = Request::from_args(&[&b"FUNCTION"[..], b"RESTORE", payload, policy]);
    Entry {
        kind: if flush {
            Kind::FunctionFlush
        } else {
            Kind::Restore
        },
        frame: frame.frame().clone(),
    }
}

/// The library name of FUNCTION LOAD code: `name=` on its `#!engine` first line.
fn library_name(code: &[u8]) -> Option<Bytes> {
    let first = code.split(|&b| b == b'\n').next()?;
    let first = first.strip_prefix(b"#!")?;
    first
        .split(|b| b.is_ascii_whitespace())
        .find_map(|w| w.strip_prefix(b"name="))
        .filter(|n| !n.is_empty())
        .map(Bytes::copy_from_slice)
}

#[derive(Debug, Default)]
struct Inner {
    /// (sequence number, entry), oldest first.
    entries: Vec<(u64, Entry)>,
    bytes: usize,
    next_seq: u64,
    full: bool,
}

impl Inner {
    /// Drops the entries `e` makes useless; false when `e` itself is not needed.
    fn compact_for(&mut self, e: &Entry) -> bool {
        if let Kind::Script(_) = e.kind {
            return !self.entries.iter().any(|(_, o)| o.kind == e.kind);
        }
        let superseded = |o: &Entry| match (&e.kind, &o.kind) {
            (Kind::ScriptFlush, k) => !k.is_function(),
            (Kind::FunctionFlush, k) => k.is_function(),
            (Kind::Load(Some(l)) | Kind::Delete(l), Kind::Load(Some(m)) | Kind::Delete(m)) => {
                l == m
            }
            _ => false,
        };
        self.entries.retain(|(_, o)| !superseded(o));
        self.bytes = self.entries.iter().map(|(_, o)| o.frame.len()).sum();
        true
    }
}

/// One pool's log (see the module docs).
#[derive(Debug, Default)]
pub struct ReplayLog {
    inner: Mutex<Inner>,
}

impl ReplayLog {
    /// Records a command that succeeded on the nodes.
    pub fn record(&self, e: Entry) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !inner.compact_for(&e) {
            return;
        }
        if inner.bytes + e.frame.len() > MAX_LOG_BYTES {
            if !inner.full {
                tracing::warn!(
                    limit = MAX_LOG_BYTES,
                    "script/function log full: later SCRIPT LOAD / FUNCTION LOAD are not replayed on nodes that join or come back"
                );
            }
            inner.full = true;
            return;
        }
        inner.full = false;
        inner.bytes += e.frame.len();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.entries.push((seq, e));
    }

    /// The requests to replay, in order, and the sequence number to ask
    /// [`ReplayLog::since`] with for what is recorded later.
    pub fn snapshot(&self) -> (u64, Vec<Bytes>) {
        self.since(0)
    }

    /// The requests recorded from sequence number `seq` on that are still in the log,
    /// and the next sequence number.
    pub fn since(&self, seq: u64) -> (u64, Vec<Bytes>) {
        let Ok(inner) = self.inner.lock() else {
            return (seq, Vec::new());
        };
        let frames = inner
            .entries
            .iter()
            .filter(|(s, _)| *s >= seq)
            .map(|(_, e)| e.frame.clone())
            .collect();
        (inner.next_seq, frames)
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.bytes)
    }
}

/// Longest a replay on one node may take (connect, login, every command).
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `frames` to the node of `spec` on a connection of its own, pipelined, within
/// `timeout`; returns how many the node refused (e.g. a FUNCTION DELETE of a library
/// it does not have).
pub async fn replay_on(spec: &ConnSpec, frames: &[Bytes], timeout: Duration) -> io::Result<usize> {
    let fut = async {
        match connect(&spec.addr, timeout, spec.tls.as_deref()).await? {
            BackendStream::Tcp(mut s) => send_all(&mut s, spec, frames, timeout).await,
            BackendStream::Unix(mut s) => send_all(&mut s, spec, frames, timeout).await,
            BackendStream::Tls(mut s) => send_all(&mut *s, spec, frames, timeout).await,
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "replay timeout")))
}

async fn send_all<S>(
    s: &mut S,
    spec: &ConnSpec,
    frames: &[Bytes],
    timeout: Duration,
) -> io::Result<usize>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake::run(s, &handshake::commands(spec), timeout).await?;
    let mut out = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    frames.iter().for_each(|f| out.extend_from_slice(f));
    s.write_all(&out).await?;
    let (mut buf, mut seen, mut refused) = (BytesMut::with_capacity(4096), 0, 0);
    while seen < frames.len() {
        if s.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::other("closed during replay"));
        }
        while let Ok(Some(n)) = reply_len(&buf) {
            refused += usize::from(is_error(&buf.split_to(n)));
            seen += 1;
        }
    }
    Ok(refused)
}

/// Replays `frames` on each of `nodes` (each logging in as its connections do), at once on
/// all of them, each within [`REPLAY_TIMEOUT`]; best effort: a node that cannot be
/// reached is logged and left as it is. `why` says which change it is for (logs).
pub async fn replay_on_nodes(frames: Vec<Bytes>, nodes: &[Arc<Node>], why: &str) {
    if frames.is_empty() || nodes.is_empty() {
        return;
    }
    let frames: Arc<[Bytes]> = frames.into();
    let mut tasks = tokio::task::JoinSet::new();
    for n in nodes {
        let spec = n.client_spec(Proto::Resp2);
        let frames = frames.clone();
        tasks.spawn(async move {
            let r = replay_on(&spec, &frames, REPLAY_TIMEOUT).await;
            (spec.node, r)
        });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((node, Ok(refused))) => {
                tracing::info!(%node, why, commands = frames.len(), refused, "scripts and functions replayed")
            }
            Ok((node, Err(e))) => {
                tracing::warn!(%node, why, error = %e, "scripts and functions could not be replayed; EVALSHA and FCALL may fail on this node")
            }
            Err(e) => tracing::warn!(why, error = %e, "replay task failed"),
        }
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
