//! INFO through the proxy: the sections the proxy writes itself, and the sections
//! made from every node's `INFO ...` reply, in Redis's `# Section\r\nkey:value\r\n`
//! format, sections separated by a blank line as Redis does.
//!
//! Node figures, per section:
//! - memory: `used_memory`, `used_memory_rss`, `used_memory_peak` summed (the peak is
//!   the sum of the nodes' own peaks); `maxmemory` and `maxmemory_policy` are settings:
//!   the nodes' common value, else the first answering node's (config order) with
//!   `maxmemory_consistent:0` / `maxmemory_policy_consistent:0` (both always written,
//!   1 when every node agrees); `total_maxmemory` is the sum of the nodes' limits (0
//!   when any node has none).
//! - stats: the proxy's own counters, then `keyspace_hits`, `keyspace_misses`,
//!   `expired_keys`, `evicted_keys` summed, and the nodes' `total_commands_processed`
//!   and `instantaneous_ops_per_sec` summed as `nodes_total_commands_processed` and
//!   `nodes_instantaneous_ops_per_sec`.
//! - commandstats, errorstats: `cmdstat_*` / `errorstat_*` counters summed per name
//!   (sorted by name), `usec_per_call` recomputed.
//! - keyspace: keys and expires summed per database, `avg_ttl` weighted by expires.
//!
//! A node that did not answer is left out and counted in `<section>_nodes_missing`.

use super::PartReply;
use crate::resp::reply::reply_len;
use crate::resp::{Proto, encode};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One section of the reply, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// Written by the proxy already: the whole section, header included.
    Local(String),
    /// `# Memory` from the nodes.
    Memory,
    /// `# Stats`: the proxy's own lines (no header), then the nodes' counters.
    Stats(String),
    /// `# Commandstats` summed.
    Commandstats,
    /// `# Errorstats` summed.
    Errorstats,
    /// `# Keyspace` summed.
    Keyspace,
}

impl Section {
    /// The section name to ask the nodes for, if it needs them.
    pub fn node_section(&self) -> Option<&'static str> {
        match self {
            Section::Local(_) => None,
            Section::Memory => Some("memory"),
            Section::Stats(_) => Some("stats"),
            Section::Commandstats => Some("commandstats"),
            Section::Errorstats => Some("errorstats"),
            Section::Keyspace => Some("keyspace"),
        }
    }
}

/// INFO's sections, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoPlan {
    /// The sections.
    pub sections: Vec<Section>,
}

impl InfoPlan {
    /// Whether any section needs the nodes.
    pub fn needs_nodes(&self) -> bool {
        self.sections.iter().any(|s| s.node_section().is_some())
    }

    /// The sections written with no node answering (the proxy's own only).
    pub fn local_text(&self) -> String {
        self.render(&[], 0)
    }

    fn render(&self, nodes: &[Fields], missing: usize) -> String {
        let parts: Vec<String> = self
            .sections
            .iter()
            .map(|s| render_section(s, nodes, missing))
            .collect();
        parts.join("\r\n")
    }
}

/// One node's `key:value` lines.
type Fields = Vec<(String, String)>;

/// The reply to INFO per `plan`, from the nodes' replies (a verbatim string for
/// RESP3, a bulk string for RESP2).
pub fn merge_info(plan: &InfoPlan, parts: &[PartReply], proto: Proto) -> Bytes {
    let texts: Vec<Option<String>> = parts
        .iter()
        .map(|p| p.as_ref().ok().and_then(|b| bulk_text(b)))
        .collect();
    let missing = texts.iter().filter(|t| t.is_none()).count();
    let nodes: Vec<Fields> = texts.iter().flatten().map(|t| fields(t)).collect();
    let text = plan.render(&nodes, missing);
    let mut b = BytesMut::with_capacity(text.len() + 16);
    encode::verbatim(&mut b, proto, text.as_bytes());
    b.freeze()
}

/// The text of a bulk (`$`) or verbatim (`=`) string reply.
pub fn bulk_text(b: &[u8]) -> Option<String> {
    if !matches!(b.first(), Some(b'$' | b'=')) || reply_len(b).ok()?? != b.len() {
        return None;
    }
    let start = b.iter().position(|&c| c == b'\n')? + 1;
    let body = b.get(start..b.len().checked_sub(2)?)?;
    let body = if b[0] == b'=' { body.get(4..)? } else { body };
    Some(String::from_utf8_lossy(body).into_owned())
}

fn fields(text: &str) -> Fields {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(f: &'a Fields, key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn sum(nodes: &[Fields], key: &str) -> u64 {
    nodes
        .iter()
        .filter_map(|f| get(f, key)?.parse::<u64>().ok())
        .sum()
}

/// The nodes' common value of `key`, else the first node's; and whether they agree.
fn agreed<'a>(nodes: &'a [Fields], key: &str) -> Option<(&'a str, bool)> {
    let mut vals = nodes.iter().filter_map(|f| get(f, key));
    let first = vals.next()?;
    Some((first, vals.all(|v| v == first)))
}

