//! [`RedisCluster`]: a real Redis Cluster of `redis-server` processes (3 primaries
//! with one replica each) on free loopback ports, created with `redis-cli --cluster
//! create`, and the operations the tests drive on it: reading who serves a slot,
//! migrating slots with keys (SETSLOT IMPORTING/MIGRATING + MIGRATE), failovers.
//! (Not [`super::cluster::Cluster`], which is plain backends behind a proxy.)

#![allow(dead_code)]

use super::admin;
use super::load::{Client, Ops, Options, Report};
use super::proxy::Proxy;
use super::redis_server::RedisServer;
use super::resp::Reply;
use super::util::*;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The cluster's node timeout: failure detection and failover take about 2-3 times it.
pub const NODE_TIMEOUT_MS: u64 = 1000;
/// Longest wait for the cluster to agree on a state.
pub const SETTLE: Duration = Duration::from_secs(20);

/// A primary's address and slot ranges, as one node sees them.
type PrimaryView = (String, Vec<(u16, u16)>);

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    pub primary: bool,
    pub failed: bool,
    /// The primary's id, for a replica.
    pub primary_id: Option<String>,
    /// Slot ranges served (inclusive), for a primary.
    pub slots: Vec<(u16, u16)>,
}

/// A running cluster; `nodes[i]` stays at its index whatever its role becomes.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// 6 nodes, 3 primaries with one replica each, every node seeing `cluster_state:ok`
    /// and the same slot map.
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..6).map(|_| cluster_node()).collect();
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr()).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = RedisCluster { nodes };
        c.wait_settled();
        c
    }

    /// Starts an empty node, joins it (`CLUSTER MEET`) and returns its index once
    /// every node lists it and it lists every node: a primary with no slot yet.
    pub fn add_primary(&mut self) -> usize {
        let bus = free_port();
        let node = cluster_node_on(bus);
        let (port, bus) = (node.port().to_string(), bus.to_string());
        let meet = self.nodes[0].cmd(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus]);
        assert_eq!(meet, Reply::ok());
        self.nodes.push(node);
        let i = self.nodes.len() - 1;
        let addr = self.nodes[i].addr();
        wait_until(
            "every node and the new one to know each other",
            SETTLE,
            || {
                let running: Vec<usize> = self.running().collect();
                let knows_all = self.nodes_seen_by(i).len() >= running.len();
                knows_all
                    && running.iter().all(|&j| {
                        self.nodes_seen_by(j)
                            .iter()
                            .any(|n| n.addr == addr && n.primary)
                    })
            },
        );
        // It serves nothing until it knows who serves what (cluster_state:ok).
        self.wait_settled();
        i
    }

    /// Removes node `i`, which must serve no slot (a primary whose slots moved away
    /// may have turned itself into a replica), as `redis-cli --cluster del-node`
    /// does: `CLUSTER FORGET` on every other node, then its shutdown.
    pub fn remove_node(&mut self, i: usize) {
        let id = self.id_of(i);
        for j in self.running().filter(|&j| j != i).collect::<Vec<_>>() {
            assert_eq!(self.nodes[j].cmd(&["CLUSTER", "FORGET", &id]), Reply::ok());
        }
        self.nodes[i].stop();
    }

    /// Seeds for a proxy config: every node's address, YAML flow list.
    pub fn seeds_yaml(&self) -> String {
        let a: Vec<String> = self.nodes.iter().map(|n| n.addr()).collect();
        format!("[{}]", a.join(", "))
    }

    /// Waits until every running node says `cluster_state:ok` and all of them list
    /// the same primaries with the same slots.
    pub fn wait_settled(&self) {
        wait_until("the cluster to settle", SETTLE, || {
            let views: Vec<Vec<PrimaryView>> = self
                .running()
                .map(|i| {
                    let mut p: Vec<PrimaryView> = self
                        .nodes_seen_by(i)
                        .into_iter()
                        .filter(|n| n.primary && !n.failed && !n.slots.is_empty())
                        .map(|n| (n.addr, n.slots))
                        .collect();
                    p.sort();
                    p
                })
                .collect();
            let ok = self.running().all(|i| {
                let info = self.nodes[i].cli(&["CLUSTER", "INFO"]);
                info.lines().any(|l| l.trim() == "cluster_state:ok")
            });
            ok && views.windows(2).all(|w| w[0] == w[1])
        });
    }

    /// Indexes of the nodes whose process runs (answers PING).
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| answers_ping(self.nodes[i].port()))
    }

    /// `CLUSTER NODES` as node `i` sees it.
    pub fn nodes_seen_by(&self, i: usize) -> Vec<NodeLine> {
        let text = match self.nodes[i].cmd(&["CLUSTER", "NODES"]) {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            Reply::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("CLUSTER NODES: {other}"),
        };
        text.lines().filter_map(parse_node_line).collect()
    }

    /// The index of the node at `addr`.
    pub fn index_of(&self, addr: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.addr() == addr)
            .unwrap_or_else(|| panic!("no node at {addr}"))
    }

    /// The primary serving `slot` (index), as a running node sees it.
    pub fn owner_of_slot(&self, slot: u16) -> usize {
        let i = self.running().next().expect("a running node");
        let owner = self
            .nodes_seen_by(i)
            .into_iter()
            .find(|n| {
                n.primary && !n.failed && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
            })
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"));
        self.index_of(&owner.addr)
    }

    /// Indexes of the primaries that serve slots, in node order.
    pub fn primaries(&self) -> Vec<usize> {
        let i = self.running().next().expect("a running node");
        let mut p: Vec<usize> = self
            .nodes_seen_by(i)
            .into_iter()
            .filter(|n| n.primary && !n.failed && !n.slots.is_empty())
            .map(|n| self.index_of(&n.addr))
            .collect();
        p.sort();
        p
    }

    /// The replica (index) of primary `p`.
    pub fn replica_of(&self, p: usize) -> usize {
        let seen = self.nodes_seen_by(p);
        let id = &seen
            .iter()
            .find(|n| n.addr == self.nodes[p].addr())
            .expect("self")
            .id;
        let r = seen
            .iter()
            .find(|n| n.primary_id.as_ref() == Some(id) && !n.failed)
            .unwrap_or_else(|| panic!("primary {p} has no replica"));
        self.index_of(&r.addr)
    }

    /// The node id of node `i`.
    pub fn id_of(&self, i: usize) -> String {
        match self.nodes[i].cmd(&["CLUSTER", "MYID"]) {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("CLUSTER MYID: {other}"),
        }
    }

    /// `CLUSTER KEYSLOT key` on a running node.
    pub fn keyslot(&self, key: &str) -> u16 {
        let i = self.running().next().expect("a running node");
        self.nodes[i].cmd(&["CLUSTER", "KEYSLOT", key]).int() as u16
    }

    /// Moves `slot` with its keys from primary `from` to primary `to` the way
    /// `redis-cli --cluster reshard` does, calling `between` after each batch of
    /// keys migrated (while the slot is half moved, so clients meet ASK).
    pub fn migrate_slot(&self, slot: u16, from: usize, to: usize, mut between: impl FnMut()) {
        let (src, dst) = (&self.nodes[from], &self.nodes[to]);
        let (src_id, dst_id) = (self.id_of(from), self.id_of(to));
        let s = slot.to_string();
        assert_eq!(
            dst.cmd(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]),
            Reply::ok()
        );
        assert_eq!(
            src.cmd(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]),
            Reply::ok()
        );
        let port = dst.port().to_string();
        loop {
            let keys = src.cmd(&["CLUSTER", "GETKEYSINSLOT", &s, "5"]);
            let keys: Vec<String> = keys
                .items()
                .iter()
                .map(|k| String::from_utf8_lossy(k.bytes()).into_owned())
                .collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            let r = src.cmd(&args);
            assert_eq!(r, Reply::ok(), "MIGRATE of slot {slot}");
            between();
        }
        // As redis-cli does: the importing node first, then the source, then the rest.
        // A source that gave away its last slot turns itself into a replica of the
        // importing node (Redis 7's replica migration): it refuses SETSLOT then.
        for i in [to, from].into_iter().chain(self.primaries()) {
            let r = self.nodes[i].cmd(&["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]);
            let demoted =
                i == from && r == Reply::Error("ERR Please use SETSLOT only with masters.".into());
            assert!(r == Reply::ok() || demoted, "SETSLOT NODE on node {i}: {r}");
        }
    }
}

