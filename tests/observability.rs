//! Observability: the admin HTTP port (/metrics, /live, /ready, /topology, /reload)
//! and INFO through the proxy, against three real redis-servers.
//!
//! Every metric check scrapes /metrics before and after a known load and compares
//! the deltas with what the load must have caused. The admin client and the
//! Prometheus text parser are the harness's (`common::admin`).

mod common;

use common::admin::{Scrape, http, scrape, scrape_until, topology, wait_topology};
use common::*;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Longest wait for anything asynchronous (health flips, gauges settling).
const DEADLINE: Duration = Duration::from_secs(15);
/// The pool name of a plain ringproxy config.
const POOL: &str = "default";
/// Fast health checks, so node failures are seen within a fraction of a second.
const FAST_HEALTH: &str = "health:\n  interval: 100ms\n  timeout: 100ms\n  failures: 2\n";

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// `after - before` of one series (by [`Scrape::one`]).
fn delta(before: &Scrape, after: &Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    after.one(name, want) - before.one(name, want)
}

/// `after - before` of a sum over series (by [`Scrape::sum`]).
fn delta_sum(before: &Scrape, after: &Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    after.sum(name, want) - before.sum(name, want)
}

fn class(c: &str) -> [(&'static str, String); 2] {
    [("pool", POOL.to_string()), ("class", c.to_string())]
}

/// `ringproxy_requests_total` (or `_request_errors_total`) delta for one class.
fn class_delta(before: &Scrape, after: &Scrape, metric: &str, c: &str) -> f64 {
    let l = class(c);
    let want: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
    delta(before, after, metric, &want)
}

/// The proxy counts written bytes right after each write returns, so a client can
/// read its reply a moment before the counter moves. Polls until
/// `ringproxy_bytes_sent_total` is at least `before + n` and returns that scrape
/// (the caller asserts the exact amount, so overshoot still fails).
fn bytes_sent_reaches(proxy: &Proxy, before: &Scrape, n: u64) -> Scrape {
    let p = [("pool", POOL)];
    let want = before.one("ringproxy_bytes_sent_total", &p) + n as f64;
    let what = format!("bytes_sent reaches +{n}");
    scrape_until(proxy.admin_port(), DEADLINE, &what, |m| {
        m.one("ringproxy_bytes_sent_total", &p) >= want
    })
}

/// Waits until no client connection is open (the harness's readiness PINGs and
/// earlier test connections have been closed), so the gauge starts from zero.
fn settle_clients(proxy: &Proxy) -> Scrape {
    scrape_until(
        proxy.admin_port(),
        DEADLINE,
        "ringproxy_client_connections == 0",
        |s| s.one("ringproxy_client_connections", &[("pool", POOL)]) == 0.0,
    )
}

// ---------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------

/// Three backends and a proxy with an admin port; the proxy is dropped first.
fn setup(extra_yaml: &str) -> Cluster {
    Cluster::start(3, extra_yaml)
}

const NODE_NAMES: [&str; 3] = ["node0", "node1", "node2"];

/// Asserts that no label value in the scrape is one of `keys`, and that every
/// label name is one of the bounded ones.
fn assert_bounded_labels(s: &Scrape, keys: &BTreeSet<String>) {
    let allowed: BTreeSet<&str> = [
        "pool", "node", "class", "kind", "result", "hash", "le", "role",
    ]
    .into_iter()
    .collect();
    for sample in &s.samples {
        for (k, v) in &sample.labels {
            assert!(
                allowed.contains(k.as_str()),
                "unexpected label name {k:?} on {sample:?}"
            );
            assert!(
                !keys.contains(v),
                "a key used by the test appears as a label value: {sample:?}"
            );
        }
        if let Some(n) = sample.labels.get("node") {
            assert!(
                NODE_NAMES.contains(&n.as_str()),
                "node label {n:?} is not a configured node name: {sample:?}"
            );
        }
        if let Some(p) = sample.labels.get("pool") {
            assert_eq!(p, POOL, "pool label of {sample:?}");
        }
    }
}

/// Three keys that route to distinct nodes: one per node, in node order.
fn one_key_per_node(proxy: &Proxy) -> Vec<String> {
    keys_per_node(proxy.config_path(), "obs:spread", NODE_NAMES.len(), 1).concat()
}

/// The `health` field of node `name` in /topology.
fn topo_health(proxy: &Proxy, name: &str) -> String {
    topology(proxy.admin_port()).node(name).health.clone()
}

fn wait_health(proxy: &Proxy, name: &str, want: &str) {
    let what = format!("health of {name} {want:?}");
    wait_topology(proxy.admin_port(), &what, DEADLINE, |t| {
        t.node(name).health == want
    });
}

fn wait_ready(proxy: &Proxy, want: u16) {
    let what = format!("/ready {want}");
    poll(&what, DEADLINE, Duration::from_millis(20), || {
        let r = http(proxy.admin_port(), "GET", "/ready");
        if r.status == want {
            return Ok(());
        }
        let t = topology(proxy.admin_port());
        Err(format!("/ready is {} {:?}\n{t}", r.status, r.body))
    })
}

/// Parses INFO text into field → value (section headers kept as `# Name` entries).
fn info_fields(text: &[u8]) -> (Vec<String>, HashMap<String, String>) {
    let text = String::from_utf8_lossy(text);
    let mut sections = Vec::new();
    let mut fields = HashMap::new();
    for line in text.split("\r\n") {
        if let Some(s) = line.strip_prefix("# ") {
            sections.push(s.trim().to_string());
        } else if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    (sections, fields)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn keyed_gets_move_class_node_latency_and_byte_counters() {
    let s = setup("");
    let keys: Vec<String> = (0..1000).map(|i| format!("obs:get:{i}")).collect();
    let mut expect_per_node: HashMap<String, u64> = HashMap::new();
    for (_, node) in route(s.proxy.config_path(), &keys) {
        *expect_per_node.entry(node).or_default() += 1;
    }

    // With no client connected every earlier reply has been written and counted, so
    // this baseline is exact; the new connection sends nothing before the load.
    settle_clients(&s.proxy);
    let mut c = s.proxy.conn();
    let before = scrape(s.proxy.admin_port());

    let mut sent_bytes = 0u64;
    for chunk in keys.chunks(100) {
        let cmds: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["GET", k.as_str()]).collect();
        sent_bytes += cmds.iter().map(|c| encode(c).len() as u64).sum::<u64>();
        for r in c.pipeline(&cmds) {
            assert_eq!(r, Reply::Nil, "GET of a missing key");
        }
    }
    let after = scrape(s.proxy.admin_port());

    assert_eq!(
        class_delta(&before, &after, "ringproxy_requests_total", "keyed"),
        1000.0,
        "1000 GETs must count 1000 keyed requests"
    );
    for other in [
        "split",
        "broadcast",
        "local",
        "refused",
        "unknown",
        "invalid",
    ] {
        assert_eq!(
            class_delta(&before, &after, "ringproxy_requests_total", other),
            0.0,
            "class {other} moved during a GET-only load"
        );
    }
    assert_eq!(
        class_delta(&before, &after, "ringproxy_request_errors_total", "keyed"),
        0.0,
        "a nil GET is not an error"
    );

    let mut node_total = 0.0;
    for n in NODE_NAMES {
        let l = [("pool", POOL), ("node", n)];
        let d = delta(&before, &after, "ringproxy_node_requests_total", &l);
        let want = *expect_per_node.get(n).unwrap_or(&0) as f64;
        assert!(d > 0.0, "node {n} got no requests although keys spread");
        assert_eq!(
            d, want,
            "node {n}: ringproxy_node_requests_total moved by {d}, `ringproxy route` places {want} keys there"
        );
        let lat = delta(
            &before,
            &after,
            "ringproxy_node_request_duration_seconds_count",
            &l,
        );
        assert_eq!(
            lat, d,
            "node {n}: latency histogram count must move with the node request count"
        );
        let inf = delta(
            &before,
            &after,
            "ringproxy_node_request_duration_seconds_bucket",
            &[("pool", POOL), ("node", n), ("le", "+Inf")],
        );
        assert_eq!(inf, d, "node {n}: +Inf bucket must equal the count");
        assert!(
            delta(
                &before,
                &after,
                "ringproxy_node_request_duration_seconds_sum",
                &l
            ) > 0.0,
            "node {n}: latency sum did not grow"
        );
        assert_eq!(
            after.one("ringproxy_node_inflight", &l),
            0.0,
            "node {n}: nothing is in flight after every reply arrived"
        );
        node_total += d;
    }
    assert_eq!(
        node_total, 1000.0,
        "per-node request deltas must sum to 1000"
    );

    let received = delta(
        &before,
        &after,
        "ringproxy_bytes_received_total",
        &[("pool", POOL)],
    );
    let settled = bytes_sent_reaches(&s.proxy, &before, 5000);
    let sent = delta(
        &before,
        &settled,
        "ringproxy_bytes_sent_total",
        &[("pool", POOL)],
    );
    assert_eq!(
        received, sent_bytes as f64,
        "bytes received must equal the bytes of the 1000 GET requests"
    );
    assert_eq!(
        sent,
        1000.0 * "$-1\r\n".len() as f64,
        "bytes sent must equal 1000 nil replies"
    );

    let used: BTreeSet<String> = keys.into_iter().collect();
    assert_bounded_labels(&after, &used);
}

#[test]
fn mget_over_three_nodes_is_one_split_of_fanout_three() {
    let s = setup("");
    let keys = one_key_per_node(&s.proxy);
    let mut c = s.proxy.conn();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k.as_str(), "v"]), Reply::ok());
    }
    let before = scrape(s.proxy.admin_port());
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    assert_eq!(c.cmd(&args), Reply::bulks(&["v", "v", "v"]));
    let after = scrape(s.proxy.admin_port());

    assert_eq!(
        class_delta(&before, &after, "ringproxy_requests_total", "split"),
        1.0,
        "one MGET is one split request"
    );
    assert_eq!(
        class_delta(&before, &after, "ringproxy_requests_total", "keyed"),
        0.0,
        "the MGET's sub-requests must not count as keyed client requests"
    );
    for n in NODE_NAMES {
        let l = [("pool", POOL), ("node", n)];
        assert_eq!(
            delta(&before, &after, "ringproxy_node_requests_total", &l),
            1.0,
            "node {n} gets exactly one MGET sub-request"
        );
        assert_eq!(
            delta(
                &before,
                &after,
                "ringproxy_node_request_duration_seconds_count",
                &l
            ),
            1.0,
            "node {n}: one latency observation"
        );
    }
    assert_eq!(
        delta_sum(
            &before,
            &after,
            "ringproxy_node_requests_total",
            &[("pool", POOL)]
        ),
        3.0
    );
    let p = [("pool", POOL)];
    assert_eq!(
        delta(&before, &after, "ringproxy_split_fanout_count", &p),
        1.0,
        "split_fanout count +1"
    );
    assert_eq!(
        delta(&before, &after, "ringproxy_split_fanout_sum", &p),
        3.0,
        "split_fanout sum +3 (three nodes)"
    );
    // Fanout 3 lands in the le=3 bucket and above, not in le=2.
    assert_eq!(
        delta(
            &before,
            &after,
            "ringproxy_split_fanout_bucket",
            &[("pool", POOL), ("le", "2")]
        ),
        0.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "ringproxy_split_fanout_bucket",
            &[("pool", POOL), ("le", "3")]
        ),
        1.0
    );
    let used: BTreeSet<String> = keys.into_iter().collect();
    assert_bounded_labels(&after, &used);
}

