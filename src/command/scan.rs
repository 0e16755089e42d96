//! SCAN across nodes with one proxy cursor: the low bits name the node being
//! walked, the high bits carry that node's own cursor. Node 0 is walked first; when
//! a node's cursor comes back to 0 the walk moves to the next node, and the proxy
//! answers cursor 0 after the last one. With a stable topology every key is
//! returned by exactly one node, so never twice.

use crate::resp::reply::{array_elements, parse_int};
use crate::resp::{Request, encode};
use bytes::{Bytes, BytesMut};

/// Bits needed to name one of `nodes` nodes.
fn node_bits(nodes: usize) -> u32 {
    usize::BITS - nodes.saturating_sub(1).leading_zeros()
}

/// Splits a proxy cursor into (node index, node cursor); `None` if invalid.
pub fn decode_cursor(cursor: &[u8], nodes: usize) -> Option<(usize, u64)> {
    let c: u64 = std::str::from_utf8(cursor).ok()?.parse().ok()?;
    let bits = node_bits(nodes);
    let idx = (c & ((1u64 << bits) - 1)) as usize;
    (idx < nodes).then_some((idx, c >> bits))
}

/// The proxy cursor after node `idx` answered `node_cursor` (0 = walk finished).
pub fn next_cursor(idx: usize, node_cursor: u64, nodes: usize) -> u64 {
    let bits = node_bits(nodes);
    match (node_cursor, idx + 1 < nodes) {
        (0, true) => (idx + 1) as u64,
        (0, false) => 0,
        (c, _) => (c << bits) | idx as u64,
    }
}

/// The SCAN request for one node: the same arguments with the node's cursor.
pub fn node_request(req: &Request, node_cursor: u64) -> Bytes {
    let mut args: Vec<&[u8]> = (0..req.argc()).map(|i| req.arg(i)).collect();
    let c = node_cursor.to_string();
    args[1] = c.as_bytes();
    Request::from_args(&args).frame().clone()
}

/// Rewrites a node's `[cursor, keys]` reply with the proxy cursor.
pub fn rewrite_reply(reply: &Bytes, idx: usize, nodes: usize) -> Option<Bytes> {
    let elems = array_elements(reply)?;
    let (cur, keys) = (elems.first()?.clone(), elems.get(1)?.clone());
    let cur_bytes = &reply[cur];
    let nl = cur_bytes.iter().position(|&b| b == b'\n')?;
    let text = cur_bytes.get(nl + 1..cur_bytes.len().checked_sub(2)?)?;
    let node_cursor = u64::try_from(parse_int(text).ok()?).ok()?;
    let mut out = BytesMut::with_capacity(reply.len() + 24);
    encode::array_header(&mut out, 2);
    encode::bulk(
        &mut out,
        next_cursor(idx, node_cursor, nodes).to_string().as_bytes(),
    );
    out.extend_from_slice(&reply[keys]);
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_walks_every_node_once() {
        for nodes in [1, 2, 3, 5, 100] {
            assert_eq!(decode_cursor(b"0", nodes), Some((0, 0)));
            for idx in 0..nodes {
                for c in [0u64, 1, 7, 1 << 40] {
                    let next = next_cursor(idx, c, nodes);
                    if c == 0 && idx + 1 == nodes {
                        assert_eq!(next, 0);
                    } else if c == 0 {
                        assert_eq!(
                            decode_cursor(next.to_string().as_bytes(), nodes),
                            Some((idx + 1, 0))
                        );
                    } else {
                        assert_eq!(
                            decode_cursor(next.to_string().as_bytes(), nodes),
                            Some((idx, c))
                        );
                    }
                }
            }
        }
        assert_eq!(decode_cursor(b"x", 3), None);
        assert_eq!(decode_cursor(b"3", 3), None);
    }

    #[test]
    fn rewrites_reply() {
        let r = Bytes::from_static(b"*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n");
        let out = rewrite_reply(&r, 1, 3).unwrap();
        assert_eq!(&out[..], b"*2\r\n$2\r\n69\r\n*1\r\n$1\r\nk\r\n");
        let end = rewrite_reply(&Bytes::from_static(b"*2\r\n$1\r\n0\r\n*0\r\n"), 2, 3).unwrap();
        assert_eq!(&end[..], b"*2\r\n$1\r\n0\r\n*0\r\n");
    }
}
