//! The places a client's own connections take in the pool's counts.

use super::super::PoolContext;
use crate::errors;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Holds one place in the pool's dedicated-connection count.
pub struct DedicatedSlot(Arc<PoolContext>);

impl DedicatedSlot {
    /// Takes a place, or the error reply when `cap` places are taken.
    pub fn take(ctx: &Arc<PoolContext>, cap: usize) -> Result<DedicatedSlot, &'static [u8]> {
        let n = ctx.dedicated.fetch_add(1, Ordering::Relaxed);
        ctx.metrics.dedicated_connections.inc();
        let slot = DedicatedSlot(ctx.clone());
        if n >= cap {
            return Err(errors::DEDICATED_LIMIT);
        }
        Ok(slot)
    }
}

impl Drop for DedicatedSlot {
    fn drop(&mut self) {
        self.0.dedicated.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.dedicated_connections.dec();
    }
}

/// Counts its client in the pool's blocked clients while it lives (INFO clients
/// `blocked_clients`).
pub(super) struct BlockedMark(Arc<PoolContext>);

impl BlockedMark {
    pub(super) fn new(ctx: &Arc<PoolContext>) -> BlockedMark {
        ctx.blocked.fetch_add(1, Ordering::Relaxed);
        BlockedMark(ctx.clone())
    }
}

impl Drop for BlockedMark {
    fn drop(&mut self) {
        self.0.blocked.fetch_sub(1, Ordering::Relaxed);
    }
}
