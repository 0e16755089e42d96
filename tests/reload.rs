//! Hot reload under load (issue 5): real `redis-server` backends behind one `ringproxy`,
//! a steady pipelined load from several client threads, and the config changed in every
//! way an operator changes it (edit, rename over, symlink swap, SIGHUP, POST /reload).
//!
//! Every case checks, for the whole time the load runs:
//! - no request fails (no error reply, no wrong value, no IO error) and no client
//!   connection is dropped; a GET may miss only in the one round per client thread in
//!   which its SET and GET straddle a swap that moves keys (the SET went to the old
//!   owner, the GET to the new one): that is key movement, not a failure;
//! - right after the new topology version shows on `/topology`, freshly written keys are
//!   on exactly the backend that `ringproxy route` names for the new file;
//! - the proxy's connections to unchanged backends are the same connections before and
//!   after (the `id=` of clients whose last command was GET/SET in `CLIENT LIST`,
//!   read directly on each backend; the tests' own direct reads use MGET, never GET).

mod common;

use common::admin::{HttpResponse, get, http, metric, scrape, topology, wait_topology};
use common::load::{Client, ClientLog, Load, Ops, Options};
use common::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for a reload to show (watcher poll 250 ms + debounce 200 ms, with room
/// for a loaded two-core CI machine).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Client threads of the steady load.
const LOAD_THREADS: usize = 3;
/// Keys per round (each gets a SET then a GET, so a round is 2x this many requests).
const KEYS_PER_ROUND: usize = 25;
/// A load thread stops after this many rounds or this long, whichever comes first.
const MAX_ROUNDS: u64 = 20_000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(22);

// ---------------------------------------------------------------------------
// Admin HTTP
// ---------------------------------------------------------------------------

/// The (only) pool's topology version.
fn version(admin: u16) -> u64 {
    topology(admin).version
}

fn reloads(admin: u16, result: &str) -> f64 {
    scrape(admin).series(&format!("ringproxy_reloads_total{{result=\"{result}\"}}"))
}

/// Polls `/topology` until the version is `want` (never past it); returns how long
/// that took.
fn wait_version(admin: u16, want: u64) -> Duration {
    let t0 = Instant::now();
    wait_topology(admin, &format!("version {want}"), RELOAD_TIMEOUT, |t| {
        assert!(
            t.version <= want,
            "topology version jumped to {}, expected {want}",
            t.version
        );
        t.version == want
    });
    t0.elapsed()
}

/// FNV-1a 64 of the config text: what the proxy reports as the config hash.
fn fnv1a64(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

// ---------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------

/// A node as written in the file.
#[derive(Clone)]
struct N {
    name: String,
    addr: String,
    weight: u32,
}

fn n(name: &str, server: &RedisServer, weight: u32) -> N {
    N {
        name: name.into(),
        addr: server.addr(),
        weight,
    }
}

fn yaml(listen: u16, admin: u16, nodes: &[N]) -> String {
    let mut y = format!("listen: 127.0.0.1:{listen}\nadmin: 127.0.0.1:{admin}\nnodes:\n");
    for n in nodes {
        y.push_str(&format!(
            "  - {{name: {}, addr: \"{}\", weight: {}}}\n",
            n.name, n.addr, n.weight
        ));
    }
    y
}

/// Writes a file in place (truncate + write), as an editor without atomic save does.
fn write_in_place(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

/// Writes `text` to a sibling and renames it over `path`.
fn write_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-rename");
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {tmp:?}: {e}"));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename {tmp:?}: {e}"));
}

