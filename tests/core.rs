//! End-to-end tests of the proxy core against real processes: three `redis-server`
//! backends behind one `ringproxy`, and where useful a fourth standalone server as the
//! reference ("what would a single Redis say?").

mod common;

use common::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs each `(command line, expected compact reply)` through the proxy and, for a
/// differential check, through a standalone `reference` server; both must match.
fn check_table(c: &mut Conn, reference: &mut Conn, table: &[(&str, &str)]) {
    for (line, want) in table {
        let got = c.line(line);
        assert_eq!(got.compact(), *want, "through the proxy: {line}");
        let direct = reference.line(line);
        assert_eq!(got, direct, "proxy and a single Redis disagree on: {line}");
    }
}

#[test]
fn every_data_type_round_trips() {
    let cl = Cluster::start(3, "");
    let reference = RedisServer::start();
    let (mut c, mut r) = (cl.conn(), reference.conn());
    check_table(
        &mut c,
        &mut r,
        &[
            // strings
            ("SET str hello", "+OK"),
            ("GET str", "hello"),
            ("APPEND str _world", ":11"),
            ("STRLEN str", ":11"),
            ("GETRANGE str 0 4", "hello"),
            ("SETRANGE str 0 HELLO", ":11"),
            ("GET str", "HELLO_world"),
            ("SETNX str x", ":0"),
            ("SET str2 v NX", "+OK"),
            ("SET str2 w NX", "nil"),
            ("SET str2 w XX GET", "v"),
            ("GETDEL str2", "w"),
            ("GET str2", "nil"),
            ("GETSET str again", "HELLO_world"),
            ("TYPE str", "+string"),
            ("GET nosuchkey", "nil"),
            // INCR family
            ("SET n 10", "+OK"),
            ("INCR n", ":11"),
            ("INCRBY n 5", ":16"),
            ("DECR n", ":15"),
            ("DECRBY n 20", ":-5"),
            ("INCRBYFLOAT n 1.5", "-3.5"),
            ("INCR str", "-ERR value is not an integer or out of range"),
            ("INCR fresh", ":1"),
            // expiry
            ("SET e v EX 100", "+OK"),
            ("TTL e", ":100"),
            ("PERSIST e", ":1"),
            ("TTL e", ":-1"),
            ("EXPIRE e 50", ":1"),
            ("TTL e", ":50"),
            ("TTL nosuch", ":-2"),
            ("EXPIRE nosuch 10", ":0"),
            ("SETEX e2 30 v", "+OK"),
            ("TTL e2", ":30"),
            // lists
            ("RPUSH list a b c", ":3"),
            ("LPUSH list z", ":4"),
            ("LRANGE list 0 -1", "[z, a, b, c]"),
            ("LPOP list", "z"),
            ("RPOP list", "c"),
            ("LLEN list", ":2"),
            ("LINDEX list 1", "b"),
            ("LSET list 0 A", "+OK"),
            ("LINSERT list AFTER A mid", ":3"),
            ("LRANGE list 0 -1", "[A, mid, b]"),
            ("LREM list 0 mid", ":1"),
            ("LPOS list b", ":1"),
            ("TYPE list", "+list"),
            // hashes
            ("HSET h f1 v1 f2 v2", ":2"),
            ("HGET h f1", "v1"),
            ("HMGET h f1 nope f2", "[v1, nil, v2]"),
            ("HGETALL h", "[f1, v1, f2, v2]"),
            ("HINCRBY h cnt 3", ":3"),
            ("HINCRBYFLOAT h fl 2.5", "2.5"),
            ("HEXISTS h f1", ":1"),
            ("HDEL h f1 nope", ":1"),
            ("HLEN h", ":3"),
            ("HKEYS h", "[f2, cnt, fl]"),
            ("HSETNX h f2 x", ":0"),
            ("HSTRLEN h f2", ":2"),
            ("TYPE h", "+hash"),
            // sets (small integer sets list in order)
            ("SADD set 3 1 2 2", ":3"),
            ("SMEMBERS set", "[1, 2, 3]"),
            ("SISMEMBER set 2", ":1"),
            ("SMISMEMBER set 1 9", "[:1, :0]"),
            ("SCARD set", ":3"),
            ("SREM set 2 9", ":1"),
            ("SMEMBERS set", "[1, 3]"),
            ("TYPE set", "+set"),
            // sorted sets
            ("ZADD z 1 a 2 b 3 c", ":3"),
            ("ZRANGE z 0 -1 WITHSCORES", "[a, 1, b, 2, c, 3]"),
            ("ZSCORE z b", "2"),
            ("ZINCRBY z 2.5 a", "3.5"),
            ("ZRANK z a", ":2"),
            ("ZREVRANGE z 0 0", "[a]"),
            ("ZCOUNT z 2 3", ":2"),
            ("ZRANGEBYSCORE z (2 +inf", "[c, a]"),
            ("ZREM z b", ":1"),
            ("ZCARD z", ":2"),
            ("ZPOPMIN z", "[c, 3]"),
            ("TYPE z", "+zset"),
            // streams
            ("XADD st 1-1 f v", "1-1"),
            ("XADD st 2-1 g w", "2-1"),
            ("XLEN st", ":2"),
            ("XRANGE st - +", "[[1-1, [f, v]], [2-1, [g, w]]]"),
            ("XREVRANGE st + - COUNT 1", "[[2-1, [g, w]]]"),
            ("XDEL st 1-1", ":1"),
            ("XLEN st", ":1"),
            ("XGROUP CREATE st grp 0", "+OK"),
            (
                "XREADGROUP GROUP grp c1 COUNT 10 STREAMS st >",
                "[[st, [[2-1, [g, w]]]]]",
            ),
            ("XACK st grp 2-1", ":1"),
            ("TYPE st", "+stream"),
            // HyperLogLog
            ("PFADD hll a b c a", ":1"),
            ("PFCOUNT hll", ":3"),
            ("PFADD hll a", ":0"),
            // bitmaps
            ("SETBIT bm 7 1", ":0"),
            ("GETBIT bm 7", ":1"),
            ("GETBIT bm 100", ":0"),
            ("BITCOUNT bm", ":1"),
            ("BITPOS bm 1", ":7"),
            ("SETBIT bm 0 1", ":0"),
            ("GET bm", "\\x81"),
            ("BITFIELD bm GET u8 0", "[:129]"),
            // geo
            (
                "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
                ":2",
            ),
            ("GEODIST g Palermo Catania km", "166.2742"),
            (
                "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC",
                "[Catania, Palermo]",
            ),
            ("GEOHASH g Palermo", "[sqc8b49rny0]"),
            // generic key commands
            ("EXISTS str", ":1"),
            ("DEL str", ":1"),
            ("EXISTS str", ":0"),
            ("TYPE nosuch", "+none"),
        ],
    );
    // A key with a 30 ms expiry disappears (bounded poll, no fixed sleep).
    assert_eq!(c.line("SET gone v PX 30"), Reply::ok());
    wait_until("key `gone` to expire", Duration::from_secs(5), || {
        c.line("GET gone") == Reply::Nil
    });
    // The keys were spread over the backends, not all on one.
    let used = cl.nodes.iter().filter(|n| n.dbsize() > 0).count();
    assert!(
        used >= 2,
        "all keys of the data-type test landed on {used} backend(s)"
    );
}

