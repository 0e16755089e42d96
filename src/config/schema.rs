//! The YAML schema: [`FileConfig`] and its sections, as the operator writes them;
//! their validated form is in [`super::validated`].

use super::validated::NodeAddr;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Default admin listener (loopback only).
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9121";
/// Default backend connections per node and protocol version.
pub const DEFAULT_POOL_CONNECTIONS: usize = 1;
/// Worker threads when the file sets none: one event loop, like nutcracker and
/// predixy's default. On a small machine shared with Redis or the clients a second
/// worker costs CPU per request and gains no throughput (tests/bench/results);
/// `workers: 0` asks for one per core.
pub const DEFAULT_WORKERS: usize = 1;
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Default request timeout (time a backend may take to answer one request).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Default cap on concurrent client connections per listener.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Default cap on a client's requests in flight (the proxy stops reading beyond it).
pub const DEFAULT_MAX_PIPELINE: usize = 1024;
/// Default cap on one request's size in bytes (64 MiB).
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 64 << 20;
/// Default cap on dedicated backend connections (MULTI, blocking, pub/sub) per listener.
pub const DEFAULT_MAX_DEDICATED: usize = 1024;
/// Default health-check interval.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Default health-check PING timeout.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_millis(500);
/// Default consecutive failures before a node is marked down.
pub const DEFAULT_HEALTH_FAILURES: u32 = 3;
/// Default consecutive successes before a node is marked up.
pub const DEFAULT_HEALTH_SUCCESSES: u32 = 2;
/// Default cap on the share of nodes that may be ejected at once, in percent.
pub const DEFAULT_MAX_EJECTED_PERCENT: u32 = 50;
/// Default hash tag.
pub const DEFAULT_HASH_TAG: &str = "{}";
/// Largest node weight in ringproxy mode (each unit of weight is
/// [`crate::route::ring::POINTS_PER_WEIGHT`] points on the ring).
pub const MAX_WEIGHT: u32 = 100;
/// Largest node weight in twemproxy mode (nutcracker accepts large weights, e.g. 100000;
/// the point count there does not grow with weight).
pub const MAX_TWEMPROXY_WEIGHT: u32 = 1_000_000;

/// The ringproxy YAML file, as written by the operator. Unknown fields are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Client listener: `host:port`, or `unix:/path/to.sock`. Required.
    pub listen: String,
    /// Permissions of a unix-socket listener's file, in octal as Redis's
    /// `unixsocketperm` (`"0660"`, or the digits `660`). Default: the process umask.
    #[serde(default, deserialize_with = "super::clients::octal_mode")]
    pub listen_mode: Option<u32>,
    /// Admin HTTP listener (`host:port`), or `null` for none. Default `127.0.0.1:9121`.
    #[serde(default = "default_admin")]
    pub admin: Option<String>,
    /// File holding the bearer token `POST /reload` must carry
    /// (`Authorization: Bearer <token>`); read on each request, so a rotated secret
    /// takes effect at once. `/live`, `/ready`, `/metrics`, `/topology` stay open.
    /// Default: none (reload is open, like the rest of the loopback admin port).
    #[serde(default)]
    pub admin_token_file: Option<String>,
    /// Worker threads (event loops), 0..=1024; 0 = one per core. Default
    /// [`DEFAULT_WORKERS`] (1).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Backend Redis nodes: at least one, unless `cluster` is set (then none).
    #[serde(default)]
    pub nodes: Vec<NodeFile>,
    /// Front a Redis Cluster instead of a ring of `nodes` (see [`ClusterFile`]).
    /// Default none.
    #[serde(default)]
    pub cluster: Option<ClusterFile>,
    /// Placement settings.
    #[serde(default)]
    pub hash: HashFile,
    /// Backend connection pool settings.
    #[serde(default)]
    pub pool: PoolFile,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsFile,
    /// Per-client and per-listener limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Active health checks and ejection policy.
    #[serde(default)]
    pub health: HealthFile,
    /// Password clients must send with AUTH (non-empty): the `default` user's, unless
    /// `users` defines `default`; `null` (default) = no auth.
    #[serde(default)]
    pub auth: Option<String>,
    /// Users and their permissions (Redis ACL semantics). Default none: only the
    /// `default` user, with every permission.
    #[serde(default)]
    pub users: Vec<UserFile>,
    /// How the proxy logs in to backends.
    #[serde(default)]
    pub backend: BackendFile,
    /// Extra (module) commands with their key positions. Default none.
    #[serde(default)]
    pub commands: Vec<CommandFile>,
    /// Whether FLUSHALL/FLUSHDB are sent to every node (true) or refused (false). Default false.
    #[serde(default)]
    pub allow_flush: bool,
    /// Whether CONFIG SET, CONFIG RESETSTAT, SLOWLOG RESET and LATENCY RESET are sent
    /// to every node (true) or refused (false). Default false.
    #[serde(default)]
    pub allow_admin: bool,
    /// Logging.
    #[serde(default)]
    pub log: LogFile,
    /// TLS on the client listener (TCP only); `null` (default) = plain text.
    #[serde(default)]
    pub tls: Option<ListenerTlsFile>,
    /// The sentinels of the nodes that name a `sentinel:` master. Default none.
    #[serde(default)]
    pub sentinel: Option<super::replicas::SentinelFile>,
    /// Where read-only commands go: `primary` (default), `prefer_replica`, `replica`.
    #[serde(default)]
    pub read_from: super::replicas::ReadFrom,
    /// Replicas whose link to the primary has been silent longer are not read from.
    /// Default 30s.
    #[serde(default = "default_max_lag", with = "super::duration")]
    pub max_replica_lag: Duration,
    /// TTL jitter rules (see [`super::cache`]). Default none (off).
    #[serde(default)]
    pub ttl_jitter: Vec<super::cache::JitterFile>,
    /// Warm topology changes (see [`super::cache`]). Default `null` (off).
    #[serde(default)]
    pub warmup: Option<super::cache::WarmupFile>,
    /// Hot-key detection (see [`crate::hotkeys`]). Default: on, 10s window, top 20.
    #[serde(default)]
    pub hot_keys: crate::hotkeys::config::HotKeysFile,
    /// Identical read-only single-key requests to one node that arrive while one is
    /// in flight get that one's reply (see [`crate::coalesce`]). Default false.
    #[serde(default)]
    pub coalesce: bool,
    /// Replies to reads of matching keys served from memory (see
    /// [`crate::nearcache`]); `null` (default) = off.
    #[serde(default)]
    pub near_cache: Option<crate::nearcache::config::NearCacheFile>,
}

