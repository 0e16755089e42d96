//! One client connection: a single task that reads requests, dispatches them, and
//! writes replies in request order, all without waiting for one request before
//! reading the next (true pipelining, bounded by `max_pipeline`).
//!
//! The session owns the socket, the read buffer, the reply queue, the write
//! buffer and the client's state; what to do with each request is decided by
//! [`super::dispatch`], which only gets a narrow [`Ctx`].
//!
//! An idle client is parked ([`super::parking`]): new, the first time it is idle,
//! or asked after a second without requests, a session with nothing in flight,
//! buffered or to write and no state on the nodes frees its serving state (buffers,
//! reply queue, the select loop) and its task keeps only the client's identity
//! (`Core`) while it waits for the socket; the next bytes bring the serving state
//! back (one allocation). Busy clients are not asked, so the request path does not
//! pay for it.

use super::PoolContext;
use super::clients::ClientEntry;
use super::context::{ClientState, Ctx, Outcome, ReplyMode};
use super::dispatch::{Held, classify, dispatch, metric_class};
use super::listener::ClientSlot;
use super::output::{Output, delivered};
use super::reading::{READ_MAX, READ_MIN, read_some};
use super::replies::{After, ReplyQueue};
use crate::backend::subscriber::SubFrame;
use crate::client_io::{ClientIo, Completion};
use crate::metrics::RequestClass;
use crate::resp::Request;
use crate::resp::request::Decoder;
use crate::topology::{Router, Topology};
use bytes::BytesMut;
use std::sync::Arc;

mod events;
mod parked;

use events::{Side, poll_side};
use parked::{Core, Parked, wait_and_serve};

/// Whether requests are still read and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Reading and serving.
    Open,
    /// The client closed its write side: what it sent is served, then the
    /// connection closes.
    Eof,
    /// No request is served any more (QUIT, protocol error, a lost subscriber
    /// connection): the replies queued so far are written, then it closes.
    Stopped,
}

/// A client session being served.
pub struct Session {
    core: Core,
    queue: ReplyQueue,
    held: Held,
    rbuf: BytesMut,
    /// Frames the requests in `rbuf`, keeping what it learnt of a partial one.
    decoder: Decoder,
    /// Bytes to have free before the next read: grows while reads fill the buffer.
    read_hint: usize,
    reading: Reading,
    out: Output,
    /// A request waiting for earlier replies before it can be dispatched.
    deferred: Option<Request>,
    /// `limits.max_pipeline` of the topology seen last.
    max_pipeline: usize,
    /// Topology changes, watched while the client holds state on the nodes.
    follow: Option<super::Follow>,
    /// `limits.max_client_memory` of the topology seen last.
    memory_budget: usize,
    /// Not read while over its share of the memory budget (as of the last step).
    paused: bool,
    /// The idle, slow-request and memory-pause timer.
    deadlines: super::deadline::Deadlines,
    /// Asked to park ([`super::parking`], or new): it does once a step leaves it idle.
    park_asked: bool,
}

impl Session {
    /// A session for client `id`.
    pub fn new(
        pool: Arc<PoolContext>,
        entry: Arc<ClientEntry>,
        slot: ClientSlot,
        io: Arc<ClientIo>,
    ) -> Session {
        let client = ClientState::new(entry.id, &pool.router.load().users);
        let core = Core {
            pool,
            io,
            entry,
            client,
            held_bytes: Default::default(),
            _slot: slot,
        };
        Session::serving(core, 0, true)
    }

    /// The serving state of `core`, its reply queue numbered from `next_seq`, with
    /// the current topology's limits; parking as soon as it is idle if `asked`.
    fn serving(core: Core, next_seq: u64, asked: bool) -> Session {
        let (max_pipeline, clients) = {
            let t = core.pool.router.load();
            (t.limits.max_pipeline, t.limits.clients)
        };
        let mut deadlines = super::deadline::Deadlines::default();
        deadlines.set_limits(clients);
        Session {
            core,
            queue: ReplyQueue::starting_at(next_seq),
            held: Held::default(),
            rbuf: BytesMut::new(),
            decoder: Decoder::default(),
            read_hint: READ_MIN,
            reading: Reading::Open,
            out: Output::default(),
            deferred: None,
            max_pipeline,
            follow: None,
            memory_budget: clients.max_memory,
            paused: false,
            deadlines,
            park_asked: asked,
        }
    }

