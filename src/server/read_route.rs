//! Reads under `read_from`: which server of a shard takes a read-only request, and
//! the way back to the primary when a replica cannot answer it.

use super::context::Ctx;
use crate::backend::{BackendRequest, ConnHandle, Node, ReplyTo, Then};
use crate::command::CommandSpec;
use crate::config::replicas::ReadFrom;
use crate::errors;
use crate::errors::BackendError;
use bytes::Bytes;
use std::sync::Arc;

/// A read sent to a server other than the shard's primary.
#[derive(Debug)]
pub struct ReadTarget<'t> {
    /// The server that takes it.
    pub node: &'t Arc<Node>,
    /// The shard (its primary's index), when a failed replica read goes there.
    pub fallback: Option<usize>,
}

impl ReadTarget<'_> {
    /// The fallback of this read of `frame` for the client of `cx`.
    pub fn fallback(&self, cx: &Ctx, frame: &Bytes) -> Option<Box<dyn Then>> {
        let primary = &cx.topo.nodes[self.fallback?];
        let next = cx.pool.cluster.as_ref().map(|c| {
            crate::cluster::redirect::make(c, frame, cx.client.proto, cx.client.id) as Box<dyn Then>
        });
        Some(Box::new(Fallback {
            conn: primary.conn(cx.client.proto, cx.client.id).clone(),
            frame: frame.clone(),
            next,
        }))
    }
}

/// A read on a replica, sent to its primary if the replica fails it (its connection
/// lost, the replica down or timed out, or answering `-LOADING`, `-MASTERDOWN` or
/// `-BUSY`): reads are safe to repeat.
#[derive(Debug)]
struct Fallback {
    /// The primary's connection for the same client.
    conn: ConnHandle,
    /// The request.
    frame: Bytes,
    /// What sees the reply next (in a cluster pool: its redirects, followed from
    /// the replica or from the primary).
    next: Option<Box<dyn Then>>,
}

impl Then for Fallback {
    fn reply(self: Box<Self>, reply: Result<Bytes, BackendError>, to: ReplyTo) {
        let unavailable = match &reply {
            Err(e) => matches!(
                e,
                BackendError::ConnectionLost | BackendError::Down | BackendError::Timeout
            ),
            // A replica loading its data, cut off from its primary, or busy.
            Ok(r) => crate::backend::health::is_unavailable_reply(r),
        };
        if unavailable {
            let mut to = to;
            to.then = self.next;
            return self.conn.send(BackendRequest::new(self.frame, to));
        }
        match self.next {
            Some(next) => next.reply(reply, to),
            None => to.send(reply),
        }
    }
}

/// Whether reads may go anywhere but the primaries (`read_from` is not `primary`).
#[inline]
pub fn spread(topo: &crate::topology::Topology) -> bool {
    topo.config.read_from != ReadFrom::Primary
}

/// Where a read of shard `idx` goes when `read_from` is not `primary` and `spec`
/// may be read from a replica: `Ok(None)` for the primary (as a write), `Err` with
/// the reply when `read_from: replica` finds no readable replica. With
/// `prefer_replica`, a replica read that fails goes to the primary.
pub fn target<'t>(
    cx: &Ctx<'t>,
    idx: usize,
    spec: &CommandSpec,
) -> Result<Option<ReadTarget<'t>>, &'static [u8]> {
    let topo = cx.topo;
    let policy = topo.config.read_from;
    if policy == ReadFrom::Primary || !spec.replica_read() {
        return Ok(None);
    }
    let node = topo
        .read_target(idx, cx.client.id)
        .ok_or(errors::NO_READABLE_REPLICA)?;
    let replica = node.is_replica();
    cx.pool.metrics.read(replica);
    if !replica {
        return Ok(None);
    }
    let fallback = (policy == ReadFrom::PreferReplica).then_some(idx);
    Ok(Some(ReadTarget { node, fallback }))
}
