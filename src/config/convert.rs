//! Printing a pool as an equivalent ringproxy YAML file (every setting written out),
//! mainly to move from a nutcracker file to the ringproxy format.
//!
//! A ringproxy file describes one pool. For a nutcracker file with several pools,
//! [`nutcracker_to_ringproxy`] prints one YAML document per pool, separated by `---`
//! with a comment naming the pool: save each document as its own file. A nutcracker
//! file binds no admin port, so neither does its conversion (`admin: null`): give each
//! document its own admin address to enable it.
//!
//! Secrets are never printed: a set password (`auth`, `backend.password`, a user's)
//! is written as `""` after a comment saying so, which `--check` refuses until the
//! operator writes the secret in (or names a `password_file`).

use super::checks::{self as ck};
use super::nutcracker::Nutcracker;
use super::*;
use crate::route::{Distribution, HashMode};
use std::fmt::Write;

/// The ringproxy YAML equivalent of `pool`, with process-wide settings (admin,
/// workers, log) taken from `process`. [`parse`] reads it back into an equal pool
/// (named `default`).
pub fn to_ringproxy_yaml(pool: &PoolConfig, process: &Config) -> String {
    let mut out = String::new();
    let o = &mut out;
    line(o, 0, "listen", &q(&ck::listen_text(&pool.listen)));
    if let Some(m) = pool.listen_mode {
        line(o, 0, "listen_mode", &q(&format!("{m:04o}")));
    }
    line(
        o,
        0,
        "admin",
        &process.admin.as_deref().map_or("null".into(), q),
    );
    if let Some(t) = &process.admin_token_file {
        line(o, 0, "admin_token_file", &q(&t.display().to_string()));
    }
    line(o, 0, "workers", &process.workers.to_string());
    nodes(o, pool);
    hash(o, pool);
    section(
        o,
        "pool",
        &[
            ("connections", pool.connections.to_string()),
            ("preconnect", pool.preconnect.to_string()),
        ],
    );
    let off = |d: Option<std::time::Duration>| duration::format(d.unwrap_or_default());
    let t = [
        ("connect", duration::format(pool.connect_timeout)),
        ("request", duration::format(pool.request_timeout)),
        ("client_idle", off(pool.clients.idle)),
        ("client_request", off(pool.clients.request)),
    ];
    section(o, "timeouts", &t);
    limits(o, pool);
    health(o, &pool.health);
    secret_line(o, 0, "auth", pool.auth.is_some());
    users(o, &pool.users);
    o.push_str("backend:\n");
    line(o, 2, "username", &opt_q(&pool.backend_username));
    secret_line(o, 2, "password", pool.backend_password.is_some());
    line(o, 2, "db", &pool.backend_db.to_string());
    commands(o, &pool.commands);
    line(o, 0, "allow_flush", &pool.allow_flush.to_string());
    line(o, 0, "allow_admin", &pool.allow_admin.to_string());
    let format = if process.log_json { "json" } else { "text" };
    section(
        o,
        "log",
        &[("format", format.into()), ("level", q(&process.log_level))],
    );
    out
}

/// Every pool of a nutcracker file as ringproxy YAML: the notes first (as comments),
/// then one document per pool.
pub fn nutcracker_to_ringproxy(nc: &Nutcracker) -> String {
    let mut out = String::from(
        "# Converted from a nutcracker file; placement is twemproxy-exact.\n# admin: null, as serving the nutcracker file binds no admin port; write a host:port to enable it.\n",
    );
    for n in &nc.notes {
        let _ = writeln!(out, "# note: {n}");
    }
    let several = nc.config.pools.len() > 1;
    for (i, pool) in nc.config.pools.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let _ = writeln!(
            out,
            "# pool {:?}{}",
            pool.name,
            if several {
                ": save as its own file"
            } else {
                ""
            }
        );
        out.push_str(&to_ringproxy_yaml(pool, &nc.config));
    }
    out
}

fn line(o: &mut String, indent: usize, key: &str, value: &str) {
    let _ = writeln!(o, "{:indent$}{key}: {value}", "");
}

fn section(o: &mut String, name: &str, fields: &[(&str, String)]) {
    let _ = writeln!(o, "{name}:");
    for (k, v) in fields {
        line(o, 2, k, v);
    }
}

fn nodes(o: &mut String, pool: &PoolConfig) {
    o.push_str("nodes:\n");
    for n in &pool.nodes {
        let addr = ck::addr_text(&n.addr);
        let _ = writeln!(o, "  - addr: {}", q(&addr));
        let implied = ck::identity(pool.mode, &n.addr, None);
        if n.name != addr || n.identity != implied {
            line(o, 4, "name", &q(&n.name));
        }
        line(o, 4, "weight", &n.weight.to_string());
    }
}

fn hash(o: &mut String, pool: &PoolConfig) {
    let twemproxy = pool.mode == HashMode::Twemproxy;
    let mut fields = vec![(
        "mode",
        if twemproxy { "twemproxy" } else { "ringproxy" }.to_string(),
    )];
    if let Some(name) = ck::function_name(pool.function).filter(|_| twemproxy) {
        fields.push(("function", name.into()));
    }
    let d = match pool.distribution {
        Distribution::Ketama => "ketama",
        Distribution::Modula => "modula",
        Distribution::Random => "random",
    };
    fields.push(("distribution", d.into()));
    let tag = pool
        .tag
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default();
    fields.push(("tag", q(&tag)));
    section(o, "hash", &fields);
}

