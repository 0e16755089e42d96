//! The warm-up read: the request goes to the key's new owner as usual, with a
//! [`WarmRead`] on its reply. A hit (or an error) goes to the client as it is; a
//! miss is sent on to the previous owners, newest first, until one has the key. A
//! hit there is the client's reply (counted in `ringproxy_warmup_hits_total`) and,
//! with `copy`, is first copied to the new owner: `PTTL` and `DUMP` pipelined to the
//! previous owner, then `RESTORE key ttl payload` (no `REPLACE`: a `BUSYKEY` error
//! means a newer value is there, and is ignored). The client gets the value once
//! the new owner has answered the `RESTORE`, so a write or delete it sends after
//! reading reaches the new owner after the copy. When no previous owner has the
//! key, the client gets the new owner's miss.
//!
//! Everything runs in the connection tasks of the session's worker when the
//! replies arrive; whatever happens (timeouts, a connection lost, a node down),
//! [`Then::reply`] ends with exactly one reply to the client's [`ReplyTo`].

use super::miss::Miss;
use crate::backend::{BackendRequest, Node, ReplyTo, Then};
use crate::client_io::ClientIo;
use crate::errors::BackendError;
use crate::metrics::WarmupMetrics;
use crate::resp::reply::is_error;
use crate::resp::{Proto, encode};
use crate::server::context::{Ctx, Outcome};
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A PTTL reply not seen (yet): no copy.
const TTL_UNKNOWN: i64 = i64::MIN;

/// One warm-up read in flight.
#[derive(Debug)]
pub struct WarmRead {
    key: Bytes,
    frame: Bytes,
    miss: Miss,
    /// Previous owners still to ask, the next one last.
    previous: SmallVec<[Arc<Node>; 2]>,
    /// The node asked now (a previous owner), the copy's source.
    asking: Option<Arc<Node>>,
    owner: Arc<Node>,
    copy: bool,
    proto: Proto,
    client: u64,
    metrics: WarmupMetrics,
    /// The new owner's miss, the reply when no previous owner has the key.
    first: Option<Bytes>,
}

/// Sends the read of `key` (`frame`) to `owner`, to be retried on `previous` (newest
/// first) when it misses.
pub fn start(
    cx: &mut Ctx,
    owner: usize,
    frame: Bytes,
    key: &[u8],
    miss: Miss,
    previous: &[usize],
) -> Outcome {
    let nodes = &cx.topo.nodes;
    let warm = WarmRead {
        key: Bytes::copy_from_slice(key),
        frame: frame.clone(),
        miss,
        previous: previous.iter().rev().map(|&i| nodes[i].clone()).collect(),
        asking: None,
        owner: nodes[owner].clone(),
        copy: cx.topo.config.cache.warmup.is_some_and(|w| w.copy),
        proto: cx.client.proto,
        client: cx.client.id,
        metrics: cx.pool.metrics.warmup.clone(),
        first: None,
    };
    crate::server::forward::forward_then(cx, owner, frame, Some(Box::new(warm)))
}

impl Then for WarmRead {
    fn reply(mut self: Box<Self>, reply: Result<Bytes, BackendError>, to: ReplyTo) {
        let missed = matches!(&reply, Ok(b) if self.miss.is(b));
        let found = matches!(&reply, Ok(b) if !missed && !is_error(b));
        if self.asking.is_none() {
            // The new owner's reply.
            if !missed {
                return to.send(reply);
            }
            self.first = reply.ok();
            self.metrics.lookups.inc();
            return self.ask_next(to);
        }
        if !found {
            return self.ask_next(to);
        }
        self.metrics.hits.inc();
        match (self.copy, reply) {
            (true, Ok(value)) => self.copy_to_owner(value, to),
            (_, reply) => to.send(reply),
        }
    }
}

impl WarmRead {
    /// Asks the next previous owner that is up; the new owner's miss when none is left.
    fn ask_next(mut self: Box<Self>, to: ReplyTo) {
        while let Some(node) = self.previous.pop() {
            if node.health.is_down() {
                continue;
            }
            let conn = node.conn(self.proto, self.client).clone();
            self.asking = Some(node);
            let frame = self.frame.clone();
            let then: Box<dyn Then> = self;
            let to = ReplyTo {
                then: Some(then),
                ..to
            };
            return conn.send(BackendRequest::new(frame, to));
        }
        // Set from the new owner's miss before any previous owner is asked.
        to.send(self.first.take().ok_or(BackendError::Protocol));
    }

