//! Tests of [`super::validate`]: each problem with its message and line.

use crate::config::*;
use crate::route::{Distribution, HashFunction, HashMode};
use std::time::Duration;

/// Lines 1-7: a valid file that tests extend or edit.
const BASE: &str = "listen: 127.0.0.1:6380
nodes:
  - name: a
    addr: 127.0.0.1:7001
  - name: b
    addr: 127.0.0.1:7002
    weight: 2
";

fn problems(text: &str) -> Vec<(Option<usize>, String)> {
    let err = parse(text).expect_err("expected problems");
    err.into_iter().map(|p| (p.line, p.message)).collect()
}

/// Asserts exactly one problem, at `line`, with `message`.
fn one(text: &str, line: usize, message: &str) {
    assert_eq!(
        problems(text),
        vec![(Some(line), message.to_string())],
        "{text}"
    );
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|p| panic!("{p:?}"))
}

#[test]
fn the_base_file_is_valid_and_uses_defaults() {
    let c = ok(BASE);
    let p = &c.pools[0];
    assert_eq!(p.listen, Listen::Tcp("127.0.0.1:6380".into()));
    assert_eq!(
        (p.nodes[0].name.as_str(), p.nodes[0].identity.as_str()),
        ("a", "a")
    );
    assert_eq!(
        (p.nodes[1].weight, p.tag, p.mode),
        (2, Some(*b"{}"), HashMode::Ringproxy)
    );
    assert_eq!(
        (p.function, p.distribution),
        (HashFunction::Ringproxy, Distribution::Ketama)
    );
    assert_eq!(p.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    assert_eq!(c.admin.as_deref(), Some(DEFAULT_ADMIN));
}

#[test]
fn listen_problems() {
    let bad = BASE.replace("127.0.0.1:6380", "127.0.0.1:99999");
    one(
        &bad,
        1,
        "listen: \"127.0.0.1:99999\": port \"99999\" is not a number in 1..=65535",
    );
    let bad = BASE.replace("127.0.0.1:6380", "unix:run/p.sock");
    one(
        &bad,
        1,
        "listen: \"unix:run/p.sock\": a unix socket path must be absolute (unix:/path/to.sock)",
    );
    let unix = BASE.replace("127.0.0.1:6380", "unix:/run/p.sock");
    assert_eq!(
        ok(&unix).pools[0].listen,
        Listen::Unix("/run/p.sock".into())
    );
}

#[test]
fn admin_problems() {
    one(
        &with("admin: nowhere\n"),
        8,
        "admin: \"nowhere\" has no port; write host:port",
    );
    one(
        &with("admin: 127.0.0.1:6380\n"),
        8,
        "admin: \"127.0.0.1:6380\" is also the client listen address",
    );
    assert_eq!(ok(&with("admin: null\n")).admin, None);
}

#[test]
fn node_problems() {
    one(
        "listen: 127.0.0.1:6380\nnodes: []\n",
        2,
        "nodes: at least one node is required",
    );
    one(
        &BASE.replace("127.0.0.1:7002", "127.0.0.1"),
        6,
        "nodes[1].addr: \"127.0.0.1\" has no port; write host:port",
    );
    one(
        &BASE.replace("name: b", "name: a"),
        5,
        "nodes[1].name: name \"a\" is already used by nodes[0]",
    );
    one(
        &BASE.replace("7002", "7001"),
        6,
        "nodes[1].addr: \"127.0.0.1:7001\" is already used by nodes[0]",
    );
    one(
        &BASE.replace("weight: 2", "weight: 0"),
        7,
        "nodes[1].weight: 0 is out of range 1..=100",
    );
    one(
        &BASE.replace("weight: 2", "weight: 101"),
        7,
        "nodes[1].weight: 101 is out of range 1..=100",
    );
    one(
        &BASE.replace("name: b", "name: ''"),
        5,
        "nodes[1].name: must not be empty; remove it to use the addr",
    );
}

#[test]
fn names_default_to_the_addr() {
    let c = ok(
        "listen: 127.0.0.1:6380\nnodes:\n  - addr: 127.0.0.1:7001\n  - addr: unix:/run/r.sock\n",
    );
    let n = &c.pools[0].nodes;
    assert_eq!(
        (n[0].name.as_str(), n[0].identity.as_str()),
        ("127.0.0.1:7001", "127.0.0.1:7001")
    );
    assert_eq!(
        (n[1].addr.clone(), n[1].name.as_str()),
        (NodeAddr::Unix("/run/r.sock".into()), "unix:/run/r.sock")
    );
}

#[test]
fn twemproxy_mode_uses_the_nutcracker_identity_rule() {
    let text = "listen: 127.0.0.1:6380\nnodes:\n  - addr: 10.0.0.1:11211\n  - addr: 10.0.0.2:6379\n  - addr: 10.0.0.3:1\n    name: s3\n    weight: 100000\nhash:\n  mode: twemproxy\n  distribution: modula\n";
    let p = ok(text).pools.remove(0);
    let ids: Vec<&str> = p.nodes.iter().map(|n| n.identity.as_str()).collect();
    assert_eq!(ids, ["10.0.0.1", "10.0.0.2:6379", "s3"]);
    assert_eq!(
        (p.function, p.distribution),
        (
            HashFunction::from_name("fnv1a_64").unwrap(),
            Distribution::Modula
        )
    );
    let clash = "listen: 127.0.0.1:6380\nnodes:\n  - addr: 10.0.0.1:11211\n  - addr: 10.0.0.2:1\n    name: 10.0.0.1\nhash:\n  mode: twemproxy\n";
    one(
        clash,
        4,
        "nodes[1]: ring identity \"10.0.0.1\" (nutcracker rule) is the same as nodes[0]'s",
    );
}

#[test]
fn hash_problems() {
    one(
        &with("hash:\n  mode: fast\n"),
        9,
        "hash.mode: \"fast\" is not one of ringproxy, twemproxy",
    );
    let msg = "hash.function: is only used with hash.mode: twemproxy; remove it or set the mode";
    one(&with("hash:\n  function: fnv1a_64\n"), 9, msg);
    let msg = format!(
        "hash.function: \"sha1\" is not a known hash function; use one of {}",
        HASH_NAMES.join(", ")
    );
    one(
        &with("hash:\n  mode: twemproxy\n  function: sha1\n"),
        10,
        &msg,
    );
    let msg =
        "hash.distribution: modula needs hash.mode: twemproxy (ringproxy mode is ketama only)";
    one(&with("hash:\n  distribution: modula\n"), 9, msg);
    one(
        &with("hash:\n  distribution: rr\n"),
        9,
        "hash.distribution: \"rr\" is not one of ketama, modula, random",
    );
    let msg = "hash.tag: \"{\" must be two ASCII characters (like \"{}\") or \"\" for none";
    one(&with("hash:\n  tag: \"{\"\n"), 9, msg);
    assert_eq!(ok(&with("hash:\n  tag: \"\"\n")).pools[0].tag, None);
}

#[test]
fn pool_and_timeout_problems() {
    one(
        &with("pool:\n  connections: 0\n"),
        9,
        "pool.connections: 0 is out of range 1..=64",
    );
    one(
        &with("pool:\n  connections: 65\n"),
        9,
        "pool.connections: 65 is out of range 1..=64",
    );
    one(
        &with("timeouts:\n  connect: 0ms\n"),
        9,
        "timeouts.connect: must be more than 0",
    );
    one(
        &with("timeouts:\n  connect: 2m\n"),
        9,
        "timeouts.connect: 2m is more than the maximum 1m",
    );
    one(
        &with("timeouts:\n  request: 2h\n"),
        9,
        "timeouts.request: 2h is more than the maximum 1h",
    );
}

#[test]
fn durations_are_read_with_units() {
    let c = ok(&with(
        "timeouts:\n  connect: 300ms\n  request: 1m\nhealth:\n  interval: 2s\n",
    ));
    let p = &c.pools[0];
    assert_eq!(p.connect_timeout, Duration::from_millis(300));
    assert_eq!(p.request_timeout, Duration::from_secs(60));
    assert_eq!(p.health.interval, Duration::from_secs(2));
    let bad = problems(&with("timeouts:\n  connect: soon\n"));
    assert_eq!(
        bad,
        vec![(
            Some(9),
            "timeouts: invalid duration \"soon\": write it like 300ms, 2s or 1m".into()
        )]
    );
}

#[test]
fn limit_problems() {
    one(
        &with("limits:\n  max_clients: 0\n"),
        9,
        "limits.max_clients: 0 is out of range 1..=1000000",
    );
    one(
        &with("limits:\n  max_pipeline: 0\n"),
        9,
        "limits.max_pipeline: 0 is out of range 1..=1000000",
    );
    one(
        &with("limits:\n  max_dedicated: 0\n"),
        9,
        "limits.max_dedicated: 0 is out of range 1..=1000000",
    );
    one(
        &with("limits:\n  max_request_size: 512\n"),
        9,
        "limits.max_request_size: 512 is out of range 1KiB..=4GiB",
    );
    assert_eq!(
        ok(&with("limits:\n  max_request_size: 512KiB\n")).pools[0].max_request_size,
        512 << 10
    );
    assert_eq!(
        ok(&with("limits:\n  max_request_size: 2048\n")).pools[0].max_request_size,
        2048
    );
    let bad = problems(&with("limits:\n  max_request_size: 64MB\n"));
    let msg = "limits: invalid size \"64MB\": write bytes, or like 512KiB or 64MiB";
    assert_eq!(bad, vec![(Some(9), msg.into())]);
}

#[test]
fn health_problems() {
    one(
        &with("health:\n  failures: 0\n"),
        9,
        "health.failures: 0 is out of range 1..=1000",
    );
    one(
        &with("health:\n  successes: 0\n"),
        9,
        "health.successes: 0 is out of range 1..=1000",
    );
    one(
        &with("health:\n  interval: 5ms\n"),
        9,
        "health.interval: 5ms is less than the minimum 10ms",
    );
    one(
        &with("health:\n  timeout: 0s\n"),
        9,
        "health.timeout: must be more than 0",
    );
    one(
        &with("health:\n  max_ejected_percent: 101\n"),
        9,
        "health.max_ejected_percent: 101 is out of range 0..=100",
    );
    one(
        &with("health:\n  eject: true\n  retry_timeout: 0ms\n"),
        10,
        "health.retry_timeout: must be more than 0",
    );
}

#[test]
fn retry_timeout_without_eject_is_a_note() {
    let (c, notes) = check(&with("health:\n  retry_timeout: 5s\n")).unwrap();
    assert_eq!(
        c.pools[0].health.retry_timeout,
        Some(Duration::from_secs(5))
    );
    let note = Problem {
        line: Some(9),
        message: "health.retry_timeout: has no effect without health.eject: true".into(),
    };
    assert_eq!(notes, vec![note]);
}

#[test]
fn process_problems() {
    one(
        &with("workers: 2000\n"),
        8,
        "workers: 2000 is out of range 0..=1024",
    );
    one(
        &with("log:\n  format: xml\n"),
        9,
        "log.format: \"xml\" is not one of text, json",
    );
    let msg = "auth: must not be empty; remove it (or write null) for no password";
    one(&with("auth: \"\"\n"), 8, msg);
    let msg = "backend.password: must not be empty; remove it (or write null) for no password";
    one(&with("backend:\n  password: \"\"\n"), 9, msg);
    assert!(ok(&with("log:\n  format: json\nbackend:\n  db: 15\n")).log_json);
}

#[test]
fn command_problems() {
    let cmd = |body: &str| with(&format!("commands:\n  - name: json.get\n{body}"));
    let c = ok(&cmd("    last_key: -1\n"));
    assert_eq!(c.pools[0].commands[0].name, "JSON.GET");
    one(
        &with("commands:\n  - name: ''\n"),
        9,
        "commands[0].name: \"\" is not a command name (non-empty, no spaces)",
    );
    one(
        &cmd("    arity: 0\n"),
        10,
        "commands[0].arity: 0 is not valid: N = exactly N arguments with the name, -N = at least N",
    );
    one(
        &cmd("    first_key: 0\n    last_key: -1\n"),
        10,
        "commands[0].first_key: 0 must be 1 or more",
    );
    one(
        &cmd("    first_key: 3\n    last_key: 2\n"),
        11,
        "commands[0].last_key: 2 must be >= first_key or negative (from the end)",
    );
    one(
        &cmd("    step: 0\n"),
        10,
        "commands[0].step: 0 must be 1 or more",
    );
    let dup = with("commands:\n  - name: json.get\n  - name: JSON.GET\n");
    one(
        &dup,
        10,
        "commands[1].name: \"JSON.GET\" is already declared by commands[0]",
    );
}

#[test]
fn three_problems_are_all_reported_in_line_order() {
    let text = BASE
        .replace("weight: 2", "weight: 0")
        .replace("127.0.0.1:6380", "nohost")
        + "pool:\n  connections: 100\n";
    let got = problems(&text);
    assert_eq!(got.len(), 3, "{got:?}");
    let lines: Vec<Option<usize>> = got.iter().map(|p| p.0).collect();
    assert_eq!(lines, [Some(1), Some(7), Some(9)]);
}

#[test]
fn unknown_fields_are_reported_with_their_line() {
    let top = problems(&with("listen_port: 1\n"));
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].0, Some(8));
    assert!(
        top[0].1.starts_with(
            "listen_port: unknown field, expected one of listen, listen_mode, admin, admin_token_file, workers, nodes,"
        ),
        "{}",
        top[0].1
    );
    let nested = problems(&BASE.replace("weight: 2", "wieght: 2"));
    assert_eq!(
        nested,
        [(
            Some(7),
            "nodes[1].wieght: unknown field, expected one of name, addr, replicas, sentinel, weight".to_string()
        )]
    );
}

