//! Redis Cluster mode: a pool whose nodes are the primaries of a Redis Cluster.
//!
//! A cluster pool's [`Topology`] is an ordinary one: its `nodes` are the cluster's
//! primaries (named by address) and its placement is a slot table (16384 slots →
//! node index) instead of a ring, so every piece of the proxy that routes by
//! [`Topology::node_for_key`] (forwarding, split commands, MULTI pinning, SCAN,
//! DBSIZE, KEYS, pub/sub) works unchanged. This module adds what a cluster needs
//! on top:
//!
//! - [`slot`]: CRC16 key slots with hash tags, the slot table.
//! - [`map`]: the slot map parsed from `CLUSTER SHARDS` (or `CLUSTER SLOTS`).
//! - [`fetch`]: reading the map from one node.
//! - [`refresh`]: the task that keeps the map current (periodically, and soon
//!   after a MOVED, an unreachable node or a failover; requests coalesce) and swaps
//!   a new topology in the way a reload does.
//! - [`redirect`]: `-MOVED`/`-ASK`/`-TRYAGAIN` replies are followed by the proxy,
//!   never shown to the client; [`park`]: redirects to a node not in the map yet.
//! - [`view`]: what `/topology` shows of the map.

pub mod fetch;
pub mod map;
pub mod park;
pub mod redirect;
pub mod refresh;
pub mod slot;
pub mod view;

pub use redirect::Redirect;

use crate::backend::pool::{Node, PoolShared};
use crate::config::replicas::ReadFrom;
use crate::config::{NodeAddr, NodeConfig, PoolConfig};
use crate::route::Placement;
use crate::topology::{Router, Topology};
use map::SlotMap;
use prometheus::{IntCounter, IntGauge};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default `cluster.refresh_interval`.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Metric handles of one cluster pool, resolved once.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    /// `-MOVED` replies followed.
    pub moved: IntCounter,
    /// `-ASK` replies followed.
    pub ask: IntCounter,
    /// `-TRYAGAIN` replies retried.
    pub tryagain: IntCounter,
    /// Slot map reads that found a change.
    pub changed: IntCounter,
    /// Slot map reads that found none.
    pub unchanged: IntCounter,
    /// Slot map reads that failed on every node tried.
    pub failed: IntCounter,
    /// Version of the slot map in use.
    pub slot_map_version: IntGauge,
}

/// What a cluster pool shares between its sessions, its connections (which follow
/// redirects) and its refresh task.
#[derive(Debug)]
pub struct Cluster {
    /// The pool's current topology.
    router: Arc<Router>,
    /// The slot map the current topology was built from.
    map: Mutex<Arc<SlotMap>>,
    /// Increases by one per slot map change.
    version: AtomicU64,
    /// A refresh is wanted soon (permits coalesce: many wakes, one refresh).
    wake: tokio::sync::Notify,
    /// Redirected requests waiting for a map that lists their node.
    park: park::Park,
    /// Metric handles.
    pub metrics: ClusterMetrics,
}

impl Cluster {
    /// A cluster pool's shared state over `router`, with no slot map yet.
    pub fn new(router: Arc<Router>, metrics: ClusterMetrics) -> Cluster {
        Cluster {
            router,
            map: Mutex::default(),
            version: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            park: park::Park::default(),
            metrics,
        }
    }

    /// Asks the refresh task to read the slot map soon; calls coalesce.
    pub fn request_refresh(&self) {
        self.wake.notify_one();
    }

    /// The slot map in use.
    pub fn map(&self) -> Arc<SlotMap> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The slot map version in use (0: none read yet).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// The current topology.
    pub fn topology_now(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.router.load()
    }

    /// Records `map` as the one in use (after its topology was swapped in).
    fn set_map(&self, map: Arc<SlotMap>) {
        *self.map.lock().unwrap_or_else(|e| e.into_inner()) = map;
        let v = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.slot_map_version.set(v as i64);
    }

    /// The topology of `cfg` over the slot map in use (a reload of a cluster pool).
    pub fn topology(
        &self,
        cfg: &PoolConfig,
        shared: &PoolShared,
        old: &[Arc<Node>],
        version: u64,
    ) -> Topology {
        topology(cfg, shared, old, version, &self.map())
    }
}

/// The topology of cluster pool `cfg` over `map`: nodes are the primaries (named
/// by address; unchanged ones are reused from `old` with their connections), keys
/// placed by slot. Ejection never moves slots (the cluster fails over itself).
pub fn topology(
    cfg: &PoolConfig,
    shared: &PoolShared,
    old: &[Arc<Node>],
    version: u64,
    map: &SlotMap,
) -> Topology {
    let mut derived = cfg.clone();
    derived.nodes = map
        .shards
        .iter()
        .map(|s| NodeConfig {
            name: s.primary.clone(),
            identity: s.primary.clone(),
            addr: NodeAddr::Tcp(s.primary.clone()),
            weight: 1,
            // Replicas are connected to only when reads may go to them.
            replicas: match cfg.read_from {
                ReadFrom::Primary => Vec::new(),
                _ => s
                    .replicas
                    .iter()
                    .map(|a| NodeAddr::Tcp(a.clone()))
                    .collect(),
            },
            sentinel: None,
        })
        .collect();
    derived.health.eject = false;
    let mut t = Topology::build(&derived, shared, old, version);
    t.placement = Placement::slots(t.placement.spec(), Arc::new(map.table()));
    t
}

/// In a cluster pool, turns each key's node in `keys` ((argument, node) pairs of
/// `req`) into a group of its node and slot, so a split command is split per slot
/// (a cluster node refuses keys of two slots in one request); returns whether it
/// did. [`group_node`] gives a group's node back.
pub fn group_by_slot(
    topo: &Topology,
    req: &crate::resp::Request,
    keys: &mut [(usize, usize)],
) -> bool {
    if topo.placement.slot_table().is_none() {
        return false;
    }
    for (k, n) in keys.iter_mut() {
        *n = *n * slot::SLOTS + slot::key_slot(req.arg(*k)) as usize;
    }
    true
}

/// The node of a group made by [`group_by_slot`] (`by_slot`: what it returned).
pub fn group_node(by_slot: bool, group: usize) -> usize {
    if by_slot { group / slot::SLOTS } else { group }
}
