//! Key placement: which node owns a key. Pure values, no IO.
//!
//! - [`hash`]: every key hash (ringproxy's FNV-1a 64 folded, and nutcracker's
//!   twelve functions, byte-exact).
//! - [`identity`]: the string a server is known by on the ring (nutcracker's rule).
//! - [`tag`]: hash-tag extraction (`{user1}.name` hashes `user1`).
//! - [`ring`]: the ketama continuum (ringproxy and twemproxy point rules), modula.
//! - [`Placement`]: the three combined, built once per topology and shared read-only.

pub mod hash;
mod hashkit;
pub mod identity;
pub mod placement;
pub mod ring;
pub mod tag;

pub use hash::HashFunction;
pub use identity::twemproxy_identity;
pub use placement::{Distribution, HashMode, NodeSpec, Placement, PlacementSpec};