#[test]
fn keys_land_on_the_node_the_ring_says() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let keys: Vec<String> = (0..2000).map(|i| format!("key-{i}")).collect();
    let cmds: Vec<Vec<String>> = keys
        .iter()
        .map(|k| vec!["SET".into(), k.clone(), format!("v-{k}")])
        .collect();
    for r in c.pipeline(&cmds) {
        assert_eq!(r, Reply::ok());
    }
    // Where the keys really are, read directly from each backend.
    let mut actual: HashMap<String, String> = HashMap::new();
    for (i, n) in cl.nodes.iter().enumerate() {
        let ks = n.keys();
        assert!(!ks.is_empty(), "node{i} got no keys out of 2000");
        for k in ks {
            let k = String::from_utf8(k).expect("ascii key");
            if let Some(prev) = actual.insert(k.clone(), format!("node{i}")) {
                panic!("key {k} is on both {prev} and node{i}");
            }
        }
    }
    assert_eq!(
        actual.len(),
        2000,
        "backends hold {} keys, expected 2000",
        actual.len()
    );
    let routed = route(cl.proxy.config_path(), &keys);
    let mismatches: Vec<String> = routed
        .iter()
        .filter(|(k, n)| actual.get(k) != Some(n))
        .map(|(k, n)| format!("{k}: route says {n}, found on {:?}", actual.get(k)))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of 2000 keys are not where `ringproxy route` says, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
}

