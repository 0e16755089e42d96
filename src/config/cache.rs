//! Settings for a cache tier that must not hurt its database: `ttl_jitter` (keys
//! written together do not expire together, see [`crate::ttl_jitter`]) and `warmup`
//! (keys that move to another node on a topology change are still found on their
//! previous owner for a while, see [`crate::warmup`]).

use super::checks::{self as ck, Report};
use super::locate::Seg::{Item, Key};
use serde::Deserialize;
use std::time::Duration;

/// Default `warmup.window`: 10 minutes.
pub const DEFAULT_WARMUP_WINDOW: Duration = Duration::from_secs(600);
/// Largest `warmup.window`: one day.
pub const MAX_WARMUP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Default `warmup.copy`: a value found on the previous owner is copied to the new one.
pub const DEFAULT_WARMUP_COPY: bool = true;
/// Largest `ttl_jitter[].percent`.
pub const MAX_JITTER_PERCENT: u32 = 100;

/// One `ttl_jitter:` rule in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitterFile {
    /// Key glob patterns (Redis glob syntax, `"session:*"`). Required, at least one.
    pub keys: Vec<String>,
    /// Most a TTL is lowered by, in percent of it, 1..=100. Required.
    pub percent: u32,
}

/// `warmup:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmupFile {
    /// How long after a topology change a miss on a moved key is retried on its
    /// previous owner, more than 0 and at most 24h. Default 10m.
    #[serde(with = "super::duration")]
    pub window: Duration,
    /// Whether a value found on the previous owner is copied to the new owner (with
    /// its remaining TTL; never over a value written there meanwhile). Default true.
    pub copy: bool,
}

impl Default for WarmupFile {
    fn default() -> Self {
        WarmupFile {
            window: DEFAULT_WARMUP_WINDOW,
            copy: DEFAULT_WARMUP_COPY,
        }
    }
}

/// A validated TTL jitter rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterRule {
    /// Key glob patterns, as bytes.
    pub keys: Vec<Vec<u8>>,
    /// Most a TTL is lowered by, in percent (1..=100).
    pub percent: u32,
}

/// Validated warm-up settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmupConfig {
    /// How long a topology change's previous placement is asked after misses.
    pub window: Duration,
    /// Copy values found on a previous owner to the new owner.
    pub copy: bool,
}

/// A pool's cache-tier settings (both off by default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheConfig {
    /// TTL jitter rules, first match wins (empty: off).
    pub ttl_jitter: Vec<JitterRule>,
    /// Warm topology changes (`None`: off).
    pub warmup: Option<WarmupConfig>,
}

/// Validates `ttl_jitter` and `warmup` of a ringproxy file.
pub fn cache(r: &mut Report, jitter: &[JitterFile], warmup: Option<&WarmupFile>) -> CacheConfig {
    let rules = jitter
        .iter()
        .enumerate()
        .map(|(i, j)| {
            if j.keys.is_empty() || j.keys.iter().any(String::is_empty) {
                let msg = "needs at least one non-empty key pattern";
                r.problem(&[Key("ttl_jitter"), Item(i), Key("keys")], msg);
            }
            let p = [Key("ttl_jitter"), Item(i), Key("percent")];
            let percent = r.check(&p, ck::range(j.percent, 1, MAX_JITTER_PERCENT));
            JitterRule {
                keys: j.keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
                percent: percent.unwrap_or(j.percent),
            }
        })
        .collect();
    let warmup = warmup.map(|w| {
        let p = [Key("warmup"), Key("window")];
        let window = r.check(
            &p,
            ck::duration_in(w.window, Duration::ZERO, MAX_WARMUP_WINDOW),
        );
        WarmupConfig {
            window: window.unwrap_or(w.window),
            copy: w.copy,
        }
    });
    CacheConfig {
        ttl_jitter: rules,
        warmup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "listen: 127.0.0.1:6380\nnodes: [{addr: 127.0.0.1:7001}]\n";

    fn problems(extra: &str) -> Vec<String> {
        match crate::config::check(&format!("{BASE}{extra}")) {
            Ok(_) => vec![],
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn off_by_default_and_read_when_set() {
        let (c, _) = crate::config::check(BASE).unwrap();
        assert_eq!(c.pools[0].cache, CacheConfig::default());
        let text = format!(
            "{BASE}ttl_jitter:\n  - {{keys: [\"s:*\"], percent: 10}}\nwarmup: {{window: 2m}}\n"
        );
        let (c, _) = crate::config::check(&text).unwrap();
        let cache = &c.pools[0].cache;
        assert_eq!(cache.ttl_jitter[0].keys, vec![b"s:*".to_vec()]);
        assert_eq!(
            cache.warmup,
            Some(WarmupConfig {
                window: Duration::from_secs(120),
                copy: DEFAULT_WARMUP_COPY
            })
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_line() {
        let p = problems("ttl_jitter:\n  - keys: []\n    percent: 0\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("line 4: ttl_jitter[0].keys"), "{p:?}");
        assert!(p[1].contains("ttl_jitter[0].percent: 0 is out of range 1..=100"));
        let p = problems("warmup:\n  window: 0s\n");
        assert!(p[0].contains("warmup.window: must be more than 0"), "{p:?}");
        let p = problems("warmup:\n  window: 2d\n");
        assert!(p[0].contains("warmup"), "{p:?}");
        let p = problems("warmup: {window: 25h}\n");
        assert!(p[0].contains("more than the maximum 24h"), "{p:?}");
        let p = problems("warmup: {copy: yes, wndow: 1m}\n");
        assert!(p.iter().any(|p| p.contains("wndow")), "{p:?}");
    }
}
