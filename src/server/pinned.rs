//! Commands that need a backend connection of the client's own: transactions
//! (MULTI/EXEC/DISCARD), WATCH/UNWATCH, and blocking commands (BLPOP, XREAD BLOCK,
//! WAIT, ...). Such state must never reach a connection shared with other clients.
//!
//! A transaction is pinned to the node of its first key: MULTI is answered at once
//! and sent, with any keyless commands queued before the first key, when that key
//! arrives. A key on another node gets CROSSSLOT and makes EXEC abort, as Redis
//! does for a command rejected inside MULTI. Hash tags keep a transaction's keys on
//! one node.
//!
//! Ordering: a client's requests go on one "lane" (shared connections, or its
//! pinned connection). Switching lanes waits until every earlier request is
//! answered, so `SET k v` followed by `WATCH k` or `BLPOP` never runs out of order.

use super::session::Session;
use crate::backend::{BackendRequest, ConnHandle, Node};
use crate::command::{CommandSpec, DedicatedKind};
use crate::errors::{self, BackendError};
use crate::resp::Request;
use crate::topology::Topology;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Sequence number whose reply nobody waits for (MULTI sent late, queued commands
/// whose +QUEUED was already answered).
const SILENT: u64 = u64::MAX;

/// Which connections a client's in-flight requests are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lane {
    /// The nodes' shared connections.
    #[default]
    Shared,
    /// The client's pinned connection.
    Pinned,
}

/// A connection of the client's own, counted against `limits.max_dedicated`.
pub struct Pinned {
    /// The node it goes to.
    pub node: Arc<Node>,
    conn: ConnHandle,
    _slot: DedicatedSlot,
}

/// Holds one place in the pool's dedicated-connection count.
pub struct DedicatedSlot(Arc<super::PoolContext>);

impl DedicatedSlot {
    /// Takes a place, or the error reply when `cap` places are taken.
    pub fn take(ctx: &Arc<super::PoolContext>, cap: usize) -> Result<DedicatedSlot, &'static [u8]> {
        let n = ctx.dedicated.fetch_add(1, Ordering::Relaxed);
        ctx.metrics.dedicated_connections.inc();
        let slot = DedicatedSlot(ctx.clone());
        if n >= cap {
            return Err(errors::DEDICATED_LIMIT);
        }
        Ok(slot)
    }
}

impl Drop for DedicatedSlot {
    fn drop(&mut self) {
        self.0.dedicated.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.dedicated_connections.dec();
    }
}

/// MULTI/WATCH state of a client.
#[derive(Debug, Default)]
pub struct TxState {
    /// Between MULTI and EXEC/DISCARD.
    pub in_multi: bool,
    /// A command was rejected inside MULTI: EXEC aborts.
    pub failed: bool,
    /// MULTI was sent to the pinned connection.
    pub multi_sent: bool,
    /// WATCH was sent to the pinned connection.
    pub watching: bool,
    /// Keyless commands queued before the transaction had a node.
    pub buffered: Vec<Bytes>,
}

impl Session {
    /// Moves to `lane`; false when earlier requests must be answered first.
    pub fn enter_lane(&mut self, lane: super::pinned::Lane) -> bool {
        if lane != self.lane && self.queue.waiting() > 0 {
            return false;
        }
        self.lane = lane;
        true
    }

    /// Closes the client's own connection once nothing needs it: no request in
    /// flight on it, no transaction and no WATCH. Its dedicated slot is free again.
    pub fn release_idle_pin(&mut self) {
        let idle = self.lane == Lane::Pinned
            && self.queue.waiting() == 0
            && !self.tx_state.in_multi
            && !self.tx_state.watching;
        if idle && self.pinned.is_some() {
            self.pinned = None;
        }
    }

