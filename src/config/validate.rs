//! Validation of a ringproxy [`FileConfig`] into a [`Config`]: every problem is
//! collected (not just the first), each as `path: what is wrong` with the line of the
//! setting in the file (found by [`super::locate`]).

use super::checks::{self as ck, Report};
use super::clients::ClientLimits;
use super::locate::Seg::{self, Item, Key};
use super::*;
use crate::route::{Distribution, HashFunction, HashMode};
use std::time::Duration;

/// Largest connect timeout.
pub(super) const MAX_CONNECT: Duration = Duration::from_secs(60);
/// Largest request timeout (also the largest health interval and retry timeout).
pub(super) const MAX_REQUEST: Duration = Duration::from_secs(3600);
/// Smallest health-check interval.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Largest `pool.connections` (also nutcracker `server_connections`).
pub(super) const MAX_CONNECTIONS: usize = 64;
const MAX_COUNT: usize = 1_000_000;

/// Validates `file` (parsed from `text`): the config and its notes, or every problem.
pub fn validate(text: &str, file: FileConfig) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let mut r = Report::new(text);
    let pool = pool(&mut r, &file);
    let config = Config {
        admin: admin(&mut r, &file),
        admin_token_file: token_file(&mut r, &file),
        workers: num(&mut r, &[Key("workers")], file.workers, 0, 1024),
        log_json: log_json(&mut r, &file.log.format),
        log_level: file.log.level.clone(),
        pools: vec![pool],
    };
    let (problems, notes) = r.finish();
    if problems.is_empty() {
        Ok((config, notes))
    } else {
        Err(problems)
    }
}

/// `admin_token_file` must hold a token now (its text is never shown).
fn token_file(r: &mut Report, f: &FileConfig) -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(f.admin_token_file.as_ref()?);
    match crate::admin::read_token(&path) {
        Ok(_) => {}
        Err(why) => r.problem(&[Key("admin_token_file")], why),
    }
    Some(path)
}

/// Checks `lo <= v <= hi`; returns `v` either way (the result is only used when valid).
pub(super) fn num<T: PartialOrd + std::fmt::Display + Copy>(
    r: &mut Report,
    p: &[Seg],
    v: T,
    lo: T,
    hi: T,
) -> T {
    r.check(p, ck::range(v, lo, hi)).unwrap_or(v)
}

/// Checks `min <= d <= max` and `d > 0`; returns `d` either way.
pub(super) fn dur(
    r: &mut Report,
    p: &[Seg],
    d: Duration,
    min: Duration,
    max: Duration,
) -> Duration {
    r.check(p, ck::duration_in(d, min, max)).unwrap_or(d)
}

fn pool(r: &mut Report, f: &FileConfig) -> PoolConfig {
    let (mode, function, distribution, tag) = hash(r, &f.hash);
    let listen = r.check(&[Key("listen")], ck::listen(&f.listen));
    let t = &f.timeouts;
    let l = &f.limits;
    let extra = commands(r, &f.commands);
    PoolConfig {
        name: "default".into(),
        listen: listen.unwrap_or_else(|| Listen::Tcp(f.listen.clone())),
        nodes: match &f.cluster {
            Some(_) => super::cluster_check::no_nodes(r, f),
            None => nodes(r, &f.nodes, mode),
        },
        mode,
        function,
        distribution,
        tag,
        connections: num(
            r,
            &[Key("pool"), Key("connections")],
            f.pool.connections,
            1,
            MAX_CONNECTIONS,
        ),
        connect_timeout: dur(
            r,
            &[Key("timeouts"), Key("connect")],
            t.connect,
            Duration::ZERO,
            MAX_CONNECT,
        ),
        request_timeout: dur(
            r,
            &[Key("timeouts"), Key("request")],
            t.request,
            Duration::ZERO,
            MAX_REQUEST,
        ),
        max_clients: num(
            r,
            &[Key("limits"), Key("max_clients")],
            l.max_clients,
            1,
            MAX_COUNT,
        ),
        max_pipeline: num(
            r,
            &[Key("limits"), Key("max_pipeline")],
            l.max_pipeline,
            1,
            MAX_COUNT,
        ),
        max_request_size: request_size(r, l.max_request_size),
        max_dedicated: num(
            r,
            &[Key("limits"), Key("max_dedicated")],
            l.max_dedicated,
            1,
            MAX_COUNT,
        ),
        health: health(r, &f.health),
        auth: password(r, &[Key("auth")], &f.auth).map(Password::from),
        users: super::users::users(r, &f.users, f.auth.as_deref(), &extra),
        backend_username: super::users::login_username(
            r,
            &super::users::Login::backend(&f.backend),
        ),
        backend_password: super::users::login_password(
            r,
            &super::users::Login::backend(&f.backend),
        )
        .map(Password::from),
        backend_db: f.backend.db,
        commands: extra,
        allow_flush: f.allow_flush,
        allow_admin: f.allow_admin,
        preconnect: f.pool.preconnect,
        clients: client_limits(r, &f.limits, t),
        listen_mode: listen_mode(r, f),
        tls: super::tls_check::listener(r, f),
        backend_tls: super::tls_check::client(r, "backend", f.backend.tls.as_ref()),
        sentinel: super::replicas::sentinel(r, f),
        read_from: super::replicas::read_from(r, f),
        max_replica_lag: super::replicas::max_lag(r, f),
        cache: super::cache::cache(r, &f.ttl_jitter, f.warmup.as_ref()),
        cluster: super::cluster_check::cluster(r, f),
        hot_keys: crate::hotkeys::config::validate(r, &f.hot_keys),
        coalesce: f.coalesce,
        near_cache: f
            .near_cache
            .as_ref()
            .map(|n| crate::nearcache::config::validate(r, n)),
    }
}

