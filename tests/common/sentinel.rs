//! Shards that outlive their primary: [`Shard`] (a `redis-server` primary with
//! replicas started with `--replicaof`) and [`SentinelGroup`] (shards watched by three
//! real sentinels, `redis-server <conf> --sentinel`), plus what the tests read off the
//! servers directly: `INFO` sections, `ROLE`, per-command call counts ([`cmdstat`]);
//! the proxy side ([`start_proxy`], `/topology` replicas, the outage [`window`] of a
//! load), and a pausable [`Relay`] that makes a replica lag without breaking its link.
//!
//! Everything runs on free loopback ports; every wait polls with a bounded deadline;
//! every process is killed on drop (the sentinels first, so that none of them
//! reconfigures a server while the group is torn down).
//!
//! The sentinels are tuned for tests: `down-after-milliseconds` [`DOWN_AFTER`], a
//! short `failover-timeout`, and `SENTINEL DEBUG` periods well below their defaults
//! (hello messages, INFO refreshes and peer questions several times a second), so a
//! group is ready within a second or two and a failover takes one to three seconds.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::admin::{Topology, wait_topology};
use super::conn::Conn;
use super::load::{KeyList, Outcome, Report, Sample};
use super::proxy::Proxy;
use super::redis_server::RedisServer;
use super::resp::Reply;
use super::route::keys_per_node;
use super::util::*;

/// Sentinels per group.
pub const SENTINELS: usize = 3;
/// Sentinels that must agree a primary is down before a failover (`quorum`).
pub const QUORUM: usize = 2;
/// `sentinel down-after-milliseconds`: silence before a sentinel calls a server down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);
/// `sentinel failover-timeout` (also the pause before a failed failover is retried,
/// twice this).
pub const FAILOVER_TIMEOUT: Duration = Duration::from_millis(3000);
/// `SENTINEL DEBUG` settings (milliseconds) applied to every sentinel at start: fast
/// INFO refreshes, hellos (peer and replica discovery; an old primary that comes back
/// is turned into a replica after 4 publish periods) and peer questions; a long timer
/// stall on a busy machine must not put a sentinel in TILT mode for long.
const DEBUG_PERIODS: &[(&str, &str)] = &[
    ("info-period", "250"),
    ("publish-period", "200"),
    ("ask-period", "250"),
    ("tilt-trigger", "5000"),
    ("tilt-period", "1000"),
];
/// Longest wait for a group to be ready, a failover to be agreed on, a replica to sync.
pub const HA_TIMEOUT: Duration = Duration::from_secs(30);
/// Options every server of a shard gets: an immediate diskless full sync (Redis 7
/// waits 5 s by default for more replicas to join one).
const SERVER_ARGS: &[&str] = &["--repl-diskless-sync-delay", "0"];
/// Timeout of one command to a server or sentinel from the fixture's probes.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// Reading a server directly
// ---------------------------------------------------------------------------

