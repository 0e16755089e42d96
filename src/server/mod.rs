//! Client side: listeners, one session task per client, and what is done with
//! each request.
//!
//! ```text
//! listener ─► session (socket, read buffer, reply queue, write buffer, client state)
//!               │ decode ─► dispatch::classify (command table)
//!               │        ─► dispatch::dispatch(Ctx, Held, request) ─► Outcome
//!               │              forward    shared connections: key, split, broadcast, SCAN
//!               │              dedicated  the client's own connection: MULTI, WATCH, blocking
//!               │              pubsub     the client's subscriber connections
//!               │              local      answered by the proxy (PING, HELLO, CLIENT, INFO)
//!               └ replies (ordered queue) ─► output (write buffer, accounting) ─► socket
//! ```
//!
//! - [`listener`]: accepts TCP and unix-socket clients, enforces `max_clients`.
//! - [`session`]: the per-client loop: read, decode, dispatch, write replies in order.
//! - [`context`]: the narrow context a handler gets ([`context::Ctx`]) and its
//!   [`context::Outcome`]: `Queued`, `Wait(request)` or `Close`.
//! - [`dispatch`]: what kind of request it is, and which piece serves it.
//! - [`forward`], [`dedicated`], [`pubsub`], [`local`], [`client_cmd`], [`info`]:
//!   the pieces.
//! - [`clients`]: the pool's registry of clients (CLIENT LIST / KILL, shutdown).
//! - [`pubsub_follow`], [`readiness`], `dedicated::follow`: what a client holds
//!   follows a topology change ([`PoolContext::switch`]).
//! - [`replies`]: the ordered reply queue; [`output`]: the write side and the one
//!   place a delivered reply is accounted for.

pub mod client_cmd;
pub mod clients;
pub mod context;
pub mod deadline;
pub mod dedicated;
pub mod dispatch;
pub mod forward;
pub mod info;
pub mod listener;
pub mod local;
pub mod memory;
pub mod output;
pub mod parking;
pub mod pubsub;
pub mod pubsub_follow;
pub mod read_route;
pub mod readiness;
pub mod reading;
pub mod replies;
pub mod session;

use crate::metrics::PoolMetrics;
use crate::topology::Router;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Instant;

/// Longest a topology change waits for subscribed clients to be ready for it.
pub const PREPARE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a session watches to follow topology changes.
#[derive(Debug)]
pub struct Watch {
    /// Bumped after a topology is published.
    pub changes: tokio::sync::watch::Receiver<u64>,
    /// The topology about to be published, if any.
    pub next: tokio::sync::watch::Receiver<Option<Arc<crate::topology::Topology>>>,
}

/// A topology event a session follows.
pub enum TopologyEvent {
    /// This topology is about to be published: get ready.
    Coming(Arc<crate::topology::Topology>),
    /// A new topology is current.
    Changed,
}

impl Watch {
    /// The next event (waits for ever once the pool is gone).
    pub async fn next_event(&mut self) -> TopologyEvent {
        loop {
            tokio::select! {
                r = self.next.changed() => {
                    if r.is_err() {
                        return std::future::pending().await;
                    }
                    if let Some(t) = self.next.borrow_and_update().clone() {
                        return TopologyEvent::Coming(t);
                    }
                }
                r = self.changes.changed() => {
                    if r.is_err() {
                        return std::future::pending().await;
                    }
                    self.changes.borrow_and_update();
                    return TopologyEvent::Changed;
                }
            }
        }
    }
}

/// A session's watch on topology changes, polled in place: the waiting future
/// lives in one allocation (made when the session starts following, and after
/// each event), so following adds nothing to the size of the session's task.
pub struct Follow {
    fut: std::pin::Pin<Box<dyn std::future::Future<Output = (TopologyEvent, Watch)> + Send>>,
}

impl Follow {
    /// Follows `w`.
    pub fn new(w: Watch) -> Follow {
        Follow {
            fut: Box::pin(next_owned(w)),
        }
    }