fn default_max_lag() -> Duration {
    super::replicas::DEFAULT_MAX_REPLICA_LAG
}

fn default_workers() -> usize {
    DEFAULT_WORKERS
}

fn default_admin() -> Option<String> {
    Some(DEFAULT_ADMIN.to_string())
}

/// One backend node in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Identity on the ring; default = `addr`. Renaming a node moves its keys; changing
    /// its `addr` does not.
    #[serde(default)]
    pub name: Option<String>,
    /// The primary: `host:port` (or `unix:/path` for a local socket). Required
    /// unless `sentinel` is given.
    #[serde(default)]
    pub addr: Option<String>,
    /// Static replicas of the primary (`host:port` or `unix:/path`). Default none.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Name of the Sentinel master whose primary and replicas this node is
    /// (instead of `addr`). Default none.
    #[serde(default)]
    pub sentinel: Option<String>,
    /// Relative weight, 1..=100 (twemproxy mode: 1..=1000000). Default 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// `cluster:` section: the pool's nodes are the primaries of a Redis Cluster, keys
/// are routed by their hash slot, and the slot map is read from the cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Nodes (`host:port`) the slot map is first read from; any node of the cluster
    /// will do, the rest are found from it. Required, at least one.
    pub seeds: Vec<String>,
    /// Time between slot map refreshes when nothing asks for one sooner (MOVED, a
    /// node unreachable, a failover), 100ms..=1h. Default 10s.
    #[serde(default = "default_refresh", with = "super::duration")]
    pub refresh_interval: Duration,
}

fn default_refresh() -> Duration {
    crate::cluster::DEFAULT_REFRESH_INTERVAL
}

/// A validated `cluster:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Seed nodes.
    pub seeds: Vec<NodeAddr>,
    /// Periodic refresh interval.
    pub refresh_interval: Duration,
}

/// `hash:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashFile {
    /// `ringproxy` (default) or `twemproxy`.
    pub mode: String,
    /// Key hash for twemproxy mode (`fnv1a_64` default, or any nutcracker hash name).
    pub function: Option<String>,
    /// `ketama` (default), `modula` (twemproxy mode) or `random` (twemproxy mode).
    pub distribution: String,
    /// Two-character hash tag, or `""` for none. Default `"{}"`.
    pub tag: String,
}

impl Default for HashFile {
    fn default() -> Self {
        HashFile {
            mode: "ringproxy".into(),
            function: None,
            distribution: "ketama".into(),
            tag: DEFAULT_HASH_TAG.into(),
        }
    }
}

