//! The slot map of a cluster: its shards (a primary, its replicas, its slot ranges),
//! parsed from a `CLUSTER SHARDS` reply or, on servers without it, `CLUSTER SLOTS`.
//! Pure functions over RESP2 bytes; no IO.

use super::slot::{SLOTS, SlotTable};
use crate::resp::reply::{array_elements, integer};

/// One shard: a primary and the slots it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The primary's `host:port`.
    pub primary: String,
    /// The primary's node id (empty when the reply did not give it).
    pub id: String,
    /// Slot ranges served, inclusive, sorted.
    pub ranges: Vec<(u16, u16)>,
    /// The replicas' `host:port`.
    pub replicas: Vec<String>,
}

/// Which nodes serve which slots. Shards are sorted by primary address, so two maps
/// of the same cluster state compare equal whatever order a node listed them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMap {
    /// Shards with a reachable primary address.
    pub shards: Vec<Shard>,
}

/// Why a reply gives no slot map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The reply is not the documented shape.
    #[error("unexpected {0} reply shape")]
    Shape(&'static str),
    /// The reply lists no slot at all (a node not yet in a cluster).
    #[error("no slots assigned")]
    Empty,
}

impl SlotMap {
    /// The slot table over the shards' primaries (index = position in `shards`).
    pub fn table(&self) -> SlotTable {
        let mut t = SlotTable::default();
        for (i, s) in self.shards.iter().enumerate() {
            for &(a, b) in &s.ranges {
                t.assign(a, b, i);
            }
        }
        t
    }

    /// Slots served by some primary.
    pub fn covered(&self) -> usize {
        SLOTS - self.table().unassigned()
    }

    fn finish(mut shards: Vec<Shard>) -> Result<SlotMap, MapError> {
        for s in &mut shards {
            s.ranges.sort_unstable();
            s.replicas.sort_unstable();
        }
        shards.sort_by(|a, b| a.primary.cmp(&b.primary));
        shards.dedup_by(|later, first| {
            // One primary listed twice (CLUSTER SLOTS lists it per range).
            if later.primary != first.primary {
                return false;
            }
            first.ranges.append(&mut later.ranges);
            first.ranges.sort_unstable();
            true
        });
        if shards.iter().all(|s| s.ranges.is_empty()) {
            return Err(MapError::Empty);
        }
        Ok(SlotMap { shards })
    }
}

/// The elements of an array reply as byte slices.
fn items(reply: &[u8]) -> Option<Vec<&[u8]>> {
    Some(
        array_elements(reply)?
            .into_iter()
            .map(|r| &reply[r])
            .collect(),
    )
}

/// The text of a bulk or simple string reply.
fn text(reply: &[u8]) -> Option<&str> {
    let body = match reply.first()? {
        b'+' => reply.get(1..reply.len().checked_sub(2)?)?,
        b'$' => {
            let start = reply.iter().position(|&c| c == b'\n')? + 1;
            reply.get(start..reply.len().checked_sub(2)?)?
        }
        _ => return None,
    };
    std::str::from_utf8(body).ok()
}

fn slot_of(reply: &[u8]) -> Option<u16> {
    integer(reply)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&s| (s as usize) < SLOTS)
}

