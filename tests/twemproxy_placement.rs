//! Differential test: ringproxy's twemproxy-mode placement against the real
//! nutcracker 0.5.0 binary and real redis-server backends.
//!
//! Every case writes keys THROUGH nutcracker, then lists each backend directly and
//! checks that every key sits on the backend `Placement::node_for_key` names, with
//! identities from `twemproxy_identity`. Any mismatch fails the case.
//! Run with `--nocapture` to see the per-case counts.

#[path = "twemproxy_placement/compare.rs"]
mod compare;
#[path = "twemproxy_placement/harness.rs"]
mod harness;

use std::path::Path;

use compare::{flush, keys, mismatches, owners, write_through};
use harness::{Reply, Server, TempDir, start_nutcracker, start_redis};
use ringproxy::route::{
    Distribution, HashFunction, HashMode, NodeSpec, Placement, PlacementSpec, twemproxy_identity,
};

/// One `servers:` line apart from the address: weight and optional name.
#[derive(Clone)]
struct Entry {
    weight: u32,
    name: Option<String>,
}

fn plain(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|_| Entry {
            weight: 1,
            name: None,
        })
        .collect()
}

fn weighted(weights: &[u32]) -> Vec<Entry> {
    weights
        .iter()
        .map(|&weight| Entry { weight, name: None })
        .collect()
}

/// What a case runs: backends, their entries, the spec, and ejection settings.
struct Case<'a> {
    label: String,
    backends: &'a [Server],
    entries: &'a [Entry],
    spec: PlacementSpec,
    eject: bool,
}

fn spec(function: HashFunction, distribution: Distribution, tag: Option<[u8; 2]>) -> PlacementSpec {
    PlacementSpec {
        mode: HashMode::Twemproxy,
        function,
        distribution,
        tag,
    }
}

impl Case<'_> {
    fn identities(&self) -> Vec<String> {
        self.backends
            .iter()
            .zip(self.entries)
            .map(|(b, e)| twemproxy_identity(&b.addr.entry(), e.name.as_deref()))
            .collect()
    }

    /// The placement with the backends `dead` marks as not live.
    fn placement(&self, dead: Option<usize>) -> Placement {
        let ids = self.identities();
        let nodes: Vec<NodeSpec<'_>> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| NodeSpec {
                identity: ids[i].as_bytes(),
                weight: e.weight,
                live: Some(i) != dead,
            })
            .collect();
        Placement::build(&self.spec, &nodes)
    }

    fn yaml(&self) -> String {
        let dist = match self.spec.distribution {
            Distribution::Ketama => "ketama",
            Distribution::Modula => "modula",
            Distribution::Random => "random",
        };
        let mut y = format!(
            "  hash: {}\n  distribution: {dist}\n  redis: true\n  preconnect: false\n  timeout: 5000\n",
            self.spec.function.name()
        );
        if let Some([a, b]) = self.spec.tag {
            y += &format!("  hash_tag: \"{}{}\"\n", a as char, b as char);
        }
        y += if self.eject {
            "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n"
        } else {
            "  auto_eject_hosts: false\n"
        };
        y += "  servers:\n";
        for (b, e) in self.backends.iter().zip(self.entries) {
            let name = e.name.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
            y += &format!("   - {}:{}{name}\n", b.addr.entry(), e.weight);
        }
        y
    }

    fn start(&self, dir: &Path) -> Server {
        let tag: String = self
            .label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        start_nutcracker(dir, &tag, &self.yaml())
    }
}

/// Writes `keys` through `proxy`, finds where each landed (server `down` is not
/// asked) and counts the keys the placement puts elsewhere; flushes after.
fn compare(
    proxy: &Server,
    case: &Case<'_>,
    label: &str,
    keys: &[Vec<u8>],
    down: Option<usize>,
) -> usize {
    write_through(proxy, keys, label);
    let found = owners(case.backends, down);
    flush(case.backends, down);
    mismatches(label, &case.placement(down), keys, &found)
}

