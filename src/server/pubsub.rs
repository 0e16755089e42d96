//! Pub/sub through the proxy. Channels are placed on the ring like keys (PUBLISH
//! goes to the channel's node, SUBSCRIBE too); patterns are subscribed on every
//! node. Each client gets its own subscriber connection per node it needs (counted
//! as dedicated connections). The proxy keeps the client's subscription set and
//! writes the confirmations itself, with the counts a single Redis would give, once
//! every node involved has confirmed; messages are passed on as they arrive.

use super::context::{Ctx, Outcome};
use super::dedicated::DedicatedSlot;
use super::replies::{After, ReplyQueue};
use crate::backend::Node;
use crate::backend::subscriber::{SUB_CHANNEL, SubFrame, SubscriberHandle};
use crate::command::CommandSpec;
use crate::command::merge::Plan;
use crate::errors::BackendError;
use crate::metrics::RequestClass;
use crate::resp::reply::array_elements;
use crate::resp::{Proto, Request, encode};
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A client's subscriptions: none until it first subscribes.
#[derive(Default)]
pub struct Subscriptions(Option<Box<PubSub>>);

/// A client's pub/sub state.
struct PubSub {
    /// Frames from the subscriber connections.
    rx: mpsc::Receiver<SubFrame>,
    tx: mpsc::Sender<SubFrame>,
    subs: Vec<Sub>,
    /// Subscribed channels → subscriber index, per family (0: channels, 1: shard
    /// channels); patterns live on every subscriber.
    channels: [HashMap<Bytes, usize>; 2],
    patterns: Vec<Bytes>,
}

struct Sub {
    node: Arc<Node>,
    handle: SubscriberHandle,
    /// Confirmations this connection still owes: (sequence, part) in order.
    expect: VecDeque<(u64, u32)>,
    _slot: DedicatedSlot,
}

/// The six commands, by family.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Channel,
    Shard,
    Pattern,
}

impl Family {
    /// The command sent to the nodes.
    fn command(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Family::Channel, true) => b"SUBSCRIBE",
            (Family::Shard, true) => b"SSUBSCRIBE",
            (Family::Pattern, true) => b"PSUBSCRIBE",
            (Family::Channel, false) => b"UNSUBSCRIBE",
            (Family::Shard, false) => b"SUNSUBSCRIBE",
            (Family::Pattern, false) => b"PUNSUBSCRIBE",
        }
    }

    /// The confirmation's kind.
    fn kind(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Family::Channel, true) => b"subscribe",
            (Family::Shard, true) => b"ssubscribe",
            (Family::Pattern, true) => b"psubscribe",
            (Family::Channel, false) => b"unsubscribe",
            (Family::Shard, false) => b"sunsubscribe",
            (Family::Pattern, false) => b"punsubscribe",
        }
    }
}

impl PubSub {
    fn new() -> PubSub {
        let (tx, rx) = mpsc::channel(SUB_CHANNEL);
        PubSub {
            rx,
            tx,
            subs: Vec::new(),
            channels: [HashMap::new(), HashMap::new()],
            patterns: Vec::new(),
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

    /// Drops every subscription and subscriber connection (RESET, once every
    /// confirmation has arrived).
    pub fn reset(&mut self) {
        self.0 = None;
    }
}

/// Commands a RESP2 client may send while subscribed.
pub fn allowed_in_subscribe_mode(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "ssubscribe"
            | "psubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

fn confirmation(b: &mut BytesMut, proto: Proto, kind: &[u8], name: Option<&[u8]>, count: usize) {
    match proto {
        Proto::Resp3 => b.extend_from_slice(b">3\r\n"),
        Proto::Resp2 => encode::array_header(b, 3),
    }
    encode::bulk(b, kind);
    match name {
        Some(n) => encode::bulk(b, n),
        None => encode::null(b, proto),
    }
    encode::integer(b, count as i64);
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
        let ps = self.0.get_or_insert_with(|| Box::new(PubSub::new()));
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
        let frame = match f.frame {
            Ok(frame) => frame,
            Err(e) => {
                queue.push_ready(Bytes::from_static(e.wire()), After::Close, CLASS, false);
                return Outcome::Close;
            }
        };
        if is_confirmation(&frame) {
            let next = self
                .0
                .as_mut()
                .and_then(|ps| ps.subs.get_mut(f.sub)?.expect.pop_front());
            if let Some((seq, part)) = next {
                queue.complete(seq, part, Ok(frame), None);
            }
        } else {
            queue.push_ready(frame, After::Continue, CLASS, false);
        }
        Outcome::Queued
    }
}

/// The class messages and lost-connection errors are counted in.
const CLASS: RequestClass = RequestClass::Dedicated;

/// Whether `frame` confirms a (un)subscription rather than carrying a message.
fn is_confirmation(frame: &Bytes) -> bool {
    let kind = array_elements(frame)
        .and_then(|e| e.first().cloned())
        .map(|r| frame.slice(r))
        .unwrap_or_default();
    let body = kind
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&kind[..0], |p| &kind[p + 1..]);
    [
        &b"subscribe"[..],
        b"psubscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"punsubscribe",
        b"sunsubscribe",
    ]
    .iter()
    .any(|k| body.starts_with(k) && body.get(k.len()) == Some(&b'\r'))
}

/// Which subscriber gets which names.
type SendPlan = Vec<(usize, Vec<Bytes>)>;

fn plan_add(plan: &mut SendPlan, sub: usize, name: &Bytes) {
    match plan.iter_mut().find(|(i, _)| *i == sub) {
        Some((_, v)) => v.push(name.clone()),
        None => plan.push((sub, vec![name.clone()])),
    }
}

impl PubSub {
    /// The subscriber for node `idx`, opened if needed.
    fn sub_for(&mut self, cx: &Ctx, idx: usize) -> Result<usize, &'static [u8]> {
        let node = &cx.topo.nodes[idx];
        if let Some(i) = self.subs.iter().position(|s| Arc::ptr_eq(&s.node, node)) {
            return Ok(i);
        }
        if node.health.is_down() {
            return Err(BackendError::Down.wire());
        }
        let slot = DedicatedSlot::take(cx.pool, cx.topo.limits.max_dedicated)?;
        let i = self.subs.len();
        let handle = node.subscriber(cx.client.proto, i, self.tx.clone());
        self.subs.push(Sub {
            node: node.clone(),
            handle,
            expect: VecDeque::new(),
            _slot: slot,
        });
        Ok(i)
    }

    fn add(&mut self, cx: &mut Ctx, req: &Request, family: Family) -> Result<(), &'static [u8]> {
        let names: Vec<Bytes> = (1..req.argc()).map(|i| req.arg_bytes(i)).collect();
        let mut plan = SendPlan::new();
        for n in &names {
            let targets: Vec<usize> = match family {
                Family::Pattern => (0..cx.topo.nodes.len()).collect(),
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
                    (0..self.subs.len()).collect()
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
            let mut args: Vec<&[u8]> = vec![cmd];
            args.extend(names.iter().map(|n| n.as_ref()));
            let sub = &mut self.subs[s];
            sub.handle.send(Request::from_args(&args).frame().clone());
            for _ in &names {
                sub.expect.push_back((seq, part));
                part += 1;
            }
        }
    }
}
