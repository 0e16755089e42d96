//! Keys, writing them through nutcracker, and finding where they landed.

use std::collections::{HashMap, HashSet};

use ringproxy::route::Placement;

use super::harness::{Reply, Server};

/// Deterministic keys of many shapes: ASCII, binary (NUL, CR, LF, high bytes),
/// UTF-8, hash-tagged and tag edge cases, plus the empty key. Duplicates removed.
pub fn keys(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut seen = HashSet::new();
    let mut out = vec![Vec::new()];
    seen.insert(Vec::new());
    for i in 0..count as u64 * 2 {
        if out.len() >= count {
            break;
        }
        let r = next();
        let random = |len: u64, low: u8, span: u64, next: &mut dyn FnMut() -> u64| -> Vec<u8> {
            (0..len).map(|_| low + (next() % span) as u8).collect()
        };
        let key = match i % 8 {
            0 => format!("user:{i}:{}", r % 1000).into_bytes(),
            1 => random(1 + r % 32, 0, 256, &mut next),
            2 => format!("ключ:{i}:鍵🔑{}", r % 77).into_bytes(),
            3 => format!("{{user{}}}.field{i}", r % 97).into_bytes(),
            4 => random(1 + r % 16, 0x80, 128, &mut next),
            5 => match r % 4 {
                0 => format!("{{}}{i}"),
                1 => format!("x{{{i}"),
                2 => format!("}}{i}{{"),
                _ => format!("{{ü{i}}}"),
            }
            .into_bytes(),
            6 => random(1 + r % 24, b' ', 95, &mut next),
            _ => i.to_string().into_bytes(),
        };
        if seen.insert(key.clone()) {
            out.push(key);
        }
    }
    out
}

/// SETs every key through `proxy`; panics on any reply but +OK.
pub fn write_through(proxy: &Server, keys: &[Vec<u8>], label: &str) {
    let mut client = proxy.addr.connect().expect("connect to nutcracker");
    let commands: Vec<Vec<&[u8]>> = keys.iter().map(|k| vec![&b"SET"[..], k, b"v"]).collect();
    let replies = client
        .pipeline(&commands)
        .expect("pipeline through nutcracker");
    let bad: Vec<_> = replies
        .iter()
        .zip(keys)
        .filter(|(r, _)| **r != Reply::Status(b"OK".to_vec()))
        .take(3)
        .collect();
    assert!(
        bad.is_empty(),
        "{label}: SET through nutcracker failed: {bad:?}"
    );
}

/// Which backend holds each key (skipping backends marked dead).
pub fn owners(backends: &[Server], dead: Option<usize>) -> HashMap<Vec<u8>, Vec<usize>> {
    let mut map: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, b) in backends
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != dead)
    {
        let mut client = b.addr.connect().expect("connect to backend");
        let Ok(Reply::Array(Some(items))) = client.call(&[b"KEYS", b"*"]) else {
            panic!("KEYS * failed on backend {i}");
        };
        for item in items {
            let Reply::Bulk(Some(key)) = item else {
                panic!("KEYS returned a non-string")
            };
            map.entry(key).or_default().push(i);
        }
    }
    map
}

pub fn flush(backends: &[Server], dead: Option<usize>) {
    for (_, b) in backends
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != dead)
    {
        let mut client = b.addr.connect().expect("connect to backend");
        assert_eq!(
            client.call(&[b"FLUSHALL"]).expect("FLUSHALL"),
            Reply::Status(b"OK".to_vec())
        );
    }
}

/// Counts keys not found exactly on the backend `placement` names.
pub fn mismatches(
    label: &str,
    placement: &Placement,
    keys: &[Vec<u8>],
    found: &HashMap<Vec<u8>, Vec<usize>>,
) -> usize {
    let mut wrong = 0;
    for key in keys {
        let want = placement.node_for_key(key);
        let got = found.get(key).cloned().unwrap_or_default();
        if got.len() != 1 || Some(got[0]) != want {
            if wrong < 5 {
                eprintln!(
                    "{label}: key {key:02x?}: placement says {want:?}, nutcracker put it on {got:?}"
                );
            }
            wrong += 1;
        }
    }
    let stray = found.len().saturating_sub(keys.len());
    eprintln!(
        "{label}: {} keys, {wrong} mismatches, {stray} unexpected keys",
        keys.len()
    );
    wrong + stray
}
