//! Subscriptions across topology changes: channels whose owner moves are
//! subscribed on the new owner, patterns reach nodes that join, and every message
//! published after the change is delivered exactly once.

mod common;

use common::topo::Rig;
use common::*;
use std::collections::BTreeMap;

const CHANNELS: usize = 60;

fn channels() -> Vec<String> {
    (0..CHANNELS).map(|i| format!("ch:{i}")).collect()
}

/// A client subscribed to `names`.
fn subscribed(rig: &Rig, names: &[String]) -> Conn {
    let mut sub = rig.proxy.conn();
    let mut cmd = vec!["SUBSCRIBE".to_string()];
    cmd.extend(names.iter().cloned());
    sub.send(&cmd).unwrap();
    confirmations(&mut sub, names.len());
    sub
}

/// Reads `n` subscribe confirmations.
fn confirmations(c: &mut Conn, n: usize) {
    for i in 0..n {
        let r = c.read().unwrap_or_else(|e| panic!("confirmation {i}: {e}"));
        assert_eq!(r.items()[0], Reply::bulk("subscribe"));
    }
}

/// Reads `n` pushed messages; returns (channel, payload) pairs.
fn messages(c: &mut Conn, n: usize) -> Vec<(String, String)> {
    c.set_timeout(IO_TIMEOUT);
    (0..n)
        .map(|i| {
            let r = c
                .read()
                .unwrap_or_else(|e| panic!("message {i} of {n}: {e}"));
            let items = r.items();
            let text = |x: &Reply| String::from_utf8_lossy(x.bytes()).into_owned();
            (text(&items[items.len() - 2]), text(&items[items.len() - 1]))
        })
        .collect()
}

/// Publishes one message per channel; each must reach exactly one subscriber.
fn publish_all(p: &mut Conn, names: &[String], tag: &str) {
    for ch in names {
        let r = p.cmd(&["PUBLISH", ch, &format!("{tag}:{ch}")]);
        assert_eq!(
            r.int(),
            1,
            "PUBLISH {ch} ({tag}) reached {} subscribers",
            r.int()
        );
    }
}

fn assert_each_once(got: Vec<(String, String)>, names: &[String], tag: &str) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (ch, msg) in got {
        assert_eq!(msg, format!("{tag}:{ch}"));
        *seen.entry(ch).or_default() += 1;
    }
    for ch in names {
        assert_eq!(
            seen.get(ch),
            Some(&1),
            "{tag}: {ch} delivered {:?} times",
            seen.get(ch)
        );
    }
}

#[test]
fn channels_follow_their_owner_when_nodes_join_and_leave() {
    let rig = Rig::start(4, 3);
    let load = rig.steady_load();
    let names = channels();
    let mut sub = subscribed(&rig, &names);
    let mut publisher = rig.proxy.conn();
    let before = rig.owners(&names);

    rig.reload(&[0, 1, 2, 3]);
    let after = rig.owners(&names);
    let moved = names.iter().filter(|c| before[*c] != after[*c]).count();
    assert!(
        moved >= 5,
        "only {moved} of {CHANNELS} channels moved to the new node"
    );
    publish_all(&mut publisher, &names, "joined");
    assert_each_once(messages(&mut sub, CHANNELS), &names, "joined");

    // The first node leaves: its channels move to the others.
    rig.reload(&[1, 2, 3]);
    publish_all(&mut publisher, &names, "left");
    assert_each_once(messages(&mut sub, CHANNELS), &names, "left");
    // Nothing else is queued: the next frame is PING's.
    sub.send(&["PING"]).unwrap();
    assert_eq!(sub.read().unwrap().compact(), "[pong, ]");
    Rig::assert_load_unhurt(load);
}

#[test]
fn patterns_reach_nodes_that_join() {
    let rig = Rig::start(4, 3);
    let load = rig.steady_load();
    let mut psub = rig.proxy.conn();
    assert_eq!(
        psub.cmd(&["PSUBSCRIBE", "news.*"]).compact(),
        "[psubscribe, news.*, :1]"
    );
    rig.reload(&[0, 1, 2, 3]);
    let names: Vec<String> = (0..40).map(|i| format!("news.{i}")).collect();
    let owners = rig.owners(&names);
    assert!(
        owners.values().any(|n| n == "node3"),
        "no channel on the new node"
    );
    let mut publisher = rig.proxy.conn();
    publish_all(&mut publisher, &names, "p");
    psub.set_timeout(IO_TIMEOUT);
    let mut seen = 0;
    for _ in 0..names.len() {
        let r = psub.read().expect("pmessage");
        assert_eq!(r.items()[0], Reply::bulk("pmessage"));
        seen += 1;
    }
    assert_eq!(seen, names.len());
    Rig::assert_load_unhurt(load);
}

#[test]
fn messages_published_while_nodes_change_under_load_arrive_once() {
    let rig = Rig::start(5, 3);
    let load = rig.steady_load();
    let names = channels();
    let mut sub = subscribed(&rig, &names);
    let mut publisher = rig.proxy.conn();
    let mut sent = 0;
    for (round, members) in [
        vec![0, 1, 2, 3],
        vec![0, 1, 2, 3, 4],
        vec![1, 2, 4],
        vec![0, 1, 2],
    ]
    .iter()
    .enumerate()
    {
        rig.reload(members);
        let tag = format!("r{round}");
        publish_all(&mut publisher, &names, &tag);
        assert_each_once(messages(&mut sub, CHANNELS), &names, &tag);
        sent += CHANNELS;
    }
    assert_eq!(sent, 4 * CHANNELS);
    Rig::assert_load_unhurt(load);
}
