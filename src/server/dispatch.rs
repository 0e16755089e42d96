//! What the proxy does with one request: route it by key, split it per node,
//! broadcast it, answer it, or refuse it. Uses one topology snapshot for the whole
//! request, so a multi-key command is never split across two topology versions.

use super::local;
use super::pinned::Lane;
use super::pubsub::allowed_in_subscribe_mode;
use super::replies::After;
use super::session::Session;
use crate::backend::BackendRequest;
use crate::command::merge::Plan;
use crate::command::split::split;
use crate::command::{Class, CommandSpec, LocalKind, MergeKind, SplitKind, class_for};
use crate::errors::{self, BackendError};
use crate::metrics::RequestClass;
use crate::resp::{Proto, Request};
use crate::topology::Topology;
use bytes::{Bytes, BytesMut};

/// Most keys examined on the stack before routing falls back to the heap.
const INLINE_KEYS: usize = 16;

impl Session {
    /// Handles one decoded request.
    /// Returns the request back when it must wait for earlier replies (it is then
    /// dispatched again with `fresh` false, so it is counted once).
    pub fn dispatch(&mut self, req: Request, topo: &Topology, fresh: bool) -> Option<Request> {
        let Some(spec) = topo.commands.get(&req) else {
            self.count(RequestClass::Unknown, fresh);
            self.tx_state.failed |= self.tx_state.in_multi;
            self.error_with(errors::unknown_command, &req);
            return None;
        };
        let class = class_for(spec, &req);
        self.count(RequestClass::of(&class), fresh);
        if let Some(err) = self.precheck(&req, spec, class) {
            self.tx_state.failed |= self.tx_state.in_multi;
            return self.ready_then_none(err);
        }
        if self.tx_state.in_multi
            && !matches!(
                class,
                Class::Dedicated(_) | Class::Local(LocalKind::Quit | LocalKind::Reset)
            )
        {
            return self.in_multi(req, spec, topo);
        }
        if matches!(
            class,
            Class::Keyed | Class::Split(_) | Class::Broadcast(_) | Class::AnyNode | Class::Channel
        ) && !self.enter_lane(Lane::Shared)
        {
            return Some(req);
        }
        match class {
            Class::Keyed => self.keyed(req, spec, topo),
            Class::Split(kind) => self.split(req, spec, kind, topo),
            Class::Broadcast(MergeKind::Scan) => self.scan(req, topo),
            Class::Broadcast(kind) => self.broadcast(req, kind, topo),
            Class::Local(kind) => local::answer(self, &req, kind, topo),
            Class::AnyNode => self.any_node(req, topo),
            Class::Channel => self.by_arg(req, 1, topo),
            Class::Dedicated(kind) => return self.dedicated(req, spec, kind, topo),
            Class::Refused(reason) => self.refuse(spec, reason),
        }
        None
    }

    /// The error for a request that cannot run at all: auth, subcommand, arity,
    /// RESP2 subscribe mode.
    fn precheck(&self, req: &Request, spec: &CommandSpec, class: Class) -> Option<Bytes> {
        if !self.state.authed && !local::allowed_before_auth(spec) {
            return Some(Bytes::from_static(errors::NOAUTH));
        }
        let mut b = BytesMut::new();
        if spec.is_container() && req.argc() >= 2 {
            errors::unknown_subcommand(&mut b, req);
            return Some(b.freeze());
        }
        if !spec.arity_ok(req.argc())
            || (class == Class::Split(SplitKind::Mset) && req.argc().is_multiple_of(2))
        {
            errors::wrong_arity(&mut b, &spec.name);
            return Some(b.freeze());
        }
        let subscribed = self.pubsub.as_ref().is_some_and(|p| p.count() > 0);
        if subscribed && self.state.proto == Proto::Resp2 && !allowed_in_subscribe_mode(&spec.name)
        {
            errors::subscribe_mode(&mut b, &spec.name);
            return Some(b.freeze());
        }
        None
    }

    /// Counts a request of `class` and tags the replies queued for it.
    fn count(&mut self, class: RequestClass, fresh: bool) {
        self.queue.class = class;
        if fresh {
            self.ctx.metrics.request(class);
        }
    }

    /// Queues a reply known now.
    pub fn ready(&mut self, reply: Bytes) {
        self.queue.push_ready(reply, After::Continue);
    }

    /// Queues a fixed reply.
    pub fn ready_static(&mut self, reply: &'static [u8]) {
        self.ready(Bytes::from_static(reply));
    }

    fn error_with(&mut self, write: fn(&mut BytesMut, &Request), req: &Request) {
        let mut b = BytesMut::new();
        write(&mut b, req);
        self.ready(b.freeze());
    }

    /// Queues the refusal of `spec`'s command.
    pub fn refuse(&mut self, spec: &CommandSpec, reason: &str) {
        let mut b = BytesMut::new();
        errors::refused(&mut b, &spec.name, reason);
        self.ready(b.freeze());
    }

