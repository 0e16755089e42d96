//! Tests of [`super`]: the nutcracker file format.

use super::*;

const EXAMPLE: &str = include_str!("../../conf/nutcracker.yml");

fn pool_text(body: &str) -> String {
    format!(
        "p:\n  listen: 127.0.0.1:22121\n  redis: true\n{body}  servers:\n   - 127.0.0.1:7001:1\n"
    )
}

fn problems(text: &str) -> Vec<(Option<usize>, String)> {
    parse(text)
        .expect_err("expected problems")
        .into_iter()
        .map(|p| (p.line, p.message))
        .collect()
}

fn one(text: &str, line: usize, message: &str) {
    assert_eq!(
        problems(text),
        vec![(Some(line), message.to_string())],
        "{text}"
    );
}

fn notes(text: &str) -> Vec<(Option<usize>, String)> {
    let n = parse(text).unwrap_or_else(|p| panic!("{p:?}"));
    n.notes.into_iter().map(|p| (p.line, p.message)).collect()
}

#[test]
fn detects_the_format() {
    assert!(looks_like_nutcracker(EXAMPLE));
    assert!(looks_like_nutcracker(
        "a:\n  listen: x\nb:\n  servers: []\n"
    ));
    assert!(!looks_like_nutcracker(include_str!(
        "../../conf/ringproxy.yaml"
    )));
    assert!(!looks_like_nutcracker(include_str!(
        "../../conf/twemproxy-compat.yaml"
    )));
    assert!(!looks_like_nutcracker("listen: servers\nnodes: []\n"));
    assert!(!looks_like_nutcracker("[1, 2]"));
    assert!(!looks_like_nutcracker(""));
}

#[test]
fn the_example_parses_with_every_mapped_setting() {
    let n = parse(EXAMPLE).unwrap();
    let [s, c] = &n.config.pools[..] else {
        panic!("two pools expected")
    };
    assert_eq!((s.name.as_str(), c.name.as_str()), ("sessions", "cache"));
    assert_eq!(
        (s.mode, s.function),
        (
            HashMode::Twemproxy,
            HashFunction::from_name("fnv1a_64").unwrap()
        )
    );
    assert_eq!((s.tag, c.tag), (Some(*b"{}"), None));
    assert_eq!(s.request_timeout, Duration::from_millis(400));
    assert_eq!(s.connect_timeout, Duration::from_millis(400));
    let ids: Vec<&str> = s.nodes.iter().map(|n| n.identity.as_str()).collect();
    assert_eq!(ids, ["sessions-1", "sessions-2", "sessions-3"]);
    assert_eq!(
        (c.nodes[0].identity.as_str(), c.nodes[2].weight),
        ("127.0.0.1:7004", 2)
    );
    assert_eq!(
        (c.preconnect, c.max_clients, s.max_clients),
        (true, 4096, DEFAULT_MAX_CLIENTS)
    );
    let h = &c.health;
    assert_eq!((h.eject, h.failures, h.max_ejected_percent), (true, 1, 100));
    assert_eq!(h.retry_timeout, Some(Duration::from_secs(2)));
    assert_eq!((s.health.eject, s.health.retry_timeout), (false, None));
    assert_eq!(
        n.config.admin, None,
        "a nutcracker file binds no admin port"
    );
    assert_eq!(n.notes.len(), 1);
    assert_eq!(
        n.notes[0].message,
        "cache.backlog: is not used (ringproxy's listen backlog is fixed)"
    );
    assert_eq!(n.notes[0].line, Some(25));
}

#[test]
fn nutcracker_defaults() {
    let p = parse(&pool_text("  timeout: 100\n  auto_eject_hosts: true\n"))
        .unwrap()
        .config
        .pools
        .remove(0);
    assert_eq!(
        (p.tag, p.distribution, p.connections),
        (None, Distribution::Ketama, 1)
    );
    assert_eq!(
        (p.health.failures, p.health.retry_timeout),
        (NC_FAILURE_LIMIT, Some(NC_RETRY_TIMEOUT))
    );
    assert_eq!(
        (p.auth.clone(), p.backend_db, p.preconnect),
        (None, 0, false)
    );
}

