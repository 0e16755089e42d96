//! One client connection: a single task that reads requests, dispatches them, and
//! writes replies in request order, all without waiting for one request before
//! reading the next (true pipelining, bounded by `max_pipeline`).

use super::PoolContext;
use super::listener::ClientSlot;
use super::pinned::{Lane, Pinned, TxState};
use super::pubsub::{PubSub, next_frame};
use super::replies::{After, ReplyQueue};
use crate::backend::{Completion, ReplyTo};
use crate::client_io::ClientIo;
use crate::metrics::RequestClass;
use crate::resp::Proto;
use crate::resp::Request;
use crate::resp::request::decode;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// Smallest read: what an idle client's buffer holds (a connection that only sent
/// PING keeps little memory).
const READ_MIN: usize = 512;
/// Largest read the buffer grows to while a client keeps it full.
const READ_MAX: usize = 64 * 1024;
/// Smallest buffer allocated when the free space runs out, after the first read.
/// Requests are cut out of the buffer without copying, so while one is in flight
/// its bytes pin the buffer and room for the next read means a new allocation: one
/// per ~50 small requests rather than one per request.
const READ_CHUNK: usize = 2 * 1024;
/// Stop moving replies into the write buffer beyond this many bytes.
const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Per-client state the client can change (never shared with other clients).
#[derive(Debug)]
pub struct ClientState {
    /// Client id (CLIENT ID).
    pub id: u64,
    /// Protocol chosen with HELLO.
    pub proto: Proto,
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// Authenticated (or no password configured).
    pub authed: bool,
}

/// A client session.
pub struct Session {
    /// The shared pool context.
    pub ctx: Arc<PoolContext>,
    /// Client-visible state.
    pub state: ClientState,
    /// Replies in request order.
    pub queue: ReplyQueue,
    rbuf: BytesMut,
    /// Bytes to have free before the next read: grows while reads fill the buffer.
    read_hint: usize,
    wbuf: BytesMut,
    /// No more requests are read (EOF, QUIT, protocol error).
    pub closing: bool,
    close_after_write: bool,
    /// The client's own backend connection (transactions, blocking commands).
    pub pinned: Option<Pinned>,
    /// MULTI/WATCH state.
    pub tx_state: TxState,
    /// Lane of the requests in flight.
    pub lane: Lane,
    /// A request waiting for in-flight replies before it can be sent.
    deferred: Option<Request>,
    /// Pub/sub state, once the client subscribed.
    pub pubsub: Option<Box<PubSub>>,
    /// `limits.max_pipeline` of the topology seen last.
    max_pipeline: usize,
    /// The client socket, shared with backend connections for direct replies.
    pub io: Arc<ClientIo>,
    _slot: ClientSlot,
}

impl Session {
    /// A session for client `id`.
    pub fn new(ctx: Arc<PoolContext>, id: u64, slot: ClientSlot, io: Arc<ClientIo>) -> Session {
        let (authed, max_pipeline) = {
            let t = ctx.router.load();
            (t.limits.auth.is_none(), t.limits.max_pipeline)
        };
        Session {
            ctx,
            state: ClientState {
                id,
                proto: Proto::Resp2,
                name: None,
                authed,
            },
            queue: ReplyQueue::default(),
            rbuf: BytesMut::new(),
            read_hint: READ_MIN,
            wbuf: BytesMut::new(),
            closing: false,
            close_after_write: false,
            pinned: None,
            tx_state: TxState::default(),
            lane: Lane::Shared,
            deferred: None,
            pubsub: None,
            max_pipeline,
            io,
            _slot: slot,
        }
    }

    /// Serves the client until it leaves, or until a protocol error or QUIT is answered.
    /// At shutdown the proxy shuts the socket for reading ([`PoolContext::stop_reading`]):
    /// the session sees end of input, answers what is in flight, then closes.
    pub async fn run(mut self) {
        // Held for the session's life so that each batch can borrow a snapshot
        // (an arc-swap guard, no shared reference count touched) while `self` is
        // mutated by dispatch.
        let router = self.ctx.router.clone();
        let io = self.io.clone();
        let mut eof = false;
        loop {
            let limit = self.max_pipeline;
            let can_read = !self.closing
                && !eof
                && self.deferred.is_none()
                && self.queue.len() < limit
                && self.wbuf.len() < WRITE_HIGH_WATER;
            tokio::select! {
                biased;
                c = std::future::poll_fn(|cx| io.poll_completion(cx)) => self.on_completion(c),
                r = io.stream.write(&self.wbuf), if !self.wbuf.is_empty() => match r {
                    Ok(n) if n > 0 => self.wrote(n),
                    _ => return,
                },
                r = read_some(&io, &mut self.rbuf, &mut self.read_hint), if can_read => match r {
                    Ok(0) => {
                        // A client gone while blocked: its dedicated connection closes
                        // now, so the blocked command cannot take data meant for others.
                        if self.lane == Lane::Pinned && self.queue.waiting() > 0 {
                            return;
                        }
                        eof = true;
                    }
                    Ok(n) => self.ctx.metrics.received(n),
                    Err(e) => {
                        tracing::debug!(client = self.state.id, error = %e, "client connection reset");
                        return;
                    }
                },
                Some(f) = next_frame(&mut self.pubsub), if self.queue.len() < limit => self.on_sub_frame(f),
            }
            self.reconcile();
            self.advance(&router);
            if !self.wbuf.is_empty() && !self.write_now() {
                return;
            }
            let done = (self.closing || eof) && self.queue.is_empty() && self.deferred.is_none();
            if self.wbuf.is_empty() && (self.close_after_write || done) {
                return;
            }
            if !eof {
                self.arm();
            }
        }
    }

