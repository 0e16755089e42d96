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

mod hot;

pub use hot::HotCounter;

use crate::command::Class;
use crate::errors::BackendError;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Buckets of `ringproxy_node_request_duration_seconds`: 50 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
];

/// Buckets of `ringproxy_split_fanout`: sub-requests per split command, 1 to 64.
pub const FANOUT_BUCKETS: [f64; 12] = [
    1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0,
];

/// Defines a label enum: variants in index order, `ALL`, `COUNT`, `as_str`, `index`.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every value, in index order.
            pub const ALL: [$name; [$($s),*].len()] = [$($name::$v),*];
            /// Number of values (length of the handle arrays indexed by it).
            pub const COUNT: usize = Self::ALL.len();

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// Position in [`Self::ALL`] (same as `self as usize`).
            #[inline]
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum! {
    /// How the proxy handled a client request (the `class` label).
    RequestClass {
        /// Routed by its key(s) to one node.
        Keyed = "keyed",
        /// Split into one sub-request per node.
        Split = "split",
        /// Sent to every node.
        Broadcast = "broadcast",
        /// Answered by the proxy.
        Local = "local",
        /// Keyless, sent to any live node.
        AnyNode = "any_node",
        /// Routed by a channel name (PUBLISH).
        Channel = "channel",
        /// Served on a dedicated backend connection.
        Dedicated = "dedicated",
        /// Refused by the proxy.
        Refused = "refused",
        /// Not in the command table.
        Unknown = "unknown",
        /// Wrong arity or malformed.
        Invalid = "invalid",
    }
}

label_enum! {
    /// Why a node request failed (the `kind` label).
    NodeErrorKind {
        /// The node was marked down; the request was not sent.
        Down = "down",
        /// No reply within the request timeout.
        Timeout = "timeout",
        /// The connection broke while the request was in flight.
        ConnectionLost = "connection_lost",
        /// The node sent bytes that are not RESP.
        Protocol = "protocol",
        /// The node answered with an error reply (`-ERR ...`).
        ErrorReply = "error_reply",
    }
}

label_enum! {
    /// Outcome of a topology reload (the `result` label).
    ReloadResult {
        /// A new topology was applied.
        Ok = "ok",
        /// The new config was rejected; the old topology keeps running.
        Failed = "failed",
        /// The config had not changed.
        Unchanged = "unchanged",
    }
}

impl RequestClass {
    /// The metric class of a command-table class.
    pub fn of(class: &Class) -> RequestClass {
        match class {
            Class::Keyed => Self::Keyed,
            Class::Split(_) => Self::Split,
            Class::Broadcast(_) => Self::Broadcast,
            Class::Local(_) => Self::Local,
            Class::AnyNode => Self::AnyNode,
            Class::Channel => Self::Channel,
            Class::Dedicated(_) => Self::Dedicated,
            Class::Refused(_) => Self::Refused,
        }
    }
}

impl NodeErrorKind {
    /// The kind of a backend failure; `None` for failures not tied to a node.
    pub fn of(err: BackendError) -> Option<NodeErrorKind> {
        match err {
            BackendError::Down => Some(Self::Down),
            BackendError::Timeout => Some(Self::Timeout),
            BackendError::ConnectionLost => Some(Self::ConnectionLost),
            BackendError::Protocol => Some(Self::Protocol),
            BackendError::NoNode => None,
        }
    }
}

