//! Unit tests of the chain of previous placements and of the miss table.

use super::miss::{self, Miss};
use super::*;
use crate::backend::health::HealthPolicy;
use crate::backend::pool::PoolShared;
use crate::config::PoolConfig;
use std::time::Duration;

fn config(nodes: &[&str], warmup: bool) -> PoolConfig {
    let mut y = String::from("listen: 127.0.0.1:6380\nnodes:\n");
    for n in nodes {
        // Closed ports, one per name: nothing connects in these tests.
        let port = u32::from(n.as_bytes()[0]);
        y.push_str(&format!("  - {{name: {n}, addr: \"127.0.0.1:{port}\"}}\n"));
    }
    if warmup {
        y.push_str("warmup: {window: 1m}\n");
    }
    crate::config::check(&y).unwrap().0.pools.remove(0)
}

fn shared(cfg: &PoolConfig) -> PoolShared {
    PoolShared {
        workers: crate::workers::Workers::current_runtime(),
        pool: "t".into(),
        timeouts: Arc::new(crate::backend::conn::Timeouts::new(
            cfg.connect_timeout,
            cfg.request_timeout,
        )),
        policy: Arc::new(HealthPolicy::new(&cfg.health)),
        changed: Arc::new(tokio::sync::Notify::new()),
        metrics: crate::metrics::Metrics::new(),
    }
}

/// The topology after reloading `old` with `nodes`, as reload builds it.
fn reload(old: &Topology, sh: &PoolShared, nodes: &[&str], warmup: bool) -> Topology {
    let mut t = Topology::build(&config(nodes, warmup), sh, &old.nodes, old.version + 1);
    t.warm = Arc::new(Chain::after(old, &t));
    t
}

fn name(t: &Topology, i: usize) -> &str {
    &t.nodes[i].name
}

/// For 2,000 keys: (key, owner name now, previous owner names).
fn owners(t: &Topology, at: Instant) -> Vec<(String, String, Vec<String>)> {
    (0..2000)
        .map(|i| {
            let key = format!("k{i}");
            let owner = t.node_for_key(key.as_bytes()).unwrap();
            let prev = t.warm.previous(key.as_bytes(), owner, at, |_| true);
            let prev = prev.iter().map(|&p| name(t, p).to_string()).collect();
            (key, name(t, owner).to_string(), prev)
        })
        .collect()
}

#[tokio::test]
async fn a_key_that_moved_names_its_owner_before_each_change() {
    let abc = config(&["a", "b", "c"], true);
    let sh = shared(&abc);
    let t1 = Topology::build(&abc, &sh, &[], 1);
    assert!(t1.warm.is_empty());
    let t2 = reload(&t1, &sh, &["a", "b", "c", "d"], true);
    let t3 = reload(&t2, &sh, &["a", "b", "c", "d", "e"], true);
    let now = Instant::now();
    assert_eq!(t3.warm.open_steps(now), 2);
    let first = owners(&t1, now);
    let second = owners(&t2, now);
    let mut chained = 0;
    for ((o1, o2), o3) in first.iter().zip(&second).zip(owners(&t3, now)) {
        let (key, now_owner, prev) = o3;
        let mut want = Vec::new();
        for before in [&o2.1, &o1.1] {
            if *before != now_owner && !want.contains(before) {
                want.push(before.clone());
            }
        }
        assert_eq!(
            prev, want,
            "{key}: owners {} -> {} -> {now_owner}",
            o1.1, o2.1
        );
        chained += usize::from(prev.len() == 2);
    }
    assert!(chained > 20, "{chained} keys moved twice");
    // Past the window nothing is asked.
    let later = now + Duration::from_secs(61);
    assert!(owners(&t3, later).iter().all(|o| o.2.is_empty()));
    assert_eq!(t3.warm.open_for(later), None);
    assert!(t3.warm.open_for(now).unwrap() > Duration::from_secs(59));
}

