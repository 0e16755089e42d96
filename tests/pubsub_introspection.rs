//! PUBSUB CHANNELS / NUMSUB / NUMPAT answer for the whole ring, as one Redis would.

mod common;

use common::{Cluster, Reply};

#[test]
fn pubsub_introspection_covers_every_node() {
    let cl = Cluster::start(3, "");
    let channels: Vec<String> = (0..20).map(|i| format!("intro-{i}")).collect();
    let keys: Vec<&str> = channels.iter().map(String::as_str).collect();
    let nodes: std::collections::BTreeSet<String> = common::route(cl.proxy.config_path(), &keys)
        .into_iter()
        .map(|(_, node)| node)
        .collect();
    assert!(
        nodes.len() >= 2,
        "channels should spread over nodes: {nodes:?}"
    );
    let mut sub = cl.conn();
    let mut args = vec!["SUBSCRIBE".to_string()];
    args.extend(channels.iter().cloned());
    sub.send(&args).unwrap();
    for _ in &channels {
        assert!(
            matches!(sub.read().unwrap(), Reply::Array(_)),
            "subscribe confirmation"
        );
    }
    sub.send(&["PSUBSCRIBE", "intro.*"]).unwrap();
    assert!(matches!(sub.read().unwrap(), Reply::Array(_)));

    let mut c = cl.conn();
    let listed = c.cmd(&["PUBSUB", "CHANNELS", "intro-*"]);
    let mut got: Vec<Vec<u8>> = listed.items().iter().map(|r| r.bytes().to_vec()).collect();
    got.sort();
    let mut want: Vec<Vec<u8>> = channels.iter().map(|c| c.as_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(got, want, "PUBSUB CHANNELS over {} nodes", nodes.len());

    let counts = c.cmd(&["PUBSUB", "NUMSUB", "intro-0", "intro-7", "nobody"]);
    assert_eq!(counts.compact(), "[intro-0, :1, intro-7, :1, nobody, :0]");
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), Reply::Int(1));
    assert!(c.cmd(&["PUBSUB", "NOPE"]).is_error());
}

/// Redis 7.0 answers NUMSUB with a flat array of pairs to RESP3 clients too.
#[test]
fn numsub_is_an_array_for_resp3_clients_as_in_redis() {
    let cl = Cluster::start(3, "");
    let mut sub = cl.conn();
    sub.send(&["SUBSCRIBE", "r3-a", "r3-b"]).unwrap();
    sub.read().unwrap();
    sub.read().unwrap();
    let mut c = cl.conn();
    assert!(matches!(c.cmd(&["HELLO", "3"]), Reply::Map(_)));
    let counts = c.cmd(&["PUBSUB", "NUMSUB", "r3-a", "r3-b"]);
    assert_eq!(counts.compact(), "[r3-a, :1, r3-b, :1]");
}
