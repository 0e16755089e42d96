//! A node: its identity, its shared connections (per RESP version) and its health.

use super::conn::{self, ConnHandle, ConnSpec, Timeouts};
use super::health::NodeHealth;
use crate::config::{NodeAddr, NodeConfig};
use crate::resp::Proto;
use std::sync::Arc;

/// How a pool's nodes connect.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Connections per node and protocol version.
    pub connections: usize,
    /// Backend password.
    pub password: Option<String>,
    /// Backend database.
    pub db: u32,
    /// Connect RESP2 connections at start.
    pub preconnect: bool,
}

/// One backend node. Shared by every topology version in which it is unchanged, so
/// a reload keeps its connections and its health.
#[derive(Debug)]
pub struct Node {
    /// Operator-facing name.
    pub name: Arc<str>,
    /// Where it is.
    pub addr: NodeAddr,
    /// Health state.
    pub health: Arc<NodeHealth>,
    conns: [Vec<ConnHandle>; 2],
}

impl Node {
    /// Creates the node and spawns its connection tasks (they connect lazily).
    pub fn new(cfg: &NodeConfig, pool: &PoolSpec, timeouts: &Arc<Timeouts>) -> Node {
        let name: Arc<str> = cfg.name.as_str().into();
        let health = Arc::new(NodeHealth::default());
        let make = |proto: Proto| -> Vec<ConnHandle> {
            (0..pool.connections.max(1))
                .map(|_| {
                    let spec = ConnSpec {
                        node: name.clone(),
                        addr: cfg.addr.clone(),
                        proto,
                        password: pool.password.clone(),
                        db: pool.db,
                    };
                    let pre = pool.preconnect && proto == Proto::Resp2;
                    conn::spawn(spec, timeouts.clone(), health.clone(), pre)
                })
                .collect()
        };
        let conns = [make(Proto::Resp2), make(Proto::Resp3)];
        Node {
            name,
            addr: cfg.addr.clone(),
            health,
            conns,
        }
    }

    /// The connection a session uses for `proto`: always the same one for a given
    /// session, so its requests to this node keep their order.
    pub fn conn(&self, proto: Proto, session: u64) -> &ConnHandle {
        let set = &self.conns[proto.index()];
        &set[(session % set.len() as u64) as usize]
    }
}
