//! CLIENT about the proxy's own clients: LIST / INFO in Redis's line format, KILL
//! with its filters, REPLY ON|OFF|SKIP, and the accepted or refused rest.

mod common;

use common::diff::*;
use common::*;
use std::collections::BTreeMap;

/// `key=value` fields of one CLIENT LIST line.
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn list(c: &mut Conn, args: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut cmd = vec!["CLIENT", "LIST"];
    cmd.extend_from_slice(args);
    let r = c.cmd(&cmd);
    String::from_utf8_lossy(r.bytes())
        .lines()
        .map(fields)
        .collect()
}

#[test]
fn client_list_and_info_show_the_proxys_clients_as_redis_does() {
    let p = Pair::start();
    let mut a = p.proxy.conn();
    let mut b = p.proxy.conn();
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), Reply::ok());
    let b_id = b.cmd(&["CLIENT", "ID"]).int();
    assert_eq!(b.cmd(&["SUBSCRIBE", "c1"]).compact(), "[subscribe, c1, :1]");
    let rows = list(&mut a, &[]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The same fields, in the same order, as a real server's line.
    let mut direct = p.redis.conn();
    let theirs = String::from_utf8_lossy(direct.cmd(&["CLIENT", "INFO"]).bytes()).into_owned();
    let ours = String::from_utf8_lossy(a.cmd(&["CLIENT", "INFO"]).bytes()).into_owned();
    let keys = |l: &str| {
        l.split(' ')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&ours), keys(&theirs), "CLIENT INFO fields");
    let me = fields(ours.trim_end());
    assert_eq!(me["name"], "alpha");
    assert_eq!(me["cmd"], "client|info");
    assert_eq!(me["laddr"], format!("127.0.0.1:{}", p.proxy.port()));
    assert!(ours.ends_with('\n'));
    let sub = list(&mut a, &["TYPE", "pubsub"]);
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0]["id"], b_id.to_string());
    assert_eq!(
        (sub[0]["sub"].as_str(), sub[0]["flags"].as_str()),
        ("1", "P")
    );
    assert_eq!(list(&mut a, &["TYPE", "normal"]).len(), 1);
    assert_eq!(list(&mut a, &["ID", &b_id.to_string(), "999999"]).len(), 1);
    // RESP3 clients get a verbatim string, as from Redis.
    let mut r3 = p.proxy.conn();
    r3.cmd(&["HELLO", "3"]);
    let raw = r3.cmd_raw(&["CLIENT", "INFO"]);
    assert!(
        raw.starts_with(b"=")
            && raw[raw.iter().position(|&c| c == b'\n').unwrap() + 1..].starts_with(b"txt:")
    );
}

#[test]
fn client_kill_closes_the_clients_it_names() {
    let p = Pair::start();
    let mut admin = p.proxy.conn();
    let mut victim = p.proxy.conn();
    let id = victim.cmd(&["CLIENT", "ID"]).int().to_string();
    let addr = fields(String::from_utf8_lossy(victim.cmd(&["CLIENT", "INFO"]).bytes()).trim_end())
        ["addr"]
        .clone();
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &id]).int(), 1);
    assert_eq!(victim.closed_within(IO_TIMEOUT), Ok(true), "killed by id");
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &id]).int(), 0, "gone");
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", &addr]).err_text(),
        "ERR No such client"
    );
    let mut second = p.proxy.conn();
    let addr2 = fields(String::from_utf8_lossy(second.cmd(&["CLIENT", "INFO"]).bytes()).trim_end())
        ["addr"]
        .clone();
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", &addr2]),
        Reply::ok(),
        "old form"
    );
    assert_eq!(second.closed_within(IO_TIMEOUT), Ok(true));
    // SKIPME yes (the default) spares the caller; SKIPME no does not.
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "TYPE", "normal"]).int(), 0);
    admin.send(&["CLIENT", "KILL", "SKIPME", "no"]).unwrap();
    let (got, closed) = admin.read_to_close(IO_TIMEOUT);
    assert_eq!((got.as_slice(), closed), (&b":1\r\n"[..], true));
}

#[test]
fn client_kill_errors_read_as_in_redis() {
    let p = Pair::start();
    for case in [
        "CLIENT KILL 1.2.3.4:5",
        "CLIENT KILL ID 0",
        "CLIENT KILL ID x",
        "CLIENT KILL ID 99999",
        "CLIENT KILL USER nobody",
        "CLIENT KILL TYPE x",
        "CLIENT KILL SKIPME maybe",
        "CLIENT KILL ID",
        "CLIENT KILL FOO bar",
        "CLIENT LIST TYPE x",
        "CLIENT LIST ID x",
        "CLIENT LIST FOO",
        "CLIENT NO-EVICT maybe",
        "CLIENT NO-EVICT on",
        "CLIENT REPLY maybe",
    ] {
        p.assert_same(case, &[case.split(' ').map(str::as_bytes).collect()]);
    }
}

#[test]
fn client_reply_off_skip_and_on_as_in_redis() {
    let p = Pair::start();
    let seq = [
        "CLIENT REPLY OFF",
        "SET {r}a 1",
        "INCR {r}a",
        "CLIENT REPLY SKIP",
        "CLIENT REPLY ON",
        "GET {r}a",
        "CLIENT REPLY SKIP",
        "GET {r}a",
        "MGET {r}a {r}b",
        "CLIENT REPLY SKIP",
        "MGET {r}a {r}b",
        "PING",
    ];
    let cmds: Vec<Vec<&[u8]>> = seq
        .iter()
        .map(|c| c.split(' ').map(str::as_bytes).collect())
        .collect();
    p.assert_same("CLIENT REPLY sequence", &cmds);
}

#[test]
fn client_pause_is_refused_with_a_reason() {
    let p = Pair::start();
    let mut c = p.proxy.conn();
    let r = c.cmd(&["CLIENT", "PAUSE", "100"]);
    assert!(r.err_text().contains("pausing clients"), "{r:?}");
    assert_eq!(c.cmd(&["CLIENT", "NO-TOUCH", "on"]), Reply::ok());
    assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn redis_py_reads_client_list() {
    let p = Pair::start();
    let script = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), protocol=int(sys.argv[2]))
r.client_setname("py")
rows = r.client_list()
me = [c for c in rows if c["name"] == "py"]
assert len(me) == 1 and me[0]["db"] == "0", rows
assert r.client_info()["name"] == "py"
print("ok")
"#;
    for proto in ["2", "3"] {
        let out = std::process::Command::new("python3")
            .args(["-c", script, &p.proxy.port().to_string(), proto])
            .output()
            .expect("python3");
        assert!(
            out.status.success() && out.stdout.starts_with(b"ok"),
            "redis-py protocol {proto}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
