//! Exponential reconnect backoff with full jitter, so many proxies that lose the
//! same node do not reconnect in step.

use std::time::Duration;

/// First backoff delay.
pub const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Longest backoff delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Backoff state for one connection.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// A fresh backoff seeded from `seed` (e.g. a hash of the address) and the clock.
    pub fn new(seed: u64) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        Backoff {
            attempt: 0,
            rng: (seed ^ nanos) | 1,
        }
    }

    /// Forget past failures.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt: uniform in [cap/2, cap] where cap doubles
    /// per failure from [`BACKOFF_BASE`] up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let cap = BACKOFF_BASE
            .saturating_mul(1 << self.attempt.min(16))
            .min(BACKOFF_MAX);
        self.attempt = self.attempt.saturating_add(1);
        let half = cap / 2;
        let jitter = self.next_u64() % (half.as_micros() as u64 + 1);
        half + Duration::from_micros(jitter)
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(7);
        let first = b.next_delay();
        assert!(first >= BACKOFF_BASE / 2 && first <= BACKOFF_BASE);
        for _ in 0..40 {
            assert!(b.next_delay() <= BACKOFF_MAX);
        }
        assert!(b.next_delay() >= BACKOFF_MAX / 2);
        b.reset();
        assert!(b.next_delay() <= BACKOFF_BASE);
    }
}
