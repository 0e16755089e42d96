//! Client side: listeners, one session task per client, dispatch of each request.
//!
//! - [`listener`]: accepts TCP and unix-socket clients, enforces `max_clients`.
//! - [`session`]: the per-client loop: read, decode, dispatch, write replies in order.
//! - [`dispatch`]: what to do with one request (route, split, broadcast, answer).
//! - [`local`]: commands the proxy answers itself (PING, HELLO, CLIENT, ...).
//! - [`replies`]: the ordered reply queue.

pub mod dispatch;
pub mod info;
pub mod listener;
pub mod local;
pub mod pinned;
pub mod pubsub;
pub mod replies;
pub mod session;

use crate::metrics::PoolMetrics;
use crate::topology::Router;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Instant;

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
            metrics,
            dedicated: AtomicUsize::new(0),
        }
    }
}
