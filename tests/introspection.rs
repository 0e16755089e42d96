//! Introspection through the proxy against real redis-servers: INFO sections (Redis
//! 7.0's selection and order, the nodes' figures summed), ROLE, CONFIG GET/SET/
//! RESETSTAT (behind `allow_admin`, live on reload), SLOWLOG and LATENCY merged over
//! the nodes; RESP2 and RESP3; byte-for-byte checks against a node where the proxy
//! must answer as Redis; redis-py parsing the INFO sections.

mod common;

use common::admin::{topology, wait_topology};
use common::*;
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// Section names and `key:value` fields of an INFO text.
fn parse_info(text: &[u8]) -> (Vec<String>, HashMap<String, String>) {
    let text = String::from_utf8_lossy(text);
    let mut sections = Vec::new();
    let mut fields = HashMap::new();
    for line in text.split("\r\n") {
        if let Some(s) = line.strip_prefix("# ") {
            sections.push(s.to_string());
        } else if let Some((k, v)) = line.split_once(':') {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    (sections, fields)
}

fn info(c: &mut Conn, args: &[&str]) -> (Vec<String>, HashMap<String, String>) {
    let mut cmd = vec!["INFO"];
    cmd.extend_from_slice(args);
    let r = c.cmd(&cmd);
    assert!(!r.is_error(), "INFO {args:?}: {r}");
    parse_info(r.bytes())
}

fn field(f: &HashMap<String, String>, k: &str) -> u64 {
    f.get(k)
        .unwrap_or_else(|| panic!("no {k} in {f:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{k} not a number: {f:?}"))
}

fn node_field(n: &RedisServer, section: &str, k: &str) -> u64 {
    field(&parse_info(n.cmd(&["INFO", section]).bytes()).1, k)
}

fn hello3(c: &mut Conn) {
    let r = c.cmd(&["HELLO", "3"]);
    assert!(!r.is_error(), "HELLO 3: {r}");
}

/// Runs `cmd` on the proxy and on `node`; both raw replies.
fn both(proxy: &mut Conn, node: &mut Conn, cmd: &[&str]) -> (Vec<u8>, Vec<u8>) {
    (proxy.cmd_raw(cmd), node.cmd_raw(cmd))
}

fn assert_same(proxy: &mut Conn, node: &mut Conn, cmd: &[&str]) {
    let (p, n) = both(proxy, node, cmd);
    assert_eq!(
        String::from_utf8_lossy(&p),
        String::from_utf8_lossy(&n),
        "{cmd:?}: proxy vs redis"
    );
}

const DEFAULT_SECTIONS: [&str; 11] = [
    "Server",
    "Clients",
    "Memory",
    "Stats",
    "Replication",
    "CPU",
    "Modules",
    "Errorstats",
    "Cluster",
    "Keyspace",
    "Topology",
];

#[test]
fn info_sections_are_selected_and_ordered_as_redis_7() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    assert_eq!(info(&mut c, &[]).0, DEFAULT_SECTIONS);
    assert_eq!(info(&mut c, &["default"]).0, DEFAULT_SECTIONS);
    assert_eq!(info(&mut c, &["DEFAULT"]).0, DEFAULT_SECTIONS);
    let mut with_stats = DEFAULT_SECTIONS.to_vec();
    with_stats.insert(7, "Commandstats");
    assert_eq!(info(&mut c, &["default", "commandstats"]).0, with_stats);
    // All sections also have the proxy's hot-key section (not in default).
    let mut all = with_stats.clone();
    all.push("Hotkeys");
    assert_eq!(info(&mut c, &["all"]).0, all);
    assert_eq!(info(&mut c, &["everything"]).0, all);
    assert_eq!(info(&mut c, &["cpu", "memory"]).0, ["Memory", "CPU"]);
    assert_eq!(
        info(&mut c, &["keyspace", "server", "replication"]).0,
        ["Server", "Replication", "Keyspace"]
    );
    assert_eq!(info(&mut c, &["module_list"]).0, ["Modules"]);
    // Unknown sections: nothing, as Redis.
    assert_eq!(c.cmd(&["INFO", "nosuch"]), Reply::bulk(""));
    let node = cl.nodes[0].conn().cmd_raw(&["INFO", "nosuch"]);
    assert_eq!(node, b"$0\r\n\r\n");
    // Sections are separated by one blank line; the text ends with one CRLF.
    let text = c.cmd(&["INFO", "server", "clients"]);
    let t = String::from_utf8_lossy(text.bytes());
    assert!(
        t.contains("\r\n\r\n# Clients\r\n") && !t.ends_with("\r\n\r\n"),
        "{t:?}"
    );
}

#[test]
fn info_figures_are_the_nodes_summed_and_the_proxys_own() {
    let cl = Cluster::start(3, "limits:\n  max_clients: 77\n");
    let mut c = cl.conn();
    let sets: Vec<Vec<String>> = (0..30)
        .map(|i| vec!["SET".into(), format!("k{i}"), "v".into()])
        .collect();
    c.pipeline(&sets);
    for i in 0..10 {
        c.cmd(&["GET", &format!("k{i}")]);
        c.cmd(&["GET", &format!("missing{i}")]);
    }
    let (_, f) = info(&mut c, &["all"]);
    let sum = |section: &str, k: &str| -> u64 {
        cl.nodes.iter().map(|n| node_field(n, section, k)).sum()
    };
    assert_eq!(field(&f, "keyspace_hits"), 10);
    assert_eq!(field(&f, "keyspace_misses"), 10);
    assert_eq!(field(&f, "keyspace_hits"), sum("stats", "keyspace_hits"));
    assert_eq!(field(&f, "expired_keys"), 0);
    assert_eq!(field(&f, "evicted_keys"), 0);
    assert!(field(&f, "nodes_total_commands_processed") >= 50, "{f:?}");
    assert!(
        field(&f, "total_commands_processed") >= 50,
        "proxy's own: {f:?}"
    );
    let cmdstat_set = f.get("cmdstat_set").expect("cmdstat_set");
    assert!(cmdstat_set.starts_with("calls=30,usec="), "{cmdstat_set}");
    assert!(
        cmdstat_set.contains(",usec_per_call=")
            && cmdstat_set.ends_with(",rejected_calls=0,failed_calls=0")
    );
    assert_eq!(
        f.get("db0")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .next(),
        Some("keys=30")
    );
    // Memory: summed (nodes' figures drift a little between two reads).
    let used = field(&f, "used_memory") as f64;
    let direct = sum("memory", "used_memory") as f64;
    assert!((used - direct).abs() / direct < 0.1, "{used} vs {direct}");
    let human = &f["used_memory_human"];
    assert!(
        human.ends_with('M')
            && human[..human.len() - 1]
                .split_once('.')
                .is_some_and(|(_, d)| d.len() == 2),
        "{human}"
    );
    assert_eq!(field(&f, "maxmemory"), 0);
    assert_eq!(f["maxmemory_human"], "0B");
    assert_eq!(f["maxmemory_policy"], "noeviction");
    assert_eq!(f["maxmemory_consistent"], "1");
    assert_eq!(f["maxmemory_policy_consistent"], "1");
    // The proxy's own: replication, clients, cpu, cluster.
    assert_eq!(f["role"], "master");
    assert_eq!(f["connected_slaves"], "0");
    assert_eq!(f["blocked_clients"], "0");
    assert_eq!(f["maxclients"], "77");
    assert_eq!(f["connected_clients"], "1");
    assert_eq!(f["cluster_enabled"], "0");
    for k in ["used_cpu_sys", "used_cpu_user"] {
        let v = &f[k];
        let (s, us) = v.split_once('.').unwrap_or_else(|| panic!("{k}:{v}"));
        assert!(s.parse::<u64>().is_ok() && us.len() == 6, "{k}:{v}");
    }
    // Settings that differ: the first node's value, flagged.
    for (i, n) in cl.nodes.iter().enumerate() {
        let mb = (100 + i).to_string() + "mb";
        assert_eq!(n.cmd(&["CONFIG", "SET", "maxmemory", &mb]), Reply::ok());
    }
    assert_eq!(
        cl.nodes[2].cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]),
        Reply::ok()
    );
    let (_, m) = info(&mut c, &["memory"]);
    assert_eq!(field(&m, "maxmemory"), 100 << 20);
    assert_eq!(m["maxmemory_human"], "100.00M");
    assert_eq!(m["maxmemory_consistent"], "0");
    assert_eq!(field(&m, "total_maxmemory"), 303 << 20);
    assert_eq!(m["maxmemory_policy"], "noeviction");
    assert_eq!(m["maxmemory_policy_consistent"], "0");
}