/// `pool:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolFile {
    /// Shared, pipelined connections per node, per worker and RESP version in use, 1..=64. Default 1.
    pub connections: usize,
    /// Connect to every node at start instead of on first use (nutcracker
    /// `preconnect`). Default false.
    pub preconnect: bool,
}

impl Default for PoolFile {
    fn default() -> Self {
        PoolFile {
            connections: DEFAULT_POOL_CONNECTIONS,
            preconnect: false,
        }
    }
}

/// `timeouts:` section. Durations are written `300ms`, `2s`, `1m`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsFile {
    /// Backend connect timeout, more than 0 and at most 1m. Default 500ms.
    #[serde(with = "super::duration")]
    pub connect: Duration,
    /// Time a backend may take to answer a request, more than 0 and at most 1h. Default 2s.
    #[serde(with = "super::duration")]
    pub request: Duration,
    /// A client that sends nothing for this long is closed; 0 = never (subscribed,
    /// blocked and transaction clients are never idle). At most 30 days. Default 0.
    #[serde(with = "super::duration")]
    pub client_idle: Duration,
    /// Time a partly received client request may take before the client gets an
    /// error and is closed; 0 = no bound. At most 30 days. Default 60s.
    #[serde(with = "super::duration")]
    pub client_request: Duration,
}

impl Default for TimeoutsFile {
    fn default() -> Self {
        TimeoutsFile {
            connect: DEFAULT_CONNECT_TIMEOUT,
            request: DEFAULT_REQUEST_TIMEOUT,
            client_idle: Duration::ZERO,
            client_request: super::clients::DEFAULT_CLIENT_REQUEST,
        }
    }
}

/// `limits:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsFile {
    /// Concurrent client connections; more are answered with an error and closed.
    /// 1..=1000000. Default 10000.
    pub max_clients: usize,
    /// Requests in flight per client; beyond it the proxy stops reading that client.
    /// 1..=1000000. Default 1024.
    pub max_pipeline: usize,
    /// Largest request in bytes; a larger one gets an error and the connection is closed.
    /// Written as bytes (`1048576`) or with a binary suffix (`512KiB`, `64MiB`, `1GiB`).
    /// 1KiB..=4GiB. Default 64MiB.
    #[serde(deserialize_with = "super::size::deserialize")]
    pub max_request_size: usize,
    /// Dedicated backend connections (transactions, blocking, pub/sub) at once.
    /// 1..=1000000. Default 1024.
    pub max_dedicated: usize,
    /// Bytes all clients may hold in buffers (requests not yet forwarded, replies
    /// not yet written); past it the proxy stops reading from the clients holding
    /// the most and closes the largest if the total stays over. Written like
    /// `max_request_size`; at least 1MiB. Default 1GiB.
    #[serde(deserialize_with = "super::size::deserialize")]
    pub max_client_memory: usize,
}

impl Default for LimitsFile {
    fn default() -> Self {
        LimitsFile {
            max_clients: DEFAULT_MAX_CLIENTS,
            max_pipeline: DEFAULT_MAX_PIPELINE,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            max_dedicated: DEFAULT_MAX_DEDICATED,
            max_client_memory: super::clients::DEFAULT_MAX_CLIENT_MEMORY,
        }
    }
}

/// `health:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthFile {
    /// Time between PINGs to each node, 10ms..=1h. Default 1s.
    #[serde(with = "super::duration")]
    pub interval: Duration,
    /// Time a PING may take, more than 0 and at most 1m. Default 500ms.
    #[serde(with = "super::duration")]
    pub timeout: Duration,
    /// Consecutive failures before a node is down, 1..=1000. Default 3.
    pub failures: u32,
    /// Consecutive successes before a down node is up, 1..=1000. Default 2.
    pub successes: u32,
    /// false (default): keys of a down node get an error; true: they move to the next live node.
    pub eject: bool,
    /// Most nodes that may be ejected at once, in percent of all nodes, 0..=100. Default 50.
    pub max_ejected_percent: u32,
    /// With `eject: true`: an ejected node gets traffic again after this long even if
    /// health checks have not brought it back (nutcracker `server_retry_timeout`).
    /// More than 0 and at most 1h. Default none (health checks decide).
    #[serde(deserialize_with = "super::duration::deserialize_opt")]
    pub retry_timeout: Option<Duration>,
}

impl Default for HealthFile {
    fn default() -> Self {
        HealthFile {
            interval: DEFAULT_HEALTH_INTERVAL,
            timeout: DEFAULT_HEALTH_TIMEOUT,
            failures: DEFAULT_HEALTH_FAILURES,
            successes: DEFAULT_HEALTH_SUCCESSES,
            eject: false,
            max_ejected_percent: DEFAULT_MAX_EJECTED_PERCENT,
            retry_timeout: None,
        }
    }
}

