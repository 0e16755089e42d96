//! `ringproxy route`: where the proxy places keys, read from the CLI.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use super::proxy::ringproxy_bin;
use super::util::tail_str;

/// Runs `ringproxy route --config <config> KEY...` and returns `(key, node name)` per
/// key, in order. The CLI prints one line per key: `key name addr` (whitespace-separated;
/// keys must be plain ASCII without spaces). Lines that do not start with a requested key
/// (headers, blank lines) are ignored. Panics on a non-zero exit or a missing key.
pub fn route<K: AsRef<str>>(config: &Path, keys: &[K]) -> Vec<(String, String)> {
    let out = Command::new(ringproxy_bin())
        .arg("route")
        .arg("--config")
        .arg(config)
        .args(keys.iter().map(|k| k.as_ref()))
        .output()
        .expect("run ringproxy route");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ringproxy route exited with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        tail_str(&stdout, 10),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for line in stdout.lines() {
        let mut f = line.split_whitespace();
        if let (Some(k), Some(n)) = (f.next(), f.next()) {
            found.entry(k).or_insert(n);
        }
    }
    keys.iter()
        .map(|k| {
            let k = k.as_ref();
            let n = found.get(k).unwrap_or_else(|| {
                panic!(
                    "ringproxy route printed no line for key {k:?}; output:\n{}",
                    tail_str(&stdout, 10)
                )
            });
            (k.to_string(), n.to_string())
        })
        .collect()
}

/// The index `i` of a node named `node<i>` (the names `Proxy::config_for`
/// gives); panics on any other name.
pub fn node_index(name: &str) -> usize {
    name.strip_prefix("node")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("route printed node {name:?}, not node<i>"))
}

/// `per_node` keys `<prefix>:<i>` for each of the `nodes` nodes (named `node0`, ...),
/// as `ringproxy route` places them with `config`: `out[i]` are keys of node `i`.
pub fn keys_per_node(
    config: &Path,
    prefix: &str,
    nodes: usize,
    per_node: usize,
) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new(); nodes];
    let mut next = 0;
    while out.iter().any(|v| v.len() < per_node) {
        assert!(next < 100_000, "could not find {per_node} keys per node");
        let batch: Vec<String> = (next..next + 200)
            .map(|i| format!("{prefix}:{i}"))
            .collect();
        next += 200;
        for (k, node) in route(config, &batch) {
            let i = node_index(&node);
            if out[i].len() < per_node {
                out[i].push(k);
            }
        }
    }
    out
}
