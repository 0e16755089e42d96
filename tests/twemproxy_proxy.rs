//! Differential tests of the running `ringproxy` process against the real nutcracker
//! 0.5.0 binary, both reading the SAME nutcracker YAML file (two copies that differ
//! only in their `listen:` ports) over the same real redis-server backends.
//!
//! Each placement case writes keys through nutcracker, lists every backend directly,
//! flushes, writes the same keys through ringproxy, lists again, and requires every key
//! on the same backend both times (0 mismatches). Run with `--nocapture` for the counts.
//!
//! Also covered: a file with two pools (one listener per pool), `--check` and
//! `convert` on nutcracker files, and placement after an ejection (auto_eject_hosts).
//!
//! A nutcracker file cannot name an admin address, so ringproxy binds no admin port
//! for it unless `--admin HOST:PORT` is given: every port here is a free one.

mod common;

use common::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------

/// One `servers:` entry: `127.0.0.1:port:weight [name]`.
fn server(b: &RedisServer, weight: u32, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{}:{weight} {n}", b.addr()),
        None => format!("{}:{weight}", b.addr()),
    }
}

/// One pool of a nutcracker file. `listen` is a placeholder such as `{LISTEN0}`,
/// filled by [`fill`]; `settings` are `key: value` lines.
fn pool(name: &str, listen: &str, settings: &[&str], servers: &[String]) -> String {
    let mut y = format!("{name}:\n  listen: 127.0.0.1:{listen}\n");
    for s in settings {
        y.push_str(&format!("  {s}\n"));
    }
    y.push_str("  servers:\n");
    for s in servers {
        y.push_str(&format!("    - {s}\n"));
    }
    y
}

/// The template with `{LISTEN<i>}` replaced by `ports[i]`.
fn fill(template: &str, ports: &[u16]) -> String {
    let mut y = template.to_string();
    for (i, p) in ports.iter().enumerate() {
        y = y.replace(&format!("{{LISTEN{i}}}"), &p.to_string());
    }
    assert!(!y.contains("{LISTEN"), "unfilled listen placeholder:\n{y}");
    y
}

