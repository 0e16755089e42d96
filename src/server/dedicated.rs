//! Commands that need a backend connection of the client's own: transactions
//! (MULTI/EXEC/DISCARD), WATCH/UNWATCH, and blocking commands (BLPOP, XREAD BLOCK,
//! WAIT, ...). Such state must never reach a connection shared with other clients.
//!
//! A transaction is pinned to the node of its first key: MULTI is answered at once
//! and sent, with any keyless commands queued before the first key, when that key
//! arrives. A key on another node gets CROSSSLOT and makes EXEC abort, as Redis
//! does for a command rejected inside MULTI. Hash tags keep a transaction's keys on
//! one node. Inside MULTI every command, blocking ones included, is queued on the
//! pinned connection: Redis runs a blocking command in a transaction without
//! blocking.
//!
//! Ordering: the pinned connection is a lane of its own (see [`Lane`]), so
//! `SET k v` followed by `WATCH k` or `BLPOP` never runs out of order.

mod follow;
mod slots;
mod transaction;

use transaction::key_args;

use slots::BlockedMark;
pub use slots::DedicatedSlot;

use super::context::{Ctx, Lane, Outcome};
use super::forward::one_node;
use super::replies::ReplyQueue;
use crate::backend::{BackendRequest, ConnHandle, Node};
use crate::command::{CommandSpec, DedicatedKind};
use crate::errors::{self, BackendError};
use crate::resp::Request;
use bytes::Bytes;
use std::sync::Arc;

/// Sequence number whose reply nobody waits for (MULTI sent late, queued commands
/// whose +QUEUED was already answered).
const SILENT: u64 = u64::MAX;
/// Sequence number of the CLIENT ID reply of a new connection (its part: the
/// connection's generation).
const PIN_ID: u64 = u64::MAX - 2;

/// A connection of the client's own, counted against `limits.max_dedicated`.
struct Pinned {
    node: Arc<Node>,
    conn: ConnHandle,
    /// Which of the client's connections it is (CLIENT ID replies name it).
    generation: u32,
    /// Its CLIENT ID on the node, once known.
    remote_id: Option<i64>,
    _slot: DedicatedSlot,
}

/// The blocking command in flight.
struct Blocked {
    seq: u64,
    /// Its first key (none for WAIT).
    key: Option<Bytes>,
    /// The proxy unblocked it because its key moved.
    unblocked: bool,
    _mark: BlockedMark,
}

/// The lane of a connection of the client's own to `node`: requests on another
/// node's connection wait until those in flight are answered.
fn lane_of(node: &Arc<Node>) -> Lane {
    Lane::Pinned(Arc::as_ptr(node) as usize)
}

/// MULTI/WATCH state of a client.
#[derive(Debug, Default)]
struct TxState {
    /// Between MULTI and EXEC/DISCARD.
    in_multi: bool,
    /// A command was rejected inside MULTI: EXEC aborts.
    failed: bool,
    /// MULTI was sent to the pinned connection.
    multi_sent: bool,
    /// WATCH was sent to the pinned connection.
    watching: bool,
    /// Keyless commands queued before the transaction had a node.
    buffered: Vec<Bytes>,
    /// The keys watched and queued: all must still live on the pinned node at EXEC.
    keys: Vec<Bytes>,
    /// A topology change moved its keys: EXEC does not run it.
    moved: bool,
}

/// A client's dedicated connection and the transaction state that lives on it.
#[derive(Default)]
pub struct Dedicated {
    pinned: Option<Pinned>,
    tx: TxState,
    blocking: Option<Blocked>,
    /// Connections opened so far.
    generations: u32,
}

impl Dedicated {
    /// Between MULTI and EXEC/DISCARD.
    pub fn in_multi(&self) -> bool {
        self.tx.in_multi
    }

