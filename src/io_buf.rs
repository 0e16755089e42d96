//! Buffers on both sides of the proxy, sized so that a large value is never copied
//! in user space: a read buffer grows once to the size the request or reply at its
//! front announced ([`reserve_for`]), and bytes to write queue as shared segments,
//! small ones copied together, large ones kept as they are ([`WriteQueue`]) and
//! written with one vectored write.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Frames of at least this many bytes are queued as their own segment instead of
/// being copied (below it a copy costs less than one more iovec entry).
pub const COPY_MAX: usize = 8 * 1024;
/// Most segments handed to one vectored write (well under the kernel's IOV_MAX).
pub const MAX_SLICES: usize = 64;
/// Most bytes a read buffer reserves ahead for an announced size it has not
/// received yet (1 MiB): above it the buffer grows with what arrives (doubling),
/// so a client announcing a large value and sending nothing holds little.
pub const PREALLOC_MAX: usize = 1024 * 1024;

/// Reserves room in `buf` for the rest of the frame at its front, when it
/// announced it needs `want` bytes in all (at most [`PREALLOC_MAX`] ahead of what
/// is buffered, doubling past it), and `min_free` bytes more after it, so that
/// the read that completes the frame also takes what follows it. At most one
/// allocation per call; nothing when the room is there.
pub fn reserve_for(buf: &mut BytesMut, want: usize, min_free: usize) {
    let free = buf.capacity() - buf.len();
    let ahead = want
        .saturating_sub(buf.len())
        .min(PREALLOC_MAX.max(buf.len()));
    let need = ahead + min_free;
    if free < need {
        buf.reserve(need);
    }
}

/// Bytes waiting to be written, in order: a run of segments then a tail that
/// small frames are copied into.
#[derive(Debug, Default)]
pub struct WriteQueue {
    /// Written before `tail`, front first.
    segs: VecDeque<Bytes>,
    /// Small frames after the last segment.
    tail: BytesMut,
    /// Bytes queued in all.
    len: usize,
}

impl WriteQueue {
    /// Queues `frame`: copied into the tail when small, kept as a segment otherwise.
    #[inline]
    pub fn push(&mut self, frame: Bytes) {
        if frame.len() < COPY_MAX {
            return self.push_slice(&frame);
        }
        if !self.tail.is_empty() {
            self.segs.push_back(self.tail.split().freeze());
        }
        self.len += frame.len();
        self.segs.push_back(frame);
    }

