//! Fault tests (issue 4): three real `redis-server` backends behind one `ringproxy`,
//! a steady pipelined load from a few client threads, and one fault at a time:
//! kill -9 (with and without ejection), SIGSTOP, a long-running script (-BUSY),
//! dropped backend connections (CLIENT KILL), and the ejection cap.
//!
//! What every test checks:
//! - every request gets a reply: each client reads exactly as many replies as it
//!   sent, each within [`REPLY_DEADLINE`];
//! - a request for a key of a healthy node never fails;
//! - a request for a key of the faulty node fails only with one of the errors the
//!   fault allows, and only while the fault lasts;
//! - `/topology` on the admin port shows the node down within the detection bound
//!   and up again within the recovery bound.
//!
//! The measured detection and recovery times and the failed-request counts are
//! printed (lines starting with `FAULTS:`; run with `--nocapture` to see them).
//! The tests of this file run one at a time, so their timings do not disturb each other.

mod common;

use common::admin::{NodeView, topology, wait_topology};
use common::load::{Client, ERR_DOWN, KeyList, Load, Options, Outcome, Report, Sample};
use common::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// `health.interval`.
const INTERVAL: Duration = Duration::from_millis(100);
/// `health.timeout` (PING timeout).
const PING_TIMEOUT: Duration = Duration::from_millis(100);
/// `health.failures`.
const FAILURES: u32 = 2;
/// `health.successes`.
const SUCCESSES: u32 = 2;
/// `timeouts.request`.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
/// `timeouts.connect`.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Allowance on top of the configured bounds (scheduling on a busy CI machine).
const SLACK: Duration = Duration::from_millis(1000);
/// A client waits at most this long for any one reply; longer counts as a hang.
const REPLY_DEADLINE: Duration = Duration::from_secs(3);
/// Requests per pipelined batch of one load client.
const BATCH: usize = 16;

/// The load: pipelined batches of [`BATCH`] requests, SET and GET in turn, 2 ms apart
/// (keeps the machine from saturating), every sample kept.
fn load_options() -> Options {
    Options {
        keys_per_round: BATCH,
        pause: Duration::from_millis(2),
        reply_timeout: REPLY_DEADLINE,
        keep_samples: true,
        ..Options::default()
    }
}
/// Load clients that use keys of every node.
const MIXED_CLIENTS: usize = 3;
/// Keys per node used by the load.
const KEYS_PER_NODE: usize = 30;
/// Keys per node that only the direct checks use.
const PROBES_PER_NODE: usize = 12;
/// Load before a fault is injected.
const WARMUP: Duration = Duration::from_millis(500);
/// How long a fault (or a recovered state) is held under load.
const HOLD: Duration = Duration::from_millis(700);
/// Hard cap for any wait on the topology (measured past the bound, then asserted).
const WAIT_CAP: Duration = Duration::from_secs(8);

/// Longest time from a fault to `/topology` showing the node down:
/// `interval * failures` (plus the PING timeouts of a frozen node) plus slack.
fn detect_bound() -> Duration {
    (INTERVAL + PING_TIMEOUT) * FAILURES + SLACK
}

/// Longest time from the node answering again to `/topology` showing it up.
fn recover_bound() -> Duration {
    INTERVAL * SUCCESSES + SLACK
}

/// The health and timeout sections of the proxy config.
fn fault_yaml(eject: bool, max_ejected_percent: u32) -> String {
    fault_yaml_with(eject, max_ejected_percent, PING_TIMEOUT)
}

/// Same, with another PING timeout.
fn fault_yaml_with(eject: bool, max_ejected_percent: u32, ping_timeout: Duration) -> String {
    format!(
        "health:\n  interval: {}ms\n  timeout: {}ms\n  failures: {FAILURES}\n  successes: {SUCCESSES}\n  eject: {eject}\n  max_ejected_percent: {max_ejected_percent}\ntimeouts:\n  connect: {}ms\n  request: {}ms\n",
        INTERVAL.as_millis(),
        ping_timeout.as_millis(),
        CONNECT_TIMEOUT.as_millis(),
        REQUEST_TIMEOUT.as_millis(),
    )
}

/// The tests of this file run one at a time: they measure timings under load.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The logs of a load run, with the checks every test makes.
struct Run {
    report: Report,
    t0: Instant,
}

