//! The near cache's memory: replies by (RESP version, request bytes), indexed by
//! their key and node, evicted least recently used first within a byte budget,
//! and the sequence numbers that keep a reply read before an invalidation from
//! being stored after it.
//!
//! Every invalidation (a server push, a flush, a write through the proxy) takes a
//! new number from `seq` and records it for its key (or node). A fill records the
//! number current when it was sent; its reply is stored only if nothing it covers
//! was invalidated since, and no write to its key through the proxy is in flight.

use crate::resp::Proto;
use bytes::Bytes;
use fnv::FnvHashMap;
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// Bytes an entry costs besides its reply and request (index and bookkeeping).
pub const ENTRY_OVERHEAD: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EntryKey {
    proto: Proto,
    frame: Bytes,
}

#[derive(Debug)]
struct Entry {
    key: Bytes,
    node: usize,
    reply: Bytes,
    used: u64,
}

impl Entry {
    fn cost(&self, ek: &EntryKey) -> usize {
        self.reply.len() + ek.frame.len() + self.key.len() + ENTRY_OVERHEAD
    }
}

/// What a fill remembers from when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// Counts of what the store did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Entries removed by invalidations (pushes, flushes, writes).
    pub invalidated: u64,
    /// Entries evicted for room.
    pub evicted: u64,
    /// Fills not stored (invalidated meanwhile, too large, or not cacheable).
    pub refused: u64,
}

/// The entries and their bookkeeping.
#[derive(Debug, Default)]
pub struct Store {
    entries: FnvHashMap<EntryKey, Entry>,
    by_key: FnvHashMap<Bytes, SmallVec<[EntryKey; 2]>>,
    lru: BTreeMap<u64, EntryKey>,
    clock: u64,
    bytes: usize,
    seq: u64,
    killed: FnvHashMap<Bytes, u64>,
    node_flushed: FnvHashMap<usize, u64>,
    writing: FnvHashMap<Bytes, u32>,
    fills: usize,
    /// What happened so far.
    pub counts: Counts,
}

impl Store {
    /// Bytes held now (replies, requests, keys and overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached reply to `frame` for a client speaking `proto`.
    pub fn get(&mut self, proto: Proto, frame: &Bytes) -> Option<Bytes> {
        let ek = EntryKey {
            proto,
            frame: frame.clone(),
        };
        let e = self.entries.get_mut(&ek)?;
        self.lru.remove(&e.used);
        self.clock += 1;
        e.used = self.clock;
        self.lru.insert(e.used, ek);
        Some(e.reply.clone())
    }

    /// A fill of `key` is sent now.
    pub fn begin_fill(&mut self) -> Ticket {
        self.fills += 1;
        Ticket(self.seq)
    }

    /// The fill of `ticket` for (`proto`, `frame`) on `key` of `node` got `reply`
    /// (`None`: no reply to store, e.g. an error); stores it if allowed, within
    /// `max_entry` and `max_bytes`.
    #[allow(clippy::too_many_arguments)]
    pub fn end_fill(
        &mut self,
        ticket: Ticket,
        node: usize,
        key: &Bytes,
        proto: Proto,
        frame: &Bytes,
        reply: Option<&Bytes>,
        limits: (usize, usize),
    ) -> bool {
        self.fills = self.fills.saturating_sub(1);
        let fresh = self.killed.get(key).is_none_or(|&s| s <= ticket.0)
            && self.node_flushed.get(&node).is_none_or(|&s| s <= ticket.0)
            && !self.writing.contains_key(key);
        if self.fills == 0 {
            self.killed.clear();
        }
        let (max_entry, max_bytes) = limits;
        let stored = match reply {
            Some(r) if fresh && r.len() <= max_entry => {
                self.insert(node, key, proto, frame, r.clone(), max_bytes)
            }
            _ => false,
        };
        if !stored {
            // An older reply to the same request is no better than this one.
            self.remove(&EntryKey {
                proto,
                frame: frame.clone(),
            });
        }
        if !stored {
            self.counts.refused += 1;
        }
        stored
    }

    fn insert(
        &mut self,
        node: usize,
        key: &Bytes,
        proto: Proto,
        frame: &Bytes,
        reply: Bytes,
        max_bytes: usize,
    ) -> bool {
        let ek = EntryKey {
            proto,
            frame: frame.clone(),
        };
        self.remove(&ek);
        self.clock += 1;
        let e = Entry {
            key: key.clone(),
            node,
            reply,
            used: self.clock,
        };
        let cost = e.cost(&ek);
        if cost > max_bytes {
            return false;
        }
        while self.bytes + cost > max_bytes {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            self.remove(&oldest);
            self.counts.evicted += 1;
        }
        self.bytes += cost;
        self.lru.insert(e.used, ek.clone());
        self.by_key.entry(key.clone()).or_default().push(ek.clone());
        self.entries.insert(ek, e);
        true
    }

    fn remove(&mut self, ek: &EntryKey) -> bool {
        let Some(e) = self.entries.remove(ek) else {
            return false;
        };
        self.bytes -= e.cost(ek);
        self.lru.remove(&e.used);
        if let Some(list) = self.by_key.get_mut(&e.key) {
            list.retain(|k| k != ek);
            if list.is_empty() {
                self.by_key.remove(&e.key);
            }
        }
        true
    }

