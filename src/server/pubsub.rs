//! Pub/sub through the proxy. Channels are placed on the ring like keys (PUBLISH
//! goes to the channel's node, SUBSCRIBE too); patterns are subscribed on every
//! node. Each client gets its own subscriber connection per node it needs (counted
//! as dedicated connections). The proxy keeps the client's subscription set and
//! writes the confirmations itself, with the counts a single Redis would give, once
//! every node involved has confirmed; messages are passed on as they arrive.

use super::pinned::DedicatedSlot;
use super::replies::After;
use super::session::Session;
use crate::backend::Node;
use crate::backend::subscriber::{SUB_CHANNEL, SubFrame, SubscriberHandle};
use crate::command::CommandSpec;
use crate::command::merge::Plan;
use crate::errors::{self, BackendError};
use crate::resp::reply::array_elements;
use crate::resp::{Proto, Request, encode};
use crate::topology::Topology;
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A client's pub/sub state.
pub struct PubSub {
    /// Frames from the subscriber connections.
    pub rx: mpsc::Receiver<SubFrame>,
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

    /// Channels and patterns subscribed (what RESP2 "subscribe mode" depends on).
    pub fn count(&self) -> usize {
        self.channels[0].len() + self.channels[1].len() + self.patterns.len()
    }
}