/// `INFO section` of the server on `port` as `field -> value`, or the failure.
pub fn try_info(port: u16, section: &str) -> Result<BTreeMap<String, String>, String> {
    let mut c = Conn::try_connect(port, PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let text = match c.try_cmd(&["INFO", section]) {
        Ok(Reply::Bulk(b)) | Ok(Reply::Verbatim(_, b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(other) => return Err(format!("INFO {section} on port {port}: {other}")),
        Err(e) => return Err(format!("INFO {section} on port {port}: {e}")),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// `INFO section` of `s` (panics when it does not answer).
pub fn info(s: &RedisServer, section: &str) -> BTreeMap<String, String> {
    try_info(s.port(), section).unwrap_or_else(|e| panic!("{}: {e}", s.addr()))
}

/// One command's counters from `INFO commandstats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CmdStat {
    /// Executions (on a replica, replicated commands from its primary count too).
    pub calls: u64,
    /// Refused before running (e.g. `-READONLY` on a replica, `-NOSCRIPT`).
    pub rejected_calls: u64,
    /// Ran and failed.
    pub failed_calls: u64,
}

/// The counters of `cmd` (lower case, e.g. `"get"`) on `s`; zeros when never called.
pub fn cmdstat(s: &RedisServer, cmd: &str) -> CmdStat {
    let stats = info(s, "commandstats");
    let Some(line) = stats.get(&format!("cmdstat_{cmd}")) else {
        return CmdStat::default();
    };
    let field = |name: &str| {
        line.split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    CmdStat {
        calls: field("calls"),
        rejected_calls: field("rejected_calls"),
        failed_calls: field("failed_calls"),
    }
}

/// Calls of `cmd` on each server, in order.
pub fn calls(servers: &[&RedisServer], cmd: &str) -> Vec<u64> {
    servers.iter().map(|s| cmdstat(s, cmd).calls).collect()
}

/// The first element of `ROLE` (`master`, `slave`), or the failure.
pub fn try_role(port: u16) -> Result<String, String> {
    let mut c = Conn::try_connect(port, PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    match c.try_cmd(&["ROLE"]) {
        Ok(Reply::Array(v)) if !v.is_empty() => Ok(String::from_utf8_lossy(v[0].bytes()).into()),
        Ok(other) => Err(format!("ROLE on port {port}: {other}")),
        Err(e) => Err(format!("ROLE on port {port}: {e}")),
    }
}

/// Waits until `s` is a replica whose link to its primary is up.
pub fn wait_link_up(s: &RedisServer) {
    poll(
        &format!("replica {} in sync", s.addr()),
        HA_TIMEOUT,
        Duration::from_millis(20),
        || {
            let r = try_info(s.port(), "replication")?;
            match r.get("master_link_status").map(String::as_str) {
                Some("up") => Ok(()),
                _ => Err(format!("INFO replication: {r:?}")),
            }
        },
    )
}

/// Waits until `s` reports `master_link_status:down` (e.g. after `REPLICAOF` to a dead port).
pub fn wait_link_down(s: &RedisServer) {
    poll(
        &format!("replica {} link down", s.addr()),
        HA_TIMEOUT,
        Duration::from_millis(20),
        || {
            let r = try_info(s.port(), "replication")?;
            match r.get("master_link_status").map(String::as_str) {
                Some("down") => Ok(()),
                _ => Err(format!("INFO replication: {r:?}")),
            }
        },
    )
}

/// Waits until every replica has applied everything `primary` has sent so far
/// (`slave_repl_offset` reaches the primary's `master_repl_offset`).
pub fn wait_caught_up(primary: &RedisServer, replicas: &[&RedisServer]) {
    let want: u64 = info(primary, "replication")["master_repl_offset"]
        .parse()
        .expect("master_repl_offset");
    for r in replicas {
        poll(
            &format!("replica {} at offset {want}", r.addr()),
            HA_TIMEOUT,
            Duration::from_millis(10),
            || {
                let i = try_info(r.port(), "replication")?;
                let at: u64 = i
                    .get("slave_repl_offset")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                (at >= want).then_some(()).ok_or(format!("at {at}: {i:?}"))
            },
        );
    }
}

// ---------------------------------------------------------------------------
// Shard
// ---------------------------------------------------------------------------

/// A primary and its replicas. `servers[0]` starts as the primary (with a sentinel
/// group, the sentinels say which one is primary now: [`SentinelGroup::primary`]).
pub struct Shard {
    /// The sentinels' name for it (`sentinel monitor <name> ...`).
    pub name: String,
    /// `servers[0]` the first primary, the rest its replicas (`--replicaof` it).
    pub servers: Vec<RedisServer>,
}

impl Shard {
    /// A primary and `replicas` replicas of it, each replica in sync when this returns.
    pub fn start(name: &str, replicas: usize) -> Shard {
        let primary = RedisServer::start_with(SERVER_ARGS);
        let port = primary.port().to_string();
        let mut servers = vec![primary];
        for _ in 0..replicas {
            let mut args = SERVER_ARGS.to_vec();
            args.extend(["--replicaof", "127.0.0.1", &port]);
            servers.push(RedisServer::start_with(&args));
        }
        for r in &servers[1..] {
            wait_link_up(r);
        }
        Shard {
            name: name.to_string(),
            servers,
        }
    }

    /// The first primary (`servers[0]`).
    pub fn primary(&self) -> &RedisServer {
        &self.servers[0]
    }

    /// The first replicas (`servers[1..]`).
    pub fn replicas(&self) -> Vec<&RedisServer> {
        self.servers[1..].iter().collect()
    }

    /// The index of the server at `addr` (panics when none is).
    pub fn index_of(&self, addr: &str) -> usize {
        self.servers
            .iter()
            .position(|s| s.addr() == addr)
            .unwrap_or_else(|| panic!("no server of shard {} at {addr}", self.name))
    }

    /// Restarts server `i` (killed or not) with its first options: a replica comes
    /// back as a replica of the first primary and is waited for until in sync; the
    /// first primary comes back as an empty primary.
    pub fn restart(&mut self, i: usize) {
        self.servers[i].restart();
        if i > 0 {
            wait_link_up(&self.servers[i]);
        }
    }

    /// The static node entry of a proxy config (`name`, `addr`, `replicas`) for this
    /// shard under the ring name `node`.
    pub fn static_node_yaml(&self, node: &str) -> String {
        let replicas: Vec<String> = self.servers[1..]
            .iter()
            .map(|r| format!("\"{}\"", r.addr()))
            .collect();
        format!(
            "  - name: {node}\n    addr: \"{}\"\n    replicas: [{}]\n",
            self.servers[0].addr(),
            replicas.join(", ")
        )
    }
}

// ---------------------------------------------------------------------------
// Sentinel process
// ---------------------------------------------------------------------------

/// One `redis-server <conf> --sentinel` on a free port; killed on drop.
pub struct Sentinel {
    child: Option<Child>,
    port: u16,
    /// Its `requirepass` (sentinels use it with each other too), sent with `AUTH`.
    password: Option<String>,
    dir: TempDir,
}

impl Sentinel {
    /// Starts a sentinel monitoring `shards` (retrying on a taken port), requiring
    /// `password` when given, and applies the fast `SENTINEL DEBUG` periods.
    fn start(shards: &[Shard], password: Option<&str>) -> Sentinel {
        let mut last = String::new();
        for _ in 0..5 {
            match Sentinel::try_start(shards, password) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("sentinel did not start after 5 attempts: {last}");
    }

    fn try_start(shards: &[Shard], password: Option<&str>) -> Result<Sentinel, String> {
        let dir = TempDir::new("sentinel");
        let port = free_port();
        let conf = dir.join("sentinel.conf");
        let mut text = sentinel_conf(port, &dir, shards);
        if let Some(pw) = password {
            text.push_str(&format!("requirepass {pw}\n"));
        }
        std::fs::write(&conf, text).map_err(|e| format!("write {conf:?}: {e}"))?;
        let log = dir.join("sentinel.log");
        let child = spawn_logged(
            Command::new("redis-server").arg(&conf).arg("--sentinel"),
            &dir.join("stdout.log"),
        )?;
        let pid = child.id().to_string();
        let mut s = Sentinel {
            child: Some(child),
            port,
            password: password.map(str::to_string),
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        // Ours, not another process on a reused port.
        while !s.cmd(&["INFO", "server"]).is_ok_and(|r| {
            matches!(r, Reply::Bulk(b) if String::from_utf8_lossy(&b).contains(&format!("process_id:{pid}\r")))
        }) {
            let exited = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(st) = exited {
                return Err(format!("sentinel exited with {st}:\n{}", tail(&log, 20)));
            }
            if Instant::now() >= deadline {
                return Err(format!("sentinel not ready:\n{}", tail(&log, 20)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut args = vec!["SENTINEL", "DEBUG"];
        args.extend(DEBUG_PERIODS.iter().flat_map(|(k, v)| [*k, *v]));
        let r = s.cmd(&args)?;
        (r == Reply::ok())
            .then_some(s)
            .ok_or_else(|| format!("SENTINEL DEBUG: {r}"))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:<port>"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// True until [`Sentinel::kill`].
    pub fn is_alive(&self) -> bool {
        self.child.is_some()
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
    }

    /// One command on a new connection with a short timeout.
    pub fn cmd(&self, args: &[&str]) -> Result<Reply, String> {
        let mut c =
            Conn::try_connect(self.port, PROBE_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
        let fail =
            |e: std::io::Error| format!("{} on sentinel {}: {e}", args.join(" "), self.addr());
        if let Some(pw) = &self.password {
            match c.try_cmd(&["AUTH", pw]).map_err(fail)? {
                r if r == Reply::ok() => {}
                r => return Err(format!("AUTH on sentinel {}: {r}", self.addr())),
            }
        }
        c.try_cmd(args).map_err(fail)
    }

    /// `SENTINEL get-master-addr-by-name name` as `"host:port"`.
    pub fn master_addr(&self, name: &str) -> Result<String, String> {
        match self.cmd(&["SENTINEL", "get-master-addr-by-name", name])? {
            Reply::Array(v) if v.len() == 2 => Ok(format!(
                "{}:{}",
                String::from_utf8_lossy(v[0].bytes()),
                String::from_utf8_lossy(v[1].bytes())
            )),
            other => Err(format!("get-master-addr-by-name {name}: {other}")),
        }
    }

    /// `SENTINEL MASTER name` as `field -> value`.
    pub fn master_state(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        pairs(&self.cmd(&["SENTINEL", "MASTER", name])?)
    }

    /// `SENTINEL REPLICAS name`, each as `field -> value`.
    pub fn replicas_state(&self, name: &str) -> Result<Vec<BTreeMap<String, String>>, String> {
        match self.cmd(&["SENTINEL", "REPLICAS", name])? {
            Reply::Array(v) => v.iter().map(pairs).collect(),
            other => Err(format!("SENTINEL REPLICAS {name}: {other}")),
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
        if std::thread::panicking() {
            eprintln!(
                "---- sentinel {} log tail ----\n{}\n----",
                self.addr(),
                tail(&self.dir.join("sentinel.log"), 15)
            );
        }
    }
}

/// A sentinel's config file: listen on `port`, monitor each shard's first primary.
fn sentinel_conf(port: u16, dir: &TempDir, shards: &[Shard]) -> String {
    let mut c = format!(
        "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\nlogfile {}\n\
         sentinel resolve-hostnames no\nsentinel announce-ip 127.0.0.1\n",
        dir.path().display(),
        dir.join("sentinel.log").display()
    );
    for s in shards {
        let (n, p) = (&s.name, s.primary().port());
        c.push_str(&format!(
            "sentinel monitor {n} 127.0.0.1 {p} {QUORUM}\n\
             sentinel down-after-milliseconds {n} {}\n\
             sentinel failover-timeout {n} {}\n\
             sentinel parallel-syncs {n} 1\n",
            DOWN_AFTER.as_millis(),
            FAILOVER_TIMEOUT.as_millis()
        ));
    }
    c
}

/// A flat `[field, value, ...]` array as a map.
fn pairs(r: &Reply) -> Result<BTreeMap<String, String>, String> {
    let Reply::Array(v) = r else {
        return Err(format!("not a field/value array: {r}"));
    };
    Ok(v.chunks(2)
        .filter(|kv| kv.len() == 2)
        .map(|kv| {
            let s = |r: &Reply| String::from_utf8_lossy(r.bytes()).into_owned();
            (s(&kv[0]), s(&kv[1]))
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Sentinel group
// ---------------------------------------------------------------------------

/// Shards `m0`, `m1`, ... watched by [`SENTINELS`] sentinels.
pub struct SentinelGroup {
    // Declared first: dropped (killed) before the servers.
    sentinels: Vec<Sentinel>,
    /// The shards, named `m<i>`.
    pub shards: Vec<Shard>,
}

impl SentinelGroup {
    /// `shards` shards of a primary and `replicas` replicas each, and the sentinels;
    /// returns once every sentinel knows every primary, replica and other sentinel.
    pub fn start(shards: usize, replicas: usize) -> SentinelGroup {
        SentinelGroup::start_with(shards, replicas, None)
    }

    /// Same, the sentinels requiring `password` (`requirepass`) when given.
    pub fn start_with(shards: usize, replicas: usize, password: Option<&str>) -> SentinelGroup {
        assert!(replicas > 0, "a failover needs a replica");
        let shards: Vec<Shard> = (0..shards)
            .map(|i| Shard::start(&format!("m{i}"), replicas))
            .collect();
        let sentinels = (0..SENTINELS)
            .map(|_| Sentinel::start(&shards, password))
            .collect();
        let g = SentinelGroup { sentinels, shards };
        for i in 0..g.shards.len() {
            g.wait_settled(i);
        }
        g
    }

    /// The sentinels' addresses, for the proxy's `sentinel.addrs`.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels.iter().map(Sentinel::addr).collect()
    }

    /// The sentinels themselves.
    pub fn sentinels(&self) -> &[Sentinel] {
        &self.sentinels
    }

    /// What each live sentinel says shard `i`'s primary is.
    pub fn masters_seen(&self, i: usize) -> Vec<Result<String, String>> {
        let name = &self.shards[i].name;
        self.live().map(|s| s.master_addr(name)).collect()
    }

    /// The sentinels not killed.
    fn live(&self) -> impl Iterator<Item = &Sentinel> {
        self.sentinels.iter().filter(|s| s.is_alive())
    }

    /// Kills sentinel `k` (the others go on; two of three still make a quorum and
    /// a majority).
    pub fn kill_sentinel(&mut self, k: usize) {
        self.sentinels[k].kill();
    }

    /// Shard `i`'s primary when every sentinel names the same one.
    pub fn agreed_master(&self, i: usize) -> Option<String> {
        let seen = self.masters_seen(i);
        let first = seen.first()?.as_ref().ok()?;
        seen.iter()
            .all(|s| s.as_ref() == Ok(first))
            .then(|| first.clone())
    }

    /// Index (in `shards[i].servers`) of the primary all sentinels agree on.
    pub fn primary_index(&self, i: usize) -> usize {
        let addr = self
            .agreed_master(i)
            .unwrap_or_else(|| panic!("sentinels disagree on m{i}: {:?}", self.masters_seen(i)));
        self.shards[i].index_of(&addr)
    }

    /// The server the sentinels agree is shard `i`'s primary.
    pub fn primary(&self, i: usize) -> &RedisServer {
        &self.shards[i].servers[self.primary_index(i)]
    }

    /// Polls until every sentinel names a primary of shard `i` other than `old` (and
    /// that server says `ROLE` master); returns it and when the agreement was seen.
    pub fn wait_new_master(&self, i: usize, old: &str) -> (String, Instant) {
        poll(
            &format!("sentinels agree on a new primary of m{i} (not {old})"),
            HA_TIMEOUT,
            Duration::from_millis(20),
            || {
                let seen = self.masters_seen(i);
                match self.agreed_master(i) {
                    Some(a) if a != old => {
                        let port = a.rsplit(':').next().and_then(|p| p.parse().ok());
                        match try_role(port.unwrap_or(0)) {
                            Ok(r) if r == "master" => Ok((a, Instant::now())),
                            r => Err(format!("{a} agreed on, ROLE {r:?}")),
                        }
                    }
                    _ => Err(format!("sentinels say {seen:?}")),
                }
            },
        )
    }

    /// Polls until every sentinel sees shard `i`'s primary as up, all of its live
    /// replicas in sync, and the other sentinels: ready for a (next) failover.
    pub fn wait_settled(&self, i: usize) {
        let name = self.shards[i].name.clone();
        let live = self.shards[i].servers.len() - 1;
        poll(
            &format!("sentinels settled on {name}"),
            HA_TIMEOUT,
            Duration::from_millis(20),
            || {
                for s in self.live() {
                    self.settled_at(s, &name, live)
                        .map_err(|e| format!("sentinel {}: {e}", s.addr()))?;
                }
                Ok(())
            },
        )
    }

    fn settled_at(&self, s: &Sentinel, name: &str, replicas: usize) -> Result<(), String> {
        let m = s.master_state(name)?;
        let others = (SENTINELS - 1).to_string();
        if m.get("flags").map(String::as_str) != Some("master")
            || m.get("num-other-sentinels") != Some(&others)
        {
            return Err(format!("SENTINEL MASTER {name}: {m:?}"));
        }
        let good = s
            .replicas_state(name)?
            .iter()
            .filter(|r| {
                r.get("flags").map(String::as_str) == Some("slave")
                    && r.get("master-link-status").map(String::as_str) == Some("ok")
            })
            .count();
        (good >= replicas)
            .then_some(())
            .ok_or_else(|| format!("{good} of {replicas} replicas in sync"))
    }

    /// `SENTINEL FAILOVER` of shard `i`, asking the sentinels in turn until one
    /// accepts (none may while a previous failover settles). Returns when it was accepted.
    pub fn failover(&self, i: usize) -> Instant {
        let name = &self.shards[i].name;
        poll(
            &format!("a sentinel accepts SENTINEL FAILOVER {name}"),
            HA_TIMEOUT,
            Duration::from_millis(50),
            || {
                let mut last = Vec::new();
                for s in self.live() {
                    match s.cmd(&["SENTINEL", "FAILOVER", name]) {
                        Ok(r) if r == Reply::ok() => return Ok(Instant::now()),
                        other => last.push(format!("{}: {other:?}", s.addr())),
                    }
                }
                Err(last.join("\n"))
            },
        )
    }

    /// `kill -9` of shard `i`'s current primary; returns its index and when.
    pub fn kill_primary(&mut self, i: usize) -> (usize, Instant) {
        let p = self.primary_index(i);
        self.shards[i].servers[p].kill();
        (p, Instant::now())
    }

    /// Polls until server `j` of shard `i` is a replica in sync with the primary the
    /// sentinels name (a restarted or unfrozen old primary, once the sentinels have
    /// reconfigured it); returns when that was seen.
    pub fn wait_demoted(&self, i: usize, j: usize) -> Instant {
        let s = &self.shards[i].servers[j];
        poll(
            &format!("{} reconfigured as a replica", s.addr()),
            HA_TIMEOUT,
            Duration::from_millis(20),
            || {
                let r = try_info(s.port(), "replication")?;
                let master = format!(
                    "{}:{}",
                    r.get("master_host").map_or("", String::as_str),
                    r.get("master_port").map_or("", String::as_str)
                );
                let ok = r.get("role").map(String::as_str) == Some("slave")
                    && r.get("master_link_status").map(String::as_str) == Some("up")
                    && self.agreed_master(i).as_ref() == Some(&master);
                ok.then(Instant::now)
                    .ok_or_else(|| format!("INFO replication: {r:?}"))
            },
        )
    }
}

// ---------------------------------------------------------------------------
// Through the proxy
// ---------------------------------------------------------------------------

/// Starts a proxy on `listen:` and `admin:` lines on fresh free ports followed by
/// `body` (the rest of the config), retrying with new ports if one was taken.
pub fn start_proxy(body: &str) -> Proxy {
    let mut last = String::new();
    for _ in 0..3 {
        let yaml = format!(
            "listen: 127.0.0.1:{}\nadmin: 127.0.0.1:{}\n{body}",
            free_port(),
            free_port()
        );
        match Proxy::try_start(&yaml) {
            Ok(p) => return p,
            Err(e) => last = e,
        }
    }
    panic!("ringproxy did not start (3 attempts). Last failure:\n{last}");
}

/// One replica of a node as `/topology` shows it (`nodes[].replicas[]`).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaView {
    pub addr: String,
    /// `up` or `down`.
    pub health: String,
    /// Reads may go to it (healthy, link to its primary up, lag within bounds).
    pub readable: bool,
}

/// The replicas `/topology` lists for `node` (panics when the field is missing).
pub fn replicas_of(t: &Topology, node: &str) -> Vec<ReplicaView> {
    let nodes = t.json["pools"][0]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let n = nodes
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("node {node} not in /topology: {t}"));
    n["replicas"]
        .as_array()
        .unwrap_or_else(|| panic!("/topology node {node} has no replicas array: {t}"))
        .iter()
        .map(|r| ReplicaView {
            addr: r["addr"].as_str().unwrap_or_default().to_string(),
            health: r["health"].as_str().unwrap_or_default().to_string(),
            readable: r["readable"]
                .as_bool()
                .unwrap_or_else(|| panic!("/topology replica without readable: {t}")),
        })
        .collect()
}

/// Polls `/topology` until `node`'s replica at `addr` is listed with `readable ==
/// want`; returns when that was seen.
pub fn wait_readable(admin: u16, node: &str, addr: &str, want: bool) -> Instant {
    let (_, at) = wait_topology(
        admin,
        &format!("{node} replica {addr} readable={want}"),
        HA_TIMEOUT,
        |t| {
            replicas_of(t, node)
                .iter()
                .any(|r| r.addr == addr && r.readable == want)
        },
    );
    at
}

/// Polls `/topology` until `node` lists a replica at `addr` (readable or not).
pub fn wait_listed(admin: u16, node: &str, addr: &str) {
    wait_topology(
        admin,
        &format!("{node} lists replica {addr}"),
        HA_TIMEOUT,
        |t| replicas_of(t, node).iter().any(|r| r.addr == addr),
    );
}

/// Polls `/topology` until `node`'s primary is `addr`; returns when that was seen.
pub fn wait_primary_shown(admin: u16, node: &str, addr: &str) -> Instant {
    let (_, at) = wait_topology(
        admin,
        &format!("/topology shows {node} at {addr}"),
        HA_TIMEOUT,
        |t| t.node(node).addr == addr,
    );
    at
}

/// `keys_per_node` keys `<prefix>:<i>` for each of `nodes` ring nodes named
/// `node0`, `node1`, ...: `out[i]` are keys of `node<i>`. The ring hashes node
/// names, not addresses, so the placement is read (with `ringproxy route`) off a
/// static config with the same names: it is the placement of any config with them.
pub fn keys_by_node(nodes: usize, prefix: &str, per_node: usize) -> Vec<Vec<String>> {
    let dir = TempDir::new("placement");
    let path = dir.join("placement.yaml");
    let mut y = String::from("listen: 127.0.0.1:1\nnodes:\n");
    for i in 0..nodes {
        y.push_str(&format!(
            "  - {{name: node{i}, addr: \"127.0.0.1:{}\"}}\n",
            i + 1
        ));
    }
    std::fs::write(&path, y).expect("write placement config");
    keys_per_node(&path, prefix, nodes, per_node)
}

/// The keys of `by_node` interleaved node by node, each with its node index.
pub fn interleave(by_node: &[Vec<String>]) -> KeyList {
    let longest = by_node.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| {
            by_node
                .iter()
                .enumerate()
                .filter_map(move |(n, keys)| Some((keys.get(i)?.as_str().into(), n)))
        })
        .collect()
}

/// How one node's requests fared after a fault at `fault`.
#[derive(Debug)]
pub struct Window {
    /// Requests of the node sent after the fault.
    pub total: usize,
    /// Of those, the ones that got an error (or a wrong reply).
    pub failed: usize,
    /// Failed requests per outcome label.
    pub by_outcome: BTreeMap<String, usize>,
    /// From the fault to the reply of the first request that succeeded after the
    /// last failed one (after the fault when none failed); `None`: never recovered.
    pub outage: Option<Duration>,
}

/// The [`Window`] of `node`'s requests in `report` (samples kept) after `fault`.
pub fn window(report: &Report, node: usize, fault: Instant) -> Window {
    let after: Vec<&Sample> = report
        .samples()
        .filter(|s| s.node == node && s.sent >= fault)
        .collect();
    let mut by_outcome = BTreeMap::new();
    for s in after.iter().filter(|s| s.outcome != Outcome::Ok) {
        *by_outcome.entry(s.outcome.label().to_string()).or_insert(0) += 1;
    }
    let last_bad = after
        .iter()
        .filter(|s| s.outcome != Outcome::Ok)
        .map(|s| s.sent)
        .max();
    let recovered = after
        .iter()
        .filter(|s| s.outcome == Outcome::Ok && last_bad.is_none_or(|b| s.sent > b))
        .map(|s| s.done)
        .min();
    Window {
        total: after.len(),
        failed: by_outcome.values().sum(),
        by_outcome,
        outage: recovered.map(|r| r - fault),
    }
}

/// Requests of nodes other than `node` in `report` that did not succeed, with up to
/// five examples.
pub fn others_failed(report: &Report, node: usize) -> (usize, Vec<String>) {
    let bad: Vec<&Sample> = report
        .samples()
        .filter(|s| s.node != node && s.outcome != Outcome::Ok)
        .collect();
    let examples = bad
        .iter()
        .take(5)
        .map(|s| format!("{} (node{}): {:?}", s.key, s.node, s.outcome))
        .collect();
    (bad.len(), examples)
}

// ---------------------------------------------------------------------------
// A pausable TCP relay (replication lag without a broken link)
// ---------------------------------------------------------------------------

/// A TCP relay on a free loopback port to `upstream`: a replica told to `REPLICAOF`
/// the relay replicates through it. [`Relay::pause`] stops moving bytes (both ways)
/// but keeps the connections open, so the replica's link stays `up` while it falls
/// behind: `master_last_io_seconds_ago` grows on the replica, `lag` on the primary,
/// and the offsets drift apart as the primary takes writes. Stopped on drop.
pub struct Relay {
    port: u16,
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// How often a relay thread looks at its pause and stop flags.
const RELAY_TICK: Duration = Duration::from_millis(20);

impl Relay {
    /// Starts relaying 127.0.0.1:`port()` to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        listener.set_nonblocking(true).expect("nonblocking relay");
        let (paused, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let flags = (paused.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            let (paused, stop) = flags;
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) {
                            pipe_both(client, up, &paused, &stop);
                        }
                    }
                    Err(_) => std::thread::sleep(RELAY_TICK),
                }
            }
        });
        Relay {
            port,
            paused,
            stop,
            accept: Some(accept),
        }
    }

    /// The relay's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops moving bytes (connections stay open).
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Moves bytes again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies `a -> b` and `b -> a` on two threads until EOF, an error or `stop`.
fn pipe_both(a: TcpStream, b: TcpStream, paused: &Arc<AtomicBool>, stop: &Arc<AtomicBool>) {
    for (from, to) in [(&a, &b), (&b, &a)] {
        let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let (paused, stop) = (paused.clone(), stop.clone());
        std::thread::spawn(move || pipe(from, to, &paused, &stop));
    }
}

/// Copies `from` to `to` while not paused, checking the flags every [`RELAY_TICK`].
fn pipe(mut from: TcpStream, mut to: TcpStream, paused: &AtomicBool, stop: &AtomicBool) {
    use std::io::{Read, Write};
    let _ = from.set_read_timeout(Some(RELAY_TICK));
    let mut buf = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if paused.load(Ordering::Relaxed) {
            std::thread::sleep(RELAY_TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}
