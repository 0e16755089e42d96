//! Static replicas and the read policy (issue 16): `nodes[].replicas` with
//! `read_from: primary | prefer_replica | replica`, no sentinel.
//!
//! Where a command ran is read off the servers themselves, from `INFO commandstats`:
//! - reads: a replica executes GET only when a client sends it one (the replication
//!   stream carries writes only), so its `cmdstat_get` calls are exactly the GETs the
//!   proxy sent it; they are compared with `ringproxy_reads_total{role}`;
//! - writes: a replica's `cmdstat_set` calls DO include the SETs its primary
//!   replicates to it (Redis 7 counts commands of the primary's link like any other),
//!   so "no write went to a replica" is checked as: once the replica has caught up
//!   (`slave_repl_offset` = the primary's `master_repl_offset`), its SET calls equal
//!   its primary's exactly (every SET it ran came from replication; all started from
//!   zero before the first write), and its `rejected_calls` of SET is 0 (a SET sent
//!   to a read-only replica is refused with `-READONLY` and counted there, not in
//!   `calls`);
//! - scripts and transactions: the primary replicates a script's effects, not EVAL,
//!   and a read-only transaction not at all, so a replica's `cmdstat_eval`,
//!   `cmdstat_evalsha`, `cmdstat_exec` (and the GETs they run) stay flat unless the
//!   proxy sent it one.

mod common;

use common::admin::scrape;
use common::diff::{assert_same, pipeline, until_marker};
use common::load::{Client, Load, Options, Report};
use common::sentinel::*;
use common::*;
use std::time::Duration;

/// Load rounds per client in the read/write tests.
const ROUNDS: u64 = 150;
/// Load clients.
const CLIENTS: usize = 2;
/// Load keys per node.
const KEYS_PER_NODE: usize = 16;

/// Shards under ring names `node<i>` and a proxy over them.
struct Rig {
    shards: Vec<Shard>,
    proxy: Proxy,
    admin: u16,
}

/// The config after `listen:`/`admin:`: the read policy (`None`: left to its
/// default), fast health checks, a bounded request timeout, one node per shard.
fn yaml(shards: &[Shard], read_from: Option<&str>) -> String {
    yaml_lag(shards, read_from, "10s")
}

/// [`yaml`] with `max_replica_lag: <lag>` (when a policy is given).
fn yaml_lag(shards: &[Shard], read_from: Option<&str>, lag: &str) -> String {
    let mut y = String::new();
    if let Some(r) = read_from {
        y.push_str(&format!("read_from: {r}\nmax_replica_lag: {lag}\n"));
    }
    y.push_str(
        "health:\n  interval: 100ms\n  timeout: 300ms\n  failures: 2\n  successes: 1\n\
         timeouts:\n  connect: 300ms\n  request: 1s\nnodes:\n",
    );
    for (i, s) in shards.iter().enumerate() {
        y.push_str(&s.static_node_yaml(&format!("node{i}")));
    }
    y
}

impl Rig {
    /// `shards` shards of a primary and `replicas` replicas; unless the policy is
    /// `primary`, returns once `/topology` shows every replica readable.
    fn start(shards: usize, replicas: usize, read_from: Option<&str>) -> Rig {
        let shards: Vec<Shard> = (0..shards)
            .map(|i| Shard::start(&format!("s{i}"), replicas))
            .collect();
        let proxy = start_proxy(&yaml(&shards, read_from));
        let admin = proxy.admin_port();
        let rig = Rig {
            shards,
            proxy,
            admin,
        };
        if read_from != Some("primary") {
            for i in 0..rig.shards.len() {
                rig.wait_all_readable(i);
            }
        }
        rig
    }

    fn wait_all_readable(&self, i: usize) {
        for r in self.shards[i].replicas() {
            wait_readable(self.admin, &format!("node{i}"), &r.addr(), true);
        }
    }

    /// Every primary and every replica.
    fn primaries(&self) -> Vec<&RedisServer> {
        self.shards.iter().map(Shard::primary).collect()
    }

    fn replicas(&self) -> Vec<&RedisServer> {
        self.shards.iter().flat_map(Shard::replicas).collect()
    }

    /// `ringproxy_reads_total{role}`.
    fn reads(&self, role: &str) -> f64 {
        scrape(self.admin).sum("ringproxy_reads_total", &[("role", role)])
    }

