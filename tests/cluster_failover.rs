//! Failovers of a real Redis Cluster under a steady pipelined load through the
//! proxy in cluster mode: a manual `CLUSTER FAILOVER` (no request fails) and a
//! killed primary (only its own shard fails, until its replica is promoted and the
//! proxy has read the new slot map).

mod common;

use common::load::{Load, Options, Outcome, Report, Sample};
use common::redis_cluster::*;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn failovers_under_load_fail_only_the_failed_shard() {
    let mut c = RedisCluster::start();
    // A manual failover pauses writes on the old primary until the replica took
    // over: requests wait (within the request timeout), then follow MOVED.
    let p = proxy_for(&c, "timeouts:\n  request: 6s\n");
    let keys: Vec<String> = (0..120).map(|i| format!("f:{i}")).collect();
    let shard_of = |c: &RedisCluster, k: &str| c.owner_of_slot(c.keyslot(k));
    let owners: Vec<usize> = keys.iter().map(|k| shard_of(&c, k)).collect();
    let mut load_clients = clients(&keys, 4);
    for cl in &mut load_clients {
        for (k, node) in cl.keys.iter_mut() {
            *node = owners[keys.iter().position(|x| **x == **k).unwrap()];
        }
    }
    let opts = Options {
        reply_timeout: Duration::from_secs(10),
        ..steady()
    };
    let load = Load::start(p.port(), load_clients, &opts);
    load.wait_rounds(20);
    // A manual failover: the replica takes over with no request failing.
    let primaries = c.primaries();
    let (first, second) = (primaries[0], primaries[1]);
    let replica = c.replica_of(first);
    let failover_at = Instant::now();
    assert_eq!(c.nodes[replica].cmd(&["CLUSTER", "FAILOVER"]), Reply::ok());
    wait_until(
        "the replica to be promoted",
        Duration::from_secs(15),
        || c.primaries().contains(&replica),
    );
    c.wait_settled();
    load.wait_rounds(30);
    let manual_took = failover_at.elapsed();
    // A killed primary: its replica is promoted by the cluster; keys of other shards
    // never fail.
    let successor = c.replica_of(second);
    let killed_at = Instant::now();
    c.nodes[second].kill();
    wait_until(
        "the killed primary's replica to take over",
        Duration::from_secs(20),
        || c.primaries().contains(&successor),
    );
    c.wait_settled();
    let promoted = killed_at.elapsed();
    // The proxy follows within a refresh: the shard's keys work again.
    let probe = keys.iter().find(|k| shard_of(&c, k) == successor).unwrap();
    let mut conn = p.conn();
    wait_until(
        "the proxy to reach the promoted replica",
        Duration::from_secs(5),
        || conn.cmd(&["SET", probe, "probe"]) == Reply::ok(),
    );
    let recovered = killed_at.elapsed();
    load.wait_rounds(40);
    let report = load.finish();
    report.assert_complete();
    let f = Failures::of(&report, second, killed_at);
    eprintln!(
        "failed by (shard, answered before the kill, outcome): {:?}; shards {first} (manual failover), {second} (killed)",
        f.by
    );
    eprintln!(
        "manual failover took {manual_took:?} with {} failed requests; killed primary: replica promoted after {promoted:?}, proxy through after {recovered:?}, {} failed requests in its shard over {:?}, {} elsewhere; {} requests in all",
        f.before_kill,
        f.in_shard,
        f.window,
        f.elsewhere.len(),
        report.total(|l| l.received)
    );
    assert_eq!(
        f.before_kill,
        0,
        "manual failover failed: {}",
        report.notes()
    );
    assert!(
        f.elsewhere.is_empty(),
        "other shards failed: {:?}",
        f.elsewhere
    );
    // The failed shard is back: new writes reach the promoted replica.
    for k in keys.iter().filter(|k| shard_of(&c, k) == successor) {
        assert_eq!(conn.cmd(&["SET", k, "after"]), Reply::ok());
        assert_eq!(c.nodes[successor].cmd(&["GET", k]), Reply::bulk("after"));
    }
}

/// What failed in a failover run.
struct Failures<'a> {
    /// Failed requests answered before the kill (the manual failover's share).
    before_kill: usize,
    /// Failed requests of the killed primary's shard.
    in_shard: usize,
    /// From the first to the last of those.
    window: Duration,
    /// Failed requests of other shards (at most 5 kept).
    elsewhere: Vec<&'a Sample>,
    /// Counts by (shard, answered before the kill, outcome).
    by: std::collections::BTreeMap<(usize, bool, String), usize>,
}

impl Failures<'_> {
    fn of(report: &Report, killed: usize, killed_at: Instant) -> Failures<'_> {
        let failed: Vec<&Sample> = report
            .samples()
            .filter(|s| s.outcome != Outcome::Ok)
            .collect();
        let shard: Vec<&&Sample> = failed.iter().filter(|s| s.node == killed).collect();
        let window = match (shard.first(), shard.last()) {
            (Some(a), Some(b)) => b.done.saturating_duration_since(a.sent),
            _ => Duration::ZERO,
        };
        let mut by = std::collections::BTreeMap::new();
        for s in &failed {
            let key = (s.node, s.done < killed_at, s.outcome.label().to_string());
            *by.entry(key).or_default() += 1;
        }
        Failures {
            before_kill: failed.iter().filter(|s| s.done < killed_at).count(),
            in_shard: shard.len(),
            window,
            elsewhere: failed
                .iter()
                .filter(|s| s.node != killed)
                .take(5)
                .copied()
                .collect(),
            by,
        }
    }
}