#[test]
fn hash_tags_keep_keys_together() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let mut used = std::collections::BTreeSet::new();
    let mut keys = Vec::new();
    for t in 0..30 {
        let (a, b) = (format!("{{user{t}}}.a"), format!("{{user{t}}}.b"));
        assert_eq!(c.cmd(&["SET", &a, "1"]), Reply::ok());
        assert_eq!(c.cmd(&["SET", &b, "2"]), Reply::ok());
        let (na, nb) = (cl.node_of(a.as_bytes()), cl.node_of(b.as_bytes()));
        assert_eq!(na, nb, "{a} is on node{na} but {b} is on node{nb}");
        used.insert(na);
        keys.push(a);
        keys.push(b);
    }
    assert!(used.len() >= 2, "30 different tags all landed on one node");
    // `ringproxy route` agrees.
    for pair in route(cl.proxy.config_path(), &keys).chunks(2) {
        assert_eq!(
            pair[0].1, pair[1].1,
            "route puts {} and {} apart",
            pair[0].0, pair[1].0
        );
    }
}

#[test]
fn deep_pipeline_keeps_order_while_a_node_is_slow() {
    const N: usize = 10_000;
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let setup: Vec<Vec<String>> = (0..N)
        .map(|i| vec!["SET".into(), format!("p-{i}"), format!("v{i}")])
        .collect();
    assert!(
        c.pipeline(&setup).iter().all(|r| *r == Reply::ok()),
        "setup SETs failed"
    );

    // Local replies (ECHO), reads (GET) and writes (INCR) interleaved, so that replies
    // of the slow node, the fast nodes and the proxy itself must be put back in order.
    let cmds: Vec<Vec<String>> = (0..N)
        .map(|i| match i % 10 {
            0 => vec!["ECHO".into(), format!("e{i}")],
            5 => vec!["INCR".into(), format!("c-{i}")],
            _ => vec!["GET".into(), format!("p-{i}")],
        })
        .collect();
    // Freeze the node of `p-1` for 500 ms (directly, not through the proxy) just
    // before the burst.
    let slow_node = cl.node_of(b"p-1");
    let mut slow = cl.nodes[slow_node].conn();
    slow.send(&["DEBUG", "SLEEP", "0.5"]).unwrap();
    let t0 = Instant::now();
    let replies = c.pipeline(&cmds);
    let elapsed = t0.elapsed();
    assert_eq!(
        slow.read_ok(),
        Reply::ok(),
        "DEBUG SLEEP on node{slow_node}"
    );

    for (i, r) in replies.iter().enumerate() {
        let want = match i % 10 {
            0 => Reply::bulk(format!("e{i}")),
            5 => Reply::Int(1),
            _ => Reply::bulk(format!("v{i}")),
        };
        assert_eq!(
            *r,
            want,
            "reply #{i} of {N} out of order or wrong ({})",
            describe(&cmds[i])
        );
    }
    // Sanity check of the test itself: that node really was slow during the burst.
    assert!(
        elapsed >= Duration::from_millis(300),
        "burst took only {elapsed:?}"
    );
    // Every node took part.
    for (i, n) in cl.nodes.iter().enumerate() {
        assert!(n.dbsize() > 1000, "node{i} holds only {} keys", n.dbsize());
    }
}

