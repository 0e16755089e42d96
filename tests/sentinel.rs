//! Sentinel failover through the proxy (issue 16): shards discovered from three real
//! sentinels, a steady read/write load on keys of every shard, one fault at a time on
//! one shard (`SENTINEL FAILOVER`, `kill -9` of its primary, SIGSTOP of its primary).
//!
//! Each fault test checks that every request got a reply (none hung), that requests
//! to the other shards never failed, that the faulty shard recovered (bounded only to
//! prove it did) and then stayed healthy, that writes land on the new primary (read
//! directly), that `ringproxy_failovers_total` counted exactly one failover of that
//! shard, and that the old primary, once back, got no writes.
//!
//! Measured windows and counts are printed on lines starting with `SENTINEL:` (run
//! with `--nocapture`). The tests run one at a time (they measure under load).

mod common;

use common::admin::{scrape, topology, wait_topology};
use common::load::{Client, Load, Options, Outcome, Report, Sample};
use common::sentinel::*;
use common::*;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The fixture alone, no proxy: a group of one shard (a primary and two replicas)
/// under three sentinels; `SENTINEL FAILOVER` moves the primary to a replica and the
/// old primary becomes a replica; `kill -9` of the new primary makes the sentinels
/// agree on another server; the killed one, restarted as an empty primary, is
/// turned into a replica by the sentinels; SIGSTOP of the primary then makes them
/// fail over again, and after SIGCONT the old primary is turned into a replica.
#[test]
fn fixture_failover_direct() {
    let _serial = serial();
    let t = Instant::now();
    let mut g = SentinelGroup::start(1, 2);
    eprintln!(
        "SENTINEL: 1 shard x 3 servers + 3 sentinels ready in {:?}",
        t.elapsed()
    );
    let first = g.primary(0).addr();
    assert_eq!(first, g.shards[0].servers[0].addr());

    let asked = g.failover(0);
    let (second, agreed) = g.wait_new_master(0, &first);
    eprintln!(
        "SENTINEL: SENTINEL FAILOVER agreed on after {:?}",
        agreed - asked
    );
    g.wait_demoted(0, 0);
    assert_eq!(
        try_role(g.shards[0].servers[0].port()).as_deref(),
        Ok("slave")
    );
    g.wait_settled(0);

    let (killed, at) = g.kill_primary(0);
    assert_eq!(g.shards[0].servers[killed].addr(), second);
    let (_, agreed) = g.wait_new_master(0, &second);
    eprintln!(
        "SENTINEL: kill -9: new primary agreed on after {:?}",
        agreed - at
    );
    g.shards[0].servers[killed].restart();
    let back = Instant::now();
    let demoted = g.wait_demoted(0, killed);
    eprintln!(
        "SENTINEL: restarted old primary demoted {:?} after it answered",
        demoted - back
    );
    g.wait_settled(0);

    let frozen = g.primary_index(0);
    let third = g.shards[0].servers[frozen].addr();
    g.shards[0].servers[frozen].pause();
    let at = Instant::now();
    let (_, agreed) = g.wait_new_master(0, &third);
    eprintln!(
        "SENTINEL: SIGSTOP: new primary agreed on after {:?}",
        agreed - at
    );
    g.shards[0].servers[frozen].resume();
    let demoted = g.wait_demoted(0, frozen);
    eprintln!(
        "SENTINEL: unfrozen old primary demoted after {:?}",
        demoted - agreed
    );
}

// ---------------------------------------------------------------------------
// Through the proxy: three shards (a primary and a replica each) discovered from
// the sentinels, a steady load on keys of all of them, one fault on NODE.
// ---------------------------------------------------------------------------

/// Shards of the proxy (ring nodes `node<i>`, sentinel masters `m<i>`).
const SHARDS: usize = 3;
/// The shard every fault hits.
const NODE: usize = 1;
/// Load keys per shard.
const KEYS_PER_SHARD: usize = 24;
/// Load clients (each on keys of every shard).
const CLIENTS: usize = 3;
/// Longest time from a fault until the proxy serves the shard again: a proof that it
/// recovered, not a performance bound.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// Load rounds run after the proxy has recovered, to see that it stays recovered.
const ROUNDS_AFTER: u64 = 60;

