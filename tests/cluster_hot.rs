//! The hot-key features in cluster mode (a real 6-process Redis Cluster, see
//! `common::redis_cluster`): the near cache and coalescing follow the cluster's
//! redirects like any read, stay right across a slot that moves (the source's
//! MIGRATE invalidates, the new owner's tracking takes over), and a steady
//! SET-then-GET load over moving slots loses nothing with both on.

mod common;

use common::load::Load;
use common::redis_cluster::*;
use common::*;
use std::time::{Duration, Instant};

/// Near cache over `cfg:*` and coalescing, on a cluster pool.
const HOT_YAML: &str = "coalesce: true\nnear_cache:\n  keys: [\"cfg:*\"]\n";

/// Polls `GET key` through `conn` until it is `want` (bounded); returns how long.
fn read_until(conn: &mut Conn, key: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let got = conn.cmd(&["GET", key]);
        if got == Reply::bulk(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "GET {key} stayed {got}, not {want}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn near_cache_follows_a_moved_slot() {
    let c = RedisCluster::start();
    let p = proxy_for(&c, HOT_YAML);
    let mut conn = p.conn();
    let key = "cfg:{hot1}:blob";
    assert_eq!(conn.cmd(&["SET", key, "v1"]), Reply::ok());
    read_until(&mut conn, key, "v1");
    for _ in 0..20 {
        assert_eq!(conn.cmd(&["GET", key]), Reply::bulk("v1"));
    }
    let hits = metric(&p, "ringproxy_near_cache_hits_total", &[]);
    assert!(hits > 0.0, "no read was served from the near cache");
    // A write made on the owner directly invalidates the cached value.
    let slot = c.keyslot(key);
    let from = c.owner_of_slot(slot);
    assert_eq!(c.nodes[from].cmd(&["SET", key, "v2"]), Reply::ok());
    let seen = read_until(&mut conn, key, "v2");
    // The slot moves: reads keep answering (no MOVED or ASK reaches the client).
    let to = *c
        .primaries()
        .iter()
        .find(|&&i| i != from)
        .expect("another primary");
    c.migrate_slot(slot, from, to, || {
        let r = conn.cmd(&["GET", key]);
        assert_eq!(r, Reply::bulk("v2"), "GET while the slot moves");
    });
    assert_eq!(c.owner_of_slot(slot), to);
    read_until(&mut conn, key, "v2");
    // Served (and cached) from the new owner: a direct write there is seen too.
    for _ in 0..5 {
        assert_eq!(conn.cmd(&["GET", key]), Reply::bulk("v2"));
    }
    assert_eq!(c.nodes[to].cmd(&["SET", key, "v3"]), Reply::ok());
    let seen_new = read_until(&mut conn, key, "v3");
    eprintln!(
        "CLUSTER-HOT: direct write seen after {seen:?} on the old owner, {seen_new:?} on the new one; {} MOVED, {} ASK",
        redirects(&p, "moved"),
        redirects(&p, "ask")
    );
}

#[test]
fn resharding_under_load_with_near_cache_and_coalescing_loses_nothing() {
    let c = RedisCluster::start();
    let p = proxy_for(&c, HOT_YAML);
    let tags = ["{hm1}", "{hm2}"];
    let mut keys: Vec<String> = tags
        .iter()
        .flat_map(|t| (0..20).map(move |i| format!("cfg:{t}:{i}")))
        .collect();
    keys.extend((0..40).map(|i| format!("cfg:other:{i}")));
    let load = Load::start(p.port(), clients(&keys, 4), &steady());
    load.wait_rounds(20);
    for t in tags {
        let slot = c.keyslot(t);
        let from = c.owner_of_slot(slot);
        let to = *c
            .primaries()
            .iter()
            .find(|&&i| i != from)
            .expect("another primary");
        c.migrate_slot(slot, from, to, || load.wait_rounds(4));
        load.wait_rounds(8);
    }
    load.wait_rounds(20);
    let report = load.finish();
    report.assert_complete();
    eprintln!(
        "CLUSTER-HOT: resharding with near cache and coalescing: {} requests, {} failed or lost, {} near-cache hits",
        report.total(|l| l.received),
        failures(&report),
        metric(&p, "ringproxy_near_cache_hits_total", &[])
    );
    assert_eq!(failures(&report), 0, "{}", report.notes());
    let mut conn = p.conn();
    for k in &keys {
        assert_eq!(conn.cmd(&["GET", k]), on_owner(&c, k), "{k}");
    }
}
