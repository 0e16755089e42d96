//! Hostile and odd clients: malformed RESP, garbage, size limits, clients that never
//! read. The proxy must answer one error line and close the broken connection, keep
//! serving everyone else, and keep its memory bounded.

mod common;

use common::*;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A second client that INCRs a counter through the proxy in a loop until stopped,
/// proving the proxy keeps serving others while one client misbehaves.
struct Bystander {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    handle: Option<JoinHandle<Result<(), String>>>,
}

impl Bystander {
    fn start(port: u16) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (s, d) = (stop.clone(), done.clone());
        let handle = std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                match c.try_cmd(&["INCR", "bystander"]) {
                    Ok(Reply::Int(v)) if v == n => d.store(n as u64, Ordering::Relaxed),
                    Ok(other) => return Err(format!("INCR #{n} got {other}")),
                    Err(e) => return Err(format!("INCR #{n}: {e}")),
                }
            }
            Ok(())
        });
        Bystander {
            stop,
            done,
            handle: Some(handle),
        }
    }

    /// Waits until the bystander completed `more` further requests (bounded).
    fn progresses(&self, more: u64) {
        let start = self.done.load(Ordering::Relaxed);
        wait_until(
            "the bystander client to be served",
            Duration::from_secs(5),
            || self.done.load(Ordering::Relaxed) >= start + more,
        );
    }

    /// Stops it and panics if any of its requests failed.
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let r = self
            .handle
            .take()
            .unwrap()
            .join()
            .expect("bystander thread");
        r.unwrap_or_else(|e| panic!("the bystander client was disturbed: {e}"));
        self.done.load(Ordering::Relaxed)
    }
}

/// Sends `bytes` on a fresh connection and asserts: exactly one `-ERR Protocol error...`
/// reply, then the proxy closes the connection.
fn expect_protocol_error(port: u16, what: &str, bytes: &[u8]) {
    let mut c = Conn::connect(port);
    // A refused write (the proxy already closed) is fine: the reply is what matters.
    let _ = c.send_raw(bytes);
    let (got, closed) = c.read_to_close(Duration::from_secs(5));
    let (replies, left) = parse_all(&got).unwrap_or_else(|e| {
        panic!(
            "{what}: the proxy answered bytes that are not RESP ({e}): {}",
            escape(&got)
        )
    });
    assert_eq!(left, 0, "{what}: trailing partial reply: {}", escape(&got));
    assert_eq!(
        replies.len(),
        1,
        "{what}: expected exactly one error reply, got {replies:?}"
    );
    let err = &replies[0];
    assert!(
        err.is_error() && err.err_text().starts_with("ERR Protocol error"),
        "{what}: expected `-ERR Protocol error...`, got {err}"
    );
    assert!(
        closed,
        "{what}: the proxy did not close the connection after {err}"
    );
}

#[test]
fn malformed_resp_gets_one_error_then_close() {
    let cl = Cluster::start(3, "");
    let port = cl.proxy.port();
    let bystander = Bystander::start(port);
    let nested_bomb = [b"*100000\r\n".as_slice(), &b"*1\r\n".repeat(100_000)].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad multibulk length", b"*abc\r\n".to_vec()),
        (
            "multibulk length with trailing junk",
            b"*1x\r\n$4\r\nPING\r\n".to_vec(),
        ),
        (
            "integer where a bulk string is expected",
            b"*1\r\n:1\r\n".to_vec(),
        ),
        ("bad bulk length", b"*1\r\n$x\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-5\r\n".to_vec()),
        (
            "bulk string not terminated by CRLF",
            b"*1\r\n$3\r\nfooXY".to_vec(),
        ),
        (
            "huge declared bulk length",
            b"*2\r\n$3\r\nGET\r\n$4294967296\r\n".to_vec(),
        ),
        ("huge declared argument count", b"*4294967296\r\n".to_vec()),
        ("100k nested array headers", nested_bomb),
        (
            "good request, then a broken one",
            b"*1\r\n$4\r\nPING\r\n*1\r\n:1\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in &cases {
        if what.starts_with("good request") {
            // The PING before the broken request is answered first.
            let mut c = Conn::connect(port);
            c.send_raw(bytes).unwrap();
            assert_eq!(c.read_ok(), Reply::Status("PONG".into()), "{what}");
            let err = c.read_ok();
            assert!(
                err.is_error() && err.err_text().starts_with("ERR Protocol error"),
                "{what}: {err}"
            );
            assert_eq!(
                c.closed_within(Duration::from_secs(5)),
                Ok(true),
                "{what}: not closed"
            );
        } else {
            expect_protocol_error(port, what, bytes);
        }
        bystander.progresses(3);
    }
    assert!(bystander.finish() > 0);
}

