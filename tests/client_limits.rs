//! What clients may hold and how long they may take: a total budget for client
//! buffers (`limits.max_client_memory`), an idle timeout (`timeouts.client_idle`)
//! and a bound on a partly received request (`timeouts.client_request`).

mod common;

use common::admin;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn many_large_slow_requests_stay_near_the_budget_and_others_are_served() {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let refs: Vec<&RedisServer> = nodes.iter().collect();
    let proxy = Proxy::with_nodes(&refs, "limits: {max_client_memory: 64MiB}\n");
    let budget_kib = 64 * 1024;
    let base_kib = proxy.rss_kib();
    // 20 clients each send most of a 49 MiB SET, slowly, and never finish it.
    let value_len = 49 << 20;
    let header = format!("*3\r\n$3\r\nSET\r\n$6\r\nbig:{:02}\r\n${value_len}\r\n", 0);
    let chunk = vec![b'x'; 256 << 10];
    let mut hogs: Vec<std::net::TcpStream> = (0..20)
        .map(|_| {
            let s = std::net::TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    for h in &mut hogs {
        let _ = h.write_all(header.as_bytes());
    }
    let mut good = proxy.conn();
    let mut peak_kib = 0;
    let start = Instant::now();
    let mut sent = vec![0usize; hogs.len()];
    while start.elapsed() < Duration::from_secs(6) {
        for (i, h) in hogs.iter_mut().enumerate() {
            if sent[i] + chunk.len() < value_len
                && let Ok(n) = h.write(&chunk)
            {
                sent[i] += n;
            }
        }
        // A well-behaved client keeps being served.
        assert_eq!(good.cmd(&["SET", "small", "v"]), Reply::ok());
        assert_eq!(good.cmd(&["GET", "small"]), Reply::bulk("v"));
        peak_kib = peak_kib.max(proxy.rss_kib());
        std::thread::sleep(Duration::from_millis(20));
    }
    let held_mib: usize = sent.iter().sum::<usize>() >> 20;
    let m = admin::scrape(proxy.admin_port());
    let closed = m.sum("ringproxy_clients_closed_for_memory_total", &[]);
    eprintln!(
        "clients sent {held_mib} MiB in all; proxy RSS peak {} MiB over a {} MiB start (budget 64 MiB); {closed} clients closed for memory",
        peak_kib / 1024,
        base_kib / 1024
    );
    assert!(
        closed >= 1.0,
        "no client was closed although the budget stayed exceeded"
    );
    assert!(
        peak_kib < base_kib + budget_kib + 64 * 1024,
        "RSS peaked at {peak_kib} KiB, budget 64 MiB over {base_kib} KiB"
    );
}

#[test]
fn idle_clients_are_closed_and_busy_ones_are_not() {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let refs: Vec<&RedisServer> = nodes.iter().collect();
    let proxy = Proxy::with_nodes(&refs, "timeouts: {client_idle: 300ms}\n");
    let mut idle = proxy.conn();
    let mut busy = proxy.conn();
    let mut subscriber = proxy.conn();
    subscriber.cmd(&["SUBSCRIBE", "c"]);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(900) {
        assert_eq!(busy.cmd(&["PING"]), Reply::Status("PONG".into()));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        idle.closed_within(IO_TIMEOUT),
        Ok(true),
        "the idle client is closed"
    );
    assert_eq!(busy.cmd(&["PING"]), Reply::Status("PONG".into()));
    let mut publisher = proxy.conn();
    assert_eq!(
        publisher.cmd(&["PUBLISH", "c", "m"]).int(),
        1,
        "a subscriber is not idle"
    );
}

#[test]
fn a_request_that_never_completes_gets_an_error() {
    let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let refs: Vec<&RedisServer> = nodes.iter().collect();
    let proxy = Proxy::with_nodes(&refs, "timeouts: {client_request: 300ms}\n");
    let mut c = proxy.conn();
    c.send_raw(b"*2\r\n$3\r\nGET\r\n").unwrap();
    c.send_raw(b"$3\r\nab").unwrap();
    let (got, closed) = c.read_to_close(IO_TIMEOUT);
    assert!(closed);
    assert!(
        String::from_utf8_lossy(&got).contains("did not arrive in time"),
        "{}",
        escape(&got)
    );
    let mut other = proxy.conn();
    assert_eq!(other.cmd(&["PING"]), Reply::Status("PONG".into()));
}
