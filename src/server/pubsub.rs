//! Pub/sub through the proxy. Channels are placed on the ring like keys (PUBLISH
//! goes to the channel's node, SUBSCRIBE too); patterns are subscribed on every
//! node. Each client gets its own subscriber connection per node it needs (counted
//! as dedicated connections). The proxy keeps the client's subscription set and
//! writes the confirmations itself, with the counts a single Redis would give, once
//! every node involved has confirmed; messages are passed on as they arrive.
//! When the topology changes, subscriptions follow their channels
//! ([`super::pubsub_follow`]).

mod wire;

pub(crate) use wire::Family;
pub use wire::allowed_in_subscribe_mode;
use wire::{confirmation, is_confirmation};

use super::context::{Ctx, Outcome};
use super::dedicated::DedicatedSlot;
use super::replies::{After, ReplyQueue};
use crate::backend::Node;
use crate::backend::subscriber::{SUB_CHANNEL, SubFrame, SubscriberHandle};
use crate::command::CommandSpec;
use crate::command::merge::Plan;
use crate::errors::BackendError;
use crate::metrics::RequestClass;

use crate::resp::Request;
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A client's subscriptions: none until it first subscribes.
#[derive(Default)]
pub struct Subscriptions(Option<Box<PubSub>>);

/// Sequence number of a confirmation nobody waits for (subscriptions the proxy
/// moves by itself).
pub(super) const SILENT: u64 = u64::MAX;
/// Sequence number of a confirmation the coming topology waits for.
pub(super) const PREPARED: u64 = u64::MAX - 1;

/// A client's pub/sub state.
pub(super) struct PubSub {
    /// Frames from the subscriber connections.
    rx: mpsc::Receiver<SubFrame>,
    tx: mpsc::Sender<SubFrame>,
    /// Subscriber connections by index (`None`: closed, its node left the topology).
    pub(super) subs: Vec<Option<Sub>>,
    /// Subscribed channels → subscriber index, per family (0: channels, 1: shard
    /// channels); patterns live on every subscriber of a whole-pool node.
    pub(super) channels: [HashMap<Bytes, usize>; 2],
    pub(super) patterns: Vec<Bytes>,
    /// Channels subscribed on their next owner, not yet moved there.
    pub(super) moving: HashMap<(usize, Bytes), usize>,
    /// Confirmations the coming topology still waits for.
    pub(super) preparing: usize,
    pub(super) mark: SubscriberMark,
}

pub(super) struct Sub {
    pub(super) node: Arc<Node>,
    handle: SubscriberHandle,
    /// Confirmations this connection still owes: (sequence, part) in order.
    expect: VecDeque<(u64, u32)>,
    /// It has every pattern of [`PubSub::patterns`].
    pub(super) has_patterns: bool,
    _slot: DedicatedSlot,
}

impl Sub {
    /// Sends `cmd names...`; each name's confirmation is tagged `seq`.
    pub(super) fn send(&mut self, cmd: &[u8], names: &[Bytes], seq: u64) {
        if names.is_empty() {
            return;
        }
        let mut args: Vec<&[u8]> = vec![cmd];
        args.extend(names.iter().map(|n| n.as_ref()));
        self.handle.send(Request::from_args(&args).frame().clone());
        self.expect.extend(names.iter().map(|_| (seq, 0)));
    }
}

/// A subscribed client's place among the pool's subscribers (a coming topology
/// waits for it to be ready: see [`super::readiness`]).
pub(super) struct SubscriberMark {
    pub(super) pool: Arc<super::PoolContext>,
    pub(super) member: super::readiness::Member,
}

impl Drop for SubscriberMark {
    fn drop(&mut self) {
        self.pool.readiness.leave(&mut self.member);
    }
}

impl PubSub {
    fn new(pool: &Arc<super::PoolContext>) -> PubSub {
        let (tx, rx) = mpsc::channel(SUB_CHANNEL);
        PubSub {
            rx,
            tx,
            subs: Vec::new(),
            channels: [HashMap::new(), HashMap::new()],
            patterns: Vec::new(),
            moving: HashMap::new(),
            preparing: 0,
            mark: SubscriberMark {
                pool: pool.clone(),
                member: pool.readiness.join(),
            },
        }
    }

    /// Channels and patterns subscribed.
    fn count(&self) -> usize {
        self.channels[0].len() + self.channels[1].len() + self.patterns.len()
    }

    /// The count a confirmation of `family` reports: shard channels count apart.
    fn family_count(&self, family: Family) -> usize {
        match family {
            Family::Shard => self.channels[1].len(),
            _ => self.count() - self.channels[1].len(),
        }
    }
}