impl Run {
    fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.report.samples()
    }

    /// Time since the load started, for messages.
    fn at(&self, t: Instant) -> String {
        format!("{}ms", t.saturating_duration_since(self.t0).as_millis())
    }

    fn show(&self, s: &Sample) -> String {
        format!(
            "{} (node{}) sent@{} done@{} ({}ms) {:?}",
            s.key,
            s.node,
            self.at(s.sent),
            self.at(s.done),
            ms(s.latency()),
            s.outcome
        )
    }

    /// Samples matching `pred` that are not OK must be empty; panics with examples.
    fn assert_none_failed(&self, what: &str, pred: impl Fn(&Sample) -> bool) {
        let bad: Vec<&Sample> = self
            .samples()
            .filter(|s| pred(s) && s.outcome != Outcome::Ok)
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: {} requests failed, e.g.:\n{}",
            bad.len(),
            self.examples(&bad)
        );
    }

    /// Every sample matching `pred` must satisfy `ok`; panics with examples.
    fn assert_all(&self, what: &str, pred: impl Fn(&Sample) -> bool, ok: impl Fn(&Sample) -> bool) {
        let bad: Vec<&Sample> = self.samples().filter(|s| pred(s) && !ok(s)).collect();
        assert!(
            bad.is_empty(),
            "{what}: {} requests violate it, e.g.:\n{}",
            bad.len(),
            self.examples(&bad)
        );
    }

    fn examples(&self, bad: &[&Sample]) -> String {
        bad.iter()
            .take(8)
            .map(|s| format!("  {}", self.show(s)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Outcome counts of the samples of `node`.
    fn counts(&self, node: usize) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for s in self.samples().filter(|s| s.node == node) {
            *m.entry(s.outcome.label().to_string()).or_insert(0) += 1;
        }
        m
    }

    fn failed(&self, node: usize) -> usize {
        self.samples()
            .filter(|s| s.node == node && s.outcome != Outcome::Ok)
            .count()
    }

    fn max_latency(&self, pred: impl Fn(&Sample) -> bool) -> Duration {
        self.samples()
            .filter(|s| pred(s))
            .map(Sample::latency)
            .max()
            .unwrap_or_default()
    }

    fn print_counts(&self, test: &str, nodes: usize) {
        let total = self.samples().count();
        println!("FAULTS: {test}: {total} requests in all");
        for n in 0..nodes {
            println!("FAULTS: {test}:   node{n}: {:?}", self.counts(n));
        }
    }
}

// ---------------------------------------------------------------------------
// Rig: three backends, a proxy, keys per node, a load
// ---------------------------------------------------------------------------

struct Rig {
    /// Dropped before the backends.
    proxy: Proxy,
    nodes: Vec<RedisServer>,
    /// `keys[i]`: load keys that the full ring places on node `i`.
    keys: Vec<Vec<String>>,
    /// `probes[i]`: keys of node `i` the load never touches, for direct checks.
    probes: Vec<Vec<String>>,
    admin: u16,
    t0: Instant,
}

impl Rig {
    fn start(extra_yaml: &str) -> Rig {
        let Cluster { proxy, nodes } = Cluster::start(3, extra_yaml);
        let admin = proxy.admin_port();
        let keys = keys_per_node(proxy.config_path(), "fault", nodes.len(), KEYS_PER_NODE);
        let probes = keys_per_node(proxy.config_path(), "probe", nodes.len(), PROBES_PER_NODE);
        let rig = Rig {
            proxy,
            nodes,
            keys,
            probes,
            admin,
            t0: Instant::now(),
        };
        let t = topology(rig.admin);
        assert_eq!(t.names(), ["node0", "node1", "node2"]);
        assert!(t.nodes.iter().all(|n| n.up() && n.on_ring), "at start: {t}");
        rig
    }

    fn topo(&self) -> Vec<NodeView> {
        topology(self.admin).nodes
    }

    /// Polls `/topology` until `pred` holds; returns when it was seen. Panics after
    /// [`WAIT_CAP`] (callers assert the tighter bound on the returned instant).
    fn wait_topo(&self, what: &str, pred: impl Fn(&[NodeView]) -> bool) -> Instant {
        wait_topology(self.admin, what, WAIT_CAP, |t| pred(&t.nodes)).1
    }

    /// Starts the load: [`MIXED_CLIENTS`] clients over the keys of every node, and one
    /// client over the keys of the nodes not in `faulty` only.
    fn load(&mut self, faulty: &[usize]) -> Load {
        let all: Vec<(Arc<str>, usize)> = interleave(&self.keys);
        let healthy: Vec<(Arc<str>, usize)> = all
            .iter()
            .filter(|(_, n)| !faulty.contains(n))
            .cloned()
            .collect();
        let mut specs: Vec<(String, KeyList)> = (0..MIXED_CLIENTS)
            .map(|i| (format!("mixed{i}"), all.clone()))
            .collect();
        specs.push(("healthy-only".to_string(), healthy));
        let clients = specs
            .into_iter()
            .enumerate()
            .map(|(i, (name, keys))| Client {
                name,
                keys,
                offset: i * 7,
            })
            .collect();
        self.t0 = Instant::now();
        Load::start(self.proxy.port(), clients, &load_options())
    }

    fn finish(&self, load: Load) -> Run {
        let run = Run {
            report: load.finish(),
            t0: self.t0,
        };
        run.report.assert_complete();
        run
    }

    /// `SET key value` through a fresh proxy connection: the reply and its latency.
    fn timed_set(&self, key: &str, value: &str) -> (Reply, Duration) {
        let mut c = self.proxy.conn();
        let t = Instant::now();
        let r = c.cmd(&["SET", key, value]);
        (r, t.elapsed())
    }

    /// `GET key` directly on node `i`.
    fn direct_get(&self, i: usize, key: &str) -> Reply {
        self.nodes[i].cmd(&["GET", key])
    }

    /// Where `ringproxy route` places `keys` on a ring of only the nodes `members`
    /// (same names and addresses): what ejecting the other nodes should give.
    fn route_over(&self, members: &[usize], keys: &[String]) -> Vec<usize> {
        let dir = TempDir::new("faults-ring");
        let path = dir.join("members.yaml");
        let mut y = format!("listen: 127.0.0.1:{}\nnodes:\n", free_port());
        for &i in members {
            y.push_str(&format!(
                "  - {{name: node{i}, addr: \"{}\"}}\n",
                self.nodes[i].addr()
            ));
        }
        std::fs::write(&path, y).expect("write ring config");
        route(&path, keys)
            .into_iter()
            .map(|(_, n)| node_index(&n))
            .collect()
    }

    /// Running nodes among `among` that hold `key`.
    fn holders(&self, key: &str, among: &[usize]) -> Vec<usize> {
        among
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].cmd(&["EXISTS", key]) == Reply::Int(1))
            .collect()
    }
}

