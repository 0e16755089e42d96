//! The near cache against real redis-servers: writes made directly on a node are
//! seen through the proxy (the server's tracking pushes), a killed tracking
//! connection leaves nothing stale, large values are never cached, writes to
//! other keys cost no invalidation messages, and the same bytes sent to Redis and
//! to the proxy get the same replies.

mod common;

use common::admin::{Scrape, scrape};
use common::*;
use std::time::{Duration, Instant};

/// Longest wait for a change to be seen through the proxy.
const DEADLINE: Duration = Duration::from_secs(5);
/// The near-cache settings of these tests.
const CACHE: &str = "near_cache:\n  keys: [\"cfg:*\", \"user:*\"]\n  max_entry: 1KiB\n";

fn counter(s: &Scrape, name: &str) -> f64 {
    s.sum(name, &[])
}

fn hits(p: &Proxy) -> f64 {
    counter(&scrape(p.admin_port()), "ringproxy_near_cache_hits_total")
}

/// Reads `key` through `c` until it is `want` (bounded); returns how long it took.
fn until_seen(c: &mut Conn, key: &str, want: &Reply) -> Duration {
    let t0 = Instant::now();
    loop {
        if c.cmd(&["GET", key]) == *want {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < DEADLINE, "{key} never became {want:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A node (kept alive), a proxy over it with `yaml` (the near-cache settings), a direct
/// connection to the node and one to the proxy.
struct Rig {
    _node: RedisServer,
    p: Proxy,
    direct: Conn,
    c: Conn,
}

fn rig(yaml: &str) -> Rig {
    let node = RedisServer::start();
    let p = Proxy::with_nodes(&[&node], yaml);
    let (direct, c) = (Conn::connect(node.port()), p.conn());
    Rig {
        _node: node,
        p,
        direct,
        c,
    }
}

/// Reads until the proxy answers from memory (the tracking connection is up).
fn warm(p: &Proxy, c: &mut Conn, key: &str) {
    wait_until("served from the near cache", DEADLINE, || {
        let before = hits(p);
        c.cmd(&["GET", key]);
        c.cmd(&["GET", key]);
        hits(p) > before
    });
}

#[test]
fn direct_writes_are_seen_through_the_proxy() {
    let Rig {
        p,
        mut direct,
        mut c,
        _node,
    } = rig(CACHE);
    assert_eq!(direct.cmd(&["SET", "cfg:a", "v0"]), Reply::ok());
    warm(&p, &mut c, "cfg:a");
    let mut worst = Duration::ZERO;
    let trials = 200;
    for i in 1..=trials {
        let v = format!("v{i}");
        assert_eq!(direct.cmd(&["SET", "cfg:a", &v]), Reply::ok());
        worst = worst.max(until_seen(&mut c, "cfg:a", &Reply::bulk(&v)));
        // And cached again: the next read is a hit.
        assert_eq!(c.cmd(&["GET", "cfg:a"]), Reply::bulk(&v));
    }
    let s = scrape(p.admin_port());
    println!(
        "{trials} direct writes: longest gap until seen through the proxy {worst:?}; hits {}, misses {}, messages {}",
        counter(&s, "ringproxy_near_cache_hits_total"),
        counter(&s, "ringproxy_near_cache_misses_total"),
        counter(&s, "ringproxy_near_cache_invalidation_messages_total"),
    );
    assert!(counter(&s, "ringproxy_near_cache_hits_total") >= trials as f64);
    // Expiry and FLUSHALL are invalidations too.
    assert_eq!(direct.cmd(&["SET", "cfg:t", "x", "PX", "100"]), Reply::ok());
    warm(&p, &mut c, "cfg:t");
    until_seen(&mut c, "cfg:t", &Reply::Nil);
    warm(&p, &mut c, "cfg:a");
    assert_eq!(direct.cmd(&["FLUSHALL"]), Reply::ok());
    until_seen(&mut c, "cfg:a", &Reply::Nil);
}

#[test]
fn a_killed_tracking_connection_leaves_nothing_stale() {
    let Rig {
        p,
        mut direct,
        mut c,
        _node,
    } = rig(CACHE);
    let mut worst = Duration::ZERO;
    for round in 0..10 {
        let (old, new) = (format!("old{round}"), format!("new{round}"));
        assert_eq!(direct.cmd(&["SET", "cfg:k", &old]), Reply::ok());
        until_seen(&mut c, "cfg:k", &Reply::bulk(&old));
        warm(&p, &mut c, "cfg:k");
        // Kill every tracking client, then write while none tracks: no push can
        // tell the proxy about this write; only the flush on loss keeps it right.
        let Reply::Bulk(list) = direct.cmd(&["CLIENT", "LIST"]) else {
            panic!()
        };
        let list = String::from_utf8_lossy(&list).into_owned();
        let tracking: Vec<&str> = list
            .lines()
            .filter(|l| {
                l.split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('t'))
            })
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .collect();
        assert!(!tracking.is_empty(), "a tracking client: {list}");
        for id in &tracking {
            assert_eq!(direct.cmd(&["CLIENT", "KILL", "ID", id]).int(), 1);
        }
        assert_eq!(direct.cmd(&["SET", "cfg:k", &new]), Reply::ok());
        worst = worst.max(until_seen(&mut c, "cfg:k", &Reply::bulk(&new)));
        // Until reads are served from memory again (tracking is back), and after:
        // never the old value.
        let before = hits(&p);
        let t0 = Instant::now();
        while hits(&p) <= before + 5.0 {
            assert_eq!(
                c.cmd(&["GET", "cfg:k"]),
                Reply::bulk(&new),
                "round {round}: stale"
            );
            assert!(t0.elapsed() < DEADLINE, "tracking never came back");
        }
    }
    println!("after a killed tracking connection: longest gap until fresh {worst:?}");
    // Tracking is back: a direct write is pushed again and reads hit again.
    warm(&p, &mut c, "cfg:k");
    assert_eq!(direct.cmd(&["SET", "cfg:k", "last"]), Reply::ok());
    until_seen(&mut c, "cfg:k", &Reply::bulk("last"));
}

#[test]
fn values_over_the_entry_limit_are_never_cached() {
    let Rig {
        p,
        mut direct,
        mut c,
        _node,
    } = rig(CACHE);
    let big = "x".repeat(2000);
    assert_eq!(direct.cmd(&["SET", "cfg:big", &big]), Reply::ok());
    assert_eq!(direct.cmd(&["SET", "cfg:small", "s"]), Reply::ok());
    warm(&p, &mut c, "cfg:small");
    let before = hits(&p);
    for _ in 0..50 {
        assert_eq!(c.cmd(&["GET", "cfg:big"]), Reply::bulk(&big));
    }
    assert_eq!(hits(&p), before, "a 2000-byte value under max_entry 1KiB");
    let bytes = scrape(p.admin_port()).sum("ringproxy_near_cache_bytes", &[]);
    assert!(bytes > 0.0 && bytes < 1000.0, "{bytes}");
}

#[test]
fn writes_to_other_keys_send_no_invalidations() {
    let Rig {
        p,
        mut direct,
        mut c,
        _node,
    } = rig(CACHE);
    assert_eq!(c.cmd(&["SET", "cfg:a", "1"]), Reply::ok());
    warm(&p, &mut c, "cfg:a");
    let msgs = |p: &Proxy| {
        counter(
            &scrape(p.admin_port()),
            "ringproxy_near_cache_invalidation_messages_total",
        )
    };
    let before = msgs(&p);
    let cmds: Vec<Vec<String>> = (0..2000)
        .map(|i| vec!["SET".into(), format!("other:{i}"), "v".into()])
        .collect();
    assert!(c.pipeline(&cmds).iter().all(|r| *r == Reply::ok()));
    // A covered key's write, as a marker: once its message is in, the others were too.
    assert_eq!(direct.cmd(&["SET", "cfg:a", "2"]), Reply::ok());
    until_seen(&mut c, "cfg:a", &Reply::bulk("2"));
    let sent = msgs(&p) - before;
    println!("2000 writes to uncovered keys + 1 covered: {sent} invalidation messages");
    assert_eq!(sent, 1.0);
}

/// The same bytes to one redis-server and to a proxy with the near cache (and
/// coalescing) on: reads and writes of covered keys, each pipeline sent several
/// times so later rounds are served from memory, in RESP2 and RESP3.
#[test]
fn replies_are_redis_bytes() {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let refs: Vec<&RedisServer> = nodes.iter().collect();
    let pair = diff::Pair {
        proxy: Proxy::with_nodes(&refs, &format!("{CACHE}coalesce: true\n")),
        redis: RedisServer::start(),
        nodes,
    };
    let rounds: Vec<Vec<Vec<&str>>> = vec![
        vec![
            vec!["SET", "cfg:a", "1"],
            vec!["HSET", "cfg:h", "f", "v", "g", "w"],
        ],
        vec![
            vec!["GET", "cfg:a"],
            vec!["GET", "cfg:missing"],
            vec!["HGETALL", "cfg:h"],
            vec!["HGET", "cfg:h", "f"],
            vec!["STRLEN", "cfg:a"],
            vec!["INCR", "cfg:a"],
            vec!["GET", "cfg:a"],
            vec!["DEL", "cfg:a"],
            vec!["GET", "cfg:a"],
            vec!["SET", "cfg:a", "again"],
            vec!["GET", "cfg:a"],
            vec!["MSET", "cfg:a", "m", "cfg:b", "n"],
            vec!["GET", "cfg:a"],
            vec!["GET", "cfg:b"],
            vec!["HGET", "cfg:h", "nope"],
            vec!["LPUSH", "cfg:a", "x"],
        ],
    ];
    for resp3 in [false, true] {
        let connect = |port| {
            let mut c = Conn::connect(port);
            if resp3 {
                assert!(!c.cmd(&["HELLO", "3"]).is_error());
            }
            c
        };
        let (mut r, mut q) = (connect(pair.redis.port()), connect(pair.proxy.port()));
        for round in 0..4 {
            for cmds in &rounds {
                let cmds: Vec<Vec<&[u8]>> = cmds.iter().map(|c| diff::args(c)).collect();
                let bytes = diff::pipeline(&cmds);
                let want = diff::until_marker(&mut r, &bytes);
                let got = diff::until_marker(&mut q, &bytes);
                diff::assert_same(&format!("round {round} resp3 {resp3}"), &want, &got);
            }
        }
    }
    assert!(
        hits(&pair.proxy) > 0.0,
        "some reads were served from memory"
    );
}

#[test]
fn bad_settings_are_refused_before_binding() {
    let node = RedisServer::start();
    for (yaml, want) in [
        ("near_cache:\n  keys: [\"*\"]\n", "near_cache.keys[0]"),
        ("near_cache:\n  keys: [\"a*b\"]\n", "near_cache.keys[0]"),
        ("near_cache:\n  keys: [\"cfg:*\", \"cfg:x*\"]\n", "overlaps"),
        ("near_cache:\n  keys: []\n", "near_cache.keys"),
        (
            "near_cache:\n  keys: [\"a*\"]\n  max_entry: 1GiB\n",
            "near_cache.max_entry",
        ),
    ] {
        let (text, _, _) = Proxy::config_for(&[&node], yaml);
        let Err(err) = Proxy::try_start(&text) else {
            panic!("{yaml}: accepted")
        };
        assert!(err.contains(want), "{yaml}: {err}");
    }
}

/// With `hot: true`, a key the detector sees often enough is cached (default-mode
/// tracking: the server tracks the keys the proxy read), writes to it directly on
/// the node are seen, the proxy's own client sees its writes, and a cold key is
/// never served from memory.
#[test]
fn hot_keys_are_cached_and_kept_right() {
    let Rig {
        p,
        mut direct,
        mut c,
        _node,
    } = rig(
        "near_cache:\n  hot: true\n  hot_rate: 20\nhot_keys: {window: 2s, sample: 1}\ntimeouts: {request: 300ms}\n",
    );
    assert_eq!(direct.cmd(&["SET", "celeb", "v0"]), Reply::ok());
    assert_eq!(direct.cmd(&["SET", "cold", "c"]), Reply::ok());
    let t0 = Instant::now();
    warm(&p, &mut c, "celeb");
    println!("hot key cached after {:?}", t0.elapsed());
    let mut worst = Duration::ZERO;
    for i in 1..=50 {
        let v = format!("v{i}");
        assert_eq!(direct.cmd(&["SET", "celeb", &v]), Reply::ok());
        worst = worst.max(until_seen(&mut c, "celeb", &Reply::bulk(&v)));
        // Its own write, through the proxy: seen at once.
        let own = format!("own{i}");
        assert_eq!(c.cmd(&["SET", "celeb", &own]), Reply::ok());
        assert_eq!(c.cmd(&["GET", "celeb"]), Reply::bulk(&own), "own write {i}");
    }
    println!("hot key: 50 direct writes, longest gap until seen {worst:?}");
    let before = hits(&p);
    for _ in 0..5 {
        assert_eq!(c.cmd(&["GET", "cold"]), Reply::bulk("c"));
    }
    assert_eq!(hits(&p), before, "a cold key is not cached");
}
