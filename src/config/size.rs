//! Byte sizes written as an integer (bytes) or with a binary suffix: `512KiB`,
//! `64MiB`, `1GiB` (also `B`). Decimal suffixes (`MB`) are refused, to avoid doubt.

use serde::{Deserialize, Deserializer};

const UNITS: [(&str, usize); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// Parses `1048576`, `512KiB`, `64MiB`, `1GiB`, `100B`.
pub fn parse(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let unit = unit.trim();
    let mult = if unit.is_empty() {
        1
    } else {
        UNITS.iter().find(|(u, _)| *u == unit)?.1
    };
    n.checked_mul(mult)
}

/// Writes `n` with the largest binary suffix that keeps it whole (`64MiB`), else bytes.
pub fn format(n: usize) -> String {
    UNITS
        .iter()
        .find(|(_, m)| n != 0 && *m > 1 && n.is_multiple_of(*m))
        .map_or_else(|| n.to_string(), |(u, m)| format!("{}{u}", n / m))
}

/// serde deserializer for a size field.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(usize),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(t) => parse(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {t:?}: write bytes, or like 512KiB or 64MiB"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("64MiB"), Some(64 << 20));
        assert_eq!(parse("512KiB"), Some(512 << 10));
        assert_eq!(parse("1GiB"), Some(1 << 30));
        assert_eq!(parse("1000"), Some(1000));
        assert_eq!(parse("10 B"), Some(10));
        assert_eq!(parse("64MB"), None);
        assert_eq!(parse("KiB"), None);
        assert_eq!(format(64 << 20), "64MiB");
        assert_eq!(format(1000), "1000");
        assert_eq!(format(1536), "1536");
        assert_eq!(format(0), "0");
    }
}