    /// Serves the client until it leaves, or until a protocol error or QUIT is answered.
    /// At shutdown the proxy shuts the socket for reading ([`PoolContext::stop_reading`]):
    /// the session sees end of input, answers what is in flight, then closes.
    ///
    /// An idle client costs little memory: parking ([`super::parking`]: after a
    /// second without requests, or unasked as below) while it holds nothing but
    /// the socket (see `Session::parkable`), the session frees its buffers, reply
    /// queue and serving loop (one boxed future, see `Session::serve`), and the
    /// task only waits for the socket to be readable. A client that sent nothing yet starts
    /// parked (unless a timer applies to it, e.g. an idle timeout), and parks again,
    /// unasked, the first time it is idle after that (a spell of parking per
    /// connection, not per request).
    pub fn run(mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.account();
        let serve_now = !self.parkable();
        wait_and_serve(self.park(true), serve_now)
    }

    /// Serves until the session is idle (returns it parked) or over (`None`, the
    /// socket closed). Runs boxed, so that a parked client's task stays small.
    async fn serve(mut self, router: &Router, io: &ClientIo) -> Option<Parked> {
        self.account();
        'serve: loop {
            let can_read = self.can_read();
            tokio::select! {
                biased;
                c = std::future::poll_fn(|cx| io.poll_completion(cx)) => match c {
                    Some(c) => self.on_completion(c),
                    None => self.park_asked = true,
                },
                r = self.out.write_to(&io.stream), if !self.out.is_empty() => match r {
                    Ok(n) if n > 0 => self.out.wrote(n, &self.core.pool.metrics),
                    _ => break 'serve,
                },
                r = io.stream.flush(), if io.stream.wants_flush() => if r.is_err() {
                    break 'serve;
                },
                r = read_some(io, &mut self.rbuf, &mut self.read_hint, self.decoder.wanted()), if can_read => match r {
                    Ok(0) if self.held.dedicated.blocked(&self.queue) => break 'serve,
                    Ok(0) => self.reading = Reading::Eof,
                    Ok(n) => {
                        self.core.pool.metrics.received(n);
                        self.deadlines.on_read();
                    }
                    Err(e) => {
                        tracing::debug!(client = self.core.client.id, error = %e, "client connection reset");
                        break 'serve;
                    }
                },
                Some(f) = self.held.subs.next_frame(), if self.queue.len() < self.max_pipeline => {
                    self.on_sub_frame(f)
                }
                side = std::future::poll_fn(|cx| poll_side(&mut self.follow, &mut self.deadlines, cx)),
                    if self.follow.is_some() || self.deadlines.armed() => match side {
                    Side::Topology(ev) => self.on_topology(ev, router),
                    Side::Deadline(why) => self.on_deadline(why),
                },
            }
            if !self.step(router) {
                break 'serve;
            }
            if self.park_asked && self.parkable() {
                return Some(self.park(false));
            }
        }
        drop(self);
        io.stream.close().await;
        None
    }

    /// Whether the session holds nothing but its socket: reading, nothing in
    /// flight, buffered or to write, no state on the nodes, no timer armed (a
    /// configured idle timeout keeps idle clients served, so that it can fire).
    fn parkable(&self) -> bool {
        self.reading == Reading::Open
            && !self.paused
            && self.queue.is_empty()
            && self.deferred.is_none()
            && self.rbuf.is_empty()
            && self.out.is_empty()
            && self.follow.is_none()
            && !self.deadlines.armed()
            && !self.held.subs.is_member()
            && self.held.dedicated.is_unused()
            && !self.core.io.stream.wants_flush()
    }

    /// Frees everything but the [`Core`]; with `asked` it parks again as soon as it
    /// is idle after its next requests.
    fn park(mut self, asked: bool) -> Parked {
        self.core
            .held_bytes
            .report(&self.core.pool, &self.core.entry, 0);
        Parked::new(self.core, self.queue.next_seq(), asked)
    }

    /// Whether to read more: the client may send, the pipeline and the write
    /// buffer have room, and a request waiting for earlier replies leaves only a
    /// bounded read-ahead (enough to see the client leave).
    fn can_read(&self) -> bool {
        self.reading == Reading::Open
            && self.queue.len() < self.max_pipeline
            && self.out.has_room()
            && (self.deferred.is_none() || self.rbuf.len() < READ_MAX)
            && !self.paused
    }

    /// The pool's client memory is over budget and this client holds more than
    /// its share: it is not read until that changes.
    fn memory_paused(&self) -> bool {
        self.core
            .held_bytes
            .over_share(&self.core.pool, self.memory_budget)
    }

    /// Everything after one event: take back direct writes, serve what was read,
    /// write what is ready. False when the session is over.
    fn step(&mut self, router: &Router) -> bool {
        self.reconcile();
        if !self.flush(router) {
            return false;
        }
        let served = self.reading != Reading::Open && self.queue.is_empty();
        let over = self.out.closing() || (served && self.deferred.is_none());
        if self.out.is_empty() && over {
            return false;
        }
        self.account();
        self.arm();
        true
    }

    /// Reports what the session holds to the memory budget, and arms its timer.
    fn account(&mut self) {
        let bytes = self.rbuf.capacity() + self.out.capacity() + self.queue.ready_bytes();
        self.core
            .held_bytes
            .report(&self.core.pool, &self.core.entry, bytes);
        self.paused = self.memory_paused();
        let open = self.reading == Reading::Open;
        self.deadlines.after_step(super::deadline::Now {
            partial: open && !self.rbuf.is_empty() && self.deferred.is_none(),
            idle: open
                && self.queue.is_empty()
                && !self.held.on_nodes()
                && !self.held.dedicated.in_multi(),
            paused: self.paused,
        });
    }

    /// Takes back a reply a backend connection wrote directly (see
    /// [`crate::client_io`]) and stops further direct writes until re-armed.
    fn reconcile(&mut self) {
        let Some(d) = self.core.io.disarm() else {
            return;
        };
        if let Some(class) = self.queue.skip_front(d.seq) {
            delivered(&self.core.pool.metrics, class, d.head.error, d.head.len);
        }
    }

    /// Lets the reply of the only request in flight go straight to the client.
    fn arm(&mut self) {
        let idle = self.out.is_empty() && self.reading == Reading::Open && self.deferred.is_none();
        if let (true, Some(seq)) = (idle, self.queue.lone_waiting()) {
            self.core.io.arm(seq);
        }
    }

    /// Serves buffered requests and writes ready replies until the socket is full
    /// or nothing more is ready: a ready reply never waits for the client to send
    /// more, whatever its size. False when the socket failed.
    fn flush(&mut self, router: &Router) -> bool {
        loop {
            self.advance(router);
            if self.out.is_empty() {
                return true;
            }
            let pending = self.out.len();
            match self.out.try_write_to(&self.core.io.stream) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.wrote(n, &self.core.pool.metrics);
                    if n < pending {
                        return true;
                    }
                }
                Err(e) => return e.kind() == std::io::ErrorKind::WouldBlock,
            }
        }
    }

    /// Dispatches buffered requests and moves ready replies out, until neither
    /// makes progress: replies leaving the queue make room for requests already read.
    fn advance(&mut self, router: &Router) {
        loop {
            self.process(router);
            if self.out.fill(&mut self.queue, &self.core.pool.metrics) == 0 {
                return;
            }
        }
    }

    fn on_completion(&mut self, c: Completion) {
        let mut next = Some(c);
        while let Some(c) = next {
            if let Some(c) = self.held.dedicated.intercept(c) {
                self.queue.complete(c.seq, c.part, c.reply, c.head);
            }
            next = self.core.io.try_completion();
        }
        self.held
            .dedicated
            .settle(&self.queue, self.core.client.lane);
    }

    fn on_sub_frame(&mut self, f: SubFrame) {
        // Also once stopped: confirmations still complete the replies before the last.
        if let Outcome::Close = self.held.subs.on_frame(&mut self.queue, f) {
            self.reading = Reading::Stopped;
        }
    }

    /// Decodes and dispatches buffered requests while the pipeline has room. A
    /// request that must wait for earlier replies is kept and retried.
    fn process(&mut self, router: &Router) {
        if self.reading == Reading::Stopped || (self.rbuf.is_empty() && self.deferred.is_none()) {
            return;
        }
        let topo = router.load();
        self.max_pipeline = topo.limits.max_pipeline;
        self.deadlines.set_limits(topo.limits.clients);
        self.memory_budget = topo.limits.clients.max_memory;
        if let Some(req) = self.deferred.take() {
            let route = classify(&topo, &req);
            self.handle(req, route, &topo);
        }
        while self.reading != Reading::Stopped
            && self.deferred.is_none()
            && self.queue.len() < self.max_pipeline
        {
            match self
                .decoder
                .decode(&mut self.rbuf, topo.limits.max_request_size)
            {
                Ok(Some(req)) => {
                    let route = classify(&topo, &req);
                    self.core.pool.metrics.request(metric_class(&route));
                    self.handle(req, route, &topo);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = self.core.client.id, error = %e, "client protocol error");
                    let class = RequestClass::Invalid;
                    self.core.pool.metrics.request(class);
                    self.queue.push_ready(
                        crate::errors::protocol_error(e),
                        After::Close,
                        class,
                        false,
                    );
                    self.reading = Reading::Stopped;
                }
            }
        }
        self.core.entry.touch(
            self.core
                .pool
                .coarse_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
    }

    /// Runs `f` with a [`Ctx`] over `topo` for a request of `class`.
    fn with_cx<R>(
        &mut self,
        topo: &Topology,
        class: RequestClass,
        f: impl FnOnce(&mut Ctx, &mut Held) -> R,
    ) -> R {
        let mut cx = Ctx {
            class,
            quiet: self.core.client.reply != ReplyMode::On,
            queue: &mut self.queue,
            client: &mut self.core.client,
            topo,
            pool: &self.core.pool,
            io: &self.core.io,
            tap: None,
        };
        f(&mut cx, &mut self.held)
    }

    /// Hands one request to [`dispatch`] and acts on its outcome.
    fn handle(&mut self, req: Request, route: super::dispatch::Route, topo: &Topology) {
        let stateful = route.is_some_and(|(spec, class)| {
            self.core.entry.command(spec.id);
            super::dispatch::changes_client_state(class)
        });
        let was = self.core.client.reply;
        let outcome = self.with_cx(topo, metric_class(&route), |cx, held| {
            dispatch(cx, held, req, route)
        });
        match outcome {
            Outcome::Queued => {}
            Outcome::Wait(req) => return self.deferred = Some(req),
            Outcome::Close => self.reading = Reading::Stopped,
        }
        if was == ReplyMode::SkipNext && self.core.client.reply == ReplyMode::SkipNext {
            self.core.client.reply = ReplyMode::On;
        }
        if stateful {
            self.core.entry.show(self.shown());
            self.watch_if_holding();
        }
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future `f` returns, without making one.
    fn returned_size<A, F: Fn(A) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every connected client is one such task: its size is memory per idle
    /// client, so the serving state is boxed apart (and freed while parked). A
    /// tokio task is the future plus about 104 bytes, rounded up to 128: at most
    /// 152 bytes of future keep an idle client's task at 256 bytes.
    #[test]
    fn a_parked_session_task_stays_small() {
        let run = returned_size(super::Session::run);
        assert!(run <= 152, "Session::run's future is {run} bytes");
    }

    /// What a parked client keeps in its task: its identity and one word.
    #[test]
    fn the_parked_state_stays_small() {
        let parked = std::mem::size_of::<super::Parked>();
        assert!(parked <= 128, "Parked is {parked} bytes");
        let client = std::mem::size_of::<super::ClientState>();
        assert!(client <= 72, "ClientState is {client} bytes");
    }

    /// The other allocations every connected client keeps (with their reference
    /// counts, 16 bytes): at most 152 bytes of `ClientIo` and 72 of `ClientEntry`
    /// keep them in malloc's 176- and 96-byte chunks.
    #[test]
    fn per_client_allocations_stay_small() {
        let io = std::mem::size_of::<super::ClientIo>();
        assert!(io <= 152, "ClientIo is {io} bytes");
        let entry = std::mem::size_of::<super::ClientEntry>();
        assert!(entry <= 72, "ClientEntry is {entry} bytes");
    }

    /// The sequence number and the `asked` flag share one word.
    #[test]
    fn parked_resume_keeps_seq_and_asked() {
        for (seq, asked) in [(0, true), (1, false), (u64::MAX >> 1, true), (41, false)] {
            assert_eq!(
                super::parked::unpack(super::parked::pack(seq, asked)),
                (seq, asked)
            );
        }
    }

    /// The serving loop's future: one allocation per busy spell of a client.
    #[test]
    fn the_serving_future_stays_small() {
        fn returned_size3<A, B, C, F: Fn(A, B, C) -> Fut, Fut>(_: F) -> usize {
            std::mem::size_of::<Fut>()
        }
        let serve = returned_size3::<
            super::Session,
            &'static crate::topology::Router,
            &'static super::ClientIo,
            _,
            _,
        >(super::Session::serve);
        assert!(serve <= 2048, "Session::serve's future is {serve} bytes");
    }
}