fn render_section(s: &Section, nodes: &[Fields], missing: usize) -> String {
    let mut out = String::new();
    let name = match s {
        Section::Local(text) => return text.clone(),
        Section::Memory => {
            out.push_str("# Memory\r\n");
            memory(nodes, &mut out);
            "memory"
        }
        Section::Stats(own) => {
            out.push_str("# Stats\r\n");
            out.push_str(own);
            stats(nodes, &mut out);
            "stats"
        }
        Section::Commandstats => {
            out.push_str("# Commandstats\r\n");
            counters(nodes, "cmdstat_", &mut out);
            "commandstats"
        }
        Section::Errorstats => {
            out.push_str("# Errorstats\r\n");
            counters(nodes, "errorstat_", &mut out);
            "errorstats"
        }
        Section::Keyspace => {
            out.push_str("# Keyspace\r\n");
            keyspace(nodes, &mut out);
            "keyspace"
        }
    };
    if missing > 0 {
        let _ = write!(out, "{name}_nodes_missing:{missing}\r\n");
    }
    out
}

fn memory(nodes: &[Fields], out: &mut String) {
    for key in ["used_memory", "used_memory_rss", "used_memory_peak"] {
        let n = sum(nodes, key);
        let _ = write!(out, "{key}:{n}\r\n{key}_human:{}\r\n", bytes_to_human(n));
    }
    if let Some((max, same)) = agreed(nodes, "maxmemory") {
        let n: u64 = max.parse().unwrap_or(0);
        let _ = write!(
            out,
            "maxmemory:{n}\r\nmaxmemory_human:{}\r\nmaxmemory_consistent:{}\r\n",
            bytes_to_human(n),
            u8::from(same)
        );
        let limits: Vec<u64> = nodes
            .iter()
            .filter_map(|f| get(f, "maxmemory")?.parse().ok())
            .collect();
        let total = if limits.contains(&0) {
            0
        } else {
            limits.iter().sum()
        };
        let _ = write!(
            out,
            "total_maxmemory:{total}\r\ntotal_maxmemory_human:{}\r\n",
            bytes_to_human(total)
        );
    }
    if let Some((policy, same)) = agreed(nodes, "maxmemory_policy") {
        let _ = write!(
            out,
            "maxmemory_policy:{policy}\r\nmaxmemory_policy_consistent:{}\r\n",
            u8::from(same)
        );
    }
}

fn stats(nodes: &[Fields], out: &mut String) {
    for key in [
        "keyspace_hits",
        "keyspace_misses",
        "expired_keys",
        "evicted_keys",
    ] {
        let _ = write!(out, "{key}:{}\r\n", sum(nodes, key));
    }
    for key in ["total_commands_processed", "instantaneous_ops_per_sec"] {
        let _ = write!(out, "nodes_{key}:{}\r\n", sum(nodes, key));
    }
}

/// `prefix<name>:k=v,k=v` lines summed per name and field; `usec_per_call`
/// recomputed from the sums (Redis's `%.2f`).
fn counters(nodes: &[Fields], prefix: &str, out: &mut String) {
    let mut all: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for (k, v) in nodes.iter().flatten() {
        if !k.starts_with(prefix) {
            continue;
        }
        let entry = all.entry(k.as_str()).or_default();
        for (f, n) in v.split(',').filter_map(|kv| kv.split_once('=')) {
            if f == "usec_per_call" {
                if !entry.iter().any(|(g, _)| *g == f) {
                    entry.push((f, 0));
                }
                continue;
            }
            let n = n.parse::<u64>().unwrap_or(0);
            match entry.iter_mut().find(|(g, _)| *g == f) {
                Some((_, total)) => *total += n,
                None => entry.push((f, n)),
            }
        }
    }
    for (name, fields) in all {
        let calls = fields
            .iter()
            .find(|(f, _)| *f == "calls")
            .map_or(0, |x| x.1);
        let usec = fields.iter().find(|(f, _)| *f == "usec").map_or(0, |x| x.1);
        let line: Vec<String> = fields
            .iter()
            .map(|&(f, n)| match f {
                "usec_per_call" => format!("{f}={}", per_call(usec, calls)),
                _ => format!("{f}={n}"),
            })
            .collect();
        let _ = write!(out, "{name}:{}\r\n", line.join(","));
    }
}

fn per_call(usec: u64, calls: u64) -> String {
    let v = if calls == 0 {
        0.0
    } else {
        usec as f64 / calls as f64
    };
    format!("{v:.2}")
}