/// Points `link` at `target` atomically: a new symlink renamed over the old name.
fn swap_symlink(link: &Path, target: &Path) {
    let tmp = link.with_file_name(format!(
        "{}.tmp-link",
        link.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .unwrap_or_else(|e| panic!("symlink {tmp:?} -> {target:?}: {e}"));
    std::fs::rename(&tmp, link).unwrap_or_else(|e| panic!("rename {tmp:?} over {link:?}: {e}"));
}

// ---------------------------------------------------------------------------
// Steady load
// ---------------------------------------------------------------------------

/// [`LOAD_THREADS`] clients, each on one connection for its whole life, sending rounds
/// of [`KEYS_PER_ROUND`] x (SET k v, GET k) as one pipeline, 1 ms apart. Keys are
/// `{TAG}:t<thread>`, so they route as TAG does (hash tags). TAGs are
/// `load:<case>:<round % 200>:<i>`, or taken in turn from `tags` when given. Returns
/// once every thread has done a few rounds.
fn start_load(port: u16, case: &str, tags: Option<Vec<String>>) -> Load {
    let tags = tags.unwrap_or_else(|| {
        (0..200)
            .flat_map(|r| (0..KEYS_PER_ROUND).map(move |i| format!("load:{case}:{r}:{i}")))
            .collect()
    });
    let clients = (0..LOAD_THREADS)
        .map(|t| Client {
            name: format!("thread {t}"),
            keys: tags
                .iter()
                .map(|tag| (Arc::from(format!("{{{tag}}}:t{t}")), 0))
                .collect(),
            offset: 0,
        })
        .collect();
    let opts = Options {
        keys_per_round: KEYS_PER_ROUND,
        ops: Ops::SetThenGet,
        pause: Duration::from_millis(1),
        max_rounds: MAX_ROUNDS,
        max_time: MAX_LOAD_TIME,
        reply_timeout: Duration::from_secs(5),
        keep_samples: false,
    };
    let load = Load::start(port, clients, &opts);
    load.wait_rounds(5 * LOAD_THREADS as u64);
    load
}

/// Stops the load and asserts it saw no failure, no dropped connection, and at most
/// `swaps` rounds with misses per thread.
fn finish_load(load: Load, case: &str, swaps: u64) {
    let r = load.finish();
    let miss_rounds: Vec<u64> = r.logs.iter().map(|l| l.miss_rounds).collect();
    println!(
        "[{case}] load: {} rounds, {} requests in {:?}; failed {}, misses {} (rounds with misses per thread {miss_rounds:?})",
        r.total(|l| l.rounds as usize),
        r.total(|l| l.received),
        r.elapsed,
        r.total(ClientLog::failed),
        r.total(|l| l.count("miss")),
    );
    let notes = r.notes();
    assert_eq!(
        r.total(ClientLog::failed),
        0,
        "[{case}] failed requests:\n  {notes}"
    );
    r.assert_complete();
    for (t, m) in miss_rounds.iter().enumerate() {
        assert!(
            *m <= swaps,
            "[{case}] thread {t} missed its own fresh SET in {m} rounds; at most {swaps} (one per key-moving swap) allowed:\n  {notes}"
        );
    }
}

// ---------------------------------------------------------------------------
// Backend-side checks
// ---------------------------------------------------------------------------

/// Ids of the proxy's pooled data connections on `server`: clients whose last command
/// was one the load sends (GET/SET). Health checks (PING) and the tests' own direct
/// connections (CLIENT, MGET, MIGRATE...) are not counted.
fn proxy_conn_ids(server: &RedisServer) -> BTreeSet<u64> {
    let list = server.cmd(&["CLIENT", "LIST"]);
    let text = String::from_utf8_lossy(list.bytes()).into_owned();
    text.lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|f| f == "cmd=get" || f == "cmd=set")
        })
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("id="))
                .and_then(|id| id.parse().ok())
        })
        .collect()
}

/// `proxy_conn_ids` of each server, once each has at least one (the load reaches all).
fn conn_ids(servers: &[&RedisServer]) -> Vec<BTreeSet<u64>> {
    servers
        .iter()
        .map(|s| {
            let mut ids = BTreeSet::new();
            wait_until(
                &format!("a proxy GET/SET connection on {}", s.addr()),
                Duration::from_secs(10),
                || {
                    ids = proxy_conn_ids(s);
                    !ids.is_empty()
                },
            );
            ids
        })
        .collect()
}

/// No connection the proxy had to an unchanged node was closed or replaced by the
/// reload. (Each worker thread connects on its first use, so a worker that had not
/// talked to the node yet may add a connection; that is not a replacement.)
fn assert_same_conns(case: &str, servers: &[&RedisServer], before: &[BTreeSet<u64>]) {
    let after = conn_ids(servers);
    for ((s, b), a) in servers.iter().zip(before).zip(&after) {
        assert!(
            b.is_subset(a),
            "[{case}] the proxy's connections to unchanged node {} changed across the reload (before: ids {b:?}, after: ids {a:?})",
            s.addr()
        );
    }
}

/// Writes `count` fresh keys through the proxy, then checks each is on exactly the
/// backend that `ringproxy route --config <config>` names (and on no other of
/// `servers`, which must include every backend, current or former). `nodes` maps a
/// node name in `config` to its backend. Returns how many keys each name got.
fn check_fresh_keys(
    case: &str,
    proxy: &Proxy,
    config: &Path,
    nodes: &[(&str, &RedisServer)],
    servers: &[&RedisServer],
    count: usize,
) -> HashMap<String, usize> {
    let keys: Vec<String> = (0..count).map(|i| format!("fresh:{case}:{i}")).collect();
    let cmds: Vec<Vec<String>> = keys
        .iter()
        .map(|k| vec!["SET".to_string(), k.clone(), format!("v:{k}")])
        .collect();
    let mut c = proxy.conn();
    for (k, r) in keys.iter().zip(c.pipeline(&cmds)) {
        assert_eq!(r, Reply::ok(), "[{case}] SET {k} through the proxy");
    }
    let placement = route(config, &keys);
    // One MGET per backend: which of the keys does it hold?
    let mut mget = vec!["MGET".to_string()];
    mget.extend(keys.iter().cloned());
    let held: Vec<Vec<Reply>> = servers
        .iter()
        .map(|s| s.cmd(&mget).items().to_vec())
        .collect();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for (i, (k, name)) in placement.iter().enumerate() {
        let owner = nodes
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("[{case}] route names unknown node {name} for {k}"))
            .1;
        let on: Vec<String> = servers
            .iter()
            .zip(&held)
            .filter(|(_, h)| h[i] != Reply::Nil)
            .map(|(s, _)| s.addr())
            .collect();
        assert_eq!(
            on,
            vec![owner.addr()],
            "[{case}] key {k}: ringproxy route says {name} ({}), but the key is on {on:?}",
            owner.addr()
        );
        let j = servers
            .iter()
            .position(|s| s.port() == owner.port())
            .unwrap();
        assert_eq!(
            held[j][i],
            Reply::bulk(format!("v:{k}")),
            "[{case}] value of {k}"
        );
        *per_node.entry(name.clone()).or_default() += 1;
    }
    per_node
}