#[test]
fn binary_empty_and_large_values() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    // One key and one value holding every byte value, CR LF included.
    let all: Vec<u8> = (0..=255u8).collect();
    assert_eq!(c.cmd(&[b"SET".as_slice(), &all, &all]), Reply::ok());
    assert_eq!(c.cmd(&[b"GET".as_slice(), &all]), Reply::Bulk(all.clone()));
    // Keys made of single bytes and of bytes around "\r\n".
    let cmds: Vec<Vec<Vec<u8>>> = (0..=255u8)
        .flat_map(|b| {
            [vec![b], vec![b'k', b'\r', b'\n', b, b'\n']]
                .map(|k| vec![b"SET".to_vec(), k.clone(), [b"v\r\n", &k[..]].concat()])
        })
        .collect();
    assert!(c.pipeline(&cmds).iter().all(|r| *r == Reply::ok()));
    let gets: Vec<Vec<Vec<u8>>> = cmds
        .iter()
        .map(|cmd| vec![b"GET".to_vec(), cmd[1].clone()])
        .collect();
    for (g, (cmd, r)) in cmds.iter().zip(c.pipeline(&gets)).enumerate() {
        assert_eq!(
            r,
            Reply::Bulk(cmd[2].clone()),
            "GET #{g} of key {}",
            escape(&cmd[1])
        );
    }
    // The empty key and the empty value.
    assert_eq!(c.cmd(&["SET", "", "empty-key"]), Reply::ok());
    assert_eq!(c.cmd(&["GET", ""]), Reply::bulk("empty-key"));
    assert_eq!(c.cmd(&["SET", "empty-value", ""]), Reply::ok());
    assert_eq!(c.cmd(&["GET", "empty-value"]), Reply::bulk(""));
    assert_eq!(c.cmd(&["EXISTS", ""]), Reply::Int(1));
    // 1 MB values, alone and through a split command.
    let mut rng = Rng::new(7);
    let (big1, big2) = (rng.bytes(1 << 20), rng.bytes(1 << 20));
    assert_eq!(c.cmd(&[b"SET".as_slice(), b"big1", &big1]), Reply::ok());
    assert_eq!(c.cmd(&["GET", "big1"]), Reply::Bulk(big1.clone()));
    let mset = [b"MSET".as_slice(), b"big2", &big2, b"big3", &big1];
    assert_eq!(c.cmd(&mset), Reply::ok());
    assert_eq!(
        c.cmd(&["MGET", "big3", "big2", "big1"]),
        Reply::Array(vec![
            Reply::Bulk(big1.clone()),
            Reply::Bulk(big2),
            Reply::Bulk(big1)
        ])
    );
}

#[test]
fn split_commands_match_a_single_redis() {
    let cl = Cluster::start(3, "");
    let reference = RedisServer::start();
    let (mut c, mut r) = (cl.conn(), reference.conn());
    let pool: Vec<String> = (0..12).map(|i| format!("sk{i}")).collect();
    let mut rng = Rng::new(42);
    let pick = |rng: &mut Rng, n: u64| -> Vec<String> {
        // Keys of the pool (duplicates likely) and sometimes a key that never exists.
        (0..1 + rng.below(n))
            .map(|_| match rng.below(8) {
                0 => format!("missing{}", rng.below(3)),
                _ => pool[rng.below(pool.len() as u64) as usize].clone(),
            })
            .collect()
    };
    for step in 0..400 {
        let mut cmd: Vec<String> = Vec::new();
        match rng.below(8) {
            0 | 1 => {
                cmd.push("MSET".into());
                for k in pick(&mut rng, 5) {
                    cmd.push(k);
                    cmd.push(format!("v{step}"));
                }
            }
            2 | 3 => {
                cmd.push("MGET".into());
                cmd.extend(pick(&mut rng, 8));
            }
            4 => {
                cmd.push(["DEL", "UNLINK"][rng.below(2) as usize].into());
                cmd.extend(pick(&mut rng, 4));
            }
            5 => {
                cmd.push("EXISTS".into());
                cmd.extend(pick(&mut rng, 8));
            }
            6 => {
                cmd.push("TOUCH".into());
                cmd.extend(pick(&mut rng, 6));
            }
            _ => {
                // A non-string value: MGET must say nil for it, like Redis does.
                let k = pick(&mut rng, 1).remove(0);
                cmd.extend(["SADD".to_string(), k, "m".into()]);
            }
        }
        let (got, want) = (c.cmd(&cmd), r.cmd(&cmd));
        assert_eq!(
            got,
            want,
            "step {step}: `{}`: proxy vs single Redis",
            describe(&cmd)
        );
    }
    // Final state is identical too.
    for k in &pool {
        for probe in [["TYPE", k.as_str()], ["DUMP", k.as_str()]] {
            assert_eq!(c.cmd(&probe), r.cmd(&probe), "{} {k}", probe[0]);
        }
    }
}

