//! Hot keys against real redis-servers: the detector (`GET /hotkeys`, `INFO
//! hotkeys`, the top-key gauges, the log line) and request coalescing (the
//! backend's own `INFO commandstats` counts what it served).

mod common;

use common::admin::{get, scrape_until};
use common::diff;
use common::*;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Longest wait for anything asynchronous.
const DEADLINE: Duration = Duration::from_secs(15);
/// Concurrent clients of the coalescing tests.
const CLIENTS: usize = 200;

/// `calls` of `cmdstat_<cmd>` in the node's INFO commandstats (0 when absent).
fn calls(node: &RedisServer, cmd: &str) -> u64 {
    let mut c = Conn::connect(node.port());
    let Reply::Bulk(text) = c.cmd(&["INFO", "commandstats"]) else {
        panic!("INFO commandstats")
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let prefix = format!("cmdstat_{cmd}:calls=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("calls"))
}

/// Sends `DEBUG SLEEP secs` to `node` on a connection of its own and returns it
/// (read its `+OK` to know the node is awake again).
fn stall(node: &RedisServer, secs: &str) -> Conn {
    let mut c = Conn::connect(node.port());
    c.send(&["DEBUG", "SLEEP", secs]).expect("DEBUG SLEEP");
    // Make sure the node is inside the sleep before clients send.
    std::thread::sleep(Duration::from_millis(50));
    c
}

/// `clients` connections to the proxy (`resp3`: after HELLO 3) each send `args`
/// at once, once they are all connected and `node` sleeps (DEBUG SLEEP `secs`);
/// returns every client's raw reply once the node is awake again.
fn concurrent(
    proxy: &Proxy,
    node: &RedisServer,
    secs: &str,
    clients: usize,
    resp3: impl Fn(usize) -> bool,
    args: &[&str],
) -> Vec<Vec<u8>> {
    let mut conns: Vec<Conn> = (0..clients)
        .map(|i| {
            let mut c = proxy.conn();
            if resp3(i) {
                assert!(!c.cmd(&["HELLO", "3"]).is_error());
            }
            c
        })
        .collect();
    let gate = Arc::new(Barrier::new(clients + 1));
    std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .iter_mut()
            .map(|c| {
                let gate = gate.clone();
                s.spawn(move || {
                    gate.wait();
                    c.cmd_raw(args)
                })
            })
            .collect();
        let mut sleeper = stall(node, secs);
        gate.wait();
        let replies = handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect();
        assert_eq!(sleeper.read_ok(), Reply::ok());
        replies
    })
}

/// GETs of one key by 200 clients while the node is busy: with coalescing the
/// node serves a handful (one per request in flight), without it one per client.
#[test]
fn concurrent_reads_of_one_key_reach_the_node_once() {
    let node = RedisServer::start();
    for (coalesce, expect_all) in [(true, false), (false, true)] {
        let proxy = Proxy::with_nodes(&[&node], &format!("coalesce: {coalesce}\n"));
        let mut c = proxy.conn();
        assert_eq!(c.cmd(&["SET", "hot", "value"]), Reply::ok());
        let before = calls(&node, "get");
        let replies = concurrent(&proxy, &node, "0.5", CLIENTS, |_| false, &["GET", "hot"]);
        let served = calls(&node, "get") - before;
        println!(
            "coalesce {coalesce}: {CLIENTS} clients, node served {served} GET (ratio {:.3})",
            served as f64 / CLIENTS as f64
        );
        assert!(
            replies.iter().all(|r| r == b"$5\r\nvalue\r\n"),
            "every client gets the value"
        );
        if expect_all {
            assert_eq!(served, CLIENTS as u64);
        } else {
            assert!(served <= 5, "coalesced: {served}");
        }
    }
}

/// Coalescing keeps each client's RESP version: RESP2 and RESP3 clients reading
/// the same missing key get `$-1` and `_` (one request in flight per version).
#[test]
fn nil_replies_coalesce_per_resp_version() {
    let node = RedisServer::start();
    let proxy = Proxy::with_nodes(&[&node], "coalesce: true\n");
    let before = calls(&node, "get");
    let replies = concurrent(
        &proxy,
        &node,
        "0.5",
        100,
        |i| i % 2 == 1,
        &["GET", "missing"],
    );
    let served = calls(&node, "get") - before;
    for (i, r) in replies.iter().enumerate() {
        let want: &[u8] = if i % 2 == 1 { b"_\r\n" } else { b"$-1\r\n" };
        assert_eq!(r, want, "client {i}");
    }
    assert!(served <= 6, "two versions, a handful of requests: {served}");
    let direct = Conn::connect(node.port()).cmd_raw(&["GET", "missing"]);
    assert_eq!(direct, b"$-1\r\n");
}

