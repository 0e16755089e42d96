//! TLS (issue "Secure by default where it matters"): real `redis-server` nodes and
//! a real `ringproxy`, certificates made by the test (rcgen) in a temp dir.
//!
//! - client side: redis-cli `--tls`, redis-py `ssl=True`, redis-rs over rustls and a
//!   rustls client
//!   through a TLS listener; mutual TLS accepted and refused;
//! - bad handshakes (plain text on a TLS port, TLS on a plain port, a half
//!   handshake, garbage) are closed without hurting other clients;
//! - rotation: a new pair is used for new handshakes under load, with no failed
//!   request; a bad pair is refused, counted, and the old one stays;
//! - backend side: verified TLS to `redis-server --tls-port` (refused with a wrong
//!   CA), client certificates, pub/sub, dedicated connections and health checks.

mod common;

use common::admin::{scrape, scrape_until, topology};
use common::tls::{Ca, Pair, TlsConn, client_config, replace_file, tls_ping};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest wait for a rotated certificate to be served (poll 250 ms, loaded CI).
const ROTATE_TIMEOUT: Duration = Duration::from_secs(10);

fn tls_yaml(pair: &Pair, client_ca: Option<&Ca>) -> String {
    let mut y = format!(
        "tls:\n  cert: {}\n  key: {}\n",
        pair.cert.display(),
        pair.key.display()
    );
    if let Some(ca) = client_ca {
        y.push_str(&format!("  client_ca: {}\n", ca.cert.display()));
    }
    y
}

/// A proxy over `nodes` with `extra` YAML, ready when a TLS PING with `ready` answers.
fn tls_proxy(nodes: &[&RedisServer], extra: &str, ready: Arc<rustls::ClientConfig>) -> Proxy {
    let (yaml, _, _) = Proxy::config_for(nodes, extra);
    let check = move |port| tls_ping(port, &ready);
    Proxy::try_start_ready(&yaml, &[], &check).unwrap_or_else(|e| panic!("{e}"))
}

/// A TLS listener (no client certificates) in front of one node, and a client
/// config that trusts its CA.
struct Plain {
    _dir: TempDir,
    ca: Ca,
    node: RedisServer,
    cfg: std::sync::Arc<rustls::ClientConfig>,
    proxy: Proxy,
}

