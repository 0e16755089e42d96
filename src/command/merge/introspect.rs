//! Merging the nodes' CONFIG GET, SLOWLOG GET and LATENCY LATEST replies.
//!
//! - CONFIG GET: one value per parameter. Where the nodes disagree, the first node's
//!   value (config order) is the answer; parameters that are the proxy's own (see
//!   `server::info::introspect`) get the proxy's value. The order is the first
//!   node's. A map for RESP3 clients, a flat array for RESP2, as Redis.
//! - SLOWLOG GET: every node's entries, newest first (by time, then by node order
//!   and id), cut to the count asked for; each entry's client-name field (the sixth)
//!   is replaced by the name of the node that logged it (the client address and name
//!   a node sees are the proxy's own connection's anyway). Ids are the node's own.
//! - LATENCY LATEST: every node's events, in node order, each event name prefixed
//!   with its node: `node0/command`.

use crate::errors::BackendError;
use crate::resp::reply::{array_elements, integer, map_elements};
use crate::resp::{Proto, encode};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

fn invalid() -> Bytes {
    Bytes::from_static(BackendError::Protocol.wire())
}

/// The content of a bulk or simple string reply.
fn string_body(raw: &[u8]) -> Option<&[u8]> {
    match raw.first()? {
        b'+' => raw.get(1..raw.len().checked_sub(2)?),
        b'$' => {
            let start = raw.iter().position(|&c| c == b'\n')? + 1;
            raw.get(start..raw.len().checked_sub(2)?)
        }
        _ => None,
    }
}

/// CONFIG GET over the nodes; `own` holds the proxy's own parameters and values.
pub fn config_get(parts: &[&Bytes], own: &[(&'static str, Bytes)], proto: Proto) -> Bytes {
    let mut pairs: Vec<(Bytes, Bytes)> = Vec::new();
    for p in parts {
        let Some(elems) = array_elements(p).or_else(|| map_elements(p)) else {
            return invalid();
        };
        for kv in elems.chunks(2) {
            let [k, v] = kv else { return invalid() };
            let key = p.slice(k.clone());
            if !pairs.iter().any(|(seen, _)| *seen == key) {
                pairs.push((key, p.slice(v.clone())));
            }
        }
    }
    let mut out = BytesMut::new();
    encode::map_header(&mut out, proto, pairs.len());
    for (k, v) in &pairs {
        out.extend_from_slice(k);
        let name = string_body(k).unwrap_or_default();
        match own
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        {
            Some((_, value)) => encode::bulk(&mut out, value),
            None => out.extend_from_slice(v),
        }
    }
    out.freeze()
}

/// One entry of a node's reply: the node's index, its bytes, its element ranges.
type Entry = (usize, Bytes, Vec<std::ops::Range<usize>>);

/// Each node's reply is an array of arrays (SLOWLOG GET, LATENCY LATEST): every
/// entry as (node, its bytes, its element ranges); `None` when one is not.
fn entries_of(parts: &[&Bytes]) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    for (node, p) in parts.iter().enumerate() {
        for e in array_elements(p)? {
            let raw = p.slice(e);
            let fields = array_elements(&raw)?.into_iter().collect();
            out.push((node, raw, fields));
        }
    }
    Some(out)
}

/// SLOWLOG GET over the nodes (part `i` from node `names[i]`), at most `count`
/// entries.
pub fn slowlog(parts: &[&Bytes], names: &[Arc<str>], count: usize) -> Bytes {
    // (time, node, id, the part, the entry's element ranges)
    let Some(all) = entries_of(parts) else {
        return invalid();
    };
    let mut entries = Vec::new();
    for (node, raw, fields) in all {
        let int = |i: usize| fields.get(i).and_then(|r| integer(&raw[r.clone()]));
        let (Some(id), Some(time)) = (int(0), int(1)) else {
            return invalid();
        };
        entries.push((time, node, id, raw, fields));
    }
    entries.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)));
    entries.truncate(count);
    let mut out = BytesMut::new();
    encode::array_header(&mut out, entries.len());
    for (_, node, _, raw, fields) in entries {
        let name = names.get(node).map_or("", |n| n);
        encode::array_header(&mut out, fields.len().max(6));
        for r in fields.iter().take(5) {
            out.extend_from_slice(&raw[r.clone()]);
        }
        for _ in fields.len()..5 {
            encode::bulk(&mut out, b"");
        }
        encode::bulk(&mut out, name.as_bytes());
        for r in fields.iter().skip(6) {
            out.extend_from_slice(&raw[r.clone()]);
        }
    }
    out.freeze()
}