    /// Makes sure the client has a connection of its own to node `idx`.
    fn pin(&mut self, topo: &Topology, idx: usize) -> Result<(), &'static [u8]> {
        let node = &topo.nodes[idx];
        if self
            .pinned
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(&p.node, node))
        {
            return Ok(());
        }
        if node.health.is_down() {
            return Err(BackendError::Down.wire());
        }
        self.pinned = None;
        let slot = DedicatedSlot::take(&self.ctx, topo.limits.max_dedicated)?;
        let conn = node.dedicated(self.state.proto);
        self.pinned = Some(Pinned {
            node: node.clone(),
            conn,
            _slot: slot,
        });
        Ok(())
    }

    /// Sends `frame` on the pinned connection; its reply fills a new queue slot
    /// (`silent`: nobody waits for it).
    fn send_pinned(&mut self, frame: Bytes, timed: bool, silent: bool) {
        if self.pinned.is_none() {
            return;
        }
        let seq = if silent {
            SILENT
        } else {
            self.queue.push_waiting()
        };
        let reply = self.reply_to(seq, 0);
        let Some(p) = &self.pinned else { return };
        p.conn.send(BackendRequest {
            frame,
            reply,
            timed,
        });
    }

    /// The node of `req`'s keys: Ok(None) without keys, Err(reply) when they span nodes.
    fn one_node(
        &self,
        req: &Request,
        spec: &CommandSpec,
        topo: &Topology,
    ) -> Result<Option<usize>, Bytes> {
        let mut nodes = Vec::new();
        self.key_nodes(req, spec, topo, &mut nodes)?;
        match nodes.first() {
            None => Ok(None),
            Some(&(_, n)) if nodes.iter().all(|&(_, m)| m == n) => Ok(Some(n)),
            Some(_) => Err(Bytes::from_static(errors::CROSSSLOT)),
        }
    }

    /// Handles a command that needs a dedicated connection. Returns the request
    /// back when it must wait for earlier replies (lane switch).
    pub fn dedicated(
        &mut self,
        req: Request,
        spec: &CommandSpec,
        kind: DedicatedKind,
        topo: &Topology,
    ) -> Option<Request> {
        match kind {
            DedicatedKind::Transaction => self.transaction(req, topo),
            DedicatedKind::Watch => self.watch(req, spec, topo),
            DedicatedKind::Blocking => self.blocking(req, spec, topo),
            DedicatedKind::Subscribe => self.subscribe(req, spec, topo),
        }
    }

    fn blocking(&mut self, req: Request, spec: &CommandSpec, topo: &Topology) -> Option<Request> {
        let idx = match self.one_node(&req, spec, topo) {
            Ok(Some(i)) => i,
            Ok(None) => match self
                .pinned
                .as_ref()
                .and_then(|p| topo.nodes.iter().position(|n| Arc::ptr_eq(n, &p.node)))
            {
                // WAIT has no key: it waits on the connection the client wrote on.
                Some(i) => i,
                None => return self.ready_then_none(Bytes::from_static(b":0\r\n")),
            },
            Err(e) => return self.ready_then_none(e),
        };
        if !self.enter_lane(Lane::Pinned) {
            return Some(req);
        }
        if let Err(e) = self.pin(topo, idx) {
            return self.ready_then_none(Bytes::from_static(e));
        }
        self.send_pinned(req.frame().clone(), false, false);
        None
    }

    fn watch(&mut self, req: Request, spec: &CommandSpec, topo: &Topology) -> Option<Request> {
        let unwatch = req.arg(0).eq_ignore_ascii_case(b"unwatch");
        if self.tx_state.in_multi && !unwatch {
            return self.ready_then_none(Bytes::from_static(
                b"-ERR WATCH inside MULTI is not allowed\r\n",
            ));
        }
        if unwatch {
            if !self.tx_state.watching {
                return self.ready_then_none(Bytes::from_static(b"+OK\r\n"));
            }
            if !self.enter_lane(Lane::Pinned) {
                return Some(req);
            }
            self.tx_state.watching = false;
            self.send_pinned(req.frame().clone(), true, false);
            return None;
        }
        let idx = match self.one_node(&req, spec, topo) {
            Ok(Some(i)) => i,
            Ok(None) => return self.ready_then_none(Bytes::from_static(errors::SYNTAX)),
            Err(e) => return self.ready_then_none(e),
        };
        let other = self.tx_state.watching
            && self
                .pinned
                .as_ref()
                .is_some_and(|p| !Arc::ptr_eq(&p.node, &topo.nodes[idx]));
        if other {
            return self.ready_then_none(Bytes::from_static(errors::CROSSSLOT));
        }
        if !self.enter_lane(Lane::Pinned) {
            return Some(req);
        }
        if let Err(e) = self.pin(topo, idx) {
            return self.ready_then_none(Bytes::from_static(e));
        }
        self.tx_state.watching = true;
        self.send_pinned(req.frame().clone(), true, false);
        None
    }

    fn transaction(&mut self, req: Request, topo: &Topology) -> Option<Request> {
        let name = req.arg(0).to_ascii_lowercase();
        match name.as_slice() {
            b"multi" => self.multi(req),
            b"exec" => self.exec(req, topo),
            _ => self.discard(req),
        }
    }

    fn multi(&mut self, req: Request) -> Option<Request> {
        if self.tx_state.in_multi {
            return self.ready_then_none(Bytes::from_static(
                b"-ERR MULTI calls can not be nested\r\n",
            ));
        }
        if self.tx_state.watching {
            if !self.enter_lane(Lane::Pinned) {
                return Some(req);
            }
            self.send_pinned(req.frame().clone(), true, false);
            self.tx_state.multi_sent = true;
        } else {
            self.ready_static(b"+OK\r\n");
        }
        self.tx_state.in_multi = true;
        self.tx_state.failed = false;
        None
    }

    fn exec(&mut self, req: Request, topo: &Topology) -> Option<Request> {
        if !self.tx_state.in_multi {
            return self.ready_then_none(Bytes::from_static(b"-ERR EXEC without MULTI\r\n"));
        }
        if self.tx_state.failed {
            if self.tx_state.multi_sent {
                if !self.enter_lane(Lane::Pinned) {
                    return Some(req);
                }
                self.send_pinned(Request::from_args(&["DISCARD"]).frame().clone(), true, true);
            }
            self.tx_state = TxState::default();
            return self.ready_then_none(Bytes::from_static(
                b"-EXECABORT Transaction discarded because of previous errors.\r\n",
            ));
        }
        if !self.tx_state.multi_sent {
            // No key in the whole transaction: any live node runs it.
            let Some(idx) = topo.nodes.iter().position(|n| !n.health.is_down()) else {
                self.tx_state = TxState::default();
                return self.ready_then_none(Bytes::from_static(BackendError::NoNode.wire()));
            };
            if !self.enter_lane(Lane::Pinned) {
                return Some(req);
            }
            if let Err(e) = self.pin(topo, idx) {
                self.tx_state = TxState::default();
                return self.ready_then_none(Bytes::from_static(e));
            }
            self.start_multi();
        } else if !self.enter_lane(Lane::Pinned) {
            return Some(req);
        }
        self.send_pinned(req.frame().clone(), true, false);
        self.tx_state = TxState::default();
        None
    }

    fn discard(&mut self, req: Request) -> Option<Request> {
        if !self.tx_state.in_multi {
            return self.ready_then_none(Bytes::from_static(b"-ERR DISCARD without MULTI\r\n"));
        }
        if self.tx_state.multi_sent {
            if !self.enter_lane(Lane::Pinned) {
                return Some(req);
            }
            self.send_pinned(req.frame().clone(), true, false);
        } else {
            self.ready_static(b"+OK\r\n");
        }
        self.tx_state = TxState::default();
        None
    }

    /// Sends MULTI and the keyless commands queued so far (their +QUEUED was answered).
    fn start_multi(&mut self) {
        self.send_pinned(Request::from_args(&["MULTI"]).frame().clone(), true, true);
        for frame in std::mem::take(&mut self.tx_state.buffered) {
            self.send_pinned(frame, true, true);
        }
        self.tx_state.multi_sent = true;
    }

    /// A command between MULTI and EXEC. Returns the request back when it must wait.
    pub fn in_multi(
        &mut self,
        req: Request,
        spec: &CommandSpec,
        topo: &Topology,
    ) -> Option<Request> {
        let idx = match self.one_node(&req, spec, topo) {
            Ok(i) => i,
            Err(e) => {
                self.tx_state.failed = true;
                return self.ready_then_none(e);
            }
        };
        let pinned_idx = self
            .pinned
            .as_ref()
            .and_then(|p| topo.nodes.iter().position(|n| Arc::ptr_eq(n, &p.node)));
        match (idx, self.tx_state.multi_sent) {
            (None, false) => {
                self.tx_state.buffered.push(req.frame().clone());
                return self.ready_then_none(Bytes::from_static(b"+QUEUED\r\n"));
            }
            (Some(i), true) if Some(i) != pinned_idx => {
                self.tx_state.failed = true;
                return self.ready_then_none(Bytes::from_static(errors::CROSSSLOT));
            }
            (Some(i), false) => {
                if !self.enter_lane(Lane::Pinned) {
                    return Some(req);
                }
                if let Err(e) = self.pin(topo, i) {
                    self.tx_state.failed = true;
                    return self.ready_then_none(Bytes::from_static(e));
                }
                self.start_multi();
            }
            _ => {}
        }
        if !self.enter_lane(Lane::Pinned) {
            return Some(req);
        }
        self.send_pinned(req.frame().clone(), true, false);
        None
    }

    /// Queues `reply` and reports that the request is done.
    pub fn ready_then_none(&mut self, reply: Bytes) -> Option<Request> {
        self.ready(reply);
        None
    }
}
