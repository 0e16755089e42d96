//! Counters for the per-request hot path, sharded by thread.
//!
//! A plain Prometheus counter shared by every session is one cache line that all
//! worker threads write on every request; on two cores that line bounces between
//! them. A [`HotCounter`] gives each thread its own cache line (a shard); the shards
//! are summed into the exported Prometheus counter when metrics are rendered.

use prometheus::IntCounter;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Shards per counter (threads beyond this share shards, which stays correct).
const SHARDS: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Shard(AtomicU64);

#[derive(Default)]
struct Inner {
    shards: [Shard; SHARDS],
    reported: AtomicU64,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// A counter that is cheap to increment from many threads at once.
#[derive(Clone)]
pub struct HotCounter {
    inner: Arc<Inner>,
    out: IntCounter,
}

impl std::fmt::Debug for HotCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HotCounter({})", self.get())
    }
}

impl HotCounter {
    /// A counter exported as `out`.
    pub fn new(out: IntCounter) -> HotCounter {
        HotCounter {
            inner: Arc::default(),
            out,
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn inc_by(&self, n: u64) {
        let i = MY_SHARD.with(|s| *s);
        self.inner.shards[i].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }

    /// Moves what was counted since the last sync into the exported counter.
    pub fn sync(&self) {
        let total = self.get();
        let before = self.inner.reported.fetch_max(total, Ordering::Relaxed);
        if total > before {
            self.out.inc_by(total - before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_shards_and_syncs_once() {
        let out = IntCounter::new("t", "t").unwrap();
        let c = HotCounter::new(out.clone());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.inc()))
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        c.inc_by(5);
        assert_eq!(c.get(), 4005);
        c.sync();
        c.sync();
        assert_eq!(out.get(), 4005);
    }
}
