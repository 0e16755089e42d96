//! Requests that go to the nodes' shared connections: routed by key, split per
//! node, broadcast, sent to any node, routed by channel, or one SCAN step. One
//! topology snapshot serves the whole request, so a multi-key command is never
//! split across two topology versions.

use super::context::{Ctx, Outcome};
use super::read_route;
use crate::backend::replay;
use crate::backend::{BackendRequest, Node, ReplyTo, Then};
use crate::cluster::redirect;
use crate::command::merge::Plan;
use crate::command::scan;
use crate::command::split::split;
use crate::command::{CommandSpec, MergeKind, SplitKind};
use crate::errors::{self, BackendError};
use crate::resp::Request;
use bytes::Bytes;
use smallvec::SmallVec;

/// Most keys examined on the stack before routing falls back to the heap.
const INLINE_KEYS: usize = 16;

/// Sends `frame` to node `idx` for a single reply.
pub fn forward(cx: &mut Ctx, idx: usize, frame: Bytes) -> Outcome {
    forward_then(cx, idx, frame, None)
}

/// [`forward`], the reply going through `then` first (see [`crate::warmup`]).
pub fn forward_then(
    cx: &mut Ctx,
    idx: usize,
    frame: Bytes,
    then: Option<Box<dyn Then>>,
) -> Outcome {
    let node = &cx.topo.nodes[idx];
    forward_via(cx, node, frame, then)
}

/// Sends `frame` for a single reply to node `idx`, or for a read-only `spec` to
/// where the pool's `read_from` sends reads of that shard.
#[inline]
fn to_shard(cx: &mut Ctx, idx: usize, spec: &CommandSpec, frame: Bytes) -> Outcome {
    // The default policy decides here, without a call.
    if !read_route::spread(cx.topo) {
        return forward(cx, idx, frame);
    }
    match read_route::target(cx, idx, spec) {
        Ok(Some(t)) => {
            let fallback = t.fallback(cx, &frame);
            forward_via(cx, t.node, frame, fallback)
        }
        Ok(None) => forward(cx, idx, frame),
        Err(reply) => cx.ready_static(reply),
    }
}

/// Sends `frame` to `node` for a single reply, its reply going through `then`
/// first (a warm-up read, the way back to the primary of a replica read).
pub(crate) fn forward_via(
    cx: &mut Ctx,
    node: &Node,
    frame: Bytes,
    then: Option<Box<dyn Then>>,
) -> Outcome {
    if node.health.is_down() {
        return cx.ready_static(BackendError::Down.wire());
    }
    let seq = cx.waiting();
    let mut reply = cx.direct_reply_to(seq);
    reply.then = then;
    let reply = follow_redirects(cx, reply, &frame);
    node.conn(cx.client.proto, cx.client.id)
        .send(BackendRequest::new(frame, reply));
    Outcome::Queued
}

/// `reply`, made to follow the cluster's redirects of `frame` in a cluster pool.
#[inline]
pub(crate) fn follow_redirects(cx: &Ctx, mut reply: ReplyTo, frame: &Bytes) -> ReplyTo {
    // A hook already there (a replica read's fallback) hands its replies on to the
    // redirects itself.
    if let Some(cluster) = &cx.pool.cluster
        && reply.then.is_none()
    {
        redirect::attach(cluster, &mut reply, frame, cx.client.proto, cx.client.id);
    }
    reply
}

/// Sends one part of a merged request; a down node fails its part at once.
pub fn send_part(cx: &Ctx, node: usize, frame: Bytes, seq: u64, part: u32) {
    send_part_to(cx, &cx.topo.nodes[node], frame, (seq, part), None);
}

fn send_part_to(
    cx: &Ctx,
    n: &Node,
    frame: Bytes,
    (seq, part): (u64, u32),
    then: Option<Box<dyn Then>>,
) {
    let mut reply = cx.reply_to(seq, part);
    reply.then = then;
    let reply = follow_redirects(cx, reply, &frame);
    if n.health.is_down() {
        return reply.send(Err(BackendError::Down));
    }
    n.conn(cx.client.proto, cx.client.id)
        .send(BackendRequest::new(frame, reply));
}