/// `/topology` lists exactly `nodes` (name, addr, weight), all up and on the ring, and
/// its config hash, like `ringproxy_config_info{hash}`, is the hash of `text`.
fn assert_topology(case: &str, admin: u16, nodes: &[N], text: &str) {
    let t = topology(admin);
    for n in &t.nodes {
        assert!(n.on_ring, "[{case}] node off ring: {n:?}");
    }
    let got: Vec<(&str, &str, u64)> = t
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.addr.as_str(), n.weight))
        .collect();
    let want: Vec<(&str, &str, u64)> = nodes
        .iter()
        .map(|n| (n.name.as_str(), n.addr.as_str(), u64::from(n.weight)))
        .collect();
    assert_eq!(got, want, "[{case}] /topology nodes");
    let hash = fnv1a64(text);
    assert_eq!(
        t.config_hash.as_deref(),
        Some(hash.as_str()),
        "[{case}] /topology config_hash"
    );
    let m = get(admin, "/metrics");
    assert_eq!(
        metric(&m, &format!("ringproxy_config_info{{hash=\"{hash}\"}}")),
        1.0,
        "[{case}] ringproxy_config_info for {hash}:\n{}",
        m.lines()
            .filter(|l| l.contains("config_info"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        metric(&m, "ringproxy_topology_version{") as u64,
        t.version,
        "[{case}] ringproxy_topology_version vs /topology"
    );
}

/// A keyspace copy of `from` onto `to` (MIGRATE COPY REPLACE, in batches).
fn copy_keys(from: &RedisServer, to: &RedisServer) -> usize {
    let keys = from.keys();
    let mut c = from.conn();
    for chunk in keys.chunks(500) {
        let mut args: Vec<Vec<u8>> = [
            "MIGRATE",
            "127.0.0.1",
            &to.port().to_string(),
            "",
            "0",
            "5000",
            "COPY",
            "REPLACE",
            "KEYS",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        args.extend(chunk.iter().cloned());
        let r = c.cmd(&args);
        assert!(
            r == Reply::ok() || r == Reply::Status("NOKEY".into()),
            "MIGRATE: {r}"
        );
    }
    keys.len()
}

/// Renames `text` (which adds node `name` on `server`) over the proxy's config and
/// measures the time until a SET through the proxy of a key that node owns lands on it.
/// Returns the latency and the number of probes.
fn add_latency(proxy: &Proxy, text: &str, name: &str, server: &RedisServer) -> (Duration, u64) {
    // Pick a key the new node owns, from the new file before it is in place.
    let staged = proxy.config_path().with_extension("staged");
    std::fs::write(&staged, text).unwrap();
    let probes: Vec<String> = (0..200).map(|i| format!("probe:{i}")).collect();
    let probe = route(&staged, &probes)
        .into_iter()
        .find(|(_, owner)| owner == name)
        .expect("one of 200 keys routes to the new node")
        .0;
    let mut c = proxy.conn();
    let t0 = Instant::now();
    std::fs::rename(&staged, proxy.config_path()).unwrap();
    let mut tries = 0u64;
    loop {
        tries += 1;
        let val = format!("t{tries}");
        assert_eq!(c.cmd(&["SET", &probe, &val]), Reply::ok());
        if server.cmd(&["MGET", &probe]) == Reply::bulks(&[&val]) {
            return (t0.elapsed(), tries);
        }
        assert!(
            t0.elapsed() < RELOAD_TIMEOUT,
            "key {probe} of the new node {name} still not served by it after {RELOAD_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The common start: `count` backends named node0.. (weight 1), a proxy over them with
/// the file written by this test (so its text is known), and the load running.
struct Setup {
    load: Option<Load>,
    proxy: Proxy,
    servers: Vec<RedisServer>,
    nodes: Vec<N>,
    listen: u16,
    admin: u16,
}

impl Setup {
    fn start(count: usize, case: &str) -> Setup {
        Setup::start_avoiding(count, case, None)
    }

    /// Like `start`; with `avoid`, the load only uses keys that node does not own.
    fn start_avoiding(count: usize, case: &str, avoid: Option<&str>) -> Setup {
        let Cluster {
            proxy,
            nodes: servers,
        } = Cluster::start(count, "");
        let (listen, admin) = (proxy.port(), proxy.admin_port());
        let nodes: Vec<N> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| n(&format!("node{i}"), s, 1))
            .collect();
        // Rewrite the file in this test's own format (same nodes, weights explicit):
        // an applied reload with no topology change, and the text is now ours.
        let text = yaml(listen, admin, &nodes);
        proxy.write_config(&text);
        let v0 = version(admin);
        let HttpResponse { status, body, .. } = http(admin, "POST", "/reload");
        assert_eq!(status, 200, "initial POST /reload: {body}");
        wait_version(admin, v0 + 1);
        assert_topology(case, admin, &nodes, &text);
        let tags = avoid.map(|name| {
            let all: Vec<String> = (0..2000).map(|i| format!("load:{case}:{i}")).collect();
            route(proxy.config_path(), &all)
                .into_iter()
                .filter(|(_, owner)| owner != name)
                .map(|(k, _)| k)
                .collect()
        });
        let load = start_load(listen, case, tags);
        Setup {
            load: Some(load),
            proxy,
            servers,
            nodes,
            listen,
            admin,
        }
    }

    fn load(&self) -> &Load {
        self.load.as_ref().unwrap()
    }

    fn finish(&mut self, case: &str, swaps: u64) {
        let load = self.load.take().unwrap();
        // The load keeps going well after the last change.
        load.wait_rounds(20 * LOAD_THREADS as u64);
        finish_load(load, case, swaps);
        assert!(self.proxy.is_running(), "[{case}] proxy exited");
    }
}

/// Node names paired with their servers, in order.
fn name_servers<'a>(
    nodes: &'a [N],
    servers: &[&'a RedisServer],
) -> Vec<(&'a str, &'a RedisServer)> {
    nodes
        .iter()
        .map(|x| x.name.as_str())
        .zip(servers.iter().copied())
        .collect()
}

fn refs(v: &[RedisServer]) -> Vec<&RedisServer> {
    v.iter().collect()
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

#[test]
fn add_node_under_load() {
    let case = "add";
    let mut s = Setup::start(3, case);
    let extra = RedisServer::start();
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);

    let mut nodes = s.nodes.clone();
    nodes.push(n("node3", &extra, 1));
    let text = yaml(s.listen, s.admin, &nodes);
    let (latency, tries) = add_latency(&s.proxy, &text, "node3", &extra);
    println!(
        "[{case}] reload latency (file rename -> key served by the new node): {latency:?} ({tries} probes)"
    );
    assert_eq!(version(s.admin), v + 1, "[{case}] one reload, one version");

    let mut all = refs(&s.servers);
    all.push(&extra);
    let named = name_servers(nodes.as_slice(), &all);
    let per = check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert!(per.get("node3").copied().unwrap_or(0) > 0, "{per:?}");
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers), &before);
    assert!(!proxy_conn_ids(&extra).is_empty());
    s.finish(case, 1);
}

#[test]
fn remove_node_under_load() {
    let case = "remove";
    let mut s = Setup::start(4, case);
    let before = conn_ids(&refs(&s.servers[..3]));
    let v = version(s.admin);
    let failed0 = reloads(s.admin, "failed");

    let nodes = s.nodes[..3].to_vec();
    let text = yaml(s.listen, s.admin, &nodes);
    s.proxy.write_config(&text);
    let took = wait_version(s.admin, v + 1);
    println!("[{case}] file rename -> new version on /topology: {took:?}");

    let all = refs(&s.servers);
    let named = name_servers(nodes.as_slice(), &all);
    check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers[..3]), &before);
    // The removed node's connections are drained and closed.
    let removed = &s.servers[3];
    wait_until(
        "the proxy's connections to the removed node to close",
        Duration::from_secs(5),
        || proxy_conn_ids(removed).is_empty(),
    );
    assert_eq!(reloads(s.admin, "failed"), failed0);
    s.finish(case, 1);
}

