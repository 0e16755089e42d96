//! Transactions and blocked commands across topology changes: a transaction whose
//! keys moved is never reported as applied, a WATCH on a key that moved fails the
//! transaction, and a blocked command whose key moved is answered (and can be
//! sent again) instead of waiting on a node that no longer owns its key.

mod common;

use common::topo::Rig;
use common::*;

fn exists_anywhere(rig: &Rig, key: &str) -> Vec<usize> {
    (0..rig.servers.len())
        .filter(|&i| rig.servers[i].cmd(&["EXISTS", key]).int() == 1)
        .collect()
}

#[test]
fn a_transaction_whose_key_moved_is_aborted_at_exec() {
    let rig = Rig::start(4, 3);
    let load = rig.steady_load();
    let mut c = rig.proxy.conn();
    let keys: Vec<String> = (0..400).map(|i| format!("tx:{i}")).collect();
    let before = rig.owners(&keys);
    // A transaction on each of 60 keys: the reload moves some of them.
    let mut conns: Vec<(String, Conn)> = Vec::new();
    for k in keys.iter().take(60) {
        let mut t = rig.proxy.conn();
        assert_eq!(t.cmd(&["MULTI"]), Reply::ok());
        assert_eq!(t.cmd(&["SET", k, "v"]), Reply::Status("QUEUED".into()));
        conns.push((k.clone(), t));
    }
    rig.reload(&[0, 1, 2, 3]);
    let after = rig.owners(&keys);
    let mut moved = 0;
    for (k, mut t) in conns {
        let r = t.cmd(&["EXEC"]);
        if before[&k] != after[&k] {
            moved += 1;
            assert!(
                r.is_error() && r.err_text().starts_with("EXECABORT"),
                "{k} moved {} -> {}: EXEC gave {r:?}",
                before[&k],
                after[&k]
            );
            assert!(
                exists_anywhere(&rig, &k).is_empty(),
                "{k} was written somewhere"
            );
            assert_eq!(c.cmd(&["GET", &k]), Reply::Nil);
        } else {
            assert_eq!(r.compact(), "[+OK]", "{k} did not move");
        }
    }
    assert!(moved > 0, "no key of the transactions moved");
    Rig::assert_load_unhurt(load);
}

#[test]
fn a_watch_on_a_key_that_moved_fails_the_transaction() {
    let rig = Rig::start(4, 3);
    let load = rig.steady_load();
    let keys: Vec<String> = (0..400).map(|i| format!("w:{i}")).collect();
    let before = rig.owners(&keys);
    let mut watchers: Vec<(String, Conn)> = Vec::new();
    for k in keys.iter().take(40) {
        let mut t = rig.proxy.conn();
        assert_eq!(t.cmd(&["WATCH", k]), Reply::ok());
        watchers.push((k.clone(), t));
    }
    rig.reload(&[0, 1, 2, 3]);
    let after = rig.owners(&keys);
    let mut writer = rig.proxy.conn();
    let mut moved = 0;
    for (k, mut t) in watchers {
        // Another client writes the key where it lives now.
        assert_eq!(writer.cmd(&["SET", &k, "other"]), Reply::ok());
        assert_eq!(t.cmd(&["MULTI"]), Reply::ok());
        t.cmd(&["SET", &k, "mine"]);
        let r = t.cmd(&["EXEC"]);
        if before[&k] != after[&k] {
            moved += 1;
            assert_eq!(r, Reply::Nil, "{k} moved: EXEC must fail as a WATCH does");
            assert_eq!(writer.cmd(&["GET", &k]), Reply::bulk("other"));
        }
    }
    assert!(moved > 0, "no watched key moved");
    Rig::assert_load_unhurt(load);
}

