//! The proxy side: starting a proxy on a config body, `/topology` replicas, key
//! placement by node name, and the outage [`Window`] of a load run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::HA_TIMEOUT;
use crate::common::admin::{Topology, wait_topology};
use crate::common::load::{KeyList, Outcome, Report, Sample};
use crate::common::proxy::Proxy;
use crate::common::route::keys_per_node;
use crate::common::util::*;

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