impl Plain {
    fn start() -> Plain {
        let dir = TempDir::new("tls");
        let ca = Ca::new(&dir, "main");
        let server = ca.issue("proxy");
        let node = RedisServer::start();
        let cfg = client_config(&[&ca.cert], None);
        let proxy = tls_proxy(&[&node], &tls_yaml(&server, None), cfg.clone());
        Plain {
            _dir: dir,
            ca,
            node,
            cfg,
            proxy,
        }
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

#[test]
fn redis_cli_redis_py_and_a_rust_client_through_a_tls_listener() {
    let Plain {
        _dir: _keep,
        ca,
        node: _node,
        cfg,
        proxy,
    } = Plain::start();
    let port = proxy.port().to_string();
    let cacert = ca.cert.display().to_string();

    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["--tls", "--cacert", &cacert, "-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "cli-key", "v1"]), "OK");
    assert_eq!(cli(&["GET", "cli-key"]), "v1");

    let script = format!(
        "import redis\nr = redis.Redis(host='127.0.0.1', port={port}, ssl=True, ssl_ca_certs='{cacert}')\n\
         r.set('py-key', 'v2')\nprint(r.get('py-key').decode())\n\
         p = r.pipeline(transaction=False)\nfor i in range(200): p.set(f'py{{i}}', 'x' * 1000)\n\
         print(sum(1 for ok in p.execute() if ok))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        "v2\n200",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // redis-rs over rustls, verifying the proxy's certificate against the CA.
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(&ca.cert).unwrap()),
    };
    let rs = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}/"), certs).unwrap();
    let mut rc = rs.get_connection().expect("redis-rs TLS connection");
    let _: () = redis::cmd("SET")
        .arg("rs-key")
        .arg("v3")
        .query(&mut rc)
        .unwrap();
    let got: String = redis::cmd("GET").arg("py-key").query(&mut rc).unwrap();
    assert_eq!(got, "v2", "redis-rs reads what redis-py wrote");
    let got: String = redis::cmd("GET").arg("rs-key").query(&mut rc).unwrap();
    assert_eq!(got, "v3");

    let mut c = TlsConn::connect(proxy.port(), &cfg).unwrap();
    assert_eq!(c.cmd(&["GET", "py-key"]), bulk("v2"));
    // A reply far larger than one TLS record and the socket buffers.
    let big = "b".repeat(4 << 20);
    assert_eq!(c.cmd(&["SET", "big", &big]), Reply::ok());
    assert_eq!(c.cmd(&["GET", "big"]), Reply::Bulk(big.into_bytes()));
    // Pipelined: many requests in one TLS record, many replies.
    for i in 0..100 {
        c.send(&["SET", &format!("p{i}"), &i.to_string()]).unwrap();
    }
    for _ in 0..100 {
        assert_eq!(c.read().unwrap(), Reply::ok());
    }
    assert_eq!(c.cmd(&["GET", "p99"]), bulk("99"));
    assert_eq!(c.cmd(&["QUIT"]), Reply::ok());
}

#[test]
fn mutual_tls_requires_a_certificate_from_the_client_ca() {
    let dir = TempDir::new("tls");
    let ca = Ca::new(&dir, "main");
    let clients = Ca::new(&dir, "clients");
    let other = Ca::new(&dir, "other");
    let server = ca.issue("proxy");
    let good = clients.issue("good-client");
    let bad = other.issue("bad-client");
    let node = RedisServer::start();
    let with_good = client_config(&[&ca.cert], Some(&good));
    let proxy = tls_proxy(
        &[&node],
        &tls_yaml(&server, Some(&clients)),
        with_good.clone(),
    );

    let mut c = TlsConn::connect(proxy.port(), &with_good).unwrap();
    assert_eq!(c.cmd(&["SET", "m", "1"]), Reply::ok());

    // No certificate, or one from another CA: refused (at the handshake in TLS 1.2,
    // at the first read in TLS 1.3, where the client finishes first).
    for cfg in [
        client_config(&[&ca.cert], None),
        client_config(&[&ca.cert], Some(&bad)),
    ] {
        let refused = match TlsConn::connect(proxy.port(), &cfg) {
            Err(_) => true,
            Ok(mut c) => c.try_cmd(&["PING"]).is_err(),
        };
        assert!(refused, "a client without a good certificate was served");
    }
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(&ca.cert)
        .arg("--cert")
        .arg(&good.cert)
        .arg("--key")
        .arg(&good.key)
        .args(["-p", &proxy.port().to_string(), "GET", "m"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert_eq!(c.cmd(&["GET", "m"]), bulk("1"));
}

/// Whether the proxy closes `s` within `within` (EOF or reset), reading whatever it sends.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return Instant::now() < deadline + Duration::from_millis(50),
            Ok(_) => continue,
        }
    }
    false
}

#[test]
fn bad_handshakes_are_closed_and_other_clients_are_unaffected() {
    let Plain {
        _dir: _keep,
        ca: _ca,
        node,
        cfg,
        proxy,
    } = Plain::start();
    let mut good = TlsConn::connect(proxy.port(), &cfg).unwrap();
    assert_eq!(good.cmd(&["SET", "g", "1"]), Reply::ok());
    let connect = || TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();

    // Plain text on the TLS port.
    let mut plain = connect();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    assert!(
        closed_within(&mut plain, Duration::from_secs(3)),
        "plain client left open"
    );
    // Garbage instead of a ClientHello.
    let mut garbage = connect();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7])
        .unwrap();
    garbage.write_all(&[0xAB; 70_000]).unwrap_or(());
    assert!(
        closed_within(&mut garbage, Duration::from_secs(3)),
        "garbage left open"
    );
    // Half a handshake: a ClientHello record header and part of it, then silence.
    let mut half = connect();
    half.write_all(&[
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ])
    .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut half, Duration::from_secs(9)),
        "half handshake left open"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "closed before the handshake timeout"
    );
    // Silent client: closed by the same timeout (checked above); a TLS client on a
    // plain port gets a protocol error and is closed.
    let plain_proxy = Proxy::with_nodes(&[&node], "");
    let refused = match TlsConn::connect(plain_proxy.port(), &cfg) {
        Err(_) => true,
        Ok(mut c) => c.try_cmd(&["PING"]).is_err(),
    };
    assert!(refused);
    // The good client never noticed; the proxy still accepts TLS clients; nothing is
    // left counted as connected but the one client.
    assert_eq!(good.cmd(&["GET", "g"]), bulk("1"));
    assert!(tls_ping(proxy.port(), &cfg));
    let admin = proxy.admin_port();
    scrape_until(admin, Duration::from_secs(5), "one client connected", |s| {
        s.sum("ringproxy_client_connections", &[]) == 1.0
    });
    // Plain, garbage and half: three failed handshakes counted.
    assert!(scrape(admin).sum("ringproxy_tls_handshake_failures_total", &[]) >= 3.0);
}