#[test]
fn redis_auth_is_also_the_client_password() {
    let p = parse(&pool_text(
        "  timeout: 100\n  redis_auth: s3cret\n  redis_db: 3\n",
    ))
    .unwrap()
    .config
    .pools
    .remove(0);
    assert_eq!(
        (
            p.auth.as_deref(),
            p.backend_password.as_deref(),
            p.backend_db
        ),
        (Some("s3cret"), Some("s3cret"), 3)
    );
}

#[test]
fn memcached_pools_are_refused() {
    let text = "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:7001:1\n";
    one(
        text,
        1,
        "p: no `redis: true`, so nutcracker treats it as memcached; ringproxy speaks only Redis",
    );
    let text = pool_text("").replace("redis: true", "redis: false");
    let got = problems(&text);
    assert_eq!(
        got[0],
        (
            Some(3),
            "p.redis: false makes this a memcached pool; ringproxy speaks only Redis".into()
        )
    );
}

#[test]
fn unknown_keys_are_problems_with_their_line() {
    let text = pool_text("  timeout: 100\n  sentinels: []\n  dyn_seeds: 1\n");
    let got = problems(&text);
    assert_eq!(
        got[0],
        (
            Some(5),
            "p.sentinels: is not a nutcracker 0.5.0 pool setting".into()
        )
    );
    assert_eq!(
        got[1],
        (
            Some(6),
            "p.dyn_seeds: is not a nutcracker 0.5.0 pool setting".into()
        )
    );
}

#[test]
fn server_entries() {
    let text = "p:\n  listen: /tmp/p.sock 0666\n  redis: true\n  timeout: 5\n  servers:\n   - /tmp/r.sock:2 sock\n   - /tmp/s.sock:1\n   - 10.0.0.1:11211:1\n";
    let n = parse(text).unwrap();
    let p = &n.config.pools[0];
    assert_eq!(p.listen, Listen::Unix("/tmp/p.sock".into()));
    let got: Vec<(&str, &str, u32)> = p
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.identity.as_str(), n.weight))
        .collect();
    assert_eq!(
        got,
        [
            ("sock", "sock", 2),
            ("unix:/tmp/s.sock", "/tmp/s.sock:", 1),
            ("10.0.0.1:11211", "10.0.0.1", 1)
        ]
    );
    assert_eq!(p.nodes[1].addr, NodeAddr::Unix("/tmp/s.sock".into()));
    // nutcracker's permission suffix is applied to the socket file.
    assert_eq!(p.listen_mode, Some(0o666));
    assert_eq!(notes(text), vec![]);
}

#[test]
fn bad_server_entries() {
    let bad =
        |entry: &str| problems(&pool_text("  timeout: 1\n").replace("127.0.0.1:7001:1", entry));
    let shape = "is not host:port:weight [name] or /path/to.sock:weight [name]";
    assert_eq!(
        bad("127.0.0.1:7001"),
        vec![(Some(6), format!("p.servers[0]: \"127.0.0.1:7001\" {shape}"))]
    );
    assert_eq!(
        bad("127.0.0.1:7001:x"),
        vec![(
            Some(6),
            format!("p.servers[0]: \"127.0.0.1:7001:x\" {shape}")
        )]
    );
    assert_eq!(
        bad("127.0.0.1:7001:0"),
        vec![(
            Some(6),
            "p.servers[0]: weight 0 is out of range 1..=1000000".into()
        )]
    );
    let two_words = "p.servers[0]: \"127.0.0.1:7001:1 a b\": a server name is one word";
    assert_eq!(
        bad("127.0.0.1:7001:1 a b"),
        vec![(Some(6), two_words.into())]
    );
    let port = "p.servers[0]: \"h:0\": port \"0\" is not a number in 1..=65535";
    assert_eq!(bad("h:0:1"), vec![(Some(6), port.into())]);
}

