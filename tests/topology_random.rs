//! Random topology changes while clients hold state, under a steady load: seeded
//! rounds of reloads that add, remove and re-weight nodes, each with a subscriber,
//! blocked clients, open transactions and a SCAN walk in flight. After each change
//! the rule must hold: every message published after it is delivered exactly once,
//! every blocked client is woken or answered, no transaction is reported applied that
//! was not, and no key present on a node throughout is skipped by SCAN.

mod common;

use common::topo::Rig;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const ROUNDS: usize = 8;
const CHANNELS: usize = 30;
const BLOCKED: usize = 6;
const TXS: usize = 6;
const STABLE_KEYS: usize = 600;

/// A member set for a round: servers 0 and 1 always, the rest at random, with a
/// random weight each.
fn members(rng: &mut Rng) -> Vec<(usize, u64)> {
    let mut m = vec![(0, 1 + rng.below(3)), (1, 1 + rng.below(3))];
    for i in 2..5 {
        if rng.below(2) == 1 {
            m.push((i, 1 + rng.below(3)));
        }
    }
    m
}

fn reload_weighted(rig: &Rig, m: &[(usize, u64)]) {
    let admin_port = rig.proxy.admin_port();
    let before = common::admin::topology(admin_port).version;
    let mut y = format!(
        "listen: 127.0.0.1:{}\nadmin: 127.0.0.1:{admin_port}\nnodes:\n",
        rig.proxy.port()
    );
    for &(i, w) in m {
        let addr = rig.servers[i].addr();
        y.push_str(&format!(
            "  - {{name: node{i}, addr: \"{addr}\", weight: {w}}}\n"
        ));
    }
    rig.proxy.write_config(&y);
    common::admin::wait_topology(admin_port, "reload", Duration::from_secs(10), |t| {
        t.version > before
    });
}

/// Keys written once, on servers 0 and 1 only (present there throughout).
fn stable_keys(rig: &Rig) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for i in 0..STABLE_KEYS {
        let k = format!("stable:{i}");
        rig.servers[i % 2].cmd(&["SET", &k, "1"]);
        set.insert(k);
    }
    set
}

/// SCAN steps through the proxy from `cursor`, at most `steps` of them.
fn scan(c: &mut Conn, cursor: &mut String, steps: usize, seen: &mut BTreeSet<String>) {
    for _ in 0..steps {
        let r = c.cmd(&["SCAN", cursor.as_str(), "MATCH", "stable:*", "COUNT", "20"]);
        let items = r.items();
        *cursor = String::from_utf8_lossy(items[0].bytes()).into_owned();
        for k in items[1].items() {
            seen.insert(String::from_utf8_lossy(k.bytes()).into_owned());
        }
        if cursor == "0" {
            return;
        }
    }
}

struct Counts {
    messages: usize,
    woken: usize,
    retried: usize,
    applied: usize,
    aborted: usize,
}

