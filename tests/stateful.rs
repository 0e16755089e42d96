//! Stateful commands through the proxy, against three real redis-servers: pub/sub
//! and transactions with redis-py (tests/py/stateful.py, RESP2 and RESP3), blocking
//! commands on dedicated connections, SCAN/KEYS/DBSIZE/RANDOMKEY across nodes,
//! scripts, the `limits.max_dedicated` cap and FLUSHALL/FLUSHDB behind `allow_flush`.
//!
//! Every wait is a poll with a deadline; no test relies on a sleep.

mod common;

use common::*;
use std::collections::HashSet;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Longest a backend-side state change (blocked client appears or goes) may take.
const SETTLE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// `n` keys `prefix<i>` that the ring puts on backend `node` (by `ringproxy route`).
fn keys_on(cl: &Cluster, prefix: &str, node: usize, n: usize) -> Vec<String> {
    let candidates: Vec<String> = (0..n * 30).map(|i| format!("{prefix}{i}")).collect();
    let want = format!("node{node}");
    let found: Vec<String> = route(cl.proxy.config_path(), &candidates)
        .into_iter()
        .filter(|(_, name)| *name == want)
        .map(|(k, _)| k)
        .take(n)
        .collect();
    assert_eq!(
        found.len(),
        n,
        "fewer than {n} of {} candidate keys route to {want}",
        candidates.len()
    );
    found
}

/// The index of the backend the ring puts `key` on.
fn node_for(cl: &Cluster, key: &str) -> usize {
    let (_, name) = &route(cl.proxy.config_path(), &[key])[0];
    name.strip_prefix("node")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected node name {name:?} for {key}"))
}