#[test]
fn info_is_verbatim_for_resp3_and_bulk_for_resp2() {
    let mut cl = Cluster::start(2, "");
    let mut c = cl.conn();
    for args in [&["INFO"][..], &["INFO", "server"], &["INFO", "memory"]] {
        assert_eq!(c.cmd_raw(args)[0], b'$', "{args:?}");
    }
    hello3(&mut c);
    for args in [
        &["INFO"][..],
        &["INFO", "server"],
        &["INFO", "memory", "cpu"],
    ] {
        match c.cmd(args) {
            Reply::Verbatim(fmt, text) => {
                assert_eq!(fmt, "txt");
                assert!(text.starts_with(b"# "), "{args:?}");
            }
            other => panic!("{args:?}: {other}"),
        }
    }
    // A node down: the proxy still answers, and says a node is missing.
    let (_, f) = info(&mut c, &["keyspace"]);
    assert!(!f.contains_key("keyspace_nodes_missing"), "{f:?}");
    cl.nodes[1].kill();
    let (sections, f) = info(&mut c, &["memory", "keyspace"]);
    assert_eq!(sections, ["Memory", "Keyspace"]);
    assert_eq!(
        f.get("keyspace_nodes_missing").map(String::as_str),
        Some("1"),
        "{f:?}"
    );
    assert_eq!(
        f.get("memory_nodes_missing").map(String::as_str),
        Some("1"),
        "{f:?}"
    );
    assert!(field(&f, "used_memory") > 0);
}

