//! nutcracker (twemproxy 0.5.0) pool files, read as they are: each pool becomes a
//! [`PoolConfig`] in twemproxy mode, so keys land where nutcracker put them.
//!
//! Mapped: `listen` (a unix path's permission suffix is noted, not applied), `hash`
//! (default `fnv1a_64`), `hash_tag` (default none), `distribution` (default ketama),
//! `timeout` (ms; connect and request timeout; absent or 0 = wait for ever in
//! nutcracker, ringproxy's defaults here, noted), `preconnect`, `redis_auth` (backend
//! password AND the password clients must AUTH with, as nutcracker does), `redis_db`,
//! `server_connections` (1..=64), `auto_eject_hosts` (also sets
//! `max_ejected_percent: 100`: nutcracker has no cap), `server_failure_limit`
//! (default 2), `server_retry_timeout` (ms, default 30000, only with ejection),
//! `client_connections` (0 or absent = ringproxy's default), `servers`
//! (`host:port:weight [name]` or `/path:weight [name]`; ring identity by nutcracker's
//! rule).
//! Noted, not used: `backlog`, `tcpkeepalive`. Refused: `redis: false` or no `redis`
//! (a memcached pool), unknown keys. Process-wide settings (workers, log) take
//! ringproxy's defaults, except admin: a nutcracker file has no admin field and another
//! proxy on the host may hold the default admin port, so none is bound (`--admin
//! HOST:PORT` turns it on).

use super::checks::{self as ck, Report};
use super::locate::Seg::{self, Item, Key};
use super::validate::{MAX_CONNECT, MAX_CONNECTIONS, MAX_REQUEST, dur, num, password};
use super::*;
use crate::route::{Distribution, HashFunction, HashMode};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::time::Duration;

#[path = "nc_serde.rs"]
mod nc_serde;
use nc_serde::{Ordered, Probe};

/// nutcracker's default hash function.
pub const NC_HASH: &str = "fnv1a_64";
/// nutcracker's default `server_failure_limit`.
pub const NC_FAILURE_LIMIT: u32 = 2;
/// nutcracker's default `server_retry_timeout`.
pub const NC_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed nutcracker file: the config plus what did not map.
#[derive(Debug)]
pub struct Nutcracker {
    /// The equivalent config: one pool per nutcracker pool, in file order.
    pub config: Config,
    /// Settings accepted but not used or used differently, for `--check`.
    pub notes: Vec<Problem>,
}

/// One nutcracker pool, as written. Integers are signed to report negatives clearly.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a nutcracker pool (a mapping with listen, servers, ...)")]
struct Pool {
    listen: Option<String>,
    hash: Option<String>,
    hash_tag: Option<String>,
    distribution: Option<String>,
    timeout: Option<i64>,
    backlog: Option<i64>,
    tcpkeepalive: Option<bool>,
    preconnect: Option<bool>,
    redis: Option<bool>,
    redis_auth: Option<String>,
    redis_db: Option<i64>,
    server_connections: Option<i64>,
    auto_eject_hosts: Option<bool>,
    server_retry_timeout: Option<i64>,
    server_failure_limit: Option<i64>,
    client_connections: Option<i64>,
    servers: Option<Vec<String>>,
    #[serde(flatten)]
    unknown: BTreeMap<String, IgnoredAny>,
}

/// True when `text` is a nutcracker pool file rather than a ringproxy file: a top-level
/// mapping with at least one value that is a mapping containing `servers`.
pub fn looks_like_nutcracker(text: &str) -> bool {
    yaml::parse_yaml::<Ordered<Probe>>(text).is_ok_and(|m| m.0.iter().any(|(_, p)| p.0))
}