    /// A bounded SET/GET load on keys of every node (`rounds` per client); waits
    /// for it to finish.
    fn run_load(&self, rounds: u64) -> Report {
        let load = self.start_load(rounds);
        let total = rounds * CLIENTS as u64;
        wait_until("the bounded load ends", Duration::from_secs(60), || {
            load.rounds() >= total
        });
        load.finish()
    }

    fn start_load(&self, rounds: u64) -> Load {
        let keys = interleave(&keys_by_node(self.shards.len(), "rep", KEYS_PER_NODE));
        let clients = (0..CLIENTS)
            .map(|c| Client {
                name: format!("rep{c}"),
                keys: keys.clone(),
                offset: c * 3,
            })
            .collect();
        let opts = Options {
            keys_per_round: 12,
            max_rounds: rounds,
            max_time: Duration::from_secs(60),
            reply_timeout: Duration::from_secs(3),
            ..Options::default()
        };
        Load::start(self.proxy.port(), clients, &opts)
    }

    /// Writes: after catching up, each replica ran exactly its primary's SETs and
    /// refused none.
    fn assert_no_write_on_replicas(&self) {
        for s in &self.shards {
            let replicas = s.replicas();
            wait_caught_up(s.primary(), &replicas);
            let primary = cmdstat(s.primary(), "set");
            assert!(
                primary.calls > 0,
                "no SET reached primary {}",
                s.primary().addr()
            );
            for r in replicas {
                let got = cmdstat(r, "set");
                assert_eq!(
                    (got.calls, got.rejected_calls),
                    (primary.calls, 0),
                    "replica {} ran SETs other than its primary's {primary:?}",
                    r.addr()
                );
            }
        }
    }
}

/// Every request got a reply and none failed.
fn assert_unhurt(what: &str, report: &Report) {
    report.assert_complete();
    let failed = report.total(|l| l.failed());
    assert_eq!(failed, 0, "{what}: failed requests: {}", report.notes());
}

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

fn delta(after: &[u64], before: &[u64]) -> Vec<u64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

/// `prefer_replica`: GETs go to the replicas (their `cmdstat_get` grows, the
/// primaries' does not), `ringproxy_reads_total{role}` counts them, and no write
/// goes to a replica.
#[test]
fn prefer_replica_reads_on_replicas_writes_on_primary() {
    let rig = Rig::start(2, 1, Some("prefer_replica"));
    let (p0, r0) = (
        calls(&rig.primaries(), "get"),
        calls(&rig.replicas(), "get"),
    );
    let (mp0, mr0) = (rig.reads("primary"), rig.reads("replica"));
    let report = rig.run_load(ROUNDS);
    assert_unhurt("prefer_replica load", &report);
    let p = delta(&calls(&rig.primaries(), "get"), &p0);
    let r = delta(&calls(&rig.replicas(), "get"), &r0);
    let total = sum(&p) + sum(&r);
    eprintln!(
        "REPLICAS: prefer_replica: {total} GETs: primaries {p:?}, replicas {r:?} ({:.1}% on replicas)",
        100.0 * sum(&r) as f64 / total.max(1) as f64
    );
    assert!(r.iter().all(|&n| n > 0), "a replica served no read: {r:?}");
    assert!(
        sum(&p) * 100 <= total,
        "more than 1% of GETs went to primaries: {p:?} vs replicas {r:?}"
    );
    assert_eq!(
        rig.reads("replica") - mr0,
        sum(&r) as f64,
        "reads_total{{role=replica}}"
    );
    assert_eq!(
        rig.reads("primary") - mp0,
        sum(&p) as f64,
        "reads_total{{role=primary}}"
    );
    rig.assert_no_write_on_replicas();
}

/// `read_from: primary` (and the default): replicas get no read, the primaries all,
/// and `ringproxy_reads_total` (reads routed by read_from) stays at zero.
#[test]
fn read_from_primary_never_touches_replicas() {
    let rig = Rig::start(1, 2, Some("primary"));
    let report = rig.run_load(ROUNDS);
    assert_unhurt("read_from primary load", &report);
    let (p, r) = (
        calls(&rig.primaries(), "get"),
        calls(&rig.replicas(), "get"),
    );
    assert!(p[0] > 0, "the primary served no read");
    assert_eq!(
        r,
        vec![0, 0],
        "replicas served reads with read_from: primary"
    );
    // reads_total counts reads routed by read_from; with `primary` nothing is
    // routed (every command goes to the primary, as without replicas).
    assert_eq!(rig.reads("replica"), 0.0, "reads_total{{role=replica}}");
    assert_eq!(rig.reads("primary"), 0.0, "reads_total{{role=primary}}");
    rig.assert_no_write_on_replicas();

    let default = start_proxy(&yaml(&rig.shards, None));
    let mut c = default.conn();
    for i in 0..50 {
        assert_eq!(c.cmd(&["GET", &format!("dflt:{i}")]), Reply::Nil);
    }
    assert_eq!(
        calls(&rig.replicas(), "get"),
        vec![0, 0],
        "default policy read a replica"
    );
    assert_eq!(calls(&rig.primaries(), "get")[0], p[0] + 50);
}

