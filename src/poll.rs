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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_and_pending() {
        assert_eq!(poll_once(async { 7 }), Some(7));
        assert_eq!(poll_once(std::future::pending::<u8>()), None);
    }
}
