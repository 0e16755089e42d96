//! The queue from sessions to one connection task.
//!
//! A lock around a `VecDeque` and the task's waker: one uncontended lock per request
//! (sessions and their connections share a worker thread), where a channel costs
//! several atomic operations per item and a second look after registering. Like an
//! unbounded channel, it closes for the receiver when every sender is gone and for
//! senders when the receiver is gone; what bounds it is the session's pipeline limit.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    waker: Option<Waker>,
    senders: usize,
    receiver_gone: bool,
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new queue: its sending and receiving ends.
pub fn queue<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            waker: None,
            senders: 1,
            receiver_gone: false,
        }),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending end; clones share the queue.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` and wakes the receiver; gives it back if the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        let mut s = self.shared.lock();
        if s.receiver_gone {
            return Err(item);
        }
        s.items.push_back(item);
        let waker = s.waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.senders -= 1;
        let waker = if s.senders == 0 { s.waker.take() } else { None };
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving end.
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Moves up to `limit` queued items to `out`, waiting while there are none;
    /// 0 once every sender is gone and nothing is left.
    pub async fn recv_many(&mut self, out: &mut Vec<T>, limit: usize) -> usize {
        poll_fn(|cx| self.poll_many(cx, out, limit)).await
    }

    /// The next item, waiting while there is none; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let mut s = self.shared.lock();
            if let Some(item) = s.items.pop_front() {
                return Poll::Ready(Some(item));
            }
            if s.senders == 0 {
                return Poll::Ready(None);
            }
            register(&mut s, cx);
            Poll::Pending
        })
        .await
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        self.shared.lock().items.pop_front()
    }

    fn poll_many(&self, cx: &mut Context<'_>, out: &mut Vec<T>, limit: usize) -> Poll<usize> {
        let mut s = self.shared.lock();
        if !s.items.is_empty() {
            let n = s.items.len().min(limit);
            out.extend(s.items.drain(..n));
            return Poll::Ready(n);
        }
        if s.senders == 0 {
            return Poll::Ready(0);
        }
        register(&mut s, cx);
        Poll::Pending
    }
}

/// Keeps the receiver's waker (cloned only when it changed).
fn register<T>(s: &mut State<T>, cx: &Context<'_>) {
    if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        s.waker = Some(cx.waker().clone());
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.receiver_gone = true;
        // Dropped outside the lock: an item's drop may take other locks.
        let items = std::mem::take(&mut s.items);
        drop(s);
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_and_closes_both_ways() {
        let (tx, mut rx) = queue();
        let tx2 = tx.clone();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(rx.recv_many(&mut out, 3).await, 3);
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.recv().await, Some(4));
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx2.send(9).unwrap();
        assert_eq!(waiter.await.unwrap(), Some(9));
        // The receiver is gone: sends come back.
        assert_eq!(tx.send(1), Err(1));

        let (tx, mut rx) = queue::<u8>();
        let waiter =
            tokio::spawn(async move { (rx.recv().await, rx.recv_many(&mut Vec::new(), 8).await) });
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (None, 0), "every sender gone");
        assert_eq!(out, vec![0, 1, 2]);
    }
}
