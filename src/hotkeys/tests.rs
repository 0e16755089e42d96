//! The detector against exact counts.

use super::*;
use std::collections::HashMap;
use std::time::Duration;

fn cfg(sample: u32) -> HotKeysConfig {
    HotKeysConfig {
        enabled: true,
        window: Duration::from_secs(10),
        top: 10,
        sample,
        log_threshold: 0,
    }
}

/// A Zipf(1.0) draw over `n` keys from a uniform `u` in [0, 1).
fn zipf(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    w.iter()
        .map(|x| {
            acc += x / total;
            acc
        })
        .collect()
}

/// Records `requests` Zipf-distributed keys over `nodes` nodes; returns the exact
/// counts per key.
fn zipf_load(hk: &HotKeys, c: &HotKeysConfig, requests: usize) -> HashMap<String, u64> {
    let nodes: Vec<Arc<str>> = (0..3).map(|i| format!("n{i}").into()).collect();
    let cdf = zipf_cdf(100_000, 1.0);
    let mut rng = Sampler::new(7);
    let mut exact: HashMap<String, u64> = HashMap::new();
    let mut state = 0x1234_5678_u64;
    for i in 0..requests {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        let key = format!("key:{}", zipf(&cdf, u));
        let node = &nodes[(hash(key.as_bytes()) % 3) as usize];
        // 8 s of traffic spread evenly over the 10 s window.
        let now = 1 + (i as u64 * 8000 / requests as u64);
        hk.record(c, now, key.as_bytes(), node);
        *exact.entry(key).or_default() += 1;
        let _ = rng.hit(1);
    }
    exact
}

#[test]
fn zipf_load_finds_the_true_top_keys() {
    for sample in [1, 8] {
        let hk = HotKeys::default();
        let c = cfg(sample);
        let exact = zipf_load(&hk, &c, 400_000);
        let mut truth: Vec<(&String, &u64)> = exact.iter().collect();
        truth.sort_by(|a, b| b.1.cmp(a.1));
        let top = hk.top(&c, 8001);
        let found: Vec<String> = top
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(&k.key).into_owned())
            .collect();
        let true_top: Vec<String> = truth.iter().take(10).map(|(k, _)| (*k).clone()).collect();
        let overlap = true_top.iter().filter(|k| found.contains(k)).count();
        // The 5 heaviest are found in order; of the top 10, at least 8.
        assert_eq!(found[..5], true_top[..5], "sample 1/{sample}");
        assert!(overlap >= 8, "sample 1/{sample}: {found:?} vs {true_top:?}");
        // Rates within 15% of the exact rate (8 s of traffic).
        for k in top.keys.iter().take(3) {
            let name = String::from_utf8_lossy(&k.key).into_owned();
            let exact_rate = exact[&name] as f64 / 8.0;
            let err = (k.rate - exact_rate).abs() / exact_rate;
            assert!(
                err < 0.15,
                "sample 1/{sample} {name}: {} vs {exact_rate}",
                k.rate
            );
        }
        // Shares: the hottest key's share of its node, against the exact share.
        let hot = &top.keys[0];
        let node_total: u64 = exact
            .iter()
            .filter(|(k, _)| {
                let n = hash(k.as_bytes()) % 3;
                format!("n{n}") == *hot.node
            })
            .map(|(_, c)| c)
            .sum();
        let exact_share = exact[&*String::from_utf8_lossy(&hot.key)] as f64 / node_total as f64;
        assert!(
            (hot.share - exact_share).abs() < 0.03,
            "{} vs {exact_share}",
            hot.share
        );
    }
}

#[test]
fn counts_leave_the_window() {
    let hk = HotKeys::default();
    let c = cfg(1);
    let node: Arc<str> = "n".into();
    for _ in 0..100 {
        hk.record(&c, 1000, b"old", &node);
    }
    assert_eq!(hk.top(&c, 1500).keys.len(), 1);
    // 10 s later every slot that held "old" has been left behind.
    for _ in 0..10 {
        hk.record(&c, 12_500, b"new", &node);
    }
    let top = hk.top(&c, 12_600);
    assert_eq!(top.keys.len(), 1);
    assert_eq!(&top.keys[0].key[..], b"new");
    assert_eq!(top.keys[0].share, 1.0);
}

#[test]
fn disabled_counts_nothing() {
    let hk = HotKeys::default();
    let c = HotKeysConfig {
        enabled: false,
        ..cfg(1)
    };
    hk.record(&c, 10, b"k", &"n".into());
    assert!(hk.top(&c, 20).keys.is_empty());
}
