//! Replica reads in cluster mode (`read_from: prefer_replica` on a `cluster:` pool;
//! a real 6-process Redis Cluster, see `common::redis_cluster`): reads go to the
//! slots' replicas (over `READONLY` connections), writes to the primaries, and a
//! replica killed while reads run fails no read (they go back to the primary).

mod common;

use common::load::{Load, Ops, Options};
use common::redis_cluster::*;
use common::*;
use std::time::Duration;

/// Fast health checks, so a killed replica is noticed quickly.
const READS_YAML: &str = "read_from: prefer_replica\nhealth:\n  interval: 100ms\n  timeout: 300ms\n  failures: 2\n  successes: 1\n";

/// `cmdstat_<cmd>` calls of node `i`.
fn calls(c: &RedisCluster, i: usize, cmd: &str) -> u64 {
    let text = c.nodes[i].cli(&["INFO", "commandstats"]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits until `/topology` shows every shard with a readable replica.
fn wait_replicas_readable(p: &Proxy) {
    admin::wait_topology(
        p.admin_port(),
        "every shard's replica readable",
        Duration::from_secs(20),
        |t| {
            let nodes = t.json["pools"][0]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            nodes.len() == 3
                && nodes.iter().all(|n| {
                    n["replicas"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x["readable"] == true))
                })
        },
    );
}

#[test]
fn reads_on_replicas_writes_on_primaries_and_a_killed_replica_fails_no_read() {
    let mut c = RedisCluster::start();
    let p = proxy_for(&c, READS_YAML);
    wait_replicas_readable(&p);
    let keys: Vec<String> = (0..60).map(|i| format!("rr:{i}")).collect();
    let mut conn = p.conn();
    for k in &keys {
        assert_eq!(conn.cmd(&["SET", k, k]), Reply::ok());
    }
    // Every key on its replica too before reading (WAIT only waits for the writes
    // of its own connection, so it cannot tell from a fixture connection).
    let primaries = c.primaries();
    wait_until(
        "the 60 keys on the replicas",
        Duration::from_secs(10),
        || {
            let on_replicas: u64 = (0..c.nodes.len())
                .filter(|i| !primaries.contains(i))
                .map(|i| {
                    c.nodes[i]
                        .cli(&["DBSIZE"])
                        .trim()
                        .parse::<u64>()
                        .unwrap_or(0)
                })
                .sum();
            on_replicas == 60
        },
    );
    let before: Vec<u64> = (0..c.nodes.len()).map(|i| calls(&c, i, "get")).collect();
    for k in &keys {
        assert_eq!(conn.cmd(&["GET", k]), Reply::bulk(k), "{k}");
    }
    let delta = |i: usize| calls(&c, i, "get") - before[i];
    let on_primaries: u64 = primaries.iter().map(|&i| delta(i)).sum();
    let on_replicas: u64 = (0..c.nodes.len())
        .filter(|i| !primaries.contains(i))
        .map(delta)
        .sum();
    eprintln!("CLUSTER-REPLICAS: 60 GETs -> primaries {on_primaries}, replicas {on_replicas}");
    assert_eq!((on_primaries, on_replicas), (0, 60));
    let sets: u64 = primaries.iter().map(|&i| calls(&c, i, "set")).sum();
    assert_eq!(sets, 60, "every SET on a primary");

    // SETs and GETs in turn on other keys (a GET may see any value the load wrote,
    // replicas lag): a killed replica fails none of them.
    let opts = Options {
        ops: Ops::Alternate,
        ..steady()
    };
    let readers: Vec<String> = (0..60).map(|i| format!("rl:{i}")).collect();
    let load = Load::start(
        p.port(),
        clients(&readers, 4),
        &Options {
            keys_per_round: 8,
            ..opts
        },
    );
    load.wait_rounds(20);
    let victim = c.replica_of(primaries[0]);
    c.nodes[victim].kill();
    load.wait_rounds(40);
    let report = load.finish();
    report.assert_complete();
    eprintln!(
        "CLUSTER-REPLICAS: replica killed under load: {} requests, {} failed",
        report.total(|l| l.received),
        report.total(|l| l.failed())
    );
    assert_eq!(report.total(|l| l.failed()), 0, "{}", report.notes());
}
