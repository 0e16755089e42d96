//! Node health: the state shared by a node's connections and the checker.

use std::sync::atomic::{AtomicBool, Ordering};

/// Health of one node, read on the hot path with one relaxed load.
#[derive(Debug)]
pub struct NodeHealth {
    down: AtomicBool,
}

impl Default for NodeHealth {
    fn default() -> Self {
        NodeHealth {
            down: AtomicBool::new(false),
        }
    }
}

impl NodeHealth {
    /// True when the node is marked down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Marks the node down (true) or up (false); returns whether it changed.
    pub fn set_down(&self, down: bool) -> bool {
        self.down.swap(down, Ordering::AcqRel) != down
    }
}