/// Copies of `template` for nutcracker and for ringproxy differ only in `listen:` lines.
fn assert_only_listen_differs(a: &str, b: &str) {
    let strip = |y: &str| -> Vec<String> {
        y.lines()
            .filter(|l| !l.trim_start().starts_with("listen:"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(strip(a), strip(b), "the two files differ beyond listen");
}

/// nutcracker on the template (fresh ports); waits until every listener accepts.
fn start_nutcracker(template: &str, listeners: usize) -> (Nutcracker, Vec<u16>, String) {
    let ports: Vec<u16> = (0..listeners).map(|_| free_port()).collect();
    let yaml = fill(template, &ports);
    let nc = Nutcracker::start(&yaml);
    for &p in &ports {
        wait_until(&format!("nutcracker listens on {p}"), READY_TIMEOUT, || {
            accepts(p)
        });
    }
    (nc, ports, yaml)
}

/// ringproxy on the same template (fresh ports) with extra arguments `args`; waits
/// until every listener answers PING. Retries (3 attempts) if a port was taken meanwhile.
fn start_ringproxy_with(
    template: &str,
    listeners: usize,
    args: &[&str],
) -> (Proxy, Vec<u16>, String) {
    let mut last = String::new();
    for _ in 0..3 {
        let ports: Vec<u16> = (0..listeners).map(|_| free_port()).collect();
        let yaml = fill(template, &ports);
        match Proxy::try_start_with(&yaml, args) {
            Ok(p) => {
                for &port in &ports {
                    wait_until(
                        &format!("ringproxy answers PING on {port}"),
                        READY_TIMEOUT,
                        || answers_ping(port),
                    );
                }
                return (p, ports, yaml);
            }
            Err(e) => last = e,
        }
    }
    panic!("ringproxy did not start on a nutcracker file (3 attempts):\n{last}");
}

/// [`start_ringproxy_with`] without extra arguments (so without an admin port).
fn start_ringproxy(template: &str, listeners: usize) -> (Proxy, Vec<u16>, String) {
    start_ringproxy_with(template, listeners, &[])
}

// ---------------------------------------------------------------------------
// Keys, writes, placement
// ---------------------------------------------------------------------------

/// `n` distinct keys: ASCII, UTF-8, random binary (NUL, CR, LF), high-bit bytes, hash
/// tags `{..}` and `[..]` in various positions, empty and unclosed tags, the empty key.
fn keys(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut add = |k: Vec<u8>, out: &mut Vec<Vec<u8>>| {
        if seen.insert(k.clone()) {
            out.push(k);
        }
    };
    add(Vec::new(), &mut out);
    while out.len() < n {
        let i = out.len();
        let r = rng.next_u64();
        let k: Vec<u8> = match r % 10 {
            0 => format!("obj:{i}:{}", r >> 40).into_bytes(),
            1 => {
                let len = 1 + rng.below(40) as usize;
                rng.bytes(len)
            }
            2 => {
                let len = 1 + rng.below(20) as usize;
                rng.bytes(len).into_iter().map(|b| b | 0x80).collect()
            }
            3 => format!("{{grp{}}}:item:{i}", rng.below(300)).into_bytes(),
            4 => format!("pre-{i}-{{t{}}}-post", rng.below(50)).into_bytes(),
            5 => format!("κλειδί/{i}/キー/🔑{}", rng.below(1000)).into_bytes(),
            6 => match rng.below(5) {
                0 => format!("{{}}{i}"),
                1 => format!("open{{{i}"),
                2 => format!("}}{i}{{"),
                3 => format!("{{a}}{{b{i}}}"),
                _ => format!("{{ü{}}}{i}", rng.below(9)),
            }
            .into_bytes(),
            7 => format!("[sq{}]:{i}", rng.below(100)).into_bytes(),
            8 => {
                let (pre, tag, post) = (1 + rng.below(6), rng.below(64), rng.below(6));
                let mut k = rng.bytes(pre as usize);
                k.extend_from_slice(format!("{{{tag}}}").as_bytes());
                k.extend(rng.bytes(post as usize));
                k
            }
            _ => i.to_string().into_bytes(),
        };
        add(k, &mut out);
    }
    out
}

/// SETs every key to `value` on `port`, pipelined; returns the replies in key order.
fn set_all(port: u16, keys: &[Vec<u8>], value: &str) -> Vec<Reply> {
    let mut c = Conn::connect(port);
    let mut replies = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let cmds: Vec<Vec<&[u8]>> = chunk
            .iter()
            .map(|k| vec![b"SET".as_slice(), k.as_slice(), value.as_bytes()])
            .collect();
        replies.extend(c.pipeline(&cmds));
    }
    replies
}

/// Like [`set_all`], panicking unless every reply is `+OK`.
fn set_all_ok(who: &str, port: u16, keys: &[Vec<u8>], value: &str) {
    let replies = set_all(port, keys, value);
    let bad: Vec<String> = keys
        .iter()
        .zip(&replies)
        .filter(|(_, r)| **r != Reply::ok())
        .take(5)
        .map(|(k, r)| format!("{} -> {r}", escape(k)))
        .collect();
    assert!(bad.is_empty(), "SET through {who} failed: {bad:?}");
}

fn flush(backends: &[&RedisServer]) {
    for b in backends {
        assert_eq!(b.cmd(&["FLUSHALL"]), Reply::ok(), "FLUSHALL {}", b.addr());
    }
}

/// Key -> index of the backend holding it.
type Holders = HashMap<Vec<u8>, usize>;

/// Which backend (index into `backends`) holds each key, read directly with KEYS *.
/// Panics when a key is on two backends or holds an unexpected value.
fn holders(backends: &[&RedisServer], value: &str) -> Holders {
    let mut at = HashMap::new();
    for (i, b) in backends.iter().enumerate() {
        let keys = b.keys();
        // Spot-check the values: they must be the ones this phase wrote.
        let mut c = b.conn();
        for k in keys.iter().take(20) {
            assert_eq!(
                c.cmd(&[b"GET".as_slice(), k]),
                Reply::bulk(value),
                "value of {} on {}",
                escape(k),
                b.addr()
            );
        }
        for k in keys {
            if let Some(j) = at.insert(k.clone(), i) {
                panic!("key {} is on backends {j} and {i}", escape(&k));
            }
        }
    }
    at
}

/// Keys whose backend differs between the two maps (a missing key counts).
fn mismatches(
    keys: &[Vec<u8>],
    nc: &HashMap<Vec<u8>, usize>,
    rp: &HashMap<Vec<u8>, usize>,
) -> Vec<String> {
    keys.iter()
        .filter(|k| nc.get(*k).is_none() || nc.get(*k) != rp.get(*k))
        .map(|k| {
            format!(
                "{} nutcracker={:?} ringproxy={:?}",
                escape(k),
                nc.get(k),
                rp.get(k)
            )
        })
        .collect()
}

/// Writes `keys` through nutcracker, then (after a flush) through ringproxy, and
/// returns (placement by nutcracker, placement by ringproxy, mismatch descriptions).
fn write_both(
    backends: &[&RedisServer],
    nc_port: u16,
    rp_port: u16,
    keys: &[Vec<u8>],
) -> (Holders, Holders, Vec<String>) {
    flush(backends);
    set_all_ok("nutcracker", nc_port, keys, "nc");
    let nc = holders(backends, "nc");
    flush(backends);
    set_all_ok("ringproxy", rp_port, keys, "rp");
    let rp = holders(backends, "rp");
    assert_eq!(nc.len(), keys.len(), "keys stored through nutcracker");
    assert_eq!(rp.len(), keys.len(), "keys stored through ringproxy");
    let bad = mismatches(keys, &nc, &rp);
    (nc, rp, bad)
}

/// Keys per backend, for the printed summary.
fn spread(at: &HashMap<Vec<u8>, usize>, n: usize) -> Vec<usize> {
    let mut v = vec![0; n];
    for &i in at.values() {
        v[i] += 1;
    }
    v
}

// ---------------------------------------------------------------------------
// 1. Same file, same backends: every key on the same node
// ---------------------------------------------------------------------------

/// Settings every placement case has on top of its own.
const CASE_SETTINGS: [&str; 2] = ["redis: true", "timeout: 2000"];

/// Both proxies over `entries` (weight, name) with `settings` (plus
/// [`CASE_SETTINGS`]): `n` keys must land on the same backend through each.
fn placement_case(label: &str, entries: &[(u32, Option<&str>)], settings: &[&str], n: usize) {
    let settings: Vec<&str> = settings.iter().chain(&CASE_SETTINGS).copied().collect();
    let settings = settings.as_slice();
    let started = Instant::now();
    let backends: Vec<RedisServer> = entries.iter().map(|_| RedisServer::start()).collect();
    let refs: Vec<&RedisServer> = backends.iter().collect();
    let servers: Vec<String> = backends
        .iter()
        .zip(entries)
        .map(|(b, (w, name))| server(b, *w, *name))
        .collect();
    let template = pool("alpha", "{LISTEN0}", settings, &servers);
    let (nc, nc_ports, nc_yaml) = start_nutcracker(&template, 1);
    let (rp, rp_ports, rp_yaml) = start_ringproxy(&template, 1);
    assert_only_listen_differs(&nc_yaml, &rp_yaml);
    assert_eq!(nc.port(), nc_ports[0]);
    assert_eq!(rp.port(), rp_ports[0]);

    let keys = keys(0x7e11_0000 ^ n as u64 ^ entries.len() as u64, n);
    let (nc_at, _rp_at, bad) = write_both(&refs, nc.port(), rp.port(), &keys);
    println!(
        "[{label}] {} servers, {} keys: {} mismatches; keys per backend {:?} ({:?})",
        entries.len(),
        keys.len(),
        bad.len(),
        spread(&nc_at, entries.len()),
        started.elapsed()
    );
    assert!(
        bad.is_empty(),
        "[{label}] {} of {} keys on a different backend than nutcracker's; first: {:#?}",
        bad.len(),
        keys.len(),
        &bad[..bad.len().min(10)]
    );
}

#[test]
fn three_servers_fnv1a_64_ketama_with_tag() {
    placement_case(
        "3x fnv1a_64 ketama {}",
        &[(1, None), (1, None), (1, None)],
        &["hash: fnv1a_64", "hash_tag: \"{}\"", "distribution: ketama"],
        20_000,
    );
}

#[test]
fn five_servers_mixed_weights_and_names_murmur_ketama() {
    placement_case(
        "5x murmur ketama, weights 1/3/2/5/1, some named",
        &[
            (1, Some("cache-a")),
            (3, None),
            (2, Some("b")),
            (5, None),
            (1, Some("cache-long-name-e")),
        ],
        &[
            "hash: murmur",
            "hash_tag: \"{}\"",
            "distribution: ketama",
            "auto_eject_hosts: false",
        ],
        5_000,
    );
}

#[test]
fn four_servers_md5_modula() {
    placement_case(
        "4x md5 modula, weights 1/2/1/1",
        &[(1, None), (2, None), (1, None), (1, None)],
        &["hash: md5", "distribution: modula"],
        5_000,
    );
}

#[test]
fn twenty_five_servers_crc32a_ketama() {
    let entries = vec![(1, None); 25];
    placement_case(
        "25x crc32a ketama",
        &entries,
        &["hash: crc32a", "distribution: ketama"],
        5_000,
    );
}

#[test]
fn named_servers_hsieh_ketama_square_tag() {
    placement_case(
        "6x named hsieh ketama []",
        &[
            (1, Some("z")),
            (1, Some("aa")),
            (2, Some("node-10")),
            (1, Some("node-9")),
            (1, Some("redis.cache.internal")),
            (3, Some("B")),
        ],
        &["hash: hsieh", "hash_tag: \"[]\"", "distribution: ketama"],
        5_000,
    );
}

/// modula depends on server order: nutcracker sorts by name, shorter first.
#[test]
fn named_servers_fnv1a_64_modula_sorted_by_name() {
    placement_case(
        "6x named fnv1a_64 modula {} (name order)",
        &[
            (1, Some("node-10")),
            (2, Some("z")),
            (1, Some("node-9")),
            (1, Some("aa")),
            (1, Some("b")),
            (1, Some("a-much-longer-name")),
        ],
        &["hash: fnv1a_64", "hash_tag: \"{}\"", "distribution: modula"],
        5_000,
    );
}

// ---------------------------------------------------------------------------
// 2. Two pools, one listener each
// ---------------------------------------------------------------------------

#[test]
fn two_pools_each_on_its_own_listener() {
    let a: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let b: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let a_refs: Vec<&RedisServer> = a.iter().collect();
    let b_refs: Vec<&RedisServer> = b.iter().collect();
    let a_servers: Vec<String> = a.iter().map(|s| server(s, 1, None)).collect();
    let b_servers: Vec<String> = b
        .iter()
        .enumerate()
        .map(|(i, s)| server(s, 1 + i as u32, Some(&format!("beta-{i}"))))
        .collect();
    let template = pool(
        "alpha",
        "{LISTEN0}",
        &[
            "hash: fnv1a_64",
            "hash_tag: \"{}\"",
            "distribution: ketama",
            "redis: true",
            "timeout: 2000",
        ],
        &a_servers,
    ) + &pool(
        "beta",
        "{LISTEN1}",
        &[
            "hash: murmur",
            "distribution: modula",
            "redis: true",
            "timeout: 2000",
        ],
        &b_servers,
    );
    let (_nc, ncp, nc_yaml) = start_nutcracker(&template, 2);
    let (rp, rpp, rp_yaml) = start_ringproxy(&template, 2);
    assert_only_listen_differs(&nc_yaml, &rp_yaml);
    assert_eq!(
        listening_ports(rp.pid()),
        rpp.iter().copied().collect::<BTreeSet<u16>>(),
        "ringproxy on a nutcracker file binds one listener per pool and no admin port"
    );
    for &p in &rpp {
        assert_eq!(
            Conn::connect(p).cmd(&["PING"]),
            Reply::Status("PONG".into()),
            "PING on ringproxy listener {p}"
        );
    }

    // Pool isolation: keys written to one listener land on that pool's servers only.
    let all: Vec<&RedisServer> = a_refs.iter().chain(&b_refs).copied().collect();
    flush(&all);
    let ka: Vec<Vec<u8>> = keys(0xa11a, 1000)
        .into_iter()
        .map(|k| [b"A:".as_slice(), &k].concat())
        .collect();
    let kb: Vec<Vec<u8>> = keys(0xbe7a, 1000)
        .into_iter()
        .map(|k| [b"B:".as_slice(), &k].concat())
        .collect();
    set_all_ok("ringproxy pool alpha", rpp[0], &ka, "rp");
    set_all_ok("ringproxy pool beta", rpp[1], &kb, "rp");
    let on_a = holders(&a_refs, "rp");
    let on_b = holders(&b_refs, "rp");
    assert_eq!(
        on_a.len(),
        ka.len(),
        "pool alpha's servers hold alpha's keys"
    );
    assert!(
        on_a.keys().all(|k| k.starts_with(b"A:")),
        "beta keys on alpha"
    );
    assert_eq!(on_b.len(), kb.len(), "pool beta's servers hold beta's keys");
    assert!(
        on_b.keys().all(|k| k.starts_with(b"B:")),
        "alpha keys on beta"
    );
    // Both backends of beta are used (weights 1 and 2).
    assert!(spread(&on_b, 2).iter().all(|&n| n > 0), "beta spread");

    // And each pool places like nutcracker's same pool.
    for (label, refs, nc_port, rp_port, ks) in [
        ("alpha", &a_refs, ncp[0], rpp[0], &ka),
        ("beta", &b_refs, ncp[1], rpp[1], &kb),
    ] {
        let (_, _, bad) = write_both(refs, nc_port, rp_port, ks);
        println!(
            "[two pools: {label}] {} keys: {} mismatches",
            ks.len(),
            bad.len()
        );
        assert!(
            bad.is_empty(),
            "[two pools: {label}] {} mismatches; first: {:#?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
    }
}

#[test]
fn nutcracker_file_binds_an_admin_port_only_with_the_admin_flag() {
    let backend = RedisServer::start();
    let template = pool(
        "alpha",
        "{LISTEN0}",
        &["redis: true"],
        &[server(&backend, 1, Some("node0"))],
    );
    let (rp, ports, _) = start_ringproxy(&template, 1);
    assert_eq!(
        listening_ports(rp.pid()),
        BTreeSet::from([ports[0]]),
        "without --admin only the pool listener is bound"
    );
    drop(rp);

    let admin = free_port();
    let flag = format!("127.0.0.1:{admin}");
    let (rp, ports, _) = start_ringproxy_with(&template, 1, &["--admin", &flag]);
    assert_eq!(rp.admin_port(), admin);
    assert_eq!(
        listening_ports(rp.pid()),
        BTreeSet::from([ports[0], admin]),
        "--admin {flag} adds the admin listener"
    );
    let t = common::admin::topology(admin);
    assert_eq!(
        (t.pool.as_str(), t.names()),
        ("alpha", vec!["node0"]),
        "{t}"
    );
}

// ---------------------------------------------------------------------------
// 3. --check and convert on nutcracker files
// ---------------------------------------------------------------------------

fn run(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(ringproxy_bin())
        .args(args)
        .output()
        .expect("run ringproxy");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(path: &std::path::Path) -> (bool, String, String) {
    run(&["--check".as_ref(), "--config".as_ref(), path.as_os_str()])
}

/// `host:<a free port>:weight [name]` servers: addresses nothing connects to.
fn offline_servers(entries: &[(&str, u32, Option<&str>)]) -> Vec<String> {
    entries
        .iter()
        .map(|(host, w, name)| {
            let s = format!("{host}:{}:{w}", free_port());
            name.map_or(s.clone(), |n| format!("{s} {n}"))
        })
        .collect()
}

/// A nutcracker file over unused addresses (nothing connects in these tests).
fn offline_file(extra: &[&str]) -> String {
    let mut settings = vec![
        "hash: murmur",
        "hash_tag: \"{}\"",
        "distribution: ketama",
        "redis: true",
        "timeout: 400",
    ];
    settings.extend_from_slice(extra);
    pool(
        "alpha",
        &free_port().to_string(),
        &settings,
        &offline_servers(&[
            ("127.0.0.1", 1, Some("cache-a")),
            ("127.0.0.1", 3, None),
            ("127.0.0.1", 2, Some("b")),
            ("10.0.0.4", 5, None),
            ("127.0.0.1", 1, None),
        ]),
    )
}

#[test]
fn check_notes_unused_settings_and_exits_zero() {
    let dir = TempDir::new("twem-check");
    let f = dir.join("nutcracker.yml");
    std::fs::write(&f, offline_file(&["backlog: 1024", "tcpkeepalive: true"])).unwrap();
    let (ok, out, err) = check(&f);
    assert!(ok, "--check failed:\nstdout: {out}\nstderr: {err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains("backlog") && text.contains("tcpkeepalive"),
        "--check does not note backlog/tcpkeepalive:\n{text}"
    );
    assert!(text.contains("note"), "no note printed:\n{text}");
    println!("--check notes:\n{err}");
}

#[test]
fn check_refuses_a_memcached_pool_and_names_the_line() {
    let dir = TempDir::new("twem-check");
    let f = dir.join("nutcracker.yml");
    let text = offline_file(&[]).replace("redis: true", "redis: false");
    let line = 1 + text
        .lines()
        .position(|l| l.trim() == "redis: false")
        .unwrap();
    std::fs::write(&f, &text).unwrap();
    let (ok, out, err) = check(&f);
    assert!(!ok, "--check accepted `redis: false`:\n{out}{err}");
    assert!(
        err.contains("redis") && err.contains(&format!("line {line}")),
        "the error should name `redis` and line {line}:\n{err}"
    );
    // Serving it fails the same way, before binding anything.
    let (ok, _, err2) = run(&["--config".as_ref(), f.as_os_str()]);
    assert!(!ok && err2.contains(&format!("line {line}")), "{err2}");
}

/// The `listen:` and `admin:` lines `--check` prints (what serving would bind).
fn bind_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("listen: ") || l.starts_with("admin: "))
        .collect()
}

#[test]
fn check_prints_what_it_binds_for_both_formats() {
    let dir = TempDir::new("twem-check-binds");
    let nc_text = offline_file(&[]);
    let listen = port_of(&nc_text, "listen").expect("listen port");
    let nc = dir.join("nutcracker.yml");
    std::fs::write(&nc, &nc_text).unwrap();
    let (ok, out, err) = check(&nc);
    assert!(ok, "--check failed:\n{out}{err}");
    assert_eq!(
        bind_lines(&out),
        [
            format!("listen: 127.0.0.1:{listen} (pool alpha)").as_str(),
            "admin: none (a nutcracker file has no admin field; --admin HOST:PORT enables it)",
        ],
        "{out}"
    );
    let admin = format!("127.0.0.1:{}", free_port());
    let (ok, out, err) = run(&[
        "--check".as_ref(),
        "--config".as_ref(),
        nc.as_os_str(),
        "--admin".as_ref(),
        admin.as_ref(),
    ]);
    assert!(ok, "--check --admin failed:\n{out}{err}");
    assert_eq!(bind_lines(&out)[1], format!("admin: {admin}"), "{out}");

    let (port, admin_port, node) = (free_port(), free_port(), free_port());
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin_port}\nnodes:\n  - {{name: n0, addr: \"127.0.0.1:{node}\"}}\n"
    );
    let rp = dir.join("ringproxy.yaml");
    std::fs::write(&rp, &yaml).unwrap();
    let (ok, out, err) = check(&rp);
    assert!(ok, "--check failed:\n{out}{err}");
    assert_eq!(
        bind_lines(&out),
        [
            format!("listen: 127.0.0.1:{port} (pool default)"),
            format!("admin: 127.0.0.1:{admin_port}"),
        ],
        "{out}"
    );
    let no_admin = yaml.replace(&format!("admin: 127.0.0.1:{admin_port}"), "admin: null");
    std::fs::write(&rp, &no_admin).unwrap();
    let (ok, out, err) = check(&rp);
    assert!(ok, "--check failed:\n{out}{err}");
    assert_eq!(
        bind_lines(&out)[1],
        "admin: none (the file says admin: null)",
        "{out}"
    );
}

/// `ringproxy route` output for `keys` with `config`, one line per key.
fn route_lines(config: &std::path::Path, keys: &[Vec<u8>]) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    let mut args: Vec<&std::ffi::OsStr> = vec!["route".as_ref(), "--config".as_ref()];
    args.push(config.as_os_str());
    args.push("--".as_ref()); // keys may start with '-'
    args.extend(keys.iter().map(|k| std::ffi::OsStr::from_bytes(k)));
    let (ok, out, err) = run(&args);
    assert!(ok, "ringproxy route --config {config:?} failed: {err}");
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), keys.len(), "one line per key:\n{out}");
    lines
}