/// The sentinels' `requirepass` in the test that sets one.
const SENTINEL_PASSWORD: &str = "sentinel-s3cret";

/// The proxy config's health checks and timeouts.
const HEALTH_YAML: &str = "health:\n  interval: 100ms\n  timeout: 300ms\n  failures: 2\n  \
                           successes: 1\ntimeouts:\n  connect: 300ms\n  request: 1s\n";

/// The proxy config after `listen:`/`admin:`: the sentinels, the read policy, fast
/// health checks and a request timeout, the shards by master name.
fn sentinel_yaml(g: &SentinelGroup, read_from: &str) -> String {
    sentinel_yaml_with(g, read_from, "")
}

/// [`sentinel_yaml`] with `extra` lines in the `sentinel:` section.
fn sentinel_yaml_with(g: &SentinelGroup, read_from: &str, extra: &str) -> String {
    let addrs: Vec<String> = g
        .sentinel_addrs()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let mut y = format!(
        "sentinel:\n  addrs: [{}]\n  refresh: 1s\n{extra}read_from: {read_from}\n{HEALTH_YAML}nodes:\n",
        addrs.join(", ")
    );
    for i in 0..g.shards.len() {
        y.push_str(&format!("  - name: node{i}\n    sentinel: m{i}\n"));
    }
    y
}

/// The same shards as static nodes: each at the primary the sentinels name now,
/// its other servers as replicas; no `sentinel:` section.
fn static_yaml(g: &SentinelGroup, read_from: &str) -> String {
    let mut y = format!("read_from: {read_from}\n{HEALTH_YAML}nodes:\n");
    for (i, shard) in g.shards.iter().enumerate() {
        let p = g.primary_index(i);
        let replicas: Vec<String> = (0..shard.servers.len())
            .filter(|&j| j != p)
            .map(|j| format!("\"{}\"", shard.servers[j].addr()))
            .collect();
        y.push_str(&format!(
            "  - name: node{i}\n    addr: \"{}\"\n    replicas: [{}]\n",
            shard.servers[p].addr(),
            replicas.join(", ")
        ));
    }
    y
}

/// The serial lock: these tests measure windows under load, one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A sentinel group, a proxy over it, and the load's keys.
struct Rig {
    g: SentinelGroup,
    proxy: Proxy,
    admin: u16,
    /// `keys[i]`: load keys of shard i.
    keys: Vec<Vec<String>>,
    /// A key of shard NODE the load does not use (direct checks).
    probe: String,
}

impl Rig {
    /// Starts everything (the shards by master name) and checks that `/topology`
    /// shows each shard at the primary and replica the sentinels name.
    fn start(read_from: &str) -> Rig {
        Rig::start_with(read_from, sentinel_yaml)
    }

    /// Same, with the proxy config body `yaml` makes of the group.
    fn start_with(read_from: &str, yaml: fn(&SentinelGroup, &str) -> String) -> Rig {
        let t = Instant::now();
        let g = SentinelGroup::start(SHARDS, 1);
        let proxy = start_proxy(&yaml(&g, read_from));
        let admin = proxy.admin_port();
        let mut keys = keys_by_node(SHARDS, "ha", KEYS_PER_SHARD + 1);
        let probe = keys[NODE].pop().expect("a probe key");
        for k in &mut keys {
            k.truncate(KEYS_PER_SHARD);
        }
        for (i, shard) in g.shards.iter().enumerate() {
            let node = format!("node{i}");
            wait_primary_shown(admin, &node, &g.primary(i).addr());
            let replica = shard.servers[1].addr();
            if read_from == "primary" {
                wait_listed(admin, &node, &replica);
            } else {
                wait_readable(admin, &node, &replica, true);
            }
        }
        eprintln!("SENTINEL: rig ready in {:?}", t.elapsed());
        Rig {
            g,
            proxy,
            admin,
            keys,
            probe,
        }
    }