/// Sends `frame` to every node of the whole pool ([`Topology::whole_pool_nodes`]:
/// with `eject: true`, ejected nodes are skipped), merged per `plan`.
///
/// [`Topology::whole_pool_nodes`]: crate::topology::Topology::whole_pool_nodes
pub fn to_every_node(cx: &mut Ctx, frame: &Bytes, plan: Plan) -> Outcome {
    let nodes: SmallVec<[usize; INLINE_KEYS]> = cx.topo.whole_pool_nodes().collect();
    if nodes.is_empty() {
        return cx.ready_static(BackendError::NoNode.wire());
    }
    let seq = cx.merging(plan, nodes.len());
    for (part, &i) in nodes.iter().enumerate() {
        send_part(cx, i, frame.clone(), seq, part as u32);
    }
    Outcome::Queued
}

/// Why the keys of a request give no node.
#[derive(Debug)]
pub enum NoRoute {
    /// The arguments do not say where the keys are (a bad `numkeys`, a missing
    /// key): Redis fails the command too, with a text that may depend on the node's
    /// state (FCALL of a function it does not have), so it is best left to a node.
    Malformed(crate::command::KeyError),
    /// The reply to give (no node for a key, keys on several nodes).
    Reply(&'static [u8]),
}

impl NoRoute {
    /// The reply when the proxy answers itself.
    pub fn reply(&self) -> &'static [u8] {
        match self {
            NoRoute::Malformed(e) => errors::key_error(*e),
            NoRoute::Reply(r) => r,
        }
    }
}

/// The node of every key of `req` (argument index, node).
pub fn key_nodes(
    cx: &Ctx,
    req: &Request,
    spec: &CommandSpec,
    out: &mut Vec<(usize, usize)>,
) -> Result<(), NoRoute> {
    let keys = spec.keys(req).map_err(NoRoute::Malformed)?;
    for k in keys {
        let Some(key) = req.get(k) else { continue };
        match cx.topo.node_for_key(key) {
            Some(n) => out.push((k, n)),
            None => return Err(NoRoute::Reply(BackendError::NoNode.wire())),
        }
    }
    Ok(())
}

/// The one node of `req`'s keys: `Ok(None)` without keys.
pub fn one_node(cx: &Ctx, req: &Request, spec: &CommandSpec) -> Result<Option<usize>, NoRoute> {
    let mut nodes = Vec::with_capacity(INLINE_KEYS);
    key_nodes(cx, req, spec, &mut nodes)?;
    match nodes.first() {
        None => Ok(None),
        Some(&(_, n)) if nodes.iter().all(|&(_, m)| m == n) => Ok(Some(n)),
        Some(_) => Err(NoRoute::Reply(cx.topo.placement.crossslot())),
    }
}

/// A command whose keys must all be on one node.
pub fn keyed(cx: &mut Ctx, req: &Request, spec: &CommandSpec) -> Outcome {
    if let Some(key) = spec.first_arg_key(req) {
        return match cx.topo.node_for_key(key) {
            Some(n) => {
                crate::hotkeys::on_keyed(cx, key, n);
                if let Some(out) = crate::nearcache::keyed(cx, spec, key, n, req.frame()) {
                    return out;
                }
                let frame = crate::ttl_jitter::frame(cx, req, spec, key);
                if !cx.topo.warm.is_empty() {
                    return crate::warmup::keyed(cx, n, frame, spec, key);
                }
                if cx.topo.config.coalesce && crate::coalesce::eligible(spec) {
                    return coalesce_to_shard(cx, n, spec, &frame);
                }
                to_shard(cx, n, spec, frame)
            }
            None => cx.ready_static(BackendError::NoNode.wire()),
        };
    }
    match one_node(cx, req, spec) {
        Ok(Some(n)) => {
            crate::warmup::after_write(cx, req, spec);
            to_shard(cx, n, spec, req.frame().clone())
        }
        Ok(None) | Err(NoRoute::Malformed(_)) => any_node(cx, req),
        Err(e) => cx.ready_static(e.reply()),
    }
}

/// A read [`crate::coalesce`] may answer, sent where `read_from` sends reads of
/// shard `idx` (a replica, with the way back to the primary, or the primary).
fn coalesce_to_shard(cx: &mut Ctx, idx: usize, spec: &CommandSpec, frame: &Bytes) -> Outcome {
    let topo = cx.topo;
    match read_route::target(cx, idx, spec) {
        Ok(Some(t)) => {
            let fallback = t.fallback(cx, frame);
            crate::coalesce::forward(cx, t.node, frame, fallback)
        }
        Ok(None) => crate::coalesce::forward(cx, &topo.nodes[idx], frame, None),
        Err(reply) => cx.ready_static(reply),
    }
}

