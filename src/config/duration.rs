//! Durations written like `300ms`, `2s`, `1m` (serde `with` module).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses `300ms`, `2s`, `1.5s`, `1m`, `1h`, or a bare integer (milliseconds).
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        "h" => n * 3600e3,
        "us" => n / 1e3,
        _ => return None,
    };
    (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1e3))
}

/// serde deserializer for a duration field.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(t) => parse(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {t:?}: write it like 300ms, 2s or 1m"
            ))
        }),
    }
}
