//! Every Prometheus metric of the proxy, declared in this one file and kept in a
//! registry of its own (never the process-global default).
//!
//! Labels are bounded: a pool name, a node name (both from the config), or a value
//! of a fixed enum ([`RequestClass`], [`NodeErrorKind`], [`ReloadResult`]). Never a
//! key, never a command name.
//!
//! Label lookups happen once: [`Metrics::pool`] and [`Metrics::node`] return
//! structs of resolved handles, so the hot path only does atomic adds, e.g.
//! `pool.requests[RequestClass::Keyed as usize].inc()`.

mod handles;
mod hot;
mod labels;

pub use handles::{
    HOT_PATH_OFF, LATENCY_FLUSH_EVERY, LatencyRecorder, NodeMetrics, PoolMetrics, WarmupMetrics,
};
pub use hot::HotCounter;
pub use labels::{NodeErrorKind, ReloadResult, RequestClass};

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// Buckets of `ringproxy_node_request_duration_seconds`: 50 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Buckets of `ringproxy_split_fanout`: sub-requests per split command, 1 to 64.
pub const FANOUT_BUCKETS: [f64; 12] = [
    1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0,
];

/// Every metric family of the proxy, in its own registry.
pub struct Metrics {
    registry: Registry,
    families: Families,
    reloads: [IntCounter; ReloadResult::COUNT],
    nodes: Mutex<HashSet<(String, String)>>,
    config_hash: Mutex<Option<String>>,
    hot: Mutex<Vec<HotCounter>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const POOL: &[&str] = &["pool"];
const NODE: &[&str] = &["pool", "node"];
const KIND: &[&str] = &["pool", "node", "kind"];
const CLASS: &[&str] = &["pool", "class"];

/// Declares every metric family: field, type, constructor(name, help, labels[, buckets]).
macro_rules! families {
    ($($field:ident: $ty:ty = $make:ident($($arg:expr),*);)*) => {
        /// The labelled families; children are resolved by [`Metrics::pool`] and [`Metrics::node`].
        struct Families { $($field: $ty,)* }

        impl Families {
            fn new(r: &Registry) -> Families {
                Families { $($field: $make(r, $($arg),*),)* }
            }
        }
    };
}

#[rustfmt::skip]
families! {
    client_connections: IntGaugeVec = gauge("ringproxy_client_connections", "Connected clients.", POOL);
    client_connections_total: IntCounterVec = counter("ringproxy_client_connections_total", "Client connections accepted.", POOL);
    client_connections_rejected: IntCounterVec = counter("ringproxy_client_connections_rejected_total", "Client connections refused because max_clients was reached.", POOL);
    requests: IntCounterVec = counter("ringproxy_requests_total", "Client requests by handling class.", CLASS);
    request_errors: IntCounterVec = counter("ringproxy_request_errors_total", "Client requests answered with an error, by handling class.", CLASS);
    split_fanout: HistogramVec = histogram("ringproxy_split_fanout", "Sub-requests per split command.", POOL, &FANOUT_BUCKETS);
    timeouts: IntCounterVec = counter("ringproxy_timeouts_total", "Requests failed by the request timeout.", POOL);
    auth_failures: IntCounterVec = counter("ringproxy_auth_failures_total", "Failed AUTH and HELLO AUTH attempts.", POOL);
    topology_version: IntGaugeVec = gauge("ringproxy_topology_version", "Version of the current topology.", POOL);
    bytes_received: IntCounterVec = counter("ringproxy_bytes_received_total", "Bytes read from clients.", POOL);
    bytes_sent: IntCounterVec = counter("ringproxy_bytes_sent_total", "Bytes written to clients.", POOL);
    dedicated_connections: IntGaugeVec = gauge("ringproxy_dedicated_connections", "Dedicated backend connections open.", POOL);
    client_memory: IntGaugeVec = gauge("ringproxy_client_memory_bytes", "Bytes held in client buffers (requests not yet forwarded, replies not yet written).", POOL);
    clients_closed_for_memory: IntCounterVec = counter("ringproxy_clients_closed_for_memory_total", "Clients closed because limits.max_client_memory stayed exceeded.", POOL);
    clients_timed_out: IntCounterVec = counter("ringproxy_clients_timed_out_total", "Clients closed by timeouts.client_idle or timeouts.client_request.", POOL);
    node_requests: IntCounterVec = counter("ringproxy_node_requests_total", "Requests sent to a backend node.", NODE);
    node_errors: IntCounterVec = counter("ringproxy_node_errors_total", "Failed backend requests by kind.", KIND);
    node_duration: HistogramVec = histogram("ringproxy_node_request_duration_seconds", "Time from sending a request to a node to its reply.", NODE, &LATENCY_BUCKETS);
    backend_connections: IntGaugeVec = gauge("ringproxy_backend_connections", "Open backend connections.", NODE);
    backend_reconnects: IntCounterVec = counter("ringproxy_backend_reconnects_total", "Backend reconnections after a failure.", NODE);
    node_up: IntGaugeVec = gauge("ringproxy_node_up", "1 when the node is healthy, 0 when it is down.", NODE);
    node_transitions: IntCounterVec = counter("ringproxy_node_transitions_total", "Node health changes.", NODE);
    node_inflight: IntGaugeVec = gauge("ringproxy_node_inflight", "Requests sent to the node and not yet answered.", NODE);
    reloads: IntCounterVec = counter("ringproxy_reloads_total", "Topology reloads by result.", &["result"]);
    tls_handshake_failures: IntCounterVec = counter("ringproxy_tls_handshake_failures_total", "Client TLS handshakes that failed or timed out (the connection was closed).", POOL);
    tls_reloads: IntCounterVec = counter("ringproxy_tls_reloads_total", "Listener TLS certificate reloads by result (ok, error).", &["result"]);
    reads: IntCounterVec = counter("ringproxy_reads_total", "Read-only requests routed by read_from (not primary), by the role of the server that took them.", &["pool", "role"]);
    failovers: IntCounterVec = counter("ringproxy_failovers_total", "Primary changes of a shard announced by the sentinels.", NODE);
    ttl_jitter_rewritten: IntCounterVec = counter("ringproxy_ttl_jitter_rewritten_total", "Requests whose TTL argument ttl_jitter lowered.", POOL);
    warmup_lookups: IntCounterVec = counter("ringproxy_warmup_lookups_total", "Reads of a moved key that missed on its new owner and were asked of a previous owner.", POOL);
    warmup_hits: IntCounterVec = counter("ringproxy_warmup_hits_total", "Warm-up lookups a previous owner answered with the value.", POOL);
    warmup_copies: IntCounterVec = counter("ringproxy_warmup_copies_total", "Values copied from a previous owner to the new owner (RESTORE accepted).", POOL);
    cluster_redirects: IntCounterVec = counter("ringproxy_cluster_redirects_total", "Redis Cluster redirects followed by the proxy, by kind (moved, ask, tryagain).", &["pool", "kind"]);
    cluster_refreshes: IntCounterVec = counter("ringproxy_cluster_refreshes_total", "Slot map reads by result (changed, unchanged, failed).", &["pool", "result"]);
    cluster_slot_map_version: IntGaugeVec = gauge("ringproxy_cluster_slot_map_version", "Version of the slot map in use: increases by one per change seen.", POOL);
    config_info: IntGaugeVec = gauge("ringproxy_config_info", "Always 1; the hash label identifies the running config.", &["hash"]);
    hot_key_top_share: GaugeVec = fgauge("ringproxy_hot_key_top_share", "Share of the node's requests taken by its hottest key over the hot_keys window (0..1).", NODE);
    hot_key_top_rate: GaugeVec = fgauge("ringproxy_hot_key_top_rate", "Requests per second of the node's hottest key over the hot_keys window.", NODE);
    coalesced: IntCounterVec = counter("ringproxy_coalesced_total", "Replies served from an identical read already in flight (coalesce: true).", POOL);
    near_hits: IntCounterVec = counter("ringproxy_near_cache_hits_total", "Reads answered from the near cache.", POOL);
    near_misses: IntCounterVec = counter("ringproxy_near_cache_misses_total", "Reads of near-cache keys sent to a node to fill the cache.", POOL);
    near_invalidations: IntCounterVec = counter("ringproxy_near_cache_invalidations_total", "Near-cache entries removed by invalidations (server pushes, flushes, writes through the proxy).", POOL);
    near_messages: IntCounterVec = counter("ringproxy_near_cache_invalidation_messages_total", "Invalidation messages received from the nodes' tracking connections.", POOL);
    near_bytes: IntGaugeVec = gauge("ringproxy_near_cache_bytes", "Bytes held by the near cache.", POOL);
}

/// The hot-key gauges of one node.
#[derive(Debug, Clone)]
pub struct HotKeyGauges {
    /// `ringproxy_hot_key_top_share`.
    pub top_share: Gauge,
    /// `ringproxy_hot_key_top_rate`.
    pub top_rate: Gauge,
}

/// Registers one family; names and label sets are constants, so failure is a bug.
fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    reg(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn fgauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    reg(
        r,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str], b: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(b.to_vec());
    reg(r, HistogramVec::new(opts, labels).expect("valid metric"))
}

impl Metrics {
    /// Creates every metric family in a fresh registry.
    pub fn new() -> Arc<Metrics> {
        let registry = Registry::new();
        let families = Families::new(&registry);
        let reloads = ReloadResult::ALL.map(|r| families.reloads.with_label_values(&[r.as_str()]));
        Arc::new(Metrics {
            registry,
            families,
            reloads,
            nodes: Mutex::new(HashSet::new()),
            config_hash: Mutex::new(None),
            hot: Mutex::new(Vec::new()),
        })
    }

