//! Shards that outlive their primary: [`SentinelGroup`] (shards watched by three real
//! sentinels, `redis-server <conf> --sentinel`) and, in the submodules, [`Shard`] (a
//! `redis-server` primary with replicas started with `--replicaof`) with what the
//! tests read off the servers directly (`INFO` sections, `ROLE`, per-command call
//! counts: [`cmdstat`]), the proxy side ([`start_proxy`], `/topology` replicas, the
//! outage [`window`] of a load), and a pausable [`Relay`] that makes a replica lag
//! without breaking its link.
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

mod relay;
mod servers;
mod via_proxy;

pub use relay::*;
pub use servers::*;
pub use via_proxy::*;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::redis_server::RedisServer;
use super::resp::Reply;
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
/// Timeout of one command to a server or sentinel from the fixture's probes.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// Sentinel process
// ---------------------------------------------------------------------------

/// One `redis-server <conf> --sentinel` on a free port; killed on drop.
pub struct Sentinel {
    child: Option<Child>,
    port: u16,
    /// Its TLS port, when started with [`SentinelTls`] (the plain port stays, for
    /// the fixture's own checks and the sentinels' talk to each other).
    tls_port: Option<u16>,
    /// Its `requirepass` (sentinels use it with each other too), sent with `AUTH`.
    password: Option<String>,
    dir: TempDir,
}

impl Sentinel {
    /// Starts a sentinel monitoring `shards` (retrying on a taken port), requiring
    /// `password` when given, and applies the fast `SENTINEL DEBUG` periods.
    fn start(shards: &[Shard], password: Option<&str>, tls: Option<&SentinelTls>) -> Sentinel {
        let mut last = String::new();
        for _ in 0..5 {
            match Sentinel::try_start(shards, password, tls) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("sentinel did not start after 5 attempts: {last}");
    }

    fn try_start(
        shards: &[Shard],
        password: Option<&str>,
        tls: Option<&SentinelTls>,
    ) -> Result<Sentinel, String> {
        let dir = TempDir::new("sentinel");
        let port = free_port();
        let conf = dir.join("sentinel.conf");
        let mut text = sentinel_conf(port, &dir, shards);
        if let Some(pw) = password {
            text.push_str(&format!("requirepass {pw}\n"));
        }
        let tls_port = tls.map(|t| {
            let tp = free_port();
            text.push_str(&format!(
                "tls-port {tp}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n",
                t.cert.display(),
                t.key.display(),
                t.ca.display()
            ));
            tp
        });
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
            tls_port,
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

    /// `"127.0.0.1:<tls port>"`, when it has one.
    pub fn tls_addr(&self) -> Option<String> {
        self.tls_port.map(|p| format!("127.0.0.1:{p}"))
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

/// The certificate files a TLS sentinel listens with.
pub struct SentinelTls {
    /// PEM certificate.
    pub cert: std::path::PathBuf,
    /// Its key.
    pub key: std::path::PathBuf,
    /// The CA that signed it.
    pub ca: std::path::PathBuf,
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
        SentinelGroup::start_full(shards, replicas, password, None)
    }

    /// Same, the sentinels also listening with TLS (see [`Sentinel::tls_addr`]).
    pub fn start_tls(shards: usize, replicas: usize, tls: &SentinelTls) -> SentinelGroup {
        SentinelGroup::start_full(shards, replicas, None, Some(tls))
    }

    fn start_full(
        shards: usize,
        replicas: usize,
        password: Option<&str>,
        tls: Option<&SentinelTls>,
    ) -> SentinelGroup {
        assert!(replicas > 0, "a failover needs a replica");
        let shards: Vec<Shard> = (0..shards)
            .map(|i| Shard::start(&format!("m{i}"), replicas))
            .collect();
        let sentinels = (0..SENTINELS)
            .map(|_| Sentinel::start(&shards, password, tls))
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

    /// The sentinels' TLS addresses (started with [`SentinelGroup::start_tls`]).
    pub fn sentinel_tls_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .filter_map(Sentinel::tls_addr)
            .collect()
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

    /// `SENTINEL FAILOVER` of shard `i` whose primary is `old`, asked again when a
    /// failover the sentinels accepted did not complete (on a busy machine one can
    /// abort: a promotion slower than the failover timeout); returns when the
    /// first was accepted, and the new primary with when the sentinels agreed.
    pub fn failover_to_new(&self, i: usize, old: &str) -> (Instant, String, Instant) {
        let first = self.failover(i);
        let deadline = Instant::now() + HA_TIMEOUT;
        loop {
            let retry = Instant::now() + FAILOVER_TIMEOUT * 2 + Duration::from_secs(1);
            while Instant::now() < retry {
                if let Some(a) = self.agreed_master(i).filter(|a| a != old)
                    && try_role_is_master(&a)
                {
                    return (first, a, Instant::now());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(
                Instant::now() < deadline,
                "no failover of m{i} within {HA_TIMEOUT:?}"
            );
            eprintln!("SENTINEL: failover of m{i} did not complete; asked again");
            self.failover(i);
        }
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

/// Whether the server at `host:port` says it is a master.
fn try_role_is_master(addr: &str) -> bool {
    let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
    try_role(port.unwrap_or(0)).is_ok_and(|r| r == "master")
}
