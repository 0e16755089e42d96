//! Every blocking command, in every setting a client can put it in: inside MULTI
//! (Redis runs it without blocking), inside a script, with timeout 0 and with a
//! timeout, pipelined behind other commands, and after the client has gone. The
//! rule: every request gets exactly one reply, or the connection is closed.

mod common;

use common::diff::*;
use common::*;

/// Each blocking command, on keys of one hash tag, with timeout `t` (seconds)
/// where the pattern says `@` (in milliseconds where it says `#`).
fn blocking_commands(t: &str) -> Vec<Vec<String>> {
    let ms = ((t.parse::<f64>().unwrap_or(0.0)) * 1000.0)
        .round()
        .to_string();
    let w = |s: &str| {
        s.split(' ')
            .map(|x| x.replace('@', t).replace('#', &ms))
            .collect::<Vec<_>>()
    };
    vec![
        w("BLPOP {b}l1 @"),
        w("BRPOP {b}l1 {b}l2 @"),
        w("BLMOVE {b}l1 {b}l2 LEFT RIGHT @"),
        w("BRPOPLPUSH {b}l1 {b}l2 @"),
        w("BLMPOP @ 2 {b}l1 {b}l2 LEFT"),
        w("BZPOPMIN {b}z1 @"),
        w("BZPOPMAX {b}z1 {b}z2 @"),
        w("BZMPOP @ 1 {b}z1 MIN"),
        w("XREAD BLOCK # STREAMS {b}s1 $"),
        w("XREADGROUP GROUP g c BLOCK # STREAMS {b}s1 >"),
    ]
}

fn owned(v: &[Vec<String>]) -> Vec<Vec<&[u8]>> {
    v.iter()
        .map(|c| c.iter().map(|a| a.as_bytes()).collect())
        .collect()
}

/// A stream with a consumer group, so XREADGROUP has something to read from.
fn group_setup() -> Vec<Vec<String>> {
    vec![
        "XGROUP CREATE {b}s1 g $ MKSTREAM"
            .split(' ')
            .map(String::from)
            .collect(),
    ]
}

#[test]
fn inside_multi_every_blocking_command_answers_at_exec() {
    let p = Pair::start();
    for cmd in blocking_commands("0") {
        let mut seq = group_setup();
        seq.push(vec!["MULTI".into()]);
        seq.push(cmd.clone());
        seq.push(vec!["LPUSH".into(), "{b}l3".into(), "x".into()]);
        seq.push(vec!["EXEC".into()]);
        seq.push(vec!["DEL".into(), "{b}s1".into(), "{b}l3".into()]);
        p.assert_same(&format!("MULTI, {}, EXEC", cmd.join(" ")), &owned(&seq));
    }
    // WAIT has no key: inside MULTI it is answered at EXEC as well.
    let seq = [
        args(&["MULTI"]),
        args(&["SET", "{b}k", "v"]),
        args(&["WAIT", "0", "0"]),
        args(&["EXEC"]),
    ];
    p.assert_same("MULTI, SET, WAIT, EXEC", &seq);
}

#[test]
fn pipelined_blocking_commands_with_timeouts_answer_in_order() {
    let p = Pair::start();
    for cmd in blocking_commands("0.05") {
        let mut seq = group_setup();
        seq.push(vec!["SET".into(), "{b}k".into(), "1".into()]);
        seq.push(cmd.clone());
        seq.push(vec!["INCR".into(), "{b}k".into()]);
        seq.push(cmd.clone());
        seq.push(vec!["GET".into(), "{b}k".into()]);
        seq.push(vec!["DEL".into(), "{b}s1".into()]);
        p.assert_same(&format!("pipelined {}", cmd.join(" ")), &owned(&seq));
    }
}

#[test]
fn blocking_commands_on_keys_with_data_answer_at_once() {
    let p = Pair::start();
    let setup = [
        "RPUSH {b}l1 a b c",
        "ZADD {b}z1 1 m 2 n",
        "XADD {b}s1 1-1 f v",
    ];
    for cmd in blocking_commands("0") {
        if cmd[0].starts_with("XREAD") {
            continue; // `$` and `>` only see entries added later
        }
        let mut seq: Vec<Vec<String>> = setup
            .iter()
            .map(|c| c.split(' ').map(String::from).collect())
            .collect();
        seq.push(cmd.clone());
        seq.push(vec![
            "DEL".into(),
            "{b}l1".into(),
            "{b}l2".into(),
            "{b}z1".into(),
            "{b}s1".into(),
        ]);
        p.assert_same(&format!("{} on data", cmd.join(" ")), &owned(&seq));
    }
}