/// In-flight requests to a removed node finish there; later ones go to the new owner
/// at once. node3 is made busy (DEBUG SLEEP on a direct connection) while a client's
/// GETs for its keys are in flight, and removed from the file meanwhile.
#[test]
fn remove_node_drains_in_flight() {
    let case = "drain";
    // The load never touches node3, so node3's in-flight count is this test's alone.
    let mut s = Setup::start_avoiding(4, case, Some("node3"));
    let v = version(s.admin);
    let keys: Vec<String> = (0..300).map(|i| format!("drain:{i}")).collect();
    let mine: Vec<String> = route(s.proxy.config_path(), &keys)
        .into_iter()
        .filter(|(_, name)| name == "node3")
        .map(|(k, _)| k)
        .collect();
    assert!(mine.len() >= 10, "too few keys on node3: {}", mine.len());
    let set: Vec<Vec<String>> = mine
        .iter()
        .map(|k| vec!["SET".into(), k.clone(), format!("old:{k}")])
        .collect();
    for r in s.proxy.conn().pipeline(&set) {
        assert_eq!(r, Reply::ok());
    }

    // node3 sleeps 1.5 s (below the 2 s request timeout).
    let node3 = &s.servers[3];
    let mut sleeper = node3.conn();
    sleeper.send(&["DEBUG", "SLEEP", "1.5"]).unwrap();
    wait_until("node3 to be asleep", Duration::from_secs(5), || {
        !answers_ping(node3.port())
    });
    let slept = Instant::now();
    // A client's GETs for node3's keys, now stuck in flight.
    let port = s.listen;
    let gets: Vec<Vec<String>> = mine.iter().map(|k| vec!["GET".into(), k.clone()]).collect();
    let stuck = std::thread::spawn(move || Conn::connect(port).pipeline(&gets));
    let want = mine.len() as i64;
    wait_until(
        &format!("{want} GETs in flight on node3"),
        Duration::from_secs(5),
        || {
            let t = topology(s.admin);
            t.json["pools"][0]["nodes"][3]["inflight"]
                .as_i64()
                .unwrap_or(0)
                >= want
        },
    );

    // Remove node3 while they are in flight: the reload does not wait for them.
    let nodes = s.nodes[..3].to_vec();
    let text = yaml(s.listen, s.admin, &nodes);
    s.proxy.write_config(&text);
    let HttpResponse { status, body, .. } = http(s.admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    wait_version(s.admin, v + 1);
    // New requests for node3's keys go to their new owners at once (nil there).
    let mut c = s.proxy.conn();
    c.set_timeout(Duration::from_millis(500));
    for k in mine.iter().take(5) {
        assert_eq!(
            c.cmd(&["GET", k]),
            Reply::Nil,
            "[{case}] GET {k} after removal"
        );
    }
    let after = slept.elapsed();
    assert!(
        after < Duration::from_millis(1400),
        "[{case}] reload + new requests took {after:?}: they waited for the removed node"
    );
    // The stuck GETs complete on the removed node, with its values.
    let replies = stuck.join().expect("in-flight client");
    for (k, r) in mine.iter().zip(&replies) {
        assert_eq!(
            *r,
            Reply::bulk(format!("old:{k}")),
            "[{case}] in-flight GET {k}"
        );
    }
    assert_eq!(sleeper.read_ok(), Reply::ok());
    println!(
        "[{case}] {} in-flight GETs to the removed node completed after {:?}; new requests rerouted within {after:?}",
        replies.len(),
        slept.elapsed()
    );

    let all = refs(&s.servers);
    let named = name_servers(nodes.as_slice(), &all);
    check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert_topology(case, s.admin, &nodes, &text);
    wait_until(
        "the proxy's connections to the removed node to close",
        Duration::from_secs(5),
        || proxy_conn_ids(node3).is_empty(),
    );
    s.finish(case, 1);
}

#[test]
fn change_weight_under_load() {
    let case = "weight";
    let mut s = Setup::start(3, case);
    // node0's weight changes; node1 and node2 are unchanged.
    let before = conn_ids(&refs(&s.servers[1..]));
    let node0_before = proxy_conn_ids(&s.servers[0]);
    let v = version(s.admin);

    let mut nodes = s.nodes.clone();
    nodes[0].weight = 4;
    let text = yaml(s.listen, s.admin, &nodes);
    write_in_place(s.proxy.config_path(), &text);
    wait_version(s.admin, v + 1);

    let all = refs(&s.servers);
    let named = name_servers(nodes.as_slice(), &all);
    let per = check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 300);
    println!("[{case}] fresh keys per node after weight 1 -> 4 on node0: {per:?}");
    assert!(
        per["node0"] > per["node1"] && per["node0"] > per["node2"],
        "[{case}] node0 (weight 4) should own the most keys: {per:?}"
    );
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers[1..]), &before);
    // node0 itself changed, so it may have new connections (informational).
    println!(
        "[{case}] node0 (weight changed) proxy connection ids: before {node0_before:?}, after {:?}",
        proxy_conn_ids(&s.servers[0])
    );
    s.finish(case, 1);
}

