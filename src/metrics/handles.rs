//! Resolved metric handles, one struct per pool and per node, used on the hot path.

use super::hot::HotCounter;
use super::labels::{NodeErrorKind, RequestClass};
use crate::errors::BackendError;
use prometheus::{Histogram, IntCounter, IntGauge};
use std::time::Duration;

/// Resolved handles of one pool. Cheap to clone; every method is an atomic add.
#[derive(Clone, Debug)]
pub struct PoolMetrics {
    /// Connected clients now.
    pub client_connections: IntGauge,
    /// Client connections accepted.
    pub client_connections_total: IntCounter,
    /// Client connections refused (`max_clients`).
    pub client_connections_rejected: IntCounter,
    /// Client TLS handshakes that failed or timed out.
    pub tls_handshake_failures: IntCounter,
    /// Requests by [`RequestClass`] index.
    pub requests: [HotCounter; RequestClass::COUNT],
    /// Requests answered with an error, by [`RequestClass`] index.
    pub request_errors: [HotCounter; RequestClass::COUNT],
    /// Sub-requests per split command.
    pub split_fanout: Histogram,
    /// Requests failed by the request timeout.
    pub timeouts: IntCounter,
    /// Failed AUTH and HELLO AUTH attempts.
    pub auth_failures: IntCounter,
    /// Version of the pool's current topology.
    pub topology_version: IntGauge,
    /// Bytes read from clients.
    pub bytes_received: HotCounter,
    /// Bytes written to clients.
    pub bytes_sent: HotCounter,
    /// Dedicated backend connections open now.
    pub dedicated_connections: IntGauge,
    /// Bytes held in client buffers now (updated by the budget check, not per request).
    pub client_memory: IntGauge,
    /// Clients closed because the client memory budget stayed exceeded.
    pub clients_closed_for_memory: IntCounter,
    /// Clients closed for being idle or for a request that took too long to arrive.
    pub clients_timed_out: IntCounter,
    /// Read-only requests routed by `read_from`: [to a primary, to a replica].
    pub reads: [HotCounter; 2],
    /// Requests whose TTL argument `ttl_jitter` lowered.
    pub ttl_jitter_rewritten: HotCounter,
    /// Warm-up reads (see [`crate::warmup`]).
    pub warmup: WarmupMetrics,
    /// Replies served from an identical read already in flight.
    pub coalesced: HotCounter,
    /// Reads answered from the near cache.
    pub near_hits: HotCounter,
    /// Reads of covered keys sent to fill the near cache.
    pub near_misses: IntCounter,
    /// Near-cache entries removed by invalidations (pushes, flushes, writes).
    pub near_invalidations: IntCounter,
    /// Invalidation messages received from the nodes.
    pub near_messages: IntCounter,
    /// Bytes the near cache holds.
    pub near_bytes: IntGauge,
}

/// Counters of warm-up reads (see [`crate::warmup`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct WarmupMetrics {
    /// Misses of moved keys asked of a previous owner.
    pub lookups: IntCounter,
    /// Lookups a previous owner answered with the value.
    pub hits: IntCounter,
    /// Values copied to the new owner.
    pub copies: IntCounter,
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

    /// Counts one read routed by `read_from`, to a replica or to a primary.
    #[inline]
    pub fn read(&self, replica: bool) {
        if !HOT_PATH_OFF {
            self.reads[usize::from(replica)].inc();
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