/// `--check` lists every unknown field (any section) with the other problems, in one run.
#[test]
fn unknown_fields_and_bad_values_are_all_reported_together() {
    let text = BASE.replace("weight: 2", "weight: 0").replace(
        "    addr: 127.0.0.1:7001",
        "    adr: x\n    addr: 127.0.0.1:7001",
    ) + "health:\n  intervall: 1s\n";
    let got = problems(&text);
    assert_eq!(
        got,
        [
            (
                Some(4),
                "nodes[0].adr: unknown field, expected one of name, addr, replicas, sentinel, weight".into()
            ),
            (Some(8), "nodes[1].weight: 0 is out of range 1..=100".into()),
            (
                Some(10),
                "health.intervall: unknown field, expected one of interval, timeout, failures, \
                 successes, eject, max_ejected_percent, retry_timeout"
                    .into()
            ),
        ],
        "{text}"
    );
}

/// Unknown fields in every section at once, with a type error (serde still stops at
/// its first schema error: the missing `listen` is reported once the weight is fixed).
#[test]
fn unknown_fields_everywhere_with_schema_errors() {
    let text = "listen_on: 1
nodes:
  - addr: 127.0.0.1:7001
    weight: heavy
hash: {mode: ringproxy, hashh: x}
pool:
  conns: 1
timeouts:
  connnect: 1s
limits:
  max_client: 1
backend:
  pass: x
commands:
  - name: X.GET
    keys: 1
log:
  fromat: json
";
    let got = problems(text);
    let lines: Vec<Option<usize>> = got.iter().map(|p| p.0).collect();
    let messages: Vec<&str> = got.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(
        lines,
        [
            Some(1),
            Some(4),
            Some(5),
            Some(7),
            Some(9),
            Some(11),
            Some(13),
            Some(16),
            Some(18)
        ],
        "{messages:#?}"
    );
    assert!(
        messages[1].starts_with("nodes[0].weight: invalid type: string \"heavy\""),
        "{messages:#?}"
    );
    assert!(
        messages[2].starts_with("hash.hashh: unknown field"),
        "{messages:#?}"
    );
    let fixed = problems(&text.replace("heavy", "1"));
    assert_eq!(fixed.len(), 9, "{fixed:?}");
    assert_eq!(fixed[8], (None, "missing field `listen`".to_string()));
}

/// `allow_admin`: default false, a bool, and a misspelling is an unknown field.
#[test]
fn allow_admin_is_a_checked_bool() {
    assert!(!ok(BASE).pools[0].allow_admin);
    assert!(ok(&with("allow_admin: true\n")).pools[0].allow_admin);
    let bad = problems(&with("allow_admin: sometimes\n"));
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].0, Some(8), "{bad:?}");
    assert!(bad[0].1.starts_with("allow_admin: invalid type"), "{bad:?}");
    let typo = problems(&with("allow_admn: true\n"));
    assert!(
        typo.len() == 1 && typo[0].1.starts_with("allow_admn: unknown field"),
        "{typo:?}"
    );
}

#[test]
fn workers_default_to_one_and_zero_means_one_per_core() {
    assert_eq!(ok(BASE).workers, DEFAULT_WORKERS);
    assert_eq!(DEFAULT_WORKERS, 1);
    assert_eq!(ok(&with("workers: 0\n")).workers, 0);
    assert_eq!(ok(&with("workers: 3\n")).workers, 3);
}
