//! The client session in combination: large replies inside pipelines, a client
//! that half-closes after a pipeline, replies a backend connection writes partly
//! by itself, protocol switches and RESET mid-pipeline. Each case sends the same
//! bytes to one redis-server and to the proxy (three nodes) and compares the reply
//! streams, or checks the proxy's own accounting against what the client received.

mod common;

use common::diff::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

#[test]
fn large_replies_in_a_pipeline_do_not_stall_the_replies_behind_them() {
    let p = Pair::start();
    let big = vec![b'v'; 300_000];
    let mset_keys: Vec<String> = (0..60_000).map(|i| format!("{{m}}k{i}")).collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for k in &mset_keys {
        mset.push(k.as_bytes());
        mset.push(b"12345");
    }
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(mset_keys.iter().map(|k| k.as_bytes()));
    let set_big: Vec<&[u8]> = vec![b"SET", b"big", &big];
    for side in [p.redis.conn(), p.proxy.conn()] {
        let mut side = side;
        side.send_raw(&pipeline(&[set_big.clone(), mset.clone()]))
            .unwrap();
        assert_eq!(side.read().unwrap(), Reply::ok());
        assert_eq!(side.read().unwrap(), Reply::ok());
    }
    let cases: [(&str, Vec<Vec<&[u8]>>); 4] = [
        (
            "GET big, PING",
            vec![args(&["GET", "big"]), args(&["PING"])],
        ),
        (
            "ECHO of 300,000 bytes, PING",
            vec![vec![b"ECHO", &big], args(&["PING"])],
        ),
        (
            "MGET of 60,000 keys, PING",
            vec![mget.clone(), args(&["PING"])],
        ),
        (
            "two large replies, then small ones",
            vec![
                args(&["GET", "big"]),
                vec![b"ECHO", &big],
                args(&["GET", "missing"]),
                args(&["PING"]),
            ],
        ),
    ];
    for (what, cmds) in &cases {
        p.assert_same(what, cmds);
    }
}

/// Large and small values interleaved in one pipeline, more large ones than one
/// vectored write takes (the proxy queues large requests and replies as they are,
/// small ones copied together): the same reply stream as Redis, in order.
#[test]
fn interleaved_large_and_small_values_in_one_pipeline_match_redis() {
    let p = Pair::start();
    let keys: Vec<String> = (0..160).map(|i| format!("lv{i}")).collect();
    let values: Vec<Vec<u8>> = (0..160usize)
        .map(|i| {
            let len = if i % 2 == 0 { 8_100 + i * 37 } else { 1 + i };
            vec![b'a' + (i % 26) as u8; len]
        })
        .collect();
    let mut cmds: Vec<Vec<&[u8]>> = Vec::new();
    for (k, v) in keys.iter().zip(&values) {
        cmds.push(vec![b"SET", k.as_bytes(), v]);
        cmds.push(args(&["PING"]));
    }
    for (k, v) in keys.iter().zip(&values) {
        cmds.push(vec![b"GET", k.as_bytes()]);
        cmds.push(vec![b"ECHO", v]);
    }
    p.assert_same("SET, GET and ECHO of 160 mixed values", &cmds);
}

#[test]
fn redis_py_pipeline_with_a_large_value_and_a_ping() {
    let p = Pair::start();
    let script = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=10)
