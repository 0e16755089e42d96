//! Getting subscribed clients ready for a coming topology: the reload announces it,
//! each client that was subscribed at that moment says once that it is ready (its
//! channels subscribed on their new owners) or leaves, and the reload waits for
//! all of them, bounded. Clients that subscribe during an announcement get ready
//! too, but nobody waits for them.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// The pool's subscribed clients and the announcement in progress.
#[derive(Debug, Default)]
pub struct Readiness {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Subscribed clients now.
    live: usize,
    /// Announcements so far.
    epoch: u64,
    /// Clients of the current announcement not yet ready.
    pending: usize,
}

/// One subscribed client's part.
#[derive(Debug)]
pub struct Member {
    /// The epoch when it joined: it is waited for by later announcements only.
    joined: u64,
    /// The last epoch it was ready for.
    ready: u64,
}

impl Readiness {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A client subscribed.
    pub fn join(&self) -> Member {
        let mut s = self.state();
        s.live += 1;
        Member {
            joined: s.epoch,
            ready: s.epoch,
        }
    }

    /// `m` is ready for the announced topology.
    pub fn ready(&self, m: &mut Member) {
        let mut s = self.state();
        if m.joined < s.epoch && m.ready < s.epoch {
            m.ready = s.epoch;
            s.pending = s.pending.saturating_sub(1);
            drop(s);
            self.notify.notify_waiters();
        }
    }

    /// `m` unsubscribed for good (its client left or reset): nobody waits for it.
    pub fn leave(&self, m: &mut Member) {
        self.ready(m);
        self.state().live -= 1;
    }

    /// Announces a coming topology; false when no client needs to get ready.
    pub fn announce(&self) -> bool {
        let mut s = self.state();
        if s.live == 0 {
            return false;
        }
        s.epoch += 1;
        s.pending = s.live;
        true
    }

    /// Waits until every client of the announcement is ready, at most `limit`;
    /// false when time ran out.
    pub async fn wait(&self, limit: Duration) -> bool {
        let all = async {
            loop {
                let woken = self.notify.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if self.state().pending == 0 {
                    return;
                }
                woken.await;
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_members_of_the_announcement_only() {
        let r = Readiness::default();
        assert!(!r.announce());
        let (mut a, mut b) = (r.join(), r.join());
        assert!(r.announce());
        // One that joins now is not waited for, even when it says it is ready.
        let mut late = r.join();
        r.ready(&mut late);
        r.ready(&mut a);
        r.ready(&mut a);
        assert!(!r.wait(Duration::from_millis(20)).await);
        r.leave(&mut b);
        assert!(r.wait(Duration::from_millis(20)).await);
        r.leave(&mut a);
        r.leave(&mut late);
        assert!(!r.announce());
    }
}
