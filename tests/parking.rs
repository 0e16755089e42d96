//! Idle clients are parked: after a second without requests a session that holds
//! nothing frees its serving state (CLIENT LIST then shows `tot-mem=0`), and its
//! next request is served as before, with the client's state intact (protocol,
//! name, login); clients holding state (a transaction, subscriptions) stay served.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// How long a client may take to be parked: a second idle, then the next sweep
/// (once a second), with margin for a busy machine.
const PARK_LIMIT: Duration = Duration::from_secs(15);

/// CLIENT LIST as `observer` sees it: (id, tot-mem) of every client.
fn memory_by_client(observer: &mut Conn) -> Vec<(i64, usize)> {
    let list = observer.cmd(&["CLIENT", "LIST"]);
    let text = String::from_utf8_lossy(list.bytes()).to_string();
    text.lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|f| f.strip_prefix(name))
                    .map(str::to_string)
            };
            Some((
                field("id=")?.parse().ok()?,
                field("tot-mem=")?.parse().ok()?,
            ))
        })
        .collect()
}

/// Polls CLIENT LIST until every client in `ids` shows `tot-mem=0` (parked);
/// false when `PARK_LIMIT` passes first.
fn wait_parked(observer: &mut Conn, ids: &[i64]) -> bool {
    let start = Instant::now();
    while start.elapsed() < PARK_LIMIT {
        let listed = memory_by_client(observer);
        let parked = |id: &i64| listed.iter().any(|(i, m)| i == id && *m == 0);
        if ids.iter().all(parked) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn tot_mem(observer: &mut Conn, id: i64) -> Option<usize> {
    memory_by_client(observer)
        .into_iter()
        .find_map(|(i, m)| (i == id).then_some(m))
}

#[test]
fn a_parked_client_keeps_its_state_and_stateful_clients_stay_served() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let proxy = Proxy::with_nodes(&[&a, &b], "");
    let mut observer = proxy.conn();
    let mut named = proxy.conn();
    assert!(!named.cmd(&["HELLO", "3"]).is_error());
    assert_eq!(named.cmd(&["CLIENT", "SETNAME", "parked-one"]), Reply::ok());
    assert_eq!(named.cmd(&["HSET", "h", "f", "v"]).int(), 1);
    let named_id = named.cmd(&["CLIENT", "ID"]).int();
    let mut tx = proxy.conn();
    let tx_id = tx.cmd(&["CLIENT", "ID"]).int();
    assert_eq!(tx.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(tx.cmd(&["SET", "k2", "v2"]), Reply::Status("QUEUED".into()));
    let mut sub = proxy.conn();
    let sub_id = sub.cmd(&["CLIENT", "ID"]).int();
    assert!(!sub.cmd(&["SUBSCRIBE", "ch"]).is_error());

    assert!(
        wait_parked(&mut observer, &[named_id]),
        "the idle client was not parked: {:?}",
        memory_by_client(&mut observer)
    );
    // Holding state on the nodes or in the proxy: still served, buffers kept.
    assert_ne!(tot_mem(&mut observer, tx_id), Some(0));
    assert_ne!(tot_mem(&mut observer, sub_id), Some(0));

    // Served again: still RESP3 (a map), still named.
    assert_eq!(
        named.cmd(&["HGETALL", "h"]),
        Reply::Map(vec![(Reply::bulk("f"), Reply::bulk("v"))])
    );
    assert_eq!(named.cmd(&["CLIENT", "GETNAME"]), Reply::bulk("parked-one"));
    assert_eq!(tx.cmd(&["EXEC"]), Reply::Array(vec![Reply::ok()]));
    assert_eq!(observer.cmd(&["PUBLISH", "ch", "m"]).int(), 1);
    assert_eq!(
        sub.read().unwrap(),
        Reply::Array(vec![
            Reply::bulk("message"),
            Reply::bulk("ch"),
            Reply::bulk("m")
        ])
    );
}

#[test]
fn many_parked_clients_pipeline_again_in_order() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let proxy = Proxy::with_nodes(&[&a, &b], "");
    let mut observer = proxy.conn();
    let mut clients: Vec<Conn> = (0..100).map(|_| proxy.conn()).collect();
    let ids: Vec<i64> = clients
        .iter_mut()
        .map(|c| c.cmd(&["CLIENT", "ID"]).int())
        .collect();
    assert!(
        wait_parked(&mut observer, &ids),
        "not all 100 clients were parked"
    );
    for round in 0..2 {
        for (i, c) in clients.iter_mut().enumerate() {
            for j in 0..30 {
                let key = format!("c{i}:k{j}");
                c.send(&["SET", key.as_str(), &format!("{round}:{j}")])
                    .unwrap();
                c.send(&["GET", key.as_str()]).unwrap();
            }
        }
        for c in &mut clients {
            for j in 0..30 {
                assert_eq!(c.read().unwrap(), Reply::ok());
                assert_eq!(c.read().unwrap(), Reply::bulk(format!("{round}:{j}")));
            }
        }
        // Parked again between the rounds: the numbering of their replies goes on.
        assert!(
            wait_parked(&mut observer, &ids),
            "round {round}: not parked again"
        );
    }
}