#[test]
fn convert_prints_an_accepted_file_that_places_keys_identically() {
    let dir = TempDir::new("twem-convert");
    // Route arguments cannot hold NUL; everything else goes.
    let ks: Vec<Vec<u8>> = keys(0xc0de, 1200)
        .into_iter()
        .filter(|k| !k.is_empty() && !k.contains(&0))
        .take(1000)
        .collect();
    assert_eq!(ks.len(), 1000);
    let modula = pool(
        "mod",
        &free_port().to_string(),
        &[
            "hash: fnv1a_64",
            "hash_tag: \"[]\"",
            "distribution: modula",
            "redis: true",
            "auto_eject_hosts: true",
            "server_failure_limit: 3",
            "server_retry_timeout: 5000",
        ],
        &offline_servers(&[
            ("127.0.0.1", 1, Some("node-10")),
            ("127.0.0.1", 2, Some("z")),
            ("127.0.0.1", 1, Some("node-9")),
            ("127.0.0.1", 1, None),
        ]),
    );
    for (label, text) in [
        ("murmur ketama", offline_file(&["backlog: 512"])),
        ("fnv1a_64 modula", modula),
    ] {
        let nc = dir.join(&format!("{}.yml", label.replace(' ', "-")));
        std::fs::write(&nc, &text).unwrap();
        let (ok, converted, err) = run(&["convert".as_ref(), nc.as_os_str()]);
        assert!(ok, "[{label}] convert failed: {err}");
        assert!(converted.contains("twemproxy"), "[{label}] {converted}");
        let rp = dir.join(&format!("{}.converted.yaml", label.replace(' ', "-")));
        std::fs::write(&rp, &converted).unwrap();
        let (ok, out, err) = check(&rp);
        assert!(
            ok,
            "[{label}] --check refuses the converted file:\n{out}{err}\n{converted}"
        );
        let a = route_lines(&nc, &ks);
        let b = route_lines(&rp, &ks);
        let nodes: HashSet<&str> = a.iter().filter_map(|l| l.split(' ').nth(1)).collect();
        assert!(nodes.len() >= 3, "[{label}] keys routed to {nodes:?} only");
        let bad: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
        println!(
            "[convert {label}] {} keys routed: {} differ between nutcracker file and converted file",
            ks.len(),
            bad.len()
        );
        assert!(
            bad.is_empty(),
            "[{label}] route differs for {} keys; first: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
    }
}

#[test]
fn convert_splits_two_pools_into_accepted_documents() {
    let dir = TempDir::new("twem-convert2");
    let text = offline_file(&[])
        + &pool(
            "beta",
            &free_port().to_string(),
            &["redis: true", "hash: md5", "distribution: modula"],
            &offline_servers(&[("127.0.0.1", 1, None), ("127.0.0.1", 1, None)]),
        );
    let nc = dir.join("two.yml");
    std::fs::write(&nc, &text).unwrap();
    let (ok, converted, err) = run(&["convert".as_ref(), nc.as_os_str()]);
    assert!(ok, "convert failed: {err}");
    let docs: Vec<&str> = converted.split("\n---\n").collect();
    assert_eq!(docs.len(), 2, "one document per pool:\n{converted}");
    for (i, d) in docs.iter().enumerate() {
        let f = dir.join(&format!("doc{i}.yaml"));
        std::fs::write(&f, d).unwrap();
        let (ok, out, err) = check(&f);
        assert!(ok, "document {i} refused:\n{out}{err}\n{d}");
    }
}

// ---------------------------------------------------------------------------
// 4. Ejection parity
// ---------------------------------------------------------------------------

/// SET `key` on `port` until it succeeds, reconnecting after IO errors; returns the
/// last error when `deadline` passes first.
fn set_until_ok(port: u16, key: &[u8], deadline: Instant) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = String::new();
    while Instant::now() < deadline {
        match Conn::try_connect(port, Duration::from_secs(2))
            .and_then(|mut c| c.try_cmd(&[b"SET".as_slice(), key, b"probe"]))
        {
            Ok(r) if r == Reply::ok() => return Ok(start.elapsed()),
            Ok(r) => last = r.to_string(),
            Err(e) => last = format!("io: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(last)
}

#[test]
fn placement_after_ejection_matches() {
    let mut backends: Vec<RedisServer> = (0..4).map(|_| RedisServer::start()).collect();
    let servers: Vec<String> = backends.iter().map(|b| server(b, 1, None)).collect();
    let template = pool(
        "alpha",
        "{LISTEN0}",
        &[
            "hash: fnv1a_64",
            "hash_tag: \"{}\"",
            "distribution: ketama",
            "redis: true",
            "timeout: 400",
            "auto_eject_hosts: true",
            "server_failure_limit: 1",
            "server_retry_timeout: 60000",
        ],
        &servers,
    );
    let (nc, _, nc_yaml) = start_nutcracker(&template, 1);
    let (rp, _, rp_yaml) = start_ringproxy(&template, 1);
    assert_only_listen_differs(&nc_yaml, &rp_yaml);
    let ks = keys(0xe1ec7, 3000);

    // Before: both agree with all four servers live.
    let before = {
        let refs: Vec<&RedisServer> = backends.iter().collect();
        let (nc_at, _, bad) = write_both(&refs, nc.port(), rp.port(), &ks);
        assert!(bad.is_empty(), "before ejection: {} mismatches", bad.len());
        nc_at
    };
    let victim = 1;
    let victim_keys: Vec<Vec<u8>> = ks
        .iter()
        .filter(|k| before[*k] == victim)
        .cloned()
        .collect();
    assert!(
        victim_keys.len() > 100,
        "victim holds {}",
        victim_keys.len()
    );

    backends[victim].kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = &victim_keys[0];
    let nc_after = set_until_ok(nc.port(), probe, deadline)
        .unwrap_or_else(|e| panic!("nutcracker never ejected the killed server; last reply: {e}"));
    let rp_after = set_until_ok(rp.port(), probe, deadline)
        .unwrap_or_else(|e| panic!("ringproxy never ejected the killed server; last reply: {e}"));
    println!(
        "[ejection] SET of a moved key succeeded after {nc_after:?} (nutcracker), {rp_after:?} (ringproxy)"
    );

    // After: the three live servers; every key placed the same by both.
    let live: Vec<&RedisServer> = backends
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, b)| b)
        .collect();
    let live_index: Vec<usize> = (0..4).filter(|&i| i != victim).collect();
    let (nc_at, rp_at, bad) = write_both(&live, nc.port(), rp.port(), &ks);
    // Only the dead server's keys moved, for both.
    let moved = |at: &HashMap<Vec<u8>, usize>| {
        ks.iter()
            .filter(|k| before[*k] != victim && live_index[at[*k]] != before[*k])
            .count()
    };
    let (nc_moved, rp_moved) = (moved(&nc_at), moved(&rp_at));
    println!(
        "[ejection] 4 servers, 1 killed, {} keys ({} were on it): {} mismatches; keys of live servers moved: nutcracker {nc_moved}, ringproxy {rp_moved}",
        ks.len(),
        victim_keys.len(),
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "after ejection: {} of {} keys on a different backend than nutcracker's; first: {:#?}",
        bad.len(),
        ks.len(),
        &bad[..bad.len().min(10)]
    );
    assert_eq!(rp_moved, 0, "ringproxy moved keys of live servers");
}
