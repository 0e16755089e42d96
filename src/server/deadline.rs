//! The session's one timer, armed only when a bound applies: a client idle for
//! `timeouts.client_idle`, a request still incomplete `timeouts.client_request`
//! after its first byte, or a client paused by the memory budget (re-checked
//! every [`RECHECK`]). Nothing is armed on the common path (complete requests, no
//! idle timeout), so it costs nothing there; once made, the timer is reset rather
//! than made again.

use crate::config::clients::ClientLimits;
use std::pin::Pin;
use tokio::time::{Duration, Instant, Sleep};

/// How often a client paused by the memory budget looks again.
pub const RECHECK: Duration = Duration::from_millis(50);

/// Why the timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The client sent nothing for `client_idle`.
    Idle,
    /// A request took longer than `client_request` to arrive.
    SlowRequest,
    /// Time to look at the memory budget again.
    Recheck,
}

/// What the session tells the timer after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// A request is partly received.
    pub partial: bool,
    /// Nothing is in flight and the client holds no state (it may be idle).
    pub idle: bool,
    /// Reading is paused by the memory budget.
    pub paused: bool,
}

/// The session's timer.
#[derive(Debug, Default)]
pub struct Deadlines {
    limits: Option<ClientLimits>,
    last_read: Option<Instant>,
    /// A request has been partly received since then.
    partial_since: Option<Instant>,
    /// The timer, kept allocated once made; armed when `why` is set.
    sleep: Option<Pin<Box<Sleep>>>,
    why: Option<Expired>,
    /// What the last step said: a step that says the same changes nothing (reads
    /// that move an idle deadline are looked at when it fires).
    last: Option<Now>,
}

impl Deadlines {
    /// The limits in force (from the current topology).
    pub fn set_limits(&mut self, limits: ClientLimits) {
        if self.limits != Some(limits) {
            self.limits = Some(limits);
            self.last = None;
        }
    }

    /// Bytes arrived.
    pub fn on_read(&mut self) {
        if self.limits.is_some_and(|l| l.idle.is_some()) {
            self.last_read = Some(Instant::now());
        }
    }

    /// Arms (or disarms) the timer for the session's state now.
    pub fn after_step(&mut self, now: Now) {
        let Some(limits) = self.limits else { return };
        if self.last == Some(now) && !now.paused {
            return;
        }
        self.last = Some(now);
        if !now.partial {
            self.partial_since = None;
        }
        let want = if now.paused {
            Some((Instant::now() + RECHECK, Expired::Recheck))
        } else if let (true, Some(bound)) = (now.partial, limits.request) {
            let since = *self.partial_since.get_or_insert_with(Instant::now);
            Some((since + bound, Expired::SlowRequest))
        } else if let (true, Some(idle)) = (now.idle, limits.idle) {
            let last = *self.last_read.get_or_insert_with(Instant::now);
            Some((last + idle, Expired::Idle))
        } else {
            None
        };
        self.arm(want);
    }

    fn arm(&mut self, want: Option<(Instant, Expired)>) {
        let Some((at, why)) = want else {
            self.why = None;
            return;
        };
        match &mut self.sleep {
            Some(s) if s.deadline() != at => s.as_mut().reset(at),
            Some(_) => {}
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.why = Some(why);
    }

    /// Whether the timer is armed.
    pub fn armed(&self) -> bool {
        self.why.is_some()
    }

    /// The armed deadline, once it passed (never when none is armed). An idle
    /// deadline that reads have moved since it was set is set again instead.
    pub fn poll_fired(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Expired> {
        use std::future::Future;
        loop {
            let (Some(s), Some(why)) = (&mut self.sleep, self.why) else {
                return std::task::Poll::Pending;
            };
            std::task::ready!(s.as_mut().poll(cx));
            let moved = match (why, self.last_read, self.limits.and_then(|l| l.idle)) {
                (Expired::Idle, Some(last), Some(idle)) => Some(last + idle),
                _ => None,
            };
            match moved {
                Some(at) if at > Instant::now() => s.as_mut().reset(at),
                _ => {
                    self.why = None;
                    self.last = None;
                    return std::task::Poll::Ready(why);
                }
            }
        }
    }
}