#[test]
fn blocking_commands_inside_a_script_do_not_block() {
    let p = Pair::start();
    let cases = [
        "return redis.call('BLPOP', KEYS[1], 0)",
        "return redis.call('BRPOPLPUSH', KEYS[1], KEYS[2], 0)",
        "return redis.call('BZPOPMIN', KEYS[1], 0)",
    ];
    for script in cases {
        let seq = vec![
            args(&["EVAL", script, "2", "{b}l1", "{b}l2"]),
            args(&["PING"]),
        ];
        p.assert_same(script, &seq);
    }
}

#[test]
fn a_blocked_client_that_leaves_takes_no_data_meant_for_others() {
    let p = Pair::start();
    let node = node_index(&route(p.proxy.config_path(), &["{b}gone"])[0].1);
    let blocked_on_node = |n: &RedisServer| {
        let info = n.cmd(&["INFO", "clients"]);
        String::from_utf8_lossy(info.bytes())
            .lines()
            .find_map(|l| {
                l.strip_prefix("blocked_clients:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    for timeout in ["0", "30"] {
        let mut c = p.proxy.conn();
        c.send(&["BLPOP", "{b}gone", timeout]).unwrap();
        wait_until("the BLPOP blocks on its node", IO_TIMEOUT, || {
            blocked_on_node(&p.nodes[node]) == "1"
        });
        drop(c);
        wait_until("the node unblocks it", IO_TIMEOUT, || {
            blocked_on_node(&p.nodes[node]) == "0"
        });
        let mut other = p.proxy.conn();
        assert_eq!(other.cmd(&["RPUSH", "{b}gone", "v"]).int(), 1);
        assert_eq!(
            other.cmd(&["LLEN", "{b}gone"]).int(),
            1,
            "timeout {timeout}"
        );
        assert_eq!(other.cmd(&["DEL", "{b}gone"]).int(), 1);
    }
}

#[test]
fn a_blocked_client_is_answered_when_data_arrives_and_requests_behind_it_follow() {
    let p = Pair::start();
    let mut c = p.proxy.conn();
    c.send_raw(&pipeline(&[
        args(&["BLPOP", "{b}later", "0"]),
        args(&["GET", "{b}after"]),
        args(&["PING"]),
    ]))
    .unwrap();
    let mut other = p.proxy.conn();
    other.cmd(&["SET", "{b}after", "x"]);
    wait_until("the client is blocked", IO_TIMEOUT, || {
        let info = other.cmd(&["INFO", "clients"]);
        String::from_utf8_lossy(info.bytes()).contains("dedicated_connections:1\r")
    });
    assert_eq!(other.cmd(&["RPUSH", "{b}later", "v"]).int(), 1);
    c.set_timeout(IO_TIMEOUT);
    assert_eq!(c.read().unwrap(), Reply::bulks(&["{b}later", "v"]));
    assert_eq!(c.read().unwrap(), Reply::bulk("x"));
    assert_eq!(c.read().unwrap(), Reply::Status("PONG".into()));
    drop(c);
    wait_until("its dedicated connection is closed", IO_TIMEOUT, || {
        let info = other.cmd(&["INFO", "clients"]);
        String::from_utf8_lossy(info.bytes()).contains("dedicated_connections:0\r")
    });
}

#[test]
fn blocking_commands_on_different_nodes_in_one_pipeline_are_each_answered() {
    let p = Pair::start();
    // Keys of tags that live on different nodes.
    let tags: Vec<String> = (0..20).map(|i| format!("{{n{i}}}k")).collect();
    let owners = route(p.proxy.config_path(), &tags);
    let (a, b) = owners
        .iter()
        .find_map(|(k, n)| {
            owners
                .iter()
                .find(|(_, m)| m != n)
                .map(|(l, _)| (k.clone(), l.clone()))
        })
        .expect("two tags on two nodes");
    let seq = [
        args(&["BLPOP", &a, "0.05"]),
        args(&["BLPOP", &b, "0.05"]),
        args(&["RPUSH", &a, "v"]),
        args(&["BLPOP", &a, "0"]),
        args(&["BRPOP", &b, "0.05"]),
        args(&["PING"]),
    ];
    p.assert_same("blocking pops on two nodes", &seq);
}
