//! Splitting a multi-key command into one sub-request per node.

use super::class::SplitKind;
use crate::resp::{Request, encode};
use bytes::{Bytes, BytesMut};

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

/// Splits `req` whose keys are `keys` (argument indices) placed on `nodes` (same
/// order). `kind` tells how many arguments each key carries (MSET: key + value).
pub fn split(req: &Request, kind: SplitKind, keys: &[usize], nodes: &[usize]) -> Split {
    let per_key = if kind == SplitKind::Mset { 2 } else { 1 };
    // Groups: node → argument indices of its keys.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut positions = Vec::with_capacity(keys.len());
    for (&k, &node) in keys.iter().zip(nodes) {
        let g = match groups.iter().position(|(n, _)| *n == node) {
            Some(g) => g,
            None => {
                groups.push((node, Vec::new()));
                groups.len() - 1
            }
        };
        positions.push((g as u32, groups[g].1.len() as u32));
        groups[g].1.push(k);
    }
    let name = req.arg(0);
    let parts = groups
        .into_iter()
        .map(|(node, args)| Part {
            node,
            frame: encode_part(req, name, &args, per_key),
        })
        .collect();
    Split { parts, positions }
}

fn encode_part(req: &Request, name: &[u8], keys: &[usize], per_key: usize) -> Bytes {
    let len: usize = keys
        .iter()
        .map(|&k| {
            (0..per_key)
                .map(|j| req.arg(k + j).len() + 16)
                .sum::<usize>()
        })
        .sum();
    let mut b = BytesMut::with_capacity(len + name.len() + 32);
    encode::array_header(&mut b, 1 + keys.len() * per_key);
    encode::bulk(&mut b, name);
    for &k in keys {
        for j in 0..per_key {
            encode::bulk(&mut b, req.arg(k + j));
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
        let s = split(&req, SplitKind::Mget, &[1, 2, 3, 4], &[5, 7, 5, 9]);
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
        let s = split(&req, SplitKind::Mset, &[1, 3], &[0, 1]);
        assert_eq!(
            &s.parts[1].frame[..],
            b"*3\r\n$4\r\nMSET\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
    }
}