r.set("big", b"x" * 300000)
pipe = r.pipeline(transaction=False)
pipe.get("big")
pipe.ping()
got = pipe.execute()
assert len(got[0]) == 300000 and got[1] is True, got[1]
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &p.proxy.port().to_string()])
        .output()
        .expect("python3");
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "redis-py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_client_that_half_closes_after_a_pipeline_gets_every_reply() {
    let p = Pair::start();
    let cases: [(&str, Vec<Vec<&[u8]>>); 4] = [
        (
            "MULTI, SET, EXEC",
            vec![args(&["MULTI"]), args(&["SET", "a", "x"]), args(&["EXEC"])],
        ),
        (
            "WATCH, MULTI, INCR, EXEC",
            vec![
                args(&["WATCH", "w"]),
                args(&["MULTI"]),
                args(&["INCR", "w"]),
                args(&["EXEC"]),
                args(&["GET", "w"]),
            ],
        ),
        (
            "keys of every node, then a transaction",
            vec![
                args(&["SET", "k1", "1"]),
                args(&["SET", "k2", "2"]),
                args(&["MGET", "k1", "k2", "k3"]),
                args(&["MULTI"]),
                args(&["GET", "k1"]),
                args(&["EXEC"]),
                args(&["DEL", "k1", "k2"]),
            ],
        ),
        (
            "a blocking pop with a timeout",
            vec![args(&["BLPOP", "nothing", "0.1"]), args(&["PING"])],
        ),
    ];
    for (what, cmds) in &cases {
        let (want, got) = p.both_half_closed(&pipeline(cmds));
        assert_same(what, &want, &got);
    }
}

#[test]
fn commands_keep_their_order_across_protocol_switches() {
    let p = Pair::start();
    // HELLO's own reply differs (server fields): compare what the INCRs and the
    // GET return, on each side.
    for side in [p.redis.port(), p.proxy.port()] {
        let mut c = Conn::connect(side);
        let cmds = [
            args(&["DEL", "n"]),
            args(&["HELLO", "3"]),
            args(&["INCR", "n"]),
            args(&["HELLO", "2"]),
            args(&["INCR", "n"]),
            args(&["HELLO", "3"]),
            args(&["INCR", "n"]),
            args(&["SET", "a", "0"]),
            args(&["HELLO", "2"]),
            args(&["SET", "a", "1"]),
            args(&["HELLO", "3"]),
            args(&["GET", "a"]),
        ];
        let replies = c.pipeline(&cmds);
        let ints: Vec<i64> = [2, 4, 6].iter().map(|&i| replies[i].int()).collect();
        assert_eq!(ints, [1, 2, 3], "port {side}: INCRs across HELLO");
        assert_eq!(
            replies[11],
            Reply::bulk("1"),
            "port {side}: GET after HELLO"
        );
    }
}

#[test]
fn merged_replies_use_the_protocol_of_their_request() {
    let p = Pair::start();
    let cmds = [
        args(&["RANDOMKEY"]),
        args(&["PUBSUB", "NUMSUB", "c1", "c2"]),
        args(&["HELLO", "3"]),
        args(&["RANDOMKEY"]),
        args(&["PUBSUB", "NUMSUB", "c1", "c1"]),
        args(&["HELLO", "2"]),
        args(&["PUBSUB", "NUMSUB", "c1"]),
    ];
    let (want, got) = p.both(&pipeline(&cmds));
    let (mut want, mut got) = (split_replies(&want), split_replies(&got));
    // HELLO's own replies differ (server id): compare every other reply.
    for i in [5, 2] {
        want.remove(i);
        got.remove(i);
    }
    assert_same(
        "RANDOMKEY, NUMSUB across HELLO",
        &want.concat(),
        &got.concat(),
    );
}

#[test]
fn reset_after_subscriptions_and_transactions_answers_everything() {
    let p = Pair::start();
    let cases: [(&str, Vec<Vec<&[u8]>>); 5] = [
        (
            "SUBSCRIBE, RESET",
            vec![args(&["SUBSCRIBE", "c1", "c2"]), args(&["RESET"])],
        ),
        (
            "PSUBSCRIBE, RESET",
            vec![args(&["PSUBSCRIBE", "p*"]), args(&["RESET"])],
        ),
        (
            "MULTI, SET, RESET, GET",
            vec![
                args(&["MULTI"]),
                args(&["SET", "r", "1"]),
                args(&["RESET"]),
                args(&["GET", "r"]),
            ],
        ),
        (
            "WATCH, RESET, GET",
            vec![args(&["WATCH", "r"]), args(&["RESET"]), args(&["GET", "r"])],
        ),
        (
            "BLPOP with a timeout, RESET",
            vec![
                args(&["BLPOP", "none", "0.1"]),
                args(&["RESET"]),
                args(&["PING"]),
            ],
        ),
    ];
    for (what, cmds) in &cases {
        p.assert_same(what, cmds);
    }
}

