//! The session's ordered reply queue: replies leave in request order, whatever order
//! the nodes answer in. Every slot records the class of its request (for the error
//! count) and, for merged replies, the protocol the client spoke when it asked.

use crate::client_io::Head;
use crate::command::merge::{PartReply, Plan, merge};
use crate::metrics::RequestClass;
use crate::resp::Proto;
use crate::resp::reply::is_error;
use bytes::Bytes;
use smallvec::SmallVec;
use std::collections::VecDeque;

/// What happens after a reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep serving.
    Continue,
    /// Close the connection (QUIT, protocol error).
    Close,
}

/// A reply ready to leave, with what accounting needs to know of it.
#[derive(Debug)]
pub struct Ready {
    /// The bytes still to write.
    pub bytes: Bytes,
    /// What follows it.
    pub after: After,
    /// Class of its request.
    pub class: RequestClass,
    /// The whole reply is an error reply.
    pub error: bool,
    /// Bytes of it a backend connection already wrote to the client.
    pub written: usize,
    /// Not to be written (CLIENT REPLY OFF / SKIP): only accounted for.
    pub quiet: bool,
}

enum Slot {
    /// Waiting for one reply; `.1`: quiet.
    Waiting(RequestClass, bool),
    Ready(Ready),
    Merging(Box<Merging>),
}

struct Merging {
    class: RequestClass,
    quiet: bool,
    proto: Proto,
    plan: Plan,
    parts: SmallVec<[Option<PartReply>; 4]>,
    remaining: usize,
}

/// Replies of one client, in request order.
#[derive(Default)]
pub struct ReplyQueue {
    base: u64,
    slots: VecDeque<Slot>,
    waiting: usize,
    /// Bytes of the ready replies not yet taken.
    ready_bytes: usize,
}

impl ReplyQueue {
    /// An empty queue whose first slot gets sequence number `next_seq` (a session
    /// served again after parking goes on numbering where it stopped).
    pub fn starting_at(next_seq: u64) -> ReplyQueue {
        ReplyQueue {
            base: next_seq,
            ..ReplyQueue::default()
        }
    }

    /// Requests not yet written back.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of the ready replies not yet taken (the client memory budget).
    pub fn ready_bytes(&self) -> usize {
        self.ready_bytes
    }

