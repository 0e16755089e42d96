//! Tests of [`super`]: the replica and Sentinel fields, checked and defaulted.

use crate::config::replicas::{DEFAULT_MAX_REPLICA_LAG, DEFAULT_SENTINEL_REFRESH, ReadFrom};
use crate::config::*;
use std::time::Duration;

fn problems(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("expected problems")
        .into_iter()
        .map(|p| p.message)
        .collect()
}

#[test]
fn static_replicas_and_sentinel_nodes() {
    let text = "listen: 127.0.0.1:6380
read_from: prefer_replica
sentinel:
  addrs: [127.0.0.1:26379, 127.0.0.1:26380]
nodes:
  - name: a
    addr: 127.0.0.1:7001
    replicas: [127.0.0.1:7011, 127.0.0.1:7012]
  - sentinel: m1
";
    let c = parse(text).expect("valid");
    let p = &c.pools[0];
    assert_eq!(p.read_from, ReadFrom::PreferReplica);
    assert_eq!(p.max_replica_lag, DEFAULT_MAX_REPLICA_LAG);
    assert_eq!(p.nodes[0].replicas.len(), 2);
    assert_eq!(
        p.nodes[1].name, "m1",
        "a sentinel node is named after its master"
    );
    assert_eq!(p.nodes[1].addr, NodeAddr::Sentinel("m1".into()));
    let s = p.sentinel.as_ref().expect("sentinel section");
    assert_eq!((s.addrs.len(), s.refresh), (2, DEFAULT_SENTINEL_REFRESH));
}

#[test]
fn address_fields_that_do_not_fit_together() {
    let text = "listen: 127.0.0.1:6380
max_replica_lag: 0s
nodes:
  - name: a
    addr: 127.0.0.1:7001
    sentinel: m0
  - name: b
  - sentinel: m2
    replicas: [127.0.0.1:7003]
  - addr: 127.0.0.1:7004
    replicas: [127.0.0.1:7004, nowhere]
";
    let got = problems(text);
    for want in [
        "nodes[0].sentinel: give addr or sentinel, not both",
        "nodes[1]: addr (or sentinel) is required",
        "nodes[2].replicas: the replicas of a sentinel node are discovered, not listed",
        "nodes[3].replicas[0]: is the node's own addr",
        "sentinel: required when a node has `sentinel:`",
    ] {
        assert!(got.iter().any(|g| g == want), "{want:?} not in {got:#?}");
    }
    assert!(
        got.iter().any(|g| g.starts_with("nodes[3].replicas[1]:")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|g| g.starts_with("max_replica_lag:")),
        "{got:#?}"
    );
}

#[test]
fn sentinel_section_checks() {
    let text = "listen: 127.0.0.1:6380
sentinel:
  addrs: []
  username: u
  refresh: 10ms
nodes:
  - sentinel: m0
";
    let got = problems(text);
    for want in [
        "sentinel.addrs: give 1..=64 sentinel addresses",
        "sentinel.username: needs sentinel.password or sentinel.password_file",
    ] {
        assert!(got.iter().any(|g| g == want), "{want:?} not in {got:#?}");
    }
    assert!(
        got.iter().any(|g| g.starts_with("sentinel.refresh:")),
        "{got:#?}"
    );
    assert!(
        parse("listen: 127.0.0.1:6380\nread_from: nearest\nnodes: [{addr: 127.0.0.1:7001}]\n")
            .is_err()
    );
    let lag =
        parse("listen: 127.0.0.1:6380\nmax_replica_lag: 5s\nnodes: [{addr: 127.0.0.1:7001}]\n");
    assert_eq!(
        lag.expect("valid").pools[0].max_replica_lag,
        Duration::from_secs(5)
    );
}