/// `backend:` section: how the proxy logs in to each node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendFile {
    /// User name sent with AUTH on every backend connection. Default none (`AUTH
    /// password`, the nodes' default user).
    pub username: Option<String>,
    /// Password sent with AUTH on every backend connection (non-empty). Default none.
    pub password: Option<String>,
    /// File holding the backend password (instead of `password`; one trailing
    /// newline is dropped), re-read on every reload. Default none.
    pub password_file: Option<String>,
    /// Database selected on every backend connection (any number the backends accept). Default 0.
    pub db: u32,
    /// TLS to the nodes (every connection: shared, dedicated, pub/sub, health
    /// checks); `null` (default) = plain text.
    pub tls: Option<BackendTlsFile>,
}

/// `tls:` section: TLS (1.2 and 1.3) on the client listener. The files are read
/// when the config is checked and again whenever they change (rotation).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsFile {
    /// PEM file with the server certificate chain (leaf first). Required.
    pub cert: PathBuf,
    /// PEM file with the private key of `cert` (PKCS#8, PKCS#1 or SEC1). Required.
    pub key: PathBuf,
    /// PEM file of CA certificates: when set, clients must present a certificate
    /// signed by one of them (mutual TLS). Default none (no client certificates).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// `backend.tls:` section: TLS (1.2 and 1.3) from the proxy to every node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendTlsFile {
    /// PEM file of CA certificates that node certificates are verified against.
    /// Default none: the Mozilla root set (webpki-roots).
    pub ca: Option<PathBuf>,
    /// Name the node certificates must carry (and sent as SNI). Default: the host
    /// part of each node's `addr`.
    pub server_name: Option<String>,
    /// PEM client certificate chain, for nodes that require one (with `key`). Default none.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`. Default none.
    pub key: Option<PathBuf>,
    /// Accept any node certificate, unverified (logged as a warning). Default false.
    pub insecure_skip_verify: bool,
}

/// One user under `users:`. Exactly one of `password`, `password_file`,
/// `password_sha256` is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    /// User name (non-empty, no spaces), unique; `default` replaces the default user.
    pub name: String,
    /// Password in clear text. Default none.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding the password (one trailing newline is dropped), re-read on every
    /// reload. Default none.
    #[serde(default)]
    pub password_file: Option<String>,
    /// SHA-256 of the password, 64 hex digits (as Redis's `#<hash>`). Default none.
    #[serde(default)]
    pub password_sha256: Option<String>,
    /// Redis ACL command rules, applied in order from no commands, e.g.
    /// `"+@all -@admin -@dangerous"`, `"+@read +ping"`, `"+config -config|set"`.
    /// Default `""` (no commands).
    #[serde(default)]
    pub commands: String,
    /// Key glob patterns (Redis `~pattern`; `"*"` = all keys). Default none.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Channel glob patterns (Redis `&pattern`; `"*"` = all channels). Default none.
    #[serde(default)]
    pub channels: Vec<String>,
}

/// A validated user (its password resolved to a secret).
#[derive(Debug, Clone, PartialEq)]
pub struct UserConfig {
    /// User name.
    pub name: String,
    /// What it logs in with (never printed).
    pub secret: crate::acl::Secret,
    /// Command rules.
    pub commands: String,
    /// Key patterns.
    pub keys: Vec<String>,
    /// Channel patterns.
    pub channels: Vec<String>,
}

/// One extra command (e.g. a module's) under `commands:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandFile {
    /// Command name, case-insensitive, e.g. `JSON.GET`. Required, no spaces, unique.
    pub name: String,
    /// Redis arity: N = exactly N args incl. the name, -N = at least N; not 0. Default -2.
    #[serde(default = "minus_two")]
    pub arity: i32,
    /// Position of the first key (1 = first argument), >= 1. Default 1.
    #[serde(default = "one_i32")]
    pub first_key: i32,
    /// Position of the last key, >= first_key; negative counts from the end (-1 = last
    /// argument). Default 1.
    #[serde(default = "one_i32")]
    pub last_key: i32,
    /// Step between keys, >= 1. Default 1.
    #[serde(default = "one_i32")]
    pub step: i32,
}

fn minus_two() -> i32 {
    -2
}
fn one_i32() -> i32 {
    1
}

/// `log:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogFile {
    /// `text` (default) or `json`.
    pub format: String,
    /// Filter, e.g. `info` (default), `debug`, `ringproxy=debug`. Not checked here.
    pub level: String,
}

impl Default for LogFile {
    fn default() -> Self {
        LogFile {
            format: "text".into(),
            level: "info".into(),
        }
    }
}