/// A client that writes and then reads (pipelined, without waiting) never joins a
/// read that was in flight before its write: it sees its own value.
#[test]
fn a_client_sees_its_own_write_under_coalescing() {
    let node = RedisServer::start();
    let proxy = Proxy::with_nodes(
        &[&node],
        "coalesce: true\nworkers: 1\npool:\n  connections: 4\n",
    );
    let mut writer = proxy.conn();
    for round in 0..5 {
        let old = format!("old{round}");
        let new = format!("new{round}");
        assert_eq!(writer.cmd(&["SET", "k", &old]), Reply::ok());
        let mut sleeper = stall(&node, "0.2");
        // Readers' GETs are in flight (the node sleeps) when the writer pipelines.
        let mut readers: Vec<Conn> = (0..8).map(|_| proxy.conn()).collect();
        for r in &mut readers {
            r.send(&["GET", "k"]).expect("send");
        }
        std::thread::sleep(Duration::from_millis(20));
        let got = writer.pipeline(&[vec!["SET", "k", &new], vec!["GET", "k"]]);
        assert_eq!(got, vec![Reply::ok(), Reply::bulk(&new)], "round {round}");
        for r in &mut readers {
            let v = r.read_ok();
            assert!(v == Reply::bulk(&old) || v == Reply::bulk(&new), "{v:?}");
        }
        assert_eq!(sleeper.read_ok(), Reply::ok());
    }
}

/// Commands with side effects or random replies are never coalesced: every
/// client's SPOP reaches the node.
#[test]
fn commands_with_side_effects_are_not_coalesced() {
    let node = RedisServer::start();
    let proxy = Proxy::with_nodes(&[&node], "coalesce: true\n");
    let mut c = proxy.conn();
    let members: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD".to_string(), "set".into()];
    sadd.extend(members.iter().cloned());
    assert_eq!(c.cmd(&sadd).int(), 40);
    let before = calls(&node, "spop");
    let replies = concurrent(&proxy, &node, "0.3", 40, |_| false, &["SPOP", "set"]);
    assert_eq!(calls(&node, "spop") - before, 40);
    let mut popped: Vec<Vec<u8>> = replies;
    popped.sort();
    popped.dedup();
    assert_eq!(popped.len(), 40, "each client popped its own member");
}

/// One key takes most of the traffic: `GET /hotkeys` and `INFO hotkeys` name it,
/// with its node and share; the gauge shows the share; the log says it once.
#[test]
fn the_detector_names_the_hot_key() {
    let nodes = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let refs: Vec<&RedisServer> = nodes.iter().collect();
    let proxy = Proxy::with_nodes(
        &refs,
        "hot_keys:\n  window: 5s\n  top: 5\n  sample: 1\n  log_threshold: 50\n",
    );
    let owner = route(proxy.config_path(), &["user:42"])[0].1.clone();
    let mut c = proxy.conn();
    let mut cmds: Vec<Vec<String>> = Vec::new();
    for i in 0..3000 {
        cmds.push(vec!["GET".into(), "user:42".into()]);
        if i % 3 == 0 {
            cmds.push(vec!["GET".into(), format!("cold:{i}")]);
        }
    }
    let replies = c.pipeline(&cmds);
    assert_eq!(replies.len(), cmds.len());
    let body = get(proxy.admin_port(), "/hotkeys");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let first = &v["pools"][0]["keys"][0];
    assert_eq!(first["key"], "user:42", "{body}");
    assert_eq!(first["key_hex"], "757365723a3432");
    assert_eq!(first["node"], owner.as_str());
    assert!(first["rate"].as_f64().unwrap() > 50.0, "{body}");
    // On its node it is 3000 of the requests, with at most ~1000/3 cold ones.
    let share = first["share"].as_f64().unwrap();
    assert!(share > 0.85, "{body}");
    let Reply::Bulk(info) = c.cmd(&["INFO", "hotkeys"]) else {
        panic!()
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    assert!(info.starts_with("# Hotkeys\r\n"), "{info}");
    assert!(
        info.contains(&format!("hotkey_0:key=user:42,node={owner},")),
        "{info}"
    );
    let scrape = scrape_until(proxy.admin_port(), DEADLINE, "top-key gauge", |s| {
        s.sum("ringproxy_hot_key_top_share", &[("node", owner.as_str())]) > 0.85
    });
    assert!(scrape.sum("ringproxy_hot_key_top_rate", &[("node", owner.as_str())]) > 50.0);
    wait_until("the hot key is logged", DEADLINE, || {
        proxy
            .log()
            .contains("hot key crossed hot_keys.log_threshold")
    });
    let log = proxy.log();
    assert_eq!(log.matches("hot key crossed").count(), 1, "logged once");
    assert!(log.contains("user:42"));
}

/// A binary key is shown escaped, never raw.
#[test]
fn binary_keys_are_escaped() {
    let node = RedisServer::start();
    let proxy = Proxy::with_nodes(&[&node], "hot_keys:\n  sample: 1\n");
    let mut c = proxy.conn();
    let key: &[u8] = b"bin\r\n\x00\xff,=key";
    for _ in 0..50 {
        assert_eq!(c.cmd(&[b"GET".as_slice(), key]), Reply::Nil);
    }
    let body = get(proxy.admin_port(), "/hotkeys");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        v["pools"][0]["keys"][0]["key"], "bin\\x0d\\x0a\\x00\\xff\\x2c\\x3dkey",
        "{body}"
    );
    let Reply::Bulk(info) = c.cmd(&["INFO", "hotkeys"]) else {
        panic!()
    };
    assert!(!info.windows(2).any(|w| w == b"\x00\xff"));
}