/// A numeric field of `INFO <section>` on a backend, read directly.
fn info_field(node: &RedisServer, section: &str, field: &str) -> i64 {
    let info = node.cmd(&["INFO", section]);
    let text = String::from_utf8_lossy(info.bytes()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no numeric {field} in INFO {section} of {}", node.addr()))
}

/// Clients blocked in a blocking command on a backend.
fn blocked(node: &RedisServer) -> i64 {
    info_field(node, "clients", "blocked_clients")
}

fn total_blocked(cl: &Cluster) -> i64 {
    cl.nodes.iter().map(blocked).sum()
}

/// Runs tests/py/stateful.py against the cluster for protocol 2 and 3.
fn run_py(cl: &Cluster, only: &str) {
    let probe = Command::new("python3")
        .args(["-c", "import redis"])
        .output()
        .unwrap_or_else(|e| panic!("python3 not found (run .ci/run): {e}"));
    assert!(
        probe.status.success(),
        "redis-py is not installed for python3 (run .ci/run): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/stateful.py");
    let backends: Vec<String> = cl.nodes.iter().map(|n| n.port().to_string()).collect();
    for proto in ["2", "3"] {
        let out = Command::new("timeout")
            .args(["30", "python3", script, "--port"])
            .arg(cl.proxy.port().to_string())
            .args([
                "--protocol",
                proto,
                "--backends",
                &backends.join(","),
                "--only",
                only,
            ])
            .output()
            .expect("run tests/py/stateful.py");
        assert!(
            out.status.success(),
            "tests/py/stateful.py --only {only} --protocol {proto} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Walks a whole SCAN with `extra` arguments. Returns every key (in order, with
/// repeats), the number of calls and the largest batch.
fn scan_all(c: &mut Conn, extra: &[&str]) -> (Vec<String>, usize, usize) {
    let mut cursor = "0".to_string();
    let (mut keys, mut calls, mut largest) = (Vec::new(), 0, 0);
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let r = c.cmd(&args);
        calls += 1;
        assert!(
            calls < 20_000,
            "SCAN {extra:?} did not finish in 20000 calls"
        );
        let items = r.items();
        assert_eq!(items.len(), 2, "SCAN reply {r}");
        let batch = items[1].items();
        largest = largest.max(batch.len());
        keys.extend(
            batch
                .iter()
                .map(|k| String::from_utf8_lossy(k.bytes()).into_owned()),
        );
        cursor = String::from_utf8_lossy(items[0].bytes()).into_owned();
        if cursor == "0" {
            return (keys, calls, largest);
        }
    }
}

fn as_set(keys: &[String]) -> HashSet<String> {
    keys.iter().cloned().collect()
}

/// Fails on a key listed twice.
fn assert_unique(keys: &[String], what: &str) {
    let mut seen = HashSet::new();
    for k in keys {
        assert!(seen.insert(k), "{what}: key {k} returned more than once");
    }
}

// ---------------------------------------------------------------------------
// 1, 2: redis-py pub/sub and transactions
// ---------------------------------------------------------------------------

#[test]
fn redis_py_pubsub_across_nodes() {
    let cl = Cluster::start(3, "");
    run_py(&cl, "pubsub");
}

#[test]
fn redis_py_transactions_pinned_to_one_node() {
    let cl = Cluster::start(3, "");
    run_py(&cl, "transactions");
}

/// The wire conversation of a cross-node MULTI, reply by reply (RESP2).
#[test]
fn cross_node_multi_aborts_and_writes_nothing() {
    let cl = Cluster::start(3, "");
    let k0 = &keys_on(&cl, "tx0:", 0, 1)[0];
    let k1 = &keys_on(&cl, "tx1:", 1, 1)[0];
    let mut c = cl.conn();
    assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(c.cmd(&["SET", k0, "a"]), Reply::Status("QUEUED".into()));
    let e = c.cmd(&["SET", k1, "b"]);
    assert!(e.err_text().starts_with("CROSSSLOT"), "got {e}");
    assert_eq!(c.cmd(&["INCR", k0]), Reply::Status("QUEUED".into()));
    let e = c.cmd(&["EXEC"]);
    assert!(e.err_text().starts_with("EXECABORT"), "got {e}");
    assert!(cl.holders(k0.as_bytes()).is_empty(), "{k0} was written");
    assert!(cl.holders(k1.as_bytes()).is_empty(), "{k1} was written");
    // The connection is back to normal and nothing is left queued on the backend.
    assert_eq!(c.cmd(&["SET", k1, "b"]), Reply::ok());
    assert_eq!(c.cmd(&["GET", k1]), Reply::bulk("b"));
    assert_eq!(c.cmd(&["EXEC"]).err_text(), "ERR EXEC without MULTI");
    // A tagged transaction on the same connection runs.
    assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(c.cmd(&["SET", "{t}x", "1"]), Reply::Status("QUEUED".into()));
    assert_eq!(c.cmd(&["INCR", "{t}y"]), Reply::Status("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Reply::Array(vec![Reply::ok(), Reply::Int(1)])
    );
    assert_eq!(cl.holders(b"{t}x"), cl.holders(b"{t}y"));
}

// ---------------------------------------------------------------------------
// 3: blocking commands on dedicated connections
// ---------------------------------------------------------------------------

#[test]
fn blpop_does_not_block_other_clients_on_the_same_node() {
    let cl = Cluster::start(3, "");
    let q = "queue:main";
    let qn = node_for(&cl, q);
    let busy = keys_on(&cl, "busy:", qn, 20);
    let port = cl.proxy.port();
    let waiter = thread::spawn(move || {
        let mut c = Conn::connect(port);
        c.set_timeout(Duration::from_secs(15));
        let t = Instant::now();
        let r = c.cmd(&["BLPOP", q, "10"]);
        (r, t.elapsed())
    });
    wait_until("BLPOP blocked on the queue's backend", SETTLE, || {
        blocked(&cl.nodes[qn]) == 1
    });

    // 1000 GET/SET round trips on keys of the same node while BLPOP waits.
    let mut c = cl.conn();
    let t = Instant::now();
    for i in 0..500 {
        let k = &busy[i % busy.len()];
        let v = i.to_string();
        assert_eq!(c.cmd(&["SET", k, &v]), Reply::ok());
        assert_eq!(c.cmd(&["GET", k]), Reply::bulk(&v));
    }
    let took = t.elapsed();
    assert_eq!(cl.node_of(busy[0].as_bytes()), qn);
    assert!(
        !waiter.is_finished(),
        "BLPOP returned before anything was pushed"
    );
    assert_eq!(blocked(&cl.nodes[qn]), 1, "BLPOP no longer blocked");
    assert!(
        took < Duration::from_secs(5),
        "1000 GET/SET beside a blocked BLPOP took {took:?}"
    );

    assert_eq!(c.cmd(&["LPUSH", q, "job"]), Reply::Int(1));
    let (r, waited) = waiter.join().expect("BLPOP thread");
    assert_eq!(r, Reply::bulks(&[q, "job"]));
    assert!(waited < Duration::from_secs(10), "BLPOP timed out instead");
    assert_eq!(c.cmd(&["LLEN", q]), Reply::Int(0));
    wait_until("backend sees no blocked client", SETTLE, || {
        blocked(&cl.nodes[qn]) == 0
    });
}

#[test]
fn client_disconnecting_while_blocked_frees_the_backend() {
    let cl = Cluster::start(3, "");
    let q = "queue:gone";
    let qn = node_for(&cl, q);
    let mut c = cl.conn();
    c.send(&["BLPOP", q, "0"]).expect("send BLPOP");
    wait_until("BLPOP blocked on the backend", SETTLE, || {
        blocked(&cl.nodes[qn]) == 1
    });
    let _ = c.stream().shutdown(std::net::Shutdown::Both);
    drop(c);
    let deadline = Instant::now() + SETTLE;
    while blocked(&cl.nodes[qn]) != 0 {
        if Instant::now() >= deadline {
            let list = cl.nodes[qn].cmd(&["CLIENT", "LIST"]);
            panic!(
                "the backend still has a client blocked in BLPOP {SETTLE:?} after the proxy \
                 client disconnected; CLIENT LIST:\n{}",
                String::from_utf8_lossy(list.bytes())
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    let list = cl.nodes[qn].cmd(&["CLIENT", "LIST"]);
    assert!(
        !String::from_utf8_lossy(list.bytes()).contains("cmd=blpop"),
        "a blpop connection is left on the backend"
    );
    // Nobody pops what is pushed now.
    let mut c = cl.conn();
    assert_eq!(c.cmd(&["RPUSH", q, "x"]), Reply::Int(1));
    assert_eq!(c.cmd(&["LLEN", q]), Reply::Int(1));
}

// ---------------------------------------------------------------------------
// 4: SCAN, KEYS, DBSIZE, RANDOMKEY across nodes
// ---------------------------------------------------------------------------

#[test]
fn scan_keys_dbsize_randomkey_across_nodes() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    // Empty cluster first.
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(0));
    assert_eq!(c.cmd(&["RANDOMKEY"]), Reply::Nil);
    assert_eq!(c.cmd(&["KEYS", "*"]), Reply::Array(vec![]));
    assert_eq!(scan_all(&mut c, &[]).0, Vec::<String>::new());

    let strings: Vec<String> = (0..7000).map(|i| format!("str:{i}")).collect();
    let hashes: Vec<String> = (0..3000).map(|i| format!("hash:{i}")).collect();
    let mut load: Vec<Vec<String>> = strings
        .chunks(100)
        .map(|ch| {
            let mut cmd = vec!["MSET".to_string()];
            for k in ch {
                cmd.push(k.clone());
                cmd.push("v".into());
            }
            cmd
        })
        .collect();
    load.extend(
        hashes
            .iter()
            .map(|h| vec!["HSET".into(), h.clone(), "f".into(), "v".into()]),
    );
    for r in c.pipeline(&load) {
        assert!(r == Reply::ok() || r == Reply::Int(1), "load: {r}");
    }
    let all: HashSet<String> = strings.iter().chain(&hashes).cloned().collect();
    for (i, n) in cl.nodes.iter().enumerate() {
        let size = n.dbsize();
        assert!(
            (1000..6000).contains(&size),
            "backend {i} holds {size} of 10000 keys"
        );
    }

    // Full walk: each key exactly once.
    let (keys, calls, _) = scan_all(&mut c, &["COUNT", "1000"]);
    assert_unique(&keys, "SCAN COUNT 1000");
    assert_eq!(keys.len(), 10_000);
    assert_eq!(as_set(&keys), all);
    assert!(calls >= 3, "SCAN of 3 nodes in {calls} calls");

    // COUNT is passed on: small batches and many calls, or few calls.
    let (keys, calls, largest) = scan_all(&mut c, &["COUNT", "10"]);
    assert_unique(&keys, "SCAN COUNT 10");
    assert_eq!(as_set(&keys), all);
    assert!(largest <= 40, "SCAN COUNT 10 returned a batch of {largest}");
    assert!(
        calls >= 300,
        "SCAN COUNT 10 over 10000 keys in {calls} calls"
    );
    let (keys, calls, _) = scan_all(&mut c, &["COUNT", "20000"]);
    assert_eq!(keys.len(), 10_000);
    assert!(calls <= 6, "SCAN COUNT 20000 took {calls} calls");

    // MATCH
    let (keys, _, _) = scan_all(&mut c, &["MATCH", "str:1*", "COUNT", "500"]);
    assert_unique(&keys, "SCAN MATCH");
    let want: HashSet<String> = strings
        .iter()
        .filter(|k| k.starts_with("str:1"))
        .cloned()
        .collect();
    assert_eq!(as_set(&keys), want);

    // TYPE
    let (keys, _, _) = scan_all(&mut c, &["COUNT", "500", "TYPE", "hash"]);
    assert_unique(&keys, "SCAN TYPE hash");
    assert_eq!(as_set(&keys), hashes.iter().cloned().collect());
    let (keys, _, _) = scan_all(&mut c, &["MATCH", "*:12*", "TYPE", "string"]);
    let want: HashSet<String> = strings
        .iter()
        .filter(|k| k.starts_with("str:12"))
        .cloned()
        .collect();
    assert_eq!(as_set(&keys), want);

    // KEYS, DBSIZE, RANDOMKEY
    let r = c.cmd(&["KEYS", "*"]);
    let keys: Vec<String> = r
        .items()
        .iter()
        .map(|k| String::from_utf8_lossy(k.bytes()).into_owned())
        .collect();
    assert_unique(&keys, "KEYS *");
    assert_eq!(keys.len(), 10_000);
    assert_eq!(as_set(&keys), all);
    let r = c.cmd(&["KEYS", "hash:29*"]);
    assert_eq!(r.items().len(), 111, "KEYS hash:29*: {r}");
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(10_000));
    for _ in 0..20 {
        let r = c.cmd(&["RANDOMKEY"]);
        let k = String::from_utf8_lossy(r.bytes()).into_owned();
        assert!(all.contains(&k), "RANDOMKEY returned {k}, not a key");
    }
}

#[test]
fn randomkey_finds_keys_of_every_node() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    // Keys on nodes 1 and 2 only: RANDOMKEY must still find one.
    let k1 = keys_on(&cl, "rk1:", 1, 1);
    let k2 = keys_on(&cl, "rk2:", 2, 1);
    for k in k1.iter().chain(&k2) {
        assert_eq!(c.cmd(&["SET", k, "v"]), Reply::ok());
    }
    for _ in 0..10 {
        let r = c.cmd(&["RANDOMKEY"]);
        assert!(
            r == Reply::bulk(&k1[0]) || r == Reply::bulk(&k2[0]),
            "RANDOMKEY: {r}"
        );
    }
    // 100 keys per node: 60 draws should not all come from one node (as they do
    // when RANDOMKEY always takes the first node's answer).
    for node in 0..3 {
        let keys = keys_on(&cl, &format!("rn{node}:"), node, 100);
        let mut mset = vec!["MSET".to_string()];
        for k in keys {
            mset.push(k);
            mset.push("v".into());
        }
        assert_eq!(c.cmd(&mset), Reply::ok());
    }
    let mut from_nodes = HashSet::new();
    for _ in 0..60 {
        let r = c.cmd(&["RANDOMKEY"]);
        from_nodes.insert(cl.node_of(r.bytes()));
    }
    assert!(
        from_nodes.len() >= 2,
        "60 RANDOMKEY calls over 3 nodes of ~100 keys each all returned keys of node {from_nodes:?}"
    );
}

// ---------------------------------------------------------------------------
// 5: scripts
// ---------------------------------------------------------------------------

#[test]
fn scripts_on_every_node_and_crossslot() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let get = "return redis.call('GET', KEYS[1])";
    let sha = String::from_utf8(c.cmd(&["SCRIPT", "LOAD", get]).bytes().to_vec()).unwrap();
    assert_eq!(sha.len(), 40, "SCRIPT LOAD returned {sha}");
    for (i, n) in cl.nodes.iter().enumerate() {
        assert_eq!(
            n.cmd(&["SCRIPT", "EXISTS", &sha]),
            Reply::Array(vec![Reply::Int(1)]),
            "script missing on backend {i}"
        );
    }
    let missing = "0000000000000000000000000000000000000000";
    assert_eq!(
        c.cmd(&["SCRIPT", "EXISTS", &sha, missing]),
        Reply::Array(vec![Reply::Int(1), Reply::Int(0)])
    );
    for node in 0..3 {
        for k in keys_on(&cl, &format!("sk{node}:"), node, 2) {
            assert_eq!(c.cmd(&["SET", &k, &k]), Reply::ok());
            assert_eq!(c.cmd(&["EVALSHA", &sha, "1", &k]), Reply::bulk(&k));
            assert_eq!(cl.node_of(k.as_bytes()), node);
        }
    }

    let set2 = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return 2";
    let a = &keys_on(&cl, "ev0:", 0, 1)[0];
    let b = &keys_on(&cl, "ev2:", 2, 1)[0];
    let e = c.cmd(&["EVAL", set2, "2", a, b, "v"]);
    assert!(
        e.err_text().starts_with("CROSSSLOT"),
        "cross-node EVAL: {e}"
    );
    let sha2 = String::from_utf8(c.cmd(&["SCRIPT", "LOAD", set2]).bytes().to_vec()).unwrap();
    let e = c.cmd(&["EVALSHA", &sha2, "2", a, b, "v"]);
    assert!(
        e.err_text().starts_with("CROSSSLOT"),
        "cross-node EVALSHA: {e}"
    );
    assert!(cl.holders(a.as_bytes()).is_empty(), "{a} written");
    assert!(cl.holders(b.as_bytes()).is_empty(), "{b} written");

    // Two keys of one node (untagged), and two tagged keys.
    let same = keys_on(&cl, "ev1:", 1, 2);
    assert_eq!(
        c.cmd(&["EVAL", set2, "2", &same[0], &same[1], "w"]),
        Reply::Int(2)
    );
    for k in &same {
        assert_eq!(cl.nodes[1].cmd(&["GET", k]), Reply::bulk("w"));
    }
    assert_eq!(
        c.cmd(&["EVALSHA", &sha2, "2", "{s}1", "{s}2", "t"]),
        Reply::Int(2)
    );
    assert_eq!(cl.holders(b"{s}1"), cl.holders(b"{s}2"));

    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]), Reply::ok());
    for (i, n) in cl.nodes.iter().enumerate() {
        assert_eq!(
            n.cmd(&["SCRIPT", "EXISTS", &sha, &sha2]),
            Reply::Array(vec![Reply::Int(0), Reply::Int(0)]),
            "scripts left on backend {i} after SCRIPT FLUSH"
        );
    }
    let e = c.cmd(&["EVALSHA", &sha, "1", &same[0]]);
    assert!(e.err_text().starts_with("NOSCRIPT"), "after flush: {e}");
}