#[test]
fn refused_and_local_commands_are_counted_without_node_traffic() {
    let s = setup("");
    settle_clients(&s.proxy);
    let mut c = s.proxy.conn();

    let before = scrape(s.proxy.admin_port());
    let r = c.cmd(&["CONFIG", "REWRITE"]);
    assert!(r.is_error(), "CONFIG REWRITE must be refused, got {r}");
    let err_len = format!("-{}\r\n", r.err_text()).len() as u64;
    let mid = bytes_sent_reaches(&s.proxy, &before, err_len);
    let p = [("pool", POOL)];
    assert_eq!(
        delta(&before, &mid, "ringproxy_bytes_sent_total", &p),
        err_len as f64,
        "bytes sent = the error line"
    );
    assert_eq!(
        delta(&before, &mid, "ringproxy_bytes_received_total", &p),
        encode(&["CONFIG", "REWRITE"]).len() as f64
    );
    assert_eq!(
        class_delta(&before, &mid, "ringproxy_requests_total", "refused"),
        1.0,
        "refused request counted"
    );
    assert_eq!(
        class_delta(&before, &mid, "ringproxy_request_errors_total", "refused"),
        1.0,
        "refused request counted as an error"
    );
    assert_eq!(
        delta_sum(
            &before,
            &mid,
            "ringproxy_node_requests_total",
            &[("pool", POOL)]
        ),
        0.0,
        "a refused command reaches no node"
    );

    assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
    let after = bytes_sent_reaches(&s.proxy, &mid, "+PONG\r\n".len() as u64);
    assert_eq!(
        class_delta(&mid, &after, "ringproxy_requests_total", "local"),
        1.0,
        "PING is answered locally"
    );
    assert_eq!(
        class_delta(&mid, &after, "ringproxy_request_errors_total", "local"),
        0.0
    );
    assert_eq!(
        delta_sum(
            &mid,
            &after,
            "ringproxy_node_requests_total",
            &[("pool", POOL)]
        ),
        0.0,
        "PING reaches no node"
    );
    for other in ["keyed", "split", "broadcast", "refused"] {
        assert_eq!(
            class_delta(&mid, &after, "ringproxy_requests_total", other),
            0.0,
            "class {other} moved on a PING"
        );
    }
    // Bytes: exactly the PING request in, exactly +PONG out.
    assert_eq!(
        delta(&mid, &after, "ringproxy_bytes_received_total", &p),
        encode(&["PING"]).len() as f64
    );
    assert_eq!(
        delta(&mid, &after, "ringproxy_bytes_sent_total", &p),
        "+PONG\r\n".len() as f64
    );
}

