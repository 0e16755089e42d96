//! One worker's counts over one slot of the sliding window: a space-saving summary
//! (Metwally et al.) of the sampled keys, and the sampled requests per node.
//!
//! The summary keeps at most `capacity` counters. A key already counted adds one;
//! a new key takes a free counter, or else replaces the smallest one and inherits
//! its count (so every key whose true count exceeds `total / capacity` is kept,
//! and a count overestimates by at most the `error` it inherited).

use fnv::FnvHashMap;
use std::sync::Arc;

/// Longest key kept for display (a longer key is counted by its whole hash).
pub const MAX_KEY_KEPT: usize = 256;

/// One counted key.
#[derive(Debug, Clone)]
pub struct Counter {
    /// Hash of the whole key (its identity here).
    pub hash: u64,
    /// The key (at most [`MAX_KEY_KEPT`] bytes of it); its buffer is reused when
    /// the counter is taken over by another key.
    pub key: Vec<u8>,
    /// Whether `key` was cut.
    pub truncated: bool,
    /// Node the key was routed to.
    pub node: Arc<str>,
    /// Sampled requests counted (an overestimate by at most `error`).
    pub count: u64,
    /// Count inherited from the counter it replaced.
    pub error: u64,
}

/// The summary and node totals of one slot.
#[derive(Debug, Default)]
pub struct Summary {
    counters: Vec<Counter>,
    index: FnvHashMap<u64, usize>,
    /// Sampled requests per node in this slot.
    pub nodes: Vec<(Arc<str>, u64)>,
    /// Slot number (time / slot length) these counts belong to.
    pub epoch: u64,
    /// No counter counts less (counts only grow, and a taken-over counter starts
    /// above the smallest): the smallest counter is found from `cursor` on without
    /// a full scan per replacement.
    floor: u64,
    /// Where the search for the next smallest counter goes on.
    cursor: usize,
}

impl Summary {
    /// Forgets everything and starts slot `epoch`.
    pub fn reset(&mut self, epoch: u64) {
        self.counters.clear();
        self.index.clear();
        self.nodes.clear();
        self.epoch = epoch;
        self.floor = 0;
        self.cursor = 0;
    }

    /// Counts one sampled request for `key` (hash `hash`) routed to `node`.
    pub fn add(&mut self, hash: u64, key: &[u8], node: &Arc<str>, capacity: usize) {
        self.add_node(node);
        if let Some(&i) = self.index.get(&hash) {
            self.counters[i].count += 1;
            return;
        }
        if self.counters.len() < capacity {
            self.index.insert(hash, self.counters.len());
            self.counters.push(Counter {
                hash,
                key: key[..key.len().min(MAX_KEY_KEPT)].to_vec(),
                truncated: key.len() > MAX_KEY_KEPT,
                node: node.clone(),
                count: 1,
                error: 0,
            });
            return;
        }
        let Some(i) = self.smallest() else {
            return;
        };
        let c = &mut self.counters[i];
        self.index.remove(&c.hash);
        self.index.insert(hash, i);
        let min = c.count;
        c.hash = hash;
        c.key.clear();
        c.key.extend_from_slice(&key[..key.len().min(MAX_KEY_KEPT)]);
        c.truncated = key.len() > MAX_KEY_KEPT;
        if !Arc::ptr_eq(&c.node, node) {
            c.node = node.clone();
        }
        c.count = min + 1;
        c.error = min;
    }

    /// The index of a counter with the smallest count: the next one from the
    /// cursor that counts `floor`, else (one full turn) the first smallest seen,
    /// which becomes the new floor. Amortised O(1): a full turn happens at most
    /// once per rise of the floor.
    fn smallest(&mut self) -> Option<usize> {
        let n = self.counters.len();
        let mut best: Option<(usize, u64)> = None;
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let count = self.counters[i].count;
            if count <= self.floor {
                best = Some((i, count));
                break;
            }
            if best.is_none_or(|(_, b)| count < b) {
                best = Some((i, count));
            }
        }
        let (i, count) = best?;
        self.floor = count;
        self.cursor = (i + 1) % n;
        Some(i)
    }

    fn add_node(&mut self, node: &Arc<str>) {
        match self
            .nodes
            .iter_mut()
            .find(|(n, _)| Arc::ptr_eq(n, node) || **n == **node)
        {
            Some((_, c)) => *c += 1,
            None => self.nodes.push((node.clone(), 1)),
        }
    }

    /// The counters kept.
    pub fn counters(&self) -> &[Counter] {
        &self.counters
    }
}

/// A small, fast random source for sampling (xorshift64*), one per worker.
#[derive(Debug, Clone, Copy)]
pub struct Sampler {
    state: u64,
    left: u32,
}

impl Sampler {
    /// A sampler seeded with `seed` (any value).
    pub fn new(seed: u64) -> Sampler {
        Sampler {
            state: seed | 1,
            left: 1,
        }
    }

    /// Whether this request is sampled, at an average rate of 1 in `every`: the gap
    /// to the next sampled request is drawn by [`Sampler::gap`].
    pub fn hit(&mut self, every: u32) -> bool {
        self.left -= 1;
        if self.left > 0 {
            return false;
        }
        self.left = self.gap(every);
        true
    }

    /// The gap to the next sampled request, drawn uniformly in `1..2*every`
    /// (average `every`), so a periodic request pattern cannot hide from (or
    /// dominate) the sample.
    pub fn gap(&mut self, every: u32) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        let span = (2 * every.max(1) - 1) as u64;
        1 + (r % span) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_keys_survive_and_counts_bound_the_truth() {
        let node: Arc<str> = "n1".into();
        let mut s = Summary::default();
        // Key 0 appears 1000 times among 10000 distinct one-off keys.
        for i in 0..11_000u64 {
            let (h, k) = if i % 11 == 0 { (0, 0) } else { (i, i) };
            s.add(h, &k.to_be_bytes(), &node, 32);
        }
        let top = s.counters().iter().max_by_key(|c| c.count).unwrap();
        assert_eq!(top.hash, 0);
        assert!(top.count >= 1000 && top.count - top.error <= 1000);
        assert_eq!(s.nodes, vec![(node, 11_000)]);
    }

    #[test]
    fn long_keys_are_cut_for_display_only() {
        let node: Arc<str> = "n".into();
        let mut s = Summary::default();
        s.add(7, &[b'x'; 1000], &node, 4);
        let c = &s.counters()[0];
        assert!(c.truncated && c.key.len() == MAX_KEY_KEPT);
    }

    #[test]
    fn sampling_rate_is_about_one_in_n() {
        let mut s = Sampler::new(42);
        let hits = (0..80_000).filter(|_| s.hit(8)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        let mut all = Sampler::new(1);
        assert!((0..100).all(|_| all.hit(1)));
    }
}