#[test]
fn a_transaction_whose_node_left_is_aborted() {
    let rig = Rig::start(3, 3);
    let load = rig.steady_load();
    let keys: Vec<String> = (0..200).map(|i| format!("gone:{i}")).collect();
    let owners = rig.owners(&keys);
    let k = keys
        .iter()
        .find(|k| owners[*k] == "node0")
        .expect("a key on node0")
        .clone();
    let mut t = rig.proxy.conn();
    assert_eq!(t.cmd(&["MULTI"]), Reply::ok());
    t.cmd(&["SET", &k, "v"]);
    rig.reload(&[1, 2]);
    let r = t.cmd(&["EXEC"]);
    assert!(
        r.is_error() && r.err_text().starts_with("EXECABORT"),
        "EXEC gave {r:?}"
    );
    assert!(
        exists_anywhere(&rig, &k).is_empty(),
        "the value sits on a node"
    );
    Rig::assert_load_unhurt(load);
}

#[test]
fn blocked_clients_whose_keys_moved_are_answered_and_can_retry() {
    let rig = Rig::start(4, 3);
    let load = rig.steady_load();
    let keys: Vec<String> = (0..400).map(|i| format!("bl:{i}")).collect();
    let before = rig.owners(&keys);
    let mut blocked: Vec<(String, Conn)> = Vec::new();
    for k in keys.iter().take(30) {
        let mut c = rig.proxy.conn();
        c.send(&["BLPOP", k, "0"]).unwrap();
        blocked.push((k.clone(), c));
    }
    let mut probe = rig.proxy.conn();
    wait_until("30 clients blocked", IO_TIMEOUT, || {
        let info = String::from_utf8_lossy(probe.cmd(&["INFO", "clients"]).bytes()).into_owned();
        info.contains("blocked_clients:30\r")
    });
    rig.reload(&[0, 1, 2, 3]);
    let after = rig.owners(&keys);
    let mut pusher = rig.proxy.conn();
    let mut moved = 0;
    for (k, mut c) in blocked {
        c.set_timeout(IO_TIMEOUT);
        if before[&k] == after[&k] {
            assert_eq!(pusher.cmd(&["RPUSH", &k, "v"]).int(), 1);
            assert_eq!(c.read().unwrap(), Reply::bulks(&[k.as_str(), "v"]));
            continue;
        }
        moved += 1;
        let r = c
            .read()
            .expect("an answer for the blocked command whose key moved");
        assert!(r.err_text().starts_with("TRYAGAIN"), "{k}: {r:?}");
        // Sent again, it blocks on the new owner and a push wakes it.
        c.send(&["BLPOP", &k, "0"]).unwrap();
        wait_until("blocked again", IO_TIMEOUT, || {
            let i = node_index(&after[&k]);
            let info = String::from_utf8_lossy(rig.servers[i].cmd(&["INFO", "clients"]).bytes())
                .into_owned();
            !info.contains("blocked_clients:0\r")
        });
        assert_eq!(pusher.cmd(&["RPUSH", &k, "v"]).int(), 1);
        assert_eq!(c.read().unwrap(), Reply::bulks(&[k.as_str(), "v"]));
    }
    assert!(moved > 0, "no blocked key moved");
    Rig::assert_load_unhurt(load);
}

#[test]
fn refused_and_admin_commands_inside_multi_fail_the_transaction() {
    let rig = Rig::start(3, 3);
    let load = rig.steady_load();
    let mut c = rig.proxy.conn();
    let hz = |s: &RedisServer| s.cmd(&["CONFIG", "GET", "hz"]).items()[1].clone();
    let before: Vec<Reply> = rig.servers.iter().map(hz).collect();
    for cmd in [
        &["CONFIG", "SET", "hz", "50"][..],
        &["FLUSHALL"],
        &["DEBUG", "SLEEP", "0"],
    ] {
        assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
        assert_eq!(c.cmd(&["SET", "{m}k", "v"]), Reply::Status("QUEUED".into()));
        assert!(c.cmd(cmd).is_error(), "{cmd:?} inside MULTI");
        let r = c.cmd(&["EXEC"]);
        assert!(r.err_text().starts_with("EXECABORT"), "{cmd:?}: {r:?}");
        assert_eq!(c.cmd(&["GET", "{m}k"]), Reply::Nil);
    }
    let after: Vec<Reply> = rig.servers.iter().map(hz).collect();
    assert_eq!(before, after, "hz changed on a node");
    Rig::assert_load_unhurt(load);
}
