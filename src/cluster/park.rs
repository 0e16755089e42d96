//! Redirected requests waiting for a slot map that lists the node they were sent to
//! (a replica just promoted, a primary just added). They wait in arrival order and
//! are sent after each slot map read; while any waits, later redirects queue
//! behind it, so a client's SET and the GET after it stay in order.

use super::Cluster;
use super::redirect::{Redirect, send_to};
use crate::backend::{Node, ReplyTo};
use crate::errors;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Slot map reads a request waits for before it fails.
const MAX_READS: u8 = 5;

/// One waiting request.
#[derive(Debug)]
struct Parked {
    addr: String,
    r: Box<Redirect>,
    to: ReplyTo,
    asking: bool,
    reads: u8,
}

/// The waiting requests of one cluster pool.
#[derive(Debug, Default)]
pub struct Park {
    list: Mutex<VecDeque<Parked>>,
}

impl Park {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Parked>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the request to the node at `addr` now if the map lists it and nothing
    /// waits, else queues it (and asks for a slot map read).
    pub fn send_or_park(
        &self,
        cluster: &Cluster,
        addr: String,
        r: Box<Redirect>,
        to: ReplyTo,
        asking: bool,
    ) {
        let mut list = self.lock();
        if list.is_empty()
            && let Some(node) = node_at(cluster, &addr)
        {
            return send_to(&node, r, to, asking);
        }
        list.push_back(Parked {
            addr,
            r,
            to,
            asking,
            reads: 0,
        });
        drop(list);
        cluster.request_refresh();
    }

    /// After a slot map read: sends what the map now places, in order; what it still
    /// does not wait for the next read, failing after 5 reads.
    pub fn drain(&self, cluster: &Cluster) {
        let mut list = self.lock();
        if list.is_empty() {
            return;
        }
        let mut left = VecDeque::new();
        for mut p in list.drain(..) {
            match node_at(cluster, &p.addr) {
                Some(node) => send_to(&node, p.r, p.to, p.asking),
                None if p.reads + 1 >= MAX_READS => {
                    p.to.send(Ok(Bytes::from_static(errors::REDIRECT_UNKNOWN_NODE)))
                }
                None => {
                    p.reads += 1;
                    left.push_back(p);
                }
            }
        }
        let again = !left.is_empty();
        *list = left;
        drop(list);
        if again {
            cluster.request_refresh();
        }
    }
}

/// The node of the current topology at `addr`.
pub fn node_at(cluster: &Cluster, addr: &str) -> Option<Arc<Node>> {
    let t = cluster.topology_now();
    t.nodes.iter().find(|n| *n.name == *addr).cloned()
}