#[test]
fn role_config_get_and_errors_match_redis_byte_for_byte() {
    let cl = Cluster::start(3, "limits:\n  max_clients: 55\n");
    let mut c = cl.conn();
    let mut n = cl.nodes[0].conn();
    for proto in [2, 3] {
        if proto == 3 {
            hello3(&mut c);
            hello3(&mut n);
        }
        for cmd in [
            &["ROLE"][..],
            &["role"],
            &["ROLE", "x"],
            &["CONFIG", "GET", "maxmemory-policy"],
            &["CONFIG", "GET", "maxmemory*"],
            &["config", "get", "maxmemory", "hz", "nosuch"],
            &["CONFIG", "GET", "nosuch*"],
            &["CONFIG", "GET"],
            &["CONFIG"],
            &["CONFIG", "FOO"],
            &["CONFIG", "SET", "hz"],
            &["SLOWLOG"],
            &["SLOWLOG", "NOPE"],
            &["SLOWLOG", "LEN", "x"],
            &["SLOWLOG", "GET", "x"],
            &["SLOWLOG", "GET", "-2"],
            &["SLOWLOG", "GET", "1", "2"],
            &["LATENCY", "LATEST", "x"],
            &["LATENCY"],
        ] {
            assert_same(&mut c, &mut n, cmd);
        }
        // The proxy's own parameters.
        let r = c.cmd(&["CONFIG", "GET", "databases", "maxclients", "requirepass"]);
        let want = [
            ("databases", "1"),
            ("maxclients", "55"),
            ("requirepass", ""),
        ];
        let got: Vec<(String, String)> = match &r {
            Reply::Map(kv) if proto == 3 => {
                kv.iter().map(|(k, v)| (k.compact(), v.compact())).collect()
            }
            Reply::Array(v) if proto == 2 => v
                .chunks(2)
                .map(|p| (p[0].compact(), p[1].compact()))
                .collect(),
            other => panic!("RESP{proto} CONFIG GET: {other}"),
        };
        let mut got = got;
        got.sort();
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want, "RESP{proto}");
    }
    // Nodes that disagree: the first node's value.
    assert_eq!(
        cl.nodes[1].cmd(&["CONFIG", "SET", "maxmemory-samples", "7"]),
        Reply::ok()
    );
    let mut c2 = cl.conn();
    assert_eq!(
        c2.cmd(&["CONFIG", "GET", "maxmemory-samples"]),
        Reply::bulks(&["maxmemory-samples", "5"])
    );
}

