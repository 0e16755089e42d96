//! Subscriptions that follow a topology change. Before a reload's topology takes
//! traffic, every subscribed client subscribes its channels on their owners in the
//! coming topology and its patterns on nodes that join (`PubSub::prepare`); the
//! reload waits for those confirmations (bounded). Once the topology is current,
//! each client moves its channels to the subscriptions made for them, unsubscribes
//! them from their old owners, and closes the subscribers of nodes that left
//! (`PubSub::follow`). A PUBLISH goes to one node, the owner in the topology it was
//! routed with, and the channel is subscribed there at that moment: each message is
//! delivered once. None of these confirmations reaches the client.

use super::context::Ctx;
use super::pubsub::{Family, PREPARED, PubSub, SILENT, whole_pool};
use bytes::Bytes;
use std::sync::atomic::Ordering;

impl PubSub {
    /// Subscribes what `cx.topo` (the coming topology) needs; the pool is told
    /// once every confirmation is in (at once when nothing was needed).
    pub(super) fn prepare(&mut self, cx: &Ctx) {
        self.preparing = self.ensure(cx, PREPARED);
        if self.preparing == 0 {
            ack(cx);
        }
    }

    /// One confirmation the coming topology waited for has arrived.
    pub(super) fn confirmed_prepared(&mut self) {
        if self.preparing > 0 {
            self.preparing -= 1;
            if self.preparing == 0 {
                self.pool().prepared.fetch_add(1, Ordering::Relaxed);
                self.pool().prepared_notify.notify_waiters();
            }
        }
    }

    /// After `cx.topo` became current: channels move to their owners, patterns
    /// reach every whole-pool node, subscribers of nodes that left close.
    pub(super) fn follow(&mut self, cx: &Ctx) {
        self.ensure(cx, SILENT);
        let moving: Vec<((usize, Bytes), usize)> = self.moving.drain().collect();
        for ((f, name), new) in moving {
            let old = self.channels[f].insert(name.clone(), new);
            if let Some(sub) = old.filter(|&o| o != new).and_then(|o| self.sub(o)) {
                sub.send(Family::of_map(f).command(false), &[name], SILENT);
            }
        }
        for i in self.open_subs() {
            let gone = self.subs[i].as_ref().is_some_and(|s| {
                !cx.topo
                    .nodes
                    .iter()
                    .any(|n| std::sync::Arc::ptr_eq(n, &s.node))
            });
            if gone {
                self.subs[i] = None;
            }
        }
    }

    /// Subscribes every channel on its owner in `cx.topo` (where it is not yet) and
    /// every pattern on every whole-pool node; confirmations are tagged `tag`.
    /// Returns how many were asked for. A node that cannot be reached is skipped.
    fn ensure(&mut self, cx: &Ctx, tag: u64) -> usize {
        let mut asked = 0;
        for f in 0..2 {
            let names: Vec<(Bytes, usize)> = self.channels[f]
                .iter()
                .map(|(n, &s)| (n.clone(), s))
                .collect();
            for (name, current) in names {
                let Some(owner) = cx.topo.node_for_key(&name) else {
                    continue;
                };
                let Ok(s) = self.sub_for(cx, owner) else {
                    continue;
                };
                let key = (f, name.clone());
                if s == current || self.moving.get(&key) == Some(&s) {
                    continue;
                }
                if let Some(sub) = self.sub(s) {
                    sub.send(Family::of_map(f).command(true), &[name], tag);
                    asked += 1;
                }
                self.moving.insert(key, s);
            }
        }
        if self.patterns.is_empty() {
            return asked;
        }
        let patterns = self.patterns.clone();
        for idx in whole_pool(cx.topo).collect::<Vec<_>>() {
            let Ok(s) = self.sub_for(cx, idx) else {
                continue;
            };
            if let Some(sub) = self.sub(s).filter(|sub| !sub.has_patterns) {
                sub.send(b"PSUBSCRIBE", &patterns, tag);
                sub.has_patterns = true;
                asked += patterns.len();
            }
        }
        asked
    }
}

/// Tells the pool this client is ready for the coming topology.
fn ack(cx: &Ctx) {
    cx.pool.prepared.fetch_add(1, Ordering::Relaxed);
    cx.pool.prepared_notify.notify_waiters();
}