#[test]
fn move_node_to_new_address_under_load() {
    let case = "move";
    let mut s = Setup::start(3, case);
    // Seed keys through the proxy, then copy node1's data to its new server.
    let seeds: Vec<String> = (0..300).map(|i| format!("seed:{i}")).collect();
    let cmds: Vec<Vec<String>> = seeds
        .iter()
        .map(|k| vec!["SET".into(), k.clone(), format!("s:{k}")])
        .collect();
    for r in s.proxy.conn().pipeline(&cmds) {
        assert_eq!(r, Reply::ok());
    }
    let on_node1: Vec<String> = route(s.proxy.config_path(), &seeds)
        .into_iter()
        .filter(|(_, name)| name == "node1")
        .map(|(k, _)| k)
        .collect();
    assert!(!on_node1.is_empty());
    let replacement = RedisServer::start();
    let copied = copy_keys(&s.servers[1], &replacement);
    assert!(copied >= on_node1.len());
    let before = conn_ids(&[&s.servers[0], &s.servers[2]]);
    let v = version(s.admin);

    let mut nodes = s.nodes.clone();
    nodes[1].addr = replacement.addr();
    let text = yaml(s.listen, s.admin, &nodes);
    s.proxy.write_config(&text);
    wait_version(s.admin, v + 1);

    // Keys follow the name: node1's keys now go to the new address, nobody else moved.
    let all = vec![&s.servers[0], &s.servers[1], &s.servers[2], &replacement];
    let named = [
        ("node0", &s.servers[0]),
        ("node1", &replacement),
        ("node2", &s.servers[2]),
    ];
    let per = check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert!(per["node1"] > 0);
    // The copied data is served from the new address.
    let mut c = s.proxy.conn();
    for k in &on_node1 {
        assert_eq!(c.cmd(&["GET", k]), Reply::bulk(format!("s:{k}")), "GET {k}");
    }
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(case, &[&s.servers[0], &s.servers[2]], &before);
    // The old address gets no more traffic: its connections close.
    wait_until(
        "the proxy's connections to node1's old address to close",
        Duration::from_secs(5),
        || proxy_conn_ids(&s.servers[1]).is_empty(),
    );
    s.finish(case, 1);
}