/// Runs one case without ejection through a fresh nutcracker: (label, mismatches).
fn check(
    dir: &Path,
    label: String,
    (backends, entries): (&[Server], &[Entry]),
    spec: PlacementSpec,
    keys: &[Vec<u8>],
) -> (String, usize) {
    let case = Case {
        label,
        backends,
        entries,
        spec,
        eject: false,
    };
    let proxy = case.start(dir);
    let n = compare(&proxy, &case, &case.label, keys, None);
    (case.label, n)
}

/// Runs every case and asserts none had a mismatch (all cases run before failing).
fn assert_all_zero(results: Vec<(String, usize)>) {
    let bad: Vec<_> = results.iter().filter(|(_, n)| *n > 0).collect();
    assert!(bad.is_empty(), "placement differs from nutcracker: {bad:?}");
}

const BRACES: Option<[u8; 2]> = Some(*b"{}");

#[test]
fn three_servers_fnv1a_64_ketama_100k_keys() {
    let dir = TempDir::new();
    let backends = start_redis(dir.path(), 3, false);
    let entries = plain(3);
    assert_all_zero(vec![check(
        dir.path(),
        "3 servers fnv1a_64 ketama".into(),
        (&backends, &entries),
        spec(HashFunction::Fnv1a64, Distribution::Ketama, BRACES),
        &keys(1, 100_000),
    )]);
}

fn every_function(distribution: Distribution, seed: u64) {
    let dir = TempDir::new();
    let backends = start_redis(dir.path(), 5, false);
    let entries = weighted(&[1, 2, 3, 1, 5]);
    let mut results = Vec::new();
    for (i, function) in HashFunction::NUTCRACKER.into_iter().enumerate() {
        results.push(check(
            dir.path(),
            format!("5 weighted servers {} {distribution:?}", function.name()),
            (&backends, &entries),
            spec(function, distribution, BRACES),
            &keys(seed + i as u64, 2500),
        ));
    }
    assert_all_zero(results);
}

#[test]
fn every_hash_function_ketama() {
    every_function(Distribution::Ketama, 100);
}

#[test]
fn every_hash_function_modula() {
    every_function(Distribution::Modula, 200);
}

#[test]
fn pool_sizes_up_to_100_servers() {
    let dir = TempDir::new();
    let backends = start_redis(dir.path(), 100, false);
    let entries = plain(100);
    let mut results = Vec::new();
    let sizes = [
        (1, HashFunction::Fnv1a64),
        (2, HashFunction::Fnv1a64),
        (5, HashFunction::Md5),
        (25, HashFunction::Fnv1a64),
        (47, HashFunction::Murmur),
        (100, HashFunction::Fnv1a64),
    ];
    for (n, function) in sizes {
        results.push(check(
            dir.path(),
            format!("{n} servers {} ketama", function.name()),
            (&backends[..n], &entries[..n]),
            spec(function, Distribution::Ketama, BRACES),
            &keys(300 + n as u64, 3000),
        ));
    }
    assert_all_zero(results);
}