/// The proxy's log lines about node health and ejection.
fn health_log(proxy: &Proxy) -> String {
    proxy
        .log()
        .lines()
        .filter(|l| {
            l.contains("node marked") || l.contains("ring rebuilt") || l.contains("timed out")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(key, node)` pairs taking one key of each node in turn.
fn interleave(keys: &[Vec<String>]) -> Vec<(Arc<str>, usize)> {
    let longest = keys.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| {
            keys.iter()
                .enumerate()
                .filter_map(move |(n, ks)| ks.get(i).map(|k| (Arc::from(k.as_str()), n)))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. kill -9, eject: false
// ---------------------------------------------------------------------------

#[test]
fn kill9_without_ejection_fails_fast_for_its_keys_only_and_recovers() {
    let _serial = serial();
    let started = Instant::now();
    let test = "kill9/eject:false";
    let v = 1;
    let mut rig = Rig::start(&fault_yaml(false, 50));
    let load = rig.load(&[v]);
    std::thread::sleep(WARMUP);

    let t_kill = Instant::now();
    rig.nodes[v].kill();
    let t_detect = rig.wait_topo("node1 down", |t| !t[v].up());
    let detect = t_detect - t_kill;
    let t = rig.topo();
    assert!(
        t[v].on_ring,
        "eject: false must keep node1 on the ring: {t:?}"
    );
    assert!(t[0].up() && t[2].up(), "only node1 may be down: {t:?}");
    std::thread::sleep(HOLD);

    // Its keys get the fast node-down error, and are not moved to another node.
    let mut probe_latency = Duration::ZERO;
    for key in &rig.probes[v] {
        let (r, d) = rig.timed_set(key, "probe");
        assert_eq!(
            r,
            Reply::Error(ERR_DOWN.into()),
            "SET {key} while node1 is down"
        );
        probe_latency = probe_latency.max(d);
    }
    for key in rig.keys[v].iter().chain(&rig.probes[v]) {
        assert_eq!(
            rig.holders(key, &[0, 2]),
            Vec::<usize>::new(),
            "with eject: false, key {key} of node1 must not be written elsewhere"
        );
    }

    let t_restart = Instant::now();
    rig.nodes[v].restart();
    let t_listening = Instant::now();
    let t_up = rig.wait_topo("node1 up", |t| t[v].up());
    let recover = t_up - t_listening;
    // Its keys answer again, on node1.
    for key in &rig.probes[v] {
        assert_eq!(
            rig.timed_set(key, "back").0,
            Reply::ok(),
            "SET {key} after recovery"
        );
        assert_eq!(rig.direct_get(v, key), Reply::bulk("back"));
    }
    std::thread::sleep(HOLD);
    let run = rig.finish(load);

    run.print_counts(test, 3);
    println!(
        "FAULTS: {test}: detect {}ms (bound {}ms), recover {}ms after the restart (bound {}ms), \
         node1 failed requests {}, max latency of its failures {}ms, probe SET latency {}ms",
        ms(detect),
        ms(detect_bound()),
        ms(recover),
        ms(recover_bound()),
        run.failed(v),
        ms(run.max_latency(|s| s.node == v && s.outcome != Outcome::Ok)),
        ms(probe_latency),
    );

    run.assert_none_failed("keys of healthy nodes", |s| s.node != v);
    run.assert_none_failed("node1 keys answered before the kill", |s| {
        s.node == v && s.done < t_kill
    });
    run.assert_none_failed("node1 keys sent after it was seen up", |s| {
        s.node == v && s.sent >= t_up
    });
    run.assert_all(
        "node1 failures are node-down, or connection-lost/timeout for requests in flight before detection",
        |s| s.node == v && s.outcome != Outcome::Ok,
        |s| match s.outcome {
            Outcome::Down => true,
            Outcome::Lost | Outcome::Timeout => s.sent < t_detect,
            _ => false,
        },
    );
    run.assert_all(
        "node1 keys sent while it was shown down get the node-down error",
        |s| s.node == v && s.sent >= t_detect && s.done < t_restart,
        |s| s.outcome == Outcome::Down,
    );
    assert!(
        run.samples()
            .any(|s| s.node == v && s.outcome == Outcome::Down),
        "no node-down error seen for node1's keys"
    );
    assert_detect_recover(detect, recover);
    assert!(
        probe_latency < REQUEST_TIMEOUT,
        "node-down error took {probe_latency:?}"
    );
    println!("FAULTS: {test}: test took {}ms", ms(started.elapsed()));
}

// ---------------------------------------------------------------------------
// 2. kill -9, eject: true
// ---------------------------------------------------------------------------

#[test]
fn kill9_with_ejection_moves_its_keys_and_brings_them_back() {
    let _serial = serial();
    let started = Instant::now();
    let test = "kill9/eject:true";
    let v = 1;
    let mut rig = Rig::start(&fault_yaml(true, 50));
    // Where node1's keys should go once it is ejected: the ring over node0 and node2
    // (same names, so the same points).
    let moved_to: Vec<(String, usize)> = rig.probes[v]
        .iter()
        .cloned()
        .zip(rig.route_over(&[0, 2], &rig.probes[v]))
        .collect();
    assert!(
        moved_to.iter().any(|(_, n)| *n == 0) && moved_to.iter().any(|(_, n)| *n == 2),
        "node1's keys should spread over both survivors: {moved_to:?}"
    );

    let load = rig.load(&[v]);
    std::thread::sleep(WARMUP);

    let t_kill = Instant::now();
    rig.nodes[v].kill();
    let t_ejected = rig.wait_topo("node1 down and off the ring", |t| {
        !t[v].up() && !t[v].on_ring
    });
    let detect = t_ejected - t_kill;
    let t = rig.topo();
    assert!(
        t[0].up() && t[0].on_ring && t[2].up() && t[2].on_ring,
        "only node1 may be ejected: {t:?}"
    );
    std::thread::sleep(HOLD);

    // node1's keys are served by the node after it on the ring; other keys stay put.
    for (key, to) in &moved_to {
        let val = format!("moved:{key}");
        assert_eq!(
            rig.timed_set(key, &val).0,
            Reply::ok(),
            "SET {key} while ejected"
        );
        assert_eq!(rig.proxy.conn().cmd(&["GET", key]), Reply::bulk(&val));
        assert_eq!(
            rig.holders(key, &[0, 2]),
            vec![*to],
            "ejected node1's key {key} should be on node{to}"
        );
    }
    for n in [0, 2] {
        for key in &rig.probes[n] {
            let val = format!("stay:{key}");
            assert_eq!(rig.timed_set(key, &val).0, Reply::ok());
            assert_eq!(
                rig.direct_get(n, key),
                Reply::bulk(&val),
                "key {key} left node{n}"
            );
        }
    }

    rig.nodes[v].restart();
    let t_listening = Instant::now();
    let t_back = rig.wait_topo("node1 up and on the ring", |t| t[v].up() && t[v].on_ring);
    let recover = t_back - t_listening;
    // Its keys route back to it.
    for key in &rig.probes[v] {
        let val = format!("back:{key}");
        assert_eq!(
            rig.timed_set(key, &val).0,
            Reply::ok(),
            "SET {key} after return"
        );
        assert_eq!(
            rig.direct_get(v, key),
            Reply::bulk(&val),
            "key {key} not back on node1"
        );
        assert_eq!(rig.proxy.conn().cmd(&["GET", key]), Reply::bulk(&val));
    }
    std::thread::sleep(HOLD);
    let run = rig.finish(load);

    run.print_counts(test, 3);
    println!(
        "FAULTS: {test}: detect+eject {}ms (bound {}ms), back on the ring {}ms after the restart \
         (bound {}ms), node1 failed requests {}",
        ms(detect),
        ms(detect_bound()),
        ms(recover),
        ms(recover_bound()),
        run.failed(v),
    );

    run.assert_none_failed("keys of healthy nodes", |s| s.node != v);
    run.assert_none_failed("node1 keys answered before the kill", |s| {
        s.node == v && s.done < t_kill
    });
    run.assert_none_failed("node1 keys sent after it was ejected", |s| {
        s.node == v && s.sent >= t_ejected
    });
    run.assert_all(
        "node1 failures: node-down, connection-lost or timeout",
        |s| s.node == v && s.outcome != Outcome::Ok,
        |s| matches!(s.outcome, Outcome::Down | Outcome::Lost | Outcome::Timeout),
    );
    assert_detect_recover(detect, recover);
    println!("FAULTS: {test}: test took {}ms", ms(started.elapsed()));
}

// ---------------------------------------------------------------------------
// 3. SIGSTOP
// ---------------------------------------------------------------------------

#[test]
fn sigstop_gives_timeouts_then_node_down_and_sigcont_recovers() {
    let _serial = serial();
    let started = Instant::now();
    let test = "sigstop";
    let v = 1;
    let mut rig = Rig::start(&fault_yaml(false, 50));
    let load = rig.load(&[v]);
    std::thread::sleep(WARMUP);

    let t_stop = Instant::now();
    rig.nodes[v].pause();
    let t_detect = rig.wait_topo("node1 down", |t| !t[v].up());
    let detect = t_detect - t_stop;
    std::thread::sleep(HOLD);
    let (probe, probe_latency) = rig.timed_set(&rig.probes[v][0], "probe");
    assert_eq!(
        probe,
        Reply::Error(ERR_DOWN.into()),
        "SET while node1 is stopped and down"
    );

    let t_cont = Instant::now();
    rig.nodes[v].resume();
    let t_up = rig.wait_topo("node1 up", |t| t[v].up());
    let recover = t_up - t_cont;
    std::thread::sleep(HOLD);
    let run = rig.finish(load);

    let bound = REQUEST_TIMEOUT + SLACK;
    let timeouts = run
        .samples()
        .filter(|s| s.node == v && s.outcome == Outcome::Timeout)
        .count();
    run.print_counts(test, 3);
    println!(
        "FAULTS: {test}: detect {}ms (bound {}ms), recover {}ms after SIGCONT (bound {}ms), \
         node1 failed {} ({} timeouts), max latency: node1 keys {}ms, healthy-only client {}ms, \
         mixed clients' healthy keys {}ms; probe node-down latency {}ms",
        ms(detect),
        ms(detect_bound()),
        ms(recover),
        ms(recover_bound()),
        run.failed(v),
        timeouts,
        ms(run.max_latency(|s| s.node == v)),
        ms(run
            .report
            .logs
            .iter()
            .filter(|l| l.name == "healthy-only")
            .flat_map(|l| &l.samples)
            .map(Sample::latency)
            .max()
            .unwrap_or_default()),
        ms(run.max_latency(|s| s.node != v)),
        ms(probe_latency),
    );

    run.assert_none_failed("keys of healthy nodes", |s| s.node != v);
    run.assert_none_failed("node1 keys answered before SIGSTOP", |s| {
        s.node == v && s.done < t_stop
    });
    run.assert_none_failed("node1 keys sent after it was seen up", |s| {
        s.node == v && s.sent >= t_up
    });
    run.assert_all(
        "node1 failures: timeout, node-down, or connection-lost",
        |s| s.node == v && s.outcome != Outcome::Ok,
        |s| matches!(s.outcome, Outcome::Timeout | Outcome::Down | Outcome::Lost),
    );
    run.assert_all(
        "every request is answered within the request timeout + slack",
        |_| true,
        |s| s.latency() <= bound,
    );
    run.assert_all(
        "node1 keys sent while it was shown down get the node-down error",
        |s| s.node == v && s.sent >= t_detect && s.done < t_cont,
        |s| s.outcome == Outcome::Down,
    );
    assert!(
        timeouts > 0,
        "no request in flight at SIGSTOP got the TIMEOUT error"
    );
    assert_detect_recover(detect, recover);
    assert!(
        probe_latency < REQUEST_TIMEOUT,
        "node-down error took {probe_latency:?}"
    );
    println!("FAULTS: {test}: test took {}ms", ms(started.elapsed()));
}

// ---------------------------------------------------------------------------
// 4. A long-running script (-BUSY)
// ---------------------------------------------------------------------------

/// Lua that spins for `ms` milliseconds of wall time.
fn busy_script(ms: u64) -> String {
    format!(
        "local s = redis.call('TIME') local t0 = s[1] * 1000000 + s[2] \
         while true do local n = redis.call('TIME') \
         if n[1] * 1000000 + n[2] - t0 > {} then break end end return 1",
        ms * 1000
    )
}

#[test]
fn busy_script_gives_busy_or_node_down_and_recovers() {
    let _serial = serial();
    let started = Instant::now();
    let test = "busy-script";
    let v = 1;
    let mut rig = Rig::start(&fault_yaml(false, 50));
    assert_eq!(
        rig.nodes[v].cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]),
        Reply::ok()
    );
    let load = rig.load(&[v]);
    std::thread::sleep(WARMUP);

    let port = rig.nodes[v].port();
    let t_script = Instant::now();
    let script = std::thread::spawn(move || {
        let mut c = Conn::connect(port);
        let r = c.cmd(&["EVAL", &busy_script(1500), "0"]);
        (r, Instant::now())
    });
    let t_detect = rig.wait_topo("node1 down", |t| !t[v].up());
    let detect = t_detect - t_script;
    let (reply, t_script_end) = script.join().expect("script thread");
    assert_eq!(reply, Reply::Int(1), "the busy script");
    let t_up = rig.wait_topo("node1 up", |t| t[v].up());
    let recover = t_up - t_script_end;
    std::thread::sleep(HOLD);
    let run = rig.finish(load);

    let bound = REQUEST_TIMEOUT + SLACK;
    run.print_counts(test, 3);
    println!(
        "FAULTS: {test}: script ran {}ms, down {}ms after it started (bound {}ms), up {}ms after \
         it ended (bound {}ms), node1 failed requests {}, max latency node1 keys {}ms",
        ms(t_script_end - t_script),
        ms(detect),
        ms(detect_bound()),
        ms(recover),
        ms(recover_bound()),
        run.failed(v),
        ms(run.max_latency(|s| s.node == v)),
    );

    run.assert_none_failed("keys of healthy nodes", |s| s.node != v);
    run.assert_none_failed("node1 keys answered before the script", |s| {
        s.node == v && s.done < t_script
    });
    run.assert_none_failed("node1 keys sent after it was seen up", |s| {
        s.node == v && s.sent >= t_up
    });
    run.assert_all(
        "node1 failures: -BUSY or node-down",
        |s| s.node == v && s.outcome != Outcome::Ok,
        |s| matches!(s.outcome, Outcome::Busy | Outcome::Down),
    );
    run.assert_all(
        "every request is answered within the request timeout + slack",
        |_| true,
        |s| s.latency() <= bound,
    );
    assert_detect_recover(detect, recover);
    println!("FAULTS: {test}: test took {}ms", ms(started.elapsed()));
}

// ---------------------------------------------------------------------------
// 5. The backend drops the proxy's connections (CLIENT KILL)
// ---------------------------------------------------------------------------

#[test]
fn dropped_backend_connections_fail_only_inflight_requests() {
    let _serial = serial();
    let started = Instant::now();
    let test = "client-kill";
    let v = 1;
    // CLIENT KILL also closes the health checker's connection, so its next PING fails
    // once. With a 100ms PING timeout node1 was once (in about 50 runs) marked down
    // here, most likely by one slow PING right after on a busy machine (the second
    // consecutive failure; not confirmed from the log). A longer PING timeout keeps
    // this test about reconnecting; a down mark still fails it, with the log lines.
    let mut rig = Rig::start(&fault_yaml_with(false, 50, Duration::from_millis(400)));
    let load = rig.load(&[v]);
    std::thread::sleep(WARMUP);

    // (before the kill, after its reply, clients killed)
    let mut kills: Vec<(Instant, Instant, i64)> = Vec::new();
    let mut ever_down = Vec::new();
    for _ in 0..3 {
        let mut direct = rig.nodes[v].conn();
        let before = Instant::now();
        let n = direct.cmd(&["CLIENT", "KILL", "TYPE", "normal"]).int();
        kills.push((before, Instant::now(), n));
        let until = Instant::now() + HOLD;
        while Instant::now() < until {
            let t = rig.topo();
            if !t[v].up() {
                ever_down.push(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let run = rig.finish(load);

    // Which kill a failure belongs to: the last one that began before its reply.
    let per_kill: Vec<usize> = kills
        .iter()
        .enumerate()
        .map(|(i, (before, _, _))| {
            let next = kills.get(i + 1).map(|k| k.0);
            run.samples()
                .filter(|s| {
                    s.node == v
                        && s.outcome != Outcome::Ok
                        && s.done >= *before
                        && next.is_none_or(|n| s.done < n)
                })
                .count()
        })
        .collect();
    run.print_counts(test, 3);
    println!(
        "FAULTS: {test}: clients killed per round {:?}, node1 failed requests per round {:?} \
         (pipeline depth of the clients using node1: {}), node1 seen down {} times",
        kills.iter().map(|k| k.2).collect::<Vec<_>>(),
        per_kill,
        MIXED_CLIENTS * BATCH,
        ever_down.len(),
    );

    assert!(
        kills.iter().all(|k| k.2 >= 1),
        "CLIENT KILL killed nothing: {kills:?}"
    );
    if !ever_down.is_empty() {
        println!(
            "FAULTS: {test}: node1 was marked down:\n{}",
            health_log(&rig.proxy)
        );
    }
    run.assert_none_failed("keys of healthy nodes", |s| s.node != v);
    // A request fails only if it was in flight when the connection dropped: sent
    // before the kill returned (plus a moment for the proxy to read the EOF).
    let grace = Duration::from_millis(50);
    run.assert_all(
        "node1 failures are connection-lost for requests in flight at a kill",
        |s| s.node == v && s.outcome != Outcome::Ok,
        |s| {
            s.outcome == Outcome::Lost
                && kills
                    .iter()
                    .any(|(before, after, _)| s.done >= *before && s.sent < *after + grace)
        },
    );
    let last = kills.last().expect("kills").1 + grace;
    let after_last = run
        .samples()
        .filter(|s| s.node == v && s.sent >= last)
        .count();
    assert!(
        after_last > 0,
        "no request for node1's keys after the last kill: did the proxy reconnect?"
    );
    for (i, n) in per_kill.iter().enumerate() {
        assert!(
            *n <= MIXED_CLIENTS * BATCH,
            "round {i}: {n} failures, more than could be in flight"
        );
    }
    assert!(
        ever_down.is_empty(),
        "a dropped connection must not mark node1 down (seen down {} times); proxy log:\n{}",
        ever_down.len(),
        health_log(&rig.proxy)
    );
    println!("FAULTS: {test}: test took {}ms", ms(started.elapsed()));
}

// ---------------------------------------------------------------------------
// 6. max_ejected_percent
// ---------------------------------------------------------------------------

#[test]
fn ejection_cap_keeps_the_second_dead_node_on_the_ring() {
    let _serial = serial();
    let started = Instant::now();
    let test = "eject-cap";
    let mut rig = Rig::start(&fault_yaml(true, 34));
    let load = rig.load(&[1, 2]);
    std::thread::sleep(WARMUP);

    let t_kill = Instant::now();
    rig.nodes[1].kill();
    rig.nodes[2].kill();
    let t_detect = rig.wait_topo("node1 and node2 down, one ejected", |t| {
        !t[1].up() && !t[2].up() && t.iter().filter(|n| !n.on_ring).count() == 1
    });
    let detect = t_detect - t_kill;
    std::thread::sleep(HOLD);
    let t = rig.topo();
    assert!(t[0].up() && t[0].on_ring, "the survivor: {t:?}");
    assert_eq!(
        t.iter().filter(|n| !n.on_ring).count(),
        1,
        "34% of 3 nodes: exactly one may be ejected: {t:?}"
    );
    let ejected = if t[1].on_ring { 2 } else { 1 };
    let kept = 3 - ejected;

    // The ejected node's keys go to the ring of the nodes still on it: node0 and the
    // dead node kept on the ring. Those landing on node0 are served there, those
    // landing on the kept node get the node-down error.
    let expected: HashMap<String, usize> = {
        let ks: Vec<String> = rig.keys[ejected]
            .iter()
            .chain(&rig.probes[ejected])
            .cloned()
            .collect();
        let to = rig.route_over(&[0, kept], &ks);
        ks.into_iter().zip(to).collect()
    };
    let mut down_latency = Duration::ZERO;
    let (mut to_survivor, mut to_kept) = (0, 0);
    for key in &rig.probes[ejected] {
        let val = format!("moved:{key}");
        let (r, d) = rig.timed_set(key, &val);
        if expected[key] == 0 {
            to_survivor += 1;
            assert_eq!(r, Reply::ok(), "SET {key} of ejected node{ejected}");
            assert_eq!(rig.direct_get(0, key), Reply::bulk(&val));
        } else {
            to_kept += 1;
            assert_eq!(
                r,
                Reply::Error(ERR_DOWN.into()),
                "SET {key} of ejected node{ejected}, now placed on down node{kept}"
            );
            down_latency = down_latency.max(d);
            assert_eq!(rig.direct_get(0, key), Reply::Nil);
        }
    }
    // The kept dead node's keys get the fast error and are not moved.
    for key in rig.probes[kept].iter() {
        let (r, d) = rig.timed_set(key, "must-not-move");
        assert_eq!(
            r,
            Reply::Error(ERR_DOWN.into()),
            "SET {key} of node{kept}, down but kept on the ring"
        );
        down_latency = down_latency.max(d);
        assert_eq!(
            rig.direct_get(0, key),
            Reply::Nil,
            "key {key} of node{kept} moved to node0"
        );
    }
    for key in rig.keys[kept].iter() {
        assert_eq!(
            rig.direct_get(0, key),
            Reply::Nil,
            "load key {key} of node{kept} moved to node0"
        );
    }
    let t_probe_end = Instant::now();

    // Both come back; the ring is whole again and keys are where they started.
    rig.nodes[1].restart();
    rig.nodes[2].restart();
    let t_listening = Instant::now();
    let t_back = rig.wait_topo("all nodes up and on the ring", |t| {
        t.iter().all(|n| n.up() && n.on_ring)
    });
    let recover = t_back - t_listening;
    for n in [1, 2] {
        for key in &rig.probes[n] {
            assert_eq!(rig.timed_set(key, "home").0, Reply::ok());
            assert_eq!(
                rig.direct_get(n, key),
                Reply::bulk("home"),
                "key {key} not back on node{n}"
            );
        }
    }
    std::thread::sleep(HOLD);
    let run = rig.finish(load);

    run.print_counts(test, 3);
    println!(
        "FAULTS: {test}: ejected node{ejected}, kept node{kept}; both down and one ejected after \
         {}ms, all back {}ms after the restarts; probe keys of node{ejected}: {to_survivor} to \
         node0, {to_kept} to node{kept}; max node-down probe latency {}ms; failed: \
         node{ejected} {}, node{kept} {}",
        ms(detect),
        ms(recover),
        ms(down_latency),
        run.failed(ejected),
        run.failed(kept),
    );

    run.assert_none_failed("keys of the survivor node0", |s| s.node == 0);
    run.assert_none_failed(
        &format!("keys of ejected node{ejected} placed on node0 after ejection"),
        |s| s.node == ejected && s.sent >= t_detect && expected[&*s.key] == 0,
    );
    run.assert_all(
        &format!("keys of ejected node{ejected} placed on down node{kept} get the node-down error"),
        |s| {
            s.node == ejected
                && s.sent >= t_detect
                && s.done < t_probe_end
                && expected[&*s.key] == kept
        },
        |s| s.outcome == Outcome::Down,
    );
    run.assert_all(
        &format!("keys of node{kept} (down, kept on the ring) get the node-down error"),
        |s| s.node == kept && s.sent >= t_detect && s.done < t_probe_end,
        |s| s.outcome == Outcome::Down,
    );
    run.assert_none_failed("keys sent after all nodes were back", |s| s.sent >= t_back);
    run.assert_all(
        "failures: node-down, connection-lost or timeout",
        |s| s.outcome != Outcome::Ok,
        |s| matches!(s.outcome, Outcome::Down | Outcome::Lost | Outcome::Timeout),
    );
    assert!(
        down_latency < REQUEST_TIMEOUT,
        "node-down error took {down_latency:?}"
    );
    assert_detect_recover(detect, recover);
    println!("FAULTS: {test}: test took {}ms", ms(started.elapsed()));
}

/// Detection and recovery both within their bounds.
fn assert_detect_recover(detect: Duration, recover: Duration) {
    assert!(detect <= detect_bound(), "detection took {detect:?}");
    assert!(recover <= recover_bound(), "recovery took {recover:?}");
}
