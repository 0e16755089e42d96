//! Request coalescing (`coalesce: true`): identical read-only single-key requests
//! to one node that arrive while one of them is in flight are answered from that
//! one's reply: one backend request, many client replies.
//!
//! # Which requests
//! [`eligible`]: commands the table flags `readonly` (not `blocking`, not
//! `movablekeys`), whose one key is argument 1, minus those whose reply is not a
//! function of the key's value alone ([`NOT_A_FUNCTION_OF_THE_VALUE`]: random
//! members, remaining time to live, access statistics). Commands with side effects
//! (GETEX, GETDEL, SPOP, ...) are not `readonly`. Requests are the same when their
//! frames are the same bytes, from clients speaking the same RESP version, to the
//! same node (and pool, hence database); nil and error replies are shared too.
//!
//! # How
//! A per-worker map ([`InFlight`]) holds a group per request in flight: the
//! first request (the leader) goes to the node with a [`Fanout`] on its
//! [`ReplyTo`]; a later identical request joins the group with its own reply slot
//! ([`ReplyTo`] of its own client and sequence number) and sends nothing. When the
//! leader's reply arrives, [`ReplyTo::send`] hands the same bytes to every member
//! through their own clients' completion queues, so each client's replies still
//! leave in its own request order. If the leader's request is dropped unanswered,
//! the members get `ConnectionLost` (see [`Fanout`]'s `Drop`).
//!
//! # A client's own writes
//! A joined reply may have been produced by the node up to one round trip before
//! the joining request arrived. It must never predate the joining client's own
//! earlier writes, so a client joins only a group created after every request of
//! its that may have written had been answered ([`Mark`]): a client that writes
//! and then reads through the proxy sees its write.
//!
//! [`ReplyTo`]: crate::backend::ReplyTo
//! [`ReplyTo::send`]: crate::backend::ReplyTo::send

use crate::backend::{BackendRequest, Node, ReplyTo, Then};
use crate::command::{Class, CommandFlags, CommandSpec};
use crate::errors::BackendError;
use crate::resp::Proto;
use crate::server::context::{Ctx, Outcome};
use bytes::Bytes;
use fnv::FnvHashMap;
use smallvec::SmallVec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Read-only commands whose reply depends on more than the key's value.
pub const NOT_A_FUNCTION_OF_THE_VALUE: &[&str] = &[
    "srandmember",
    "hrandfield",
    "zrandmember",
    "ttl",
    "pttl",
    "object|freq",
    "object|idletime",
    "memory|usage",
];
/// Shards of the in-flight map (a worker uses the one at its index modulo this).
const SHARDS: usize = 16;
/// Most requests joined to one in flight (later ones are sent on their own).
pub const MAX_MEMBERS: usize = 4096;

/// Whether requests of `spec` may be coalesced.
pub fn eligible(spec: &CommandSpec) -> bool {
    spec.flags.contains(CommandFlags::READONLY)
        && !spec.flags.contains(CommandFlags::BLOCKING)
        && !spec.flags.contains(CommandFlags::MOVABLEKEYS)
        && spec.class == Class::Keyed
        && !NOT_A_FUNCTION_OF_THE_VALUE.contains(&spec.name.as_str())
}

/// What makes two requests the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The node, by address in memory (the group holds it, so it stays valid).
    node: usize,
    proto: Proto,
    frame: Bytes,
}

/// One request in flight and the requests that joined it.
#[derive(Debug)]
struct Group {
    born: u64,
    _node: Arc<Node>,
    members: SmallVec<[ReplyTo; 4]>,
}

type Map = FnvHashMap<Key, Group>;

/// The requests in flight of one pool, per worker.
#[derive(Debug)]
pub struct InFlight {
    shards: Vec<Arc<Mutex<Map>>>,
    /// Groups created so far (a group's `born` is its number).
    created: AtomicU64,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            shards: (0..SHARDS).map(|_| Arc::default()).collect(),
            created: AtomicU64::new(0),
        }
    }
}

