//! The session's write side: ready replies leave the queue, in order, into one
//! write queue (small replies copied together, large ones kept as they are and
//! written with `writev`); and the one place where a delivered reply is accounted
//! for, whichever path wrote it (this queue, or a backend connection writing it
//! straight to the client).

use super::replies::{After, ReplyQueue};
use crate::client_io::ClientStream;
use crate::io_buf::{MAX_SLICES, WriteQueue};
use crate::metrics::{PoolMetrics, RequestClass};
use std::io::{self, IoSlice};

/// Replies stop moving into the write buffer beyond this many bytes; a larger
/// reply still moves whole when the buffer is below it.
pub const WRITE_HIGH_WATER: usize = 256 * 1024;

/// Bytes waiting to be written to the client.
#[derive(Default)]
pub struct Output {
    buf: WriteQueue,
    /// A reply after which the connection closes has been taken.
    closing: bool,
}

impl Output {
    /// Nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Writes some of what waits, waiting until the socket takes something; the
    /// caller then says what was written ([`Output::wrote`]).
    pub async fn write_to(&self, stream: &ClientStream) -> io::Result<usize> {
        if self.buf.is_contiguous() || matches!(stream, ClientStream::Tls(_)) {
            return stream.write(self.buf.front()).await;
        }
        loop {
            match stream {
                ClientStream::Tcp(s) => s.writable().await?,
                ClientStream::Unix(s) => s.writable().await?,
                ClientStream::Tls(_) => {}
            }
            match self.try_write_to(stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// Writes what the socket takes now of what waits, without waiting (several
    /// replies in one `writev` when large ones are queued as they are).
    pub fn try_write_to(&self, stream: &ClientStream) -> io::Result<usize> {
        if self.buf.is_contiguous() {
            return stream.try_write(self.buf.front());
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let k = self.buf.slices(&mut slices);
        match stream {
            ClientStream::Tcp(s) => s.try_write_vectored(&slices[..k]),
            ClientStream::Unix(s) => s.try_write_vectored(&slices[..k]),
            ClientStream::Tls(_) => stream.try_write(self.buf.front()),
        }
    }

    /// Bytes held allocated.
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
                self.buf.push(r.bytes);
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
