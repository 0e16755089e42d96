//! INFO's keyspace section summed over the nodes' `INFO keyspace` replies.

use crate::resp::encode;
use crate::resp::reply::reply_len;
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Appends the keyspace section summed over the nodes' `INFO keyspace` replies to
/// `local`; a node that failed is counted in `keyspace_nodes_missing`.
pub fn merge_keyspace(
    local: &Bytes,
    parts: &[Result<Bytes, crate::errors::BackendError>],
) -> Bytes {
    let mut dbs: BTreeMap<u64, [u64; 2]> = BTreeMap::new();
    let mut missing = 0;
    for p in parts {
        match p.as_ref().ok().and_then(|b| bulk_text(b)) {
            Some(text) => add_keyspace(&text, &mut dbs),
            None => missing += 1,
        }
    }
    let mut text = String::from_utf8_lossy(local).into_owned();
    text.push_str("# Keyspace\r\n");
    for (db, [keys, expires]) in dbs {
        let _ = write!(text, "db{db}:keys={keys},expires={expires}\r\n");
    }
    if missing > 0 {
        let _ = write!(text, "keyspace_nodes_missing:{missing}\r\n");
    }
    let mut b = BytesMut::new();
    encode::bulk(&mut b, text.as_bytes());
    b.freeze()
}

/// The text of a bulk (`$`) or verbatim (`=`) string reply.
fn bulk_text(b: &[u8]) -> Option<String> {
    if !matches!(b.first(), Some(b'$' | b'=')) || reply_len(b).ok()?? != b.len() {
        return None;
    }
    let start = b.iter().position(|&c| c == b'\n')? + 1;
    let body = b.get(start..b.len() - 2)?;
    let body = if b[0] == b'=' { body.get(4..)? } else { body };
    Some(String::from_utf8_lossy(body).into_owned())
}

fn add_keyspace(text: &str, dbs: &mut BTreeMap<u64, [u64; 2]>) {
    for line in text.lines() {
        let Some((db, rest)) = line
            .trim()
            .strip_prefix("db")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let Ok(db) = db.parse::<u64>() else { continue };
        let e = dbs.entry(db).or_default();
        for kv in rest.split(',') {
            match kv.split_once('=') {
                Some(("keys", v)) => e[0] += v.parse::<u64>().unwrap_or(0),
                Some(("expires", v)) => e[1] += v.parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_keyspaces() {
        let bulk = |t: &str| {
            let mut b = BytesMut::new();
            encode::bulk(&mut b, t.as_bytes());
            b.freeze()
        };
        let a = bulk("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=5\r\n");
        let b = bulk("# Keyspace\r\ndb0:keys=4,expires=0\r\n");
        let out = merge_keyspace(
            &Bytes::from_static(b"# Server\r\n\r\n"),
            &[Ok(a), Ok(b), Err(crate::errors::BackendError::Down)],
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("db0:keys=7,expires=1\r\n"), "{text}");
        assert!(text.contains("keyspace_nodes_missing:1"), "{text}");
    }
}
