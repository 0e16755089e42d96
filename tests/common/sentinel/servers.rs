//! Reading a server directly (`INFO`, `ROLE`, `INFO commandstats`, replication
//! state) and [`Shard`]: a primary and its replicas.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{HA_TIMEOUT, PROBE_TIMEOUT};
use crate::common::conn::Conn;
use crate::common::redis_server::RedisServer;
use crate::common::resp::Reply;
use crate::common::util::*;

/// Options every server of a shard gets: an immediate diskless full sync (Redis 7
/// waits 5 s by default for more replicas to join one), and a PING to the replicas
/// every second (default 10 s), so an idle but healthy link never looks seconds old.
const SERVER_ARGS: &[&str] = &[
    "--repl-diskless-sync-delay",
    "0",
    "--repl-ping-replica-period",
    "1",
];

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

/// `INFO section` of `s` (panics when it does not answer). Asked again after a
/// closed connection: a sentinel reconfiguring a server (`REPLICAOF`) kills its
/// normal clients, this one included.
pub fn info(s: &RedisServer, section: &str) -> BTreeMap<String, String> {
    let mut last = String::new();
    for _ in 0..3 {
        match try_info(s.port(), section) {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{}: {last}", s.addr())
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
