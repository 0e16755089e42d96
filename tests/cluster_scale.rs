//! Growing and shrinking a real Redis Cluster under the proxy (see
//! `common::redis_cluster`): a primary joins and takes a slot with keys, then gives
//! it back and leaves, all under a steady pipelined SET-then-GET load through the
//! proxy: no request fails, no write is lost, and the proxy's map follows (the new
//! primary serves through the proxy; the removed one is gone from its topology).

mod common;

use common::load::Load;
use common::redis_cluster::*;
use common::*;
use std::time::Duration;

/// The addresses of the primaries in the proxy's `/topology` cluster view.
fn primaries_shown(p: &Proxy) -> Vec<String> {
    let t = admin::topology(p.admin_port());
    let shards = t.json["pools"][0]["cluster"]["shards"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<String> = shards
        .iter()
        .filter_map(|s| s["primary"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn wait_shown(p: &Proxy, want: impl Fn(&[String]) -> bool, what: &str) {
    poll(
        what,
        Duration::from_secs(20),
        Duration::from_millis(20),
        || {
            let shown = primaries_shown(p);
            if want(&shown) {
                Ok(())
            } else {
                Err(format!("{shown:?}"))
            }
        },
    );
}

#[test]
fn a_primary_joins_takes_a_slot_and_leaves_under_load() {
    let mut c = RedisCluster::start();
    let p = proxy_for(&c, "");
    let mut keys: Vec<String> = (0..30).map(|i| format!("{{grow}}:{i}")).collect();
    keys.extend((0..50).map(|i| format!("stay:{i}")));
    let load = Load::start(p.port(), clients(&keys, 4), &steady());
    load.wait_rounds(20);

    let new = c.add_primary();
    let slot = c.keyslot("{grow}");
    let from = c.owner_of_slot(slot);
    c.migrate_slot(slot, from, new, || load.wait_rounds(4));
    assert_eq!(c.owner_of_slot(slot), new);
    let addr = c.nodes[new].addr();
    wait_shown(
        &p,
        |s| s.contains(&addr),
        "the proxy to list the new primary",
    );
    load.wait_rounds(20);
    assert!(c.nodes[new].dbsize() > 0, "the new primary holds no key");
    let mut conn = p.conn();
    assert_eq!(conn.cmd(&["GET", "{grow}:0"]), on_owner(&c, "{grow}:0"));

    c.migrate_slot(slot, new, from, || load.wait_rounds(4));
    // As an operator would: the node leaves once nothing routes to it any more (the
    // proxy reads the map again within its refresh interval, sooner on a MOVED).
    wait_shown(&p, |s| !s.contains(&addr), "the proxy to see the slot back");
    c.remove_node(new);
    c.wait_settled();
    wait_shown(
        &p,
        |s| !s.contains(&addr) && s.len() == 3,
        "the proxy to drop the removed primary",
    );
    load.wait_rounds(20);
    let report = load.finish();
    report.assert_complete();
    eprintln!(
        "CLUSTER-SCALE: a primary added and removed with a slot moved to it and back: {} requests, {} failed or lost, {} MOVED, {} ASK",
        report.total(|l| l.received),
        failures(&report),
        redirects(&p, "moved"),
        redirects(&p, "ask")
    );
    assert_eq!(failures(&report), 0, "{}", report.notes());
    for k in &keys {
        assert_eq!(conn.cmd(&["GET", k]), on_owner(&c, k), "{k}");
    }
}
