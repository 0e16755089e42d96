//! Warm topology changes (issue 19), on real redis-servers: after a reload that
//! moves keys, a read of a moved key that misses on its new owner is answered by its
//! previous owner (and, with `copy`, the value is copied to the new owner).
//!
//! - scale-out: 20,000 keys on 3 nodes, a 4th added by reload, every key read:
//!   the hit rate with warm-up on (all) and off (about 3/4), the keys copied, and a
//!   second pass answered by the new owners alone (checked on the servers);
//! - a delete in the window stays deleted, a write in the window wins (also in one
//!   pipeline with the warm read before it), in RESP2 and RESP3;
//! - two reloads in a row chain; a removed or stopped previous owner is skipped;
//! - under a steady read load, the nodes' keyspace_misses during the window, on
//!   and off; every request of a concurrent SET/GET load answered.

mod common;

use common::admin::{scrape, topology};
use common::topo::Rig;
use common::*;
use std::collections::BTreeMap;

const ON: &str = "warmup: {window: 10m, copy: true}\n";
const KEYS: usize = 20_000;
/// Requests per pipeline when filling and reading.
const BATCH: usize = 1000;

fn key(i: usize) -> String {
    format!("item:{i}")
}

fn value(i: usize) -> String {
    format!("value-{i}")
}

/// SETs `key(i)` = `value(i)` for `range` through the proxy.
fn fill(conn: &mut Conn, range: std::ops::Range<usize>) {
    let all: Vec<usize> = range.collect();
    for chunk in all.chunks(BATCH) {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .map(|&i| vec!["SET".into(), key(i), value(i)])
            .collect();
        assert!(conn.pipeline(&cmds).iter().all(|r| *r == Reply::ok()));
    }
}

/// GETs every key of `range`; how many came back with their value. Any other
/// reply than the value or nil fails the test.
fn read_hits(conn: &mut Conn, range: std::ops::Range<usize>) -> usize {
    let all: Vec<usize> = range.collect();
    let mut hits = 0;
    for chunk in all.chunks(BATCH) {
        let cmds: Vec<Vec<String>> = chunk.iter().map(|&i| vec!["GET".into(), key(i)]).collect();
        for (r, &i) in conn.pipeline(&cmds).iter().zip(chunk) {
            match r {
                Reply::Nil => {}
                r if *r == Reply::bulk(value(i)) => hits += 1,
                other => panic!("GET {}: {other:?}", key(i)),
            }
        }
    }
    hits
}

fn warm_metric(rig: &Rig, what: &str) -> f64 {
    scrape(rig.proxy.admin_port()).sum(&format!("ringproxy_warmup_{what}_total"), &[])
}

/// keyspace_misses summed over `servers`.
fn misses(servers: &[RedisServer]) -> i64 {
    servers
        .iter()
        .map(|s| {
            let info = s.cli(&["INFO", "stats"]);
            info.lines()
                .find_map(|l| l.strip_prefix("keyspace_misses:"))
                .and_then(|n| n.trim().parse::<i64>().ok())
                .expect("keyspace_misses in INFO stats")
        })
        .sum()
}

/// The keys of `range` by the node that owns them in the proxy's current file.
fn by_owner(rig: &Rig, range: std::ops::Range<usize>) -> BTreeMap<String, Vec<String>> {
    let names: Vec<String> = range.map(key).collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, node) in rig.owners(&names) {
        out.entry(node).or_default().push(k);
    }
    out
}

/// How many of `keys` server `s` holds (MGET, so the stats of GET stay clean).
fn held(s: &RedisServer, keys: &[String]) -> usize {
    keys.chunks(BATCH)
        .map(|c| {
            let mut args = vec!["MGET".to_string()];
            args.extend(c.iter().cloned());
            s.cmd(&args)
                .items()
                .iter()
                .filter(|r| **r != Reply::Nil)
                .count()
        })
        .sum()
}

/// Fills 3 nodes, adds the 4th by reload, reads everything twice; returns
/// (first-pass hits, copies).
fn scale_out(extra: &str) -> (usize, f64, Rig) {
    let rig = Rig::start_with(4, 3, extra);
    let mut conn = rig.proxy.conn();
    fill(&mut conn, 0..KEYS);
    rig.reload(&[0, 1, 2, 3]);
    let hits = read_hits(&mut conn, 0..KEYS);
    let copies = if extra.is_empty() {
        0.0
    } else {
        // Copies finish before their reads are answered.
        warm_metric(&rig, "copies")
    };
    (hits, copies, rig)
}

