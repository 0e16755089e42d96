//! One node's tracking connection: RESP3, `CLIENT TRACKING on BCAST PREFIX ...`
//! (one PREFIX per configured pattern, never a bare BCAST), or `CLIENT TRACKING on`
//! in the default mode for hot keys (the server tracks the keys the connection
//! read), carrying the fills of the near cache. The server's invalidation pushes arrive on the same socket, in
//! order with the fill replies, so a reply and a push are applied in the order the
//! server produced them. While the connection is down the cache holds nothing of
//! the node and does not fill it; fills in flight when it breaks are sent again on
//! the node's shared connections (reads are safe to repeat).

use super::Shared;
use super::store::Ticket;
use crate::backend::conn::{BackendRequest, ConnSpec, ReplyTo};
use crate::backend::{Node, handshake, queue, stream};
use crate::poll::write_some;
use crate::resp::Proto;
use crate::resp::reply::{array_elements, reply_len};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Pause before reconnecting a lost tracking connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// Most fills taken from the queue per write.
const BATCH: usize = 256;
/// Read buffer size.
const READ_BUF: usize = 16 * 1024;

/// One read sent to fill the cache, and who waits for its reply.
#[derive(Debug)]
pub struct Fill {
    /// The request.
    pub frame: Bytes,
    /// Its key.
    pub key: Bytes,
    /// The RESP version of the client that asked.
    pub proto: Proto,
    /// From [`super::store::Store::begin_fill`].
    pub ticket: Ticket,
    /// The client's reply slot.
    pub reply: ReplyTo,
    /// The client (picks its shared connection if the fill must be resent).
    pub client: u64,
}

/// The handle sessions use: whether the connection is tracking now, and its queue.
#[derive(Debug)]
pub struct Tracker {
    /// Connected, tracking on, and nothing of the node cached from before.
    pub ready: Arc<AtomicBool>,
    tx: queue::Sender<Fill>,
}

impl Tracker {
    /// Starts the tracking connection of `node` (spec from the node, RESP3) for
    /// `prefixes`; it ends when the handle, the node or the cache is gone.
    pub fn start(
        node: &Arc<Node>,
        prefixes: &[Bytes],
        shared: Weak<Shared>,
        timeout: Duration,
    ) -> Tracker {
        let (tx, rx) = queue::queue();
        let ready = Arc::new(AtomicBool::new(false));
        let task = Task {
            spec: node.client_spec(Proto::Resp3),
            node: Arc::downgrade(node),
            id: Arc::as_ptr(node) as usize,
            prefixes: prefixes.to_vec(),
            shared,
            ready: ready.clone(),
            rx,
            timeout,
        };
        tokio::spawn(task.run());
        Tracker { ready, tx }
    }

    /// Queues a fill; if the task is gone, it is resent on the shared path.
    pub fn send(&self, fill: Fill, node: &Node) {
        if let Err(f) = self.tx.send(fill) {
            resend(node, f);
        }
    }
}

/// Sends a fill's read on the node's shared connection instead.
fn resend(node: &Node, f: Fill) {
    node.conn(f.proto, f.client)
        .send(BackendRequest::new(f.frame, f.reply));
}

struct Task {
    spec: ConnSpec,
    node: Weak<Node>,
    id: usize,
    prefixes: Vec<Bytes>,
    shared: Weak<Shared>,
    ready: Arc<AtomicBool>,
    rx: queue::Receiver<Fill>,
    timeout: Duration,
}