    /// Queues a copy of `bytes` (for bytes that are not a shared frame).
    #[inline]
    pub fn push_slice(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Nothing waits to be written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes waiting to be written.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held: the segments and the tail's allocation.
    pub fn capacity(&self) -> usize {
        self.len - self.tail.len() + self.tail.capacity()
    }

    /// Whether what waits is one contiguous run ([`WriteQueue::front`]).
    pub fn is_contiguous(&self) -> bool {
        self.segs.len() + usize::from(!self.tail.is_empty()) <= 1
    }

    /// The first contiguous run of bytes to write.
    pub fn front(&self) -> &[u8] {
        self.segs.front().map_or(&self.tail[..], |s| &s[..])
    }

    /// The next bytes to write as slices into `out`; returns how many were filled.
    pub fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_SLICES]) -> usize {
        let mut n = 0;
        for s in self.segs.iter().take(MAX_SLICES) {
            out[n] = IoSlice::new(s);
            n += 1;
        }
        if n < MAX_SLICES && !self.tail.is_empty() {
            out[n] = IoSlice::new(&self.tail);
            n += 1;
        }
        n
    }

    /// The front `n` bytes were written: drops them.
    pub fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.segs.front_mut() else {
                return self.tail.advance(n);
            };
            if n < front.len() {
                return front.advance(n);
            }
            n -= front.len();
            self.segs.pop_front();
        }
    }

    /// One write of what is queued (a plain `write` while it is one contiguous
    /// run, `writev` otherwise), dropping what was written. Nothing queued writes
    /// nothing; a write of 0 bytes from a non-empty queue is an error.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, wr: &mut W) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let n = if self.segs.is_empty() {
            wr.write(&self.tail).await?
        } else {
            // The slices live in the poll only, not in the future's state.
            std::future::poll_fn(|cx| {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let k = self.slices(&mut slices);
                std::pin::Pin::new(&mut *wr).poll_write_vectored(cx, &slices[..k])
            })
            .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::poll_once;

    fn queued(q: &WriteQueue) -> Vec<u8> {
        let mut s = [IoSlice::new(&[]); MAX_SLICES];
        let k = q.slices(&mut s);
        s[..k].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn large_frames_are_kept_small_ones_copied_in_order() {
        let big = Bytes::from(vec![b'x'; COPY_MAX]);
        let mut q = WriteQueue::default();
        q.push(Bytes::from_static(b"+a\r\n"));
        q.push(big.clone());
        q.push(Bytes::from_static(b"+b\r\n"));
        assert_eq!(q.len(), COPY_MAX + 8);
        let mut s = [IoSlice::new(&[]); MAX_SLICES];
        assert_eq!(q.slices(&mut s), 3);
        // The large frame is the same allocation, not a copy.
        assert_eq!(s[1].as_ptr(), big.as_ptr());
        let mut want = b"+a\r\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"+b\r\n");
        assert_eq!(queued(&q), want);
    }

    #[test]
    fn advance_crosses_segments_and_the_tail() {
        let mut q = WriteQueue::default();
        q.push(Bytes::from(vec![b'1'; COPY_MAX]));
        q.push(Bytes::from(vec![b'2'; COPY_MAX]));
        q.push_slice(b"tail");
        q.advance(COPY_MAX + 10);
        assert_eq!(q.len(), COPY_MAX - 10 + 4);
        let rest = queued(&q);
        assert_eq!(&rest[..COPY_MAX - 10], &vec![b'2'; COPY_MAX - 10][..]);
        assert_eq!(&rest[COPY_MAX - 10..], b"tail");
        q.advance(COPY_MAX - 10 + 2);
        assert_eq!(queued(&q), b"il");
        q.advance(2);
        assert!(q.is_empty());
    }

    #[test]
    fn write_to_writes_everything_in_order() {
        let mut q = WriteQueue::default();
        let mut want = Vec::new();
        for i in 0..200u32 {
            let f = if i % 3 == 0 {
                vec![(i % 251) as u8; COPY_MAX + i as usize]
            } else {
                format!("+{i}\r\n").into_bytes()
            };
            want.extend_from_slice(&f);
            q.push(Bytes::from(f));
        }
        let mut out: Vec<u8> = Vec::new();
        while !q.is_empty() {
            let r = poll_once(q.write_to(&mut out));
            assert!(matches!(r, Some(Ok(n)) if n > 0));
        }
        assert_eq!(out, want);
        assert!(matches!(poll_once(q.write_to(&mut out)), Some(Ok(0))));
    }

    #[test]
    fn reserve_for_grows_once_to_an_announced_size_within_the_cap() {
        let mut buf = BytesMut::with_capacity(512);
        buf.extend_from_slice(&[0; 100]);
        reserve_for(&mut buf, 600 * 1024, 512);
        assert!(buf.capacity() >= 600 * 1024);
        let cap = buf.capacity();
        reserve_for(&mut buf, 600 * 1024, 512);
        assert_eq!(buf.capacity(), cap, "no second allocation");
        // Far beyond the cap: only PREALLOC_MAX ahead of what arrived.
        let mut small = BytesMut::with_capacity(512);
        small.extend_from_slice(&[0; 100]);
        reserve_for(&mut small, 1 << 30, 512);
        assert!(small.capacity() < 2 * PREALLOC_MAX);
        assert!(small.capacity() >= PREALLOC_MAX);
        // Room for the frame's rest and for min_free after it: a frame ending just
        // past the buffer does not leave the next read a few bytes.
        let mut edge = BytesMut::with_capacity(1024);
        edge.extend_from_slice(&[0; 1000]);
        reserve_for(&mut edge, 1030, 2048);
        assert!(edge.capacity() >= 1030 + 2048);
        // Nothing announced: only the minimum free room.
        let mut plain = BytesMut::new();
        reserve_for(&mut plain, 0, 512);
        assert!(plain.capacity() >= 512 && plain.capacity() < 4096);
    }
}