/// `listen_mode` applies to a unix socket only.
fn listen_mode(r: &mut Report, f: &FileConfig) -> Option<u32> {
    let mode = f.listen_mode?;
    if !f.listen.starts_with("unix:") {
        r.problem(&[Key("listen_mode")], "applies to a unix: listener only");
    }
    Some(mode)
}

fn client_limits(r: &mut Report, l: &LimitsFile, t: &TimeoutsFile) -> ClientLimits {
    use super::clients::{MAX_CLIENT_TIMEOUT, MIN_CLIENT_MEMORY, off_if_zero};
    // 0 turns a client timeout off; any other value is checked.
    let max_memory = num(
        r,
        &[Key("limits"), Key("max_client_memory")],
        l.max_client_memory,
        MIN_CLIENT_MEMORY,
        usize::MAX,
    );
    let mut timeout = |k, d: Duration| {
        let p = [Key("timeouts"), Key(k)];
        off_if_zero(d).map(|d| dur(r, &p, d, Duration::ZERO, MAX_CLIENT_TIMEOUT))
    };
    ClientLimits {
        max_memory,
        idle: timeout("client_idle", t.client_idle),
        request: timeout("client_request", t.client_request),
    }
}

fn hash(r: &mut Report, h: &HashFile) -> (HashMode, HashFunction, Distribution, Option<[u8; 2]>) {
    let p = |k| [Key("hash"), Key(k)];
    let checked = r.check(&p("mode"), ck::mode(&h.mode));
    let mode = checked.unwrap_or_default();
    let function = match (&h.function, checked) {
        (None, Some(HashMode::Twemproxy)) => {
            HashFunction::from_name("fnv1a_64").unwrap_or_default()
        }
        (None, _) => HashFunction::Ringproxy,
        (Some(_), Some(HashMode::Ringproxy)) => {
            r.problem(
                &p("function"),
                "is only used with hash.mode: twemproxy; remove it or set the mode",
            );
            HashFunction::Ringproxy
        }
        (Some(name), _) => r
            .check(&p("function"), ck::function(name))
            .unwrap_or_default(),
    };
    let lenient = checked.unwrap_or(HashMode::Twemproxy);
    let distribution = r.check(
        &p("distribution"),
        ck::distribution(&h.distribution, lenient),
    );
    let tag = r.check(&p("tag"), ck::tag(&h.tag)).flatten();
    (mode, function, distribution.unwrap_or_default(), tag)
}

fn nodes(r: &mut Report, list: &[NodeFile], mode: HashMode) -> Vec<NodeConfig> {
    if list.is_empty() {
        r.problem(&[Key("nodes")], "at least one node is required");
    }
    let out: Vec<NodeConfig> = list
        .iter()
        .enumerate()
        .map(|(i, n)| node(r, i, n, mode))
        .collect();
    let names: Vec<String> = out.iter().map(|n| n.name.clone()).collect();
    let field = |i: usize| {
        if list[i].name.is_some() {
            "name"
        } else {
            "addr"
        }
    };
    for (i, first) in ck::duplicates(&names) {
        r.problem(
            &[Key("nodes"), Item(i), Key(field(i))],
            format!("name {:?} is already used by nodes[{first}]", names[i]),
        );
    }
    let addrs: Vec<String> = out.iter().map(|n| ck::addr_text(&n.addr)).collect();
    for (i, first) in ck::duplicates(&addrs) {
        r.problem(
            &[Key("nodes"), Item(i), Key("addr")],
            format!("{:?} is already used by nodes[{first}]", addrs[i]),
        );
    }
    let ids: Vec<String> = out.iter().map(|n| n.identity.clone()).collect();
    for (i, first) in ck::duplicates(&ids)
        .into_iter()
        .filter(|(i, f)| names[*i] != names[*f])
    {
        let msg = format!(
            "ring identity {:?} (nutcracker rule) is the same as nodes[{first}]'s",
            ids[i]
        );
        r.problem(&[Key("nodes"), Item(i)], msg);
    }
    out
}