#[test]
fn a_valid_100k_argument_request_is_served() {
    let cl = Cluster::start(3, "");
    let bystander = Bystander::start(cl.proxy.port());
    let mut c = cl.conn();
    let mut args: Vec<String> = vec!["EXISTS".into()];
    args.extend((0..100_000).map(|i| format!("nokey{i}")));
    assert_eq!(c.cmd(&args), Reply::Int(0), "EXISTS with 100k keys");
    args[0] = "MGET".into();
    let r = c.cmd(&args);
    assert_eq!(r.items().len(), 100_000, "MGET with 100k keys");
    assert!(r.items().iter().all(|x| *x == Reply::Nil));
    bystander.progresses(3);
    bystander.finish();
}

#[test]
fn random_garbage_never_breaks_the_proxy() {
    let cl = Cluster::start(3, "");
    let port = cl.proxy.port();
    let bystander = Bystander::start(port);
    let mut rng = Rng::new(0x5eed);
    let valid: Vec<u8> = [
        encode(&["SET", "gk", "v"]),
        encode(&["GET", "gk"]),
        encode(&["MGET", "gk", "a", "b", "c"]),
        encode(&["HSET", "gh", "f", "v"]),
        encode(&["DEL", "x", "y"]),
        encode(&["PING"]),
    ]
    .concat();
    for case in 0..200 {
        let bytes = if case % 2 == 0 {
            let n = 1 + rng.below(300) as usize;
            rng.bytes(n)
        } else {
            // A valid pipeline with a few bytes flipped.
            let mut b = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next_u64() as u8;
            }
            b
        };
        let mut c = Conn::connect(port);
        let _ = c.send_raw(&bytes);
        c.shutdown_write();
        let (got, closed) = c.read_to_close(Duration::from_secs(5));
        let what = format!(
            "garbage case {case}: {}",
            escape(&bytes[..bytes.len().min(80)])
        );
        assert!(
            closed,
            "{what}: the proxy kept the connection open after EOF"
        );
        let (replies, left) = parse_all(&got)
            .unwrap_or_else(|e| panic!("{what}: the proxy sent non-RESP ({e}): {}", escape(&got)));
        assert_eq!(
            left,
            0,
            "{what}: partial reply at the end: {}",
            escape(&got)
        );
        if let Some(p) = replies
            .iter()
            .position(|r| matches!(r, Reply::Error(e) if e.contains("Protocol error")))
        {
            assert_eq!(
                p,
                replies.len() - 1,
                "{what}: replies after a protocol error: {replies:?}"
            );
        }
        if case % 20 == 0 {
            bystander.progresses(2);
        }
    }
    bystander.progresses(3);
    bystander.finish();
    assert_eq!(cl.conn().cmd(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn oversized_request_gets_an_error_and_close() {
    let cl = Cluster::start(3, "limits:\n  max_request_size: 1048576\n");
    let bystander = Bystander::start(cl.proxy.port());
    let mut c = cl.conn();
    assert_eq!(
        c.cmd(&[b"SET".as_slice(), b"fits", &vec![b'x'; 1000]]),
        Reply::ok()
    );
    let _ = c.send(&[b"SET".as_slice(), b"toobig", &vec![b'x'; 2 << 20]]);
    let (got, closed) = c.read_to_close(Duration::from_secs(5));
    let (replies, _) = parse_all(&got).expect("RESP");
    assert!(
        replies.len() == 1 && replies[0].is_error(),
        "a 2 MB request over a 1 MB limit: expected one error, got {replies:?}"
    );
    assert!(closed, "the connection stayed open after {}", replies[0]);
    bystander.progresses(3);
    bystander.finish();
    assert_eq!(cl.conn().cmd(&["EXISTS", "toobig", "fits"]), Reply::Int(1));
}

#[test]
fn a_client_that_never_reads_does_not_grow_the_proxy() {
    const LIMIT_KIB: u64 = 200 * 1024;
    let cl = Cluster::start(3, "");
    let port = cl.proxy.port();
    // 2 KB values: 200k unread replies would be 400 MB if the proxy buffered them all.
    assert_eq!(
        cl.conn()
            .cmd(&[b"SET".as_slice(), b"big", &vec![b'v'; 2048]]),
        Reply::ok()
    );
    let before = cl.proxy.rss_kib();

    let hog = Conn::connect(port);
    let mut w = hog.stream().try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let burst = encode(&["GET", "big"]).repeat(200_000);
    let writer = std::thread::spawn(move || w.write_all(&burst));

    let bystander = Bystander::start(port);
    let mut peak = before;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        let rss = cl.proxy.rss_kib();
        peak = peak.max(rss);
        assert!(
            rss < LIMIT_KIB,
            "proxy RSS {rss} KiB (was {before} KiB) with an unread pipeline"
        );
        bystander.progresses(1);
        std::thread::sleep(Duration::from_millis(100));
    }
    let served = bystander.finish();
    assert!(served > 0);
    // Hang up on the hog; the writer then fails or finishes, and the proxy carries on.
    let _ = hog.stream().shutdown(std::net::Shutdown::Both);
    drop(hog);
    let _ = writer.join().expect("writer thread");
    assert_eq!(cl.conn().cmd(&["PING"]), Reply::Status("PONG".into()));
    eprintln!("RSS before {before} KiB, peak {peak} KiB; bystander served {served}");
}

#[test]
fn empty_and_binary_keys() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let keys: [&[u8]; 5] = [b"", b"\0", b"\r\n", b"a b\tc", b"\xff\xfe\x00\r\n\x00"];
    for (i, k) in keys.iter().enumerate() {
        let v = format!("value{i}");
        assert_eq!(
            c.cmd(&[b"SET".as_slice(), k, v.as_bytes()]),
            Reply::ok(),
            "SET {}",
            escape(k)
        );
    }
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().rev());
    let want: Vec<Reply> = (0..keys.len())
        .rev()
        .map(|i| Reply::bulk(format!("value{i}")))
        .collect();
    assert_eq!(c.cmd(&mget), Reply::Array(want));
    for k in keys {
        assert_eq!(
            cl.holders(k).len(),
            1,
            "key {} stored on one backend",
            escape(k)
        );
    }
    let mut del: Vec<&[u8]> = vec![b"DEL"];
    del.extend(keys.iter());
    assert_eq!(c.cmd(&del), Reply::Int(keys.len() as i64));
}

