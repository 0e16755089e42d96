//! The narrow context one request is handled in, and the outcome of handling it.
//!
//! The session owns the socket, the buffers and the queue; a handler (shared
//! forwarding, dedicated connections, pub/sub, local commands) gets a [`Ctx`]: the
//! reply queue, the client's state, one topology snapshot and where backend replies
//! go. It returns an [`Outcome`] and never sees the socket.

use super::PoolContext;
use super::replies::{After, ReplyQueue};
use crate::acl::{User, Users};
use crate::backend::ReplyTo;
use crate::client_io::ClientIo;
use crate::command::merge::Plan;
use crate::metrics::RequestClass;
use crate::resp::{Proto, Request};
use crate::topology::Topology;
use bytes::Bytes;
use std::sync::Arc;

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// Its reply is in the queue: known now, or waiting for backends.
    Queued,
    /// It must wait until every earlier request is answered (a lane switch, RESET);
    /// the session hands it back once they are.
    Wait(Request),
    /// Its reply is queued with [`After::Close`]; no later request is read (QUIT).
    Close,
}

/// Which connections a client's in-flight requests are on. A client's requests to a
/// node keep their order only on one connection, so a request for another lane
/// waits until every earlier request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The nodes' shared connections for this protocol version.
    Shared(Proto),
    /// The client's own (pinned) connection to one node (named by its address in
    /// memory: a connection to another node is another lane).
    Pinned(usize),
    /// The client's subscriber connections: a request after SUBSCRIBE sees the
    /// subscription made (PUBSUB NUMSUB counts it).
    Subscriber,
    /// The near cache's tracking connections (a fill, see [`crate::nearcache`]).
    NearCache,
}

/// CLIENT REPLY: whether replies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Every reply (the default).
    On,
    /// None until CLIENT REPLY ON.
    Off,
    /// None for the next command, then on again.
    SkipNext,
}

/// Per-client state the client can change (never shared with other clients).
#[derive(Debug)]
pub struct ClientState {
    /// Client id (CLIENT ID).
    pub id: u64,
    /// Protocol chosen with HELLO.
    pub proto: Proto,
    /// CLIENT SETNAME (boxed: most clients have none, and a parked client keeps
    /// this state).
    pub name: Option<Box<Bytes>>,
    /// The user it is logged in as (`None`: not authenticated), from the user table
    /// numbered [`ClientState::users_generation`].
    pub user: Option<Arc<User>>,
    /// [`Users::generation`] of the table `user` is from.
    pub users_generation: u64,
    /// Lane of the requests in flight.
    pub lane: Lane,
    /// CLIENT REPLY.
    pub reply: ReplyMode,
    /// Which in-flight reads it may join ([`crate::coalesce`]).
    pub coalesce: crate::coalesce::Mark,
}

impl ClientState {
    /// A new client `id`, logged in as `users`' initial user (if any).
    pub fn new(id: u64, users: &Users) -> ClientState {
        ClientState {
            id,
            proto: Proto::Resp2,
            name: None,
            user: users.initial(),
            users_generation: users.generation(),
            lane: Lane::Shared(Proto::Resp2),
            reply: ReplyMode::On,
            coalesce: Default::default(),
        }
    }
}

impl ClientState {
    /// The user the client is logged in as under `users` (the table of the current
    /// topology): after a reload the login is looked up again by name; a user that
    /// is gone falls back to the table's initial user, as a new connection would.
    pub fn user_in(&mut self, users: &Users) -> Option<&Arc<User>> {
        if self.users_generation != users.generation() {
            let again = self
                .user
                .as_ref()
                .and_then(|u| users.get(u.name.as_bytes()));
            self.user = again.cloned().or_else(|| users.initial());
            self.users_generation = users.generation();
        }
        self.user.as_ref()
    }

    /// Logs in as `user` of `users`.
    pub fn log_in(&mut self, user: Arc<User>, users: &Users) {
        self.user = Some(user);
        self.users_generation = users.generation();
    }

    /// Whether the client is authenticated.
    pub fn authed(&self) -> bool {
        self.user.is_some()
    }
}

/// What a handler of one request may touch.
pub struct Ctx<'a> {
    /// The client's replies, in request order.
    pub queue: &'a mut ReplyQueue,
    /// The client's state.
    pub client: &'a mut ClientState,
    /// The topology snapshot the request is routed with.
    pub topo: &'a Topology,
    /// What the pool's sessions share (metrics, counters).
    pub pool: &'a Arc<PoolContext>,
    /// Where backend replies for this client go.
    pub io: &'a Arc<ClientIo>,
    /// Class of the request (recorded in the slots queued for it).
    pub class: RequestClass,
    /// Its replies are not written (CLIENT REPLY OFF or SKIP).
    pub quiet: bool,
    /// Given to every backend reply of the request (see [`crate::backend::ReplyTap`]).
    pub tap: Option<Arc<dyn crate::backend::ReplyTap>>,
}

impl Ctx<'_> {
    /// Queues a reply known now.
    pub fn ready(&mut self, reply: Bytes) -> Outcome {
        self.queue
            .push_ready(reply, After::Continue, self.class, self.quiet);
        Outcome::Queued
    }

    /// Queues a fixed reply.
    pub fn ready_static(&mut self, reply: &'static [u8]) -> Outcome {
        self.ready(Bytes::from_static(reply))
    }

    /// Queues a reply, then closes the connection once it is written.
    pub fn ready_then_close(&mut self, reply: &'static [u8]) -> Outcome {
        self.ready_then_close_bytes(Bytes::from_static(reply))
    }

    /// [`Ctx::ready_then_close`] of a reply built now.
    pub fn ready_then_close_bytes(&mut self, reply: Bytes) -> Outcome {
        self.queue
            .push_ready(reply, After::Close, self.class, self.quiet);
        Outcome::Close
    }

    /// A queue slot for one backend reply; its sequence number.
    pub fn waiting(&mut self) -> u64 {
        self.queue.push_waiting(self.class, self.quiet)
    }

    /// A queue slot for `parts` replies merged per `plan`; its sequence number.
    pub fn merging(&mut self, plan: Plan, parts: usize) -> u64 {
        self.queue
            .push_merging(plan, parts, self.class, self.client.proto, self.quiet)
    }

    /// Moves to `lane`; false when earlier requests must be answered first.
    pub fn enter_lane(&mut self, lane: Lane) -> bool {
        if lane != self.client.lane && self.queue.waiting() > 0 {
            return false;
        }
        self.client.lane = lane;
        true
    }

    /// The shared lane of the client's protocol.
    pub fn shared_lane(&self) -> Lane {
        Lane::Shared(self.client.proto)
    }

    /// Where the backend reply for (`seq`, `part`) goes.
    pub fn reply_to(&self, seq: u64, part: u32) -> ReplyTo {
        ReplyTo {
            io: self.io.clone(),
            seq,
            part,
            direct: false,
            then: None,
            tap: self.tap.clone(),
        }
    }

    /// Like [`Ctx::reply_to`] for a single-reply request on a shared connection:
    /// that reply may be written straight to the client (see [`crate::client_io`]).
    pub fn direct_reply_to(&self, seq: u64) -> ReplyTo {
        ReplyTo {
            direct: true,
            ..self.reply_to(seq, 0)
        }
    }
}