/// Parses a nutcracker pool file: the config and its notes, or every problem.
pub fn parse(text: &str) -> Result<Nutcracker, Vec<Problem>> {
    let Ordered(pools) = yaml::parse_yaml::<Ordered<Pool>>(text).map_err(|p| vec![p])?;
    let mut r = Report::new(text);
    if pools.is_empty() {
        r.problems.push(Problem {
            line: None,
            message: "no pool found".into(),
        });
    }
    let configs: Vec<PoolConfig> = pools
        .iter()
        .map(|(name, p)| pool(&mut r, name, p))
        .collect();
    let listens: Vec<String> = configs.iter().map(|p| ck::listen_text(&p.listen)).collect();
    for (i, first) in ck::duplicates(&listens) {
        r.problem(
            &[Key(&pools[i].0), Key("listen")],
            format!("is also the listen address of pool {}", pools[first].0),
        );
    }
    let config = Config {
        pools: configs,
        admin: None,
        admin_token_file: None,
        workers: super::schema::DEFAULT_WORKERS,
        log_json: false,
        log_level: "info".into(),
    };
    let (problems, notes) = r.finish();
    if problems.is_empty() {
        Ok(Nutcracker { config, notes })
    } else {
        Err(problems)
    }
}

fn pool(r: &mut Report, name: &str, p: &Pool) -> PoolConfig {
    let at = |k| [Key(name), Key(k)];
    for k in p.unknown.keys() {
        r.problem(
            &[Key(name), Key(k)],
            "is not a nutcracker 0.5.0 pool setting",
        );
    }
    protocol(r, name, p.redis);
    unused(r, name, p);
    let (function, distribution, tag) = placement(r, name, p);
    let timeout = timeout(r, name, p.timeout);
    let pw = password(r, &at("redis_auth"), &p.redis_auth);
    PoolConfig {
        name: name.to_string(),
        listen: listen(r, name, p.listen.as_deref()),
        nodes: servers(r, name, p.servers.as_deref()),
        mode: HashMode::Twemproxy,
        function,
        distribution,
        tag,
        connections: int(
            r,
            &at("server_connections"),
            p.server_connections.unwrap_or(1),
            1,
            MAX_CONNECTIONS,
        ),
        connect_timeout: timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |t| t.min(MAX_CONNECT)),
        request_timeout: timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
        max_clients: clients(r, name, p.client_connections),
        max_pipeline: DEFAULT_MAX_PIPELINE,
        max_request_size: DEFAULT_MAX_REQUEST_SIZE,
        max_dedicated: DEFAULT_MAX_DEDICATED,
        clients: super::clients::ClientLimits::default(),
        listen_mode: listen_mode(r, name, p.listen.as_deref()),
        health: health(r, name, p),
        auth: pw.clone().map(Password::from),
        users: Vec::new(),
        backend_username: None,
        backend_password: pw.map(Password::from),
        backend_db: int(
            r,
            &at("redis_db"),
            p.redis_db.unwrap_or(0),
            0,
            u32::MAX as usize,
        ) as u32,
        commands: vec![],
        allow_flush: false,
        allow_admin: false,
        preconnect: p.preconnect.unwrap_or(false),
        tls: None,
        backend_tls: None,
        sentinel: None,
        read_from: super::replicas::ReadFrom::Primary,
        max_replica_lag: super::replicas::DEFAULT_MAX_REPLICA_LAG,
        cache: Default::default(),
        cluster: None,
        hot_keys: Default::default(),
        coalesce: false,
        near_cache: None,
    }
}

/// A nutcracker integer checked into `lo..=hi`.
fn int(r: &mut Report, path: &[Seg], v: i64, lo: usize, hi: usize) -> usize {
    match usize::try_from(v) {
        Ok(v) => num(r, path, v, lo, hi),
        Err(_) => {
            r.problem(path, format!("{v} is out of range {lo}..={hi}"));
            lo
        }
    }
}

/// Milliseconds checked into `1ms..=max`.
fn millis(r: &mut Report, path: &[Seg], ms: i64, max: Duration) -> Duration {
    dur(
        r,
        path,
        Duration::from_millis(ms.max(0) as u64),
        Duration::ZERO,
        max,
    )
}

