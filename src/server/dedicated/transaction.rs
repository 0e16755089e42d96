//! MULTI, EXEC, DISCARD and the commands queued between them, on the client's own
//! connection (see the parent module for how a transaction is pinned).

use super::{Dedicated, TxState, lane_of};
use crate::command::CommandSpec;
use crate::errors::{self, BackendError};
use crate::resp::Request;
use crate::server::context::{Ctx, Outcome};
use crate::server::forward::{NoRoute, one_node};
use bytes::Bytes;

impl Dedicated {
    pub(super) fn multi(&mut self, cx: &mut Ctx, req: Request) -> Outcome {
        if self.tx.in_multi {
            return cx.ready_static(errors::MULTI_NESTED);
        }
        if self.tx.watching {
            if !cx.enter_lane(self.lane()) {
                return Outcome::Wait(req);
            }
            self.send(cx, req.frame().clone(), true, false);
            self.tx.multi_sent = true;
        } else {
            cx.ready_static(b"+OK\r\n");
        }
        self.tx.in_multi = true;
        self.tx.failed = false;
        Outcome::Queued
    }

    pub(super) fn exec(&mut self, cx: &mut Ctx, req: Request) -> Outcome {
        if !self.tx.in_multi {
            return cx.ready_static(errors::EXEC_WITHOUT_MULTI);
        }
        if self.tx.failed {
            if self.tx.multi_sent && !cx.enter_lane(self.lane()) {
                return Outcome::Wait(req);
            }
            self.abort(cx);
            return cx.ready_static(errors::EXECABORT);
        }
        if !self.tx.multi_sent {
            // No key in the whole transaction: any live node runs it.
            let Some(idx) = cx.topo.nodes.iter().position(|n| !n.health.is_down()) else {
                self.tx = TxState::default();
                return cx.ready_static(BackendError::NoNode.wire());
            };
            if !cx.enter_lane(lane_of(&cx.topo.nodes[idx])) {
                return Outcome::Wait(req);
            }
            if let Err(e) = self.pin(cx, idx) {
                self.tx = TxState::default();
                return cx.ready_static(e);
            }
            self.start_multi(cx);
        } else if !cx.enter_lane(self.lane()) {
            return Outcome::Wait(req);
        } else if self.tx.moved || self.moved_away(cx) {
            return self.abort_moved(cx);
        }
        self.send(cx, req.frame().clone(), true, false);
        self.tx = TxState::default();
        Outcome::Queued
    }

    pub(super) fn discard(&mut self, cx: &mut Ctx, req: Request) -> Outcome {
        if !self.tx.in_multi {
            return cx.ready_static(errors::DISCARD_WITHOUT_MULTI);
        }
        if self.tx.multi_sent {
            if !cx.enter_lane(self.lane()) {
                return Outcome::Wait(req);
            }
            self.send(cx, req.frame().clone(), true, false);
        } else {
            cx.ready_static(b"+OK\r\n");
        }
        self.tx = TxState::default();
        Outcome::Queued
    }

    /// Sends MULTI and the keyless commands queued so far (their +QUEUED was answered).
    pub(super) fn start_multi(&mut self, cx: &mut Ctx) {
        self.send(
            cx,
            Request::from_args(&["MULTI"]).frame().clone(),
            true,
            true,
        );
        for frame in std::mem::take(&mut self.tx.buffered) {
            self.send(cx, frame, true, true);
        }
        self.tx.multi_sent = true;
    }

    /// A command between MULTI and EXEC: queued on the pinned connection.
    pub fn queue_in_multi(&mut self, cx: &mut Ctx, req: Request, spec: &CommandSpec) -> Outcome {
        let idx = match one_node(cx, &req, spec) {
            Ok(i) => i,
            // Redis queues it and fails it inside EXEC: so does its node here.
            Err(NoRoute::Malformed(_)) => None,
            Err(e) => {
                self.tx.failed = true;
                return cx.ready_static(e.reply());
            }
        };
        match (idx, self.tx.multi_sent) {
            (None, false) => {
                self.tx.buffered.push(req.frame().clone());
                return cx.ready_static(b"+QUEUED\r\n");
            }
            (Some(i), true) if Some(i) != self.pinned_idx(cx) => {
                if self.moved_away(cx) {
                    // The topology moved the transaction's keys: it will not run
                    // (EXEC says so); queueing goes on as for Redis.
                    self.tx.moved = true;
                    return cx.ready_static(b"+QUEUED\r\n");
                }
                self.tx.failed = true;
                return cx.ready_static(errors::CROSSSLOT);
            }
            (Some(i), false) => {
                if !cx.enter_lane(lane_of(&cx.topo.nodes[i])) {
                    return Outcome::Wait(req);
                }
                if let Err(e) = self.pin(cx, i) {
                    self.tx.failed = true;
                    return cx.ready_static(e);
                }
                self.start_multi(cx);
            }
            _ => {}
        }
        if !cx.enter_lane(self.lane()) {
            return Outcome::Wait(req);
        }
        self.tx.keys.extend(key_args(&req, spec));
        self.send(cx, req.frame().clone(), true, false);
        Outcome::Queued
    }
}

/// The keys of `req` (none when they cannot be found).
pub(super) fn key_args<'r>(
    req: &'r Request,
    spec: &CommandSpec,
) -> impl Iterator<Item = Bytes> + 'r {
    let keys: Vec<usize> = spec.keys(req).map(|k| k.collect()).unwrap_or_default();
    keys.into_iter().map(|i| req.arg_bytes(i))
}