#[test]
fn a_node_added_by_reload_finds_every_key_with_warmup_and_a_quarter_fewer_without() {
    let (off_hits, _, off) = scale_out("");
    assert_eq!(warm_metric(&off, "lookups"), 0.0);
    drop(off);
    let (on_hits, copies, rig) = scale_out(ON);
    let moved = KEYS - off_hits;
    let rate = |h: usize| 100.0 * h as f64 / KEYS as f64;
    eprintln!(
        "warm-up scale-out 3 -> 4 nodes, {KEYS} keys: hit rate off {:.1}% ({off_hits}), on {:.1}% ({on_hits}); lookups {}, hits {}, copies {copies}",
        rate(off_hits),
        rate(on_hits),
        warm_metric(&rig, "lookups"),
        warm_metric(&rig, "hits"),
    );
    assert!(
        (65.0..85.0).contains(&rate(off_hits)),
        "off: {off_hits} hits"
    );
    assert_eq!(on_hits, KEYS, "with warm-up every key is found");
    // About a quarter moved; each was looked up and copied once.
    assert_eq!(warm_metric(&rig, "lookups") as usize, moved);
    assert_eq!(warm_metric(&rig, "hits") as usize, moved);
    assert_eq!(copies as usize, moved);
    assert_eq!(rig.servers[3].dbsize() as usize, moved);
    // Second pass: only the new owners answer, no lookup, no miss on any node.
    let misses_before = misses(&rig.servers);
    let mut conn = rig.proxy.conn();
    assert_eq!(read_hits(&mut conn, 0..KEYS), KEYS);
    assert_eq!(
        warm_metric(&rig, "lookups") as usize,
        moved,
        "second pass looked up"
    );
    assert_eq!(
        misses(&rig.servers),
        misses_before,
        "second pass missed on a node"
    );
    for (node, keys) in by_owner(&rig, 0..KEYS) {
        let s = &rig.servers[node_index(&node)];
        assert_eq!(held(s, &keys), keys.len(), "{node} lacks keys it owns");
    }
    let t = topology(rig.proxy.admin_port());
    let w = &t.json["pools"][0]["warmup"];
    assert_eq!(w["active"], true, "{w}");
    assert_eq!(w["previous_placements"], 1, "{w}");
    assert!(w["remaining_ms"].as_u64().unwrap() > 500_000, "{w}");
}

/// Keys (of `0..n`) that server `to` owns now.
fn moved_to(rig: &Rig, n: usize, to: usize) -> Vec<String> {
    by_owner(rig, 0..n)
        .remove(&format!("node{to}"))
        .unwrap_or_default()
}