#[test]
fn requests_arriving_one_byte_at_a_time() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let bytes = [
        encode(&["SET", "bytewise", "v\r\nv"]),
        encode(&["MGET", "bytewise", "nope", "bytewise"]),
        b"PING\r\n".to_vec(),
        encode(&["ECHO", ""]),
    ]
    .concat();
    for b in &bytes {
        c.send_raw(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(c.read_ok(), Reply::ok());
    let v = Reply::bulk("v\r\nv");
    assert_eq!(c.read_ok(), Reply::Array(vec![v.clone(), Reply::Nil, v]));
    assert_eq!(c.read_ok(), Reply::Status("PONG".into()));
    assert_eq!(c.read_ok(), Reply::bulk(""));
}

#[test]
fn empty_requests_are_ignored_like_redis_does() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    c.send_raw(b"*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n")
        .unwrap();
    assert_eq!(c.read_ok(), Reply::Status("PONG".into()));
    // Nothing else arrives, and the connection stays open.
    assert_eq!(
        c.closed_within(Duration::from_millis(300)),
        Ok(false),
        "extra bytes or close"
    );
    c.set_timeout(IO_TIMEOUT);
    assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
}

#[test]
fn wrong_arity_gets_an_error_and_the_connection_stays() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    let cases: &[&[&str]] = &[
        &["MSET"],
        &["MSET", "a"],
        &["MSET", "a", "1", "b"],
        &["MGET"],
        &["DEL"],
        &["EXISTS"],
        &["UNLINK"],
        &["TOUCH"],
        &["GET"],
        &["GET", "a", "b"],
        &["ECHO"],
        &["PING", "a", "b"],
    ];
    for cmd in cases {
        let got = c.cmd(cmd);
        assert!(
            got.is_error() && got.err_text().contains("wrong number of arguments"),
            "`{}`: expected Redis's `wrong number of arguments` error, got {got}",
            describe(cmd)
        );
        c.assert_alive(&format!("after `{}`", describe(cmd)));
    }
    assert_eq!(
        c.cmd(&["EXISTS", "a", "b"]),
        Reply::Int(0),
        "MSET with odd args wrote data"
    );
}