/// `host:port` from a host and port; an empty or `?` host (the node does not know
/// its own address) is the one the reply came from.
fn endpoint(host: &str, port: i64, asked: &str) -> String {
    let host = if host.is_empty() || host == "?" {
        asked.rsplit_once(':').map_or(asked, |(h, _)| h)
    } else {
        host
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parses a `CLUSTER SHARDS` reply (RESP2) from the node at `asked`. With `tls`,
/// nodes are reached on their `tls-port`.
pub fn parse_shards(reply: &[u8], asked: &str, tls: bool) -> Result<SlotMap, MapError> {
    const SHAPE: MapError = MapError::Shape("CLUSTER SHARDS");
    let mut shards = Vec::new();
    for shard in items(reply).ok_or(SHAPE)? {
        let fields = items(shard).ok_or(SHAPE)?;
        let mut ranges = Vec::new();
        let mut nodes = Vec::new();
        for kv in fields.chunks_exact(2) {
            match text(kv[0]) {
                Some("slots") => {
                    let s = items(kv[1]).ok_or(SHAPE)?;
                    for pair in s.chunks_exact(2) {
                        let (a, b) = (slot_of(pair[0]), slot_of(pair[1]));
                        ranges.push((a.ok_or(SHAPE)?, b.ok_or(SHAPE)?));
                    }
                }
                Some("nodes") => nodes = items(kv[1]).ok_or(SHAPE)?,
                _ => {}
            }
        }
        let nodes: Vec<ShardNode> = nodes
            .into_iter()
            .filter_map(|n| ShardNode::parse(n, asked, tls))
            .collect();
        // The serving primary: one that is not failed, else whichever is listed.
        let primary = nodes
            .iter()
            .filter(|n| n.primary)
            .max_by_key(|n| n.healthy)
            .ok_or(SHAPE)?;
        shards.push(Shard {
            primary: primary.addr.clone(),
            id: primary.id.clone(),
            ranges,
            replicas: nodes
                .iter()
                .filter(|n| !n.primary)
                .map(|n| n.addr.clone())
                .collect(),
        });
    }
    SlotMap::finish(shards)
}

/// One node of a `CLUSTER SHARDS` entry.
struct ShardNode {
    addr: String,
    id: String,
    primary: bool,
    healthy: bool,
}

impl ShardNode {
    fn parse(node: &[u8], asked: &str, tls: bool) -> Option<ShardNode> {
        let f = items(node)?;
        let (mut host, mut ip, mut id) = ("", "", "");
        let (mut port, mut tls_port) = (None, None);
        let (mut primary, mut healthy) = (false, true);
        for kv in f.chunks_exact(2) {
            match text(kv[0])? {
                "endpoint" => host = text(kv[1]).unwrap_or(""),
                "ip" => ip = text(kv[1]).unwrap_or(""),
                "id" => id = text(kv[1]).unwrap_or(""),
                "port" => port = integer(kv[1]),
                "tls-port" => tls_port = integer(kv[1]),
                "role" => primary = text(kv[1]) == Some("master"),
                "health" => healthy = text(kv[1]) != Some("failed"),
                _ => {}
            }
        }
        let port = if tls { tls_port.or(port) } else { port }?;
        let host = if host.is_empty() || host == "?" {
            ip
        } else {
            host
        };
        Some(ShardNode {
            addr: endpoint(host, port, asked),
            id: id.to_string(),
            primary,
            healthy,
        })
    }
}

/// Parses a `CLUSTER SLOTS` reply (RESP2) from the node at `asked`: one entry per
/// slot range, the primary first, then its replicas.
pub fn parse_slots(reply: &[u8], asked: &str) -> Result<SlotMap, MapError> {
    const SHAPE: MapError = MapError::Shape("CLUSTER SLOTS");
    let mut shards = Vec::new();
    for range in items(reply).ok_or(SHAPE)? {
        let e = items(range).ok_or(SHAPE)?;
        if e.len() < 3 {
            return Err(SHAPE);
        }
        let (a, b) = (slot_of(e[0]).ok_or(SHAPE)?, slot_of(e[1]).ok_or(SHAPE)?);
        let mut nodes = e[2..].iter().map(|n| {
            let f = items(n).ok_or(SHAPE)?;
            let host = f.first().and_then(|h| text(h)).unwrap_or("");
            let port = f.get(1).and_then(|p| integer(p)).ok_or(SHAPE)?;
            let id = f.get(2).and_then(|i| text(i)).unwrap_or("");
            Ok((endpoint(host, port, asked), id.to_string()))
        });
        let (primary, id) = nodes.next().ok_or(SHAPE)??;
        let replicas = nodes.map(|n| n.map(|(a, _)| a)).collect::<Result<_, _>>()?;
        shards.push(Shard {
            primary,
            id,
            ranges: vec![(a, b)],
            replicas,
        });
    }
    SlotMap::finish(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from redis-server 7.0.15 (3 primaries, one replica each).
    const SHARDS: &[u8] = include_bytes!("testdata/shards.resp");
    const SLOTS_REPLY: &[u8] = include_bytes!("testdata/slots.resp");

    #[test]
    fn shards_and_slots_give_the_same_primaries_and_ranges() {
        let a = parse_shards(SHARDS, "127.0.0.1:31001", false).unwrap();
        let b = parse_slots(SLOTS_REPLY, "127.0.0.1:31001").unwrap();
        let view = |m: &SlotMap| -> Vec<(String, Vec<(u16, u16)>)> {
            m.shards
                .iter()
                .map(|s| (s.primary.clone(), s.ranges.clone()))
                .collect()
        };
        assert_eq!(view(&a), view(&b));
        assert_eq!(a.shards[0].primary, "127.0.0.1:31001");
        assert_eq!(a.shards[0].ranges, vec![(0, 5460)]);
        assert_eq!(a.shards[0].replicas, vec!["127.0.0.1:31006".to_string()]);
        assert_eq!(a.covered(), SLOTS);
        assert_eq!(a.table().node_of_slot(12182), Some(2));
    }

    #[test]
    fn slots_merges_ranges_of_one_primary_and_fills_unknown_hosts() {
        let reply = b"*2\r\n*3\r\n:0\r\n:99\r\n*2\r\n$0\r\n\r\n:7001\r\n*3\r\n:200\r\n:299\r\n*2\r\n$0\r\n\r\n:7001\r\n";
        let m = parse_slots(reply, "10.0.0.5:7001").unwrap();
        assert_eq!(m.shards.len(), 1);
        assert_eq!(m.shards[0].primary, "10.0.0.5:7001");
        assert_eq!(m.shards[0].ranges, vec![(0, 99), (200, 299)]);
        assert_eq!(m.covered(), 200);
    }

    #[test]
    fn bad_or_empty_replies_are_errors() {
        assert_eq!(parse_slots(b"*0\r\n", "h:1"), Err(MapError::Empty));
        assert!(parse_slots(b"-ERR unknown\r\n", "h:1").is_err());
        assert!(parse_shards(b"*1\r\n:5\r\n", "h:1", false).is_err());
        assert!(
            parse_slots(
                b"*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n$1\r\nh\r\n:1\r\n",
                "h:1"
            )
            .is_err()
        );
        for cut in 0..SHARDS.len() {
            // Never a panic on a cut reply.
            let _ = parse_shards(&SHARDS[..cut], "h:1", false);
        }
    }
}
