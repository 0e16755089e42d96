//! The `hot_keys:` and `coalesce:` settings: the file form, the validated form and
//! their checks.

use crate::config::checks::{self as ck, Report};
use serde::Deserialize;
use std::time::Duration;

/// Default sliding window of the detector.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Default number of keys shown.
pub const DEFAULT_TOP: usize = 20;
/// Default sampling: one request in this many is counted (on average).
pub const DEFAULT_SAMPLE: u32 = 8;
/// Default log threshold: 0, never log.
pub const DEFAULT_LOG_THRESHOLD: u64 = 0;
/// Shortest window.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Longest window.
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// Most keys shown.
pub const MAX_TOP: usize = 200;
/// Sparsest sampling.
pub const MAX_SAMPLE: u32 = 1024;

/// `hot_keys:` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotKeysFile {
    /// Whether the detector runs. Default true.
    pub enabled: bool,
    /// Sliding window the rates are measured over, 1s..=1h. Default 10s.
    #[serde(deserialize_with = "crate::config::duration::deserialize")]
    pub window: Duration,
    /// Keys shown at `GET /hotkeys` and in `INFO hotkeys`, 1..=200 (each costs 4 counters per worker and window slot). Default 20.
    pub top: usize,
    /// One request in `sample` (on average, chosen at random) is counted, 1..=1024;
    /// 1 counts every request. Default 8.
    pub sample: u32,
    /// Requests per second above which a key is logged (once, until it falls
    /// below again); 0 = never. Default 0.
    pub log_threshold: u64,
}

impl Default for HotKeysFile {
    fn default() -> Self {
        HotKeysFile {
            enabled: true,
            window: DEFAULT_WINDOW,
            top: DEFAULT_TOP,
            sample: DEFAULT_SAMPLE,
            log_threshold: DEFAULT_LOG_THRESHOLD,
        }
    }
}

/// Validated `hot_keys:` settings (units and defaults: [`HotKeysFile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotKeysConfig {
    /// Detector on.
    pub enabled: bool,
    /// Sliding window.
    pub window: Duration,
    /// Keys shown.
    pub top: usize,
    /// Sampling rate (1 in `sample`).
    pub sample: u32,
    /// Log threshold in requests per second (0: off).
    pub log_threshold: u64,
}

impl Default for HotKeysConfig {
    fn default() -> Self {
        from_file(&HotKeysFile::default())
    }
}

fn from_file(f: &HotKeysFile) -> HotKeysConfig {
    HotKeysConfig {
        enabled: f.enabled,
        window: f.window,
        top: f.top,
        sample: f.sample,
        log_threshold: f.log_threshold,
    }
}

/// Checks `f` (the `hot_keys:` section) into `r`.
pub fn validate(r: &mut Report, f: &HotKeysFile) -> HotKeysConfig {
    use crate::config::locate::Seg::Key;
    let p = |k| [Key("hot_keys"), Key(k)];
    r.check(
        &p("window"),
        ck::duration_in(f.window, MIN_WINDOW, MAX_WINDOW),
    );
    r.check(&p("top"), ck::range(f.top, 1, MAX_TOP));
    r.check(&p("sample"), ck::range(f.sample, 1, MAX_SAMPLE));
    from_file(f)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = "listen: 127.0.0.1:6380\nnodes:\n  - addr: 127.0.0.1:7000\n";

    fn messages(extra: &str) -> Vec<String> {
        match parse(&format!("{BASE}{extra}")) {
            Ok(_) => vec![],
            Err(p) => p.into_iter().map(|p| p.message).collect(),
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let c = parse(BASE).unwrap();
        let p = &c.pools[0];
        assert_eq!(p.hot_keys, super::HotKeysConfig::default());
        assert!(p.hot_keys.enabled && !p.coalesce);
        let c = parse(&format!(
            "{BASE}coalesce: true\nhot_keys: {{window: 30s, top: 5, sample: 1, log_threshold: 500}}\n"
        ))
        .unwrap();
        let h = c.pools[0].hot_keys;
        assert_eq!(
            (h.window.as_secs(), h.top, h.sample, h.log_threshold),
            (30, 5, 1, 500)
        );
        assert!(c.pools[0].coalesce);
        let bad = messages("hot_keys: {window: 500ms, top: 0, sample: 2000}\n");
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(
            bad.iter().any(|m| m.starts_with("hot_keys.window:")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|m| m.starts_with("hot_keys.top:")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|m| m.starts_with("hot_keys.sample:")),
            "{bad:?}"
        );
        let unknown = messages("hot_keys: {windw: 10s}\n");
        assert!(unknown[0].contains("hot_keys.windw"), "{unknown:?}");
    }
}