fn keyspace(nodes: &[Fields], out: &mut String) {
    // db -> (keys, expires, sum of avg_ttl * expires)
    let mut dbs: BTreeMap<u64, (u64, u64, u128)> = BTreeMap::new();
    for (k, v) in nodes.iter().flatten() {
        let Some(Ok(db)) = k.strip_prefix("db").map(str::parse::<u64>) else {
            continue;
        };
        let e = dbs.entry(db).or_default();
        let mut expires = 0;
        let mut ttl = 0;
        for kv in v.split(',') {
            match kv.split_once('=') {
                Some(("keys", n)) => e.0 += n.parse::<u64>().unwrap_or(0),
                Some(("expires", n)) => expires = n.parse::<u64>().unwrap_or(0),
                Some(("avg_ttl", n)) => ttl = n.parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
        e.1 += expires;
        e.2 += u128::from(ttl) * u128::from(expires);
    }
    for (db, (keys, expires, ttl)) in dbs {
        let avg = ttl.checked_div(u128::from(expires)).unwrap_or(0);
        let _ = write!(
            out,
            "db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n"
        );
    }
}

/// Redis's `bytesToHuman`: `1023B`, `1.00K`, `1.02M`, ... `P`.
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(u32, char); 5] = [(1, 'K'), (2, 'M'), (3, 'G'), (4, 'T'), (5, 'P')];
    if n < 1024 {
        return format!("{n}B");
    }
    for (pow, unit) in UNITS {
        if u128::from(n) < 1024u128.pow(pow + 1) {
            let d = n as f64 / 1024f64.powi(pow as i32);
            return format!("{d:.2}{unit}");
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(t: &str) -> PartReply {
        let mut b = BytesMut::new();
        encode::bulk(&mut b, t.as_bytes());
        Ok(b.freeze())
    }

    fn text(b: &Bytes) -> String {
        bulk_text(b).unwrap()
    }

    #[test]
    fn human_sizes_as_redis() {
        assert_eq!(bytes_to_human(0), "0B");
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1024), "1.00K");
        assert_eq!(bytes_to_human(1_069_547), "1.02M");
        assert_eq!(bytes_to_human(3 << 30), "3.00G");
        assert_eq!(bytes_to_human(5 << 40), "5.00T");
        assert_eq!(bytes_to_human(7 << 50), "7.00P");
        assert_eq!(bytes_to_human(u64::MAX), format!("{}B", u64::MAX));
    }

    #[test]
    fn memory_sums_and_settings() {
        let plan = InfoPlan {
            sections: vec![
                Section::Local("# Server\r\nx:1\r\n".into()),
                Section::Memory,
            ],
        };
        let a = bulk(
            "# Memory\r\nused_memory:1000\r\nmaxmemory:100\r\nmaxmemory_policy:noeviction\r\n",
        );
        let b = bulk(
            "# Memory\r\nused_memory:2000\r\nmaxmemory:200\r\nmaxmemory_policy:noeviction\r\n",
        );
        let out = text(&merge_info(&plan, &[a, b], Proto::Resp2));
        assert!(
            out.starts_with("# Server\r\nx:1\r\n\r\n# Memory\r\n"),
            "{out}"
        );
        for want in [
            "used_memory:3000\r\n",
            "used_memory_human:2.93K\r\n",
            "maxmemory:100\r\n",
            "maxmemory_consistent:0\r\n",
            "total_maxmemory:300\r\n",
            "maxmemory_policy:noeviction\r\n",
            "maxmemory_policy_consistent:1\r\n",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        assert!(
            out.ends_with("\r\n") && !out.ends_with("\r\n\r\n"),
            "{out:?}"
        );
    }

    #[test]
    fn counters_and_keyspace_are_summed() {
        let plan = InfoPlan {
            sections: vec![
                Section::Stats("total_commands_processed:9\r\n".into()),
                Section::Commandstats,
                Section::Keyspace,
            ],
        };
        let a = bulk(
            "# Stats\r\nkeyspace_hits:1\r\ntotal_commands_processed:5\r\n\r\n# Commandstats\r\ncmdstat_get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=1\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\n",
        );
        let b = bulk(
            "# Stats\r\nkeyspace_hits:2\r\ntotal_commands_processed:7\r\n\r\n# Commandstats\r\ncmdstat_get:calls=1,usec=1,usec_per_call=1.00,rejected_calls=1,failed_calls=0\r\ncmdstat_set:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\r\n# Keyspace\r\ndb0:keys=4,expires=3,avg_ttl=300\r\n",
        );
        let down = Err(crate::errors::BackendError::Down);
        let out = text(&merge_info(&plan, &[a, b, down], Proto::Resp2));
        for want in [
            "total_commands_processed:9\r\nkeyspace_hits:3\r\n",
            "nodes_total_commands_processed:12\r\n",
            "stats_nodes_missing:1\r\n",
            "cmdstat_get:calls=3,usec=11,usec_per_call=3.67,rejected_calls=1,failed_calls=1\r\n",
            "cmdstat_set:calls=1,usec=3,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n",
            "db0:keys=7,expires=4,avg_ttl=250\r\n",
            "keyspace_nodes_missing:1\r\n",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
    }

    #[test]
    fn resp3_gets_a_verbatim_string() {
        let plan = InfoPlan {
            sections: vec![Section::Keyspace],
        };
        let out = merge_info(&plan, &[bulk("# Keyspace\r\n")], Proto::Resp3);
        assert_eq!(&out[..], b"=16\r\ntxt:# Keyspace\r\n\r\n");
    }
}
