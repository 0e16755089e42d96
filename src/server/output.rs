//! The session's write side: ready replies leave the queue, in order, into one
//! write buffer; and the one place where a delivered reply is accounted for,
//! whichever path wrote it (this buffer, or a backend connection writing it
//! straight to the client).

use super::replies::{After, ReplyQueue};
use crate::metrics::{PoolMetrics, RequestClass};
use bytes::{Buf, BytesMut};

/// Replies stop moving into the write buffer beyond this many bytes; a larger
/// reply still moves whole when the buffer is below it.
pub const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Bytes waiting to be written to the client.
#[derive(Default)]
pub struct Output {
    buf: BytesMut,
    /// A reply after which the connection closes has been taken.
    closing: bool,
}

impl Output {
    /// Nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes to write next.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes the buffer holds allocated.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Below the high-water mark: more replies (and requests) may be taken.
    pub fn has_room(&self) -> bool {
        self.buf.len() < WRITE_HIGH_WATER
    }

    /// The reply that closes the connection was taken: nothing follows it.
    pub fn closing(&self) -> bool {
        self.closing
    }

    /// Moves ready replies, in order, into the buffer, up to the high-water mark;
    /// returns how many moved.
    pub fn fill(&mut self, queue: &mut ReplyQueue, metrics: &PoolMetrics) -> usize {
        let mut moved = 0;
        while !self.closing && self.has_room() {
            let Some(r) = queue.pop_ready() else { break };
            delivered(metrics, r.class, r.error, r.written);
            if !r.quiet {
                self.buf.extend_from_slice(&r.bytes);
            }
            self.closing = r.after == After::Close;
            moved += 1;
        }
        moved
    }

    /// `n` bytes of the buffer were written.
    pub fn wrote(&mut self, n: usize, metrics: &PoolMetrics) {
        self.buf.advance(n);
        metrics.sent(n);
    }
}

/// Accounts for one reply handed to the client: an error reply counts as an error
/// of its request's class, and `written` bytes of it that a backend connection
/// wrote itself count as sent (the rest is counted as the session writes it).
pub fn delivered(metrics: &PoolMetrics, class: RequestClass, error: bool, written: usize) {
    if error {
        metrics.request_error(class);
    }
    if written > 0 {
        metrics.sent(written);
    }
}