/// A command split into one sub-request per node (MGET, MSET, DEL, ...).
pub fn split_keys(cx: &mut Ctx, req: &Request, spec: &CommandSpec, kind: SplitKind) -> Outcome {
    let mut nodes = Vec::with_capacity(INLINE_KEYS);
    match key_nodes(cx, req, spec, &mut nodes) {
        Ok(()) => {}
        Err(NoRoute::Malformed(_)) => return any_node(cx, req),
        Err(e) => return cx.ready_static(e.reply()),
    }
    let Some(&(_, first)) = nodes.first() else {
        return any_node(cx, req);
    };
    crate::warmup::after_write(cx, req, spec);
    for &(k, n) in &nodes {
        crate::hotkeys::on_keyed(cx, req.arg(k), n);
    }
    crate::nearcache::split(cx, spec, req, &nodes);
    // A cluster node takes one slot per request: group by slot there.
    let by_slot = crate::cluster::group_by_slot(cx.topo, req, &mut nodes);
    if nodes.iter().all(|&(_, n)| n == nodes[0].1) {
        return to_shard(cx, first, spec, req.frame().clone());
    }
    let s = split(req, kind, &nodes);
    let mut targets: SmallVec<[_; INLINE_KEYS]> = SmallVec::new();
    for part in &s.parts {
        match read_route::target(cx, crate::cluster::group_node(by_slot, part.node), spec) {
            Ok(t) => targets.push(t),
            Err(reply) => return cx.ready_static(reply),
        }
    }
    cx.pool.metrics.fanout(s.parts.len());
    let seq = cx.merging(Plan::Split(kind, s.positions), s.parts.len());
    for (i, (part, t)) in s.parts.into_iter().zip(targets).enumerate() {
        let (node, fallback) = match t {
            Some(t) => (&**t.node, t.fallback(cx, &part.frame)),
            None => (
                &*cx.topo.nodes[crate::cluster::group_node(by_slot, part.node)],
                None,
            ),
        };
        send_part_to(cx, node, part.frame, (seq, i as u32), fallback);
    }
    Outcome::Queued
}

/// A command for every node, merged per `kind` (SCAN is [`scan()`]). A down node
/// of the whole pool fails it at once (its keys cannot be reached); script and
/// function changes that succeed are recorded for the nodes that join later.
pub fn broadcast(cx: &mut Ctx, req: &Request, kind: MergeKind) -> Outcome {
    if super::local::is_flush(req) && !cx.topo.limits.allow_flush {
        return cx.ready_static(errors::FLUSH_REFUSED);
    }
    if cx.topo.whole_pool_down().is_some() {
        return cx.ready_static(errors::POOL_NODE_DOWN);
    }
    let plan = match replay::entry_for(req) {
        Some(entry) => Plan::Record(kind, cx.pool.replay.clone(), entry),
        None => Plan::Broadcast(kind),
    };
    to_every_node(cx, req.frame(), plan)
}

/// A keyless, stateless command: the first live node answers.
pub fn any_node(cx: &mut Ctx, req: &Request) -> Outcome {
    let pick = (0..cx.topo.nodes.len()).find(|&i| !cx.topo.nodes[i].health.is_down());
    match pick {
        Some(i) => forward(cx, i, req.frame().clone()),
        None => cx.ready_static(BackendError::NoNode.wire()),
    }
}

/// Routed by the channel in argument 1 (PUBLISH, SPUBLISH).
pub fn by_channel(cx: &mut Ctx, req: &Request) -> Outcome {
    match req.get(1).and_then(|a| cx.topo.node_for_key(a)) {
        Some(n) => forward(cx, n, req.frame().clone()),
        None => cx.ready_static(BackendError::NoNode.wire()),
    }
}

/// One step of a SCAN over the whole pool (see [`crate::command::scan`]): the
/// cursor names its node by scan tag, so it survives a topology change.
pub fn scan(cx: &mut Ctx, req: &Request) -> Outcome {
    let Some((tag, cursor)) = scan::decode_cursor(req.arg(1)) else {
        return cx.ready_static(errors::INVALID_CURSOR);
    };
    let topo = cx.topo;
    let walked = |i: usize| topo.in_whole_pool(i);
    let Some(step) = scan::resolve(&topo.scan_order, walked, tag, cursor) else {
        return cx.ready_static(scan::EMPTY_REPLY);
    };
    if topo.nodes[step.node].health.is_down() {
        return cx.ready_static(errors::POOL_NODE_DOWN);
    }
    let frame = scan::node_request(req, step.node_cursor);
    let seq = cx.merging(Plan::Scan(step.tag, step.next_tag), 1);
    send_part(cx, step.node, frame, seq, 0);
    Outcome::Queued
}
