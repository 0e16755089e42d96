//! The validated config the rest of the proxy uses: [`Config`], one [`PoolConfig`]
//! per listener (from a ringproxy file, [`super::schema`], or a nutcracker file).

use super::password::Password;
use super::schema::*;
use crate::route::{Distribution, HashFunction, HashMode};
use std::path::PathBuf;
use std::time::Duration;

/// Validated configuration. Units and defaults of each value: see the matching
/// [`FileConfig`] field (nutcracker files: see [`super::nutcracker`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// One entry per client listener.
    pub pools: Vec<PoolConfig>,
    /// Admin HTTP listener.
    pub admin: Option<String>,
    /// The file of the bearer token `POST /reload` must carry.
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Worker threads (0 = cores).
    pub workers: usize,
    /// Log format: true = JSON.
    pub log_json: bool,
    /// Log filter.
    pub log_level: String,
}

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// TCP `host:port`.
    Tcp(String),
    /// Unix socket path.
    Unix(PathBuf),
}

/// Where a backend node is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeAddr {
    /// TCP `host:port`.
    Tcp(String),
    /// Unix socket path.
    Unix(PathBuf),
    /// The primary of this Sentinel master, not known yet (nothing connects).
    Sentinel(String),
}

/// A validated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Name shown to operators and in metrics.
    pub name: String,
    /// String hashed onto the ring (= name, or nutcracker's identity rule).
    pub identity: String,
    /// Where to connect.
    pub addr: NodeAddr,
    /// Relative weight.
    pub weight: u32,
    /// Replicas of the primary (static, or as discovered from the sentinels).
    pub replicas: Vec<NodeAddr>,
    /// The Sentinel master this node follows.
    pub sentinel: Option<String>,
}

/// A validated extra command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCommand {
    /// Upper-case name.
    pub name: String,
    /// Redis arity.
    pub arity: i32,
    /// First key position.
    pub first_key: i32,
    /// Last key position (negative counts from the end).
    pub last_key: i32,
    /// Key step.
    pub step: i32,
}

/// Validated health policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time between PINGs.
    pub interval: Duration,
    /// PING timeout.
    pub timeout: Duration,
    /// Consecutive failures to go down (>= 1).
    pub failures: u32,
    /// Consecutive successes to come up (>= 1).
    pub successes: u32,
    /// Move keys of down nodes (true) or fail them (false).
    pub eject: bool,
    /// Cap on ejected nodes, percent of all nodes.
    pub max_ejected_percent: u32,
    /// nutcracker `server_retry_timeout`: an ejected node is retried after this long
    /// (None: active checks decide).
    pub retry_timeout: Option<Duration>,
}

/// Everything one listener needs. Units and defaults: see the matching [`FileConfig`]
/// fields (durations are [`Duration`]s, sizes are bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Pool name (nutcracker pool name, or `default`).
    pub name: String,
    /// Client listener.
    pub listen: Listen,
    /// Nodes in file order.
    pub nodes: Vec<NodeConfig>,
    /// Placement rules.
    pub mode: HashMode,
    /// Key hash.
    pub function: HashFunction,
    /// Distribution.
    pub distribution: Distribution,
    /// Hash tag delimiters.
    pub tag: Option<[u8; 2]>,
    /// Connections per node and protocol version.
    pub connections: usize,
    /// Backend connect timeout.
    pub connect_timeout: Duration,
    /// Backend request timeout.
    pub request_timeout: Duration,
    /// Max clients.
    pub max_clients: usize,
    /// Max in-flight requests per client.
    pub max_pipeline: usize,
    /// Max request size in bytes.
    pub max_request_size: usize,
    /// Max dedicated backend connections.
    pub max_dedicated: usize,
    /// Health policy.
    pub health: HealthConfig,
    /// Client password (the default user's).
    pub auth: Option<Password>,
    /// Users.
    pub users: Vec<UserConfig>,
    /// Backend user name.
    pub backend_username: Option<String>,
    /// Backend password (from `password` or read from `password_file`).
    pub backend_password: Option<Password>,
    /// Backend database.
    pub backend_db: u32,
    /// Extra commands.
    pub commands: Vec<ExtraCommand>,
    /// FLUSHALL/FLUSHDB allowed.
    pub allow_flush: bool,
    /// CONFIG SET/RESETSTAT, SLOWLOG RESET, LATENCY RESET allowed (sent to every node).
    pub allow_admin: bool,
    /// Connect to every node at start (nutcracker `preconnect`).
    pub preconnect: bool,
    /// What clients may hold and how long they may take.
    pub clients: super::clients::ClientLimits,
    /// Permissions set on a unix-socket listener's file.
    pub listen_mode: Option<u32>,
    /// TLS on the client listener.
    pub tls: Option<ListenerTlsFile>,
    /// TLS to the nodes.
    pub backend_tls: Option<BackendTlsFile>,
    /// The sentinels.
    pub sentinel: Option<super::replicas::SentinelConfig>,
    /// Where read-only commands go.
    pub read_from: super::replicas::ReadFrom,
    /// Largest replication lag of a replica that is read from.
    pub max_replica_lag: Duration,
    /// TTL jitter and warm topology changes.
    pub cache: super::cache::CacheConfig,
    /// Redis Cluster mode (`None`: a ring of `nodes`).
    pub cluster: Option<ClusterConfig>,
    /// Hot-key detection.
    pub hot_keys: crate::hotkeys::HotKeysConfig,
    /// Coalescing of identical reads in flight.
    pub coalesce: bool,
    /// The near cache (`None`: off).
    pub near_cache: Option<crate::nearcache::NearCacheConfig>,
}