// ---------------------------------------------------------------------------
// 6: limits.max_dedicated
// ---------------------------------------------------------------------------

/// Sends `BLPOP q secs` on a new connection and waits until the backends count
/// one more blocked client.
fn block_in_blpop(cl: &Cluster, q: &str, secs: &str) -> Conn {
    let mut c = cl.conn();
    let before = total_blocked(cl);
    c.send(&["BLPOP", q, secs]).expect("send BLPOP");
    wait_until(&format!("BLPOP {q} blocked"), SETTLE, || {
        total_blocked(cl) == before + 1
    });
    c
}

#[test]
fn max_dedicated_caps_blocking_clients() {
    let cl = Cluster::start(3, "limits:\n  max_dedicated: 2\n");
    let mut a = block_in_blpop(&cl, "qa", "10");
    let mut b = block_in_blpop(&cl, "qb", "10");
    let mut third = cl.conn();
    let e = third.cmd(&["BLPOP", "qc", "10"]);
    assert!(
        e.is_error() && e.err_text().contains("max_dedicated"),
        "third BLPOP: {e}"
    );
    // The refused client keeps working.
    assert_eq!(third.cmd(&["PING"]), Reply::Status("PONG".into()));
    assert_eq!(third.cmd(&["SET", "kc", "1"]), Reply::ok());
    assert_eq!(third.cmd(&["GET", "kc"]), Reply::bulk("1"));
    assert_eq!(total_blocked(&cl), 2);

    let mut pusher = cl.conn();
    assert_eq!(pusher.cmd(&["RPUSH", "qa", "1"]), Reply::Int(1));
    assert_eq!(pusher.cmd(&["RPUSH", "qb", "2"]), Reply::Int(1));
    assert_eq!(a.read_ok(), Reply::bulks(&["qa", "1"]));
    assert_eq!(b.read_ok(), Reply::bulks(&["qb", "2"]));

    // Both blocking commands are over (their clients stay connected): the third
    // client may block now, first until its timeout, then until a push.
    let r = third.cmd(&["BLPOP", "qc", "0.2"]);
    assert_eq!(
        r,
        Reply::Nil,
        "BLPOP of a third client after the first two BLPOPs returned (their clients still connected)"
    );
    third.send(&["BLPOP", "qc", "5"]).expect("send BLPOP");
    assert_eq!(pusher.cmd(&["RPUSH", "qc", "3"]), Reply::Int(1));
    assert_eq!(third.read_ok(), Reply::bulks(&["qc", "3"]));
    drop((a, b));
}