fn protocol(r: &mut Report, name: &str, redis: Option<bool>) {
    let why = "ringproxy speaks only Redis";
    match redis {
        Some(true) => {}
        Some(false) => r.problem(
            &[Key(name), Key("redis")],
            format!("false makes this a memcached pool; {why}"),
        ),
        None => r.problem(
            &[Key(name)],
            format!("no `redis: true`, so nutcracker treats it as memcached; {why}"),
        ),
    }
}

fn unused(r: &mut Report, name: &str, p: &Pool) {
    if p.backlog.is_some() {
        r.note(
            &[Key(name), Key("backlog")],
            "is not used (ringproxy's listen backlog is fixed)",
        );
    }
    if p.tcpkeepalive.is_some() {
        r.note(
            &[Key(name), Key("tcpkeepalive")],
            "is not used by ringproxy",
        );
    }
}

fn placement(
    r: &mut Report,
    name: &str,
    p: &Pool,
) -> (HashFunction, Distribution, Option<[u8; 2]>) {
    let at = |k| [Key(name), Key(k)];
    let f = r.check(
        &at("hash"),
        ck::function(p.hash.as_deref().unwrap_or(NC_HASH)),
    );
    let d = ck::distribution(
        p.distribution.as_deref().unwrap_or("ketama"),
        HashMode::Twemproxy,
    );
    let d = r.check(&at("distribution"), d);
    let tag = p
        .hash_tag
        .as_deref()
        .and_then(|t| r.check(&at("hash_tag"), ck::tag(t)).flatten());
    (f.unwrap_or_default(), d.unwrap_or_default(), tag)
}

fn timeout(r: &mut Report, name: &str, t: Option<i64>) -> Option<Duration> {
    let path = [Key(name), Key("timeout")];
    let ours = duration::format(DEFAULT_REQUEST_TIMEOUT);
    match t {
        None => r.note(
            &[Key(name)],
            format!("no timeout: nutcracker waits for ever, ringproxy {ours}"),
        ),
        Some(0) => r.note(
            &path,
            format!("0 means no timeout in nutcracker; ringproxy uses {ours}"),
        ),
        Some(ms) if ms < 0 => r.problem(&path, format!("{ms} must be 0 or more (milliseconds)")),
        Some(ms) => {
            let d = millis(r, &path, ms, MAX_REQUEST);
            if d > MAX_CONNECT {
                r.note(
                    &path,
                    format!(
                        "the connect timeout is capped at {}",
                        duration::format(MAX_CONNECT)
                    ),
                );
            }
            return Some(d);
        }
    }
    None
}

fn clients(r: &mut Report, name: &str, n: Option<i64>) -> usize {
    let path = [Key(name), Key("client_connections")];
    match n {
        None => DEFAULT_MAX_CLIENTS,
        Some(0) => {
            r.note(
                &path,
                format!(
                    "0 (unlimited in nutcracker) becomes ringproxy's default {DEFAULT_MAX_CLIENTS}"
                ),
            );
            DEFAULT_MAX_CLIENTS
        }
        Some(v) => int(r, &path, v, 1, 1_000_000),
    }
}

fn health(r: &mut Report, name: &str, p: &Pool) -> HealthConfig {
    let at = |k| [Key(name), Key(k)];
    let eject = p.auto_eject_hosts.unwrap_or(false);
    if !eject && p.server_retry_timeout.is_some() {
        r.note(
            &at("server_retry_timeout"),
            "has no effect without auto_eject_hosts: true",
        );
    }
    let limit = p.server_failure_limit.unwrap_or(NC_FAILURE_LIMIT.into());
    let retry = p
        .server_retry_timeout
        .map(|ms| millis(r, &at("server_retry_timeout"), ms, MAX_REQUEST));
    HealthConfig {
        interval: DEFAULT_HEALTH_INTERVAL,
        timeout: DEFAULT_HEALTH_TIMEOUT,
        failures: int(r, &at("server_failure_limit"), limit, 1, 1000) as u32,
        successes: DEFAULT_HEALTH_SUCCESSES,
        eject,
        max_ejected_percent: if eject {
            100
        } else {
            DEFAULT_MAX_EJECTED_PERCENT
        },
        retry_timeout: eject.then(|| retry.unwrap_or(NC_RETRY_TIMEOUT)),
    }
}

