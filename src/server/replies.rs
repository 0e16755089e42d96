//! The session's ordered reply queue: replies leave in request order, whatever order
//! the nodes answer in.

use crate::command::merge::{PartReply, Plan, merge};
use crate::metrics::RequestClass;
use crate::resp::Proto;
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

enum Slot {
    Waiting(RequestClass),
    Ready(Bytes, After, RequestClass),
    Merging(Box<Merging>),
}

struct Merging {
    class: RequestClass,
    plan: Plan,
    parts: SmallVec<[Option<PartReply>; 4]>,
    remaining: usize,
}

/// Replies of one client, in request order.
pub struct ReplyQueue {
    base: u64,
    slots: VecDeque<Slot>,
    waiting: usize,
    /// Class of the request being dispatched; recorded in the slots pushed for it.
    pub class: RequestClass,
}

impl Default for ReplyQueue {
    fn default() -> Self {
        ReplyQueue {
            base: 0,
            slots: VecDeque::new(),
            waiting: 0,
            class: RequestClass::Local,
        }
    }
}

impl ReplyQueue {
    /// Requests not yet written back.
    pub fn len(&self) -> usize {
        self.slots.len()
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

    /// A reply known now (local command, error).
    pub fn push_ready(&mut self, reply: Bytes, after: After) {
        self.slots.push_back(Slot::Ready(reply, after, self.class));
    }

    /// A request waiting for one backend reply; returns its sequence number.
    pub fn push_waiting(&mut self) -> u64 {
        self.slots.push_back(Slot::Waiting(self.class));
        self.waiting += 1;
        self.next_seq() - 1
    }

    /// A request waiting for `parts` replies to be merged per `plan`.
    pub fn push_merging(&mut self, plan: Plan, parts: usize) -> u64 {
        let m = Merging {
            class: self.class,
            plan,
            parts: (0..parts).map(|_| None).collect(),
            remaining: parts,
        };
        self.slots.push_back(Slot::Merging(Box::new(m)));
        self.waiting += 1;
        self.next_seq() - 1
    }

    /// Records a backend reply for (`seq`, `part`).
    pub fn complete(&mut self, seq: u64, part: u32, reply: PartReply, proto: Proto) {
        let Some(idx) = seq.checked_sub(self.base) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        match slot {
            Slot::Waiting(class) => {
                let bytes = reply.unwrap_or_else(|e| Bytes::from_static(e.wire()));
                *slot = Slot::Ready(bytes, After::Continue, *class);
                self.waiting -= 1;
            }
            Slot::Merging(m) => {
                if let Some(p @ None) = m.parts.get_mut(part as usize) {
                    *p = Some(reply);
                    m.remaining -= 1;
                }
                if m.remaining == 0 {
                    let parts: SmallVec<[PartReply; 4]> = m.parts.drain(..).flatten().collect();
                    self.waiting -= 1;
                    *slot = Slot::Ready(merge(&m.plan, &parts, proto), After::Continue, m.class);
                }
            }
            Slot::Ready(..) => {}
        }
    }

    /// The sequence number of the only request in the queue, if it waits for a
    /// single backend reply (the case where a reply may be written directly).
    pub fn lone_waiting(&self) -> Option<u64> {
        match (self.slots.len(), self.slots.front()) {
            (1, Some(Slot::Waiting(_))) => Some(self.base),
            _ => None,
        }
    }

    /// Drops the front slot `seq` whose reply was written directly; returns its class.
    pub fn skip_front(&mut self, seq: u64) -> Option<RequestClass> {
        match self.slots.front() {
            Some(Slot::Waiting(class)) if seq == self.base => {
                let class = *class;
                self.slots.pop_front();
                self.base += 1;
                self.waiting -= 1;
                Some(class)
            }
            _ => None,
        }
    }

    /// Takes the front reply if it is ready, with the class of its request.
    pub fn pop_ready(&mut self) -> Option<(Bytes, After, RequestClass)> {
        if !matches!(self.slots.front(), Some(Slot::Ready(..))) {
            return None;
        }
        self.base += 1;
        match self.slots.pop_front() {
            Some(Slot::Ready(b, a, c)) => Some((b, a, c)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::SplitKind;

    #[test]
    fn replies_leave_in_order() {
        let mut q = ReplyQueue::default();
        let a = q.push_waiting();
        q.push_ready(Bytes::from_static(b"+L\r\n"), After::Continue);
        let c = q.push_merging(Plan::Split(SplitKind::SumInt, vec![]), 2);
        q.complete(c, 1, Ok(Bytes::from_static(b":1\r\n")), Proto::Resp2);
        assert!(q.pop_ready().is_none());
        q.complete(a, 0, Ok(Bytes::from_static(b"+A\r\n")), Proto::Resp2);
        assert_eq!(&q.pop_ready().unwrap().0[..], b"+A\r\n");
        assert_eq!(&q.pop_ready().unwrap().0[..], b"+L\r\n");
        assert!(q.pop_ready().is_none());
        q.complete(c, 0, Ok(Bytes::from_static(b":2\r\n")), Proto::Resp2);
        assert_eq!(&q.pop_ready().unwrap().0[..], b":3\r\n");
        assert!(q.is_empty());
    }
}