fn node(r: &mut Report, i: usize, n: &NodeFile, mode: HashMode) -> NodeConfig {
    let p = |k| [Key("nodes"), Item(i), Key(k)];
    let replicas = super::replicas::node_replicas(r, i, n);
    let addr = match (&n.addr, &n.sentinel) {
        (Some(a), _) => r
            .check(&p("addr"), ck::node_addr(a))
            .unwrap_or_else(|| NodeAddr::Tcp(a.clone())),
        (None, m) => NodeAddr::Sentinel(m.clone().unwrap_or_default()),
    };
    let default_name = || {
        n.addr
            .clone()
            .or_else(|| n.sentinel.clone())
            .unwrap_or_default()
    };
    let max = if mode == HashMode::Twemproxy {
        MAX_TWEMPROXY_WEIGHT
    } else {
        MAX_WEIGHT
    };
    let weight = num(r, &p("weight"), n.weight, 1, max);
    if n.name.as_deref().is_some_and(|s| s.trim().is_empty()) {
        r.problem(&p("name"), "must not be empty; remove it to use the addr");
    }
    let name = n.name.clone().unwrap_or_else(default_name);
    let named = n.name.as_deref().or(n.sentinel.as_deref());
    NodeConfig {
        identity: ck::identity(mode, &addr, named),
        name,
        addr,
        weight,
        replicas,
        sentinel: n.sentinel.clone(),
    }
}

fn request_size(r: &mut Report, v: usize) -> usize {
    let p = [Key("limits"), Key("max_request_size")];
    if !(1 << 10..=1 << 32).contains(&v) {
        r.problem(
            &p,
            format!("{} is out of range 1KiB..=4GiB", size::format(v)),
        );
    }
    v
}

fn health(r: &mut Report, h: &HealthFile) -> HealthConfig {
    let p = |k| [Key("health"), Key(k)];
    if h.retry_timeout.is_some() && !h.eject {
        r.note(
            &p("retry_timeout"),
            "has no effect without health.eject: true",
        );
    }
    HealthConfig {
        interval: dur(r, &p("interval"), h.interval, MIN_INTERVAL, MAX_REQUEST),
        timeout: dur(r, &p("timeout"), h.timeout, Duration::ZERO, MAX_CONNECT),
        failures: num(r, &p("failures"), h.failures, 1, 1000),
        successes: num(r, &p("successes"), h.successes, 1, 1000),
        eject: h.eject,
        max_ejected_percent: num(r, &p("max_ejected_percent"), h.max_ejected_percent, 0, 100),
        retry_timeout: h
            .retry_timeout
            .map(|d| dur(r, &p("retry_timeout"), d, Duration::ZERO, MAX_REQUEST)),
    }
}

/// A password: `None`, or a non-empty string.
pub(super) fn password(r: &mut Report, p: &[Seg], pw: &Option<String>) -> Option<String> {
    if pw.as_deref() == Some("") {
        r.problem(
            p,
            "must not be empty; remove it (or write null) for no password",
        );
    }
    pw.clone()
}

fn admin(r: &mut Report, f: &FileConfig) -> Option<String> {
    let a = f.admin.as_ref()?;
    r.check(&[Key("admin")], ck::host_port(a));
    if *a == f.listen {
        r.problem(
            &[Key("admin")],
            format!("{a:?} is also the client listen address"),
        );
    }
    Some(a.clone())
}

fn log_json(r: &mut Report, format: &str) -> bool {
    if !matches!(format, "text" | "json") {
        r.problem(
            &[Key("log"), Key("format")],
            format!("{format:?} is not one of text, json"),
        );
    }
    format == "json"
}

fn commands(r: &mut Report, list: &[CommandFile]) -> Vec<ExtraCommand> {
    let out: Vec<ExtraCommand> = list
        .iter()
        .enumerate()
        .map(|(i, c)| command(r, i, c))
        .collect();
    let names: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
    for (i, first) in ck::duplicates(&names) {
        r.problem(
            &[Key("commands"), Item(i), Key("name")],
            format!("{:?} is already declared by commands[{first}]", names[i]),
        );
    }
    out
}

fn command(r: &mut Report, i: usize, c: &CommandFile) -> ExtraCommand {
    let p = |k| [Key("commands"), Item(i), Key(k)];
    if c.name.is_empty() || c.name.contains(char::is_whitespace) {
        r.problem(
            &p("name"),
            format!("{:?} is not a command name (non-empty, no spaces)", c.name),
        );
    }
    if c.arity == 0 {
        r.problem(
            &p("arity"),
            "0 is not valid: N = exactly N arguments with the name, -N = at least N",
        );
    }
    if c.first_key < 1 {
        r.problem(
            &p("first_key"),
            format!("{} must be 1 or more", c.first_key),
        );
    }
    if c.last_key >= 0 && c.last_key < c.first_key {
        r.problem(
            &p("last_key"),
            format!(
                "{} must be >= first_key or negative (from the end)",
                c.last_key
            ),
        );
    }
    if c.step < 1 {
        r.problem(&p("step"), format!("{} must be 1 or more", c.step));
    }
    let name = c.name.to_ascii_uppercase();
    ExtraCommand {
        name,
        arity: c.arity,
        first_key: c.first_key,
        last_key: c.last_key,
        step: c.step,
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