fn listen(r: &mut Report, name: &str, l: Option<&str>) -> Listen {
    let path = [Key(name), Key("listen")];
    let Some(l) = l else {
        r.problem(&[Key(name)], "has no listen address");
        return Listen::Tcp(String::new());
    };
    if l.starts_with('/') {
        let sock = l.split_once(' ').map_or(l, |(s, _)| s);
        return Listen::Unix(sock.into());
    }
    r.check(&path, ck::host_port(l));
    Listen::Tcp(l.to_string())
}

/// The permission suffix of a unix `listen` (`/path.sock 0666`), as nutcracker
/// applies it.
fn listen_mode(r: &mut Report, name: &str, l: Option<&str>) -> Option<u32> {
    let perm = l?.strip_prefix('/')?.split_once(' ')?.1.trim();
    let mode = super::clients::parse_mode(perm);
    if mode.is_none() {
        r.problem(
            &[Key(name), Key("listen")],
            format!("socket permissions {perm} are not an octal mode"),
        );
    }
    mode
}

fn servers(r: &mut Report, name: &str, list: Option<&[String]>) -> Vec<NodeConfig> {
    let at = |i| [Key(name), Key("servers"), Item(i)];
    if list.is_none_or(|l| l.is_empty()) {
        r.problem(
            &[Key(name), Key("servers")],
            "at least one server is required",
        );
    }
    let list = list.unwrap_or_default();
    let parsed: Vec<Option<NodeConfig>> = list
        .iter()
        .enumerate()
        .map(|(i, s)| r.check(&at(i), server(s)))
        .collect();
    let nodes: Vec<(usize, NodeConfig)> = parsed
        .into_iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, n?)))
        .collect();
    let names = nodes.iter().map(|(_, n)| n.name.clone()).collect();
    let addrs = nodes.iter().map(|(_, n)| ck::addr_text(&n.addr)).collect();
    for (what, values) in [("name", names), ("address", addrs)] {
        let values: Vec<String> = values;
        for (i, first) in ck::duplicates(&values) {
            let msg = format!(
                "{what} {:?} is already used by servers[{}]",
                values[i], nodes[first].0
            );
            r.problem(&at(nodes[i].0), msg);
        }
    }
    nodes.into_iter().map(|(_, n)| n).collect()
}

/// One `servers` entry: `host:port:weight [name]` or `/path/to.sock:weight [name]`.
fn server(s: &str) -> Result<NodeConfig, String> {
    let bad = || format!("{s:?} is not host:port:weight [name] or /path/to.sock:weight [name]");
    let (spec, name) = match s.trim().split_once(char::is_whitespace) {
        Some((spec, name)) => (spec, Some(name.trim())),
        None => (s.trim(), None),
    };
    if name.is_some_and(|n| n.contains(char::is_whitespace)) {
        return Err(format!("{s:?}: a server name is one word"));
    }
    let (place, weight) = spec.rsplit_once(':').ok_or_else(bad)?;
    let weight: u32 = weight.parse().map_err(|_| bad())?;
    let weight = ck::range(weight, 1, MAX_TWEMPROXY_WEIGHT).map_err(|m| format!("weight {m}"))?;
    let addr = if place.starts_with('/') {
        NodeAddr::Unix(place.into())
    } else {
        place.rsplit_once(':').ok_or_else(bad)?;
        ck::host_port(place)?;
        NodeAddr::Tcp(place.into())
    };
    Ok(NodeConfig {
        name: name.map_or_else(|| ck::addr_text(&addr), str::to_string),
        identity: ck::identity(HashMode::Twemproxy, &addr, name),
        addr,
        weight,
        replicas: Vec::new(),
        sentinel: None,
    })
}

#[cfg(test)]
#[path = "nutcracker_tests.rs"]
mod tests;
