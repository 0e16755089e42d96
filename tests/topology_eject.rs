//! Ejection and commands over the whole pool: with `eject: true`, a node that is
//! down and off the ring is skipped by SCAN, DBSIZE, KEYS, RANDOMKEY (every key they
//! would touch lives on live nodes); with `eject: false` they fail fast and say the
//! node's keys are unreachable. A node that comes back gets the pool's scripts and
//! functions replayed before it is on the ring again.

mod common;

use common::admin::wait_topology;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

fn health(eject: bool) -> String {
    format!(
        "health:\n  interval: 50ms\n  timeout: 200ms\n  failures: 1\n  successes: 1\n  eject: {eject}\n  max_ejected_percent: 50\n"
    )
}

fn start(nodes: &[&RedisServer], eject: bool) -> (Proxy, u16) {
    let (yaml, _, admin) = Proxy::config_for(nodes, &health(eject));
    (Proxy::start(&yaml), admin)
}

fn wait_on_ring(admin: u16, node: &str, on: bool) {
    wait_topology(
        admin,
        &format!("{node} on_ring={on}"),
        HEALTH_TIMEOUT,
        |t| t.node(node).on_ring == on && t.node(node).up() == on,
    );
}

fn write_keys(c: &mut Conn, n: usize) {
    for i in 0..n {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), "v"]), Reply::ok());
    }
}

fn scan_all(c: &mut Conn) -> BTreeSet<Vec<u8>> {
    let mut seen = BTreeSet::new();
    let mut cursor = b"0".to_vec();
    loop {
        let r = c.cmd(&[&b"SCAN"[..], &cursor, b"COUNT", b"50"]);
        let items = r.items();
        assert_eq!(items.len(), 2, "SCAN reply: {r}");
        seen.extend(items[1].items().iter().map(|k| k.bytes().to_vec()));
        cursor = items[0].bytes().to_vec();
        if cursor == b"0" {
            return seen;
        }
    }
}

#[test]
fn whole_pool_commands_skip_an_ejected_node() {
    let mut s: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let (proxy, admin) = start(&[&s[0], &s[1], &s[2]], true);
    let mut c = proxy.conn();
    write_keys(&mut c, 300);
    assert!(s[1].dbsize() > 0, "node1 holds keys");
    s[1].kill();
    wait_on_ring(admin, "node1", false);
    let live: BTreeSet<Vec<u8>> = [&s[0], &s[2]].iter().flat_map(|n| n.keys()).collect();
    assert_eq!(scan_all(&mut c), live, "SCAN over the live nodes");
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(live.len() as i64));
    assert_eq!(c.cmd(&["KEYS", "*"]).items().len(), live.len());
    let random = c.cmd(&["RANDOMKEY"]);
    assert!(live.contains(random.bytes()), "RANDOMKEY: {random}");
    // Writes go to the live nodes meanwhile (cache behaviour).
    assert_eq!(c.cmd(&["SET", "during", "x"]), Reply::ok());
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(live.len() as i64 + 1));
}

#[test]
fn whole_pool_commands_fail_fast_without_eject() {
    let mut s: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let (proxy, admin) = start(&[&s[0], &s[1], &s[2]], false);
    let mut c = proxy.conn();
    write_keys(&mut c, 100);
    s[1].kill();
    wait_topology(admin, "node1 down", HEALTH_TIMEOUT, |t| {
        !t.node("node1").up()
    });
    for cmd in [vec!["DBSIZE"], vec!["KEYS", "*"], vec!["RANDOMKEY"]] {
        let r = c.cmd(&cmd);
        assert!(
            r.is_error() && r.err_text().contains("keys are unreachable"),
            "{cmd:?}: {r}"
        );
    }
    // A SCAN walk fails when it reaches the down node, and says why.
    let mut cursor = b"0".to_vec();
    let err = loop {
        let r = c.cmd(&[&b"SCAN"[..], &cursor, b"COUNT", b"1000"]);
        if r.is_error() {
            break r;
        }
        cursor = r.items()[0].bytes().to_vec();
        assert_ne!(cursor, b"0", "the walk cannot end without node1");
    };
    assert!(err.err_text().contains("keys are unreachable"), "{err}");
}

#[test]
fn a_returning_node_gets_scripts_and_functions_first() {
    let mut s: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let (proxy, admin) = start(&[&s[0], &s[1], &s[2]], true);
    let mut c = proxy.conn();
    let before = c.cmd(&["SCRIPT", "LOAD", "return 'before'"]);
    s[1].kill();
    wait_on_ring(admin, "node1", false);
    let during = c.cmd(&["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"]);
    let lib = "#!lua name=elib\nredis.register_function('eget', function(keys) return redis.call('GET', keys[1]) end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), Reply::bulk("elib"));
    s[1].restart();
    wait_on_ring(admin, "node1", true);
    let keys: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
    let on_node1: Vec<String> = route(proxy.config_path(), &keys)
        .into_iter()
        .filter(|(_, n)| n == "node1")
        .map(|(k, _)| k)
        .take(3)
        .collect();
    assert!(!on_node1.is_empty());
    for key in &on_node1 {
        assert_eq!(c.cmd(&["SET", key, "v"]), Reply::ok());
        for (sha, want) in [(&before, "before"), (&during, "v")] {
            let args = [&b"EVALSHA"[..], sha.bytes(), b"1", key.as_bytes()];
            assert_eq!(c.cmd(&args), Reply::bulk(want), "EVALSHA on {key}");
        }
        assert_eq!(
            c.cmd(&["FCALL", "eget", "1", key]),
            Reply::bulk("v"),
            "{key}"
        );
    }
    assert_eq!(
        s[1].dbsize(),
        on_node1.len() as i64,
        "the keys are on node1"
    );
}

#[test]
fn check_says_what_eject_costs() {
    let dir = TempDir::new("eject-check");
    let path = dir.join("ringproxy.yaml");
    let (yaml, _, _) = Proxy::config_for(&[], &health(true));
    let yaml = yaml.replace(
        "nodes:\n",
        &format!(
            "nodes:\n  - {{name: n0, addr: \"127.0.0.1:{}\"}}\n",
            free_port()
        ),
    );
    std::fs::write(&path, &yaml).unwrap();
    let out = std::process::Command::new(ringproxy_bin())
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run ringproxy --check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("health.eject"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("are lost when it returns"), "{text}");
    std::fs::write(&path, yaml.replace("eject: true", "eject: false")).unwrap();
    let out = std::process::Command::new(ringproxy_bin())
        .args(["--check", "--config"])
        .arg(&path)
        .output()
        .expect("run ringproxy --check");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("health.eject"));
}