    /// A hot-path counter exported as `out`, synced on every render.
    fn hot(&self, out: IntCounter) -> HotCounter {
        let c = HotCounter::new(out);
        lock(&self.hot).push(c.clone());
        c
    }

    /// The handles of pool `pool` (its series exist from this call on, at zero).
    pub fn pool(&self, pool: &str) -> PoolMetrics {
        let f = &self.families;
        let p = &[pool];
        let by_class = |v: &IntCounterVec| {
            RequestClass::ALL.map(|c| self.hot(v.with_label_values(&[pool, c.as_str()])))
        };
        PoolMetrics {
            client_connections: f.client_connections.with_label_values(p),
            client_connections_total: f.client_connections_total.with_label_values(p),
            client_connections_rejected: f.client_connections_rejected.with_label_values(p),
            tls_handshake_failures: f.tls_handshake_failures.with_label_values(p),
            requests: by_class(&f.requests),
            request_errors: by_class(&f.request_errors),
            split_fanout: f.split_fanout.with_label_values(p),
            timeouts: f.timeouts.with_label_values(p),
            auth_failures: f.auth_failures.with_label_values(p),
            topology_version: f.topology_version.with_label_values(p),
            bytes_received: self.hot(f.bytes_received.with_label_values(p)),
            bytes_sent: self.hot(f.bytes_sent.with_label_values(p)),
            dedicated_connections: f.dedicated_connections.with_label_values(p),
            client_memory: f.client_memory.with_label_values(p),
            clients_closed_for_memory: f.clients_closed_for_memory.with_label_values(p),
            clients_timed_out: f.clients_timed_out.with_label_values(p),
            reads: ["primary", "replica"].map(|r| self.hot(f.reads.with_label_values(&[pool, r]))),
            ttl_jitter_rewritten: self.hot(f.ttl_jitter_rewritten.with_label_values(p)),
            warmup: handles::WarmupMetrics {
                lookups: f.warmup_lookups.with_label_values(p),
                hits: f.warmup_hits.with_label_values(p),
                copies: f.warmup_copies.with_label_values(p),
            },
            coalesced: self.hot(f.coalesced.with_label_values(p)),
            near_hits: self.hot(f.near_hits.with_label_values(p)),
            near_misses: f.near_misses.with_label_values(p),
            near_invalidations: f.near_invalidations.with_label_values(p),
            near_messages: f.near_messages.with_label_values(p),
            near_bytes: f.near_bytes.with_label_values(p),
        }
    }