#[test]
fn same_node_multi_key_commands_work_and_cross_node_ones_are_refused() {
    let cl = Cluster::start(3, "");
    let reference = RedisServer::start();
    let (mut c, mut r) = (cl.conn(), reference.conn());
    check_table(
        &mut c,
        &mut r,
        &[
            ("SET {t}a 1", "+OK"),
            ("RENAME {t}a {t}b", "+OK"),
            ("GET {t}b", "1"),
            ("SADD {t}s1 1 2 3", ":3"),
            ("SADD {t}s2 2 3 4", ":3"),
            ("SINTERSTORE {t}d {t}s1 {t}s2", ":2"),
            ("SMEMBERS {t}d", "[2, 3]"),
            ("SUNIONSTORE {t}u {t}s1 {t}s2", ":4"),
            ("SMOVE {t}s1 {t}s2 1", ":1"),
            ("SINTERCARD 2 {t}s1 {t}s2", ":2"),
            ("RPUSH {t}l1 x y", ":2"),
            ("LMOVE {t}l1 {t}l2 LEFT RIGHT", "x"),
            ("LRANGE {t}l2 0 -1", "[x]"),
            ("ZADD {t}z1 1 a", ":1"),
            ("ZUNIONSTORE {t}zu 1 {t}z1", ":1"),
            ("PFADD {t}h1 a", ":1"),
            ("PFADD {t}h2 b", ":1"),
            ("PFMERGE {t}h3 {t}h1 {t}h2", "+OK"),
            ("PFCOUNT {t}h3", ":2"),
            ("MSETNX {t}m1 a {t}m2 b", ":1"),
        ],
    );
    let eval = [
        "EVAL",
        "return redis.call('GET', KEYS[1]) .. ARGV[1]",
        "2",
        "{t}b",
        "{t}x",
        "!",
    ];
    assert_eq!(c.cmd(&eval), Reply::bulk("1!"));
    let tagged = [
        "{t}b", "{t}d", "{t}u", "{t}s2", "{t}l2", "{t}zu", "{t}h3", "{t}m2",
    ];
    let homes: Vec<usize> = tagged.iter().map(|k| cl.node_of(k.as_bytes())).collect();
    assert!(
        homes.iter().all(|h| *h == homes[0]),
        "{{t}} keys spread over nodes {homes:?}"
    );

    // Two keys on different nodes.
    let keys: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, "v"]), Reply::ok());
    }
    let a = &keys[0];
    let na = cl.node_of(a.as_bytes());
    let b = keys
        .iter()
        .find(|k| cl.node_of(k.as_bytes()) != na)
        .expect("20 keys on one node");
    let cross: Vec<Vec<&str>> = vec![
        vec!["RENAME", a, b],
        vec!["SMOVE", a, b, "m"],
        vec!["LMOVE", a, b, "LEFT", "RIGHT"],
        vec!["SUNIONSTORE", a, a, b],
        vec!["PFMERGE", a, b],
        vec!["EVAL", "return 1", "2", a, b],
    ];
    for cmd in &cross {
        let got = c.cmd(cmd);
        assert!(
            got.is_error() && got.err_text().contains("CROSSSLOT"),
            "`{}` across nodes: expected an error containing CROSSSLOT, got {got}",
            describe(cmd)
        );
    }
    assert_eq!(
        c.cmd(&["GET", a]),
        Reply::bulk("v"),
        "a refused command changed data"
    );
    assert_eq!(
        c.cmd(&["GET", b]),
        Reply::bulk("v"),
        "a refused command changed data"
    );
}