#[test]
fn admin_commands_are_refused_without_allow_admin_and_live_on_reload() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    for (cmd, what) in [
        (&["CONFIG", "SET", "hz", "20"][..], "CONFIG SET"),
        (&["CONFIG", "RESETSTAT"], "CONFIG RESETSTAT"),
        (&["SLOWLOG", "RESET"], "SLOWLOG RESET"),
        (&["LATENCY", "RESET"], "LATENCY RESET"),
    ] {
        let r = c.cmd(cmd);
        assert_eq!(
            r,
            Reply::Error(format!(
                "ERR ringproxy: {what} is disabled (set allow_admin: true to send it to every node)"
            )),
            "{cmd:?}"
        );
    }
    for cmd in [
        &["CONFIG", "REWRITE"][..],
        &["LATENCY", "DOCTOR"],
        &["LATENCY", "HISTORY", "command"],
        &["LATENCY", "GRAPH", "command"],
        &["LATENCY", "HISTOGRAM"],
    ] {
        let r = c.cmd(cmd);
        assert!(
            r.is_error() && r.err_text().contains("is not supported by the proxy"),
            "{cmd:?}: {r}"
        );
    }
    assert!(
        cl.nodes
            .iter()
            .all(|n| n.cmd(&["CONFIG", "GET", "hz"]) == Reply::bulks(&["hz", "10"]))
    );
    // HELP goes to a node.
    assert!(!c.cmd(&["CONFIG", "HELP"]).is_error());
    assert!(!c.cmd(&["SLOWLOG", "HELP"]).is_error());

    // Reload with allow_admin: true.
    let admin = cl.proxy.admin_port();
    let before = topology(admin).version;
    let text = std::fs::read_to_string(cl.proxy.config_path()).unwrap() + "allow_admin: true\n";
    cl.proxy.write_config(&text);
    wait_topology(admin, "reloaded", Duration::from_secs(10), |t| {
        t.version > before
    });
    assert_eq!(c.cmd(&["CONFIG", "SET", "hz", "20"]), Reply::ok());
    assert!(
        cl.nodes
            .iter()
            .all(|n| n.cmd(&["CONFIG", "GET", "hz"]) == Reply::bulks(&["hz", "20"]))
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "hz"]), Reply::bulks(&["hz", "20"]));
    // A node's own error, byte for byte.
    let mut n = cl.nodes[0].conn();
    assert_same(&mut c, &mut n, &["CONFIG", "SET", "nosuch", "1"]);
    assert_same(&mut c, &mut n, &["CONFIG", "SET", "hz", "abc"]);
    c.cmd(&["SET", "a", "1"]);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Reply::ok());
    let (_, f) = info(&mut c, &["stats"]);
    assert_eq!(field(&f, "keyspace_hits"), 0);
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), Reply::ok());
    assert_eq!(c.cmd(&["LATENCY", "RESET"]), Reply::Int(0));

    // And back off.
    let before = topology(admin).version;
    cl.proxy
        .write_config(&text.replace("allow_admin: true", "allow_admin: false"));
    wait_topology(admin, "reloaded", Duration::from_secs(10), |t| {
        t.version > before
    });
    assert!(
        c.cmd(&["CONFIG", "SET", "hz", "10"])
            .err_text()
            .contains("allow_admin")
    );
}