    /// Counts one failover of shard `node` of pool `pool` (rare: resolved per call).
    pub fn failover(&self, pool: &str, node: &str) {
        self.families
            .failovers
            .with_label_values(&[pool, node])
            .inc();
    }

    /// The Redis Cluster handles of pool `pool` (see [`crate::cluster`]).
    pub fn cluster(&self, pool: &str) -> crate::cluster::ClusterMetrics {
        let f = &self.families;
        let redirect = |k: &str| f.cluster_redirects.with_label_values(&[pool, k]);
        let refresh = |r: &str| f.cluster_refreshes.with_label_values(&[pool, r]);
        crate::cluster::ClusterMetrics {
            moved: redirect("moved"),
            ask: redirect("ask"),
            tryagain: redirect("tryagain"),
            changed: refresh("changed"),
            unchanged: refresh("unchanged"),
            failed: refresh("failed"),
            slot_map_version: f.cluster_slot_map_version.with_label_values(&[pool]),
        }
    }

    /// The handles of node `node` of pool `pool`. The first call for a node sets
    /// `ringproxy_node_up` to 1 (nodes start healthy); later calls return the same series.
    pub fn node(&self, pool: &str, node: &str) -> NodeMetrics {
        let f = &self.families;
        let l = &[pool, node];
        let m = NodeMetrics {
            requests: f.node_requests.with_label_values(l),
            errors: NodeErrorKind::ALL
                .map(|k| f.node_errors.with_label_values(&[pool, node, k.as_str()])),
            duration: f.node_duration.with_label_values(l),
            backend_connections: f.backend_connections.with_label_values(l),
            reconnects: f.backend_reconnects.with_label_values(l),
            up: f.node_up.with_label_values(l),
            transitions: f.node_transitions.with_label_values(l),
            inflight: f.node_inflight.with_label_values(l),
        };
        if lock(&self.nodes).insert((pool.to_owned(), node.to_owned())) {
            m.up.set(1);
        }
        m
    }