/// One cluster-enabled redis-server (its own bus port: by default port + 10000,
/// which may be taken or past 65535).
fn cluster_node() -> RedisServer {
    cluster_node_on(free_port())
}

/// [`cluster_node`] with its bus on port `bus`.
fn cluster_node_on(bus: u16) -> RedisServer {
    let timeout = NODE_TIMEOUT_MS.to_string();
    let bus = bus.to_string();
    RedisServer::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        timeout.as_str(),
        // A replica may be promoted however stale it is (the tests kill primaries).
        "--cluster-replica-validity-factor",
        "0",
        // Slots of a failed primary fail alone, not the whole cluster.
        "--cluster-require-full-coverage",
        "no",
        "--cluster-port",
        bus.as_str(),
    ])
}

/// `id addr@cport flags primary ping pong epoch link slots...`
fn parse_node_line(line: &str) -> Option<NodeLine> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return None;
    }
    let addr = f[1].split('@').next()?.to_string();
    let flags = f[2];
    let slots = f[8..]
        .iter()
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|n| (n, n)),
        })
        .collect();
    Some(NodeLine {
        id: f[0].to_string(),
        addr,
        primary: flags.contains("master"),
        failed: flags.contains("fail") && !flags.contains("fail?"),
        primary_id: (f[3] != "-").then(|| f[3].to_string()),
        slots,
    })
}

