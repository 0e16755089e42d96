//! [`Placement`]: hash function + hash tag + distribution over a node list.

use super::hash::HashFunction;
use super::ring::Ring;
use super::tag::hashable_part;

/// How points and key hashes are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HashMode {
    /// ringproxy's own rule: 640 points per unit of weight (160 digests of 4 points;
    /// no renormalisation when nodes are added), key hash = 64-bit FNV-1a with a
    /// finaliser, folded to 32 bits.
    #[default]
    Ringproxy,
    /// nutcracker 0.5.0 byte-for-byte (checked against nutcracker itself by
    /// `tests/twemproxy_placement.rs`).
    Twemproxy,
}

/// How a key hash is turned into a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Distribution {
    /// Consistent hashing on the ketama continuum.
    #[default]
    Ketama,
    /// `hash % total live weight` over live nodes in sorted order.
    Modula,
    /// Any live node (nutcracker's `random`).
    Random,
}

/// What a [`Placement`] is built from, apart from the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementSpec {
    /// Point and hash rules.
    pub mode: HashMode,
    /// Key hash function (ringproxy mode uses [`HashFunction::Ringproxy`]).
    pub function: HashFunction,
    /// Ring or modula or random.
    pub distribution: Distribution,
    /// Hash tag delimiters, e.g. `Some([b'{', b'}'])`.
    pub tag: Option<[u8; 2]>,
}

/// One node as placement sees it.
#[derive(Clone, Debug)]
pub struct NodeSpec<'a> {
    /// The string hashed onto the ring (node name; twemproxy identity rules are
    /// applied by the caller).
    pub identity: &'a [u8],
    /// Relative weight, >= 1.
    pub weight: u32,
    /// Whether the node takes part (false: ejected).
    pub live: bool,
}

/// Maps keys to node indices (indices into the `nodes` slice given to [`Placement::build`]).
#[derive(Clone, Debug)]
pub struct Placement {
    spec: PlacementSpec,
    ring: Ring,
    /// A Redis Cluster pool's slot table: when set, it places every key (the ring
    /// is empty).
    slots: Option<std::sync::Arc<crate::cluster::slot::SlotTable>>,
}

impl Placement {
    /// Builds the placement over live nodes. Never fails: no live node gives a
    /// placement whose lookups return `None`.
    pub fn build(spec: &PlacementSpec, nodes: &[NodeSpec<'_>]) -> Placement {
        Placement {
            spec: spec.clone(),
            ring: Ring::build(spec, nodes),
            slots: None,
        }
    }

    /// A Redis Cluster placement: each key goes to its slot's node in `table`.
    pub fn slots(
        spec: &PlacementSpec,
        table: std::sync::Arc<crate::cluster::slot::SlotTable>,
    ) -> Placement {
        Placement {
            spec: spec.clone(),
            ring: Ring::build(spec, &[]),
            slots: Some(table),
        }
    }

    /// The slot table of a Redis Cluster placement.
    pub fn slot_table(&self) -> Option<&crate::cluster::slot::SlotTable> {
        self.slots.as_deref()
    }

    /// The reply for keys that must meet on one node but do not: Redis Cluster's
    /// text in a cluster pool (slots), the proxy's own otherwise (nodes).
    pub fn crossslot(&self) -> &'static [u8] {
        match self.slots {
            Some(_) => crate::errors::CROSSSLOT_SLOTS,
            None => crate::errors::CROSSSLOT,
        }
    }

    /// The node owning `key`, or `None` when no node is live.
    pub fn node_for_key(&self, key: &[u8]) -> Option<usize> {
        if let Some(t) = &self.slots {
            return t.node_for_key(key);
        }
        let part = hashable_part(key, self.spec.tag);
        self.ring.lookup_key(&self.spec, part)
    }

    /// The spec this placement was built from.
    pub fn spec(&self) -> &PlacementSpec {
        &self.spec
    }

    /// The ring (points or slots) behind this placement.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twemproxy(function: HashFunction, distribution: Distribution) -> PlacementSpec {
        PlacementSpec {
            mode: HashMode::Twemproxy,
            function,
            distribution,
            tag: Some(*b"{}"),
        }
    }

    const EXAMPLE: [&str; 4] = [
        "127.0.0.1:17001",
        "127.0.0.1:17002",
        "127.0.0.1:17003",
        "127.0.0.1:17004",
    ];

    fn example_nodes() -> Vec<NodeSpec<'static>> {
        EXAMPLE
            .iter()
            .map(|n| NodeSpec {
                identity: n.as_bytes(),
                weight: 1,
                live: true,
            })
            .collect()
    }

    #[test]
    fn twemproxy_example_from_the_placement_notes() {
        let p = Placement::build(
            &twemproxy(HashFunction::Fnv1a64, Distribution::Ketama),
            &example_nodes(),
        );
        let at = |k: &[u8]| p.node_for_key(k).map(|i| EXAMPLE[i]);
        assert_eq!(at(b"foo"), Some("127.0.0.1:17002"));
        assert_eq!(at(b"bar"), Some("127.0.0.1:17004"));
        assert_eq!(at(b"{user1000}.following"), Some("127.0.0.1:17003"));
        assert_eq!(at(b"{user1000}.followers"), Some("127.0.0.1:17003"));
        assert_eq!(p.ring().points().len(), 640);
    }

    #[test]
    fn twemproxy_empty_key_hashes_to_zero() {
        let spec = twemproxy(HashFunction::Fnv1a64, Distribution::Ketama);
        let p = Placement::build(&spec, &example_nodes());
        let first = p.ring().points()[0].1 as usize;
        assert_eq!(p.node_for_key(b""), Some(first));
        let modula = Placement::build(
            &twemproxy(HashFunction::Md5, Distribution::Modula),
            &example_nodes(),
        );
        assert_eq!(modula.node_for_key(b""), Some(0));
    }

    #[test]
    fn ejected_node_loses_only_its_keys() {
        let spec = twemproxy(HashFunction::Murmur, Distribution::Ketama);
        let all = Placement::build(&spec, &example_nodes());
        let mut nodes = example_nodes();
        nodes[1].live = false;
        let less = Placement::build(&spec, &nodes);
        for i in 0..2000 {
            let key = format!("k{i}");
            let (a, b) = (
                all.node_for_key(key.as_bytes()),
                less.node_for_key(key.as_bytes()),
            );
            assert_ne!(b, Some(1));
            if a != Some(1) {
                assert_eq!(a, b, "{key}");
            }
        }
    }
}