    fn load(&self) -> Load {
        let keys = interleave(&self.keys);
        let clients = (0..CLIENTS)
            .map(|c| Client {
                name: format!("ha{c}"),
                keys: keys.clone(),
                offset: c * 5,
            })
            .collect();
        let opts = Options {
            keys_per_round: 12,
            pause: Duration::from_millis(2),
            reply_timeout: Duration::from_secs(3),
            keep_samples: true,
            max_time: Duration::from_secs(90),
            ..Options::default()
        };
        let load = Load::start(self.proxy.port(), clients, &opts);
        load.wait_rounds(30);
        load
    }

    /// `ringproxy_failovers_total` of node `i`.
    fn failovers(&self, i: usize) -> f64 {
        scrape(self.admin).sum(
            "ringproxy_failovers_total",
            &[("node", &format!("node{i}"))],
        )
    }

    /// Polls until a SET of the probe key through the proxy succeeds; returns when.
    fn wait_serving(&self, since: Instant) -> Instant {
        let at = poll(
            "the proxy serves the failed-over shard again",
            RECOVERY_BOUND,
            Duration::from_millis(20),
            || {
                let mut c = Conn::try_connect(self.proxy.port(), Duration::from_secs(2))
                    .map_err(|e| e.to_string())?;
                match c.try_cmd(&["SET", &self.probe, "serving"]) {
                    Ok(r) if r == Reply::ok() => Ok(Instant::now()),
                    r => Err(format!("SET {}: {r:?}", self.probe)),
                }
            },
        );
        assert!(
            at - since < RECOVERY_BOUND,
            "no recovery within {RECOVERY_BOUND:?}"
        );
        at
    }

    /// A write through the proxy lands on shard NODE's current primary (read directly).
    fn assert_writes_on_primary(&self) {
        let value = format!("on-new-primary-{:?}", Instant::now());
        let mut c = self.proxy.conn();
        assert_eq!(c.cmd(&["SET", &self.probe, &value]), Reply::ok());
        let primary = self.g.primary(NODE);
        assert_eq!(
            primary.cmd(&["GET", &self.probe]),
            Reply::bulk(&value),
            "the write through the proxy is not on the primary {}",
            primary.addr()
        );
    }
}

/// What every fault test checks once the load has stopped: every request got a
/// reply; other shards saw no failure; NODE's failures all came before the proxy
/// served it again; one failover counted for NODE and none for the others.
fn check_run(
    test: &str,
    rig: &Rig,
    report: &Report,
    fault: Instant,
    serving: Instant,
    failovers_before: &[f64],
) {
    report.assert_complete();
    let w = window(report, NODE, fault);
    let (other_failed, examples) = others_failed(report, NODE);
    let total: usize = report.samples().count();
    eprintln!(
        "SENTINEL: {test}: {total} requests; shard node{NODE} after the fault: {} requests, \
         {} failed {:?}, outage {:?} (fault to first success after the last failure); \
         proxy serving again {:?} after the fault; other shards: {other_failed} failed",
        w.total,
        w.failed,
        w.by_outcome,
        w.outage,
        serving - fault
    );
    assert_eq!(
        other_failed, 0,
        "{test}: requests to other shards failed: {examples:?}"
    );
    let outage = w
        .outage
        .unwrap_or_else(|| panic!("{test}: node{NODE} never recovered: {w:?}"));
    assert!(outage < RECOVERY_BOUND, "{test}: outage {outage:?}");
    let late: Vec<&Sample> = report
        .samples()
        .filter(|s| s.node == NODE && s.sent > serving && s.outcome != Outcome::Ok)
        .collect();
    assert!(
        late.is_empty(),
        "{test}: {} requests of node{NODE} failed after the proxy served it again, e.g. {:?}",
        late.len(),
        late.first()
    );
    assert_failovers(test, rig, failovers_before);
}

/// `ringproxy_failovers_total` counted one failover of NODE since `before`, none
/// of the other shards, and the proxy logged NODE's failover once.
fn assert_failovers(test: &str, rig: &Rig, before: &[f64]) {
    for (i, before) in before.iter().enumerate() {
        let want = before + f64::from(u8::from(i == NODE));
        assert_eq!(
            rig.failovers(i),
            want,
            "{test}: ringproxy_failovers_total of node{i}"
        );
    }
    let log = rig.proxy.log();
    let node = format!("node{NODE}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("failover") && l.contains(&node))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{test}: the failover of {node} is logged once: {lines:#?}"
    );
}

