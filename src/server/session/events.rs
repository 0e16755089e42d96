//! What a session does beside requests and replies: deadlines, topology changes
//! while it holds state on the nodes, and what CLIENT LIST shows of it.

use super::super::clients::Shown;
use super::super::replies::After;
use super::{Reading, Session};
use crate::metrics::RequestClass;
use crate::topology::Router;

impl Session {
    /// A deadline passed: close an idle client, or a request that took too long.
    pub(super) fn on_deadline(&mut self, why: super::super::deadline::Expired) {
        use super::super::deadline::Expired;
        match why {
            Expired::Recheck => {}
            Expired::Idle => {
                self.core.pool.metrics.clients_timed_out.inc();
                self.reading = Reading::Stopped;
            }
            Expired::SlowRequest => {
                self.core.pool.metrics.clients_timed_out.inc();
                let class = RequestClass::Invalid;
                self.queue.push_ready(
                    bytes::Bytes::from_static(crate::errors::REQUEST_TOO_SLOW),
                    After::Close,
                    class,
                    false,
                );
                self.reading = Reading::Stopped;
            }
        }
    }

    /// Starts following topology changes once the client holds state on the
    /// nodes (subscriptions, a dedicated connection).
    pub(super) fn watch_if_holding(&mut self) {
        if self.follow.is_some() || !self.held.on_nodes() {
            return;
        }
        let watch = self.core.pool.watch_changes();
        let coming = watch.next.borrow().clone();
        self.follow = Some(super::super::Follow::new(watch));
        if let Some(next) = coming {
            self.on_topology(
                super::super::TopologyEvent::Coming(next),
                &self.core.pool.router.clone(),
            );
        }
    }

    /// Follows a topology change: subscriptions move, blocked commands and
    /// transactions whose keys moved are dealt with.
    pub(super) fn on_topology(&mut self, ev: super::super::TopologyEvent, router: &Router) {
        let class = RequestClass::Dedicated;
        match ev {
            super::super::TopologyEvent::Coming(next) => {
                self.with_cx(&next, class, |cx, held| held.subs.prepare(cx));
            }
            super::super::TopologyEvent::Changed => {
                let topo = router.load_full();
                self.with_cx(&topo, class, |cx, held| held.follow(cx));
            }
        }
    }

    /// What CLIENT LIST shows of this client's state.
    pub(super) fn shown(&self) -> Shown {
        let (sub, psub, ssub) = self.held.subs.counts();
        Shown {
            name: self.core.client.name.as_deref().cloned(),
            resp: self.core.client.proto.index() as u8 + 2,
            sub,
            psub,
            ssub,
            multi: self.held.dedicated.in_multi(),
            user: self.core.client.user.as_ref().map(|u| u.name.clone()),
        }
    }
}

/// What happens beside requests and replies (one select branch for both, so the
/// common loop pays for one).
pub(super) enum Side {
    Topology(super::super::TopologyEvent),
    Deadline(super::super::deadline::Expired),
}

/// The next topology event or passed deadline.
pub(super) fn poll_side(
    f: &mut Option<super::super::Follow>,
    d: &mut super::super::deadline::Deadlines,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Side> {
    if let Some(f) = f
        && let std::task::Poll::Ready(ev) = f.poll_event(cx)
    {
        return std::task::Poll::Ready(Side::Topology(ev));
    }
    d.poll_fired(cx).map(Side::Deadline)
}