/// LATENCY LATEST over the nodes: every event, its name prefixed `node/`.
pub fn latency_latest(parts: &[&Bytes], names: &[Arc<str>]) -> Bytes {
    let mut out = BytesMut::new();
    let mut events = Vec::new();
    let Some(all) = entries_of(parts) else {
        return invalid();
    };
    for (node, raw, fields) in all {
        let Some(event) = fields.first().and_then(|r| string_body(&raw[r.clone()])) else {
            return invalid();
        };
        let name = names.get(node).map_or("", |n| n);
        let mut label = Vec::with_capacity(name.len() + 1 + event.len());
        label.extend_from_slice(name.as_bytes());
        label.push(b'/');
        label.extend_from_slice(event);
        let mut one = BytesMut::new();
        encode::array_header(&mut one, fields.len());
        encode::bulk(&mut one, &label);
        for r in fields.iter().skip(1) {
            one.extend_from_slice(&raw[r.clone()]);
        }
        events.push(one);
    }
    encode::array_header(&mut out, events.len());
    events.iter().for_each(|e| out.extend_from_slice(e));
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn names() -> Vec<Arc<str>> {
        vec![Arc::from("n0"), Arc::from("n1")]
    }

    #[test]
    fn config_get_first_node_wins_and_own_values_replace() {
        let a = b(b"*4\r\n$9\r\nmaxmemory\r\n$1\r\n5\r\n$9\r\ndatabases\r\n$2\r\n16\r\n");
        let c = b(b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n7\r\n");
        let own = [("databases", Bytes::from_static(b"1"))];
        let got = config_get(&[&a, &c], &own, Proto::Resp2);
        assert_eq!(
            &got[..],
            b"*4\r\n$9\r\nmaxmemory\r\n$1\r\n5\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"
        );
        let m = b(b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n5\r\n");
        let got3 = config_get(&[&m, &m], &own, Proto::Resp3);
        assert_eq!(&got3[..], b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n5\r\n");
    }

    #[test]
    fn slowlog_newest_first_marked_with_the_node() {
        let entry = |id: u8, t: u8| -> Vec<u8> {
            format!(
                "*6\r\n:{id}\r\n:{t}\r\n:10\r\n*1\r\n$3\r\nget\r\n$9\r\n127.0.0.1\r\n$0\r\n\r\n"
            )
            .into_bytes()
        };
        let mut a = b"*2\r\n".to_vec();
        a.extend(entry(1, 50));
        a.extend(entry(0, 10));
        let mut c = b"*1\r\n".to_vec();
        c.extend(entry(7, 30));
        let (a, c) = (Bytes::from(a), Bytes::from(c));
        let got = slowlog(&[&a, &c], &names(), 2);
        let want = "*2\r\n*6\r\n:1\r\n:50\r\n:10\r\n*1\r\n$3\r\nget\r\n$9\r\n127.0.0.1\r\n$2\r\nn0\r\n*6\r\n:7\r\n:30\r\n:10\r\n*1\r\n$3\r\nget\r\n$9\r\n127.0.0.1\r\n$2\r\nn1\r\n";
        assert_eq!(String::from_utf8_lossy(&got), want);
        assert_eq!(&slowlog(&[&a, &c], &names(), 0)[..], b"*0\r\n");
    }

    #[test]
    fn latency_latest_prefixes_events() {
        let a = b(b"*1\r\n*4\r\n$7\r\ncommand\r\n:100\r\n:250\r\n:250\r\n");
        let c = b(b"*0\r\n");
        let got = latency_latest(&[&a, &c], &names());
        assert_eq!(
            &got[..],
            b"*1\r\n*4\r\n$10\r\nn0/command\r\n:100\r\n:250\r\n:250\r\n"
        );
        assert!(latency_latest(&[&b(b"+OK\r\n")], &names()).starts_with(b"-ERR"));
    }
}
