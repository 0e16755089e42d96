//! A node: its identity, its shared connections (per RESP version) and its health.

use super::conn::{self, ConnHandle, ConnSpec, Timeouts};
use super::health::{HealthPolicy, NodeHealth, check_loop};
use crate::config::{NodeAddr, NodeConfig};
use crate::metrics::{Metrics, NodeMetrics};
use crate::resp::Proto;
use std::sync::Arc;

/// How a pool's nodes connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    /// Connections per node and protocol version.
    pub connections: usize,
    /// Backend user name (`None`: the nodes' default user).
    pub username: Option<String>,
    /// Backend password.
    pub password: Option<crate::config::Password>,
    /// Backend database.
    pub db: u32,
    /// Connect RESP2 connections at start.
    pub preconnect: bool,
    /// TLS to the nodes (`None`: plain text).
    pub tls: Option<Arc<crate::tls::client::BackendTls>>,
}

/// What a pool's nodes share, stable across reloads (changed in place).
#[derive(Debug, Clone)]
pub struct PoolShared {
    /// Pool name (metric label).
    pub pool: Arc<str>,
    /// Connect and request timeouts.
    pub timeouts: Arc<Timeouts>,
    /// Health thresholds.
    pub policy: Arc<HealthPolicy>,
    /// Notified on every node up/down transition.
    pub changed: Arc<tokio::sync::Notify>,
    /// The process's metrics.
    pub metrics: Arc<Metrics>,
    /// The worker runtimes: each gets its own connections to every node.
    pub workers: crate::workers::Workers,
}

/// One backend node. Shared by every topology version in which it is unchanged, so
/// a reload keeps its connections and its health.
#[derive(Debug)]
pub struct Node {
    /// Operator-facing name.
    pub name: Arc<str>,
    /// Where it is.
    pub addr: NodeAddr,
    /// String hashed onto the ring.
    pub identity: String,
    /// Health state.
    pub health: Arc<NodeHealth>,
    /// Metric handles, resolved once.
    pub metrics: NodeMetrics,
    spec: PoolSpec,
    /// Per worker, per RESP version: the shared connections.
    conns: Vec<[Vec<ConnHandle>; 2]>,
    env: conn::ConnEnv,
}

impl Node {
    /// Creates the node and spawns its connection tasks (they connect lazily) and
    /// its health checker (it ends when the node is dropped).
    pub fn new(cfg: &NodeConfig, pool: &PoolSpec, shared: &PoolShared) -> Node {
        let name: Arc<str> = cfg.name.as_str().into();
        let metrics = shared.metrics.node(&shared.pool, &name);
        let health = Arc::new(NodeHealth::new(
            name.clone(),
            shared.policy.clone(),
            shared.changed.clone(),
            Some(metrics.clone()),
        ));
        let login = super::handshake::commands(&ConnSpec {
            node: name.clone(),
            addr: cfg.addr.clone(),
            proto: Proto::Resp2,
            username: pool.username.clone(),
            password: pool.password.clone(),
            db: 0,
            dedicated: false,
            tls: None,
        });
        tokio::spawn(check_loop(
            cfg.addr.clone(),
            login,
            Arc::downgrade(&health),
            shared.policy.clone(),
            pool.tls.clone(),
        ));
        let env = conn::ConnEnv {
            timeouts: shared.timeouts.clone(),
            health: health.clone(),
            metrics: metrics.clone(),
        };
        let make = |rt: &tokio::runtime::Handle, proto: Proto| -> Vec<ConnHandle> {
            (0..pool.connections.max(1))
                .map(|_| {
                    let spec = ConnSpec {
                        node: name.clone(),
                        addr: cfg.addr.clone(),
                        proto,
                        username: pool.username.clone(),
                        password: pool.password.clone(),
                        db: pool.db,
                        dedicated: false,
                        tls: pool.tls.clone(),
                    };
                    let pre = pool.preconnect && proto == Proto::Resp2;
                    conn::spawn_on(rt, spec, env.clone(), pre)
                })
                .collect()
        };
        let conns = shared
            .workers
            .handles()
            .iter()
            .map(|rt| [make(rt, Proto::Resp2), make(rt, Proto::Resp3)])
            .collect();
        Node {
            name,
            addr: cfg.addr.clone(),
            identity: cfg.identity.clone(),
            health,
            metrics,
            spec: pool.clone(),
            conns,
            env,
        }
    }

    /// How a connection of one client's own to this node logs in.
    pub(crate) fn client_spec(&self, proto: Proto) -> ConnSpec {
        ConnSpec {
            node: self.name.clone(),
            addr: self.addr.clone(),
            proto,
            username: self.spec.username.clone(),
            password: self.spec.password.clone(),
            db: self.spec.db,
            dedicated: true,
            tls: self.spec.tls.clone(),
        }
    }

    /// A new pub/sub connection for one client, index `sub` in its session.
    pub fn subscriber(
        &self,
        proto: Proto,
        sub: usize,
        out: tokio::sync::mpsc::Sender<super::subscriber::SubFrame>,
    ) -> super::subscriber::SubscriberHandle {
        super::subscriber::spawn(self.client_spec(proto), self.env.timeouts.clone(), sub, out)
    }

    /// A new connection for one client only (transactions, blocking commands). It
    /// connects on first use and closes as soon as the handle is dropped.
    pub fn dedicated(&self, proto: Proto) -> ConnHandle {
        conn::spawn(self.client_spec(proto), self.env.clone(), false)
    }

    /// The TLS its connections use.
    pub fn tls(&self) -> Option<&Arc<crate::tls::client::BackendTls>> {
        self.spec.tls.as_ref()
    }

    /// Whether this node can serve as `cfg` in a pool built with `pool` unchanged
    /// (same name, address, identity and connection settings; a new weight only
    /// changes the ring, so the node keeps its connections).
    pub fn same_as(&self, cfg: &NodeConfig, pool: &PoolSpec) -> bool {
        *self.name == *cfg.name
            && self.addr == cfg.addr
            && self.identity == cfg.identity
            && self.spec == *pool
    }

    /// The connection a session uses for `proto`: always the same one for a given
    /// session, so its requests to this node keep their order.
    pub fn conn(&self, proto: Proto, session: u64) -> &ConnHandle {
        self.conn_on(crate::workers::current(), proto, session)
    }

    /// [`Node::conn`] of the session's worker `worker` (a cluster redirect resent
    /// from another thread keeps the session's order).
    pub fn conn_on(&self, worker: usize, proto: Proto, session: u64) -> &ConnHandle {
        let worker = worker.min(self.conns.len() - 1);
        let set = &self.conns[worker][proto.index()];
        &set[(session % set.len() as u64) as usize]
    }
}