fn limits(o: &mut String, pool: &PoolConfig) {
    let fields = [
        ("max_clients", pool.max_clients.to_string()),
        ("max_pipeline", pool.max_pipeline.to_string()),
        ("max_request_size", size::format(pool.max_request_size)),
        ("max_dedicated", pool.max_dedicated.to_string()),
        ("max_client_memory", size::format(pool.clients.max_memory)),
    ];
    section(o, "limits", &fields);
}

fn health(o: &mut String, h: &HealthConfig) {
    let mut fields = vec![
        ("interval", duration::format(h.interval)),
        ("timeout", duration::format(h.timeout)),
        ("failures", h.failures.to_string()),
        ("successes", h.successes.to_string()),
        ("eject", h.eject.to_string()),
        ("max_ejected_percent", h.max_ejected_percent.to_string()),
    ];
    if let Some(d) = h.retry_timeout {
        fields.push(("retry_timeout", duration::format(d)));
    }
    section(o, "health", &fields);
}

fn commands(o: &mut String, list: &[ExtraCommand]) {
    if list.is_empty() {
        o.push_str("commands: []\n");
        return;
    }
    o.push_str("commands:\n");
    for c in list {
        let _ = writeln!(o, "  - name: {}", q(&c.name));
        for (k, v) in [
            ("arity", c.arity),
            ("first_key", c.first_key),
            ("last_key", c.last_key),
            ("step", c.step),
        ] {
            line(o, 4, k, &v.to_string());
        }
    }
}

/// A password field: `null` when unset, else `""` after a comment (never the secret).
fn secret_line(o: &mut String, indent: usize, key: &str, set: bool) {
    if set {
        let _ = writeln!(
            o,
            "{:indent$}# {key}: set, not printed (a secret): write it in",
            ""
        );
        line(o, indent, key, "\"\"");
    } else {
        line(o, indent, key, "null");
    }
}

fn users(o: &mut String, list: &[UserConfig]) {
    if list.is_empty() {
        o.push_str("users: []\n");
        return;
    }
    o.push_str("users:\n");
    for u in list {
        let _ = writeln!(o, "  - name: {}", q(&u.name));
        secret_line(o, 4, "password", true);
        line(o, 4, "commands", &q(&u.commands));
        let list = |l: &[String]| l.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ");
        line(o, 4, "keys", &format!("[{}]", list(&u.keys)));
        line(o, 4, "channels", &format!("[{}]", list(&u.channels)));
    }
}

fn opt_q(s: &Option<String>) -> String {
    s.as_deref().map_or("null".into(), q)
}

/// A YAML double-quoted scalar.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NC: &str = include_str!("../../conf/nutcracker.yml");

    fn round_trip(pool: &PoolConfig, process: &Config) {
        let text = to_ringproxy_yaml(pool, process);
        for pw in [&pool.auth, &pool.backend_password].into_iter().flatten() {
            assert!(!text.contains(&**pw), "a secret was printed:\n{text}");
        }
        // What the operator does: writes the secrets in.
        let fill = |key: &str, pw: &Option<Password>, text: String| match pw {
            Some(pw) => text.replacen(&format!("{key}: \"\""), &format!("{key}: {}", q(pw)), 1),
            None => text,
        };
        let text = fill("auth", &pool.auth, text);
        let text = fill("  password", &pool.backend_password, text);
        let back = parse(&text).unwrap_or_else(|p| panic!("{text}\n{p:?}"));
        let expected = PoolConfig {
            name: "default".into(),
            ..pool.clone()
        };
        assert_eq!(back.pools, vec![expected], "{text}");
        assert_eq!(
            (back.admin.as_ref(), back.workers),
            (process.admin.as_ref(), process.workers)
        );
    }

    #[test]
    fn every_pool_of_the_example_round_trips() {
        let nc = nutcracker::parse(NC).unwrap();
        assert_eq!(nc.config.pools.len(), 2);
        for pool in &nc.config.pools {
            round_trip(pool, &nc.config);
        }
    }

    #[test]
    fn odd_values_round_trip() {
        let text = "a:\n  listen: /tmp/a.sock 0600\n  redis: true\n  redis_auth: 'p\"w\\\\'\n  hash: fnv1a_64\n  distribution: modula\n  servers:\n   - /tmp/r.sock:3\n   - 10.0.0.1:11211:1\n   - 10.0.0.2:6379:2 10.0.0.2:6379\n";
        let nc = nutcracker::parse(text).unwrap();
        round_trip(&nc.config.pools[0], &nc.config);
    }

    #[test]
    fn ringproxy_files_round_trip() {
        let text = include_str!("../../conf/ringproxy.yaml");
        let config = parse(text).unwrap();
        round_trip(&config.pools[0], &config);
    }

    #[test]
    fn several_pools_become_several_documents() {
        let nc = nutcracker::parse(NC).unwrap();
        let out = nutcracker_to_ringproxy(&nc);
        assert_eq!(out.matches("\n---\n").count(), 1);
        assert!(out.contains("# pool \"sessions\": save as its own file"));
        for doc in out.split("\n---\n") {
            assert!(parse(doc).is_ok(), "{doc}");
        }
    }

    #[test]
    fn quotes_strings() {
        assert_eq!(q("a\"b\\c\n"), "\"a\\\"b\\\\c\\x0a\"");
    }
}
