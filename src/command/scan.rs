//! SCAN across nodes with one proxy cursor that survives topology changes.
//!
//! The proxy cursor is a 64-bit unsigned decimal: the low [`TAG_BITS`] bits are the
//! *scan tag* of the node being walked, the high [`NODE_CURSOR_BITS`] bits carry that
//! node's own cursor. A node's tag comes from a hash of its ring identity (see
//! [`assign_tags`]), so it does not depend on the node's place in the config or on
//! the node count, and nodes are walked in tag order. Tag 0 is never a node's: the
//! cursor `0` starts the walk.
//!
//! Across a reload or an ejection, an old cursor still names its node by tag: the
//! walk continues on that node if it is still there; if it is gone (removed, or off
//! the ring with `eject: true`), the walk goes on with the next node in tag order
//! from its start. So a key on a node that is there for the whole walk is returned
//! at least once (a node that joins mid-walk is walked only if its tag comes later;
//! keys may come back twice, as Redis allows).
//!
//! Redis node cursors use at most the bits of the dict size; a node cursor that
//! does not fit in [`NODE_CURSOR_BITS`] bits is answered with a clear error, never
//! with a wrong cursor.

use crate::resp::reply::{array_elements, parse_int};
use crate::resp::{Request, encode};
use bytes::{Bytes, BytesMut};
use std::hash::Hasher;

/// Bits of the proxy cursor that name the node (its scan tag).
pub const TAG_BITS: u32 = 16;
/// Bits of the proxy cursor left for the node's own cursor. Redis's cursor is below
/// the size of its key table, so 48 bits hold the cursor of any real node.
pub const NODE_CURSOR_BITS: u32 = 64 - TAG_BITS;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
const LAST_TAG: u16 = u16::MAX;

/// The preferred scan tag of a node: 1..=65535 from the FNV-1a hash of its ring
/// identity (0 is the start of a walk, never a node).
pub fn tag_of(identity: &[u8]) -> u16 {
    let mut h = fnv::FnvHasher::default();
    h.write(identity);
    (1 + h.finish() % u64::from(LAST_TAG)) as u16
}

/// The tag of each node (by ring identity, in the caller's order), unique among
/// them: each node gets [`tag_of`] its identity; when two collide (about one pair in
/// 65,535), the one with the larger identity takes the next free tag. A node's tag
/// is thus stable across reloads unless a node with a colliding tag joins or leaves.
pub fn assign_tags(identities: &[&[u8]]) -> Vec<u16> {
    let mut by_tag: Vec<(u16, &[u8], usize)> = identities
        .iter()
        .enumerate()
        .map(|(i, id)| (tag_of(id), *id, i))
        .collect();
    by_tag.sort_unstable();
    let mut used = std::collections::HashSet::with_capacity(identities.len());
    let mut tags = vec![0; identities.len()];
    for (mut t, _, i) in by_tag {
        while !used.insert(t) {
            t = if t == LAST_TAG { 1 } else { t + 1 };
        }
        tags[i] = t;
    }
    tags
}

/// The walk order of a topology: (tag, node index), sorted by tag.
pub fn walk_order(tags: &[u16]) -> Vec<(u16, usize)> {
    let mut order: Vec<(u16, usize)> = tags.iter().copied().zip(0..).collect();
    order.sort_unstable();
    order
}

/// Splits a proxy cursor into (tag, node cursor); `None` if it is not one the proxy
/// hands out (not a u64, or a node cursor without a tag).
pub fn decode_cursor(cursor: &[u8]) -> Option<(u16, u64)> {
    let c: u64 = std::str::from_utf8(cursor).ok()?.parse().ok()?;
    let tag = (c & TAG_MASK) as u16;
    let node_cursor = c >> TAG_BITS;
    (tag != 0 || node_cursor == 0).then_some((tag, node_cursor))
}

/// One SCAN step to send: which node, with which cursor, and the tag to hand out
/// when that node's walk ends (0: it is the last node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Node index in the topology.
    pub node: usize,
    /// The node's tag.
    pub tag: u16,
    /// The cursor to send to the node.
    pub node_cursor: u64,
    /// The tag of the next node in the walk, 0 when none.
    pub next_tag: u16,
}

/// Where the walk goes for the cursor (`tag`, `node_cursor`), over `order` (see
/// [`walk_order`]) restricted to the nodes `walked` accepts; `None`: walk finished.
pub fn resolve(
    order: &[(u16, usize)],
    walked: impl Fn(usize) -> bool,
    tag: u16,
    node_cursor: u64,
) -> Option<Step> {
    let mut live = order.iter().filter(|&&(_, i)| walked(i));
    let (&(t, node), cursor) = match live.clone().find(|&&(t, _)| t >= tag) {
        Some(&(t, i)) if t == tag && tag != 0 => (&(t, i), node_cursor),
        _ => (live.find(|&&(t, _)| t > tag)?, 0),
    };
    let next_tag = order
        .iter()
        .find(|&&(n, i)| n > t && walked(i))
        .map_or(0, |&(n, _)| n);
    Some(Step {
        node,
        tag: t,
        node_cursor: cursor,
        next_tag,
    })
}

/// Why a node's SCAN reply cannot be passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanReplyError {
    /// Not a `[cursor, keys]` array.
    Invalid,
    /// The node's cursor needs more than [`NODE_CURSOR_BITS`] bits.
    TooBig,
}

/// The proxy cursor after the node of `tag` answered `node_cursor`.
pub fn next_cursor(tag: u16, node_cursor: u64, next_tag: u16) -> Result<u64, ScanReplyError> {
    match node_cursor {
        0 => Ok(u64::from(next_tag)),
        c if c >> NODE_CURSOR_BITS != 0 => Err(ScanReplyError::TooBig),
        c => Ok((c << TAG_BITS) | u64::from(tag)),
    }
}

/// The SCAN request for one node: the same arguments with the node's cursor.
pub fn node_request(req: &Request, node_cursor: u64) -> Bytes {
    let mut args: Vec<&[u8]> = (0..req.argc()).map(|i| req.arg(i)).collect();
    let c = node_cursor.to_string();
    args[1] = c.as_bytes();
    Request::from_args(&args).frame().clone()
}

/// The reply that ends a walk with no node left: cursor 0, no keys.
pub const EMPTY_REPLY: &[u8] = b"*2\r\n$1\r\n0\r\n*0\r\n";

/// Rewrites a node's `[cursor, keys]` reply with the proxy cursor.
pub fn rewrite_reply(reply: &Bytes, tag: u16, next_tag: u16) -> Result<Bytes, ScanReplyError> {
    let invalid = ScanReplyError::Invalid;
    let elems = array_elements(reply).ok_or(invalid)?;
    let (cur, keys) = match (elems.first(), elems.get(1)) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => return Err(invalid),
    };
    let cur_bytes = &reply[cur];
    let nl = cur_bytes.iter().position(|&b| b == b'\n').ok_or(invalid)?;
    let end = cur_bytes.len().checked_sub(2).ok_or(invalid)?;
    let text = cur_bytes.get(nl + 1..end).ok_or(invalid)?;
    let node_cursor = parse_int(text)
        .ok()
        .and_then(|c| u64::try_from(c).ok())
        .ok_or(invalid)?;
    let next = next_cursor(tag, node_cursor, next_tag)?;
    let mut out = BytesMut::with_capacity(reply.len() + 24);
    encode::array_header(&mut out, 2);
    encode::bulk(&mut out, next.to_string().as_bytes());
    out.extend_from_slice(&reply[keys]);
    Ok(out.freeze())
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