#[test]
fn named_servers_mixed_weights_and_tags() {
    let dir = TempDir::new();
    let backends = start_redis(dir.path(), 8, false);
    // Names of every length class, including ones nutcracker cuts at 272 bytes
    // when it formats "name-j" (270 bytes: cut from j = 10 on; 300: always).
    let (long, longer) = ("L".repeat(270), "N".repeat(300));
    let names = [
        Some("alpha"),
        Some("b"),
        None,
        Some("redis-cache-03"),
        Some(&long),
        None,
        Some("m1"),
        Some(&longer),
    ];
    let entries: Vec<Entry> = names
        .iter()
        .zip([1, 3, 2, 1, 4, 2, 1, 2])
        .map(|(n, weight)| Entry {
            weight,
            name: n.map(|n| n.to_string()),
        })
        .collect();
    let runs = [
        (HashFunction::Fnv1a64, Distribution::Ketama, BRACES),
        (HashFunction::Murmur, Distribution::Modula, BRACES),
        (HashFunction::Md5, Distribution::Ketama, Some(*b"[]")),
        (HashFunction::Crc32a, Distribution::Modula, Some(*b"$$")),
        (HashFunction::OneAtATime, Distribution::Ketama, None),
    ];
    let mut results = Vec::new();
    for (i, (function, distribution, tag)) in runs.into_iter().enumerate() {
        let label = format!(
            "8 named/mixed {} {distribution:?} tag {:?}",
            function.name(),
            tag.map(|t| String::from_utf8_lossy(&t).into_owned())
        );
        results.push(check(
            dir.path(),
            label,
            (&backends, &entries),
            spec(function, distribution, tag),
            &keys(400 + i as u64, 3000),
        ));
    }
    assert_all_zero(results);
}

#[test]
fn unix_socket_servers() {
    let dir = TempDir::new();
    let backends = start_redis(dir.path(), 3, true);
    let entries = weighted(&[1, 2, 1]);
    let mut results = Vec::new();
    for (i, (function, distribution)) in [
        (HashFunction::Fnv1a64, Distribution::Ketama),
        (HashFunction::Jenkins, Distribution::Modula),
    ]
    .into_iter()
    .enumerate()
    {
        results.push(check(
            dir.path(),
            format!("3 unix-socket servers {} {distribution:?}", function.name()),
            (&backends, &entries),
            spec(function, distribution, BRACES),
            &keys(500 + i as u64, 3000),
        ));
    }
    assert_all_zero(results);
}

/// Sends GETs for keys the victim owned until nutcracker answers one without an
/// error (it has ejected the victim); returns how many errors came first.
fn eject(proxy: &Server, before: &Placement, victim: usize, label: &str) -> usize {
    let mut client = proxy.addr.connect().expect("connect to nutcracker");
    let keys = keys(999, 5000);
    let victims = keys
        .iter()
        .filter(|k| !k.is_empty() && before.node_for_key(k) == Some(victim));
    let mut errors = 0;
    for key in victims.take(200) {
        match client.call(&[b"GET", key]).expect("GET through nutcracker") {
            Reply::Error(_) => errors += 1,
            _ => return errors,
        }
    }
    panic!("{label}: nutcracker did not eject the killed server after {errors} errors");
}

#[test]
fn ejected_server_keys_go_where_placement_says() {
    let dir = TempDir::new();
    let backends = start_redis(dir.path(), 6, false);
    let entries = weighted(&[1, 2, 1, 3, 1, 2]);
    let victim = 3;
    let mut results = Vec::new();
    for (i, (function, distribution)) in [
        (HashFunction::Fnv1a64, Distribution::Ketama),
        (HashFunction::Murmur, Distribution::Modula),
    ]
    .into_iter()
    .enumerate()
    {
        if i == 1 {
            backends[victim].kill();
        }
        let case = Case {
            label: format!("6 servers eject {} {distribution:?}", function.name()),
            backends: &backends,
            entries: &entries,
            spec: spec(function, distribution, BRACES),
            eject: true,
        };
        let proxy = case.start(dir.path());
        if i == 0 {
            let label = format!("{} (all live)", case.label);
            let n = compare(&proxy, &case, &label, &keys(600, 3000), None);
            results.push((label, n));
            backends[victim].kill();
        }
        let errors = eject(&proxy, &case.placement(None), victim, &case.label);
        eprintln!("{}: ejected after {errors} error replies", case.label);
        let label = format!("{} (server {victim} ejected)", case.label);
        let n = compare(
            &proxy,
            &case,
            &label,
            &keys(700 + i as u64, 3000),
            Some(victim),
        );
        results.push((label, n));
    }
    assert_all_zero(results);
}
