//! SIGTERM: the proxy stops reading, answers every request already received
//! (even from a slow node), closes idle clients at once, and exits well before its
//! drain timeout.

mod common;

use common::{Cluster, Reply};
use std::time::{Duration, Instant};

#[test]
fn sigterm_answers_in_flight_requests_then_exits() {
    let mut cl = Cluster::start(3, "");
    let mut idle = cl.conn();
    assert_eq!(idle.cmd(&["PING"]), Reply::Status("PONG".into()));
    let mut busy = cl.conn();
    assert_eq!(busy.cmd(&["SET", "sd-key", "v"]), Reply::ok());

    // Freeze the key's node for 500 ms, then queue requests to it through the proxy.
    let slow = cl.node_of(b"sd-key");
    let mut direct = cl.nodes[slow].conn();
    direct.send(&["DEBUG", "SLEEP", "0.5"]).unwrap();
    let mut probe = cl.conn();
    let before = commands_processed(&mut probe);
    for _ in 0..20 {
        busy.send(&["GET", "sd-key"]).unwrap();
    }
    // Until the proxy has read all 20 (the INFO itself counts one each time).
    let read_all = Instant::now() + Duration::from_secs(5);
    while commands_processed(&mut probe) < before + 21 {
        assert!(
            Instant::now() < read_all,
            "the proxy did not read the 20 GETs"
        );
    }
    drop(probe);
    let t0 = Instant::now();
    cl.proxy.signal("TERM");

    for i in 0..20 {
        assert_eq!(
            busy.read().expect("reply"),
            Reply::bulk("v"),
            "in-flight GET {i}"
        );
    }
    assert_eq!(
        busy.closed_within(Duration::from_secs(3)),
        Ok(true),
        "busy client closed after its replies"
    );
    assert_eq!(
        idle.closed_within(Duration::from_secs(3)),
        Ok(true),
        "idle client closed"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while cl.proxy.is_running() {
        assert!(
            Instant::now() < deadline,
            "proxy still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        t0.elapsed()
    );
    assert_eq!(direct.read_ok(), Reply::ok());
}

/// `total_commands_processed` from INFO stats through the proxy.
fn commands_processed(c: &mut common::Conn) -> u64 {
    let text = String::from_utf8_lossy(c.cmd(&["INFO", "stats"]).bytes()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_commands_processed in INFO stats")
}