/// A replica killed (`kill -9`) and restarted while `prefer_replica` reads run: no
/// request fails (reads move to the primary and back), and the restarted replica
/// serves reads again.
#[test]
fn replica_restart_under_prefer_replica_reads() {
    let mut rig = Rig::start(2, 1, Some("prefer_replica"));
    let load = rig.start_load(1_000_000);
    load.wait_rounds(30);
    rig.shards[0].servers[1].kill();
    let addr = rig.shards[0].servers[1].addr();
    wait_readable(rig.admin, "node0", &addr, false);
    load.wait_rounds(30);
    rig.shards[0].restart(1);
    wait_readable(rig.admin, "node0", &addr, true);
    let back = cmdstat(&rig.shards[0].servers[1], "get").calls;
    load.wait_rounds(60);
    let report = load.finish();
    let after = cmdstat(&rig.shards[0].servers[1], "get").calls;
    eprintln!(
        "REPLICAS: replica restart: {} requests, {} failed; restarted replica served {} GETs",
        report.total(|l| l.received),
        report.total(|l| l.failed()),
        after - back
    );
    assert_unhurt("a replica killed and restarted", &report);
    assert!(after > back, "the restarted replica serves no reads");
}

/// `read_from: replica`: reads only from replicas; with the replica down a read is
/// an `-ERR` reply while writes still work; with it back, reads work again (and
/// see the write made meanwhile). The primary never serves a read.
#[test]
fn read_from_replica_errors_without_replica() {
    let mut rig = Rig::start(1, 1, Some("replica"));
    let mut c = rig.proxy.conn();
    assert_eq!(c.cmd(&["SET", "only", "before"]), Reply::ok());
    wait_caught_up(rig.shards[0].primary(), &rig.shards[0].replicas());
    assert_eq!(c.cmd(&["GET", "only"]), Reply::bulk("before"));

    let addr = rig.shards[0].servers[1].addr();
    rig.shards[0].servers[1].kill();
    wait_readable(rig.admin, "node0", &addr, false);
    let r = c.cmd(&["GET", "only"]);
    assert!(
        matches!(&r, Reply::Error(e) if e.starts_with("ERR")),
        "GET with no readable replica: {r}"
    );
    assert_eq!(c.cmd(&["SET", "only", "during"]), Reply::ok());
    assert_eq!(
        rig.shards[0].primary().cmd(&["GET", "only"]),
        Reply::bulk("during")
    );

    rig.shards[0].restart(1);
    wait_readable(rig.admin, "node0", &addr, true);
    wait_caught_up(rig.shards[0].primary(), &rig.shards[0].replicas());
    assert_eq!(c.cmd(&["GET", "only"]), Reply::bulk("during"));
    assert_eq!(
        cmdstat(rig.shards[0].primary(), "get").calls,
        1,
        "the direct GET only"
    );
}

/// A replica whose link to its primary is down (`REPLICAOF` a dead port) is not
/// read from; the other replica is; once relinked, it is read from again.
#[test]
fn replica_with_link_down_is_not_read() {
    let rig = Rig::start(1, 2, Some("prefer_replica"));
    let (stale, good) = (&rig.shards[0].servers[1], &rig.shards[0].servers[2]);
    let dead = free_port().to_string();
    assert_eq!(stale.cmd(&["REPLICAOF", "127.0.0.1", &dead]), Reply::ok());
    wait_link_down(stale);
    wait_readable(rig.admin, "node0", &stale.addr(), false);
    wait_readable(rig.admin, "node0", &good.addr(), true);
    let before = calls(&[stale, good], "get");
    let mut c = rig.proxy.conn();
    for i in 0..200 {
        assert_eq!(c.cmd(&["GET", &format!("link:{i}")]), Reply::Nil);
    }
    let d = delta(&calls(&[stale, good], "get"), &before);
    assert_eq!(d[0], 0, "the replica with its link down served reads");
    assert!(d[1] > 0, "the healthy replica served no read");

    let primary = rig.shards[0].primary().port().to_string();
    assert_eq!(
        stale.cmd(&["REPLICAOF", "127.0.0.1", &primary]),
        Reply::ok()
    );
    wait_link_up(stale);
    wait_readable(rig.admin, "node0", &stale.addr(), true);
}