#[test]
fn client_connection_gauge_follows_open_clients_and_info_agrees() {
    let s = setup("");
    let base = settle_clients(&s.proxy);
    let p = [("pool", POOL)];
    const N: usize = 5;
    let mut conns: Vec<Conn> = (0..N).map(|_| s.proxy.conn()).collect();
    for c in &mut conns {
        assert_eq!(c.cmd(&["PING"]), Reply::Status("PONG".into()));
    }
    let open = scrape_until(s.proxy.admin_port(), DEADLINE, "client gauge == N", |m| {
        m.one("ringproxy_client_connections", &p) == N as f64
    });
    assert_eq!(
        delta(&base, &open, "ringproxy_client_connections_total", &p),
        N as f64,
        "accepted connections counter +N"
    );

    // INFO through the proxy, on one of the N clients.
    let info = conns[0].cmd(&["INFO"]);
    let (sections, fields) = info_fields(info.bytes());
    for want in ["Server", "Clients", "Stats", "Topology"] {
        assert!(
            sections.iter().any(|s| s == want),
            "INFO lacks # {want}: {info}"
        );
    }
    assert_eq!(
        fields.get("connected_clients").map(String::as_str),
        Some(N.to_string().as_str()),
        "INFO connected_clients with {N} clients open: {info}"
    );
    let total = open.one("ringproxy_client_connections_total", &p);
    let info_total: f64 = fields
        .get("total_connections_received")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO has no total_connections_received: {info}"));
    assert_eq!(
        info_total, total,
        "INFO total_connections_received vs ringproxy_client_connections_total"
    );
    assert_eq!(
        fields.get("nodes").map(String::as_str),
        Some("3"),
        "INFO nodes: {info}"
    );
    let version = open.one("ringproxy_topology_version", &p);
    assert_eq!(
        fields
            .get("topology_version")
            .and_then(|v| v.parse::<f64>().ok()),
        Some(version),
        "INFO topology_version vs ringproxy_topology_version: {info}"
    );
    let t = topology(s.proxy.admin_port()).json;
    assert_eq!(
        t["pools"][0]["clients"].as_u64(),
        Some(N as u64),
        "/topology clients with {N} open: {t}"
    );

    // Close two, then the rest.
    conns.truncate(N - 2);
    let three = scrape_until(s.proxy.admin_port(), DEADLINE, "client gauge == N-2", |m| {
        m.one("ringproxy_client_connections", &p) == (N - 2) as f64
    });
    let info = conns[0].cmd(&["INFO", "clients"]);
    let (_, fields) = info_fields(info.bytes());
    assert_eq!(
        fields.get("connected_clients").map(String::as_str),
        Some((N - 2).to_string().as_str()),
        "INFO connected_clients after closing two: {info}"
    );
    drop(conns);
    let closed = scrape_until(
        s.proxy.admin_port(),
        DEADLINE,
        "client gauge back to 0",
        |m| m.one("ringproxy_client_connections", &p) == 0.0,
    );
    assert_eq!(
        delta(&three, &closed, "ringproxy_client_connections_total", &p),
        0.0,
        "closing does not count accepts"
    );
    assert_eq!(
        closed.one("ringproxy_client_connections_rejected_total", &p),
        0.0
    );
}

