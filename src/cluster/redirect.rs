//! Following a cluster's redirects, so that clients never see them.
//!
//! Every request a cluster pool sends on a shared connection carries a [`Redirect`]
//! in its [`ReplyTo`]: the request's bytes and where to resend them. When the reply
//! arrives, [`deliver`] looks at its first byte (a non-error reply is delivered at
//! once) and follows:
//!
//! - `-MOVED slot host:port`: the slot has a new owner. The request is resent
//!   there and a slot map refresh is asked for (coalesced with every other).
//! - `-ASK slot host:port`: the slot is being migrated and this key is already on
//!   the importing node: `ASKING` and the request are sent there, for this request
//!   only (the map does not change).
//! - `-TRYAGAIN`: a multi-key request whose keys are half migrated; resent after a
//!   short pause.
//!
//! A redirect to a node the slot map does not list yet waits for the next map
//! read ([`super::park`]).
//!
//! A request is redirected at most [`MAX_REDIRECTS`] times and retried at most
//! [`MAX_TRYAGAIN`] times; past that the client gets a clear error. A node that
//! cannot be reached (or `-CLUSTERDOWN`) asks for a refresh too: after a failover
//! the map names the new primary.

use super::Cluster;
use crate::backend::{BackendRequest, Node, ReplyTo};
use crate::errors::{self, BackendError};
use crate::resp::Proto;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Most MOVED/ASK redirects followed for one request.
pub const MAX_REDIRECTS: u8 = 5;
/// Most TRYAGAIN retries of one request.
pub const MAX_TRYAGAIN: u8 = 25;
/// Pause before a TRYAGAIN retry.
pub const TRYAGAIN_DELAY: Duration = Duration::from_millis(20);
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// How to follow a redirect of one request (see the module doc).
#[derive(Debug, Clone)]
pub struct Redirect {
    cluster: Arc<Cluster>,
    frame: Bytes,
    proto: Proto,
    session: u64,
    /// The session's worker thread.
    worker: usize,
    hops: u8,
    tries: u8,
    /// The reply of an `ASKING` sent ahead of a request: dropped.
    discard: bool,
}

/// Makes `to` follow the redirects of `frame` (sent by client `session` speaking
/// `proto`) in the cluster pool of `cluster`. Kept out of line: ring pools never
/// call it.
#[cold]
pub fn attach(cluster: &Arc<Cluster>, to: &mut ReplyTo, frame: &Bytes, proto: Proto, session: u64) {
    to.then = Some(make(cluster, frame, proto, session));
}

/// How to follow the redirects of `frame` (see [`attach`]), for a hook that hands
/// replies on to it (a replica read's way back to its primary).
#[cold]
pub fn make(cluster: &Arc<Cluster>, frame: &Bytes, proto: Proto, session: u64) -> Box<Redirect> {
    Box::new(Redirect {
        cluster: cluster.clone(),
        frame: frame.clone(),
        proto,
        session,
        worker: crate::workers::current(),
        hops: 0,
        tries: 0,
        discard: false,
    })
}

impl crate::backend::Then for Redirect {
    fn reply(self: Box<Self>, reply: Result<Bytes, BackendError>, to: ReplyTo) {
        deliver(self, to, reply)
    }
}

/// What a reply asks of the proxy.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Deliver it.
    Deliver,
    /// Deliver it and read the slot map again.
    DeliverAndRefresh,
    /// Resend to this node (with `ASKING` first when true).
    Resend(String, bool),
    /// Resend after a pause.
    Retry,
}

fn action(reply: &Result<Bytes, BackendError>) -> Action {
    let b = match reply {
        Err(_) => return Action::DeliverAndRefresh,
        Ok(b) if b.first() != Some(&b'-') => return Action::Deliver,
        Ok(b) => b,
    };
    let line = b.strip_suffix(b"\r\n").unwrap_or(b);
    let target = |rest: &[u8]| -> Option<String> {
        let mut words = rest.split(|&c| c == b' ');
        let (_slot, addr) = (words.next()?, words.next()?);
        Some(String::from_utf8_lossy(addr).into_owned())
    };
    if let Some(rest) = line.strip_prefix(b"-MOVED ") {
        return target(rest).map_or(Action::Deliver, |a| Action::Resend(a, false));
    }
    if let Some(rest) = line.strip_prefix(b"-ASK ") {
        return target(rest).map_or(Action::Deliver, |a| Action::Resend(a, true));
    }
    if line.starts_with(b"-TRYAGAIN") {
        return Action::Retry;
    }
    if line.starts_with(b"-CLUSTERDOWN") {
        return Action::DeliverAndRefresh;
    }
    Action::Deliver
}

