//! Polling a future once, without waiting.
//!
//! Used to write a reply (or a batch of requests) in the same turn of a loop that
//! produced it, instead of waiting for the next turn of `select!` to poll the write:
//! one pass less per request through every branch of the loop.

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Polls `fut` once with a no-op waker: `Some(output)` if it completed at once.
/// A pending IO future registered nothing useful, so the caller must poll it again
/// with a real waker (its `select!` branch) before sleeping.
pub fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Writes the front of `buf` with one plain `write` (not `writev`: the buffer is one
/// contiguous slice) and drops what was written. An empty `buf` writes nothing; a
/// write of 0 bytes from a non-empty one is an error.
pub async fn write_some<W>(wr: &mut W, buf: &mut bytes::BytesMut) -> std::io::Result<usize>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use bytes::Buf;
    use tokio::io::AsyncWriteExt;
    if buf.is_empty() {
        return Ok(0);
    }
    let n = wr.write(&buf[..]).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    buf.advance(n);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_pending() {
        assert_eq!(poll_once(async { 7 }), Some(7));
        assert_eq!(poll_once(std::future::pending::<u8>()), None);
    }

    #[test]
    fn write_some_drops_what_was_written_and_accepts_empty() {
        let mut out: Vec<u8> = Vec::new();
        let mut buf = bytes::BytesMut::from(&b"hello"[..]);
        assert_eq!(
            poll_once(write_some(&mut out, &mut buf)).map(|r| r.ok()),
            Some(Some(5))
        );
        assert!(buf.is_empty());
        assert_eq!(out, b"hello");
        assert_eq!(
            poll_once(write_some(&mut out, &mut buf)).map(|r| r.ok()),
            Some(Some(0))
        );
    }
}