/// Receives the next subscriber frame, or waits forever without pub/sub.
pub async fn next_frame(ps: &mut Option<Box<PubSub>>) -> Option<SubFrame> {
    match ps {
        Some(p) => p.rx.recv().await,
        None => std::future::pending().await,
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

impl Session {
    /// SUBSCRIBE family.
    pub fn subscribe(
        &mut self,
        req: Request,
        spec: &CommandSpec,
        topo: &Topology,
    ) -> Option<Request> {
        let name = spec.name.as_str();
        let (family, sub) = match name {
            "subscribe" => (Family::Channel, true),
            "ssubscribe" => (Family::Shard, true),
            "psubscribe" => (Family::Pattern, true),
            "unsubscribe" => (Family::Channel, false),
            "sunsubscribe" => (Family::Shard, false),
            _ => (Family::Pattern, false),
        };
        let ps = self.pubsub.get_or_insert_with(|| Box::new(PubSub::new()));
        let _ = ps;
        let result = if sub {
            self.add(&req, family, topo)
        } else {
            self.remove(&req, family)
        };
        if let Err(e) = result {
            self.ready(Bytes::from_static(e));
        }
        None
    }

    /// The subscriber for node `idx`, opened if needed.
    fn sub_for(&mut self, topo: &Topology, idx: usize) -> Result<usize, &'static [u8]> {
        let node = &topo.nodes[idx];
        let proto = self.state.proto;
        let ps = self.pubsub.as_mut().ok_or(errors::SYNTAX)?;
        if let Some(i) = ps.subs.iter().position(|s| Arc::ptr_eq(&s.node, node)) {
            return Ok(i);
        }
        if node.health.is_down() {
            return Err(BackendError::Down.wire());
        }
        let slot = DedicatedSlot::take(&self.ctx, topo.limits.max_dedicated)?;
        let i = ps.subs.len();
        let handle = node.subscriber(proto, i, ps.tx.clone());
        ps.subs.push(Sub {
            node: node.clone(),
            handle,
            expect: VecDeque::new(),
            _slot: slot,
        });
        Ok(i)
    }

    fn add(&mut self, req: &Request, family: Family, topo: &Topology) -> Result<(), &'static [u8]> {
        let names: Vec<Bytes> = (1..req.argc()).map(|i| req.arg_bytes(i)).collect();
        // Which subscriber gets which names.
        let mut plan: Vec<(usize, Vec<Bytes>)> = Vec::new();
        for n in &names {
            let targets: Vec<usize> = match family {
                Family::Pattern => (0..topo.nodes.len()).collect(),
                _ => vec![topo.node_for_key(n).ok_or(BackendError::NoNode.wire())?],
            };
            for t in targets {
                let s = self.sub_for(topo, t)?;
                match plan.iter_mut().find(|(i, _)| *i == s) {
                    Some((_, v)) => v.push(n.clone()),
                    None => plan.push((s, vec![n.clone()])),
                }
            }
        }
        let (cmd, kind): (&[u8], &[u8]) = match family {
            Family::Channel => (b"SUBSCRIBE", b"subscribe"),
            Family::Shard => (b"SSUBSCRIBE", b"ssubscribe"),
            Family::Pattern => (b"PSUBSCRIBE", b"psubscribe"),
        };
        let proto = self.state.proto;
        let ps = self.pubsub.as_mut().ok_or(errors::SYNTAX)?;
        let mut reply = BytesMut::new();
        for n in &names {
            let count = match family {
                Family::Pattern => {
                    if !ps.patterns.contains(n) {
                        ps.patterns.push(n.clone());
                    }
                    ps.count() - ps.channels[1].len()
                }
                Family::Channel | Family::Shard => {
                    let f = usize::from(family == Family::Shard);
                    let sub = plan
                        .iter()
                        .find(|(_, v)| v.contains(n))
                        .map_or(0, |(s, _)| *s);
                    ps.channels[f].insert(n.clone(), sub);
                    if f == 1 {
                        ps.channels[1].len()
                    } else {
                        ps.count() - ps.channels[1].len()
                    }
                }
            };
            confirmation(&mut reply, proto, kind, Some(n), count);
        }
        self.send_to_subs(plan, cmd, reply.freeze());
        Ok(())
    }

    fn remove(&mut self, req: &Request, family: Family) -> Result<(), &'static [u8]> {
        let proto = self.state.proto;
        let ps = self.pubsub.as_mut().ok_or(errors::SYNTAX)?;
        let mut names: Vec<Bytes> = (1..req.argc()).map(|i| req.arg_bytes(i)).collect();
        let f = usize::from(family == Family::Shard);
        if names.is_empty() {
            names = match family {
                Family::Pattern => ps.patterns.clone(),
                _ => ps.channels[f].keys().cloned().collect(),
            };
        }
        let (cmd, kind): (&[u8], &[u8]) = match family {
            Family::Channel => (b"UNSUBSCRIBE", b"unsubscribe"),
            Family::Shard => (b"SUNSUBSCRIBE", b"sunsubscribe"),
            Family::Pattern => (b"PUNSUBSCRIBE", b"punsubscribe"),
        };
        let mut plan: Vec<(usize, Vec<Bytes>)> = Vec::new();
        let mut reply = BytesMut::new();
        for n in &names {
            let subs: Vec<usize> = match family {
                Family::Pattern if ps.patterns.contains(n) => {
                    ps.patterns.retain(|p| p != n);
                    (0..ps.subs.len()).collect()
                }
                Family::Pattern => Vec::new(),
                _ => ps.channels[f].remove(n).into_iter().collect(),
            };
            for s in subs {
                match plan.iter_mut().find(|(i, _)| *i == s) {
                    Some((_, v)) => v.push(n.clone()),
                    None => plan.push((s, vec![n.clone()])),
                }
            }
            let count = if f == 1 {
                ps.channels[1].len()
            } else {
                ps.count() - ps.channels[1].len()
            };
            confirmation(&mut reply, proto, kind, Some(n), count);
        }
        if names.is_empty() {
            let count = if f == 1 {
                ps.channels[1].len()
            } else {
                ps.count() - ps.channels[1].len()
            };
            confirmation(&mut reply, proto, kind, None, count);
        }
        self.send_to_subs(plan, cmd, reply.freeze());
        Ok(())
    }

    /// Sends `cmd names...` per subscriber; `reply` is queued once all confirm.
    fn send_to_subs(&mut self, plan: Vec<(usize, Vec<Bytes>)>, cmd: &[u8], reply: Bytes) {
        let total: usize = plan.iter().map(|(_, v)| v.len()).sum();
        if total == 0 {
            return self.ready(reply);
        }
        let seq = self.queue.push_merging(Plan::Fixed(reply), total);
        let Some(ps) = self.pubsub.as_mut() else {
            return;
        };
        let mut part = 0u32;
        for (s, names) in plan {
            let mut args: Vec<&[u8]> = vec![cmd];
            args.extend(names.iter().map(|n| n.as_ref()));
            ps.subs[s]
                .handle
                .send(Request::from_args(&args).frame().clone());
            for _ in &names {
                ps.subs[s].expect.push_back((seq, part));
                part += 1;
            }
        }
    }

    /// A frame from a subscriber connection: a confirmation completes its command;
    /// a message goes to the client; a lost connection ends the client's session
    /// (its client library reconnects and subscribes again).
    pub fn on_sub_frame(&mut self, f: SubFrame) {
        let frame = match f.frame {
            Ok(frame) => frame,
            Err(e) => {
                self.queue
                    .push_ready(Bytes::from_static(e.wire()), After::Close);
                self.closing = true;
                return;
            }
        };
        let kind = array_elements(&frame)
            .and_then(|e| e.first().cloned())
            .map(|r| frame.slice(r))
            .unwrap_or_default();
        let body = kind
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&kind[..0], |p| &kind[p + 1..]);
        let is_confirmation = [
            &b"subscribe"[..],
            b"psubscribe",
            b"ssubscribe",
            b"unsubscribe",
            b"punsubscribe",
            b"sunsubscribe",
        ]
        .iter()
        .any(|k| body.starts_with(k) && body.get(k.len()) == Some(&b'\r'));
        if is_confirmation {
            let proto = self.state.proto;
            let next = self
                .pubsub
                .as_mut()
                .and_then(|ps| ps.subs.get_mut(f.sub)?.expect.pop_front());
            if let Some((seq, part)) = next {
                self.queue.complete(seq, part, Ok(frame), proto);
            }
        } else {
            self.queue.push_ready(frame, After::Continue);
        }
    }
}
