//! Warm topology changes: after a change that moves keys (a reload that adds,
//! removes or reweighs nodes, an ejection, a node coming back), the keys that moved
//! are still on the node that owned them before. For `warmup.window` after the
//! change, a read of a moved key that misses on its new owner is asked of its
//! previous owner; a hit there is the client's reply and, with `warmup.copy`, is
//! copied to the new owner with its remaining TTL (`RESTORE` without `REPLACE`, so
//! a value written there meanwhile wins). Writes go to the new owner only, and a
//! write or delete of a moved key during the window also deletes it on the previous
//! owner, so a later miss cannot bring an old value back.
//!
//! - [`Chain`]: the previous placements still inside their window, newest first
//!   (several changes in one window chain: a key's previous owners are its owners
//!   in the topologies before each change that moved it). Part of the
//!   [`Topology`]; built off the hot path with the topology.
//! - [`read`]: the miss → previous owner → reply sequence, run by the backend
//!   connection tasks as a [`crate::backend::Then`] on the new owner's reply, so
//!   the session neither waits nor changes: its request has one queue slot and gets
//!   exactly one reply, in order.
//! - [`miss`]: which reads count, and what "no such key" looks like for each.
//!
//! Known limits: misses of MGET (split over nodes) and of commands queued in
//! MULTI are not retried; writes inside MULTI or scripts do not delete the old
//! copy. A delete racing a warm-up read of the same key (the read found the old
//! value before the delete reached the previous owner) can bring the value back on
//! the new owner, as in any read-through cache.

pub mod miss;
pub mod read;

use crate::command::{CommandFlags, CommandSpec};
use crate::route::{Distribution, Placement};
use crate::server::context::{Ctx, Outcome};
use crate::topology::Topology;
use bytes::Bytes;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most previous placements kept (older ones are dropped even inside their window):
/// each holds a copy of a ring, and a read may ask each previous owner in turn.
pub const MAX_STEPS: usize = 4;

/// The previous placements of a pool still inside their warm-up window.
#[derive(Debug, Default)]
pub struct Chain {
    /// Newest first.
    steps: Vec<Step>,
}

/// The placement before one topology change.
#[derive(Debug)]
struct Step {
    placement: Placement,
    /// Node index in that topology → index in the current one (`None`: removed).
    nodes: Vec<Option<usize>>,
    /// End of its window.
    until: Instant,
}

/// Previous owners of a key, newest first (node indices of the current topology).
pub type Owners = SmallVec<[usize; 2]>;

impl Chain {
    /// True when no window is open (warm-up off, or no recent change).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The chain of `new`, the topology replacing `old`: `old`'s placement when the
    /// change moves keys, then `old`'s own steps still open, nodes renumbered for
    /// `new`. Empty when `new` has warm-up off or places keys at random.
    pub fn after(old: &Topology, new: &Topology) -> Chain {
        let Some(w) = new.config.cache.warmup else {
            return Chain::default();
        };
        if new.config.distribution == Distribution::Random {
            return Chain::default();
        }
        let now = Instant::now();
        let map: Vec<Option<usize>> = old
            .nodes
            .iter()
            .map(|o| new.nodes.iter().position(|n| Arc::ptr_eq(n, o)))
            .collect();
        let mut steps = Vec::new();
        if moves_keys(old, new) {
            steps.push(Step {
                placement: old.placement.clone(),
                nodes: map.clone(),
                until: now + w.window,
            });
        }
        let open = old.warm.steps.iter().filter(|s| s.until > now);
        for s in open.take(MAX_STEPS - steps.len()) {
            steps.push(Step {
                placement: s.placement.clone(),
                nodes: s.nodes.iter().map(|i| i.and_then(|i| map[i])).collect(),
                until: s.until,
            });
        }
        Chain { steps }
    }