#[test]
fn probes_routes_and_status_codes() {
    let s = setup("");
    let a = s.proxy.admin_port();

    let live = http(a, "GET", "/live");
    assert_eq!(live.status, 200, "{live:?}");
    let ready = http(a, "GET", "/ready");
    assert_eq!(ready.status, 200, "{ready:?}");

    for path in ["/", "/nope", "/metrics/x", "/livez"] {
        let r = http(a, "GET", path);
        assert_eq!(r.status, 404, "GET {path}: {r:?}");
    }
    for (method, path) in [
        ("POST", "/metrics"),
        ("DELETE", "/live"),
        ("PUT", "/ready"),
        ("POST", "/topology"),
        ("GET", "/reload"),
    ] {
        let r = http(a, method, path);
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert!(r.header("allow").is_some(), "405 without Allow: {r:?}");
    }

    let t = topology(s.proxy.admin_port()).json;
    let pool = &t["pools"][0];
    assert_eq!(pool["name"], POOL, "{t}");
    let names: Vec<&str> = pool["nodes"]
        .as_array()
        .expect("nodes array")
        .iter()
        .map(|n| n["name"].as_str().expect("node name"))
        .collect();
    assert_eq!(names, NODE_NAMES, "{t}");
    for (i, n) in pool["nodes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(n["health"], "up", "{t}");
        assert_eq!(n["addr"], s.nodes[i].addr().as_str(), "{t}");
    }
    let m = scrape(s.proxy.admin_port());
    assert_eq!(
        pool["version"].as_f64(),
        Some(m.one("ringproxy_topology_version", &[("pool", POOL)])),
        "/topology version vs ringproxy_topology_version: {t}"
    );
    for n in NODE_NAMES {
        assert_eq!(
            m.one("ringproxy_node_up", &[("pool", POOL), ("node", n)]),
            1.0
        );
    }
}

