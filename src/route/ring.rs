//! The ketama continuum and the other distributions, as a plain value.
//!
//! Two point rules share one lookup (first point at or after the key hash, wrapping):
//! - ringproxy: every live node gets [`POINTS_PER_WEIGHT`] `* weight` points, whatever the other nodes
//!   are, so adding a node only takes keys from the old nodes, never moves them
//!   between two old ones;
//! - twemproxy: nutcracker 0.5.0's count, `4 * floor(w / W * 40 * n)` in 32-bit float
//!   over live nodes, byte-for-byte (checked against nutcracker itself by
//!   `tests/twemproxy_placement.rs`).
//!
//! Nodes are taken in nutcracker's order (shorter identity first, then bytewise);
//! that order decides modula slots and ties between equal points.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::hash::{le32, md5_digest};
use super::placement::{Distribution, HashMode, NodeSpec, PlacementSpec};

/// Points on the continuum per unit of node weight in ringproxy mode.
pub const POINTS_PER_WEIGHT: u64 = 640;

/// Digests per unit of weight in ringproxy mode (each digest gives
/// `POINTS_PER_DIGEST` points).
const RINGPROXY_DIGESTS_PER_WEIGHT: u64 = POINTS_PER_WEIGHT / POINTS_PER_DIGEST as u64;

/// Points per server that nutcracker starts from before scaling by weight share.
const KETAMA_POINTS_PER_SERVER: f32 = 160.0;

/// nutcracker formats `name-j` into a 273-byte buffer: longer text is cut to 272 bytes
/// (found against the binary: names up to 268 bytes are hashed whole).
const TWEMPROXY_MAX_POINT_NAME: usize = 272;

/// Points cut from one MD5 digest.
const POINTS_PER_DIGEST: u32 = 4;

/// Sorted points and the node each belongs to, or the slots of modula and random.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    /// Ketama: `(point, node index)` sorted by point, ties in node order.
    points: Vec<(u32, u32)>,
    /// Modula: each live node `weight` times; random: each live node once.
    slots: Vec<u32>,
    /// A pool of exactly one node, live: every key goes there without hashing.
    single: Option<u32>,
}

impl Ring {
    /// Builds the ring for `spec` over the live entries of `nodes`. Node indices in
    /// lookups are indices into `nodes`.
    pub fn build(spec: &PlacementSpec, nodes: &[NodeSpec<'_>]) -> Ring {
        let live: Vec<usize> = nutcracker_order(nodes)
            .into_iter()
            .filter(|&i| nodes[i].live)
            .collect();
        let single = match nodes {
            [only] if only.live => Some(0),
            _ => None,
        };
        let mut ring = Ring {
            single,
            ..Ring::default()
        };
        match spec.distribution {
            Distribution::Ketama => ring.points = ketama_points(spec.mode, nodes, &live),
            Distribution::Modula => ring.slots = modula_slots(nodes, &live),
            Distribution::Random => ring.slots = live.iter().map(|&i| i as u32).collect(),
        }
        ring
    }

    /// The node index for an already tag-stripped key, `None` when no node is live.
    pub fn lookup_key(&self, spec: &PlacementSpec, part: &[u8]) -> Option<usize> {
        if let Some(only) = self.single {
            return Some(only as usize);
        }
        match spec.distribution {
            Distribution::Ketama => self.lookup_point(key_hash(spec, part)),
            Distribution::Modula => self.slot(key_hash(spec, part)),
            Distribution::Random => self.slot(next_random()),
        }
    }

    /// The owner of the first point at or after `hash`, wrapping to the first point.
    pub fn lookup_point(&self, hash: u32) -> Option<usize> {
        let at = self.points.partition_point(|&(point, _)| point < hash);
        let (_, node) = self.points.get(at).or_else(|| self.points.first())?;
        Some(*node as usize)
    }

    fn slot(&self, hash: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let at = hash as usize % self.slots.len();
        Some(self.slots[at] as usize)
    }

    /// The ketama points, `(point, node index)`, sorted (empty for modula and random).
    pub fn points(&self) -> &[(u32, u32)] {
        &self.points
    }
}

/// nutcracker hashes an empty key to 0 without calling the hash function.
fn key_hash(spec: &PlacementSpec, part: &[u8]) -> u32 {
    if spec.mode == HashMode::Twemproxy && part.is_empty() {
        0
    } else {
        spec.function.hash(part)
    }
}

/// Node indices sorted as nutcracker sorts servers: shorter identity first, then
/// bytewise; equal identities keep their order.
pub fn nutcracker_order(nodes: &[NodeSpec<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (nodes[a].identity, nodes[b].identity);
        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
    });
    order
}

/// Points nutcracker 0.5.0 gives a live server of `weight` when the live servers
/// number `live` and weigh `total_weight` together. Computed in 32-bit float like
/// nutcracker, so e.g. 25 equal servers get 156 points each, not 160.
pub fn twemproxy_points_per_server(weight: u32, total_weight: u32, live: u32) -> u32 {
    let share = weight as f32 / total_weight as f32;
    let per_digest = share * KETAMA_POINTS_PER_SERVER / POINTS_PER_DIGEST as f32 * live as f32;
    // C adds a double constant, then narrows back to float before floorf.
    let digests = ((f64::from(per_digest) + 1e-10) as f32).floor();
    (digests * POINTS_PER_DIGEST as f32) as u32
}

fn digests_for(mode: HashMode, weight: u32, total_weight: u32, live: u32) -> u64 {
    match mode {
        HashMode::Ringproxy => RINGPROXY_DIGESTS_PER_WEIGHT * u64::from(weight),
        HashMode::Twemproxy => {
            u64::from(twemproxy_points_per_server(weight, total_weight, live) / POINTS_PER_DIGEST)
        }
    }
}

fn ketama_points(mode: HashMode, nodes: &[NodeSpec<'_>], live: &[usize]) -> Vec<(u32, u32)> {
    let total_weight = live
        .iter()
        .map(|&i| nodes[i].weight)
        .fold(0u32, u32::saturating_add);
    let mut points = Vec::new();
    let mut name = Vec::new();
    for &index in live {
        let node = &nodes[index];
        let digests = digests_for(mode, node.weight, total_weight, live.len() as u32);
        for j in 0..digests {
            name.clear();
            name.extend_from_slice(node.identity);
            name.push(b'-');
            name.extend_from_slice(j.to_string().as_bytes());
            if mode == HashMode::Twemproxy {
                name.truncate(TWEMPROXY_MAX_POINT_NAME);
            }
            let digest = md5_digest(&name);
            for word in 0..POINTS_PER_DIGEST as usize {
                points.push((le32(&digest, word * 4), index as u32));
            }
        }
    }
    points.sort_by_key(|&(point, _)| point);
    points
}

fn modula_slots(nodes: &[NodeSpec<'_>], live: &[usize]) -> Vec<u32> {
    live.iter()
        .flat_map(|&i| std::iter::repeat_n(i as u32, nodes[i].weight as usize))
        .collect()
}

thread_local! {
    static RANDOM: Cell<u64> = Cell::new(RandomState::new().hash_one(0x5eed_u64) | 1);
}

/// A cheap thread-local xorshift64 draw (not for anything but spreading keys).
pub fn next_random() -> u32 {
    RANDOM.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 32) as u32
    })
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
