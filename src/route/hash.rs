//! Key hash functions. SKELETON: the route helper replaces this file.

/// A key hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HashFunction {
    /// ringproxy mode: 64-bit FNV-1a (`fnv` crate) folded to 32 bits.
    #[default]
    Ringproxy,
    /// nutcracker `fnv1a_64` (really a 32-bit hash with truncated constants).
    Fnv1a64,
}

impl HashFunction {
    /// Hashes `key` to 32 bits.
    pub fn hash(self, key: &[u8]) -> u32 {
        let _ = key;
        0
    }

    /// Parses a nutcracker hash name (`fnv1a_64`, `murmur`, ...).
    pub fn from_name(name: &str) -> Option<HashFunction> {
        match name {
            "fnv1a_64" => Some(HashFunction::Fnv1a64),
            _ => None,
        }
    }
}
