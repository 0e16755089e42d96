//! A client's own connection across topology changes.
//!
//! - A blocking command whose key moved to another node is unblocked where it
//!   waits (`CLIENT UNBLOCK <id> ERROR`, sent over the node's shared connection)
//!   and answered with a retryable error; a value popped just before that is
//!   delivered as it is. The connection's id comes from the `CLIENT ID` sent first
//!   on every new dedicated connection.
//! - A transaction whose keys no longer all live on its node (or whose node left
//!   the topology) is not run at EXEC: it is discarded there and answered as a
//!   failed WATCH (a null reply) when it watched, or with `-EXECABORT` and the
//!   reason otherwise. Never reported as applied.

use super::{Dedicated, PIN_ID, SILENT};
use crate::backend::BackendRequest;
use crate::client_io::Completion;
use crate::errors;
use crate::resp::{Request, encode};
use crate::server::context::Ctx;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

impl Dedicated {
    /// Takes the replies that are the proxy's own (a connection's CLIENT ID) and
    /// rewrites the one of a command it unblocked; the rest go to the client.
    pub fn intercept(&mut self, mut c: Completion) -> Option<Completion> {
        if c.seq == PIN_ID {
            if let (Some(p), Ok(reply)) = (self.pinned.as_mut(), &c.reply)
                && p.generation == c.part
            {
                p.remote_id = crate::resp::reply::integer(reply);
            }
            return None;
        }
        let moved = self
            .blocking
            .as_ref()
            .is_some_and(|b| b.unblocked && b.seq == c.seq);
        if moved && matches!(&c.reply, Ok(r) if r.starts_with(b"-UNBLOCKED")) {
            c.reply = Ok(Bytes::from_static(errors::BLOCKED_KEY_MOVED));
            c.head = None;
        }
        Some(c)
    }

    /// After a topology change: a blocked command whose key moved is unblocked.
    pub fn follow(&mut self, cx: &mut Ctx) {
        let (Some(p), Some(b)) = (self.pinned.as_ref(), self.blocking.as_mut()) else {
            return;
        };
        let Some(key) = &b.key else { return };
        if b.unblocked || !cx.queue.is_waiting(b.seq) {
            return;
        }
        let owner = cx.topo.node_for_key(key).map(|i| &cx.topo.nodes[i]);
        if owner.is_some_and(|n| Arc::ptr_eq(n, &p.node)) {
            return;
        }
        let Some(id) = p.remote_id else {
            tracing::warn!(
                client = cx.client.id,
                "a blocked command's key moved before its connection's id was known"
            );
            return;
        };
        b.unblocked = true;
        let id = id.to_string();
        let frame = Request::from_args(&["CLIENT", "UNBLOCK", &id, "ERROR"]);
        p.node
            .conn(cx.client.proto, cx.client.id)
            .send(BackendRequest::new(
                frame.frame().clone(),
                cx.reply_to(SILENT, 0),
            ));
    }

    /// Whether the transaction must not run: a key it touches lives elsewhere in
    /// `cx.topo`, or its node left the topology.
    pub(super) fn moved_away(&self, cx: &Ctx) -> bool {
        let Some(p) = &self.pinned else { return false };
        let ours = |i: usize| Arc::ptr_eq(&cx.topo.nodes[i], &p.node);
        let here = (0..cx.topo.nodes.len()).any(ours);
        !here
            || self
                .tx
                .keys
                .iter()
                .any(|k| cx.topo.node_for_key(k).is_none_or(|i| !ours(i)))
    }

    /// Discards a transaction whose keys moved, and answers EXEC for it.
    pub(super) fn abort_moved(&mut self, cx: &mut Ctx) -> crate::server::context::Outcome {
        let watched = self.tx.watching;
        self.abort(cx);
        if watched {
            let mut b = BytesMut::new();
            encode::null_array(&mut b, cx.client.proto);
            return cx.ready(b.freeze());
        }
        cx.ready_static(errors::EXECABORT_MOVED)
    }
}
