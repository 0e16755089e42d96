//! Hot-key detection: which keys take the largest share of their node's traffic.
//!
//! Always on and cheap. Every keyed request reaches [`on_keyed`], which only
//! counts down a per-thread gap (a few instructions, nothing shared); one in
//! `hot_keys.sample` of them on average (the gaps drawn at random by a per-thread
//! [`sketch::Sampler`], so a client's request pattern cannot alias with them) is
//! counted in its worker's [`sketch::Summary`] for the current
//! slot of the sliding window (the window is [`SLOTS`] slots; the oldest is
//! cleared as time moves on). Nothing is merged on the request path: a reader
//! ([`HotKeys::top`]: `GET /hotkeys`, `INFO hotkeys`, the metrics and log task in
//! [`report`]) merges the workers' slots of the window on demand.
//!
//! A rate is the sampled count times the sampling rate over the time the window
//! covers; a share is the key's sampled count over its node's sampled requests.
//! Keys are shown escaped and truncated ([`report::printable`]), never as metric
//! labels.

pub mod config;
pub mod report;
pub mod sketch;

pub use config::HotKeysConfig;

use sketch::{Counter, Sampler, Summary};
use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};

/// Slots of the sliding window.
pub const SLOTS: u64 = 5;
/// Worker summaries (a worker uses the one at its index modulo this).
const SHARDS: usize = 16;
/// Counters kept per summary, per key shown.
const CAPACITY_PER_TOP: usize = 4;
/// Fewest counters kept per summary.
const MIN_CAPACITY: usize = 64;