// ---------------------------------------------------------------------------
// What the cluster-mode tests share (tests/cluster_mode.rs, tests/cluster_failover.rs).

/// A proxy in cluster mode over `c`, once it has read the slot map.
pub fn proxy_for(c: &RedisCluster, extra: &str) -> Proxy {
    let (port, admin) = (free_port(), free_port());
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin}\ncluster:\n  seeds: {}\n  refresh_interval: 1s\n{extra}",
        c.seeds_yaml()
    );
    let p = Proxy::start(&yaml);
    let first_map = |s: &admin::Scrape| s.one("ringproxy_cluster_slot_map_version", &[]) >= 1.0;
    admin::scrape_until(
        p.admin_port(),
        Duration::from_secs(10),
        "the first slot map",
        first_map,
    );
    p
}

/// A metric of the proxy, summed over the series whose labels include `labels`.
pub fn metric(p: &Proxy, name: &str, labels: &[(&str, &str)]) -> f64 {
    admin::scrape(p.admin_port()).sum(name, labels)
}

/// `ringproxy_cluster_redirects_total` of `kind` (moved, ask, tryagain).
pub fn redirects(p: &Proxy, kind: &str) -> f64 {
    metric(p, "ringproxy_cluster_redirects_total", &[("kind", kind)])
}

/// The value of `key` read on the primary serving its slot (bypassing the proxy).
pub fn on_owner(c: &RedisCluster, key: &str) -> Reply {
    let owner = c.owner_of_slot(c.keyslot(key));
    c.nodes[owner].cmd(&["GET", key])
}

/// Load clients over `keys`, one key list each, pipelined SET then GET of each key
/// (a GET that misses its SET's value is a lost write).
pub fn clients(keys: &[String], n: usize) -> Vec<Client> {
    (0..n)
        .map(|i| Client {
            name: format!("c{i}"),
            keys: keys
                .iter()
                .skip(i)
                .step_by(n)
                .map(|k| (Arc::<str>::from(k.as_str()), 0))
                .collect(),
            offset: 0,
        })
        .collect()
}

/// A steady pipelined load: 8 keys per round, SET then GET of each, 2 ms apart.
pub fn steady() -> Options {
    Options {
        keys_per_round: 8,
        ops: Ops::SetThenGet,
        pause: Duration::from_millis(2),
        max_time: Duration::from_secs(40),
        reply_timeout: Duration::from_secs(5),
        keep_samples: true,
        ..Options::default()
    }
}

/// Requests that failed or lost their write.
pub fn failures(r: &Report) -> usize {
    r.total(|l| l.failed() + l.count("miss"))
}
