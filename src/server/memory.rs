//! The pool's budget for memory held in client buffers (`limits.max_client_memory`),
//! in the spirit of Redis 7's `maxmemory-clients`. Each session reports what it
//! holds when that changes (request bytes read and not yet forwarded, replies not
//! yet written); past the budget, clients holding more than an even share stop
//! being read, and if the total stays over for [`GRACE`], the client holding the
//! most is closed (and counted). Well-behaved clients hold little and keep being
//! served.

use super::PoolContext;
use super::clients::ClientEntry;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often the budget is checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long the total may stay over the budget before the largest client is closed.
pub const GRACE: Duration = Duration::from_secs(1);

/// One session's part of the pool's client memory.
#[derive(Debug, Default)]
pub struct Held {
    bytes: usize,
}

impl Held {
    /// The session holds `now` bytes (one atomic add when it changed).
    pub fn report(&mut self, pool: &PoolContext, entry: &ClientEntry, now: usize) {
        if now == self.bytes {
            return;
        }
        if now > self.bytes {
            pool.client_memory
                .fetch_add(now - self.bytes, Ordering::Relaxed);
        } else {
            pool.client_memory
                .fetch_sub(self.bytes - now, Ordering::Relaxed);
        }
        self.bytes = now;
        entry.set_memory(now);
    }

    /// Whether the session should stop reading: the pool is over `budget` and it
    /// holds more than an even share of it.
    pub fn over_share(&self, pool: &PoolContext, budget: usize) -> bool {
        if pool.client_memory.load(Ordering::Relaxed) <= budget {
            return false;
        }
        let clients = pool.clients.load(Ordering::Relaxed).max(1);
        self.bytes > budget / clients
    }

    /// The session ends: its bytes leave the total.
    pub fn release(&mut self, pool: &PoolContext) {
        pool.client_memory.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
    }
}

/// Checks the pool's budget every [`CHECK_EVERY`] for as long as the pool lives,
/// and advances its coarse clock.
pub async fn budget_loop(pool: std::sync::Weak<PoolContext>) {
    let mut over_since: Option<Instant> = None;
    let mut ticks = 0u32;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let Some(pool) = pool.upgrade() else { return };
        pool.coarse_ms.store(pool.precise_ms(), Ordering::Relaxed);
        ticks = (ticks + 1) % super::parking::SWEEP_EVERY_TICKS;
        if ticks == 0 {
            super::parking::sweep(&pool);
        }
        let total = pool.client_memory.load(Ordering::Relaxed);
        pool.metrics.client_memory.set(total as i64);
        let budget = pool.router.load().limits.clients.max_memory;
        if total <= budget {
            over_since = None;
            continue;
        }
        let since = *over_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= GRACE {
            close_largest(&pool, total, budget);
            over_since = None;
        }
    }
}

fn close_largest(pool: &Arc<PoolContext>, total: usize, budget: usize) {
    let Some(largest) = pool.registry.all().into_iter().max_by_key(|e| e.memory()) else {
        return;
    };
    tracing::warn!(
        pool = %pool.name,
        client = largest.id,
        addr = %largest.addr(),
        held = largest.memory(),
        total,
        budget,
        "client memory over limits.max_client_memory: closing the client holding the most"
    );
    pool.metrics.clients_closed_for_memory.inc();
    largest.kill();
}
