//! Idle clients give their serving memory back. A session parks (frees its read
//! and write buffers, its reply queue and the state of its serving loop, keeping
//! only what identifies the client, see [`super::session`]) when it is new, the
//! first time it is idle, and when it served no request for [`PARK_AFTER_MS`]: the
//! pool's budget loop then asks it, once a second. Busy clients are not asked, so
//! parking costs the request path one spell per connection, not one per request; a
//! parked client that sends again is served again at once.

use super::PoolContext;

/// How long a client sends nothing before its session is asked to park (ms).
pub const PARK_AFTER_MS: u64 = 1000;
/// Budget-loop ticks ([`super::memory::CHECK_EVERY`], 100 ms) between two sweeps:
/// once a second.
pub const SWEEP_EVERY_TICKS: u32 = 10;

/// Asks every client idle for [`PARK_AFTER_MS`], and not asked since its last
/// request, to park.
pub fn sweep(pool: &PoolContext) {
    let now = pool.coarse_ms.load(std::sync::atomic::Ordering::Relaxed);
    pool.registry
        .for_each(|e| e.ask_to_park(now, PARK_AFTER_MS));
}
