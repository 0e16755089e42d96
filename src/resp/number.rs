//! Integers in arguments, parsed as strictly as Redis parses them (`string2ll`):
//! an optional `-`, then `0` alone or digits without a leading zero, in range of
//! an i64. No `+`, no blanks, no `-0`. On the request path (every header), so
//! written as one pass over the bytes.

/// The integer `arg` spells, or `None` where Redis answers "value is not an
/// integer or out of range".
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    let (neg, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, arg),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!neg).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate as a negative number: i64::MIN has no positive counterpart.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg { Some(n) } else { n.checked_neg() }
}

#[cfg(test)]
mod tests {
    use super::parse_i64;

    #[test]
    fn strict_as_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"7"), Some(7));
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
            b"-01",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
    }

    #[test]
    fn agrees_with_the_standard_parser_where_redis_does() {
        for n in [
            1i64,
            9,
            10,
            99,
            12345,
            -1,
            -987654321,
            i64::MAX - 1,
            i64::MIN + 1,
        ] {
            let s = n.to_string();
            assert_eq!(parse_i64(s.as_bytes()), Some(n), "{s}");
        }
    }
}