    /// Never used: no connection opened yet, no transaction, nothing blocked (an
    /// idle session may then drop it and start afresh, see the session's parking).
    pub fn is_unused(&self) -> bool {
        self.generations == 0
            && self.pinned.is_none()
            && self.blocking.is_none()
            && !self.tx.in_multi
    }

    /// A command was rejected: inside MULTI, EXEC will abort.
    pub fn reject_in_multi(&mut self) {
        self.tx.failed |= self.tx.in_multi;
    }

    /// Whether a blocking command is in flight (it may wait for ever).
    pub fn blocked(&self, queue: &ReplyQueue) -> bool {
        self.blocking
            .as_ref()
            .is_some_and(|b| queue.is_waiting(b.seq))
    }

    /// After replies arrived: forgets an answered blocking command, and closes the
    /// connection once nothing needs it (no request in flight on it, no
    /// transaction, no WATCH); its dedicated slot is free again.
    pub fn settle(&mut self, queue: &ReplyQueue, lane: Lane) {
        if !self.blocked(queue) {
            self.blocking = None;
        }
        let idle = matches!(lane, Lane::Pinned(_))
            && queue.waiting() == 0
            && !self.tx.in_multi
            && !self.tx.watching;
        if idle {
            self.pinned = None;
        }
    }

    /// The client switched protocol (HELLO): its own connection switches too, so
    /// replies to what it sends next come in the new protocol, as from Redis.
    pub fn switch_proto(&mut self, cx: &mut Ctx) {
        let v = if cx.client.proto == crate::resp::Proto::Resp3 {
            "3"
        } else {
            "2"
        };
        let hello = Request::from_args(&["HELLO", v]).frame().clone();
        self.send(cx, hello, true, true);
    }

    /// Whether the client has a connection of its own now.
    pub fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// Ends the transaction, if any, without running it (a rejected EXEC).
    pub fn abort(&mut self, cx: &mut Ctx) {
        if self.tx.multi_sent {
            self.send(
                cx,
                Request::from_args(&["DISCARD"]).frame().clone(),
                true,
                true,
            );
        }
        self.tx = TxState::default();
    }

    /// Forgets everything (RESET, once nothing is in flight).
    pub fn reset(&mut self) {
        *self = Dedicated::default();
    }

    /// Handles a command of the transaction, WATCH or blocking kind.
    pub fn handle(
        &mut self,
        cx: &mut Ctx,
        req: Request,
        spec: &CommandSpec,
        kind: DedicatedKind,
    ) -> Outcome {
        match kind {
            DedicatedKind::Transaction => match req.arg(0).to_ascii_lowercase().as_slice() {
                b"multi" => self.multi(cx, req),
                b"exec" => self.exec(cx, req),
                _ => self.discard(cx, req),
            },
            DedicatedKind::Watch if req.arg(0).eq_ignore_ascii_case(b"unwatch") => {
                self.unwatch(cx, req)
            }
            DedicatedKind::Watch => self.watch(cx, req, spec),
            DedicatedKind::Blocking | DedicatedKind::Subscribe => self.blocking(cx, req, spec),
        }
    }