#[test]
fn max_dedicated_slot_comes_back_when_clients_leave() {
    let cl = Cluster::start(3, "limits:\n  max_dedicated: 2\n");
    let a = block_in_blpop(&cl, "qa", "10");
    let b = block_in_blpop(&cl, "qb", "10");
    let mut third = cl.conn();
    assert!(
        third
            .cmd(&["BLPOP", "qc", "1"])
            .err_text()
            .contains("max_dedicated")
    );
    // The two blocking commands end, then their clients leave.
    let mut pusher = cl.conn();
    for (mut c, q) in [(a, "qa"), (b, "qb")] {
        assert_eq!(pusher.cmd(&["RPUSH", q, "v"]), Reply::Int(1));
        assert_eq!(c.read_ok(), Reply::bulks(&[q, "v"]));
        let _ = c.stream().shutdown(std::net::Shutdown::Both);
    }
    assert_eq!(pusher.cmd(&["RPUSH", "qc", "x"]), Reply::Int(1));
    // The proxy notices the departures asynchronously: retry while the cap is full.
    let deadline = Instant::now() + SETTLE;
    loop {
        let r = third.cmd(&["BLPOP", "qc", "1"]);
        if r == Reply::bulks(&["qc", "x"]) {
            break;
        }
        assert!(
            r.is_error() && r.err_text().contains("max_dedicated"),
            "BLPOP qc: {r}"
        );
        assert!(
            Instant::now() < deadline,
            "the cap stayed full {SETTLE:?} after two clients whose BLPOP had returned disconnected ({r})"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// 7: FLUSHALL / FLUSHDB
// ---------------------------------------------------------------------------

#[test]
fn flush_refused_by_default_and_empties_every_node_when_allowed() {
    let nodes = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    let refs = [&nodes[0], &nodes[1], &nodes[2]];
    let keys: Vec<String> = (0..60).map(|i| format!("fl:{i}")).collect();
    let fill = |c: &mut Conn| {
        for k in &keys {
            assert_eq!(c.cmd(&["SET", k, "v"]), Reply::ok());
        }
        for (i, n) in nodes.iter().enumerate() {
            assert!(n.dbsize() > 0, "backend {i} got none of 60 keys");
        }
    };

    let strict = Proxy::with_nodes(&refs, "");
    let mut c = strict.conn();
    fill(&mut c);
    for cmd in [&["FLUSHALL"][..], &["FLUSHDB"], &["FLUSHALL", "ASYNC"]] {
        let e = c.cmd(cmd);
        assert!(
            e.is_error() && e.err_text().contains("allow_flush"),
            "{cmd:?} without allow_flush: {e}"
        );
    }
    let total: i64 = nodes.iter().map(|n| n.dbsize()).sum();
    assert_eq!(total, 60, "a refused flush removed keys");
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(60));
    drop(c);
    drop(strict);

    let open = Proxy::with_nodes(&refs, "allow_flush: true\n");
    let mut c = open.conn();
    assert_eq!(c.cmd(&["FLUSHALL"]), Reply::ok());
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.dbsize(), 0, "backend {i} not empty after FLUSHALL");
    }
    fill(&mut c);
    assert_eq!(c.cmd(&["FLUSHDB"]), Reply::ok());
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n.dbsize(), 0, "backend {i} not empty after FLUSHDB");
    }
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(0));
}