thread_local! {
    /// Keyed requests of this thread until the next sampled one (at least 1).
    static COUNTDOWN: Cell<u32> = const { Cell::new(1) };
    /// Draws the gaps between sampled requests; seeded on first use.
    static SAMPLER: Cell<Option<Sampler>> = const { Cell::new(None) };
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (crate::workers::current() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[derive(Debug, Default)]
struct Shard {
    slot_ms: u64,
    slots: [Summary; SLOTS as usize],
}

/// The detector of one pool.
#[derive(Debug)]
pub struct HotKeys {
    shards: Vec<Mutex<Shard>>,
}

impl Default for HotKeys {
    fn default() -> Self {
        HotKeys {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// One hot key, merged over the workers and the window.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    /// The key (at most [`sketch::MAX_KEY_KEPT`] bytes).
    pub key: bytes::Bytes,
    /// Whether `key` was cut.
    pub truncated: bool,
    /// Node it is routed to.
    pub node: Arc<str>,
    /// Requests per second (estimated).
    pub rate: f64,
    /// Share of its node's requests, 0..=1.
    pub share: f64,
}

/// What the detector saw over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Top {
    /// Hottest first, at most `top`.
    pub keys: Vec<HotKey>,
    /// Requests per second per node (estimated from the same sample).
    pub nodes: Vec<(Arc<str>, f64)>,
    /// Seconds the window covers now.
    pub span: f64,
}

impl HotKeys {
    /// Counts one request for `key`, routed to `node`, at `now_ms` (the pool's
    /// coarse clock), if the sampler picks it.
    #[inline]
    pub fn record(&self, cfg: &HotKeysConfig, now_ms: u64, key: &[u8], node: &Arc<str>) {
        if cfg.enabled && sampled(cfg.sample) {
            self.count(cfg, now_ms, key, node);
        }
    }

    /// Counts one sampled request.
    #[inline(never)]
    fn count(&self, cfg: &HotKeysConfig, now_ms: u64, key: &[u8], node: &Arc<str>) {
        let slot_ms = slot_ms(cfg);
        let epoch = now_ms / slot_ms;
        let mut shard = self.shard();
        if shard.slot_ms != slot_ms {
            shard.slot_ms = slot_ms;
            shard.slots.iter_mut().for_each(|s| s.reset(u64::MAX));
        }
        let s = &mut shard.slots[(epoch % SLOTS) as usize];
        if s.epoch != epoch {
            s.reset(epoch);
        }
        s.add(hash(key), key, node, capacity(cfg));
    }

    fn shard(&self) -> MutexGuard<'_, Shard> {
        let i = crate::workers::current() % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The hottest keys of the window ending at `now_ms` (the pool's clock).
    pub fn top(&self, cfg: &HotKeysConfig, now_ms: u64) -> Top {
        let slot_ms = slot_ms(cfg);
        let epoch = now_ms / slot_ms;
        let mut merged: fnv::FnvHashMap<u64, Counter> = Default::default();
        let mut nodes: Vec<(Arc<str>, u64)> = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            if shard.slot_ms != slot_ms {
                continue;
            }
            let live = shard
                .slots
                .iter()
                .filter(|s| s.epoch <= epoch && s.epoch + SLOTS > epoch);
            for s in live {
                merge(&mut merged, &mut nodes, s);
            }
        }
        let covered = (SLOTS - 1) * slot_ms + (now_ms - epoch * slot_ms);
        let span = covered.min(now_ms).max(1) as f64 / 1000.0;
        let scale = cfg.sample as f64 / span;
        let mut counters: Vec<Counter> = merged.into_values().collect();
        counters.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        let keys = counters
            .into_iter()
            .take(cfg.top)
            .map(|c| {
                let total = nodes
                    .iter()
                    .find(|(n, _)| *n == c.node)
                    .map_or(0, |(_, t)| *t);
                HotKey {
                    rate: c.count as f64 * scale,
                    share: if total == 0 {
                        0.0
                    } else {
                        (c.count as f64 / total as f64).min(1.0)
                    },
                    key: c.key.into(),
                    truncated: c.truncated,
                    node: c.node,
                }
            })
            .collect();
        let nodes = nodes
            .into_iter()
            .map(|(n, c)| (n, c as f64 * scale))
            .collect();
        Top { keys, nodes, span }
    }
}

fn merge(
    merged: &mut fnv::FnvHashMap<u64, Counter>,
    nodes: &mut Vec<(Arc<str>, u64)>,
    s: &Summary,
) {
    for c in s.counters() {
        merged
            .entry(c.hash)
            .and_modify(|m| {
                m.count += c.count;
                m.error += c.error;
            })
            .or_insert_with(|| c.clone());
    }
    for (n, count) in &s.nodes {
        match nodes.iter_mut().find(|(m, _)| m == n) {
            Some((_, t)) => *t += count,
            None => nodes.push((n.clone(), *count)),
        }
    }
}

/// Whether this keyed request is sampled: the common answer (no) costs a
/// decrement of the thread's countdown.
#[inline(always)]
fn sampled(every: u32) -> bool {
    COUNTDOWN.with(|left| {
        let n = left.get();
        if n > 1 {
            left.set(n - 1);
            return false;
        }
        left.set(next_gap(every));
        true
    })
}

/// The gap to this thread's next sampled request (see [`Sampler::gap`]).
#[cold]
#[inline(never)]
fn next_gap(every: u32) -> u32 {
    SAMPLER.with(|s| {
        let mut v = s.get().unwrap_or_else(|| Sampler::new(seed()));
        let gap = v.gap(every);
        s.set(Some(v));
        gap
    })
}

fn slot_ms(cfg: &HotKeysConfig) -> u64 {
    (cfg.window.as_millis() as u64 / SLOTS).max(1)
}

fn capacity(cfg: &HotKeysConfig) -> usize {
    (cfg.top * CAPACITY_PER_TOP).max(MIN_CAPACITY)
}

/// The request path's hook: a keyed request for `key` goes to node `node` of the
/// context's topology.
#[inline(always)]
pub fn on_keyed(cx: &crate::server::context::Ctx, key: &[u8], node: usize) {
    let cfg = &cx.topo.config.hot_keys;
    if cfg.enabled && sampled(cfg.sample) {
        let now = cx.pool.coarse_ms.load(std::sync::atomic::Ordering::Relaxed);
        cx.pool.hot.count(cfg, now, key, &cx.topo.nodes[node].name);
    }
}

/// The detector's key hash (64-bit FNV-1a).
pub fn hash(key: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(key);
    h.finish()
}

#[cfg(test)]
mod tests;