/// A load of TLS clients, each opening a new connection every few requests (so
/// handshakes keep happening), until `stop`; returns (requests, failures).
fn tls_load(port: u16, cfg: Arc<rustls::ClientConfig>, stop: Arc<AtomicBool>) -> (u64, u64) {
    let (mut ok, mut failed) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        round += 1;
        let Ok(mut c) = TlsConn::connect(port, &cfg) else {
            failed += 1;
            continue;
        };
        for i in 0..10 {
            let key = format!("load{round}-{i}");
            let set = c.try_cmd(&["SET", &key, "v"]);
            let get = c.try_cmd(&["GET", &key]);
            match (set, get) {
                (Ok(s), Ok(g)) if s == Reply::ok() && g == bulk("v") => ok += 2,
                _ => failed += 1,
            }
        }
    }
    (ok, failed)
}

#[test]
fn rotation_serves_the_new_pair_without_a_restart_and_refuses_a_bad_one() {
    let dir = TempDir::new("tls");
    let (ca1, ca2) = (Ca::new(&dir, "one"), Ca::new(&dir, "two"));
    let first = ca1.issue("first");
    let second = ca2.issue("second");
    let live = Pair {
        cert: dir.join("live.pem"),
        key: dir.join("live.key"),
    };
    replace_file(&first.cert, &live.cert);
    replace_file(&first.key, &live.key);
    let node = RedisServer::start();
    let both = client_config(&[&ca1.cert, &ca2.cert], None);
    let proxy = tls_proxy(&[&node], &tls_yaml(&live, None), both.clone());
    let only_second = client_config(&[&ca2.cert], None);
    assert!(TlsConn::connect(proxy.port(), &only_second).is_err());
    let mut old = TlsConn::connect(proxy.port(), &both).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (cfg, stop, port) = (both.clone(), stop.clone(), proxy.port());
            std::thread::spawn(move || tls_load(port, cfg, stop))
        })
        .collect();
    // The key first, then the certificate: in between the pair does not match and
    // is refused; the next look takes the whole new pair.
    replace_file(&second.key, &live.key);
    replace_file(&second.cert, &live.cert);
    poll(
        "the new certificate served",
        ROTATE_TIMEOUT,
        Duration::from_millis(20),
        || TlsConn::connect(proxy.port(), &only_second).map_err(|e| e.to_string()),
    );
    let admin = proxy.admin_port();
    let ok = r#"ringproxy_tls_reloads_total{result="ok"}"#;
    let errors_before = scrape(admin).series(r#"ringproxy_tls_reloads_total{result="error"}"#);
    assert!(scrape(admin).series(ok) >= 1.0);

    // A bad pair (a key of another certificate): refused, counted; the old stays.
    replace_file(&first.key, &live.key);
    scrape_until(admin, ROTATE_TIMEOUT, "the bad pair counted", |s| {
        s.series(r#"ringproxy_tls_reloads_total{result="error"}"#) > errors_before
    });
    assert!(TlsConn::connect(proxy.port(), &only_second).is_ok());
    assert!(proxy.log().contains("TLS certificate reload refused"));

    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in load {
        let (ok, failed) = t.join().unwrap();
        assert_eq!(failed, 0, "requests failed during rotation");
        total += ok;
    }
    assert!(total > 0);
    // A connection from before the rotation is still served.
    assert_eq!(old.cmd(&["SET", "old", "1"]), Reply::ok());
}

/// A redis-server with a plain port (for readiness and direct checks) and a TLS port.
fn tls_node(pair: &Pair, ca: &Ca, auth_clients: bool) -> (RedisServer, u16) {
    let tls_port = free_port();
    let (port, cert, key, cacert) = (
        tls_port.to_string(),
        pair.cert.display().to_string(),
        pair.key.display().to_string(),
        ca.cert.display().to_string(),
    );
    let auth = if auth_clients { "yes" } else { "no" };
    let node = RedisServer::start_with(&[
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &cacert,
        "--tls-auth-clients",
        auth,
    ]);
    (node, tls_port)
}

fn backend_yaml(port: u16, admin: u16, tls_port: u16, tls: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin}\nnodes:\n  - {{name: n0, addr: \"127.0.0.1:{tls_port}\"}}\n\
         health:\n  interval: 50ms\n  failures: 2\n  successes: 1\nbackend:\n  tls:\n{tls}"
    )
}

#[test]
fn backend_tls_is_verified_and_used_by_every_connection() {
    let dir = TempDir::new("tls");
    let ca = Ca::new(&dir, "nodes");
    let wrong = Ca::new(&dir, "wrong");
    let client = ca.issue("proxy-client");
    let (node, tls_port) = tls_node(&ca.issue("node"), &ca, true);
    let tls = format!(
        "    ca: {}\n    cert: {}\n    key: {}\n",
        ca.cert.display(),
        client.cert.display(),
        client.key.display()
    );
    let (port, admin) = (free_port(), free_port());
    let proxy = Proxy::start(&backend_yaml(port, admin, tls_port, &tls));
    let mut c = proxy.conn();
    assert_eq!(c.cmd(&["SET", "bk", "v"]), Reply::ok());
    assert_eq!(node.cmd(&["GET", "bk"]), bulk("v"));
    // Dedicated connection (a transaction).
    assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
    assert_eq!(c.cmd(&["INCR", "n"]), Reply::Status("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Reply::Array(vec![Reply::Int(1)]));
    // Pub/sub (a subscriber connection).
    let mut sub = proxy.conn();
    let _ = sub.cmd(&["SUBSCRIBE", "ch"]);
    poll(
        "the message delivered",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || match c.cmd(&["PUBLISH", "ch", "hello"]) {
            Reply::Int(1) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let msg = sub.read().unwrap();
    assert_eq!(
        msg,
        Reply::Array(vec![bulk("message"), bulk("ch"), bulk("hello")])
    );
    // Health checks over TLS: with 50 ms checks and 2 failures to go down, a
    // plain-text check on the TLS port would have failed many times by now.
    std::thread::sleep(Duration::from_millis(500));
    assert!(topology(admin).node("n0").up());
    assert_eq!(
        scrape(admin).sum("ringproxy_node_transitions_total", &[]),
        0.0
    );
    // Every connection the node sees from the proxy is a TLS one (none on the plain port
    // but the test's own).
    let list = node.cli(&["CLIENT", "LIST"]);
    assert!(
        list.lines()
            .filter(|l| l.contains(&format!("laddr=127.0.0.1:{tls_port}")))
            .count()
            >= 3,
        "{list}"
    );

    // A wrong CA: node certificates are refused; the node goes down, requests fail.
    let bad = format!("    ca: {}\n", wrong.cert.display());
    let (port, admin) = (free_port(), free_port());
    let refused = Proxy::start(&backend_yaml(port, admin, tls_port, &bad));
    let mut c = refused.conn();
    assert!(matches!(c.cmd(&["GET", "bk"]), Reply::Error(_)));
    poll(
        "the node marked down",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || match topology(admin).node("n0").up() {
            false => Ok(()),
            true => Err("still up".to_string()),
        },
    );

    // insecure_skip_verify: the same wrong CA, but nothing is checked; said loudly.
    let skip = format!(
        "    ca: {}\n    insecure_skip_verify: true\n    cert: {}\n    key: {}\n",
        wrong.cert.display(),
        client.cert.display(),
        client.key.display()
    );
    let (port, admin) = (free_port(), free_port());
    let unverified = Proxy::start(&backend_yaml(port, admin, tls_port, &skip));
    assert_eq!(unverified.conn().cmd(&["GET", "bk"]), bulk("v"));
    assert!(
        unverified.log().contains("NOT verified"),
        "{}",
        unverified.log()
    );
}

#[test]
fn bad_tls_files_are_refused_by_check_with_their_line() {
    let dir = TempDir::new("tls");
    let ca = Ca::new(&dir, "main");
    let pair = ca.issue("proxy");
    let other = ca.issue("other");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let check = |tls: &str| {
        let yaml = format!("listen: 127.0.0.1:1\nnodes:\n  - addr: 127.0.0.1:2\n{tls}");
        let path = dir.join("check.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new(ringproxy_bin())
            .arg("--check")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.success(), text)
    };
    let (ok, _) = check(&format!(
        "tls:\n  cert: {}\n  key: {}\n",
        pair.cert.display(),
        pair.key.display()
    ));
    assert!(ok);
    let cases = [
        (
            format!(
                "tls:\n  cert: {}\n  key: {}\n",
                dir.join("missing.pem").display(),
                pair.key.display()
            ),
            "line 5",
            "cannot read",
        ),
        (
            format!(
                "tls:\n  cert: {}\n  key: {}\n",
                garbage.display(),
                pair.key.display()
            ),
            "line 5",
            "no PEM certificate",
        ),
        (
            format!(
                "tls:\n  cert: {}\n  key: {}\n",
                pair.cert.display(),
                garbage.display()
            ),
            "line 6",
            "no valid PEM private key",
        ),
        (
            format!(
                "tls:\n  cert: {}\n  key: {}\n",
                pair.cert.display(),
                other.key.display()
            ),
            "line 4",
            "unusable certificate and key",
        ),
        (
            format!("backend:\n  tls:\n    ca: {}\n", garbage.display()),
            "line 6",
            "no PEM certificate",
        ),
    ];
    for (tls, line, what) in cases {
        let (ok, text) = check(&tls);
        assert!(!ok, "accepted: {tls}");
        assert!(
            text.contains(line) && text.contains(what),
            "{tls}\n→ {text}"
        );
        let key = std::fs::read_to_string(&pair.key).unwrap();
        let secret = key.lines().nth(1).unwrap();
        assert!(
            !text.contains("-----") && !text.contains(secret),
            "file content in the error: {text}"
        );
    }
}

#[test]
fn handshakes_count_against_max_clients() {
    let dir = TempDir::new("tls");
    let ca = Ca::new(&dir, "main");
    let server = ca.issue("proxy");
    let node = RedisServer::start();
    let cfg = client_config(&[&ca.cert], None);
    let extra = tls_yaml(&server, None) + "limits:\n  max_clients: 1\n";
    let proxy = tls_proxy(&[&node], &extra, cfg.clone());
    let poll_ms = Duration::from_millis(20);
    let mut first = poll("the only client admitted", READY_TIMEOUT, poll_ms, || {
        let mut c = TlsConn::connect(proxy.port(), &cfg).map_err(|e| e.to_string())?;
        c.try_cmd(&["PING"]).map_err(|e| e.to_string())?;
        Ok(c)
    });
    // A silent connection (a handshake that never starts) holds no place beyond the
    // limit either: with the one client in, it is closed at once.
    let mut silent = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)),
        "over the limit, left open"
    );
    let refused = match TlsConn::connect(proxy.port(), &cfg) {
        Err(_) => true,
        Ok(mut c) => c.try_cmd(&["PING"]).is_err(),
    };
    assert!(refused, "a second client was served with max_clients: 1");
    let admin = proxy.admin_port();
    assert!(scrape(admin).sum("ringproxy_client_connections_rejected_total", &[]) >= 2.0);
    assert_eq!(first.cmd(&["PING"]), Reply::Status("PONG".into()));
    drop(first);
    poll("a new client admitted", READY_TIMEOUT, poll_ms, || {
        let mut c = TlsConn::connect(proxy.port(), &cfg).map_err(|e| e.to_string())?;
        c.try_cmd(&["PING"]).map_err(|e| e.to_string())
    });
}
