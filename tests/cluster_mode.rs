//! Cluster mode against a real Redis Cluster (6 redis-server processes: 3 primaries
//! with a replica each, see `common::redis_cluster`): keys land on their slot's
//! owner, split and multi-key commands, CROSSSLOT compared with a real node,
//! MULTI/EXEC, SCAN; live resharding and failovers under a steady pipelined load.

mod common;

use common::load::{Client, Load, Ops, Options, Report};
use common::redis_cluster::RedisCluster;
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A proxy in cluster mode over `c`, once it has read the slot map.
fn proxy_for(c: &RedisCluster, extra: &str) -> Proxy {
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

fn metric(p: &Proxy, name: &str, labels: &[(&str, &str)]) -> f64 {
    admin::scrape(p.admin_port()).sum(name, labels)
}

fn redirects(p: &Proxy, kind: &str) -> f64 {
    metric(p, "ringproxy_cluster_redirects_total", &[("kind", kind)])
}

/// The value of `key` read on the primary serving its slot (bypassing the proxy).
fn on_owner(c: &RedisCluster, key: &str) -> Reply {
    let owner = c.owner_of_slot(c.keyslot(key));
    c.nodes[owner].cmd(&["GET", key])
}

#[test]
fn keys_commands_and_errors_follow_redis_cluster() {
    let c = RedisCluster::start();
    let p = proxy_for(&c, "");
    let mut conn = p.conn();
    // Every key lands on its slot's owner; hash tags keep keys together.
    let keys: Vec<String> = (0..300)
        .map(|i| {
            if i % 3 == 0 {
                format!("{{tag{}}}:k{i}", i % 7)
            } else {
                format!("key:{i}")
            }
        })
        .collect();
    for k in &keys {
        assert_eq!(conn.cmd(&["SET", k, k]), Reply::ok());
    }
    for k in &keys {
        assert_eq!(on_owner(&c, k), Reply::bulk(k), "{k} not on its slot owner");
    }
    let spread: BTreeSet<usize> = keys.iter().map(|k| c.owner_of_slot(c.keyslot(k))).collect();
    assert_eq!(spread.len(), 3, "keys should reach every primary");
    // Split commands across slots and primaries, merged in request order.
    let mset: Vec<String> = ["MSET"]
        .into_iter()
        .map(String::from)
        .chain((0..20).flat_map(|i| [format!("m{i}"), format!("v{i}")]))
        .collect();
    assert_eq!(conn.cmd(&mset), Reply::ok());
    let mut mget = vec!["MGET".to_string()];
    mget.extend((0..20).map(|i| format!("m{i}")));
    mget.push("missing".into());
    let mut want: Vec<Reply> = (0..20).map(|i| Reply::bulk(format!("v{i}"))).collect();
    want.push(Reply::Nil);
    assert_eq!(conn.cmd(&mget), Reply::Array(want));
    let mut exists = vec!["EXISTS".to_string()];
    exists.extend((0..20).map(|i| format!("m{i}")));
    assert_eq!(conn.cmd(&exists), Reply::Int(20));
    // Keys of two slots in a command that cannot be split: Redis Cluster's own text,
    // whether the slots are on two primaries (the proxy answers) or one (the node does).
    let (a, b) = two_keys(&c, false);
    let (d, e) = two_keys(&c, true);
    for (x, y) in [(&a, &b), (&d, &e)] {
        let direct = c.nodes[0].cmd(&["SINTERSTORE", "{x}dst", x, y]);
        assert!(direct.err_text().starts_with("CROSSSLOT"), "{direct}");
        let through = conn.cmd(&["SINTERSTORE", x, x, y]);
        assert_eq!(through, c.nodes[0].cmd(&["SINTERSTORE", x, x, y]));
        assert_eq!(
            through.err_text(),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
    }
    // Same slot: forwarded.
    conn.cmd(&["SADD", "{s}a", "1", "2"]);
    conn.cmd(&["SADD", "{s}b", "2", "3"]);
    assert_eq!(
        conn.cmd(&["SINTERSTORE", "{s}d", "{s}a", "{s}b"]),
        Reply::Int(1)
    );
    // MULTI/EXEC pinned to the slot owner.
    assert_eq!(conn.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(
        conn.cmd(&["SET", "{u}n", "1"]),
        Reply::Status("QUEUED".into())
    );
    assert_eq!(conn.cmd(&["INCR", "{u}n"]), Reply::Status("QUEUED".into()));
    assert_eq!(
        conn.cmd(&["EXEC"]),
        Reply::Array(vec![Reply::ok(), Reply::Int(2)])
    );
    assert_eq!(on_owner(&c, "{u}n"), Reply::bulk("2"));
    // SCAN walks every primary; DBSIZE sums them.
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..10_000 {
        let r = conn.cmd(&["SCAN", &cursor, "COUNT", "50"]);
        cursor = String::from_utf8_lossy(r.items()[0].bytes()).into_owned();
        seen.extend(r.items()[1].items().iter().map(|k| k.bytes().to_vec()));
        if cursor == "0" {
            break;
        }
    }
    let total: i64 = c.primaries().iter().map(|&i| c.nodes[i].dbsize()).sum();
    assert_eq!(seen.len() as i64, total);
    assert_eq!(conn.cmd(&["DBSIZE"]), Reply::Int(total));
    for k in &keys {
        assert!(seen.contains(k.as_bytes()), "SCAN missed {k}");
    }
    // Pub/sub: PUBLISH reaches subscribers wherever the cluster propagates it;
    // SSUBSCRIBE/SPUBLISH go to the channel's slot owner.
    let mut sub = p.conn();
    sub.cmd(&["SUBSCRIBE", "news"]);
    sub.cmd(&["SSUBSCRIBE", "{s}chan"]);
    assert_eq!(conn.cmd(&["PUBLISH", "news", "hello"]), Reply::Int(1));
    assert_eq!(
        sub.read().unwrap(),
        Reply::bulks(&["message", "news", "hello"])
    );
    assert_eq!(conn.cmd(&["SPUBLISH", "{s}chan", "sharded"]), Reply::Int(1));
    assert_eq!(
        sub.read().unwrap(),
        Reply::bulks(&["smessage", "{s}chan", "sharded"])
    );
    // A reload of a cluster pool keeps the slot map and the keys where they are.
    let yaml = std::fs::read_to_string(p.config_path()).unwrap();
    p.write_config(&yaml.replace("refresh_interval: 1s", "refresh_interval: 2s"));
    admin::wait_topology(p.admin_port(), "the reload", Duration::from_secs(10), |t| {
        t.version >= 2
    });
    for k in keys.iter().take(30) {
        assert_eq!(conn.cmd(&["GET", k]), Reply::bulk(k));
    }
    // CLUSTER subcommands a plain client sends get a clear refusal.
    assert!(
        conn.cmd(&["CLUSTER", "NODES"])
            .err_text()
            .contains("not a Redis Cluster")
    );
    // /topology shows the shards with their slots.
    let topo: serde_json::Value =
        serde_json::from_str(&admin::get(p.admin_port(), "/topology")).unwrap();
    let view = &topo["pools"][0]["cluster"];
    assert_eq!(view["slots_covered"], 16384, "{view}");
    assert_eq!(view["shards"].as_array().map(Vec::len), Some(3), "{view}");
    assert_eq!(redirects(&p, "moved"), 0.0);
}

/// Two keys of different slots: served by one primary (`same_node`) or by two.
fn two_keys(c: &RedisCluster, same_node: bool) -> (String, String) {
    let first = "a0".to_string();
    let owner = c.owner_of_slot(c.keyslot(&first));
    let second = (1..1000)
        .map(|i| format!("a{i}"))
        .find(|k| {
            let o = c.owner_of_slot(c.keyslot(k));
            c.keyslot(k) != c.keyslot(&first) && (o == owner) == same_node
        })
        .expect("a second key");
    (first, second)
}

/// Load clients over `keys`, one key list each, pipelined SET then GET of each key
/// (a GET that misses its SET's value is a lost write).
fn clients(keys: &[String], n: usize) -> Vec<Client> {
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

fn steady() -> Options {
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

fn failures(r: &Report) -> usize {
    r.total(|l| l.failed() + l.count("miss"))
}

#[test]
fn live_resharding_under_load_loses_nothing() {
    let c = RedisCluster::start();
    let p = proxy_for(&c, "");
    // Three tags whose keys move (many keys per slot: several MIGRATE batches, so the
    // load meets the half-moved slot), plus keys everywhere else.
    let tags = ["{mv1}", "{mv2}", "{mv3}"];
    let mut keys: Vec<String> = tags
        .iter()
        .flat_map(|t| (0..30).map(move |i| format!("{t}:{i}")))
        .collect();
    keys.extend((0..60).map(|i| format!("other:{i}")));
    let load = Load::start(p.port(), clients(&keys, 4), &steady());
    load.wait_rounds(20);
    let started = Instant::now();
    for t in tags {
        let slot = c.keyslot(t);
        let from = c.owner_of_slot(slot);
        let to = *c.primaries().iter().find(|&&i| i != from).unwrap();
        c.migrate_slot(slot, from, to, || load.wait_rounds(4));
        load.wait_rounds(8);
        assert_eq!(c.owner_of_slot(slot), to);
    }
    let took = started.elapsed();
    load.wait_rounds(20);
    let report = load.finish();
    report.assert_complete();
    let (moved, ask) = (redirects(&p, "moved"), redirects(&p, "ask"));
    eprintln!(
        "resharding of 3 slots with 90 keys took {took:?}: {} requests, {} failed, {moved} MOVED, {ask} ASK followed",
        report.total(|l| l.received),
        failures(&report)
    );
    assert_eq!(failures(&report), 0, "{}", report.notes());
    assert!(moved >= 1.0 && ask >= 1.0, "moved {moved}, ask {ask}");
    // No write lost: every key's last value is on its new owner.
    let mut conn = p.conn();
    for k in &keys {
        let direct = on_owner(&c, k);
        assert!(
            direct.bytes().starts_with(format!("{k}@").as_bytes()),
            "{k}: {direct}"
        );
        assert_eq!(conn.cmd(&["GET", k]), direct);
    }
}

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
    let failed: Vec<&common::load::Sample> = report
        .samples()
        .filter(|s| s.outcome != common::load::Outcome::Ok)
        .collect();
    let (in_shard, elsewhere): (Vec<&common::load::Sample>, Vec<_>) =
        failed.iter().partition(|s| s.node == second);
    let window = match (in_shard.first(), in_shard.last()) {
        (Some(a), Some(b)) => b.done.saturating_duration_since(a.sent),
        _ => Duration::ZERO,
    };
    // Answered before the kill: the manual failover's share.
    let before_kill = failed.iter().filter(|s| s.done < killed_at).count();
    let mut by: std::collections::BTreeMap<(usize, bool, String), usize> = Default::default();
    for s in &failed {
        *by.entry((s.node, s.done < killed_at, s.outcome.label().to_string()))
            .or_default() += 1;
    }
    eprintln!(
        "failed by (shard, answered before the kill, outcome): {by:?}; shards {first} (manual failover), {second} (killed)"
    );
    eprintln!(
        "manual failover took {manual_took:?} with {before_kill} failed requests; killed primary: replica promoted after {promoted:?}, proxy through after {recovered:?}, {} failed requests in its shard over {window:?}, {} elsewhere; {} requests in all",
        in_shard.len(),
        elsewhere.len(),
        report.total(|l| l.received)
    );
    assert_eq!(
        before_kill,
        0,
        "manual failover failed requests: {}",
        report.notes()
    );
    assert!(
        elsewhere.is_empty(),
        "other shards failed: {:?}",
        &elsewhere[..elsewhere.len().min(5)]
    );
    // The failed shard is back: new writes reach the promoted replica.
    for k in keys.iter().filter(|k| shard_of(&c, k) == successor) {
        assert_eq!(conn.cmd(&["SET", k, "after"]), Reply::ok());
        assert_eq!(c.nodes[successor].cmd(&["GET", k]), Reply::bulk("after"));
    }
}

/// Keeps the cluster benchmark from rotting: `tests/bench/cluster_bench.py --smoke`
/// (tiny counts) against the test build; nothing is timed here, the script fails
/// if a step or a redis-benchmark run fails.
#[test]
fn cluster_benchmark_smoke_run_completes() {
    let out = std::process::Command::new("python3")
        .args(["tests/bench/cluster_bench.py", "--smoke", "--binary"])
        .arg(env!("CARGO_BIN_EXE_ringproxy"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs the benchmark");
    assert!(
        out.status.success(),
        "cluster_bench.py --smoke failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