    /// The previous owners of `key` at `now`, newest first: each once, never
    /// `owner`, only nodes of the current topology that `usable` accepts.
    pub fn previous(
        &self,
        key: &[u8],
        owner: usize,
        now: Instant,
        usable: impl Fn(usize) -> bool,
    ) -> Owners {
        let mut out = Owners::new();
        for s in self.steps.iter().filter(|s| s.until > now) {
            let Some(i) = s.placement.node_for_key(key).and_then(|i| s.nodes[i]) else {
                continue;
            };
            if i != owner && !out.contains(&i) && usable(i) {
                out.push(i);
            }
        }
        out
    }

    /// How long the newest window stays open after `now` (`None`: none is open).
    pub fn open_for(&self, now: Instant) -> Option<Duration> {
        let until = self.steps.iter().map(|s| s.until).max()?;
        (until > now).then(|| until - now)
    }

    /// Previous placements whose window is open at `now`.
    pub fn open_steps(&self, now: Instant) -> usize {
        self.steps.iter().filter(|s| s.until > now).count()
    }
}

/// Whether `old` and `new` may place some key differently: the ring is built from
/// the same inputs (node identities, weights, ring membership, hash rules) or not.
fn moves_keys(old: &Topology, new: &Topology) -> bool {
    fn inputs(t: &Topology) -> impl PartialEq + '_ {
        let rules = (
            t.config.mode,
            t.config.function,
            t.config.distribution,
            t.config.tag,
        );
        let nodes: Vec<(&str, u32, bool)> = t
            .config
            .nodes
            .iter()
            .zip(&t.on_ring)
            .map(|(n, &r)| (n.identity.as_str(), n.weight, r))
            .collect();
        (rules, nodes)
    }
    inputs(old) != inputs(new)
}

/// The pool's coarse clock as an instant (no clock read on the request path).
fn coarse_now(cx: &Ctx) -> Instant {
    let ms = cx.pool.coarse_ms.load(std::sync::atomic::Ordering::Relaxed);
    cx.pool.started + Duration::from_millis(ms)
}

/// A request for one key owned by node `owner`, while a window is open: a read
/// that can miss goes through [`read::WarmRead`]; a write also deletes the key on
/// its previous owners; anything else is forwarded as usual.
pub fn keyed(cx: &mut Ctx, owner: usize, frame: Bytes, spec: &CommandSpec, key: &[u8]) -> Outcome {
    let topo = cx.topo;
    let usable = |i: usize| !topo.nodes[i].health.is_down();
    let previous = topo.warm.previous(key, owner, coarse_now(cx), usable);
    if previous.is_empty() {
        return crate::server::forward::forward(cx, owner, frame);
    }
    if spec.flags.contains(CommandFlags::WRITE) {
        read::delete_on(cx, &previous, key);
        return crate::server::forward::forward(cx, owner, frame);
    }
    match miss::of(&spec.name) {
        Some(miss) => read::start(cx, owner, frame, key, miss, &previous),
        None => crate::server::forward::forward(cx, owner, frame),
    }
}

/// A write of any keys while a window is open: each moved key is deleted on its
/// previous owners (the write itself goes to the new owners as usual).
pub fn after_write(cx: &Ctx, req: &crate::resp::Request, spec: &CommandSpec) {
    if cx.topo.warm.is_empty() || !spec.flags.contains(CommandFlags::WRITE) {
        return;
    }
    let Ok(keys) = spec.keys(req) else { return };
    let (topo, now) = (cx.topo, coarse_now(cx));
    for k in keys {
        let Some(key) = req.get(k) else { continue };
        let Some(owner) = topo.node_for_key(key) else {
            continue;
        };
        let usable = |i: usize| !topo.nodes[i].health.is_down();
        let previous = topo.warm.previous(key, owner, now, usable);
        read::delete_on(cx, &previous, key);
    }
}

/// What `/topology` shows of the pool's warm-up: whether a window is open, for
/// how long, over how many previous placements.
pub fn view(topo: &Topology) -> serde_json::Value {
    let now = Instant::now();
    let open = topo.warm.open_for(now);
    serde_json::json!({
        "enabled": topo.config.cache.warmup.is_some(),
        "active": open.is_some(),
        "remaining_ms": open.map_or(0, |d| d.as_millis() as u64),
        "previous_placements": topo.warm.open_steps(now),
    })
}

#[cfg(test)]
mod tests;