    /// The hot-key gauges of node `node` of pool `pool`.
    pub fn hot_key_gauges(&self, pool: &str, node: &str) -> HotKeyGauges {
        let l = &[pool, node];
        HotKeyGauges {
            top_share: self.families.hot_key_top_share.with_label_values(l),
            top_rate: self.families.hot_key_top_rate.with_label_values(l),
        }
    }

    /// Drops every series of a node that a reload removed. Handles still held by
    /// in-flight requests keep working but are no longer exported.
    pub fn remove_node(&self, pool: &str, node: &str) {
        let f = &self.families;
        let l = &[pool, node];
        let _ = f.node_requests.remove_label_values(l);
        for k in NodeErrorKind::ALL {
            let _ = f.node_errors.remove_label_values(&[pool, node, k.as_str()]);
        }
        let _ = f.node_duration.remove_label_values(l);
        for v in [&f.backend_connections, &f.node_up, &f.node_inflight] {
            let _ = v.remove_label_values(l);
        }
        let _ = f.backend_reconnects.remove_label_values(l);
        let _ = f.node_transitions.remove_label_values(l);
        let _ = f.hot_key_top_share.remove_label_values(l);
        let _ = f.hot_key_top_rate.remove_label_values(l);
        lock(&self.nodes).remove(&(pool.to_owned(), node.to_owned()));
    }

    /// Counts one reload with its result.
    pub fn reloaded(&self, result: ReloadResult) {
        self.reloads[result as usize].inc();
    }

    /// Counts one reload of a listener's TLS files (`ok` or refused).
    pub fn tls_reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.families.tls_reloads.with_label_values(&[result]).inc();
    }

    /// Publishes `ringproxy_config_info{hash}` = 1, replacing the previous hash's series.
    pub fn set_config_hash(&self, hash: &str) {
        let mut cur = lock(&self.config_hash);
        if cur.as_deref() == Some(hash) {
            return;
        }
        if let Some(old) = cur.take() {
            let _ = self
                .families
                .config_info
                .remove_label_values(&[old.as_str()]);
        }
        self.families.config_info.with_label_values(&[hash]).set(1);
        *cur = Some(hash.to_owned());
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        lock(&self.hot).iter().for_each(HotCounter::sync);
        let families = self.registry.gather();
        TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_else(|e| format!("# ringproxy: cannot encode metrics: {e}\n"))
    }
}

/// Locks a mutex, recovering from poisoning (the guarded sets stay consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
