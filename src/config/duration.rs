//! Durations written like `300ms`, `2s`, `1m` (serde `with` module).
//!
//! Units: `us`, `ms`, `s`, `m`, `h`; fractions are allowed (`1.5s`); a bare number
//! (YAML integer or text) is milliseconds, as in nutcracker files.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Parses `300ms`, `2s`, `1.5s`, `1m`, `1h`, `250us`, or a bare number (milliseconds).
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
    (ms.is_finite() && (0.0..1e15).contains(&ms)).then(|| Duration::from_secs_f64(ms / 1e3))
}

/// Writes `d` in the largest unit that keeps it whole: `1h`, `2m`, `5s`, `300ms`, `250us`.
/// [`parse`] reads it back (sub-microsecond parts are dropped).
pub fn format(d: Duration) -> String {
    let us = d.as_micros();
    let units = [
        (3_600_000_000, "h"),
        (60_000_000, "m"),
        (1_000_000, "s"),
        (1_000, "ms"),
    ];
    for (size, unit) in units {
        if us != 0 && us.is_multiple_of(size) {
            return format!("{}{unit}", us / size);
        }
    }
    if us == 0 {
        "0ms".into()
    } else {
        format!("{us}us")
    }
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

/// serde deserializer for an optional duration field (`null` or absent = `None`).
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "deserialize")] Duration);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse("400"), Some(Duration::from_millis(400)));
        assert_eq!(parse("-1s"), None);
        assert_eq!(parse("2 days"), None);
        assert_eq!(parse("s"), None);
    }

    #[test]
    fn formats_in_the_largest_whole_unit() {
        for (d, s) in [
            (3_600_000, "1h"),
            (120_000, "2m"),
            (2_000, "2s"),
            (300, "300ms"),
            (1500, "1500ms"),
        ] {
            assert_eq!(format(Duration::from_millis(d)), s);
            assert_eq!(parse(s), Some(Duration::from_millis(d)));
        }
        assert_eq!(format(Duration::from_micros(250)), "250us");
        assert_eq!(format(Duration::ZERO), "0ms");
    }
}