    /// Takes back a reply a backend connection wrote directly (see
    /// [`crate::client_io`]) and stops further direct writes until re-armed.
    fn reconcile(&mut self) {
        let Some(d) = self.io.disarm() else { return };
        if let Some(class) = self.queue.skip_front(d.seq) {
            self.ctx.metrics.sent(d.len);
            if d.error {
                self.ctx.metrics.request_error(class);
            }
        }
    }

    /// Lets the reply of the only request in flight go straight to the client.
    fn arm(&mut self) {
        let idle = self.wbuf.is_empty() && !self.closing && self.deferred.is_none();
        if let (true, Some(seq)) = (idle, self.queue.lone_waiting()) {
            self.io.arm(seq);
        }
    }

    fn wrote(&mut self, n: usize) {
        use bytes::Buf;
        self.wbuf.advance(n);
        self.ctx.metrics.sent(n);
    }

    /// Dispatches buffered requests and moves ready replies out, until neither
    /// makes progress: replies leaving the queue make room for requests already read.
    fn advance(&mut self, router: &crate::topology::Router) {
        loop {
            self.process(router);
            if self.move_ready() == 0 {
                return;
            }
        }
    }

    /// Writes what the socket takes now, without waiting; false when it failed.
    fn write_now(&mut self) -> bool {
        match self.io.stream.try_write(&self.wbuf) {
            Ok(0) => false,
            Ok(n) => {
                self.wrote(n);
                true
            }
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        }
    }

    fn on_completion(&mut self, c: Completion) {
        let proto = self.state.proto;
        self.queue.complete(c.seq, c.part, c.reply, proto);
        while let Some(c) = self.io.try_completion() {
            self.queue.complete(c.seq, c.part, c.reply, proto);
        }
        self.release_idle_pin();
    }

    /// Decodes and dispatches buffered requests while the pipeline has room. A
    /// request that must wait for earlier replies (lane switch) is kept and retried.
    fn process(&mut self, router: &crate::topology::Router) {
        if self.closing || (self.rbuf.is_empty() && self.deferred.is_none()) {
            return;
        }
        let topo = router.load();
        self.max_pipeline = topo.limits.max_pipeline;
        if let Some(req) = self.deferred.take() {
            self.deferred = self.dispatch(req, &topo, false);
        }
        while !self.closing
            && self.deferred.is_none()
            && self.queue.len() < topo.limits.max_pipeline
        {
            match decode(&mut self.rbuf, topo.limits.max_request_size) {
                Ok(Some(req)) => self.deferred = self.dispatch(req, &topo, true),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = self.state.id, error = %e, "client protocol error");
                    self.queue.class = RequestClass::Invalid;
                    self.ctx.metrics.request(RequestClass::Invalid);
                    self.queue
                        .push_ready(Bytes::from_static(e.wire()), After::Close);
                    self.closing = true;
                }
            }
        }
    }

    /// Where the backend reply for (`seq`, `part`) goes.
    pub fn reply_to(&mut self, seq: u64, part: u32) -> ReplyTo {
        ReplyTo {
            io: self.io.clone(),
            seq,
            part,
            direct: false,
        }
    }

    /// Like [`Session::reply_to`] for a single-reply request on a shared connection:
    /// that reply may be written straight to the client (see [`crate::client_io`]).
    pub fn direct_reply_to(&mut self, seq: u64) -> ReplyTo {
        ReplyTo {
            direct: true,
            ..self.reply_to(seq, 0)
        }
    }

    /// Moves ready replies, in order, into the write buffer.
    /// Returns how many replies moved.
    fn move_ready(&mut self) -> usize {
        let mut moved = 0;
        while self.wbuf.len() < WRITE_HIGH_WATER {
            let Some((bytes, after, class)) = self.queue.pop_ready() else {
                break;
            };
            if matches!(bytes.first(), Some(b'-' | b'!')) {
                self.ctx.metrics.request_error(class);
            }
            self.wbuf.extend_from_slice(&bytes);
            moved += 1;
            if after == After::Close {
                self.closing = true;
                self.close_after_write = true;
                break;
            }
        }
        moved
    }
}

impl Drop for Session {
    /// Replies still in flight for a session that is gone are dropped on arrival.
    fn drop(&mut self) {
        self.io.close();
    }
}

/// Reads into `buf` with at least `hint` bytes free; the hint grows (up to
/// [`READ_MAX`]) while reads fill what was free, and falls back when they do not.
/// Room is made only once the socket is readable, so a client that stays idle
/// keeps the small buffer of its first read.
async fn read_some(io: &ClientIo, buf: &mut BytesMut, hint: &mut usize) -> std::io::Result<usize> {
    loop {
        io.stream.readable().await?;
        if buf.capacity() - buf.len() < *hint {
            let first = buf.capacity() == 0;
            buf.reserve(if first {
                *hint
            } else {
                (*hint).max(READ_CHUNK)
            });
        }
        let free = buf.capacity() - buf.len();
        let n = match io.stream.try_read_draining(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => r?,
        };
        *hint = if n == free {
            (*hint * 4).min(READ_MAX)
        } else {
            (*hint / 2).max(READ_MIN)
        };
        return Ok(n);
    }
}