    /// Requests still waiting for a backend.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sequence number the next pushed slot gets.
    pub fn next_seq(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Whether request `seq` still waits for its backend reply.
    pub fn is_waiting(&self, seq: u64) -> bool {
        let slot = seq
            .checked_sub(self.base)
            .and_then(|i| self.slots.get(i as usize));
        matches!(slot, Some(Slot::Waiting(..) | Slot::Merging(_)))
    }

    /// A reply known now (local command, error).
    pub fn push_ready(&mut self, bytes: Bytes, after: After, class: RequestClass, quiet: bool) {
        let error = is_error(&bytes);
        self.ready_bytes += bytes.len();
        self.slots.push_back(Slot::Ready(Ready {
            bytes,
            after,
            class,
            error,
            written: 0,
            quiet,
        }));
    }

    /// A request waiting for one backend reply; returns its sequence number.
    pub fn push_waiting(&mut self, class: RequestClass, quiet: bool) -> u64 {
        self.slots.push_back(Slot::Waiting(class, quiet));
        self.waiting += 1;
        self.next_seq() - 1
    }

    /// A request waiting for `parts` replies to be merged per `plan`, for a client
    /// speaking `proto` when it asked; returns its sequence number.
    pub fn push_merging(
        &mut self,
        plan: Plan,
        parts: usize,
        class: RequestClass,
        proto: Proto,
        quiet: bool,
    ) -> u64 {
        let m = Merging {
            class,
            quiet,
            proto,
            plan,
            parts: (0..parts).map(|_| None).collect(),
            remaining: parts,
        };
        self.slots.push_back(Slot::Merging(Box::new(m)));
        self.waiting += 1;
        self.next_seq() - 1
    }

    /// Records a backend reply for (`seq`, `part`); `head` is what a backend
    /// connection already wrote of it to the client.
    pub fn complete(&mut self, seq: u64, part: u32, reply: PartReply, head: Option<Head>) {
        let Some(idx) = seq.checked_sub(self.base) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        match slot {
            Slot::Waiting(class, quiet) => {
                let bytes = reply.unwrap_or_else(|e| Bytes::from_static(e.wire()));
                self.ready_bytes += bytes.len();
                *slot = Slot::Ready(Ready {
                    error: head.map_or_else(|| is_error(&bytes), |h| h.error),
                    written: head.map_or(0, |h| h.len),
                    bytes,
                    after: After::Continue,
                    class: *class,
                    quiet: *quiet,
                });
                self.waiting -= 1;
            }
            Slot::Merging(m) => {
                if let Some(p @ None) = m.parts.get_mut(part as usize) {
                    *p = Some(reply);
                    m.remaining -= 1;
                }
                if m.remaining == 0 {
                    let parts: SmallVec<[PartReply; 4]> = m.parts.drain(..).flatten().collect();
                    let bytes = merge(&m.plan, &parts, m.proto);
                    self.ready_bytes += bytes.len();
                    self.waiting -= 1;
                    *slot = Slot::Ready(Ready {
                        error: is_error(&bytes),
                        bytes,
                        after: After::Continue,
                        class: m.class,
                        written: 0,
                        quiet: m.quiet,
                    });
                }
            }
            Slot::Ready(..) => {}
        }
    }

    /// The sequence number of the only request in the queue, if it waits for a
    /// single backend reply that is to be written (the case where a reply may be
    /// written directly).
    pub fn lone_waiting(&self) -> Option<u64> {
        match (self.slots.len(), self.slots.front()) {
            (1, Some(Slot::Waiting(_, false))) => Some(self.base),
            _ => None,
        }
    }

    /// Drops the front slot `seq` whose reply was written directly; returns its class.
    pub fn skip_front(&mut self, seq: u64) -> Option<RequestClass> {
        match self.slots.front() {
            Some(Slot::Waiting(class, _)) if seq == self.base => {
                let class = *class;
                self.slots.pop_front();
                self.base += 1;
                self.waiting -= 1;
                Some(class)
            }
            _ => None,
        }
    }

    /// Takes the front reply if it is ready.
    pub fn pop_ready(&mut self) -> Option<Ready> {
        if !matches!(self.slots.front(), Some(Slot::Ready(..))) {
            return None;
        }
        self.base += 1;
        match self.slots.pop_front() {
            Some(Slot::Ready(r)) => {
                self.ready_bytes -= r.bytes.len();
                Some(r)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::SplitKind;

    const C: RequestClass = RequestClass::Local;

    #[test]
    fn replies_leave_in_order() {
        let mut q = ReplyQueue::default();
        let a = q.push_waiting(C, false);
        q.push_ready(Bytes::from_static(b"+L\r\n"), After::Continue, C, false);
        let c = q.push_merging(
            Plan::Split(SplitKind::SumInt, vec![]),
            2,
            C,
            Proto::Resp2,
            false,
        );
        q.complete(c, 1, Ok(Bytes::from_static(b":1\r\n")), None);
        assert!(q.pop_ready().is_none());
        q.complete(a, 0, Ok(Bytes::from_static(b"+A\r\n")), None);
        assert_eq!(&q.pop_ready().unwrap().bytes[..], b"+A\r\n");
        assert_eq!(&q.pop_ready().unwrap().bytes[..], b"+L\r\n");
        assert!(q.pop_ready().is_none());
        assert!(q.is_waiting(c));
        q.complete(c, 0, Ok(Bytes::from_static(b":2\r\n")), None);
        assert!(!q.is_waiting(c));
        assert_eq!(&q.pop_ready().unwrap().bytes[..], b":3\r\n");
        assert!(q.is_empty());
    }

    #[test]
    fn a_partly_written_reply_keeps_its_error_and_length() {
        let mut q = ReplyQueue::default();
        let a = q.push_waiting(C, false);
        let head = Head {
            len: 4,
            error: true,
        };
        q.complete(a, 0, Ok(Bytes::from_static(b"xxxx\r\n")), Some(head));
        let r = q.pop_ready().unwrap();
        assert!(r.error);
        assert_eq!((r.written, &r.bytes[..]), (4, &b"xxxx\r\n"[..]));
    }

    #[test]
    fn a_merged_reply_uses_the_protocol_of_its_request() {
        let mut q = ReplyQueue::default();
        let s = q.push_merging(
            Plan::Broadcast(crate::command::MergeKind::FirstNonNull),
            1,
            C,
            Proto::Resp2,
            false,
        );
        q.complete(s, 0, Ok(Bytes::from_static(b"_\r\n")), None);
        assert_eq!(&q.pop_ready().unwrap().bytes[..], b"$-1\r\n");
    }
}
