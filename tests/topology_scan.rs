//! SCAN across topology changes: a cursor handed out before a reload still walks
//! every node that holds keys. Under load, a SCAN walk is started, the config is
//! reloaded in the middle of it (a node added, the first node removed, a node
//! re-weighted), and the walk finished with the old cursor: every key that was on a
//! node present for the whole walk must come back at least once.

mod common;

use common::admin::wait_topology;
use common::load::{Client, Load, Options};
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const KEYS_PER_CASE: usize = 1500;
/// SCAN steps before the reload (with COUNT 10: well inside the first node).
const STEPS_BEFORE_RELOAD: usize = 25;
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// (name, server, weight)
type N<'a> = (&'a str, &'a RedisServer, u32);

fn yaml(listen: u16, admin: u16, nodes: &[N]) -> String {
    let mut y = format!("listen: 127.0.0.1:{listen}\nadmin: 127.0.0.1:{admin}\nnodes:\n");
    for (name, s, w) in nodes {
        y.push_str(&format!(
            "  - {{name: {name}, addr: \"{}\", weight: {w}}}\n",
            s.addr()
        ));
    }
    y
}

fn start_load(port: u16) -> Load {
    let clients = (0..2)
        .map(|c| Client {
            name: format!("load{c}"),
            keys: (0..200)
                .map(|i| (Arc::from(format!("load:{c}:{i}")), 0))
                .collect(),
            offset: 0,
        })
        .collect();
    let opts = Options {
        keys_per_round: 8,
        pause: Duration::from_millis(3),
        ..Options::default()
    };
    Load::start(port, clients, &opts)
}

/// The keys with `prefix` on the given servers (read directly).
fn keys_on(servers: &[&RedisServer], prefix: &str) -> BTreeSet<String> {
    servers
        .iter()
        .flat_map(|s| s.keys())
        .map(|k| String::from_utf8_lossy(&k).into_owned())
        .filter(|k| k.starts_with(prefix))
        .collect()
}

/// One SCAN step: (next cursor, keys); an error reply ends the walk (it is printed,
/// and the keys not returned count as skipped).
fn scan_step(c: &mut Conn, cursor: &str, pattern: &str) -> (String, Vec<String>) {
    match c.cmd(&["SCAN", cursor, "MATCH", pattern, "COUNT", "10"]) {
        Reply::Error(e) => {
            println!("SCAN {cursor}: -{e} (walk ends)");
            ("0".into(), Vec::new())
        }
        Reply::Array(v) if v.len() == 2 => {
            let next = String::from_utf8_lossy(v[0].bytes()).into_owned();
            let keys = match &v[1] {
                Reply::Array(k) => k
                    .iter()
                    .map(|k| String::from_utf8_lossy(k.bytes()).into_owned())
                    .collect(),
                other => panic!("SCAN keys: {other}"),
            };
            (next, keys)
        }
        other => panic!("SCAN {cursor}: {other}"),
    }
}

/// Writes the case's keys, walks SCAN with a reload to `after` in the middle, and
/// returns (keys expected, keys returned, keys skipped).
fn case(
    proxy: &Proxy,
    admin: u16,
    version: u64,
    after: &str,
    kept: &[&RedisServer],
    prefix: &str,
) -> (usize, usize, usize) {
    let mut c = proxy.conn();
    for chunk in (0..KEYS_PER_CASE).collect::<Vec<_>>().chunks(100) {
        let mut args = vec!["MSET".to_string()];
        for i in chunk {
            args.push(format!("{prefix}{i}"));
            args.push("v".into());
        }
        assert_eq!(c.cmd(&args), Reply::ok());
    }
    let pattern = format!("{prefix}*");
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    for step in 0.. {
        if step == STEPS_BEFORE_RELOAD {
            proxy.write_config(after);
            wait_topology(admin, &format!("version {version}"), RELOAD_TIMEOUT, |t| {
                t.version >= version
            });
        }
        let (next, keys) = scan_step(&mut c, &cursor, &pattern);
        seen.extend(keys);
        cursor = next;
        if cursor == "0" {
            assert!(
                step >= STEPS_BEFORE_RELOAD,
                "the walk ended before the reload"
            );
            break;
        }
    }
    let expected = keys_on(kept, prefix);
    let skipped = expected.difference(&seen).count();
    (expected.len(), seen.len(), skipped)
}

#[test]
fn scan_cursor_survives_reloads_under_load() {
    let s: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let (listen, admin) = (free_port(), free_port());
    let two = [("node0", &s[0], 1), ("node1", &s[1], 1)];
    let proxy = Proxy::start(&yaml(listen, admin, &two));
    let load = start_load(proxy.port());
    load.wait_rounds(20);

    let three = [two[0], two[1], ("node2", &s[2], 1)];
    let add = case(
        &proxy,
        admin,
        2,
        &yaml(listen, admin, &three),
        &[&s[0], &s[1]],
        "add:",
    );
    let no_first = [three[1], three[2]];
    let remove = case(
        &proxy,
        admin,
        3,
        &yaml(listen, admin, &no_first),
        &[&s[1], &s[2]],
        "rm:",
    );
    let reweighted = [("node1", &s[1], 5), no_first[1]];
    let weight = case(
        &proxy,
        admin,
        4,
        &yaml(listen, admin, &reweighted),
        &[&s[1], &s[2]],
        "w:",
    );

    load.wait_rounds(20);
    let report = load.finish();
    report.assert_complete();
    let mut failed = Vec::new();
    for (name, (expected, returned, skipped)) in [
        ("add a node", add),
        ("remove the first node", remove),
        ("re-weight", weight),
    ] {
        println!(
            "{name}: {expected} keys present throughout, {returned} returned, {skipped} skipped"
        );
        if skipped > 0 {
            failed.push(format!("{name}: {skipped} of {expected} keys skipped"));
        }
    }
    assert!(
        failed.is_empty(),
        "SCAN across a reload skipped keys: {failed:?}"
    );
}

#[test]
fn scan_walks_every_node_once_without_change() {
    let s: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let proxy = Proxy::with_nodes(&[&s[0], &s[1], &s[2]], "");
    let mut c = proxy.conn();
    for i in 0..600 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys) = scan_step(&mut c, &cursor, "*");
        seen.extend(keys);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let distinct: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        (seen.len(), distinct.len()),
        (600, 600),
        "each key exactly once"
    );
    assert_eq!(
        c.cmd(&["SCAN", "65536"]),
        Reply::Error("ERR invalid cursor".into()),
        "a node cursor without a node tag"
    );
    assert_eq!(
        c.cmd(&["SCAN", "abc"]),
        Reply::Error("ERR invalid cursor".into())
    );
}