    /// Makes sure the client has a connection of its own to node `idx`.
    fn pin(&mut self, cx: &Ctx, idx: usize) -> Result<(), &'static [u8]> {
        let node = &cx.topo.nodes[idx];
        if self.pinned_to(node) {
            return Ok(());
        }
        if node.health.is_down() {
            return Err(BackendError::Down.wire());
        }
        self.pinned = None;
        let slot = DedicatedSlot::take(cx.pool, cx.topo.limits.max_dedicated)?;
        self.generations = self.generations.wrapping_add(1);
        let conn = node.dedicated(cx.client.proto);
        // Its id on the node, to unblock it there if its key moves.
        conn.send(BackendRequest::new(
            Request::from_args(&["CLIENT", "ID"]).frame().clone(),
            cx.reply_to(PIN_ID, self.generations),
        ));
        self.pinned = Some(Pinned {
            node: node.clone(),
            conn,
            generation: self.generations,
            remote_id: None,
            _slot: slot,
        });
        Ok(())
    }

    /// The lane of the pinned connection.
    fn lane(&self) -> Lane {
        self.pinned
            .as_ref()
            .map_or(Lane::Pinned(0), |p| lane_of(&p.node))
    }

    fn pinned_to(&self, node: &Arc<Node>) -> bool {
        self.pinned
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(&p.node, node))
    }

    /// The index of the pinned node in `cx`'s topology.
    fn pinned_idx(&self, cx: &Ctx) -> Option<usize> {
        let p = self.pinned.as_ref()?;
        cx.topo.nodes.iter().position(|n| Arc::ptr_eq(n, &p.node))
    }

    /// Sends `frame` on the pinned connection; its reply fills a new queue slot
    /// (`silent`: nobody waits for it). Returns the slot's sequence number.
    fn send(&mut self, cx: &mut Ctx, frame: Bytes, timed: bool, silent: bool) -> u64 {
        let Some(p) = &self.pinned else {
            return SILENT;
        };
        let seq = if silent { SILENT } else { cx.waiting() };
        let reply = cx.reply_to(seq, 0);
        p.conn.send(BackendRequest {
            frame,
            reply,
            timed,
        });
        seq
    }

    fn blocking(&mut self, cx: &mut Ctx, req: Request, spec: &CommandSpec) -> Outcome {
        let idx = match one_node(cx, &req, spec) {
            Ok(Some(i)) => i,
            // WAIT has no key: it waits on the connection the client wrote on.
            Ok(None) => match self.pinned_idx(cx) {
                Some(i) => i,
                None => return cx.ready_static(b":0\r\n"),
            },
            // Never sent to a node on a guess: it could block a connection there.
            Err(e) => return cx.ready_static(e.reply()),
        };
        if !cx.enter_lane(lane_of(&cx.topo.nodes[idx])) {
            return Outcome::Wait(req);
        }
        if let Err(e) = self.pin(cx, idx) {
            return cx.ready_static(e);
        }
        let seq = self.send(cx, req.frame().clone(), false, false);
        let key = spec
            .keys(&req)
            .ok()
            .and_then(|mut k| k.next())
            .map(|i| req.arg_bytes(i));
        self.blocking = Some(Blocked {
            seq,
            key,
            unblocked: false,
            _mark: BlockedMark::new(cx.pool),
        });
        Outcome::Queued
    }

    fn unwatch(&mut self, cx: &mut Ctx, req: Request) -> Outcome {
        if !self.tx.watching {
            return cx.ready_static(b"+OK\r\n");
        }
        if !cx.enter_lane(self.lane()) {
            return Outcome::Wait(req);
        }
        self.tx.watching = false;
        self.send(cx, req.frame().clone(), true, false);
        Outcome::Queued
    }

    fn watch(&mut self, cx: &mut Ctx, req: Request, spec: &CommandSpec) -> Outcome {
        if self.tx.in_multi {
            return cx.ready_static(errors::WATCH_IN_MULTI);
        }
        let idx = match one_node(cx, &req, spec) {
            Ok(Some(i)) => i,
            Ok(None) => return cx.ready_static(errors::SYNTAX),
            Err(e) => return cx.ready_static(e.reply()),
        };
        if self.tx.watching && self.pinned.is_some() && !self.pinned_to(&cx.topo.nodes[idx]) {
            return cx.ready_static(cx.topo.placement.crossslot());
        }
        if !cx.enter_lane(lane_of(&cx.topo.nodes[idx])) {
            return Outcome::Wait(req);
        }
        if let Err(e) = self.pin(cx, idx) {
            return cx.ready_static(e);
        }
        self.tx.watching = true;
        self.tx.keys.extend(key_args(&req, spec));
        self.send(cx, req.frame().clone(), true, false);
        Outcome::Queued
    }
}
