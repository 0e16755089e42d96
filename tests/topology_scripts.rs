//! Scripts and functions on nodes that join: what was loaded through the proxy
//! (SCRIPT LOAD, FUNCTION LOAD) is replayed on a node a reload adds, before the new
//! topology takes traffic, so EVALSHA and FCALL on its keys work at once; what was
//! flushed is not replayed.

mod common;

use common::admin::wait_topology;
use common::*;
use std::time::Duration;

const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
const SCRIPT: &str = "return redis.call('GET', KEYS[1])";
const FLUSHED: &str = "return 'flushed'";
const LIB: &str = "#!lua name=tlib\nredis.register_function('tget', function(keys, args) return redis.call('GET', keys[1]) end)";

fn yaml(listen: u16, admin: u16, nodes: &[&RedisServer]) -> String {
    let mut y = format!("listen: 127.0.0.1:{listen}\nadmin: 127.0.0.1:{admin}\nnodes:\n");
    for (i, s) in nodes.iter().enumerate() {
        y.push_str(&format!("  - {{name: node{i}, addr: \"{}\"}}\n", s.addr()));
    }
    y
}

/// Keys the proxy (with its current config file) places on `node`.
fn keys_on_node(proxy: &Proxy, node: &str, want: usize) -> Vec<String> {
    let candidates: Vec<String> = (0..400).map(|i| format!("key:{i}")).collect();
    let keys: Vec<String> = route(proxy.config_path(), &candidates)
        .into_iter()
        .filter(|(_, n)| n == node)
        .map(|(k, _)| k)
        .take(want)
        .collect();
    assert_eq!(keys.len(), want, "{want} keys of {node}");
    keys
}

/// The library names a server has (FUNCTION LIST, read directly).
fn libraries(s: &RedisServer) -> Vec<String> {
    s.cmd(&["FUNCTION", "LIST"])
        .items()
        .iter()
        .map(|lib| {
            let fields = lib.items();
            let at = fields
                .iter()
                .position(|f| f.bytes() == b"library_name")
                .expect("library_name field");
            String::from_utf8_lossy(fields[at + 1].bytes()).into_owned()
        })
        .collect()
}

#[test]
fn scripts_and_functions_reach_a_node_added_by_reload() {
    let s: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let (listen, admin) = (free_port(), free_port());
    let proxy = Proxy::start(&yaml(listen, admin, &[&s[0], &s[1]]));
    let mut c = proxy.conn();
    let flushed = c.cmd(&["SCRIPT", "LOAD", FLUSHED]);
    assert_eq!(c.cmd(&["SCRIPT", "FLUSH"]), Reply::ok());
    let sha = c.cmd(&["SCRIPT", "LOAD", SCRIPT]);
    let sha = String::from_utf8_lossy(sha.bytes()).into_owned();
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIB]), Reply::bulk("tlib"));

    proxy.write_config(&yaml(listen, admin, &[&s[0], &s[1], &s[2]]));
    wait_topology(admin, "version 2", RELOAD_TIMEOUT, |t| t.version >= 2);
    for key in keys_on_node(&proxy, "node2", 5) {
        assert_eq!(c.cmd(&["SET", &key, "v"]), Reply::ok());
        assert_eq!(
            c.cmd(&["EVALSHA", &sha, "1", &key]),
            Reply::bulk("v"),
            "EVALSHA on {key} (new node)"
        );
        assert_eq!(
            c.cmd(&["FCALL", "tget", "1", &key]),
            Reply::bulk("v"),
            "FCALL on {key} (new node)"
        );
    }
    assert_eq!(
        c.cmd(&["SCRIPT", "EXISTS", &sha]),
        Reply::Array(vec![Reply::Int(1)]),
        "SCRIPT EXISTS over every node"
    );
    for (i, n) in s.iter().enumerate() {
        assert_eq!(libraries(n), ["tlib"], "FUNCTION LIST on node{i}");
        assert_eq!(
            n.cmd(&[&b"SCRIPT"[..], b"EXISTS", flushed.bytes()]),
            Reply::Array(vec![Reply::Int(0)]),
            "a flushed script is not replayed (node{i})"
        );
    }
    assert!(
        !c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "tlib"])
            .items()
            .is_empty(),
        "FUNCTION LIST through the proxy"
    );
}