    /// The next event, when there is one.
    pub fn poll_event(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<TopologyEvent> {
        let (ev, w) = std::task::ready!(self.fut.as_mut().poll(cx));
        self.fut = Box::pin(next_owned(w));
        std::task::Poll::Ready(ev)
    }
}

async fn next_owned(mut w: Watch) -> (TopologyEvent, Watch) {
    let ev = w.next_event().await;
    (ev, w)
}

/// What every session of one listener shares.
#[derive(Debug)]
pub struct PoolContext {
    /// Pool name.
    pub name: String,
    /// Current topology.
    pub router: Arc<Router>,
    /// Connected clients now.
    pub clients: AtomicUsize,
    /// Client connections accepted since start.
    pub clients_total: AtomicU64,
    /// Next client id.
    pub next_id: AtomicU64,
    /// Cap on connected clients (changeable by reload).
    pub max_clients: AtomicUsize,
    /// Process start, for INFO uptime.
    pub started: Instant,
    /// Held by whoever builds and stores a new topology (reload, ejection), so
    /// writers never overwrite each other's snapshot.
    pub writer: tokio::sync::Mutex<()>,
    /// Metric handles, resolved once.
    pub metrics: PoolMetrics,
    /// Dedicated backend connections open now (transactions, blocking, pub/sub).
    pub dedicated: AtomicUsize,
    /// Clients connected now, by id (CLIENT LIST / KILL, shutdown).
    pub registry: clients::Registry,
    /// Clients blocked in a blocking command now.
    pub blocked: AtomicUsize,
    /// Scripts and functions loaded through the proxy, replayed on nodes that join
    /// or come back.
    pub replay: Arc<crate::backend::replay::ReplayLog>,
    /// Hot-key detector ([`crate::hotkeys`]).
    pub hot: crate::hotkeys::HotKeys,
    /// Coalesced reads in flight ([`crate::coalesce`]).
    pub coalesce: crate::coalesce::InFlight,
    /// The near cache ([`crate::nearcache`]).
    pub near: crate::nearcache::NearCache,
    /// Bumped after every new topology is stored: sessions that hold state on the
    /// nodes (subscriptions, blocked commands) watch it and follow the change.
    changes: tokio::sync::watch::Sender<u64>,
    /// The topology about to be published, while subscribed clients get ready for it.
    next: tokio::sync::watch::Sender<Option<Arc<crate::topology::Topology>>>,
    /// Bytes held in client buffers now, all sessions together.
    pub client_memory: AtomicUsize,
    /// Milliseconds since `started`, advanced every 100 ms by the pool's budget
    /// check: a clock sessions read per batch without a system call.
    pub coarse_ms: AtomicU64,
    /// Subscribed clients, and their readiness for a coming topology.
    pub readiness: readiness::Readiness,
    /// TLS on the listener (`None`: plain text).
    pub tls: Option<Arc<crate::tls::server::ServerTls>>,
    /// TLS handshakes under way: they count against `max_clients`, so a flood of
    /// connections that never finish cannot hold more than that many sockets.
    pub handshakes: AtomicUsize,
    /// Redis Cluster mode: the slot map's shared state (`None`: a ring pool).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl PoolContext {
    /// A context for a pool whose topology is `router`.
    pub fn new(
        name: String,
        router: Arc<Router>,
        max_clients: usize,
        metrics: PoolMetrics,
    ) -> PoolContext {
        PoolContext {
            name,
            router,
            clients: AtomicUsize::new(0),
            clients_total: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            max_clients: AtomicUsize::new(max_clients),
            started: Instant::now(),
            writer: tokio::sync::Mutex::new(()),
            dedicated: AtomicUsize::new(0),
            registry: clients::Registry::default(),
            blocked: AtomicUsize::new(0),
            replay: Arc::default(),
            hot: Default::default(),
            coalesce: Default::default(),
            near: crate::nearcache::NearCache::new(metrics.clone()),
            metrics,
            changes: tokio::sync::watch::Sender::new(0),
            next: tokio::sync::watch::Sender::new(None),
            readiness: readiness::Readiness::default(),
            client_memory: AtomicUsize::new(0),
            coarse_ms: AtomicU64::new(1),
            tls: None,
            handshakes: AtomicUsize::new(0),
            cluster: None,
        }
    }

    /// Milliseconds since `started`, read from the clock (at least 1: 0 means
    /// never on the coarse clock).
    pub fn precise_ms(&self) -> u64 {
        (self.started.elapsed().as_millis() as u64).max(1)
    }

    /// The same context with TLS on the listener.
    pub fn with_tls(mut self, tls: Option<Arc<crate::tls::server::ServerTls>>) -> PoolContext {
        self.tls = tls;
        self
    }

    /// The same context in Redis Cluster mode.
    pub fn with_cluster(mut self, cluster: Option<Arc<crate::cluster::Cluster>>) -> PoolContext {
        self.cluster = cluster;
        self
    }

    /// Makes `topo` the current topology and tells the sessions that watch.
    pub fn publish(&self, topo: crate::topology::Topology) {
        self.router.store(Arc::new(topo));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Publishes `topo` once the subscribed clients are ready for it (their
    /// channels subscribed on the new owners), waiting at most
    /// [`PREPARE_TIMEOUT`]; then they move (see [`pubsub_follow`]).
    pub async fn switch(&self, topo: crate::topology::Topology) {
        if !self.readiness.announce() {
            return self.publish(topo);
        }
        let topo = Arc::new(topo);
        self.next.send_replace(Some(topo.clone()));
        if !self.readiness.wait(PREPARE_TIMEOUT).await {
            tracing::warn!(pool = %self.name, "subscribers not ready for the new topology in time");
        }
        self.next.send_replace(None);
        self.router.store(topo);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Receivers that see every topology published (and announced) from now on.
    pub fn watch_changes(&self) -> Watch {
        Watch {
            changes: self.changes.subscribe(),
            next: self.next.subscribe(),
        }
    }

    /// Shuts every open client socket for reading: each session sees end of input,
    /// answers what is in flight, then closes. (Costs nothing per request, unlike a
    /// shutdown future polled in every session loop.)
    pub fn stop_reading(&self) {
        for c in self.registry.all() {
            c.stop_reading();
        }
    }
}