/// Delivers `reply` to `to`, or follows it if it is a redirect (see the module doc).
#[cold]
pub fn deliver(r: Box<Redirect>, to: ReplyTo, reply: Result<Bytes, BackendError>) {
    if r.discard {
        return;
    }
    match action(&reply) {
        Action::Deliver => to.send(reply),
        Action::DeliverAndRefresh => {
            r.cluster.request_refresh();
            to.send(reply)
        }
        Action::Resend(addr, asking) => {
            if asking {
                r.cluster.metrics.ask.inc();
            } else {
                r.cluster.metrics.moved.inc();
                r.cluster.request_refresh();
            }
            resend(r, to, addr, asking)
        }
        Action::Retry => retry_later(r, to, reply),
    }
}

fn resend(mut r: Box<Redirect>, to: ReplyTo, addr: String, asking: bool) {
    if r.hops >= MAX_REDIRECTS {
        return to.send(Ok(Bytes::from_static(errors::TOO_MANY_REDIRECTS)));
    }
    r.hops += 1;
    let cluster = r.cluster.clone();
    cluster.park.send_or_park(&cluster, addr, r, to, asking);
}

fn retry_later(mut r: Box<Redirect>, to: ReplyTo, reply: Result<Bytes, BackendError>) {
    if r.tries >= MAX_TRYAGAIN {
        return to.send(reply);
    }
    r.tries += 1;
    r.cluster.metrics.tryagain.inc();
    tokio::spawn(async move {
        tokio::time::sleep(TRYAGAIN_DELAY).await;
        // The map may have changed meanwhile: route the key again.
        let node = first_key_owner(&r);
        match node {
            Some(node) => send_to(&node, r, to, false),
            None => to.send(reply),
        }
    });
}

/// The node of the current map owning the slot of the request's first key.
fn first_key_owner(r: &Redirect) -> Option<Arc<Node>> {
    let req = crate::resp::request::decode(&mut bytes::BytesMut::from(&r.frame[..]), usize::MAX)
        .ok()
        .flatten()?;
    let t = r.cluster.topology_now();
    let key = req.get(1)?;
    t.node_for_key(key).map(|i| t.nodes[i].clone())
}

/// Sends the request (after `ASKING` when `asking`) to `node`, on the connection
/// its session uses there.
pub(super) fn send_to(node: &Node, r: Box<Redirect>, mut to: ReplyTo, asking: bool) {
    let conn = node.conn_on(r.worker, r.proto, r.session);
    if asking {
        let ack = ReplyTo {
            io: to.io.clone(),
            seq: to.seq,
            part: to.part,
            direct: false,
            then: Some(Box::new(Redirect {
                cluster: r.cluster.clone(),
                frame: Bytes::new(),
                discard: true,
                ..*r
            })),
            tap: None,
        };
        conn.send(BackendRequest::new(Bytes::from_static(ASKING), ack));
    }
    let frame = r.frame.clone();
    to.then = Some(r);
    conn.send(BackendRequest::new(frame, to));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(b: &'static [u8]) -> Action {
        action(&Ok(Bytes::from_static(b)))
    }

    #[test]
    fn redirect_replies_are_recognised() {
        assert_eq!(
            act(b"-MOVED 3999 127.0.0.1:6381\r\n"),
            Action::Resend("127.0.0.1:6381".into(), false)
        );
        assert_eq!(
            act(b"-ASK 3999 10.0.0.2:7000\r\n"),
            Action::Resend("10.0.0.2:7000".into(), true)
        );
        assert_eq!(
            act(b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"),
            Action::Retry
        );
        assert_eq!(
            act(b"-CLUSTERDOWN The cluster is down\r\n"),
            Action::DeliverAndRefresh
        );
        assert_eq!(action(&Err(BackendError::Down)), Action::DeliverAndRefresh);
        for plain in [
            &b"+OK\r\n"[..],
            b"$1\r\nx\r\n",
            b"-ERR x\r\n",
            b"-MOVED\r\n",
            b"-MOVED 1\r\n",
        ] {
            assert_eq!(
                action(&Ok(Bytes::copy_from_slice(plain))),
                Action::Deliver,
                "{plain:?}"
            );
        }
    }
}
