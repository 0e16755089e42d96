//! Splitting a multi-key command into one sub-request per node.

use super::class::SplitKind;
use crate::resp::{Request, encode};
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

/// One sub-request: the node it goes to and its bytes.
#[derive(Debug)]
pub struct Part {
    /// Node index.
    pub node: usize,
    /// The sub-request.
    pub frame: Bytes,
}

/// The sub-requests of a split command and where each key's answer will be.
#[derive(Debug)]
pub struct Split {
    /// One per node touched, in order of first appearance.
    pub parts: Vec<Part>,
    /// For MGET: for each key of the request in order, (part, index in that part's reply).
    pub positions: Vec<(u32, u32)>,
}

/// Splits `req` whose keys are `keys`: (argument index, node) pairs in request
/// order. `kind` tells how many arguments each key carries (MSET: key + value).
pub fn split(req: &Request, kind: SplitKind, keys: &[(usize, usize)]) -> Split {
    let per_key = if kind == SplitKind::Mset { 2 } else { 1 };
    // Group g goes to nodes[g] and carries counts[g] keys.
    let mut nodes: SmallVec<[usize; 8]> = SmallVec::new();
    let mut counts: SmallVec<[u32; 8]> = SmallVec::new();
    let mut positions = Vec::with_capacity(keys.len());
    for &(_, node) in keys {
        let g = match nodes.iter().position(|&n| n == node) {
            Some(g) => g,
            None => {
                nodes.push(node);
                counts.push(0);
                nodes.len() - 1
            }
        };
        positions.push((g as u32, counts[g]));
        counts[g] += 1;
    }
    let parts = (0..nodes.len())
        .map(|g| {
            // The arguments of group g's keys, in request order.
            let args = keys
                .iter()
                .zip(&positions)
                .filter(|(_, (pg, _))| *pg as usize == g)
                .map(|(&(k, _), _)| k);
            Part {
                node: nodes[g],
                frame: encode_part(req, args, counts[g] as usize, per_key),
            }
        })
        .collect();
    Split { parts, positions }
}

/// Encodes `MGET k1 k2 ...` (or MSET with values) for `count` keys at `args`,
/// copying each argument with its header from the client's request.
fn encode_part<I>(req: &Request, args: I, count: usize, per_key: usize) -> Bytes
where
    I: Iterator<Item = usize> + Clone,
{
    let name = req.raw_arg(0);
    let len: usize = args
        .clone()
        .map(|k| {
            (0..per_key)
                .map(|j| req.raw_arg(k + j).len())
                .sum::<usize>()
        })
        .sum();
    let argc = 1 + count * per_key;
    // Sized exactly: see encode::array_header_len.
    let mut b = BytesMut::with_capacity(encode::array_header_len(argc) + name.len() + len);
    encode::array_header(&mut b, argc);
    b.extend_from_slice(name);
    for k in args {
        for j in 0..per_key {
            b.extend_from_slice(req.raw_arg(k + j));
        }
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_node_keeping_positions() {
        let req = Request::from_args(&["MGET", "a", "b", "c", "d"]);
        let s = split(&req, SplitKind::Mget, &[(1, 5), (2, 7), (3, 5), (4, 9)]);
        assert_eq!(s.parts.len(), 3);
        assert_eq!(s.parts[0].node, 5);
        assert_eq!(
            &s.parts[0].frame[..],
            b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nc\r\n"
        );
        assert_eq!(s.positions, vec![(0, 0), (1, 0), (0, 1), (2, 0)]);
    }

    #[test]
    fn mset_carries_values() {
        let req = Request::from_args(&["MSET", "a", "1", "b", "2"]);
        let s = split(&req, SplitKind::Mset, &[(1, 0), (3, 1)]);
        assert_eq!(
            &s.parts[1].frame[..],
            b"*3\r\n$4\r\nMSET\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
    }
}