#[test]
fn local_commands() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
    assert_eq!(c.cmd(&["PING", "hello there"]), Reply::bulk("hello there"));
    assert_eq!(c.cmd(&["ECHO", "e\r\nx"]), Reply::bulk("e\r\nx"));
    assert_eq!(c.cmd(&["SELECT", "0"]), Reply::ok());
    assert!(
        c.cmd(&["SELECT", "1"]).is_error(),
        "SELECT 1 must be refused"
    );
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "tester"]), Reply::ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Reply::bulk("tester"));
    let id = c.cmd(&["CLIENT", "ID"]).int();
    assert!(id > 0, "CLIENT ID = {id}");
    let other = cl.conn().cmd(&["CLIENT", "ID"]).int();
    assert_ne!(id, other, "two clients got the same CLIENT ID");
    assert_eq!(
        cl.conn().cmd(&["CLIENT", "GETNAME"]),
        Reply::Nil,
        "name leaked to another client"
    );
    let count = c.cmd(&["COMMAND", "COUNT"]).int();
    assert!(count > 200, "COMMAND COUNT = {count}");

    // RESP3 and back.
    let hello = c.cmd(&["HELLO", "3"]);
    let Reply::Map(kv) = &hello else {
        panic!("HELLO 3 must return a map, got {hello}")
    };
    let proto = kv
        .iter()
        .find(|(k, _)| k.bytes() == b"proto")
        .map(|(_, v)| v.clone());
    assert_eq!(proto, Some(Reply::Int(3)), "HELLO 3 reply: {hello}");
    assert_eq!(c.cmd(&["HSET", "hm", "f", "v"]), Reply::Int(1));
    assert_eq!(
        c.cmd(&["HGETALL", "hm"]),
        Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))])
    );
    assert_eq!(c.cmd(&["GET", "nosuch"]), Reply::Nil);
    let hello2 = c.cmd(&["HELLO", "2"]);
    assert!(
        matches!(hello2, Reply::Array(_)),
        "HELLO 2 must return a flat array, got {hello2}"
    );
    assert_eq!(c.cmd(&["HGETALL", "hm"]), Reply::bulks(&["f", "v"]));
    // Another client that never said HELLO still gets RESP2.
    assert_eq!(cl.conn().cmd(&["HGETALL", "hm"]), Reply::bulks(&["f", "v"]));

    // Inline commands typed by hand.
    c.send_raw(b"PING\r\n").unwrap();
    assert_eq!(c.read_ok(), Reply::Status("PONG".into()));
    c.send_raw(b"SET inline 123\r\nGET inline\r\n").unwrap();
    assert_eq!(c.read_ok(), Reply::ok());
    assert_eq!(c.read_ok(), Reply::bulk("123"));

    // QUIT: +OK, then the proxy closes the connection.
    assert_eq!(c.cmd(&["QUIT"]), Reply::ok());
    assert_eq!(
        c.closed_within(Duration::from_secs(3)),
        Ok(true),
        "QUIT must close the connection"
    );
}

#[test]
fn refused_and_unknown_commands_keep_the_connection() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    assert_eq!(c.cmd(&["SET", "still", "here"]), Reply::ok());
    let refused: &[&[&str]] = &[
        &["CONFIG", "REWRITE"],
        &["DEBUG", "SLEEP", "0"],
        &["SHUTDOWN"],
        &["MONITOR"],
        &["CLUSTER", "INFO"],
        &["SELECT", "1"],
        &["REPLICAOF", "NO", "ONE"],
        &["SWAPDB", "0", "1"],
    ];
    for cmd in refused {
        let got = c.cmd(cmd);
        assert!(
            got.is_error(),
            "`{}` must be refused, got {got}",
            describe(cmd)
        );
        let text = got.err_text().to_ascii_lowercase();
        assert!(
            text.contains(&cmd[0].to_ascii_lowercase()),
            "`{}`: the error should name the command, got {got}",
            describe(cmd)
        );
        c.assert_alive(&format!("after `{}`", describe(cmd)));
        assert_eq!(
            c.cmd(&["GET", "still"]),
            Reply::bulk("here"),
            "after `{}`",
            describe(cmd)
        );
    }
    for n in &cl.nodes {
        assert!(
            answers_ping(n.port()),
            "a backend stopped answering: SHUTDOWN leaked?"
        );
    }
    let got = c.cmd(&["NOSUCHCOMMAND", "a", "b"]);
    assert!(got.is_error(), "unknown command: {got}");
    assert_eq!(c.cmd(&["GET", "still"]), Reply::bulk("here"));
    // Wrong arity is an error too, not a dropped connection.
    assert!(c.cmd(&["GET"]).is_error());
    assert!(c.cmd(&["SET", "k"]).is_error());
    assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
}