#[test]
fn random_reloads_keep_every_promise_under_load() {
    let seed = std::env::var("RINGPROXY_TOPO_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x7090_0001);
    let mut rng = Rng::new(seed);
    let rig = Rig::start(5, 3);
    let stable = stable_keys(&rig);
    let load = rig.steady_load();
    let started = Instant::now();
    let mut n = Counts {
        messages: 0,
        woken: 0,
        retried: 0,
        applied: 0,
        aborted: 0,
    };
    for round in 0..ROUNDS {
        one_round(&rig, &mut rng, round, &stable, &mut n);
    }
    Rig::assert_load_unhurt(load);
    eprintln!(
        "topology_random seed {seed:#x}: {ROUNDS} reloads, {} messages once each, {} blocked woken ({} after TRYAGAIN), {} transactions applied, {} aborted, {} stable keys scanned per round, {:.1} s",
        n.messages,
        n.woken,
        n.retried,
        n.applied,
        n.aborted,
        stable.len(),
        started.elapsed().as_secs_f64()
    );
}

fn one_round(rig: &Rig, rng: &mut Rng, round: usize, stable: &BTreeSet<String>, n: &mut Counts) {
    let tag = format!("r{round}");
    let channels: Vec<String> = (0..CHANNELS).map(|i| format!("ch:{tag}:{i}")).collect();
    let mut sub = rig.proxy.conn();
    let mut cmd = vec!["SUBSCRIBE".to_string()];
    cmd.extend(channels.iter().cloned());
    sub.send(&cmd).unwrap();
    for _ in 0..CHANNELS {
        sub.read().unwrap();
    }
    let blocked: Vec<(String, Conn)> = (0..BLOCKED)
        .map(|i| {
            let k = format!("bl:{tag}:{i}");
            let mut c = rig.proxy.conn();
            c.send(&["BLPOP", &k, "0"]).unwrap();
            (k, c)
        })
        .collect();
    let txs: Vec<(String, Conn)> = (0..TXS)
        .map(|i| {
            let k = format!("tx:{tag}:{i}");
            let mut c = rig.proxy.conn();
            assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
            assert_eq!(c.cmd(&["SET", &k, "v"]), Reply::Status("QUEUED".into()));
            (k, c)
        })
        .collect();
    let mut scanner = rig.proxy.conn();
    let (mut cursor, mut seen) = ("0".to_string(), BTreeSet::new());
    scan(
        &mut scanner,
        &mut cursor,
        1 + rng.below(8) as usize,
        &mut seen,
    );

    reload_weighted(rig, &members(rng));

    let mut publisher = rig.proxy.conn();
    for ch in &channels {
        assert_eq!(
            publisher.cmd(&["PUBLISH", ch, ch]).int(),
            1,
            "round {round}: PUBLISH {ch}"
        );
    }
    sub.set_timeout(IO_TIMEOUT);
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..CHANNELS {
        let r = sub
            .read()
            .unwrap_or_else(|e| panic!("round {round}: message: {e}"));
        *got.entry(String::from_utf8_lossy(r.items()[2].bytes()).into_owned())
            .or_default() += 1;
    }
    assert!(
        channels.iter().all(|c| got.get(c) == Some(&1)),
        "round {round}: {got:?}"
    );
    n.messages += CHANNELS;
    for (k, c) in blocked {
        wake(&mut publisher, k, c, round, n);
    }
    for (k, mut c) in txs {
        let r = c.cmd(&["EXEC"]);
        let value = publisher.cmd(&["GET", &k]);
        if r.compact() == "[+OK]" {
            assert_eq!(
                value,
                Reply::bulk("v"),
                "round {round}: {k} reported applied"
            );
            n.applied += 1;
        } else {
            assert!(
                r.err_text().starts_with("EXECABORT"),
                "round {round}: {k}: {r:?}"
            );
            assert_eq!(value, Reply::Nil, "round {round}: {k} aborted but written");
            n.aborted += 1;
        }
    }
    scan(&mut scanner, &mut cursor, 10_000, &mut seen);
    let missing: Vec<&String> = stable.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "round {round}: SCAN skipped {} stable keys",
        missing.len()
    );
}

/// Pushes to a blocked client's key: it gets the value, or TRYAGAIN once (its key
/// moved) and the value after sending the command again.
fn wake(publisher: &mut Conn, k: String, mut c: Conn, round: usize, n: &mut Counts) {
    c.set_timeout(IO_TIMEOUT);
    assert_eq!(publisher.cmd(&["RPUSH", &k, "x"]).int(), 1);
    let r = c
        .read()
        .unwrap_or_else(|e| panic!("round {round}: {k} not answered: {e}"));
    if r.is_error() {
        assert!(
            r.err_text().starts_with("TRYAGAIN"),
            "round {round}: {k}: {r:?}"
        );
        let again = c.cmd(&["BLPOP", &k, "1"]);
        assert_eq!(
            again,
            Reply::bulks(&[k.as_str(), "x"]),
            "round {round}: {k} retried"
        );
        n.retried += 1;
    } else {
        assert_eq!(r, Reply::bulks(&[k.as_str(), "x"]), "round {round}: {k}");
    }
    n.woken += 1;
}