impl Subscriptions {
    /// Channels and patterns subscribed (what RESP2 "subscribe mode" depends on).
    pub fn count(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.count())
    }

    /// Whether the client has subscribed since it connected (or since RESET): a
    /// coming topology waits for it then.
    pub fn is_member(&self) -> bool {
        self.0.is_some()
    }

    /// Channels, patterns and shard channels subscribed.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.0.as_ref().map_or((0, 0, 0), |p| {
            (p.channels[0].len(), p.patterns.len(), p.channels[1].len())
        })
    }

    /// Receives the next subscriber frame, or waits for ever without pub/sub.
    pub async fn next_frame(&mut self) -> Option<SubFrame> {
        match &mut self.0 {
            Some(p) => p.rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Before `cx.topo` takes traffic: subscribes what it needs (see
    /// [`super::pubsub_follow`]).
    pub fn prepare(&mut self, cx: &Ctx) {
        if let Some(ps) = &mut self.0 {
            ps.prepare(cx);
        }
    }

    /// After `cx.topo` became current: subscriptions move to it.
    pub fn follow(&mut self, cx: &Ctx) {
        if let Some(ps) = &mut self.0 {
            ps.follow(cx);
        }
    }

    /// Drops every subscription and subscriber connection (RESET, once every
    /// confirmation has arrived).
    pub fn reset(&mut self) {
        self.0 = None;
    }
}

impl Subscriptions {
    /// SUBSCRIBE family.
    pub fn handle(&mut self, cx: &mut Ctx, req: &Request, spec: &CommandSpec) -> Outcome {
        let (family, sub) = match spec.name.as_str() {
            "subscribe" => (Family::Channel, true),
            "ssubscribe" => (Family::Shard, true),
            "psubscribe" => (Family::Pattern, true),
            "unsubscribe" => (Family::Channel, false),
            "sunsubscribe" => (Family::Shard, false),
            _ => (Family::Pattern, false),
        };
        let ps = self.0.get_or_insert_with(|| Box::new(PubSub::new(cx.pool)));
        if !sub {
            ps.remove(cx, req, family);
            return Outcome::Queued;
        }
        match ps.add(cx, req, family) {
            Ok(()) => Outcome::Queued,
            Err(e) => cx.ready_static(e),
        }
    }

    /// A frame from a subscriber connection: a confirmation completes its command;
    /// a message goes to the client; a lost connection ends the client's session
    /// (its client library reconnects and subscribes again).
    pub fn on_frame(&mut self, queue: &mut ReplyQueue, f: SubFrame) -> Outcome {
        let Some(ps) = self.0.as_mut() else {
            return Outcome::Queued;
        };
        let sub = ps.subs.get_mut(f.sub).and_then(Option::as_mut);
        let frame = match (f.frame, sub.is_some()) {
            (Ok(frame), _) => frame,
            // A subscriber closed because its node left the topology.
            (Err(_), false) => return Outcome::Queued,
            (Err(e), true) => {
                queue.push_ready(Bytes::from_static(e.wire()), After::Close, CLASS, false);
                return Outcome::Close;
            }
        };
        if !is_confirmation(&frame) {
            queue.push_ready(frame, After::Continue, CLASS, false);
            return Outcome::Queued;
        }
        match sub.and_then(|s| s.expect.pop_front()) {
            Some((PREPARED, _)) => ps.confirmed_prepared(),
            Some((seq, part)) => queue.complete(seq, part, Ok(frame), None),
            None => {}
        }
        Outcome::Queued
    }
}

/// The class messages and lost-connection errors are counted in.
const CLASS: RequestClass = RequestClass::Dedicated;

/// Which subscriber gets which names.
type SendPlan = Vec<(usize, Vec<Bytes>)>;

fn plan_add(plan: &mut SendPlan, sub: usize, name: &Bytes) {
    match plan.iter_mut().find(|(i, _)| *i == sub) {
        Some((_, v)) => v.push(name.clone()),
        None => plan.push((sub, vec![name.clone()])),
    }
}

impl PubSub {
    /// The subscriber for node `idx` of `cx.topo`, opened if needed.
    pub(super) fn sub_for(&mut self, cx: &Ctx, idx: usize) -> Result<usize, &'static [u8]> {
        let node = &cx.topo.nodes[idx];
        let open = |s: &Option<Sub>| s.as_ref().is_some_and(|s| Arc::ptr_eq(&s.node, node));
        if let Some(i) = self.subs.iter().position(open) {
            return Ok(i);
        }
        if node.health.is_down() {
            return Err(BackendError::Down.wire());
        }
        let slot = DedicatedSlot::take(cx.pool, cx.topo.limits.max_dedicated)?;
        let i = self.subs.len();
        let handle = node.subscriber(cx.client.proto, i, self.tx.clone());
        self.subs.push(Some(Sub {
            node: node.clone(),
            handle,
            expect: VecDeque::new(),
            has_patterns: self.patterns.is_empty(),
            _slot: slot,
        }));
        Ok(i)
    }

    /// The open subscriber `i`.
    pub(super) fn sub(&mut self, i: usize) -> Option<&mut Sub> {
        self.subs.get_mut(i).and_then(Option::as_mut)
    }

    /// Indices of the open subscribers.
    pub(super) fn open_subs(&self) -> Vec<usize> {
        (0..self.subs.len())
            .filter(|&i| self.subs[i].is_some())
            .collect()
    }

    fn add(&mut self, cx: &mut Ctx, req: &Request, family: Family) -> Result<(), &'static [u8]> {
        let names: Vec<Bytes> = (1..req.argc()).map(|i| req.arg_bytes(i)).collect();
        let mut plan = SendPlan::new();
        for n in &names {
            let targets: Vec<usize> = match family {
                Family::Pattern => cx.topo.whole_pool_nodes().collect(),
                _ => vec![cx.topo.node_for_key(n).ok_or(BackendError::NoNode.wire())?],
            };
            for t in targets {
                let s = self.sub_for(cx, t)?;
                plan_add(&mut plan, s, n);
            }
        }
        let proto = cx.client.proto;
        let mut reply = BytesMut::new();
        for n in &names {
            match family {
                Family::Pattern if !self.patterns.contains(n) => self.patterns.push(n.clone()),
                Family::Pattern => {}
                Family::Channel | Family::Shard => {
                    let f = usize::from(family == Family::Shard);
                    let sub = plan
                        .iter()
                        .find(|(_, v)| v.contains(n))
                        .map_or(0, |(s, _)| *s);
                    self.channels[f].insert(n.clone(), sub);
                }
            }
            let count = self.family_count(family);
            confirmation(&mut reply, proto, family.kind(true), Some(n), count);
        }
        self.send_to_subs(cx, plan, family.command(true), reply.freeze());
        Ok(())
    }

    fn remove(&mut self, cx: &mut Ctx, req: &Request, family: Family) {
        let mut names: Vec<Bytes> = (1..req.argc()).map(|i| req.arg_bytes(i)).collect();
        let f = usize::from(family == Family::Shard);
        if names.is_empty() {
            names = match family {
                Family::Pattern => self.patterns.clone(),
                _ => self.channels[f].keys().cloned().collect(),
            };
        }
        let proto = cx.client.proto;
        let kind = family.kind(false);
        let mut plan = SendPlan::new();
        let mut reply = BytesMut::new();
        for n in &names {
            let subs: Vec<usize> = match family {
                Family::Pattern if self.patterns.contains(n) => {
                    self.patterns.retain(|p| p != n);
                    self.open_subs()
                }
                Family::Pattern => Vec::new(),
                _ => self.channels[f].remove(n).into_iter().collect(),
            };
            for s in subs {
                plan_add(&mut plan, s, n);
            }
            confirmation(&mut reply, proto, kind, Some(n), self.family_count(family));
        }
        if names.is_empty() {
            confirmation(&mut reply, proto, kind, None, self.family_count(family));
        }
        self.send_to_subs(cx, plan, family.command(false), reply.freeze());
    }

    /// Sends `cmd names...` per subscriber; `reply` is queued once all confirm.
    fn send_to_subs(&mut self, cx: &mut Ctx, plan: SendPlan, cmd: &[u8], reply: Bytes) {
        let total: usize = plan.iter().map(|(_, v)| v.len()).sum();
        if total == 0 {
            cx.ready(reply);
            return;
        }
        let seq = cx.merging(Plan::Fixed(reply), total);
        let mut part = 0u32;
        for (s, names) in plan {
            let patterns = self.patterns.clone();
            let Some(sub) = self.sub(s) else { continue };
            let mut args: Vec<&[u8]> = vec![cmd];
            args.extend(names.iter().map(|n| n.as_ref()));
            sub.handle.send(Request::from_args(&args).frame().clone());
            for _ in &names {
                sub.expect.push_back((seq, part));
                part += 1;
            }
            if cmd == b"PSUBSCRIBE" && !sub.has_patterns {
                // A subscriber opened after earlier patterns: it gets them all.
                sub.send(b"PSUBSCRIBE", &patterns, SILENT);
                sub.has_patterns = true;
            }
        }
    }
}
