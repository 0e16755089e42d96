//! Redis Cluster key slots: CRC16 (XMODEM) of the key's hash tag, modulo 16384, and
//! the table from slot to node index a cluster pool's placement uses.

use crate::route::tag::hashable_part;

/// Slots in a Redis Cluster.
pub const SLOTS: usize = 16384;
/// Redis Cluster's hash tag delimiters.
pub const TAG: [u8; 2] = *b"{}";
/// A slot no node serves in the table.
const UNASSIGNED: u16 = u16::MAX;

/// CRC16 (XMODEM: polynomial 0x1021, initial value 0) of `data`, as Redis Cluster
/// uses: the low 16 bits of nutcracker's `crc16` (the same table).
pub fn crc16(data: &[u8]) -> u16 {
    crate::route::HashFunction::Crc16.hash(data) as u16
}

/// The slot of `key`: only the part inside the first non-empty `{...}` counts.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashable_part(key, Some(TAG))) & (SLOTS as u16 - 1)
}

/// Slot → node index, for every slot (unassigned slots have no node).
#[derive(Clone, PartialEq, Eq)]
pub struct SlotTable {
    owner: Box<[u16]>,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let assigned = self.owner.iter().filter(|&&o| o != UNASSIGNED).count();
        f.debug_struct("SlotTable")
            .field("assigned", &assigned)
            .finish()
    }
}

impl Default for SlotTable {
    fn default() -> Self {
        SlotTable {
            owner: vec![UNASSIGNED; SLOTS].into_boxed_slice(),
        }
    }
}

impl SlotTable {
    /// Gives slots `start..=end` to node `node` (slots past the last are ignored).
    pub fn assign(&mut self, start: u16, end: u16, node: usize) {
        let node = u16::try_from(node).unwrap_or(UNASSIGNED);
        let end = (end as usize).min(SLOTS - 1);
        for o in self.owner.iter_mut().take(end + 1).skip(start as usize) {
            *o = node;
        }
    }

    /// The node serving `slot`, if any.
    #[inline]
    pub fn node_of_slot(&self, slot: u16) -> Option<usize> {
        match self.owner.get(slot as usize) {
            Some(&o) if o != UNASSIGNED => Some(o as usize),
            _ => None,
        }
    }

    /// The node serving `key`'s slot, if any.
    #[inline]
    pub fn node_for_key(&self, key: &[u8]) -> Option<usize> {
        self.node_of_slot(key_slot(key))
    }

    /// Slots without a node.
    pub fn unassigned(&self) -> usize {
        self.owner.iter().filter(|&&o| o == UNASSIGNED).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value_and_known_slots() {
        // The XMODEM check value, and slots as Redis's CLUSTER KEYSLOT gives them
        // (tests/cluster_mode.rs compares many more keys with a real node).
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{}x"), crc16(b"{}x") & 16383);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn table_assigns_ranges() {
        let mut t = SlotTable::default();
        assert_eq!(t.unassigned(), SLOTS);
        t.assign(0, 5460, 0);
        t.assign(5461, 10922, 1);
        t.assign(10923, 20000, 2);
        assert_eq!(t.unassigned(), 0);
        assert_eq!(t.node_of_slot(5460), Some(0));
        assert_eq!(t.node_of_slot(5461), Some(1));
        assert_eq!(t.node_of_slot(16383), Some(2));
        assert_eq!(t.node_for_key(b"foo"), Some(2));
        t.assign(100, 100, usize::MAX);
        assert_eq!(t.node_of_slot(100), None);
        assert_eq!(t.node_of_slot(16384), None);
    }
}