    /// Sends `frame` to node `idx` for a single reply.
    pub fn forward(&mut self, topo: &Topology, idx: usize, frame: Bytes) {
        let node = &topo.nodes[idx];
        if node.health.is_down() {
            return self.ready_static(BackendError::Down.wire());
        }
        let seq = self.queue.push_waiting();
        let reply = self.direct_reply_to(seq);
        node.conn(self.state.proto, self.state.id)
            .send(BackendRequest::new(frame, reply));
    }

    /// The node of every key of `req`, or the error reply to queue.
    pub(super) fn key_nodes(
        &self,
        req: &Request,
        spec: &CommandSpec,
        topo: &Topology,
        out: &mut Vec<(usize, usize)>,
    ) -> Result<(), Bytes> {
        let keys = spec.keys(req).map_err(|e| {
            let mut b = BytesMut::new();
            errors::key_error(&mut b, &e.to_string());
            b.freeze()
        })?;
        for k in keys {
            let Some(key) = req.get(k) else { continue };
            match topo.node_for_key(key) {
                Some(n) => out.push((k, n)),
                None => return Err(Bytes::from_static(BackendError::NoNode.wire())),
            }
        }
        Ok(())
    }

    fn keyed(&mut self, req: Request, spec: &CommandSpec, topo: &Topology) {
        if let Some(key) = spec.first_arg_key(&req) {
            return match topo.node_for_key(key) {
                Some(n) => self.forward(topo, n, req.frame().clone()),
                None => self.ready_static(BackendError::NoNode.wire()),
            };
        }
        let mut nodes = Vec::with_capacity(INLINE_KEYS);
        if let Err(e) = self.key_nodes(&req, spec, topo, &mut nodes) {
            return self.ready(e);
        }
        match nodes.first() {
            None => self.any_node(req, topo),
            Some(&(_, n)) if nodes.iter().all(|&(_, m)| m == n) => {
                self.forward(topo, n, req.frame().clone())
            }
            Some(_) => self.ready_static(errors::CROSSSLOT),
        }
    }

    fn split(&mut self, req: Request, spec: &CommandSpec, kind: SplitKind, topo: &Topology) {
        let mut nodes = Vec::with_capacity(INLINE_KEYS);
        if let Err(e) = self.key_nodes(&req, spec, topo, &mut nodes) {
            return self.ready(e);
        }
        let Some(&(_, first)) = nodes.first() else {
            return self.any_node(req, topo);
        };
        if nodes.iter().all(|&(_, n)| n == first) {
            return self.forward(topo, first, req.frame().clone());
        }
        let s = split(&req, kind, &nodes);
        self.ctx.metrics.fanout(s.parts.len());
        let seq = self
            .queue
            .push_merging(Plan::Split(kind, s.positions), s.parts.len());
        for (i, part) in s.parts.into_iter().enumerate() {
            self.send_part(topo, part.node, part.frame, seq, i as u32);
        }
    }

    fn broadcast(&mut self, req: Request, kind: MergeKind, topo: &Topology) {
        if local::is_flush(&req) && !topo.limits.allow_flush {
            return self.ready_static(errors::FLUSH_REFUSED);
        }
        let seq = self
            .queue
            .push_merging(Plan::Broadcast(kind), topo.nodes.len());
        for i in 0..topo.nodes.len() {
            self.send_part(topo, i, req.frame().clone(), seq, i as u32);
        }
    }

    /// Sends one part of a merged request; a down node fails its part at once.
    pub fn send_part(&mut self, topo: &Topology, node: usize, frame: Bytes, seq: u64, part: u32) {
        let reply = self.reply_to(seq, part);
        let n = &topo.nodes[node];
        if n.health.is_down() {
            return reply.send(Err(BackendError::Down));
        }
        n.conn(self.state.proto, self.state.id)
            .send(BackendRequest::new(frame, reply));
    }

    /// A keyless, stateless command: the first live node answers.
    fn any_node(&mut self, req: Request, topo: &Topology) {
        let pick = (0..topo.nodes.len()).find(|&i| !topo.nodes[i].health.is_down());
        match pick {
            Some(i) => self.forward(topo, i, req.frame().clone()),
            None => self.ready_static(BackendError::NoNode.wire()),
        }
    }

    /// Routed by argument `i` (PUBLISH's channel).
    fn by_arg(&mut self, req: Request, i: usize, topo: &Topology) {
        match req.get(i).and_then(|a| topo.node_for_key(a)) {
            Some(n) => self.forward(topo, n, req.frame().clone()),
            None => self.ready_static(BackendError::NoNode.wire()),
        }
    }

    /// One step of a SCAN over every node (see [`crate::command::scan`]).
    fn scan(&mut self, req: Request, topo: &Topology) {
        let n = topo.nodes.len();
        let Some((idx, cursor)) = crate::command::scan::decode_cursor(req.arg(1), n) else {
            return self.ready_static(b"-ERR invalid cursor\r\n");
        };
        let frame = crate::command::scan::node_request(&req, cursor);
        let seq = self.queue.push_merging(Plan::Scan(idx, n), 1);
        self.send_part(topo, idx, frame, seq, 0);
    }
}