    /// `key` changed (a push, or a write through the proxy): its entries go, and
    /// fills sent before now are not stored.
    pub fn invalidate(&mut self, key: &[u8]) -> usize {
        self.seq += 1;
        let key = Bytes::copy_from_slice(key);
        if self.fills > 0 {
            self.killed.insert(key.clone(), self.seq);
        }
        let mut removed = 0;
        for ek in self.by_key.remove(&key).unwrap_or_default() {
            if let Some(e) = self.entries.remove(&ek) {
                self.bytes -= e.cost(&ek);
                self.lru.remove(&e.used);
                removed += 1;
            }
        }
        self.counts.invalidated += removed as u64;
        removed
    }

    /// A fill sent with [`Store::begin_fill`] will not come back here.
    pub fn abandon_fill(&mut self) {
        self.fills = self.fills.saturating_sub(1);
        if self.fills == 0 {
            self.killed.clear();
        }
    }

    /// Everything of `node` goes (FLUSHALL, a lost tracking connection), and its
    /// fills sent before now are not stored.
    pub fn flush_node(&mut self, node: usize) -> usize {
        self.seq += 1;
        self.node_flushed.insert(node, self.seq);
        let gone: Vec<EntryKey> = self
            .entries
            .iter()
            .filter(|(_, e)| e.node == node)
            .map(|(k, _)| k.clone())
            .collect();
        let removed = gone.len();
        for ek in gone {
            self.remove(&ek);
        }
        self.counts.invalidated += removed as u64;
        removed
    }

    /// A write to `key` through the proxy is sent: its entries go, and none is
    /// stored until [`Store::end_write`].
    pub fn begin_write(&mut self, key: &[u8]) -> usize {
        let removed = self.invalidate(key);
        *self.writing.entry(Bytes::copy_from_slice(key)).or_default() += 1;
        removed
    }

    /// That write was answered (or failed): its key is invalidated once more
    /// (a fill that ran before the write is not stored).
    pub fn end_write(&mut self, key: &[u8]) -> usize {
        if let Some(n) = self.writing.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.writing.remove(key);
            }
        }
        self.invalidate(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: (usize, usize) = (1000, 10_000);

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn fill(s: &mut Store, key: &str, reply: &str) -> bool {
        fill_within(s, key, reply, LIMITS)
    }

    /// One fill of `GET key` answered `reply` with nothing in between.
    fn fill_within(s: &mut Store, key: &str, reply: &str, limits: (usize, usize)) -> bool {
        let t = s.begin_fill();
        let frame = b(&format!("GET {key}"));
        s.end_fill(t, 1, &b(key), Proto::Resp2, &frame, Some(&b(reply)), limits)
    }

    #[test]
    fn a_reply_read_before_an_invalidation_is_not_stored() {
        let mut s = Store::default();
        let t = s.begin_fill();
        s.invalidate(b"k");
        let frame = b("GET k");
        assert!(!s.end_fill(
            t,
            1,
            &b("k"),
            Proto::Resp2,
            &frame,
            Some(&b("$1\r\nv\r\n")),
            LIMITS
        ));
        assert!(s.get(Proto::Resp2, &frame).is_none());
        // An invalidation of another key does not matter; a node flush does.
        let t = s.begin_fill();
        s.invalidate(b"other");
        assert!(s.end_fill(t, 1, &b("k"), Proto::Resp2, &frame, Some(&b("x")), LIMITS));
        let t = s.begin_fill();
        s.flush_node(1);
        assert!(s.get(Proto::Resp2, &frame).is_none(), "flushed");
        assert!(!s.end_fill(t, 1, &b("k"), Proto::Resp2, &frame, Some(&b("x")), LIMITS));
        assert_eq!(s.counts.refused, 2);
    }

    #[test]
    fn writes_in_flight_block_fills_of_their_key() {
        let mut s = Store::default();
        assert!(fill(&mut s, "k", "old"));
        s.begin_write(b"k");
        assert!(s.get(Proto::Resp2, &b("GET k")).is_none());
        assert!(!fill(&mut s, "k", "old"), "while the write is in flight");
        let t = s.begin_fill();
        s.end_write(b"k");
        let frame = b("GET k");
        assert!(!s.end_fill(t, 1, &b("k"), Proto::Resp2, &frame, Some(&b("old")), LIMITS));
        assert!(fill(&mut s, "k", "new"), "after the write");
        assert_eq!(s.get(Proto::Resp2, &frame), Some(b("new")));
    }

    #[test]
    fn bytes_are_bounded_and_the_least_recently_used_goes_first() {
        let mut s = Store::default();
        let per = 100 + "GET k00".len() + 3 + ENTRY_OVERHEAD;
        let limits = (1000, per * 3);
        let x100 = "x".repeat(100);
        for i in 0..3 {
            assert!(fill_within(&mut s, &format!("k{i:02}"), &x100, limits));
        }
        assert_eq!(s.bytes(), per * 3);
        s.get(Proto::Resp2, &b("GET k00"));
        assert!(fill_within(&mut s, "k03", &x100, limits));
        let (k, f) = (b("k03"), b("GET k03"));
        assert!(
            s.get(Proto::Resp2, &b("GET k01")).is_none(),
            "least recently used"
        );
        assert!(s.get(Proto::Resp2, &b("GET k00")).is_some());
        assert_eq!((s.len(), s.bytes(), s.counts.evicted), (3, per * 3, 1));
        // Larger than the entry limit: never stored.
        let t = s.begin_fill();
        assert!(!s.end_fill(
            t,
            1,
            &k,
            Proto::Resp2,
            &f,
            Some(&b(&"y".repeat(1001))),
            limits
        ));
        assert!(s.get(Proto::Resp2, &f).is_none(), "the old entry went too");
        s.invalidate(b"k00");
        assert_eq!((s.len(), s.counts.invalidated), (1, 1));
    }
}