    /// PTTL and DUMP of the key on the node that had it, then RESTORE on the owner;
    /// `value` goes to `to` once the owner has answered the RESTORE (so a write the
    /// client sends after reading it reaches the owner after the copy).
    fn copy_to_owner(&self, value: Bytes, to: ReplyTo) {
        let Some(source) = &self.asking else {
            return to.send(Ok(value));
        };
        let ttl = Arc::new(AtomicI64::new(TTL_UNKNOWN));
        let conn = source.conn(self.proto, self.client);
        let pttl = aside(&to.io, Pttl(ttl.clone()));
        conn.send(BackendRequest::new(command(&[b"PTTL", &self.key]), pttl));
        let io = to.io.clone();
        let dump = Dump {
            ttl,
            key: self.key.clone(),
            owner: self.owner.clone(),
            proto: self.proto,
            client: self.client,
            metrics: self.metrics.clone(),
            value,
            to,
        };
        conn.send(BackendRequest::new(
            command(&[b"DUMP", &self.key]),
            aside(&io, dump),
        ));
    }
}

/// A reply that no client waits for, handled by `then` alone.
fn aside(io: &Arc<ClientIo>, then: impl Then + 'static) -> ReplyTo {
    ReplyTo {
        io: io.clone(),
        seq: 0,
        part: 0,
        direct: false,
        then: Some(Box::new(then)),
        tap: None,
    }
}

/// A request of bulk-string arguments.
fn command(args: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    encode::array_header(&mut b, args.len());
    for a in args {
        encode::bulk(&mut b, a);
    }
    b.freeze()
}

/// Deletes `key` on the nodes `previous` (a write of a moved key during a window).
pub fn delete_on(cx: &Ctx, previous: &[usize], key: &[u8]) {
    for &i in previous {
        let conn = cx.topo.nodes[i].conn(cx.client.proto, cx.client.id);
        conn.send(BackendRequest::new(
            command(&[b"DEL", key]),
            aside(cx.io, Ignore),
        ));
    }
}

/// Drops the reply.
#[derive(Debug)]
struct Ignore;

impl Then for Ignore {
    fn reply(self: Box<Self>, _: Result<Bytes, BackendError>, _: ReplyTo) {}
}

/// Keeps the PTTL reply for the [`Dump`] that follows it on the same connection.
#[derive(Debug)]
struct Pttl(Arc<AtomicI64>);

impl Then for Pttl {
    fn reply(self: Box<Self>, reply: Result<Bytes, BackendError>, _: ReplyTo) {
        if let Some(ms) = reply.ok().and_then(|b| crate::resp::reply::integer(&b)) {
            self.0.store(ms, Ordering::Relaxed);
        }
    }
}

/// The DUMP reply: RESTOREd on the new owner with the TTL seen just before; the
/// client's `value` goes to `to` after that (or now, when there is nothing to copy).
#[derive(Debug)]
struct Dump {
    ttl: Arc<AtomicI64>,
    key: Bytes,
    owner: Arc<Node>,
    proto: Proto,
    client: u64,
    metrics: WarmupMetrics,
    value: Bytes,
    to: ReplyTo,
}

impl Then for Dump {
    fn reply(self: Box<Self>, reply: Result<Bytes, BackendError>, _: ReplyTo) {
        let ttl = self.ttl.load(Ordering::Relaxed);
        let payload = match reply {
            // -2: gone meanwhile; -1: no TTL (RESTORE's 0).
            Ok(p)
                if ttl != TTL_UNKNOWN
                    && ttl != -2
                    && p.starts_with(b"$")
                    && !p.starts_with(b"$-") =>
            {
                p
            }
            _ => return self.to.send(Ok(self.value)),
        };
        let ttl = ttl.max(0).to_string();
        let mut frame = BytesMut::with_capacity(self.key.len() + payload.len() + 64);
        encode::array_header(&mut frame, 4);
        for arg in [&b"RESTORE"[..], &self.key, ttl.as_bytes()] {
            encode::bulk(&mut frame, arg);
        }
        // A bulk reply is encoded as a bulk argument: the payload is copied as it is.
        frame.extend_from_slice(&payload);
        let conn = self.owner.conn(self.proto, self.client).clone();
        let io = self.to.io.clone();
        let done = Restored {
            metrics: self.metrics,
            value: self.value,
            to: self.to,
        };
        conn.send(BackendRequest::new(frame.freeze(), aside(&io, done)));
    }
}

/// Counts a RESTORE the new owner accepted (BUSYKEY: a newer value is there), then
/// gives the client its value.
#[derive(Debug)]
struct Restored {
    metrics: WarmupMetrics,
    value: Bytes,
    to: ReplyTo,
}

impl Then for Restored {
    fn reply(self: Box<Self>, reply: Result<Bytes, BackendError>, _: ReplyTo) {
        if matches!(&reply, Ok(b) if b.starts_with(b"+OK")) {
            self.metrics.copies.inc();
        }
        self.to.send(Ok(self.value));
    }
}
