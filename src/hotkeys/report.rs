//! What the detector shows: `GET /hotkeys` (JSON), `INFO hotkeys`, the per-node
//! gauges, and the log line when a key crosses `hot_keys.log_threshold`.

use super::{HotKeysConfig, Top};
use crate::server::PoolContext;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Bytes of a key shown before it is cut (`...` follows).
pub const SHOWN_KEY_BYTES: usize = 64;
/// Shortest period of the metrics and log task.
const MIN_TICK: Duration = Duration::from_millis(200);

/// `key` as printable ASCII: letters, digits and punctuation as they are (except
/// `\`, `"`, `,` and `=`, which INFO lines and log readers may split on),
/// every other byte as `\xHH`; cut after [`SHOWN_KEY_BYTES`] bytes with `...`
/// (also when `truncated` says the kept bytes were cut already).
pub fn printable(key: &[u8], truncated: bool) -> String {
    let mut out = String::with_capacity(key.len().min(SHOWN_KEY_BYTES) + 3);
    for &b in key.iter().take(SHOWN_KEY_BYTES) {
        match b {
            b'\\' | b'"' | b',' | b'=' => {
                let _ = write!(out, "\\x{b:02x}");
            }
            0x21..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    if truncated || key.len() > SHOWN_KEY_BYTES {
        out.push_str("...");
    }
    out
}

fn hex(key: &[u8]) -> String {
    key.iter()
        .fold(String::with_capacity(key.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The pool's hot keys now.
pub fn top_of(ctx: &PoolContext) -> (HotKeysConfig, Top) {
    let cfg = ctx.router.load().config.hot_keys;
    (cfg, ctx.hot.top(&cfg, ctx.precise_ms()))
}

/// One pool's entry of `GET /hotkeys`.
pub fn json(ctx: &PoolContext) -> Value {
    let (cfg, top) = top_of(ctx);
    let keys: Vec<Value> = top
        .keys
        .iter()
        .map(|k| {
            json!({
                "key": printable(&k.key, k.truncated),
                "key_hex": hex(&k.key),
                "truncated": k.truncated,
                "node": &*k.node,
                "rate": round(k.rate),
                "share": round(k.share),
            })
        })
        .collect();
    let nodes: Vec<Value> = top
        .nodes
        .iter()
        .map(|(n, r)| json!({"node": &**n, "rate": round(*r)}))
        .collect();
    json!({
        "pool": ctx.name,
        "enabled": cfg.enabled,
        "window_seconds": cfg.window.as_secs_f64(),
        "span_seconds": round(top.span),
        "sample": cfg.sample,
        "keys": keys,
        "nodes": nodes,
    })
}

/// The `INFO hotkeys` section.
pub fn info(ctx: &PoolContext) -> String {
    let (cfg, top) = top_of(ctx);
    let mut out = String::from("# Hotkeys\r\n");
    let _ = write!(
        out,
        "hotkeys_enabled:{}\r\nhotkeys_window_seconds:{}\r\nhotkeys_sample:{}\r\n",
        u8::from(cfg.enabled),
        cfg.window.as_secs(),
        cfg.sample
    );
    for (i, k) in top.keys.iter().enumerate() {
        let _ = write!(
            out,
            "hotkey_{i}:key={},node={},rate={:.1},share={:.3}\r\n",
            printable(&k.key, k.truncated),
            k.node,
            k.rate,
            k.share
        );
    }
    out
}

/// Every `window / SLOTS`: sets the per-node gauges (the hottest key's share and
/// rate) and logs keys that crossed `log_threshold`. Ends with the pool.
pub async fn watch(pool: Weak<PoolContext>, metrics: Arc<crate::metrics::Metrics>) {
    let mut logged: HashSet<u64> = HashSet::new();
    let mut gauges: HashMap<Arc<str>, crate::metrics::HotKeyGauges> = HashMap::new();
    loop {
        let Some(ctx) = pool.upgrade() else { return };
        let (cfg, top) = top_of(&ctx);
        for (node, _) in &top.nodes {
            let g = gauges
                .entry(node.clone())
                .or_insert_with(|| metrics.hot_key_gauges(&ctx.name, node));
            let hottest = top.keys.iter().find(|k| k.node == *node);
            g.top_share.set(hottest.map_or(0.0, |k| k.share));
            g.top_rate.set(hottest.map_or(0.0, |k| k.rate));
        }
        log_crossings(&ctx.name, &cfg, &top, &mut logged);
        let near = ctx.router.load().config.near_cache.clone();
        ctx.near.set_hot(near.as_ref(), &top, ctx.precise_ms());
        let tick = (cfg.window / super::SLOTS as u32).max(MIN_TICK);
        drop(ctx);
        tokio::time::sleep(tick).await;
    }
}

/// Logs each key whose rate is at or above the threshold once, until it falls below.
fn log_crossings(pool: &str, cfg: &HotKeysConfig, top: &Top, logged: &mut HashSet<u64>) {
    if cfg.log_threshold == 0 {
        logged.clear();
        return;
    }
    let threshold = cfg.log_threshold as f64;
    let hot: HashSet<u64> = top
        .keys
        .iter()
        .filter(|k| k.rate >= threshold)
        .map(|k| super::hash(&k.key))
        .collect();
    for k in top.keys.iter().filter(|k| k.rate >= threshold) {
        if !logged.contains(&super::hash(&k.key)) {
            tracing::warn!(
                pool,
                key = %printable(&k.key, k.truncated),
                node = %k.node,
                rate = k.rate.round(),
                share = k.share,
                "hot key crossed hot_keys.log_threshold"
            );
        }
    }
    *logged = hot;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_and_cut() {
        assert_eq!(printable(b"user:1", false), "user:1");
        assert_eq!(printable(b"a=b,c", false), "a\\x3db\\x2cc");
        assert_eq!(
            printable(b"a b\r\n\xff\"", false),
            "a\\x20b\\x0d\\x0a\\xff\\x22"
        );
        let long = vec![b'k'; 100];
        let p = printable(&long, false);
        assert_eq!(p.len(), SHOWN_KEY_BYTES + 3);
        assert!(p.ends_with("..."));
        assert!(printable(b"k", true).ends_with("k..."));
    }
}