fn failovers_now(rig: &Rig) -> Vec<f64> {
    (0..SHARDS).map(|i| rig.failovers(i)).collect()
}

/// `SENTINEL FAILOVER` of one shard under load (`prefer_replica`): the replica becomes
/// the primary, the old primary (alive) a replica; the proxy follows; the old
/// primary refuses no write after that (a write sent to it would be `-READONLY`,
/// counted in its `rejected_calls`).
#[test]
fn sentinel_failover_command_under_load() {
    let _serial = serial();
    let rig = Rig::start("prefer_replica");
    let before = failovers_now(&rig);
    let old = rig.g.primary_index(NODE);
    let old_addr = rig.g.shards[NODE].servers[old].addr();
    let load = rig.load();
    let (fault, new, agreed) = rig.g.failover_to_new(NODE, &old_addr);
    let shown = wait_primary_shown(rig.admin, &format!("node{NODE}"), &new);
    let serving = rig.wait_serving(fault);
    rig.g.wait_demoted(NODE, old);
    let rejected = cmdstat(&rig.g.shards[NODE].servers[old], "set").rejected_calls;
    load.wait_rounds(ROUNDS_AFTER);
    let report = load.finish();
    eprintln!(
        "SENTINEL: failover command: sentinels agreed after {:?}, /topology switched after {:?}",
        agreed - fault,
        shown - fault
    );
    check_run("SENTINEL FAILOVER", &rig, &report, fault, serving, &before);
    rig.assert_writes_on_primary();
    assert_eq!(
        cmdstat(&rig.g.shards[NODE].servers[old], "set").rejected_calls,
        rejected,
        "writes went to the demoted old primary"
    );
}

/// `kill -9` of one shard's primary under load (`prefer_replica`: the shard's only
/// replica becomes its primary); then the old primary comes back (restarted: an
/// empty primary, listed by the sentinels as a replica until they reconfigure it)
/// and gets nothing through the proxy while it is a primary (its SET and GET counts
/// stay 0), and once it is a replica it refuses no write (`rejected_calls` stays 0).
#[test]
fn kill9_primary_under_load_and_old_primary_returns() {
    let _serial = serial();
    let mut rig = Rig::start("prefer_replica");
    let before = failovers_now(&rig);
    let load = rig.load();
    let old_addr = rig.g.primary(NODE).addr();
    let (old, fault) = rig.g.kill_primary(NODE);
    let (new, agreed) = rig.g.wait_new_master(NODE, &old_addr);
    let shown = wait_primary_shown(rig.admin, &format!("node{NODE}"), &new);
    let serving = rig.wait_serving(fault);
    eprintln!(
        "SENTINEL: kill -9: sentinels agreed after {:?}, /topology switched after {:?}",
        agreed - fault,
        shown - fault
    );

    rig.g.shards[NODE].servers[old].restart();
    let returned = &rig.g.shards[NODE].servers[old];
    let mut while_primary = 0;
    let demoted = poll(
        "the old primary is demoted, with no SET while it was a primary",
        HA_TIMEOUT,
        Duration::from_millis(10),
        || {
            // Counts first: when ROLE still says master afterwards, it was a primary
            // when they were read (a server the sentinels demote does not go back).
            let (set, get) = (cmdstat(returned, "set"), cmdstat(returned, "get"));
            if try_role(returned.port())? == "master" {
                while_primary += 1;
                assert_eq!(
                    set,
                    CmdStat::default(),
                    "the returned old primary got writes"
                );
                assert_eq!(
                    get,
                    CmdStat::default(),
                    "the returned old primary got reads"
                );
                return Err(format!("still a primary ({while_primary} checks)"));
            }
            Ok(Instant::now())
        },
    );
    rig.g.wait_demoted(NODE, old);
    eprintln!(
        "SENTINEL: kill -9: old primary back, demoted {:?} after its restart ({while_primary} checks while primary)",
        demoted - serving
    );
    load.wait_rounds(ROUNDS_AFTER);
    let report = load.finish();
    check_run("kill -9", &rig, &report, fault, serving, &before);
    rig.assert_writes_on_primary();
    let set = cmdstat(&rig.g.shards[NODE].servers[old], "set");
    assert_eq!(
        set.rejected_calls, 0,
        "writes went to the demoted old primary"
    );
}