/// With `prefer_replica`, scripts and transactions (even read-only ones) run on the
/// primary; a plain GET outside them goes to the replica.
#[test]
fn scripts_and_transactions_go_to_primary() {
    let rig = Rig::start(1, 1, Some("prefer_replica"));
    let (primary, replica) = (rig.shards[0].primary(), &rig.shards[0].servers[1]);
    let mut c = rig.proxy.conn();
    assert_eq!(c.cmd(&["SET", "tx", "v"]), Reply::ok());
    wait_caught_up(primary, &[replica]);
    let script = "return redis.call('GET', KEYS[1])";
    let sha =
        String::from_utf8(primary.cmd(&["SCRIPT", "LOAD", script]).bytes().to_vec()).expect("sha");
    let cmds = ["get", "eval", "evalsha", "exec"];
    let count =
        |s: &RedisServer| -> Vec<u64> { cmds.iter().map(|c| cmdstat(s, c).calls).collect() };
    let (p0, r0) = (count(primary), count(replica));

    assert_eq!(c.cmd(&["EVAL", script, "1", "tx"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["EVALSHA", &sha, "1", "tx"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(c.cmd(&["GET", "tx"]), Reply::Status("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Reply::Array(vec![Reply::bulk("v")]));
    // get: one per script and one in the transaction.
    assert_eq!(
        delta(&count(primary), &p0),
        vec![3, 1, 1, 1],
        "on the primary ({cmds:?})"
    );
    assert_eq!(
        delta(&count(replica), &r0),
        vec![0, 0, 0, 0],
        "on the replica ({cmds:?})"
    );

    assert_eq!(c.cmd(&["GET", "tx"]), Reply::bulk("v"));
    assert_eq!(
        delta(&count(replica), &r0),
        vec![1, 0, 0, 0],
        "a plain GET on the replica"
    );
}

/// A pipeline mixing reads (served by replicas) and writes (by primaries) keeps its
/// reply order, in RESP2 and RESP3: the same bytes to a plain redis-server and to
/// the proxy give the same replies. Reads only touch keys written (and replicated) beforehand, writes other
/// keys, so the replies do not depend on replication timing.
#[test]
fn pipelines_keep_order_with_replica_reads() {
    let rig = Rig::start(2, 1, Some("prefer_replica"));
    let reference = RedisServer::start();
    let mut setup = Vec::new();
    for i in 0..20 {
        setup.push(vec!["SET".to_string(), format!("r:{i}"), "x".repeat(i + 1)]);
    }
    for port in [reference.port(), rig.proxy.port()] {
        for reply in Conn::connect(port).pipeline(&setup) {
            assert_eq!(reply, Reply::ok());
        }
    }
    for s in &rig.shards {
        wait_caught_up(s.primary(), &s.replicas());
    }
    let before = sum(&calls(&rig.replicas(), "get"));
    let mut cmds: Vec<Vec<String>> = Vec::new();
    for i in 0..60 {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        let (r, o) = (format!("r:{}", i % 20), format!("r:{}", (i * 7) % 20));
        cmds.push(w(&["GET", &r]));
        cmds.push(w(&["SET", &format!("w:{i}"), &i.to_string()]));
        cmds.push(w(&["INCR", &format!("c:{}", i % 3)]));
        cmds.push(w(&["MGET", &r, &o, "r:none"]));
        cmds.push(w(&["STRLEN", &o]));
        cmds.push(w(&["GET", &format!("w:{i}:never")]));
        cmds.push(w(&["EXISTS", &r, "r:none"]));
    }
    let bytes = pipeline(
        &cmds
            .iter()
            .map(|c| c.iter().map(|a| a.as_bytes()).collect())
            .collect::<Vec<Vec<&[u8]>>>(),
    );
    // Once in RESP2, once after HELLO 3 (its reply differs: server fields, client id).
    for proto in ["2", "3"] {
        let run = |port: u16| {
            let mut c = Conn::connect(port);
            assert!(!c.cmd(&["HELLO", proto]).is_error(), "HELLO {proto}");
            until_marker(&mut c, &bytes)
        };
        let (want, got) = (run(reference.port()), run(rig.proxy.port()));
        assert_same(
            &format!("RESP{proto}: a pipeline of replica reads and primary writes"),
            &want,
            &got,
        );
    }
    let served = sum(&calls(&rig.replicas(), "get")) - before;
    assert!(served > 0, "the replicas served no read of the pipeline");
    rig.assert_no_write_on_replicas();
}

/// A replica that falls behind (its replication passes through a [`Relay`] that is
/// paused: the link stays up, no byte moves) by more than `max_replica_lag` is not
/// read from; once the relay moves bytes again it catches up and is read again.
#[test]
fn replica_lagging_beyond_max_replica_lag_is_not_read() {
    let shard = Shard::start("lag", 1);
    let (primary, replica) = (shard.primary(), &shard.servers[1]);
    let relay = Relay::start(primary.port());
    let via = relay.port().to_string();
    assert_eq!(replica.cmd(&["REPLICAOF", "127.0.0.1", &via]), Reply::ok());
    wait_link_up(replica);
    let proxy = start_proxy(&yaml_lag(
        std::slice::from_ref(&shard),
        Some("prefer_replica"),
        "2s",
    ));
    let admin = proxy.admin_port();
    wait_readable(admin, "node0", &replica.addr(), true);

    relay.pause();
    let paused = std::time::Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let lag_seen = std::thread::scope(|s| {
        // The primary keeps taking writes (and its replication stream keeps growing).
        s.spawn(|| {
            let mut c = primary.conn();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(c.cmd(&["SET", "lag:w", "x"]), Reply::ok());
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let at = wait_readable(admin, "node0", &replica.addr(), false);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        at
    });
    let link = info(replica, "replication");
    assert_eq!(
        link.get("master_link_status").map(String::as_str),
        Some("up"),
        "the link must stay up (this is lag, not a broken link): {link:?}"
    );
    let before = cmdstat(replica, "get").calls;
    let mut c = proxy.conn();
    for i in 0..100 {
        assert_eq!(c.cmd(&["GET", &format!("lag:{i}")]), Reply::Nil);
    }
    assert_eq!(
        cmdstat(replica, "get").calls,
        before,
        "the lagging replica was read"
    );
    assert!(
        cmdstat(primary, "get").calls >= 100,
        "the reads went elsewhere"
    );
    eprintln!(
        "REPLICAS: lagging replica unreadable {:?} after the relay paused (max_replica_lag 2s)",
        lag_seen - paused
    );

    relay.resume();
    wait_readable(admin, "node0", &replica.addr(), true);
    wait_caught_up(primary, &[replica]);
}

/// `coalesce: true` with `prefer_replica`: 40 clients reading one key at once, while
/// the replica they read from sleeps, cost that replica a handful of GETs (one per
/// worker and in-flight group), the primary none; every client gets the value.
#[test]
fn coalesced_reads_on_a_replica() {
    let shards = vec![Shard::start("c0", 1)];
    let proxy = start_proxy(&format!(
        "coalesce: true\n{}",
        yaml(&shards, Some("prefer_replica"))
    ));
    let replica = shards[0].replicas()[0];
    wait_readable(proxy.admin_port(), "node0", &replica.addr(), true);
    assert_eq!(proxy.conn().cmd(&["SET", "co:k", "v"]), Reply::ok());
    wait_caught_up(shards[0].primary(), &[replica]);
    let before = (
        cmdstat(shards[0].primary(), "get").calls,
        cmdstat(replica, "get").calls,
    );
    let clients = 40;
    let mut conns: Vec<Conn> = (0..clients).map(|_| proxy.conn()).collect();
    let mut sleeper = Conn::connect(replica.port());
    sleeper
        .send(&["DEBUG", "SLEEP", "0.3"])
        .expect("DEBUG SLEEP");
    std::thread::sleep(Duration::from_millis(50));
    for c in &mut conns {
        c.send(&["GET", "co:k"]).expect("send");
    }
    for c in &mut conns {
        assert_eq!(c.read().expect("reply"), Reply::bulk("v"));
    }
    let _ = sleeper.read();
    let (p, r) = (
        cmdstat(shards[0].primary(), "get").calls - before.0,
        cmdstat(replica, "get").calls - before.1,
    );
    eprintln!("REPLICAS: coalesced: {clients} client GETs -> replica {r} GETs, primary {p}");
    assert_eq!(p, 0, "a coalesced replica read went to the primary");
    assert!(
        r >= 1 && r < clients as u64 / 4,
        "replica served {r} of {clients} GETs"
    );
}