#[test]
fn reload_of_an_unchanged_file_is_counted_as_unchanged() {
    let s = setup("");
    let before = scrape(s.proxy.admin_port());
    let r = http(s.proxy.admin_port(), "POST", "/reload");
    assert_eq!(r.status, 200, "POST /reload with an unchanged file: {r:?}");
    let after = scrape(s.proxy.admin_port());
    let result = |v| [("result", v)];
    assert_eq!(
        delta(
            &before,
            &after,
            "ringproxy_reloads_total",
            &result("unchanged")
        ),
        1.0,
        "reloads_total{{result=\"unchanged\"}} +1"
    );
    assert_eq!(
        delta(&before, &after, "ringproxy_reloads_total", &result("ok")),
        0.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "ringproxy_reloads_total",
            &result("failed")
        ),
        0.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "ringproxy_topology_version",
            &[("pool", POOL)]
        ),
        0.0,
        "an unchanged reload keeps the topology version"
    );
    // Still serving.
    let mut c = s.proxy.conn();
    assert_eq!(c.cmd(&["SET", "obs:reload", "1"]), Reply::ok());
    assert_eq!(c.cmd(&["GET", "obs:reload"]), Reply::bulk("1"));
}

#[test]
fn health_shows_in_topology_metrics_and_readiness() {
    let mut s = setup(FAST_HEALTH);
    let p0 = [("pool", POOL), ("node", "node0")];
    let before = scrape(s.proxy.admin_port());
    wait_ready(&s.proxy, 200);

    // One node down: /topology and node_up say so; still ready.
    s.nodes[0].kill();
    wait_health(&s.proxy, "node0", "down");
    let down = scrape_until(s.proxy.admin_port(), DEADLINE, "node_up{node0} == 0", |m| {
        m.one("ringproxy_node_up", &p0) == 0.0
    });
    assert!(
        delta(&before, &down, "ringproxy_node_transitions_total", &p0) >= 1.0,
        "a transition was counted"
    );
    assert_eq!(topo_health(&s.proxy, "node1"), "up");
    let r = http(s.proxy.admin_port(), "GET", "/ready");
    assert_eq!(r.status, 200, "ready with two of three nodes up: {r:?}");

    s.nodes[0].restart();
    wait_health(&s.proxy, "node0", "up");
    scrape_until(s.proxy.admin_port(), DEADLINE, "node_up{node0} == 1", |m| {
        m.one("ringproxy_node_up", &p0) == 1.0
    });

    // All nodes down: not ready.
    for n in &mut s.nodes {
        n.kill();
    }
    wait_ready(&s.proxy, 503);
    for n in NODE_NAMES {
        assert_eq!(topo_health(&s.proxy, n), "down", "{n}");
    }
    let live = http(s.proxy.admin_port(), "GET", "/live");
    assert_eq!(live.status, 200, "/live stays 200 with every node down");

    // Back: ready again, everything up, traffic flows.
    for n in &mut s.nodes {
        n.restart();
    }
    wait_ready(&s.proxy, 200);
    for n in NODE_NAMES {
        wait_health(&s.proxy, n, "up");
    }
    scrape_until(s.proxy.admin_port(), DEADLINE, "every node_up == 1", |m| {
        NODE_NAMES
            .iter()
            .all(|n| m.one("ringproxy_node_up", &[("pool", POOL), ("node", n)]) == 1.0)
    });
    let mut c = s.proxy.conn();
    assert_eq!(c.cmd(&["SET", "obs:after", "1"]), Reply::ok());
}