/// SIGSTOP of one shard's primary under load: the sentinels fail over, the proxy
/// follows; SIGCONT: the old primary is demoted and refuses no write afterwards.
#[test]
fn sigstop_primary_under_load() {
    let _serial = serial();
    let rig = Rig::start("primary");
    let before = failovers_now(&rig);
    let load = rig.load();
    let old = rig.g.primary_index(NODE);
    let old_addr = rig.g.shards[NODE].servers[old].addr();
    rig.g.shards[NODE].servers[old].pause();
    let fault = Instant::now();
    let (new, agreed) = rig.g.wait_new_master(NODE, &old_addr);
    let shown = wait_primary_shown(rig.admin, &format!("node{NODE}"), &new);
    let serving = rig.wait_serving(fault);
    eprintln!(
        "SENTINEL: SIGSTOP: sentinels agreed after {:?}, /topology switched after {:?}",
        agreed - fault,
        shown - fault
    );
    rig.g.shards[NODE].servers[old].resume();
    rig.g.wait_demoted(NODE, old);
    let rejected = cmdstat(&rig.g.shards[NODE].servers[old], "set").rejected_calls;
    load.wait_rounds(ROUNDS_AFTER);
    let report = load.finish();
    check_run("SIGSTOP", &rig, &report, fault, serving, &before);
    rig.assert_writes_on_primary();
    assert_eq!(
        cmdstat(&rig.g.shards[NODE].servers[old], "set").rejected_calls,
        rejected,
        "writes went to the demoted old primary"
    );
}

/// Rewrites the proxy's config to `body` (same ports) and waits until it applied.
fn reload(rig: &Rig, body: &str) {
    let before = topology(rig.admin).version;
    rig.proxy.write_config(&format!(
        "listen: 127.0.0.1:{}\nadmin: 127.0.0.1:{}\n{body}",
        rig.proxy.port(),
        rig.admin
    ));
    wait_topology(rig.admin, "the reload applied", HA_TIMEOUT, |t| {
        t.version > before
    });
}

/// Reloads under load: static shards switched to Sentinel discovery (no request
/// fails across the switch), a `SENTINEL FAILOVER` the proxy then follows, and back
/// to static nodes at the new primaries (again no request fails).
#[test]
fn reload_between_static_and_sentinel_under_load() {
    let _serial = serial();
    let rig = Rig::start_with("prefer_replica", static_yaml);
    let load = rig.load();
    reload(&rig, &sentinel_yaml(&rig.g, "prefer_replica"));
    let before = failovers_now(&rig);
    load.wait_rounds(30);

    let old = rig.g.primary_index(NODE);
    let old_addr = rig.g.shards[NODE].servers[old].addr();
    let (fault, new, _) = rig.g.failover_to_new(NODE, &old_addr);
    wait_primary_shown(rig.admin, &format!("node{NODE}"), &new);
    let serving = rig.wait_serving(fault);
    rig.g.wait_demoted(NODE, old);
    assert_failovers("reload", &rig, &before);
    load.wait_rounds(30);

    let back = Instant::now();
    reload(&rig, &static_yaml(&rig.g, "prefer_replica"));
    wait_readable(rig.admin, &format!("node{NODE}"), &old_addr, true);
    load.wait_rounds(ROUNDS_AFTER);
    let report = load.finish();
    let before_fault: usize = report
        .samples()
        .filter(|s| s.sent < fault && s.outcome != Outcome::Ok)
        .count();
    assert_eq!(
        before_fault, 0,
        "requests failed across the reload to Sentinel"
    );
    check_run("reload", &rig, &report, fault, serving, &before);
    let after_back: usize = report
        .samples()
        .filter(|s| s.sent > back && s.outcome != Outcome::Ok)
        .count();
    assert_eq!(
        after_back, 0,
        "requests failed across the reload back to static"
    );
    rig.assert_writes_on_primary();
}

