//! Cluster mode against a real Redis Cluster (6 redis-server processes: 3 primaries
//! with a replica each, see `common::redis_cluster`): keys land on their slot's
//! owner, split and multi-key commands, CROSSSLOT compared with a real node,
//! MULTI/EXEC, SCAN; live resharding and failovers under a steady pipelined load.

mod common;

use common::load::Load;
use common::redis_cluster::*;
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn keys_commands_and_errors_follow_redis_cluster() {
    let c = RedisCluster::start();
    let p = proxy_for(&c, "");
    let mut conn = p.conn();
    let keys = placement_on_slot_owners(&c, &mut conn);
    split_commands(&mut conn);
    crossslot_as_a_node_says(&c, &mut conn);
    transaction_and_scan(&c, &mut conn, &keys);
    pubsub(&p, &mut conn);
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
    // /topology shows the shards with their slots (once the proxy's map has seen
    // every replica attached: a node the fixture has just made a replica may still
    // be listed by the cluster as a primary of its own, without slots).
    let view = || -> serde_json::Value {
        let topo: serde_json::Value =
            serde_json::from_str(&admin::get(p.admin_port(), "/topology")).unwrap();
        topo["pools"][0]["cluster"].clone()
    };
    let three = |v: &serde_json::Value| v["shards"].as_array().map(Vec::len) == Some(3);
    wait_until("three shards in /topology", Duration::from_secs(10), || {
        three(&view())
    });
    let view = view();
    assert_eq!(view["slots_covered"], 16384, "{view}");
    assert!(three(&view), "{view}");
    assert_eq!(redirects(&p, "moved"), 0.0);
}

/// Every key lands on its slot's owner; hash tags keep keys together. Returns the keys.
fn placement_on_slot_owners(c: &RedisCluster, conn: &mut Conn) -> Vec<String> {
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
        assert_eq!(on_owner(c, k), Reply::bulk(k), "{k} not on its slot owner");
    }
    let spread: BTreeSet<usize> = keys.iter().map(|k| c.owner_of_slot(c.keyslot(k))).collect();
    assert_eq!(spread.len(), 3, "keys should reach every primary");
    keys
}

/// Split commands across slots and primaries, merged in request order.
fn split_commands(conn: &mut Conn) {
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
}

/// Keys of two slots in a command that cannot be split: Redis Cluster's own text,
/// whether the slots are on two primaries (the proxy answers) or one (the node does).
fn crossslot_as_a_node_says(c: &RedisCluster, conn: &mut Conn) {
    let (a, b) = two_keys(c, false);
    let (d, e) = two_keys(c, true);
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
}

/// MULTI/EXEC pinned to the slot owner; SCAN walks every primary, DBSIZE sums them.
fn transaction_and_scan(c: &RedisCluster, conn: &mut Conn, keys: &[String]) {
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
    assert_eq!(on_owner(c, "{u}n"), Reply::bulk("2"));
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
    for k in keys {
        assert!(seen.contains(k.as_bytes()), "SCAN missed {k}");
    }
}

/// PUBLISH reaches subscribers wherever the cluster propagates it; SSUBSCRIBE and
/// SPUBLISH go to the channel's slot owner.
fn pubsub(p: &Proxy, conn: &mut Conn) {
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