fn lock(m: &Mutex<Map>) -> MutexGuard<'_, Map> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InFlight {
    fn shard(&self) -> &Arc<Mutex<Map>> {
        &self.shards[crate::workers::current() % SHARDS]
    }

    /// Groups created so far.
    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Requests in flight now that others may join (all workers).
    pub fn groups(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// Per client: whether it may join a group (see the module doc).
#[derive(Debug, Default, Clone, Copy)]
pub struct Mark {
    /// A request that is not a read was sent and not yet seen answered.
    dirty: bool,
    /// Groups numbered above this were created after its last such request was answered.
    settled: u64,
}

impl Mark {
    /// The client sends a request of a command with `flags` and `class`: anything
    /// but a read or a command the proxy answers itself (HELLO, PING, CLIENT, ...)
    /// may write (EVAL and EXEC carry no `write` flag).
    #[inline]
    pub fn saw(&mut self, flags: CommandFlags, class: Class) {
        if !flags.contains(CommandFlags::READONLY) && !matches!(class, Class::Local(_)) {
            self.dirty = true;
        }
    }

    /// Whether a request of the client that may have written is still unanswered
    /// (`waiting`: its requests unanswered now; `created`: [`InFlight::created`]).
    pub fn unanswered(&mut self, waiting: usize, created: u64) -> bool {
        if self.dirty && waiting == 0 {
            self.dirty = false;
            self.settled = created;
        }
        self.dirty
    }

    /// Whether the client, with `waiting` requests unanswered, may join the group
    /// numbered `born` when `created` groups exist.
    fn may_join(&mut self, waiting: usize, created: u64, born: u64) -> bool {
        if self.dirty {
            if waiting > 0 {
                return false;
            }
            self.dirty = false;
            self.settled = created;
        }
        born > self.settled
    }
}

/// Sends `frame` (an [`eligible`] request) to `node` (a shard's primary, or the
/// replica `read_from` picked, with `then` its way back to the primary), or joins
/// the identical request in flight there.
pub fn forward(
    cx: &mut Ctx,
    node: &Arc<Node>,
    frame: &Bytes,
    then: Option<Box<dyn Then>>,
) -> Outcome {
    use crate::server::forward::forward_via;
    if node.health.is_down() {
        return forward_via(cx, node, frame.clone(), then);
    }
    let reg = &cx.pool.coalesce;
    let shard = reg.shard();
    let key = Key {
        node: Arc::as_ptr(node) as usize,
        proto: cx.client.proto,
        frame: frame.clone(),
    };
    let mut map = lock(shard);
    if let Some(g) = map.get_mut(&key) {
        let created = reg.created.load(Ordering::Relaxed);
        if g.members.len() >= MAX_MEMBERS
            || !cx
                .client
                .coalesce
                .may_join(cx.queue.waiting(), created, g.born)
        {
            drop(map);
            return forward_via(cx, node, frame.clone(), then);
        }
        let seq = cx.waiting();
        g.members.push(cx.direct_reply_to(seq));
        cx.pool.metrics.coalesced.inc();
        return Outcome::Queued;
    }
    let born = reg.created.fetch_add(1, Ordering::Relaxed) + 1;
    let group = Group {
        born,
        _node: node.clone(),
        members: SmallVec::new(),
    };
    map.insert(key.clone(), group);
    drop(map);
    let seq = cx.waiting();
    let mut reply = cx.direct_reply_to(seq);
    reply.then = then;
    reply.tap = Some(Arc::new(Fanout {
        shard: shard.clone(),
        key,
        born,
    }));
    // In a cluster pool the leader follows redirects; its members get the final reply.
    let reply = crate::server::forward::follow_redirects(cx, reply, frame);
    node.conn(cx.client.proto, cx.client.id)
        .send(BackendRequest::new(frame.clone(), reply));
    Outcome::Queued
}

/// Carried by the leader's [`ReplyTo`]: hands its reply to the group's members.
#[derive(Debug)]
pub struct Fanout {
    shard: Arc<Mutex<Map>>,
    key: Key,
    born: u64,
}

impl crate::backend::ReplyTap for Fanout {
    fn on_reply(&self, reply: &Result<Bytes, BackendError>) {
        self.deliver(reply);
    }
}

impl Fanout {
    /// Closes the group and gives every member `reply` (once: later calls find
    /// the group gone).
    pub fn deliver(&self, reply: &Result<Bytes, BackendError>) {
        let members = {
            let mut map = lock(&self.shard);
            match map.get(&self.key) {
                Some(g) if g.born == self.born => map.remove(&self.key).map(|g| g.members),
                _ => None,
            }
        };
        for m in members.into_iter().flatten() {
            m.send(reply.clone());
        }
    }
}

impl Drop for Fanout {
    /// A leader dropped unanswered (its connection task gone): members are not
    /// left waiting.
    fn drop(&mut self) {
        self.deliver(&Err(BackendError::ConnectionLost));
    }
}

#[cfg(test)]
mod tests;