#[test]
fn invalid_file_changes_nothing_then_valid_file_applies() {
    let case = "invalid";
    let mut s = Setup::start(3, case);
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);
    let good_text = yaml(s.listen, s.admin, &s.nodes);
    let hash0 = topology(s.admin).config_hash.clone();
    let failed0 = reloads(s.admin, "failed");

    // Unknown field, then broken YAML, then a node with a bad weight.
    let bad_files = [
        format!("{good_text}no_such_setting: 1\n"),
        format!(
            "{good_text}  - {{name: nodeX, addr: \"127.0.0.1:{}\"\n",
            free_port()
        ),
        good_text.replace("weight: 1}", "weight: 0}"),
    ];
    let mut failed = failed0;
    for (i, bad) in bad_files.iter().enumerate() {
        s.proxy.write_config(bad);
        wait_until(
            &format!("reloads_total{{result=failed}} to move for bad file {i}"),
            RELOAD_TIMEOUT,
            || reloads(s.admin, "failed") > failed,
        );
        assert_eq!(
            version(s.admin),
            v,
            "[{case}] bad file {i} changed the version"
        );
        assert_eq!(
            topology(s.admin).config_hash,
            hash0,
            "[{case}] bad file {i} changed the config hash"
        );
        let HttpResponse { status, body, .. } = http(s.admin, "POST", "/reload");
        assert_eq!(
            status, 422,
            "[{case}] POST /reload with bad file {i}: {body}"
        );
        assert!(!body.trim().is_empty(), "422 without a reason");
        println!("[{case}] bad file {i}: 422 {}", body.trim());
        failed = reloads(s.admin, "failed");
    }
    assert!(
        s.proxy.log().contains("config reload rejected"),
        "[{case}] no rejection in the log"
    );
    // Nothing changed: same topology, same connections, keys where they were.
    assert_topology(case, s.admin, &s.nodes, &good_text);
    let all = refs(&s.servers);
    let named: Vec<(&str, &RedisServer)> = s
        .nodes
        .iter()
        .map(|x| x.name.as_str())
        .zip(all.iter().copied())
        .collect();
    // The file on disk is bad: route over the good text.
    let good_path = s.proxy.config_path().with_extension("good");
    std::fs::write(&good_path, &good_text).unwrap();
    check_fresh_keys("invalid-a", &s.proxy, &good_path, &named, &all, 200);
    assert_same_conns(case, &all, &before);

    // Then a valid file (node2 removed) applies.
    let nodes = s.nodes[..2].to_vec();
    let text = yaml(s.listen, s.admin, &nodes);
    s.proxy.write_config(&text);
    wait_version(s.admin, v + 1);
    check_fresh_keys(
        "invalid-b",
        &s.proxy,
        s.proxy.config_path(),
        &named[..2],
        &all,
        200,
    );
    assert_topology(case, s.admin, &nodes, &text);
    assert_same_conns(case, &all[..2], &before[..2]);
    // The bad files moved no keys: only the one valid swap may cause misses.
    s.finish(case, 1);
}

#[test]
fn symlink_swap_like_kubernetes() {
    let case = "symlink";
    let mut s = Setup::start(3, case);
    let extra = [RedisServer::start(), RedisServer::start()];
    let before = conn_ids(&refs(&s.servers));
    let path = s.proxy.config_path().to_path_buf();
    let dir = path.parent().unwrap().to_path_buf();
    let v = version(s.admin);
    let unchanged0 = reloads(s.admin, "unchanged");

    // 1. The config path becomes a symlink to dir1/conf.yaml (same text: unchanged).
    let text0 = std::fs::read_to_string(&path).unwrap();
    std::fs::create_dir(dir.join("dir1")).unwrap();
    std::fs::write(dir.join("dir1/conf.yaml"), &text0).unwrap();
    swap_symlink(&path, &dir.join("dir1/conf.yaml"));
    wait_until(
        "the watcher to see the symlink (an unchanged reload)",
        RELOAD_TIMEOUT,
        || reloads(s.admin, "unchanged") > unchanged0,
    );
    assert_eq!(version(s.admin), v);

    // 2. Swap the symlink to dir2/conf.yaml, which adds a node.
    let mut nodes = s.nodes.clone();
    nodes.push(n("node3", &extra[0], 1));
    let text1 = yaml(s.listen, s.admin, &nodes);
    std::fs::create_dir(dir.join("dir2")).unwrap();
    std::fs::write(dir.join("dir2/conf.yaml"), &text1).unwrap();
    swap_symlink(&path, &dir.join("dir2/conf.yaml"));
    wait_version(s.admin, v + 1);
    let mut all = refs(&s.servers);
    all.push(&extra[0]);
    all.push(&extra[1]);
    let named = name_servers(nodes.as_slice(), &all);
    let per = check_fresh_keys("symlink-a", &s.proxy, &path, &named, &all, 200);
    assert!(per["node3"] > 0);
    assert_topology(case, s.admin, &nodes, &text1);

    // 3. The Kubernetes ConfigMap layout: conf.yaml -> ..data/conf.yaml,
    //    ..data -> ..v1; an update writes ..v2 and renames a new ..data over the old.
    std::fs::create_dir(dir.join("..v1")).unwrap();
    std::fs::write(dir.join("..v1/conf.yaml"), &text1).unwrap();
    swap_symlink(&dir.join("..data"), Path::new("..v1"));
    swap_symlink(&path, Path::new("..data/conf.yaml"));
    // Same text again: no new version; wait for the watcher to pass over it.
    let unchanged1 = reloads(s.admin, "unchanged");
    wait_until(
        "the watcher to see the ..data layout",
        RELOAD_TIMEOUT,
        || reloads(s.admin, "unchanged") > unchanged1,
    );
    nodes.push(n("node4", &extra[1], 1));
    let text2 = yaml(s.listen, s.admin, &nodes);
    std::fs::create_dir(dir.join("..v2")).unwrap();
    std::fs::write(dir.join("..v2/conf.yaml"), &text2).unwrap();
    swap_symlink(&dir.join("..data"), Path::new("..v2"));
    wait_version(s.admin, v + 2);
    let named = name_servers(nodes.as_slice(), &all);
    let per = check_fresh_keys("symlink-b", &s.proxy, &path, &named, &all, 200);
    assert!(per["node4"] > 0);
    assert_topology(case, s.admin, &nodes, &text2);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers), &before);
    assert_eq!(reloads(s.admin, "failed"), 0.0);
    s.finish(case, 2);
}