/// A client whose receive buffer is tiny and that reads nothing until the whole
/// reply is on its way: the backend connection's direct write of the reply can
/// only be partial, and the session writes the rest.
fn slow_reader(port: u16) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    sock.connect(&addr.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

#[test]
fn a_partly_direct_reply_is_counted_once_in_bytes_and_errors() {
    let p = Pair::start();
    let admin = p.proxy.admin_port();
    let mut s = slow_reader(p.proxy.port());
    let size = 4_000_000;
    let script = format!("return redis.error_reply(string.rep('x', {size}))");
    let before = admin::scrape(admin);
    s.write_all(&encode(&["EVAL", &script, "0"])).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !got.ends_with(b"\r\n") || got.len() < size {
        let n = s.read(&mut buf).expect("the whole reply");
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got[0], b'-', "an error reply");
    let bytes = |m: &admin::Scrape| m.sum("ringproxy_bytes_sent_total", &[]);
    let errors = |m: &admin::Scrape| m.sum("ringproxy_request_errors_total", &[]);
    // The counters may trail the bytes the client read by a moment.
    let want = bytes(&before) + got.len() as f64;
    let after = admin::scrape_until(admin, IO_TIMEOUT, "every byte counted", |m| {
        bytes(m) >= want && errors(m) > errors(&before)
    });
    let sent = bytes(&after) - bytes(&before);
    let errors = errors(&after) - errors(&before);
    assert_eq!(
        sent as usize,
        got.len(),
        "bytes_sent counts every byte once"
    );
    assert_eq!(errors, 1.0, "the error reply is counted as an error");
}

#[test]
fn sigterm_drain_ends_by_its_deadline_whatever_the_sessions_hold() {
    let mut p = Pair::start();
    let mut setter = p.proxy.conn();
    assert_eq!(
        setter.cmd(&["SET", "big", &"x".repeat(300_000)]),
        Reply::ok()
    );
    // Blocked for ever, blocked with a request waiting behind it, subscribed, and
    // a client that never reads the replies of a large pipeline.
    let mut blocked = p.proxy.conn();
    blocked.send(&["BLPOP", "never", "0"]).unwrap();
    let mut deferred = p.proxy.conn();
    deferred
        .send_raw(&pipeline(&[
            args(&["BLPOP", "never", "0"]),
            args(&["GET", "x"]),
        ]))
        .unwrap();
    let mut subscriber = p.proxy.conn();
    assert_eq!(
        subscriber.cmd(&["SUBSCRIBE", "c"]).compact(),
        "[subscribe, c, :1]"
    );
    let stuck = slow_reader(p.proxy.port());
    let mut w = &stuck;
    for _ in 0..100 {
        w.write_all(&encode(&["GET", "big"])).unwrap();
    }
    // Until the proxy has the blocked clients' requests in flight.
    let mut probe = p.proxy.conn();
    wait_until("two clients blocked", IO_TIMEOUT, || {
        probe
            .cmd(&["INFO", "clients"])
            .bytes()
            .windows(24)
            .any(|w| w == b"dedicated_connections:3\r")
    });
    let t0 = std::time::Instant::now();
    p.proxy.signal("TERM");
    for (what, c) in [
        ("blocked", &mut blocked),
        ("deferred", &mut deferred),
        ("subscriber", &mut subscriber),
    ] {
        let (got, closed) = c.read_to_close(std::time::Duration::from_secs(5));
        assert!(
            closed,
            "{what} client closed at shutdown (got {})",
            show(&got)
        );
    }
    wait_until(
        "the proxy exits",
        std::time::Duration::from_secs(15),
        || !p.proxy.is_running(),
    );
    let took = t0.elapsed();
    assert!(
        took < std::time::Duration::from_secs(12),
        "exit {took:?} after SIGTERM: past the 10 s drain"
    );
    drop(stuck);
}
