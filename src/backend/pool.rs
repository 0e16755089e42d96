//! A node: its identity, its shared connections (per RESP version) and its health.

use super::conn::{self, ConnHandle, ConnSpec, Timeouts};
use super::health::{HealthPolicy, NodeHealth, check_loop};
use super::probe::{Probe, ReplicaLink};
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
    /// Replica connections send `READONLY` (Redis Cluster replicas serve reads of
    /// their primary's slots only after it).
    pub readonly_replicas: bool,
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

/// A node's part in its shard.
#[derive(Debug)]
enum Role {
    /// The shard's primary; `master_only` when the shard has replicas (its
    /// connections and checks require `ROLE` master).
    Primary {
        /// Connections and checks require the server to be a master.
        master_only: bool,
    },
    /// A replica, readable while in sync.
    Replica(Arc<ReplicaLink>),
}

impl Role {
    fn probe(&self) -> Probe {
        match self {
            Role::Primary { master_only: false } => Probe::Ping,
            Role::Primary { master_only: true } => Probe::Master,
            Role::Replica(link) => Probe::Replica(link.clone()),
        }
    }

    fn master_only(&self) -> bool {
        matches!(self, Role::Primary { master_only: true })
    }
}

/// The name of shard `shard`'s replica at `addr` (its metric label, its log name).
pub fn replica_name(shard: &str, addr: &NodeAddr) -> String {
    format!("{shard}/{}", crate::config::checks::addr_text(addr))
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
    role: Role,
    /// Per worker, per RESP version: the shared connections.
    conns: Vec<[Vec<ConnHandle>; 2]>,
    env: conn::ConnEnv,
}

impl Node {
    /// Creates the node (a shard's primary) and spawns its connection tasks (they
    /// connect lazily) and its health checker (it ends when the node is dropped).
    pub fn new(cfg: &NodeConfig, pool: &PoolSpec, shared: &PoolShared) -> Node {
        let master_only = cfg.sentinel.is_some() || !cfg.replicas.is_empty();
        let role = Role::Primary { master_only };
        Node::start(
            cfg.name.as_str(),
            &cfg.identity,
            &cfg.addr,
            pool,
            shared,
            role,
        )
    }

    /// A replica of shard `shard` at `addr` (named `shard/addr`): read from while its
    /// health checks find it in sync with its primary.
    pub fn replica(shard: &str, addr: &NodeAddr, pool: &PoolSpec, shared: &PoolShared) -> Node {
        let name = replica_name(shard, addr);
        let link = Arc::new(ReplicaLink::default());
        Node::start(&name, &name, addr, pool, shared, Role::Replica(link))
    }

    fn start(
        name: &str,
        identity: &str,
        addr: &NodeAddr,
        pool: &PoolSpec,
        shared: &PoolShared,
        role: Role,
    ) -> Node {
        let name: Arc<str> = name.into();
        let metrics = shared.metrics.node(&shared.pool, &name);
        let health = Arc::new(NodeHealth::new(
            name.clone(),
            shared.policy.clone(),
            shared.changed.clone(),
            Some(metrics.clone()),
        ));
        let master_only = matches!(role, Role::Primary { master_only: true });
        let spec = |proto, db, tls| ConnSpec {
            node: name.clone(),
            addr: addr.clone(),
            proto,
            username: pool.username.clone(),
            password: pool.password.clone(),
            db,
            dedicated: false,
            tls,
            master_only,
            readonly: pool.readonly_replicas && matches!(role, Role::Replica(_)),
        };
        let login = super::handshake::commands(&ConnSpec {
            master_only: false,
            readonly: false,
            ..spec(Proto::Resp2, 0, None)
        });
        tokio::spawn(check_loop(
            addr.clone(),
            login,
            Arc::downgrade(&health),
            shared.policy.clone(),
            pool.tls.clone(),
            role.probe(),
        ));
        let env = conn::ConnEnv {
            timeouts: shared.timeouts.clone(),
            health: health.clone(),
            metrics: metrics.clone(),
        };
        let make = |rt: &tokio::runtime::Handle, proto: Proto| -> Vec<ConnHandle> {
            (0..pool.connections.max(1))
                .map(|_| {
                    let pre = pool.preconnect && proto == Proto::Resp2;
                    conn::spawn_on(rt, spec(proto, pool.db, pool.tls.clone()), env.clone(), pre)
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
            addr: addr.clone(),
            identity: identity.to_string(),
            health,
            metrics,
            spec: pool.clone(),
            role,
            conns,
            env,
        }
    }

    /// Whether reads may go to this node now: a replica that is up and in sync
    /// with its primary (a primary is never "readable" in this sense).
    pub fn readable(&self) -> bool {
        match &self.role {
            Role::Replica(link) => link.readable() && !self.health.is_down(),
            Role::Primary { .. } => false,
        }
    }

    /// Whether this is a replica.
    pub fn is_replica(&self) -> bool {
        matches!(self.role, Role::Replica(_))
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
            master_only: matches!(self.role, Role::Primary { master_only: true }),
            readonly: false,
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
        let replicated = cfg.sentinel.is_some() || !cfg.replicas.is_empty();
        !self.is_replica()
            && *self.name == *cfg.name
            && self.addr == cfg.addr
            && self.identity == cfg.identity
            && self.spec == *pool
            && self.role.master_only() == replicated
    }

    /// Whether this node can serve as the replica `addr` of shard `shard` unchanged.
    pub fn same_replica(&self, shard: &str, addr: &NodeAddr, pool: &PoolSpec) -> bool {
        self.is_replica()
            && self.addr == *addr
            && *self.name == *replica_name(shard, addr)
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