#[test]
fn replace_by_rename_under_load() {
    let case = "rename";
    let mut s = Setup::start(3, case);
    let extra = RedisServer::start();
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);

    let mut nodes = s.nodes.clone();
    nodes.push(n("node3", &extra, 2));
    let text = yaml(s.listen, s.admin, &nodes);
    write_by_rename(s.proxy.config_path(), &text);
    wait_version(s.admin, v + 1);
    let mut all = refs(&s.servers);
    all.push(&extra);
    let named = name_servers(nodes.as_slice(), &all);
    check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert_topology(case, s.admin, &nodes, &text);
    // A second rename back to the original file applies as well.
    let text0 = yaml(s.listen, s.admin, &s.nodes);
    write_by_rename(s.proxy.config_path(), &text0);
    wait_version(s.admin, v + 2);
    check_fresh_keys(
        "rename-back",
        &s.proxy,
        s.proxy.config_path(),
        &named[..3],
        &all,
        200,
    );
    assert_topology(case, s.admin, &s.nodes, &text0);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers), &before);
    s.finish(case, 2);
}

#[test]
fn sighup_storm() {
    let case = "sighup";
    let mut s = Setup::start(3, case);
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);
    let ok0 = reloads(s.admin, "ok");
    let unchanged0 = reloads(s.admin, "unchanged");
    let failed0 = reloads(s.admin, "failed");

    for _ in 0..100 {
        s.proxy.signal("HUP");
    }
    // Signals coalesce; at least one reload ran, every one found the file unchanged.
    wait_until("a SIGHUP reload", RELOAD_TIMEOUT, || {
        reloads(s.admin, "unchanged") > unchanged0
    });
    assert!(s.proxy.is_running(), "[{case}] proxy died under SIGHUP");
    assert_eq!(s.proxy.conn().cmd(&["PING"]), Reply::Status("PONG".into()));
    let m = get(s.admin, "/metrics");
    let (ok, unchanged, failed) = (
        metric(&m, r#"ringproxy_reloads_total{result="ok"}"#),
        metric(&m, r#"ringproxy_reloads_total{result="unchanged"}"#),
        metric(&m, r#"ringproxy_reloads_total{result="failed"}"#),
    );
    println!(
        "[{case}] after 100 SIGHUPs: ok +{}, unchanged +{}, failed +{}",
        ok - ok0,
        unchanged - unchanged0,
        failed - failed0
    );
    assert_eq!(failed, failed0, "[{case}] a SIGHUP reload failed");
    assert_eq!(ok, ok0, "[{case}] an unchanged file was applied again");
    assert!(unchanged - unchanged0 <= 100.0);
    assert_eq!(version(s.admin), v);

    // A change in the middle of a second storm is applied exactly once.
    let extra = RedisServer::start();
    let mut nodes = s.nodes.clone();
    nodes.push(n("node3", &extra, 1));
    let text = yaml(s.listen, s.admin, &nodes);
    for i in 0..100 {
        if i == 50 {
            s.proxy.write_config(&text);
        }
        s.proxy.signal("HUP");
    }
    wait_version(s.admin, v + 1);
    assert_eq!(reloads(s.admin, "failed"), failed0);
    assert_eq!(reloads(s.admin, "ok"), ok0 + 1.0);
    let mut all = refs(&s.servers);
    all.push(&extra);
    let named = name_servers(nodes.as_slice(), &all);
    check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers), &before);
    assert!(s.proxy.is_running());
    s.finish(case, 1);
}

