//! The near cache (`near_cache:`, off by default): replies to reads of keys that
//! match the configured prefixes are kept in the proxy's memory and served from it,
//! kept right by the server rather than by a TTL.
//!
//! # Correctness
//! - Fills go over one tracking connection per node ([`tracker`]): RESP3 with
//!   `CLIENT TRACKING on BCAST PREFIX p ...` for the configured prefixes, so the
//!   server pushes an invalidation for every write to a matching key, by anyone,
//!   and none for other keys. Pushes and fill replies share that socket, so they
//!   are applied in the order the server produced them; `FLUSHALL`/`FLUSHDB` push
//!   a flush, and expiry and eviction push the key.
//! - A fill stores its reply only if nothing invalidated its key (or flushed its
//!   node) since it was sent ([`store`]'s sequence numbers), and no write to the
//!   key through this proxy is in flight.
//! - A fill is sent on the tracking connection, not the client's shared one, so
//!   it is a lane of its own ([`Lane::NearCache`]): sent only when the client has
//!   nothing else in flight, and the client's next request waits for it (a
//!   client's requests keep their order, as on one connection).
//! - A write through this proxy to a matching key (a single-key command, or a
//!   split one such as DEL or MSET) invalidates its entries when it is sent and
//!   again when it is answered ([`WriteGuard`]), so its client reads its own write.
//!   A client with a write of any other kind unanswered bypasses the cache.
//! - A lost tracking connection flushes everything cached from its node, and the
//!   node is not filled (reads go to it as usual) until tracking is on again.
//! - Replies are the bytes Redis sends the client's RESP version: RESP3 clients'
//!   entries are the tracking connection's replies; a RESP2 client's fill is stored
//!   only when the reply is the same in both versions (a non-nil bulk string, an
//!   integer, a status), else its read is sent again on a RESP2 connection.
//!   Errors are never stored.

pub mod config;
pub mod store;
pub mod tracker;

pub use config::NearCacheConfig;

#[cfg(doc)]
use crate::server::context::Lane;

use crate::backend::{BackendRequest, Node, ReplyTap};
use crate::command::{CommandFlags, CommandSpec};
use crate::errors::BackendError;
use crate::metrics::PoolMetrics;
use crate::resp::{Proto, Request};
use crate::server::context::{Ctx, Outcome};
use bytes::Bytes;
use fnv::FnvHashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use store::Store;
use tracker::{Fill, Tracker};

/// The near cache of one pool.
#[derive(Debug)]
pub struct NearCache {
    shared: Arc<Shared>,
}

impl NearCache {
    /// An empty cache whose counts go to `metrics`.
    pub fn new(metrics: PoolMetrics) -> NearCache {
        NearCache {
            shared: Arc::new(Shared {
                store: Mutex::default(),
                trackers: Mutex::default(),
                limits: Mutex::new((0, 0)),
                hot: Mutex::default(),
                metrics,
            }),
        }
    }

    /// The detector's keys at `hot_rate` or more become the hot set (`hot: true`),
    /// at `now_ms` on the pool's clock; keys that leave it are invalidated (writes
    /// to them are no longer watched).
    pub fn set_hot(&self, cfg: Option<&NearCacheConfig>, top: &crate::hotkeys::Top, now_ms: u64) {
        let sh = &self.shared;
        let want: Vec<&crate::hotkeys::HotKey> = match cfg {
            Some(c) if c.hot => top
                .keys
                .iter()
                .filter(|k| !k.truncated && k.rate >= c.hot_rate as f64)
                .collect(),
            _ => Vec::new(),
        };
        let mut hot = sh.hot.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::take(&mut *hot);
        for k in want {
            let since = old.get(&k.key).copied().unwrap_or(now_ms);
            hot.insert(k.key.clone(), since);
        }
        let gone: Vec<Bytes> = old.into_keys().filter(|k| !hot.contains_key(k)).collect();
        drop(hot);
        for k in gone {
            sh.invalidate(&k);
        }
    }

    /// Entries and bytes held now.
    pub fn size(&self) -> (usize, usize) {
        let s = self.shared.store();
        (s.len(), s.bytes())
    }
}

#[derive(Debug, Default)]
struct Trackers {
    prefixes: Vec<Bytes>,
    /// By node and mode (true: the default mode, for hot keys).
    /// (Dropping a tracker ends its connection; one whose node is gone is dropped
    /// when the next tracker starts.)
    by_node: FnvHashMap<(usize, bool), (std::sync::Weak<Node>, Arc<Tracker>)>,
}

