//! Integers in arguments, parsed as strictly as Redis parses them (`string2ll`):
//! an optional `-`, then `0` alone or digits without a leading zero, in range of
//! an i64. No `+`, no blanks, no `-0`.

/// The integer `arg` spells, or `None` where Redis answers "value is not an
/// integer or out of range".
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match digits {
        [b'0'] => digits.len() == arg.len(),
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_i64;

    #[test]
    fn strict_as_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"00"[..],
            b"+0",
            b"-0",
            b"01",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"1e3",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i64(b"9223372036854775808"), None);
    }
}