#[test]
fn post_reload_200_and_422() {
    let case = "post";
    let mut s = Setup::start(3, case);
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);

    // Unchanged file: 200.
    let HttpResponse { status, body, .. } = http(s.admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unchanged"), "{body}");
    assert_eq!(version(s.admin), v);

    // A bad file: 422 with the reason, nothing changes.
    let good = yaml(s.listen, s.admin, &s.nodes);
    s.proxy.write_config(&format!("{good}nodes: oops\n"));
    let HttpResponse { status, body, .. } = http(s.admin, "POST", "/reload");
    assert_eq!(status, 422, "{body}");
    println!("[{case}] 422: {}", body.trim());
    assert_eq!(version(s.admin), v);
    // GET is not allowed on /reload.
    assert_eq!(http(s.admin, "GET", "/reload").status, 405);

    // A good file: 200 (applied, or unchanged if the file watcher got there first).
    let nodes = vec![s.nodes[0].clone(), s.nodes[2].clone()];
    let text = yaml(s.listen, s.admin, &nodes);
    s.proxy.write_config(&text);
    let HttpResponse { status, body, .. } = http(s.admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    println!("[{case}] 200: {}", body.trim());
    assert!(
        body.contains("applied") || body.contains("unchanged"),
        "{body}"
    );
    wait_version(s.admin, v + 1);
    let all = refs(&s.servers);
    let named = [("node0", &s.servers[0]), ("node2", &s.servers[2])];
    check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(
        case,
        &[&s.servers[0], &s.servers[2]],
        &[before[0].clone(), before[2].clone()],
    );
    s.finish(case, 1);
}

#[test]
fn listen_change_needs_restart_node_change_applies() {
    let case = "listen";
    let mut s = Setup::start(3, case);
    let extra = RedisServer::start();
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);

    let new_listen = free_port();
    let mut nodes = s.nodes.clone();
    nodes.push(n("node3", &extra, 1));
    let text = yaml(new_listen, s.admin, &nodes);
    s.proxy.write_config(&text);
    let HttpResponse { status, body, .. } = http(s.admin, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    println!("[{case}] POST /reload: {}", body.trim());
    if body.contains("unchanged") {
        // The file watcher applied it first: its log line says the same.
        wait_version(s.admin, v + 1);
        let log = s.proxy.log();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("config applied"))
            .unwrap_or_else(|| panic!("no 'config applied' in the log:\n{log}"));
        assert!(
            line.contains("listen"),
            "[{case}] applied without naming the listen change: {line}"
        );
    } else {
        assert!(
            body.contains("restart") && body.contains("listen"),
            "[{case}] the listen change is not reported as needing a restart: {body}"
        );
    }
    wait_version(s.admin, v + 1);
    // Still serving on the old port only; the node change applied.
    assert!(
        !accepts(new_listen),
        "[{case}] the proxy bound the new listen address live"
    );
    let mut all = refs(&s.servers);
    all.push(&extra);
    let named = name_servers(nodes.as_slice(), &all);
    let per = check_fresh_keys(case, &s.proxy, s.proxy.config_path(), &named, &all, 200);
    assert!(per["node3"] > 0);
    assert_topology(case, s.admin, &nodes, &text);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers), &before);
    assert_eq!(reloads(s.admin, "failed"), 0.0);
    s.finish(case, 1);
}

/// A node added and removed again and again under load: every reload applies once,
/// the unchanged nodes keep their connections throughout, and the reload latency is
/// measured on each add.
#[test]
fn repeated_add_remove_under_load() {
    let case = "flap";
    let mut s = Setup::start(3, case);
    let extra = RedisServer::start();
    let before = conn_ids(&refs(&s.servers));
    let v = version(s.admin);
    let mut with = s.nodes.clone();
    with.push(n("node3", &extra, 1));
    let text_with = yaml(s.listen, s.admin, &with);
    let text_without = yaml(s.listen, s.admin, &s.nodes);
    let mut all = refs(&s.servers);
    all.push(&extra);
    let named = name_servers(with.as_slice(), &all);
    let cycles = 5;
    let mut latencies = Vec::new();
    for i in 0..cycles {
        let (latency, _) = add_latency(&s.proxy, &text_with, "node3", &extra);
        latencies.push(latency);
        wait_version(s.admin, v + 2 * i + 1);
        check_fresh_keys(
            &format!("{case}-add{i}"),
            &s.proxy,
            s.proxy.config_path(),
            &named,
            &all,
            100,
        );
        s.proxy.write_config(&text_without);
        wait_version(s.admin, v + 2 * i + 2);
        check_fresh_keys(
            &format!("{case}-remove{i}"),
            &s.proxy,
            s.proxy.config_path(),
            &named[..3],
            &all,
            100,
        );
    }
    latencies.sort();
    println!(
        "[{case}] reload latency over {cycles} adds (file rename -> key served by the new node): min {:?}, median {:?}, max {:?}",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert_topology(case, s.admin, &s.nodes, &text_without);
    s.load().wait_rounds(10);
    assert_same_conns(case, &refs(&s.servers), &before);
    assert_eq!(reloads(s.admin, "failed"), 0.0);
    s.finish(case, 2 * cycles);
}
