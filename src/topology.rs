//! A topology snapshot: nodes, placement, command table and live settings of one
//! pool, published through arc-swap. Sessions load one snapshot per batch of
//! requests and never hold it across an `.await`.

use crate::backend::conn::Timeouts;
use crate::backend::pool::{Node, PoolSpec};
use crate::command::CommandTable;
use crate::config::PoolConfig;
use crate::route::{NodeSpec, Placement, PlacementSpec};
use arc_swap::ArcSwap;
use std::sync::Arc;

/// Settings a session reads per request (changeable by reload).
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Requests in flight per client.
    pub max_pipeline: usize,
    /// Largest request in bytes.
    pub max_request_size: usize,
    /// Client password.
    pub auth: Option<Arc<str>>,
    /// FLUSHALL/FLUSHDB allowed.
    pub allow_flush: bool,
}

/// One immutable version of a pool's routing state.
#[derive(Debug)]
pub struct Topology {
    /// Increases by one per applied change.
    pub version: u64,
    /// Nodes in config order.
    pub nodes: Vec<Arc<Node>>,
    /// Key → node index.
    pub placement: Placement,
    /// Commands.
    pub commands: Arc<CommandTable>,
    /// Per-session settings.
    pub limits: SessionLimits,
    /// Whether keys of down nodes move (true) or fail (false).
    pub eject: bool,
}

impl Topology {
    /// Builds the first topology of a pool (spawns the node connection tasks).
    pub fn build(cfg: &PoolConfig, timeouts: &Arc<Timeouts>) -> Topology {
        let pool = PoolSpec {
            connections: cfg.connections,
            password: cfg.backend_password.clone(),
            db: cfg.backend_db,
            preconnect: cfg.preconnect,
        };
        let nodes: Vec<Arc<Node>> = cfg
            .nodes
            .iter()
            .map(|n| Arc::new(Node::new(n, &pool, timeouts)))
            .collect();
        let placement = placement_for(cfg, &vec![true; nodes.len()]);
        Topology {
            version: 1,
            nodes,
            placement,
            commands: Arc::new(CommandTable::new(&cfg.commands)),
            limits: limits_of(cfg),
            eject: cfg.health.eject,
        }
    }

    /// The node owning `key`, if any is live.
    pub fn node_for_key(&self, key: &[u8]) -> Option<usize> {
        self.placement.node_for_key(key)
    }
}

/// Placement over `cfg`'s nodes with the given liveness.
pub fn placement_for(cfg: &PoolConfig, live: &[bool]) -> Placement {
    let spec = PlacementSpec {
        mode: cfg.mode,
        function: cfg.function,
        distribution: cfg.distribution,
        tag: cfg.tag,
    };
    let nodes: Vec<NodeSpec<'_>> = cfg
        .nodes
        .iter()
        .zip(live)
        .map(|(n, &live)| NodeSpec {
            identity: n.identity.as_bytes(),
            weight: n.weight,
            live,
        })
        .collect();
    Placement::build(&spec, &nodes)
}

/// Session limits from config.
pub fn limits_of(cfg: &PoolConfig) -> SessionLimits {
    SessionLimits {
        max_pipeline: cfg.max_pipeline,
        max_request_size: cfg.max_request_size,
        auth: cfg.auth.as_deref().map(Arc::from),
        allow_flush: cfg.allow_flush,
    }
}

/// The current topology of a pool.
pub type Router = ArcSwap<Topology>;