/// The same pipelines of reads to one redis-server and, from 30 clients at once
/// (RESP2, then RESP3), to a proxy with coalescing and full sampling over three
/// nodes that all sleep while the clients send: every client's stream is the
/// reference server's, byte for byte, and replies were shared.
#[test]
fn coalesced_streams_are_redis_bytes() {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let refs: Vec<&RedisServer> = nodes.iter().collect();
    let pair = diff::Pair {
        proxy: Proxy::with_nodes(&refs, "coalesce: true\nhot_keys: {sample: 1}\n"),
        redis: RedisServer::start(),
        nodes,
    };
    let big = "b".repeat(100_000);
    let setup: Vec<Vec<&str>> = vec![
        vec!["SET", "s", "value"],
        vec!["HSET", "h", "a", "1", "b", "2"],
        vec!["RPUSH", "l", "x", "y", "z"],
        vec!["ZADD", "z", "1", "a", "2.5", "b"],
        vec!["SADD", "set", "1", "2", "3"],
        vec!["SET", "big", &big],
    ];
    let setup: Vec<Vec<&[u8]>> = setup.iter().map(|c| diff::args(c)).collect();
    pair.assert_same("setup", &setup);
    let reads: Vec<Vec<&str>> = vec![
        vec!["GET", "s"],
        vec!["GET", "missing"],
        vec!["HGET", "h", "a"],
        vec!["HGETALL", "h"],
        vec!["LRANGE", "l", "0", "-1"],
        vec!["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        vec!["ZSCORE", "z", "b"],
        vec!["SMEMBERS", "set"],
        vec!["GET", "big"],
        vec!["HGET", "h", "missing"],
        vec!["GET", "s", "extra"],
    ];
    let mut cmds: Vec<Vec<&[u8]>> = Vec::new();
    for _ in 0..10 {
        cmds.extend(reads.iter().map(|c| diff::args(c)));
    }
    let bytes = diff::pipeline(&cmds);
    for resp3 in [false, true] {
        let connect = |port| {
            let mut c = Conn::connect(port);
            if resp3 {
                assert!(!c.cmd(&["HELLO", "3"]).is_error());
            }
            c
        };
        let want = diff::until_marker(&mut connect(pair.redis.port()), &bytes);
        let before =
            common::admin::scrape(pair.proxy.admin_port()).sum("ringproxy_coalesced_total", &[]);
        let mut conns: Vec<Conn> = (0..30).map(|_| connect(pair.proxy.port())).collect();
        let gate = Barrier::new(31);
        let streams: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = conns
                .iter_mut()
                .map(|c| {
                    let (gate, bytes) = (&gate, &bytes);
                    s.spawn(move || {
                        gate.wait();
                        diff::until_marker(c, bytes)
                    })
                })
                .collect();
            let mut sleepers: Vec<Conn> = pair.nodes.iter().map(|n| stall(n, "0.3")).collect();
            gate.wait();
            let out = handles
                .into_iter()
                .map(|h| h.join().expect("client"))
                .collect();
            for s in &mut sleepers {
                assert_eq!(s.read_ok(), Reply::ok());
            }
            out
        });
        for (i, got) in streams.iter().enumerate() {
            diff::assert_same(&format!("client {i} (resp3 {resp3})"), &want, got);
        }
        let after =
            common::admin::scrape(pair.proxy.admin_port()).sum("ringproxy_coalesced_total", &[]);
        assert!(after > before, "replies were shared: {before} -> {after}");
    }
}