/// Runs redis-benchmark against `port` (bounded by `timeout 60`) and asserts it ran clean.
fn run_benchmark(port: u16, extra: &[&str]) {
    let out = Command::new("timeout")
        .args([
            "60",
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args([
            "-t", "set,get", "-n", "20000", "-c", "20", "-r", "1000", "-q",
        ])
        .args(extra)
        .output()
        .expect("run redis-benchmark (apt-get install redis-tools)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let what = format!("redis-benchmark {extra:?}:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "exit {}; {what}", out.status);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    assert!(errors.is_empty(), "server errors: {errors:?}; {what}");
    // With -q, progress lines end in \r; the results are "SET: N requests per second...".
    let results: Vec<&str> = stdout.split(['\r', '\n']).collect();
    for t in ["SET", "GET"] {
        assert!(
            results
                .iter()
                .any(|l| l.starts_with(&format!("{t}: ")) && l.contains("requests per second")),
            "no {t} result; {what}"
        );
    }
}

#[test]
fn redis_benchmark_runs_clean() {
    let cl = Cluster::start(3, "");
    run_benchmark(cl.proxy.port(), &[]);
    run_benchmark(cl.proxy.port(), &["-P", "16"]);
    // 80k writes over a 1000-key space: every key exists, spread over all nodes.
    let sizes: Vec<i64> = cl.nodes.iter().map(|n| n.dbsize()).collect();
    assert!(sizes.iter().all(|s| *s > 0), "keys per node: {sizes:?}");
    assert_eq!(sizes.iter().sum::<i64>(), 1000, "keys per node: {sizes:?}");
    let mut c = cl.conn();
    // redis-benchmark writes 3-byte values (-d default).
    let v = c.cmd(&["GET", "key:000000000042"]);
    assert_eq!(v.bytes().len(), 3, "GET key:000000000042 = {v}");
    assert_eq!(
        c.cmd(&["DBSIZE"]),
        Reply::Int(1000),
        "DBSIZE through the proxy (sum)"
    );
}

/// Not a test of the proxy: guards the harness's own RESP parser and compact form.
#[test]
fn harness_reply_parser() {
    let bytes = b"+OK\r\n-ERR x\r\n:5\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n$1\r\na\r\n*-1\r\n%1\r\n+k\r\n,1.5\r\n_\r\n#t\r\n~1\r\n:1\r\n=7\r\ntxt:abc\r\n$2\r\nab";
    let (replies, left) = parse_all(bytes).unwrap();
    let compact: Vec<String> = replies.iter().map(Reply::compact).collect();
    assert_eq!(
        compact,
        [
            "+OK",
            "-ERR x",
            ":5",
            "a\\x0d\\x0a",
            "nil",
            "[a, nil]",
            "{+k: ,1.5}",
            "nil",
            "#t",
            "~[:1]",
            "abc"
        ]
    );
    assert_eq!(left, 6);
    assert!(parse_all(b"?\r\n").is_err());
}

/// Byte-for-byte: replies through the proxy equal a single Redis's, in RESP2 and in
/// RESP3 (merged split replies included: nil vs `_`, doubles, sets, maps).
#[test]
fn raw_replies_match_a_single_redis_in_resp2_and_resp3() {
    let cl = Cluster::start(3, "");
    let reference = RedisServer::start();
    for proto in ["2", "3"] {
        let (mut c, mut r) = (cl.conn(), reference.conn());
        if proto == "3" {
            assert!(matches!(c.cmd(&["HELLO", "3"]), Reply::Map(_)));
            assert!(matches!(r.cmd(&["HELLO", "3"]), Reply::Map(_)));
        }
        let lines = [
            "MSET $a 1 $b 2 $c 3 $d 4",
            "MGET $a $nope $c $a $d",
            "MGET $nope",
            "GET $nope",
            "HSET $h f1 v1 f2 v2",
            "HGETALL $h",
            "HGETALL $nope",
            "HGET $h nope",
            "ZADD $z 1.5 a 2 b",
            "ZRANGE $z 0 -1 WITHSCORES",
            "ZSCORE $z a",
            "ZINCRBY $z 1 b",
            "SADD $s 1 2 3",
            "SMEMBERS $s",
            "SISMEMBER $s 2",
            "EXISTS $a $nope $a $b",
            "TOUCH $a $b $nope",
            "DEL $c $nope $c",
            "UNLINK $d $d",
            "TTL $a",
            "INCRBYFLOAT $a 0.5",
            "XADD $x 1-1 f v",
            "XRANGE $x - +",
            "RPUSH $l a b",
            "LPOP $l 5",
            "LPOP $l 5",
            "LPOP $l",
            "PING",
            "PING hi",
            "ECHO x",
            "TYPE $h",
            "DBSIZE",
        ];
        for line in lines {
            let line = line.replace('$', &format!("r{proto}:"));
            let args: Vec<&str> = line.split_whitespace().collect();
            let (got, want) = (c.cmd_raw(&args), r.cmd_raw(&args));
            assert!(
                got == want,
                "RESP{proto} `{line}`: proxy sent {} but Redis sends {}",
                escape(&got),
                escape(&want)
            );
        }
    }
}

/// Many clients pipelining at once over the shared backend connections: each gets
/// exactly its own replies.
#[test]
fn many_clients_never_get_each_others_replies() {
    let cl = Cluster::start(3, "");
    let port = cl.proxy.port();
    std::thread::scope(|s| {
        for t in 0..32 {
            s.spawn(move || {
                let mut c = Conn::connect(port);
                let mut cmds: Vec<Vec<String>> = Vec::new();
                let mut want: Vec<Reply> = Vec::new();
                for i in 0..300 {
                    let (k, v) = (format!("mc{t}-{i}"), format!("client{t}-value{i}"));
                    cmds.push(vec!["SET".into(), k.clone(), v.clone()]);
                    want.push(Reply::ok());
                    cmds.push(vec!["GET".into(), k.clone()]);
                    want.push(Reply::bulk(&v));
                    if i % 10 == 9 {
                        let prev = format!("mc{t}-{}", i - 1);
                        cmds.push(vec!["MGET".into(), prev, k, format!("mc{t}-none")]);
                        let pv = format!("client{t}-value{}", i - 1);
                        want.push(Reply::Array(vec![
                            Reply::bulk(pv),
                            Reply::bulk(v),
                            Reply::Nil,
                        ]));
                    }
                }
                for round in 0..2 {
                    let got = c.pipeline(&cmds);
                    for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert_eq!(g, w, "client {t}, round {round}, reply #{j}");
                    }
                }
            });
        }
    });
}

/// A client that hangs up while its requests wait on (slowed) backends must not shift
/// the replies of the clients sharing those backend connections.
#[test]
fn a_client_hanging_up_mid_pipeline_does_not_confuse_others() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let setup: Vec<Vec<String>> = (0..50)
        .flat_map(|i| {
            [
                vec!["SET".into(), format!("ka{i}"), "value-of-A".into()],
                vec!["SET".into(), format!("kb{i}"), format!("B{i}")],
            ]
        })
        .collect();
    assert!(c.pipeline(&setup).iter().all(|r| *r == Reply::ok()));

    let mut sleepers: Vec<Conn> = cl.nodes.iter().map(RedisServer::conn).collect();
    for s in &mut sleepers {
        s.send(&["DEBUG", "SLEEP", "0.3"]).unwrap();
    }
    let mut a = cl.conn();
    let burst: Vec<u8> = (0..5000)
        .flat_map(|i| encode(&["GET", &format!("ka{}", i % 50)]))
        .collect();
    a.send_raw(&burst).unwrap();
    drop(a); // hang up with ~5000 requests in flight

    let cmds: Vec<Vec<String>> = (0..2000)
        .map(|i| vec!["GET".into(), format!("kb{}", i % 50)])
        .collect();
    for round in 0..3 {
        for (i, r) in c.pipeline(&cmds).iter().enumerate() {
            let want = Reply::bulk(format!("B{}", i % 50));
            assert_eq!(
                *r, want,
                "round {round}, reply #{i} of the client that stayed"
            );
        }
    }
    for s in &mut sleepers {
        assert_eq!(s.read_ok(), Reply::ok());
    }
}

/// DBSIZE and INFO keyspace aggregate over all nodes (key counts summed).
#[test]
fn dbsize_and_info_keyspace_are_aggregated() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let cmds: Vec<Vec<String>> = (0..30)
        .map(|i| vec!["SET".into(), format!("agg{i}"), "v".into()])
        .collect();
    assert!(c.pipeline(&cmds).iter().all(|r| *r == Reply::ok()));
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(30));
    let info = c.cmd(&["INFO", "keyspace"]);
    let text = String::from_utf8_lossy(info.bytes()).into_owned();
    assert!(
        text.contains("# Keyspace") && text.contains("db0:keys=30,"),
        "INFO keyspace should report db0:keys=30 summed over the nodes, got:\n{text}"
    );
}
