//! The `near_cache:` settings: the file form, the validated form and their checks.

use crate::config::checks::Report;
use crate::config::locate::Seg::{Item, Key};
use bytes::Bytes;
use serde::Deserialize;

/// Default memory budget (64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Default largest reply cached (64 KiB).
pub const DEFAULT_MAX_ENTRY: usize = 64 << 10;
/// Most key patterns.
pub const MAX_PATTERNS: usize = 64;
/// Smallest memory budget (64 KiB).
pub const MIN_MAX_BYTES: usize = 64 << 10;
/// Default rate at which a hot key is cached (`hot: true`), requests per second.
pub const DEFAULT_HOT_RATE: u64 = 1000;

/// `near_cache:` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearCacheFile {
    /// Memory for cached replies, requests and their bookkeeping, at least 64KiB.
    /// Default 64MiB.
    #[serde(
        default = "default_max_bytes",
        deserialize_with = "crate::config::size::deserialize"
    )]
    pub max_bytes: usize,
    /// Largest reply cached, 1..=max_bytes. Default 64KiB.
    #[serde(
        default = "default_max_entry",
        deserialize_with = "crate::config::size::deserialize"
    )]
    pub max_entry: usize,
    /// Key patterns whose reads are cached: a prefix followed by `*` (`cfg:*`),
    /// 0..=64 of them, not overlapping. Default none (then `hot` must be true).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Also cache the keys the hot-key detector sees at `hot_rate` requests per
    /// second or more. Default false.
    #[serde(default)]
    pub hot: bool,
    /// Requests per second at which a hot key is cached (with `hot: true`), at
    /// least 1. Default 1000.
    #[serde(default = "default_hot_rate")]
    pub hot_rate: u64,
}

fn default_hot_rate() -> u64 {
    DEFAULT_HOT_RATE
}

fn default_max_bytes() -> usize {
    DEFAULT_MAX_BYTES
}

fn default_max_entry() -> usize {
    DEFAULT_MAX_ENTRY
}

/// Validated `near_cache:` settings (units and defaults: [`NearCacheFile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearCacheConfig {
    /// Memory budget in bytes.
    pub max_bytes: usize,
    /// Largest reply cached, bytes.
    pub max_entry: usize,
    /// Key prefixes (the patterns without their `*`).
    pub prefixes: Vec<Bytes>,
    /// Cache hot keys too.
    pub hot: bool,
    /// Rate at which a key counts as hot, requests per second.
    pub hot_rate: u64,
}

impl NearCacheConfig {
    /// Whether reads of `key` are cached.
    pub fn covers(&self, key: &[u8]) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p))
    }
}

/// Checks `f` (the `near_cache:` section) into `r`.
pub fn validate(r: &mut Report, f: &NearCacheFile) -> NearCacheConfig {
    let p = |k| [Key("near_cache"), Key(k)];
    if f.max_bytes < MIN_MAX_BYTES {
        r.problem(
            &p("max_bytes"),
            format!(
                "must be at least {}",
                crate::config::size::format(MIN_MAX_BYTES)
            ),
        );
    }
    if f.max_entry == 0 || f.max_entry > f.max_bytes {
        r.problem(&p("max_entry"), "must be more than 0 and at most max_bytes");
    }
    if (f.keys.is_empty() && !f.hot) || f.keys.len() > MAX_PATTERNS {
        r.problem(
            &p("keys"),
            format!("needs 1..={MAX_PATTERNS} patterns (or hot: true)"),
        );
    }
    if f.hot_rate == 0 {
        r.problem(&p("hot_rate"), "must be at least 1");
    }
    let mut prefixes = Vec::new();
    for (i, k) in f.keys.iter().enumerate() {
        match k.strip_suffix('*') {
            Some(prefix) if !prefix.is_empty() && !prefix.contains(['*', '?', '[', '\\']) => {
                prefixes.push(Bytes::copy_from_slice(prefix.as_bytes()));
            }
            _ => r.problem(
                &[Key("near_cache"), Key("keys"), Item(i)],
                "must be a prefix followed by one `*` (e.g. \"cfg:*\"): the cache is kept right by BCAST PREFIX tracking",
            ),
        }
    }
    for (i, a) in prefixes.iter().enumerate() {
        if prefixes
            .iter()
            .enumerate()
            .any(|(j, b)| i != j && a.starts_with(b))
        {
            r.problem(
                &[Key("near_cache"), Key("keys"), Item(i)],
                "overlaps another pattern (Redis refuses overlapping tracking prefixes)",
            );
        }
    }
    NearCacheConfig {
        max_bytes: f.max_bytes,
        max_entry: f.max_entry,
        prefixes,
        hot: f.hot,
        hot_rate: f.hot_rate,
    }
}