/// Resolved handles of one pool. Cheap to clone; every method is an atomic add.
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    /// Connected clients now.
    pub client_connections: IntGauge,
    /// Client connections accepted.
    pub client_connections_total: IntCounter,
    /// Client connections refused (`max_clients`).
    pub client_connections_rejected: IntCounter,
    /// Requests by [`RequestClass`] index.
    pub requests: [HotCounter; RequestClass::COUNT],
    /// Requests answered with an error, by [`RequestClass`] index.
    pub request_errors: [HotCounter; RequestClass::COUNT],
    /// Sub-requests per split command.
    pub split_fanout: Histogram,
    /// Requests failed by the request timeout.
    pub timeouts: IntCounter,
    /// Version of the pool's current topology.
    pub topology_version: IntGauge,
    /// Bytes read from clients.
    pub bytes_received: HotCounter,
    /// Bytes written to clients.
    pub bytes_sent: HotCounter,
    /// Dedicated backend connections open now.
    pub dedicated_connections: IntGauge,
}

/// True in a build with the `no-metrics` feature: the per-request metric calls
/// below do nothing (used to measure what metrics cost; see tests/bench).
pub const HOT_PATH_OFF: bool = cfg!(feature = "no-metrics");

impl PoolMetrics {
    /// Counts one request of `class`.
    #[inline]
    pub fn request(&self, class: RequestClass) {
        if !HOT_PATH_OFF {
            self.requests[class as usize].inc();
        }
    }

    /// Counts one request of `class` answered with an error.
    #[inline]
    pub fn request_error(&self, class: RequestClass) {
        if !HOT_PATH_OFF {
            self.request_errors[class as usize].inc();
        }
    }

    /// Counts bytes read from a client.
    #[inline]
    pub fn received(&self, n: usize) {
        if !HOT_PATH_OFF {
            self.bytes_received.inc_by(n as u64);
        }
    }

    /// Counts bytes written to a client.
    #[inline]
    pub fn sent(&self, n: usize) {
        if !HOT_PATH_OFF {
            self.bytes_sent.inc_by(n as u64);
        }
    }

    /// Records the sub-requests of one split command.
    #[inline]
    pub fn fanout(&self, parts: usize) {
        if !HOT_PATH_OFF {
            self.split_fanout.observe(parts as f64);
        }
    }
}

/// Resolved handles of one node of one pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    /// Requests sent to the node.
    pub requests: IntCounter,
    /// Failures by [`NodeErrorKind`] index.
    pub errors: [IntCounter; NodeErrorKind::COUNT],
    /// Request-to-reply time.
    pub duration: Histogram,
    /// Open backend connections.
    pub backend_connections: IntGauge,
    /// Reconnections after a failure.
    pub reconnects: IntCounter,
    /// 1 when the node is healthy, 0 when down.
    pub up: IntGauge,
    /// Health changes (up→down or down→up).
    pub transitions: IntCounter,
    /// Requests sent and not yet answered.
    pub inflight: IntGauge,
}

impl NodeMetrics {
    /// Counts one failure of `kind`.
    #[inline]
    pub fn error(&self, kind: NodeErrorKind) {
        self.errors[kind as usize].inc();
    }

    /// Records one request's time to reply.
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// `n` requests written to the node.
    #[inline]
    pub fn sent(&self, n: usize) {
        if !HOT_PATH_OFF {
            self.requests.inc_by(n as u64);
            self.inflight.add(n as i64);
        }
    }

    /// `n` replies came back (`errors` of them error replies).
    #[inline]
    pub fn replied(&self, n: usize, errors: usize) {
        if !HOT_PATH_OFF {
            self.inflight.sub(n as i64);
            if errors > 0 {
                self.errors[NodeErrorKind::ErrorReply as usize].inc_by(errors as u64);
            }
        }
    }

    /// A latency recorder for one connection: observations are kept locally and
    /// added to the shared histogram in batches (see [`LatencyRecorder`]).
    pub fn latency_recorder(&self) -> LatencyRecorder {
        LatencyRecorder {
            local: self.duration.local(),
            unflushed: 0,
        }
    }

    /// One in-flight request failed with `err`.
    #[inline]
    pub fn failed(&self, err: BackendError) {
        if !HOT_PATH_OFF {
            self.inflight.dec();
            if let Some(k) = NodeErrorKind::of(err) {
                self.error(k);
            }
        }
    }