impl Task {
    async fn run(mut self) {
        loop {
            if self.node.strong_count() == 0 || self.shared.strong_count() == 0 {
                return;
            }
            let open = match stream::connect(
                &self.spec.addr,
                self.timeout,
                self.spec.tls.as_deref(),
            )
            .await
            {
                Ok(stream::BackendStream::Tcp(mut s)) => self.session(&mut s).await,
                Ok(stream::BackendStream::Unix(mut s)) => self.session(&mut s).await,
                Ok(stream::BackendStream::Tls(mut s)) => self.session(&mut s).await,
                Err(e) => {
                    tracing::debug!(node = %self.spec.node, error = %e, "near cache: tracking connect failed");
                    true
                }
            };
            self.lost();
            if !open {
                return;
            }
            self.drain_to_shared();
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// Tracking is gone: nothing of the node stays cached, nothing is filled.
    fn lost(&self) {
        self.ready.store(false, Ordering::SeqCst);
        if let Some(sh) = self.shared.upgrade() {
            sh.flush_node(self.id);
        }
    }

    /// While not tracking, queued fills go to the shared connections.
    fn drain_to_shared(&mut self) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        while let Some(f) = self.rx.try_recv() {
            self.abandon(&node, f);
        }
    }

    fn abandon(&self, node: &Node, f: Fill) {
        if let Some(sh) = self.shared.upgrade() {
            sh.fill_abandoned();
        }
        resend(node, f);
    }

    fn login(&self) -> Vec<Bytes> {
        let mut cmds = handshake::commands(&self.spec);
        // No prefixes: the default mode (the server remembers the keys this
        // connection read, and tells when one changes).
        let mut args: Vec<&[u8]> = vec![b"CLIENT", b"TRACKING", b"on"];
        if !self.prefixes.is_empty() {
            args.push(b"BCAST");
        }
        for p in &self.prefixes {
            args.push(b"PREFIX");
            args.push(p);
        }
        cmds.push(handshake::command(&args));
        cmds
    }

    /// One connected session; false when the handle is gone (the task ends).
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(&mut self, s: &mut S) -> bool {
        if let Err(e) = handshake::run(s, &self.login(), self.timeout).await {
            tracing::warn!(node = %self.spec.node, error = %e, "near cache: tracking not enabled");
            return true;
        }
        // Anything cached before now was flushed when the last connection was lost
        // (or never filled); from here on the pushes keep it right.
        self.ready.store(true, Ordering::SeqCst);
        tracing::debug!(node = %self.spec.node, "near cache: tracking on");
        let (mut rd, mut wr) = tokio::io::split(s);
        let mut inflight: VecDeque<Fill> = VecDeque::new();
        let mut rbuf = BytesMut::with_capacity(READ_BUF);
        let mut wbuf = BytesMut::new();
        let mut batch = Vec::with_capacity(BATCH);
        let result = loop {
            let deadline = tokio::time::sleep(self.timeout);
            tokio::select! {
                biased;
                r = rd.read_buf(&mut rbuf) => match r {
                    Ok(0) | Err(_) => break true,
                    Ok(_) => if !self.replies(&mut rbuf, &mut inflight) { break true },
                },
                r = write_some(&mut wr, &mut wbuf), if !wbuf.is_empty() => if r.is_err() { break true },
                n = self.rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 { break false }
                    for f in batch.drain(..) {
                        wbuf.extend_from_slice(&f.frame);
                        inflight.push_back(f);
                    }
                }
                _ = deadline, if !inflight.is_empty() => break true,
            }
        };
        self.ready.store(false, Ordering::SeqCst);
        if let Some(node) = self.node.upgrade() {
            for f in inflight.drain(..) {
                self.abandon(&node, f);
            }
        }
        result
    }

    /// Handles every complete reply in `rbuf`; false on a protocol error.
    fn replies(&self, rbuf: &mut BytesMut, inflight: &mut VecDeque<Fill>) -> bool {
        let Some(sh) = self.shared.upgrade() else {
            return false;
        };
        loop {
            let n = match reply_len(rbuf) {
                Ok(Some(n)) => n,
                Ok(None) => return true,
                Err(_) => return false,
            };
            let reply = rbuf.split_to(n).freeze();
            if reply.first() == Some(&b'>') {
                self.push(&sh, &reply);
                continue;
            }
            let Some(f) = inflight.pop_front() else {
                return false;
            };
            match self.node.upgrade() {
                Some(node) => sh.filled(&node, self.id, f, reply),
                None => f.reply.send(Ok(reply)),
            }
        }
    }

    /// An invalidation push: `>2 invalidate [keys]`, or `>2 invalidate _` (FLUSHALL,
    /// FLUSHDB: everything).
    fn push(&self, sh: &Shared, push: &[u8]) {
        let Some(parts) = array_elements(push) else {
            return;
        };
        if parts.len() != 2 || bulk(&push[parts[0].clone()]) != Some(b"invalidate") {
            return;
        }
        sh.invalidation_message();
        let keys = &push[parts[1].clone()];
        match array_elements(keys) {
            Some(list) if keys.first() == Some(&b'*') => {
                for r in list {
                    if let Some(k) = bulk(&keys[r]) {
                        sh.invalidate(k);
                    }
                }
            }
            _ => sh.flush_node(self.id),
        }
    }
}

/// The content of a bulk string reply.
fn bulk(reply: &[u8]) -> Option<&[u8]> {
    let rest = reply.strip_prefix(b"$")?;
    let eol = rest.iter().position(|&b| b == b'\r')?;
    let len: usize = std::str::from_utf8(&rest[..eol]).ok()?.parse().ok()?;
    rest.get(eol + 2..eol + 2 + len)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bulk_contents() {
        assert_eq!(super::bulk(b"$3\r\nabc\r\n"), Some(&b"abc"[..]));
        assert_eq!(super::bulk(b"$-1\r\n"), None);
        assert_eq!(super::bulk(b":1\r\n"), None);
    }
}