#[test]
fn slowlog_and_latency_are_merged_over_the_nodes() {
    let cl = Cluster::start(3, "");
    for n in &cl.nodes {
        for (k, v) in [
            ("slowlog-log-slower-than", "20000"),
            ("latency-monitor-threshold", "10"),
        ] {
            assert_eq!(n.cmd(&["CONFIG", "SET", k, v]), Reply::ok());
        }
    }
    let slow = |i: usize| assert_eq!(cl.nodes[i].cmd(&["DEBUG", "SLEEP", "0.03"]), Reply::ok());
    slow(1);
    std::thread::sleep(Duration::from_millis(1100));
    slow(0);
    slow(2);
    slow(2);
    let mut c = cl.conn();
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Reply::Int(4));
    for proto in [2, 3] {
        if proto == 3 {
            hello3(&mut c);
        }
        let all = c.cmd(&["SLOWLOG", "GET"]);
        let entries = all.items();
        assert_eq!(entries.len(), 4, "RESP{proto}: {all}");
        let times: Vec<i64> = entries.iter().map(|e| e.items()[1].int()).collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first: {all}"
        );
        let nodes: Vec<String> = entries.iter().map(|e| e.items()[5].compact()).collect();
        assert_eq!(nodes[3], "node1", "{all}");
        let mut first3 = nodes[..3].to_vec();
        first3.sort();
        assert_eq!(first3, ["node0", "node2", "node2"], "{all}");
        for e in entries {
            assert_eq!(e.items().len(), 6);
            assert_eq!(
                e.items()[3],
                Reply::bulks(&["DEBUG", "SLEEP", "0.03"]),
                "{all}"
            );
        }
        let two = c.cmd(&["SLOWLOG", "GET", "2"]);
        assert_eq!(two.items(), &entries[..2], "count after merging");
        assert_eq!(c.cmd(&["SLOWLOG", "GET", "-1"]).items().len(), 4);
        assert_eq!(c.cmd(&["SLOWLOG", "GET", "0"]).items().len(), 0);

        let latest = c.cmd(&["LATENCY", "LATEST"]);
        let mut events: Vec<String> = latest
            .items()
            .iter()
            .map(|e| {
                assert_eq!(e.items().len(), 4, "{latest}");
                assert!(e.items()[2].int() >= 10, "{latest}");
                e.items()[0].compact()
            })
            .collect();
        events.sort();
        assert_eq!(events, ["node0/command", "node1/command", "node2/command"]);
    }
}

/// Fails (does not skip) when python3 or redis-py is missing: .ci/run installs both.
#[test]
fn redis_py_parses_the_sections() {
    let cl = Cluster::start(3, "");
    let mut c = cl.conn();
    c.cmd(&["SET", "pykey", "v"]);
    c.cmd(&["GET", "pykey"]);
    let script = r#"
import json, sys, redis
r = redis.Redis(port=int(sys.argv[1]), protocol=int(sys.argv[2]))
mem = r.info('memory'); rep = r.info('replication'); st = r.info('stats')
cl = r.info('clients'); cpu = r.info('cpu'); cs = r.info('commandstats'); ks = r.info('keyspace')
every = r.info('everything')
print(json.dumps({
  'used_memory': mem['used_memory'], 'human': mem['used_memory_human'],
  'maxmemory_policy': mem['maxmemory_policy'], 'role': rep['role'],
  'connected_slaves': rep['connected_slaves'], 'hits': st['keyspace_hits'],
  'nodes_cmds': st['nodes_total_commands_processed'], 'blocked': cl['blocked_clients'],
  'cpu': cpu['used_cpu_sys'] + cpu['used_cpu_user'], 'set_calls': cs['cmdstat_set']['calls'],
  'db0_keys': ks['db0']['keys'], 'sections_ok': 'topology_version' in every,
  'config': r.config_get('maxmemory-policy'), 'slowlog': len(r.slowlog_get()),
  'role_cmd': str(r.role()[0]),
}))
"#;
    for proto in ["2", "3"] {
        let out = Command::new("timeout")
            .args([
                "60",
                "python3",
                "-c",
                script,
                &cl.proxy.port().to_string(),
                proto,
            ])
            .output()
            .expect("python3 is needed (run .ci/run)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "redis-py protocol {proto}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
        assert!(v["used_memory"].as_u64().unwrap() > 0, "{v}");
        assert!(v["human"].as_str().unwrap().ends_with('M'), "{v}");
        assert_eq!(v["maxmemory_policy"], "noeviction", "{v}");
        assert_eq!(v["role"], "master", "{v}");
        assert_eq!(v["connected_slaves"], 0, "{v}");
        assert_eq!(v["hits"], 1, "{v}");
        assert!(v["nodes_cmds"].as_u64().unwrap() > 0, "{v}");
        assert_eq!(v["blocked"], 0, "{v}");
        assert!(v["cpu"].as_f64().is_some(), "{v}");
        assert_eq!(v["set_calls"], 1, "{v}");
        assert_eq!(v["db0_keys"], 1, "{v}");
        assert_eq!(v["sections_ok"], true, "{v}");
        assert_eq!(v["config"]["maxmemory-policy"], "noeviction", "{v}");
        assert_eq!(v["slowlog"], 0, "{v}");
        assert!(v["role_cmd"].as_str().unwrap().contains("master"), "{v}");
    }
}