#[tokio::test]
async fn removed_nodes_are_skipped_and_changes_that_move_nothing_add_nothing() {
    let abc = config(&["a", "b", "c"], true);
    let sh = shared(&abc);
    let t1 = Topology::build(&abc, &sh, &[], 1);
    let t2 = reload(&t1, &sh, &["a", "c"], true);
    let now = Instant::now();
    for ((key, was, _), (_, owner, prev)) in owners(&t1, now).into_iter().zip(owners(&t2, now)) {
        let want: Vec<String> = match (was.as_str(), was == owner) {
            ("b", _) | (_, true) => vec![],
            _ => vec![was.clone()],
        };
        assert_eq!(prev, want, "{key}: {was} -> {owner}");
    }
    // A reload with the same ring (here: the same nodes again) keeps the open step only.
    let t3 = reload(&t2, &sh, &["a", "c"], true);
    assert_eq!(t3.warm.open_steps(now), 1);
    // Warm-up switched off: the chain is dropped.
    let t4 = reload(&t3, &sh, &["a", "b", "c"], false);
    assert!(t4.warm.is_empty());
    // `usable` filters (a down node is skipped).
    let t5 = reload(&t4, &sh, &["a", "b", "c", "d"], true);
    let moved = (0..2000).map(|i| format!("k{i}")).find(|k| {
        let o = t5.node_for_key(k.as_bytes()).unwrap();
        !t5.warm.previous(k.as_bytes(), o, now, |_| true).is_empty()
    });
    let k = moved.expect("a key moved to d");
    let o = t5.node_for_key(k.as_bytes()).unwrap();
    assert!(t5.warm.previous(k.as_bytes(), o, now, |_| false).is_empty());
}

#[tokio::test]
async fn an_ejection_opens_a_window() {
    let mut cfg = config(&["a", "b", "c"], true);
    cfg.health.eject = true;
    let sh = shared(&cfg);
    let t1 = Topology::build(&cfg, &sh, &[], 1);
    t1.nodes[1].health.set_down(true, "test");
    let t2 = t1.ejection_update().expect("b ejected");
    assert_eq!(t2.warm.open_steps(Instant::now()), 1);
    t1.nodes[1].health.set_down(false, "test");
    let t3 = t2.ejection_update().expect("b back");
    let now = Instant::now();
    assert_eq!(t3.warm.open_steps(now), 2);
    // A key of b, back on b: its previous owner is where it went meanwhile.
    let (key, _, prev) = owners(&t3, now)
        .into_iter()
        .find(|(_, o, _)| o == "b")
        .unwrap();
    let meanwhile = t2.node_for_key(key.as_bytes()).unwrap();
    assert_eq!(prev, vec![name(&t2, meanwhile).to_string()]);
}

#[test]
fn misses_are_told_apart_from_values() {
    assert_eq!(miss::of("get"), Some(Miss::Nil));
    assert_eq!(miss::of("hget"), None, "a nil HGET may be a missing field");
    assert_eq!(miss::of("set"), None);
    assert!(Miss::Nil.is(b"$-1\r\n") && Miss::Nil.is(b"_\r\n"));
    assert!(!Miss::Nil.is(b"$0\r\n\r\n"), "an empty string is a value");
    assert!(Miss::Empty.is(b"*0\r\n") && Miss::Empty.is(b"%0\r\n") && Miss::Empty.is(b"~0\r\n"));
    assert!(!Miss::Empty.is(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"));
    assert!(Miss::Zero.is(b":0\r\n") && !Miss::Zero.is(b":10\r\n"));
    assert!(Miss::NoneType.is(b"+none\r\n") && !Miss::NoneType.is(b"+string\r\n"));
    assert!(Miss::NoKey.is(b":-2\r\n") && !Miss::NoKey.is(b":-1\r\n"));
    assert!(!Miss::Nil.is(b"-ERR x\r\n"));
}