/// Those of `names` that server `to` owns now.
fn owned_by(rig: &Rig, names: &[String], to: usize) -> Vec<String> {
    let node = format!("node{to}");
    rig.owners(names)
        .into_iter()
        .filter(|(_, n)| *n == node)
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn a_delete_or_a_write_in_the_window_wins_over_the_old_copy() {
    let rig = Rig::start_with(4, 3, ON);
    let mut conn = rig.proxy.conn();
    fill(&mut conn, 0..2000);
    let hashes: Vec<String> = (0..100).map(|i| format!("hash:{i}")).collect();
    let timed: Vec<String> = (0..100).map(|i| format!("timed:{i}")).collect();
    for (h, t) in hashes.iter().zip(&timed) {
        assert_eq!(conn.cmd(&["HSET", h, "f", "v", "g", "w"]), Reply::Int(2));
        assert_eq!(conn.cmd(&["SET", t, "v", "EX", "500"]), Reply::ok());
    }
    rig.reload(&[0, 1, 2, 3]);
    let moved = moved_to(&rig, 2000, 3);
    assert!(moved.len() > 300, "{} keys moved", moved.len());
    let val = |k: &str| k.replace("item:", "value-");
    let old_owner = |k: &String| {
        (0..3)
            .find(|&i| rig.servers[i].cmd(&["EXISTS", k]) == Reply::Int(1))
            .unwrap_or_else(|| panic!("{k} on no old owner"))
    };
    // A delete, then a read: stays deleted, on both owners.
    let k = &moved[0];
    let was = old_owner(k);
    assert_eq!(
        conn.cmd(&["DEL", k]),
        Reply::Int(0),
        "nothing on the new owner yet"
    );
    assert_eq!(conn.cmd(&["GET", k]), Reply::Nil);
    assert_eq!(rig.servers[was].cmd(&["EXISTS", k]), Reply::Int(0));
    // A write, then a read: the new value, and the old copy is gone.
    let k = &moved[1];
    let was = old_owner(k);
    assert_eq!(conn.cmd(&["SET", k, "new"]), Reply::ok());
    assert_eq!(conn.cmd(&["GET", k]), Reply::bulk("new"));
    assert_eq!(rig.servers[was].cmd(&["EXISTS", k]), Reply::Int(0));
    // A warm read (copied), then a delete: the copy goes too.
    let k = &moved[2];
    assert_eq!(conn.cmd(&["GET", k]), Reply::bulk(val(k)));
    assert_eq!(rig.servers[3].cmd(&["EXISTS", k]), Reply::Int(1), "copied");
    assert_eq!(conn.cmd(&["DEL", k]), Reply::Int(1));
    assert_eq!(conn.cmd(&["GET", k]), Reply::Nil);
    // In one pipeline: the warm read answers first, the write after it wins.
    let k = &moved[3];
    let got = conn.pipeline(&[
        vec!["GET", k.as_str()],
        vec!["SET", k.as_str(), "newer"],
        vec!["GET", k.as_str()],
        vec!["DEL", &moved[4]],
        vec!["GET", &moved[4]],
    ]);
    assert!(
        got[0] == Reply::bulk(val(k)) || got[0] == Reply::Nil,
        "{got:?}"
    );
    assert_eq!(got[1..3], [Reply::ok(), Reply::bulk("newer")], "{got:?}");
    assert_eq!(got[4], Reply::Nil, "{got:?}");
    assert_eq!(conn.cmd(&["GET", k]), Reply::bulk("newer"));
    // RESP3: a string and a hash found on the previous owner; a copy keeps its TTL.
    let mut c3 = rig.proxy.conn();
    c3.cmd(&["HELLO", "3"]);
    assert_eq!(c3.cmd(&["GET", &moved[5]]), Reply::bulk(val(&moved[5])));
    let h = &owned_by(&rig, &hashes, 3)[0];
    assert_eq!(c3.cmd(&["HLEN", h]), Reply::Int(2));
    let t = &owned_by(&rig, &timed, 3)[0];
    assert_eq!(conn.cmd(&["GET", t]), Reply::bulk("v"));
    let ttl = rig.servers[3].cmd(&["TTL", t]).int();
    assert!((490..=500).contains(&ttl), "copied TTL {ttl}");
}

#[test]
fn two_reloads_in_a_row_chain_and_a_removed_or_stopped_owner_is_skipped() {
    let mut rig = Rig::start_with(5, 3, ON);
    let mut conn = rig.proxy.conn();
    fill(&mut conn, 0..4000);
    rig.reload(&[0, 1, 2, 3]);
    rig.reload(&[0, 1, 2, 3, 4]);
    let t = topology(rig.proxy.admin_port());
    assert_eq!(t.json["pools"][0]["warmup"]["previous_placements"], 2);
    // Nothing was read between: keys moved to node3 then node4 come from their first owner.
    assert_eq!(read_hits(&mut conn, 0..2000), 2000, "chained reloads");
    // node1 removed: its keys are lost (misses, no errors); the rest is found.
    let on_node1 = held(&rig.servers[1], &(2000..4000).map(key).collect::<Vec<_>>());
    rig.reload(&[0, 2, 3, 4]);
    let hits = read_hits(&mut conn, 2000..4000);
    assert!(on_node1 > 100);
    assert_eq!(hits, 2000 - on_node1, "removed previous owner skipped");
    // node0 stopped: reads of keys it held before are misses, not errors.
    let from0: Vec<String> = (4000..4600).map(key).collect();
    fill(&mut conn, 4000..4600);
    rig.reload(&[0, 2, 3, 4, 1]);
    let moved: Vec<String> = moved_to(&rig, 4600, 1)
        .into_iter()
        .filter(|k| from0.contains(k) && rig.servers[0].cmd(&["EXISTS", k]) == Reply::Int(1))
        .collect();
    assert!(!moved.is_empty());
    rig.servers[0].kill();
    for k in &moved {
        assert_eq!(conn.cmd(&["GET", k]), Reply::Nil, "{k}");
    }
}

/// A reader of `0..n` in pipelines, `passes` times; returns the nil replies per pass.
fn read_passes(port: u16, n: usize, passes: usize) -> Vec<usize> {
    let mut conn = Conn::connect(port);
    (0..passes)
        .map(|_| n - read_hits(&mut conn, 0..n))
        .collect()
}

/// 5,000 keys on 3 nodes, a reader reading them all over and over and a SET/GET
/// load; a reload adds a node after the first pass. Returns (keyspace_misses on the
/// nodes from the reload on, nil replies per pass after it).
fn misses_under_load(extra: &str) -> (i64, Vec<usize>) {
    const N: usize = 5000;
    let rig = Rig::start_with(4, 3, extra);
    fill(&mut rig.proxy.conn(), 0..N);
    let load = rig.steady_load();
    let port = rig.proxy.port();
    assert_eq!(read_passes(port, N, 1), vec![0]);
    let before = misses(&rig.servers);
    rig.reload(&[0, 1, 2, 3]);
    let nils = read_passes(port, N, 4);
    let after = misses(&rig.servers) - before;
    Rig::assert_load_unhurt(load);
    (after, nils)
}

#[test]
fn a_steady_read_load_misses_once_per_moved_key_with_warmup() {
    let (off, off_nils) = misses_under_load("");
    let (on, on_nils) = misses_under_load(ON);
    eprintln!(
        "warm-up under a steady read load (5000 keys, 4 passes after adding a 4th node): keyspace_misses off {off}, on {on}; nil replies per pass off {off_nils:?}, on {on_nils:?}"
    );
    assert!(on_nils.iter().all(|&n| n == 0), "on: {on_nils:?}");
    assert!(off_nils.iter().all(|&n| n > 800), "off: {off_nils:?}");
    // On: each moved key misses once on its new owner (then it is copied); off:
    // once per pass. The steady SET/GET load adds a few of its own to both.
    assert!(on * 2 < off, "misses on {on}, off {off}");
}