    /// Records a health change: sets `up` and counts a transition.
    pub fn health_changed(&self, up: bool) {
        self.up.set(i64::from(up));
        self.transitions.inc();
    }
}

/// Observations a connection flushes at the latest, so a scrape lags by at most
/// this many replies per busy connection (an idle connection has flushed all).
pub const LATENCY_FLUSH_EVERY: u32 = 64;

/// Per-connection latency observations, flushed to the node histogram in batches:
/// one round of atomic adds per batch instead of several per reply.
pub struct LatencyRecorder {
    local: prometheus::local::LocalHistogram,
    unflushed: u32,
}

impl std::fmt::Debug for LatencyRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LatencyRecorder({} unflushed)", self.unflushed)
    }
}

impl LatencyRecorder {
    /// Records one reply's time.
    #[inline]
    pub fn observe(&mut self, elapsed: Duration) {
        if !HOT_PATH_OFF {
            self.local.observe(elapsed.as_secs_f64());
            self.unflushed += 1;
        }
    }

    /// Flushes when enough is pending, or always when `idle` (nothing in flight).
    pub fn maybe_flush(&mut self, idle: bool) {
        if self.unflushed > 0 && (idle || self.unflushed >= LATENCY_FLUSH_EVERY) {
            self.local.flush();
            self.unflushed = 0;
        }
    }
}

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
    topology_version: IntGaugeVec = gauge("ringproxy_topology_version", "Version of the current topology.", POOL);
    bytes_received: IntCounterVec = counter("ringproxy_bytes_received_total", "Bytes read from clients.", POOL);
    bytes_sent: IntCounterVec = counter("ringproxy_bytes_sent_total", "Bytes written to clients.", POOL);
    dedicated_connections: IntGaugeVec = gauge("ringproxy_dedicated_connections", "Dedicated backend connections open.", POOL);
    node_requests: IntCounterVec = counter("ringproxy_node_requests_total", "Requests sent to a backend node.", NODE);
    node_errors: IntCounterVec = counter("ringproxy_node_errors_total", "Failed backend requests by kind.", KIND);
    node_duration: HistogramVec = histogram("ringproxy_node_request_duration_seconds", "Time from sending a request to a node to its reply.", NODE, &LATENCY_BUCKETS);
    backend_connections: IntGaugeVec = gauge("ringproxy_backend_connections", "Open backend connections.", NODE);
    backend_reconnects: IntCounterVec = counter("ringproxy_backend_reconnects_total", "Backend reconnections after a failure.", NODE);
    node_up: IntGaugeVec = gauge("ringproxy_node_up", "1 when the node is healthy, 0 when it is down.", NODE);
    node_transitions: IntCounterVec = counter("ringproxy_node_transitions_total", "Node health changes.", NODE);
    node_inflight: IntGaugeVec = gauge("ringproxy_node_inflight", "Requests sent to the node and not yet answered.", NODE);
    reloads: IntCounterVec = counter("ringproxy_reloads_total", "Topology reloads by result.", &["result"]);
    config_info: IntGaugeVec = gauge("ringproxy_config_info", "Always 1; the hash label identifies the running config.", &["hash"]);
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
            requests: by_class(&f.requests),
            request_errors: by_class(&f.request_errors),
            split_fanout: f.split_fanout.with_label_values(p),
            timeouts: f.timeouts.with_label_values(p),
            topology_version: f.topology_version.with_label_values(p),
            bytes_received: self.hot(f.bytes_received.with_label_values(p)),
            bytes_sent: self.hot(f.bytes_sent.with_label_values(p)),
            dedicated_connections: f.dedicated_connections.with_label_values(p),
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
        lock(&self.nodes).remove(&(pool.to_owned(), node.to_owned()));
    }

    /// Counts one reload with its result.
    pub fn reloaded(&self, result: ReloadResult) {
        self.reloads[result as usize].inc();
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