/// What the sessions and the tracking connections share.
#[derive(Debug)]
pub struct Shared {
    store: Mutex<Store>,
    trackers: Mutex<Trackers>,
    limits: Mutex<(usize, usize)>,
    /// Hot keys cached (`hot: true`) and since when (the pool's coarse clock, ms).
    hot: Mutex<FnvHashMap<Bytes, u64>>,
    metrics: PoolMetrics,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limits(&self) -> (usize, usize) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Since when `key` is hot (ms on the pool's clock), if it is.
    fn hot_since(&self, key: &[u8]) -> Option<u64> {
        let hot = self.hot.lock().unwrap_or_else(|e| e.into_inner());
        hot.get(key).copied()
    }

    /// Whether writes of `key` are watched: it matches a pattern, or it is hot.
    fn watches(&self, cfg: &NearCacheConfig, key: &[u8]) -> bool {
        cfg.covers(key) || (cfg.hot && self.hot_since(key).is_some())
    }

    fn account(&self, removed: usize) {
        self.metrics.near_invalidations.inc_by(removed as u64);
        self.metrics.near_bytes.set(self.store().bytes() as i64);
    }

    /// A push named `key`.
    pub fn invalidate(&self, key: &[u8]) {
        let removed = self.store().invalidate(key);
        self.account(removed);
    }

    /// Everything of the node numbered `node` goes.
    pub fn flush_node(&self, node: usize) {
        let removed = self.store().flush_node(node);
        self.account(removed);
    }

    /// One invalidation message came from a node.
    pub fn invalidation_message(&self) {
        self.metrics.near_messages.inc();
    }

    /// A fill was sent elsewhere (the tracking connection went away).
    pub fn fill_abandoned(&self) {
        self.store().abandon_fill();
    }

    /// The reply to `f`, from the tracking connection of `node` (numbered `id`).
    pub fn filled(&self, node: &Node, id: usize, f: Fill, reply: Bytes) {
        let same = same_in_both_versions(&reply);
        if f.proto == Proto::Resp2 && !same {
            self.store().abandon_fill();
            return node
                .conn(f.proto, f.client)
                .send(BackendRequest::new(f.frame, f.reply));
        }
        let keep = !crate::resp::reply::is_error(&reply);
        let limits = self.limits();
        let mut store = self.store();
        store.end_fill(
            f.ticket,
            id,
            &f.key,
            f.proto,
            &f.frame,
            keep.then_some(&reply),
            limits,
        );
        self.metrics.near_bytes.set(store.bytes() as i64);
        drop(store);
        f.reply.send(Ok(reply));
    }

    /// The tracker of `node` for `cfg`, started if needed; `None` while it is not
    /// tracking.
    fn tracker(
        self: &Arc<Self>,
        cfg: &NearCacheConfig,
        node: &Arc<Node>,
        timeout: std::time::Duration,
        hot: bool,
    ) -> Option<Arc<Tracker>> {
        let mut t = self.trackers.lock().unwrap_or_else(|e| e.into_inner());
        if t.prefixes != cfg.prefixes {
            // New patterns (a reload): new tracking connections, nothing kept.
            t.by_node.clear();
            t.prefixes = cfg.prefixes.clone();
            let mut s = self.store();
            *s = Store::default();
            self.metrics.near_bytes.set(0);
        }
        *self.limits.lock().unwrap_or_else(|e| e.into_inner()) = (cfg.max_entry, cfg.max_bytes);
        let id = Arc::as_ptr(node) as usize;
        let prefixes: &[Bytes] = if hot { &[] } else { &cfg.prefixes };
        let live = |(n, _): &(std::sync::Weak<Node>, Arc<Tracker>)| n.strong_count() > 0;
        if !t.by_node.get(&(id, hot)).is_some_and(live) {
            t.by_node.retain(|_, v| live(v));
            let tr = Tracker::start(node, prefixes, Arc::downgrade(self), timeout);
            t.by_node
                .insert((id, hot), (Arc::downgrade(node), Arc::new(tr)));
        }
        let tr = &t.by_node.get(&(id, hot))?.1;
        tr.ready.load(Ordering::SeqCst).then(|| tr.clone())
    }
}

/// Whether a RESP3 reply is also what a RESP2 client gets.
fn same_in_both_versions(reply: &[u8]) -> bool {
    match reply.first() {
        Some(b'$') => !reply.starts_with(b"$-1"),
        Some(b':' | b'+' | b'-') => true,
        _ => false,
    }
}

/// The request path's hook for a single-key request of `key` on node `n`: a read
/// served or filled here, or a write forwarded with its [`WriteGuard`]; `None`
/// when the near cache has nothing to do with it.
pub fn keyed(
    cx: &mut Ctx,
    spec: &CommandSpec,
    key: &[u8],
    n: usize,
    frame: &Bytes,
) -> Option<Outcome> {
    let cfg = cx.topo.config.near_cache.as_ref()?;
    let sh = &cx.pool.near.shared;
    let by_prefix = cfg.covers(key);
    let hot_since = match (by_prefix, cfg.hot) {
        (false, true) => Some(sh.hot_since(key)?),
        (false, false) => return None,
        (true, _) => None,
    };
    if !crate::coalesce::eligible(spec) {
        if !spec.flags.contains(CommandFlags::READONLY) {
            cx.tap = write_guard(cx, &[key]);
        }
        return None;
    }
    // A key just marked hot is filled only once every write to it that was sent
    // unwatched before has been answered (or timed out).
    let now = cx.pool.coarse_ms.load(Ordering::Relaxed);
    let grace = cx.topo.config.request_timeout.as_millis() as u64;
    if hot_since.is_some_and(|since| now < since + grace) {
        return None;
    }
    let created = cx.pool.coalesce.created();
    if cx.client.coalesce.unanswered(cx.queue.waiting(), created) {
        return None;
    }
    let node = &cx.topo.nodes[n];
    if node.health.is_down() {
        return None;
    }
    let tracker = sh.tracker(cfg, node, cx.topo.config.request_timeout, !by_prefix)?;
    let mut store = sh.store();
    if let Some(hit) = store.get(cx.client.proto, frame) {
        drop(store);
        sh.metrics.near_hits.inc();
        return Some(cx.ready(hit));
    }
    // A fill goes on another connection than the client's shared one: it waits
    // for the client's earlier requests, and later ones wait for it.
    if !cx.enter_lane(crate::server::context::Lane::NearCache) {
        return None;
    }
    let ticket = store.begin_fill();
    drop(store);
    sh.metrics.near_misses.inc();
    let seq = cx.waiting();
    let fill = Fill {
        frame: frame.clone(),
        key: Bytes::copy_from_slice(key),
        proto: cx.client.proto,
        ticket,
        // In a cluster pool a fill answered by a redirect (a slot that moved) is
        // followed like any read; errors are never stored.
        reply: crate::server::forward::follow_redirects(cx, cx.direct_reply_to(seq), frame),
        client: cx.client.id,
    };
    tracker.send(fill, node);
    Some(Outcome::Queued)
}

/// The split-command hook: a write (DEL, MSET, ...) of keys the cache covers gets
/// a [`WriteGuard`] on every part.
pub fn split(cx: &mut Ctx, spec: &CommandSpec, req: &Request, keys: &[(usize, usize)]) {
    let Some(cfg) = cx.topo.config.near_cache.as_ref() else {
        return;
    };
    if spec.flags.contains(CommandFlags::READONLY) {
        return;
    }
    let sh = &cx.pool.near.shared;
    let covered: Vec<&[u8]> = keys
        .iter()
        .map(|&(k, _)| req.arg(k))
        .filter(|k| sh.watches(cfg, k))
        .collect();
    if !covered.is_empty() {
        cx.tap = write_guard(cx, &covered);
    }
}

fn write_guard(cx: &Ctx, keys: &[&[u8]]) -> Option<Arc<dyn ReplyTap>> {
    let sh = cx.pool.near.shared.clone();
    let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::copy_from_slice(k)).collect();
    let mut store = sh.store();
    for k in &keys {
        store.begin_write(k);
    }
    drop(store);
    Some(Arc::new(WriteGuard { shared: sh, keys }))
}

/// A write through the proxy to keys the cache covers: while it lives, their
/// replies are not stored; when its last reply is delivered it invalidates them
/// again.
#[derive(Debug)]
pub struct WriteGuard {
    shared: Arc<Shared>,
    keys: Vec<Bytes>,
}

impl ReplyTap for WriteGuard {
    fn on_reply(&self, _reply: &Result<Bytes, BackendError>) {}
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut store = self.shared.store();
        let removed: usize = self.keys.iter().map(|k| store.end_write(k)).sum();
        drop(store);
        self.shared.account(removed);
    }
}

#[cfg(test)]
mod tests;
