//! A topology snapshot: nodes, placement, command table and live settings of one
//! pool, published through arc-swap. Sessions load one snapshot per batch of
//! requests and never hold it across an `.await`. New snapshots are built off the
//! hot path (reload, ejection) and swapped in with one store.

use crate::acl::Users;
use crate::backend::pool::{Node, PoolShared, PoolSpec};
use crate::command::CommandTable;
use crate::config::PoolConfig;
use crate::config::replicas::ReadFrom;
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
    pub auth: Option<crate::config::Password>,
    /// FLUSHALL/FLUSHDB allowed.
    pub allow_flush: bool,
    /// Dedicated backend connections allowed at once.
    pub max_dedicated: usize,
    /// What clients may hold and how long they may take.
    pub clients: crate::config::clients::ClientLimits,
}

/// One immutable version of a pool's routing state.
#[derive(Debug)]
pub struct Topology {
    /// Config version: increases by one per applied reload.
    pub version: u64,
    /// The config it was built from.
    pub config: Arc<PoolConfig>,
    /// Nodes (each a shard's primary) in config order.
    pub nodes: Vec<Arc<Node>>,
    /// Each node's replicas (same index as `nodes`; empty for most pools).
    pub replicas: Vec<Arc<[Arc<Node>]>>,
    /// Which nodes are on the ring (false: ejected).
    pub on_ring: Vec<bool>,
    /// Key → node index.
    pub placement: Placement,
    /// Commands.
    pub commands: Arc<CommandTable>,
    /// Per-session settings.
    pub limits: SessionLimits,
    /// SCAN's walk: (scan tag, node index) sorted by tag, over every node (see
    /// [`crate::command::scan`]).
    pub scan_order: Arc<[(u16, usize)]>,
    /// Users and their permissions.
    pub users: Arc<Users>,
    /// Previous placements inside their warm-up window (see [`crate::warmup`]).
    pub warm: Arc<crate::warmup::Chain>,
}

impl Topology {
    /// Builds a topology for `cfg`, reusing `old` nodes (primaries and replicas, see
    /// [`Topology::all_nodes`]) whose name, address and identity are unchanged (they
    /// keep their connections and health).
    pub fn build(
        cfg: &PoolConfig,
        shared: &PoolShared,
        old: &[Arc<Node>],
        version: u64,
    ) -> Topology {
        let pool = PoolSpec {
            connections: cfg.connections,
            username: cfg.backend_username.clone(),
            password: cfg.backend_password.clone(),
            db: cfg.backend_db,
            preconnect: cfg.preconnect,
            tls: backend_tls(cfg, old),
            readonly_replicas: cfg.cluster.is_some(),
        };
        let nodes: Vec<Arc<Node>> = cfg
            .nodes
            .iter()
            .map(|n| match old.iter().find(|o| o.same_as(n, &pool)) {
                Some(o) => o.clone(),
                None => Arc::new(Node::new(n, &pool, shared)),
            })
            .collect();
        let replicas = cfg
            .nodes
            .iter()
            .map(|n| replicas_of(n, &pool, shared, old))
            .collect();
        let on_ring = vec![true; nodes.len()];
        let ids: Vec<&[u8]> = cfg.nodes.iter().map(|n| n.identity.as_bytes()).collect();
        let scan_order = crate::command::scan::walk_order(&crate::command::scan::assign_tags(&ids));
        let mut t = Topology {
            scan_order: scan_order.into(),
            version,
            config: Arc::new(cfg.clone()),
            placement: placement_for(cfg, &on_ring),
            on_ring,
            nodes,
            replicas,
            commands: Arc::new(CommandTable::new(&cfg.commands)),
            limits: limits_of(cfg),
            users: Arc::new(Users::empty()),
            warm: Arc::default(),
        };
        t.users = Arc::new(users_of(cfg, &t.commands));
        if let Some(ejected) = t.ejection_update() {
            t = ejected;
        }
        t
    }

    /// Every node: the primaries, then every replica (what a rebuild may reuse).
    pub fn all_nodes(&self) -> Vec<Arc<Node>> {
        let replicas = self.replicas.iter().flat_map(|r| r.iter().cloned());
        self.nodes.iter().cloned().chain(replicas).collect()
    }

    /// The node owning `key`, if any is live.
    pub fn node_for_key(&self, key: &[u8]) -> Option<usize> {
        self.placement.node_for_key(key)
    }

    /// Where a read-only request for node `idx` goes under the pool's `read_from`:
    /// a readable replica (picked by `session`, so one client's reads of a shard stay
    /// on one replica while it is readable), else the primary unless the policy is
    /// `replica` (`None`: no replica can take it).
    pub fn read_target(&self, idx: usize, session: u64) -> Option<&Arc<Node>> {
        let primary = &self.nodes[idx];
        let replicas = self.replicas.get(idx).map_or(&[][..], |r| &r[..]);
        let n = replicas.len();
        let start = if n == 0 {
            0
        } else {
            (session % n as u64) as usize
        };
        let replica = (0..n)
            .map(|i| &replicas[(start + i) % n])
            .find(|r| r.readable());
        match (replica, self.config.read_from) {
            (Some(r), _) => Some(r),
            (None, ReadFrom::Replica) => None,
            (None, _) => Some(primary),
        }
    }

    /// Whether keys of down nodes move to live nodes.
    pub fn eject(&self) -> bool {
        self.config.health.eject
    }

