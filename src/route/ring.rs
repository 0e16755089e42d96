//! Ketama continuum. SKELETON: the route helper replaces this file.

use super::placement::{NodeSpec, PlacementSpec};

/// Sorted points and the node each belongs to.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    live: Vec<usize>,
}

impl Ring {
    /// Builds the ring for `spec` over the live entries of `nodes`.
    pub fn build(spec: &PlacementSpec, nodes: &[NodeSpec<'_>]) -> Ring {
        let _ = spec;
        Ring {
            live: nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.live)
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// The node index for an already tag-stripped key.
    pub fn lookup_key(&self, spec: &PlacementSpec, part: &[u8]) -> Option<usize> {
        let h = spec.function.hash(part) as usize;
        if self.live.is_empty() {
            None
        } else {
            Some(self.live[h % self.live.len()])
        }
    }
}
