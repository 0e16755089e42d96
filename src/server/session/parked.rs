//! What stays of a client while it is parked (its [`Core`], one word) and the
//! task that waits for its next bytes, then serves it until it is idle again.

use super::super::PoolContext;
use super::super::clients::ClientEntry;
use super::super::context::ClientState;
use super::super::listener::ClientSlot;
use super::Session;
use crate::client_io::ClientIo;
use std::sync::Arc;

/// What a client is whether it is served or parked: its socket, its identity and
/// state, its place in the registry and in the pool's client memory. Dropped once,
/// when the client is gone.
pub(super) struct Core {
    pub(super) pool: Arc<PoolContext>,
    pub(super) io: Arc<ClientIo>,
    /// What CLIENT LIST shows of this client.
    pub(super) entry: Arc<ClientEntry>,
    pub(super) client: ClientState,
    /// Its part of the pool's client memory.
    pub(super) held_bytes: super::super::memory::Held,
    pub(super) _slot: ClientSlot,
}

impl Drop for Core {
    /// Replies still in flight for a session that is gone are dropped on arrival;
    /// what it held leaves the pool's client memory.
    fn drop(&mut self) {
        self.io.close();
        self.held_bytes.release(&self.pool);
    }
}

/// An idle client: nothing in flight, nothing to write or read, no state on the
/// nodes. Its buffers, reply queue and the serving loop's state are freed; it keeps
/// only its [`Core`] until the socket is readable again (see [`Session::run`]).
pub(super) struct Parked {
    core: Core,
    /// The reply queue's next sequence number (numbers are never reused) times
    /// two, plus one to park again as soon as idle, unasked: a new client, once
    /// its first requests are served (most clients that stay idle do so from the
    /// start). One word, so that the parked task stays in its size class.
    pub(super) resume: u64,
}

impl Parked {
    /// `core`, its queue numbered from `next_seq` when served again.
    pub(super) fn new(core: Core, next_seq: u64, asked: bool) -> Parked {
        Parked {
            core,
            resume: pack(next_seq, asked),
        }
    }

    /// Its serving state again.
    pub(super) fn serving(self) -> Session {
        let (next_seq, asked) = unpack(self.resume);
        Session::serving(self.core, next_seq, asked)
    }
}

/// [`Parked::resume`] of `next_seq` and `asked`.
pub(super) fn pack(next_seq: u64, asked: bool) -> u64 {
    next_seq << 1 | u64::from(asked)
}

/// The `next_seq` and `asked` of a [`Parked::resume`].
pub(super) fn unpack(resume: u64) -> (u64, bool) {
    (resume >> 1, resume & 1 == 1)
}

/// A parked client's task: waits until its socket is readable (data, end of input
/// or an error: the session finds out which), then serves it until it is idle
/// again; with `serve_now` it starts serving without waiting.
///
/// An `async` block rather than an `async fn`: its captured `parked` is the only
/// copy kept while the task waits (an `async fn` keeps its arguments and its
/// locals apart), and nothing else is held then, so the task stays small.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep `parked` twice (argument and local)"
)]
pub(super) fn wait_and_serve(
    mut parked: Parked,
    mut serve_now: bool,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    async move {
        loop {
            if !std::mem::take(&mut serve_now) {
                let stream = &parked.core.io.stream;
                std::future::poll_fn(|cx| stream.poll_input(cx)).await;
            }
            // Held for the busy spell so that each batch can borrow a snapshot (an
            // arc-swap guard, no shared reference count touched).
            let router = parked.core.pool.router.clone();
            let io = parked.core.io.clone();
            let session = parked.serving();
            let spell = Box::pin(async move { session.serve(&router, &io).await });
            match spell.await {
                Some(p) => parked = p,
                None => return,
            }
        }
    }
}
