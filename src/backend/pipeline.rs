//! The in-flight state of one connected backend socket: requests written in order,
//! replies framed and handed back FIFO, latency and health accounted per reply.

use super::conn::{BackendRequest, ConnEnv, READ_BUF, ReplyTo};
use super::health::is_unavailable_reply;
use crate::errors::BackendError;
use crate::io_buf::{WriteQueue, reserve_for};
use crate::metrics::LatencyRecorder;
use crate::resp::reply::ReplyFramer;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use tokio::time::Instant;

/// In-flight state of one connected socket: who waits for each reply (with the time
/// the request was queued for writing), bytes to write (large requests queued as
/// they are, not copied), bytes read (the buffer sized at once for a large reply).
pub(super) struct Pipeline {
    env: ConnEnv,
    pub(super) latency: LatencyRecorder,
    pub(super) inflight: VecDeque<(ReplyTo, Instant, bool)>,
    pub(super) wbuf: WriteQueue,
    pub(super) rbuf: BytesMut,
    /// Where framing the reply at the front of `rbuf` stopped.
    framer: ReplyFramer,
    /// Replies framed in this read, delivered once the metrics account for them
    /// (kept to reuse its allocation).
    framed: Vec<(ReplyTo, Bytes)>,
}

/// Below this much free room the read buffer gets [`READ_BUF`] more.
const MIN_FREE: usize = 1024;

impl Pipeline {
    pub(super) fn new(env: ConnEnv) -> Pipeline {
        Pipeline {
            latency: env.metrics.latency_recorder(),
            env,
            inflight: VecDeque::new(),
            wbuf: WriteQueue::default(),
            rbuf: BytesMut::with_capacity(READ_BUF),
            framer: ReplyFramer::default(),
            framed: Vec::new(),
        }
    }

    pub(super) fn push_all(&mut self, reqs: impl IntoIterator<Item = BackendRequest>) {
        let now = Instant::now();
        let before = self.inflight.len();
        for r in reqs {
            self.wbuf.push(r.frame);
            self.inflight.push_back((r.reply, now, r.timed));
        }
        self.env.metrics.sent(self.inflight.len() - before);
    }

    /// When the oldest in-flight request times out (the timeout is read now, so a
    /// reload's new value applies to requests already in flight).
    pub(super) fn front_deadline(&self) -> Option<Instant> {
        let timeout = self.env.timeouts.request();
        match self.inflight.front() {
            Some((_, sent, true)) => Some(*sent + timeout),
            _ => None,
        }
    }

    /// Hands every complete reply in `rbuf` to its waiter. The metrics are updated
    /// first, so a client that has its reply finds its request counted and timed.
    pub(super) fn dispatch_replies(&mut self) -> Result<(), BackendError> {
        let now = Instant::now();
        let mut framed = std::mem::take(&mut self.framed);
        let mut errors = 0;
        let result = self.take_replies(now, &mut framed, &mut errors);
        self.env.metrics.replied(framed.len(), errors);
        self.latency.maybe_flush(self.inflight.is_empty());
        for (to, reply) in framed.drain(..) {
            to.send(Ok(reply));
        }
        self.framed = framed;
        let (free, want) = (self.rbuf.capacity() - self.rbuf.len(), self.framer.wanted());
        if free < MIN_FREE || want > self.rbuf.capacity() {
            reserve_for(&mut self.rbuf, want, READ_BUF);
        }
        result
    }

    fn take_replies(
        &mut self,
        now: Instant,
        framed: &mut Vec<(ReplyTo, Bytes)>,
        errors: &mut usize,
    ) -> Result<(), BackendError> {
        while let Some(n) = (self.framer)
            .next_len(&self.rbuf)
            .map_err(|_| BackendError::Protocol)?
        {
            let reply = self.rbuf.split_to(n).freeze();
            if reply.first() == Some(&b'>') {
                continue; // out-of-band push on a shared connection: not anyone's reply
            }
            let (to, sent, _) = self.inflight.pop_front().ok_or(BackendError::Protocol)?;
            self.latency.observe(now - sent);
            let unavailable = reply.first() == Some(&b'-') && {
                *errors += 1;
                is_unavailable_reply(&reply)
            };
            if unavailable {
                self.env.health.report_failure();
            } else {
                self.env.health.report_ok();
            }
            framed.push((to, reply));
        }
        Ok(())
    }
}