    /// A copy with the ring rebuilt over the nodes that should be on it now, or
    /// `None` when nothing changes. With `eject: false` every node stays on the ring.
    pub fn ejection_update(&self) -> Option<Topology> {
        let on_ring = self.wanted_on_ring();
        if on_ring == self.on_ring {
            return None;
        }
        let mut t = Topology {
            version: self.version,
            config: self.config.clone(),
            nodes: self.nodes.clone(),
            replicas: self.replicas.clone(),
            placement: placement_for(&self.config, &on_ring),
            on_ring,
            commands: self.commands.clone(),
            limits: self.limits.clone(),
            scan_order: self.scan_order.clone(),
            users: self.users.clone(),
            warm: Arc::default(),
        };
        t.warm = Arc::new(crate::warmup::Chain::after(self, &t));
        Some(t)
    }

    /// Whether commands over the whole pool (SCAN, DBSIZE, KEYS, RANDOMKEY, script
    /// and function loads, PSUBSCRIBE, ...) go to node `idx`: with `eject: true` only
    /// nodes on the ring (an ejected node holds no key clients can reach); with
    /// `eject: false` every node, so a down node fails them fast.
    pub fn in_whole_pool(&self, idx: usize) -> bool {
        !self.eject() || self.on_ring.get(idx).copied().unwrap_or(false)
    }

    /// The nodes commands over the whole pool go to (see [`Topology::in_whole_pool`]),
    /// in config order.
    pub fn whole_pool_nodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.in_whole_pool(i))
    }

    /// The first node commands over the whole pool go to that is down, if any: such
    /// a command cannot answer for every key.
    pub fn whole_pool_down(&self) -> Option<usize> {
        self.whole_pool_nodes()
            .find(|&i| self.nodes[i].health.is_down())
    }

    /// Down nodes leave the ring, at most `max_ejected_percent` of all nodes; nodes
    /// already off the ring keep their place in that budget.
    fn wanted_on_ring(&self) -> Vec<bool> {
        if !self.eject() {
            return vec![true; self.nodes.len()];
        }
        let cap = self.nodes.len() * self.config.health.max_ejected_percent as usize / 100;
        let down: Vec<bool> = self.nodes.iter().map(|n| n.health.is_down()).collect();
        let mut on_ring: Vec<bool> = down
            .iter()
            .zip(&self.on_ring)
            .map(|(&d, &was)| !d || was)
            .collect();
        let mut ejected = on_ring.iter().filter(|&&r| !r).count();
        for (i, &d) in down.iter().enumerate() {
            if d && on_ring[i] && ejected < cap {
                on_ring[i] = false;
                ejected += 1;
            }
        }
        on_ring
    }
}

/// The replica nodes of `n`, reusing `old` ones at the same address.
fn replicas_of(
    n: &crate::config::NodeConfig,
    pool: &PoolSpec,
    shared: &PoolShared,
    old: &[Arc<Node>],
) -> Arc<[Arc<Node>]> {
    n.replicas
        .iter()
        .map(
            |addr| match old.iter().find(|o| o.same_replica(&n.name, addr, pool)) {
                Some(o) => o.clone(),
                None => Arc::new(Node::replica(&n.name, addr, pool, shared)),
            },
        )
        .collect()
}

/// Placement over `cfg`'s nodes with the given ring membership.
pub fn placement_for(cfg: &PoolConfig, on_ring: &[bool]) -> Placement {
    let spec = PlacementSpec {
        mode: cfg.mode,
        function: cfg.function,
        distribution: cfg.distribution,
        tag: cfg.tag,
    };
    let nodes: Vec<NodeSpec<'_>> = cfg
        .nodes
        .iter()
        .zip(on_ring)
        .map(|(n, &live)| NodeSpec {
            identity: n.identity.as_bytes(),
            weight: n.weight,
            live,
        })
        .collect();
    Placement::build(&spec, &nodes)
}

/// The users of `cfg`, compiled against `table`. Validation compiled them already;
/// should that fail here anyway, nobody can log in (never everybody).
fn users_of(cfg: &PoolConfig, table: &CommandTable) -> Users {
    Users::build(&cfg.users, cfg.auth.as_deref(), table).unwrap_or_else(|e| {
        tracing::error!(error = %e, "users do not compile; every login refused");
        Users::empty()
    })
}

/// Session limits from config.
pub fn limits_of(cfg: &PoolConfig) -> SessionLimits {
    SessionLimits {
        max_pipeline: cfg.max_pipeline,
        max_request_size: cfg.max_request_size,
        auth: cfg.auth.clone(),
        allow_flush: cfg.allow_flush,
        max_dedicated: cfg.max_dedicated,
        clients: cfg.clients,
    }
}

/// The current topology of a pool.
pub type Router = ArcSwap<Topology>;

/// The pool's backend TLS: the old nodes' one while `backend.tls` is unchanged (so
/// they keep their connections), else built anew (warned about when unverified).
fn backend_tls(cfg: &PoolConfig, old: &[Arc<Node>]) -> Option<Arc<crate::tls::client::BackendTls>> {
    let file = cfg.backend_tls.as_ref()?;
    let same = old
        .iter()
        .filter_map(|n| n.tls())
        .find(|t| t.file() == file);
    if let Some(t) = same {
        if file.insecure_skip_verify {
            tracing::warn!(pool = %cfg.name, "backend.tls.insecure_skip_verify is on: node certificates are NOT verified");
        }
        return Some(t.clone());
    }
    Some(Arc::new(crate::tls::client::BackendTls::new(
        &cfg.name, file,
    )))
}