#[test]
fn duplicate_servers_and_listens() {
    let text = "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  timeout: 1\n  servers:\n   - 10.0.0.1:1:1 a\n   - 10.0.0.2:1:1 a\n   - 10.0.0.1:1:1 c\nq:\n  listen: 127.0.0.1:22121\n  redis: true\n  timeout: 1\n  servers:\n   - 10.0.0.1:1:1\n";
    let got = problems(text);
    let want = [
        (
            Some(7),
            "p.servers[1]: name \"a\" is already used by servers[0]",
        ),
        (
            Some(8),
            "p.servers[2]: address \"10.0.0.1:1\" is already used by servers[0]",
        ),
        (Some(10), "q.listen: is also the listen address of pool p"),
    ];
    assert_eq!(got, want.map(|(l, m)| (l, m.to_string())));
}

#[test]
fn timeouts_and_limits() {
    let no_timeout = notes(&pool_text(""));
    assert_eq!(
        no_timeout,
        vec![(
            Some(1),
            "p: no timeout: nutcracker waits for ever, ringproxy 2s".into()
        )]
    );
    let zero = notes(&pool_text("  timeout: 0\n"));
    assert_eq!(
        zero,
        vec![(
            Some(4),
            "p.timeout: 0 means no timeout in nutcracker; ringproxy uses 2s".into()
        )]
    );
    one(
        &pool_text("  timeout: -1\n"),
        4,
        "p.timeout: -1 must be 0 or more (milliseconds)",
    );
    one(
        &pool_text("  timeout: 7200000\n"),
        4,
        "p.timeout: 2h is more than the maximum 1h",
    );
    let long = parse(&pool_text("  timeout: 120000\n")).unwrap();
    assert_eq!(
        long.config.pools[0].connect_timeout,
        Duration::from_secs(60)
    );
    one(
        &pool_text("  timeout: 1\n  server_connections: 100\n"),
        5,
        "p.server_connections: 100 is out of range 1..=64",
    );
    one(
        &pool_text("  timeout: 1\n  redis_db: -1\n"),
        5,
        "p.redis_db: -1 is out of range 0..=4294967295",
    );
    let zero = notes(&pool_text("  timeout: 1\n  client_connections: 0\n"));
    assert_eq!(
        zero[0].1,
        "p.client_connections: 0 (unlimited in nutcracker) becomes ringproxy's default 10000"
    );
}

#[test]
fn ejection_settings() {
    let n = notes(&pool_text(
        "  timeout: 1\n  server_retry_timeout: 100\n  tcpkeepalive: true\n",
    ));
    let want = [
        (
            Some(5),
            "p.server_retry_timeout: has no effect without auto_eject_hosts: true",
        ),
        (Some(6), "p.tcpkeepalive: is not used by ringproxy"),
    ];
    assert_eq!(n, want.map(|(l, m)| (l, m.to_string())));
    let body = "  timeout: 1\n  auto_eject_hosts: true\n  server_failure_limit: 0\n  server_retry_timeout: 0\n";
    let got = problems(&pool_text(body));
    assert_eq!(
        got[0],
        (
            Some(6),
            "p.server_failure_limit: 0 is out of range 1..=1000".into()
        )
    );
    assert_eq!(
        got[1],
        (
            Some(7),
            "p.server_retry_timeout: must be more than 0".into()
        )
    );
}

#[test]
fn placement_problems() {
    one(
        &pool_text("  timeout: 1\n  hash: sha1\n"),
        5,
        &format!(
            "p.hash: \"sha1\" is not a known hash function; use one of {}",
            HASH_NAMES.join(", ")
        ),
    );
    one(
        &pool_text("  timeout: 1\n  distribution: rr\n"),
        5,
        "p.distribution: \"rr\" is not one of ketama, modula, random",
    );
    one(
        &pool_text("  timeout: 1\n  hash_tag: \"{\"\n"),
        5,
        "p.hash_tag: \"{\" must be two ASCII characters (like \"{}\") or \"\" for none",
    );
    one(
        "p:\n  redis: true\n  timeout: 1\n  servers:\n   - a:1:1\n",
        1,
        "p: has no listen address",
    );
    let got = problems("p:\n  listen: 127.0.0.1:1\n  redis: true\n  timeout: 1\n  servers: []\n");
    assert_eq!(
        got,
        vec![(Some(5), "p.servers: at least one server is required".into())]
    );
}

#[test]
fn several_problems_are_all_reported() {
    let text = pool_text("  hash: nope\n  server_connections: 0\n  hash_tag: x\n");
    assert_eq!(problems(&text).len(), 3);
}