/// Sentinels that require a password (`sentinel.password`), the first of
/// `sentinel.addrs` down from the start: the proxy asks the next ones, discovers
/// every shard, and follows a `SENTINEL FAILOVER`.
#[test]
fn first_sentinel_down_proxy_asks_the_next() {
    let _serial = serial();
    let mut g = SentinelGroup::start_with(SHARDS, 1, Some(SENTINEL_PASSWORD));
    g.kill_sentinel(0);
    let password = format!("  password: {SENTINEL_PASSWORD}\n");
    let yaml = sentinel_yaml_with(&g, "primary", &password);
    let proxy = start_proxy(&yaml);
    let admin = proxy.admin_port();
    for i in 0..SHARDS {
        wait_primary_shown(admin, &format!("node{i}"), &g.primary(i).addr());
    }
    let old = g.primary(NODE).addr();
    let (fault, new, _) = g.failover_to_new(NODE, &old);
    let shown = wait_primary_shown(admin, &format!("node{NODE}"), &new);
    eprintln!(
        "SENTINEL: first sentinel down: /topology switched {:?} after SENTINEL FAILOVER",
        shown - fault
    );
    let key = &keys_by_node(SHARDS, "next", 1)[NODE][0];
    let mut c = proxy.conn();
    poll(
        "a write through the proxy lands on the new primary",
        HA_TIMEOUT,
        Duration::from_millis(20),
        || match c.cmd(&["SET", key, "next"]) {
            r if r == Reply::ok() => Ok(()),
            r => Err(format!("SET {key}: {r}")),
        },
    );
    assert_eq!(g.primary(NODE).cmd(&["GET", key]), Reply::bulk("next"));
}

/// Sentinels reached over TLS only (`sentinel.tls` with the CA that signed their
/// certificate): the proxy discovers every shard through them and follows a
/// failover; with the wrong CA it discovers nothing, and the shards' requests fail
/// fast instead of hanging.
#[test]
fn sentinels_over_tls() {
    let _serial = serial();
    let dir = TempDir::new("sentinel-tls");
    let ca = common::tls::Ca::new(&dir, "sentinels");
    let pair = ca.issue("127.0.0.1");
    let files = SentinelTls {
        cert: pair.cert.clone(),
        key: pair.key.clone(),
        ca: ca.cert.clone(),
    };
    let g = SentinelGroup::start_tls(SHARDS, 1, &files);
    let yaml = |ca: &std::path::Path| {
        let addrs: Vec<String> = g
            .sentinel_tls_addrs()
            .iter()
            .map(|a| format!("\"{a}\""))
            .collect();
        let mut y = format!(
            "sentinel:\n  addrs: [{}]\n  refresh: 1s\n  tls:\n    ca: {}\n    server_name: 127.0.0.1\n{HEALTH_YAML}nodes:\n",
            addrs.join(", "),
            ca.display()
        );
        for i in 0..g.shards.len() {
            y.push_str(&format!("  - name: node{i}\n    sentinel: m{i}\n"));
        }
        y
    };
    let wrong = common::tls::Ca::new(&dir, "wrong");
    let blind = start_proxy(&yaml(&wrong.cert));
    let mut c = blind.conn();
    let key = &keys_by_node(SHARDS, "tls", 1)[NODE][0];
    match c.cmd(&["SET", key, "x"]) {
        Reply::Error(e) => assert!(e.contains("down"), "{e}"),
        r => panic!("a proxy that cannot verify the sentinels served {r:?}"),
    }
    drop(blind);
    let proxy = start_proxy(&yaml(&ca.cert));
    let admin = proxy.admin_port();
    for i in 0..SHARDS {
        wait_primary_shown(admin, &format!("node{i}"), &g.primary(i).addr());
    }
    let old = g.primary(NODE).addr();
    let (_, new, _) = g.failover_to_new(NODE, &old);
    wait_primary_shown(admin, &format!("node{NODE}"), &new);
    let mut c = proxy.conn();
    poll(
        "a write through the proxy lands on the new primary",
        HA_TIMEOUT,
        Duration::from_millis(20),
        || match c.cmd(&["SET", key, "tls"]) {
            r if r == Reply::ok() => Ok(()),
            r => Err(format!("SET {key}: {r}")),
        },
    );
    assert_eq!(g.primary(NODE).cmd(&["GET", key]), Reply::bulk("tls"));
}
