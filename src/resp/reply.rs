//! Backend reply framing: where does the next complete reply end?
//!
//! [`reply_len`] walks RESP2 and RESP3 replies with an explicit counter instead of
//! recursion (deeply nested replies cannot overflow the stack) and never allocates.

/// Why a backend stream cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// An unknown type byte, a bad length, or a missing CRLF.
    #[error("invalid reply from backend")]
    Invalid,
}

/// Length in bytes of the complete reply at the front of `buf`, or `None` if more
/// bytes are needed.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut pos = 0usize;
    // Number of values still to read to complete the outermost reply.
    let mut pending: u64 = 1;
    while pending > 0 {
        let Some(&ty) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(eol) = line_end(buf, pos + 1) else {
            return Ok(None);
        };
        let line = &buf[pos + 1..eol];
        pos = eol + 2;
        pending -= 1;
        match ty {
            b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => {}
            b'$' | b'!' | b'=' => {
                let n = parse_int(line)?;
                if n >= 0 {
                    let end = pos + n as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(FrameError::Invalid);
                    }
                    pos = end + 2;
                } else if n != -1 {
                    return Err(FrameError::Invalid);
                }
            }
            b'*' | b'~' | b'>' => {
                let n = parse_int(line)?;
                if n > 0 {
                    pending += n as u64;
                } else if n < -1 {
                    return Err(FrameError::Invalid);
                }
            }
            b'%' => pending += 2 * non_negative(parse_int(line)?)?,
            // An attribute is a map that precedes the value it describes.
            b'|' => pending += 2 * non_negative(parse_int(line)?)? + 1,
            _ => return Err(FrameError::Invalid),
        }
    }
    Ok(Some(pos))
}

fn non_negative(n: i64) -> Result<u64, FrameError> {
    u64::try_from(n).map_err(|_| FrameError::Invalid)
}

/// Index of the '\r' of the CRLF ending the line that starts at `from`.
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    // A line ends in CRLF; a bare LF is caught by the caller's parse or type check.
    Some(from + nl.saturating_sub(1))
}

/// Parses a RESP integer header.
pub fn parse_int(line: &[u8]) -> Result<i64, FrameError> {
    let (neg, digits) = match line.first() {
        Some(b'-') => (true, &line[1..]),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(FrameError::Invalid);
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(FrameError::Invalid);
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Ok(if neg { -n } else { n })
}

/// Splits a complete array (or set/push) reply into its elements' byte ranges.
/// Returns `None` if `reply` is not an aggregate of that kind (e.g. an error).
pub fn array_elements(reply: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    if !matches!(reply.first(), Some(b'*' | b'~' | b'>')) {
        return None;
    }
    let eol = line_end(reply, 1)?;
    let n = parse_int(&reply[1..eol]).ok()?;
    let mut pos = eol + 2;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = reply_len(&reply[pos..]).ok()??;
        out.push(pos..pos + len);
        pos += len;
    }
    Some(out)
}

/// The integer of a `:` reply.
pub fn integer(reply: &[u8]) -> Option<i64> {
    if reply.first() != Some(&b':') {
        return None;
    }
    let eol = line_end(reply, 1)?;
    parse_int(&reply[1..eol]).ok()
}

/// True for an error reply (`-` or RESP3 `!`).
pub fn is_error(reply: &[u8]) -> bool {
    matches!(reply.first(), Some(b'-' | b'!'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_and_incomplete() {
        for r in [
            &b"+OK\r\n"[..],
            b"-ERR x\r\n",
            b":12\r\n",
            b"$3\r\nfoo\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"(123\r\n",
        ] {
            assert_eq!(reply_len(r).unwrap(), Some(r.len()), "{r:?}");
            for cut in 0..r.len() {
                assert_eq!(reply_len(&r[..cut]).unwrap(), None);
            }
        }
    }

    #[test]
    fn nested_and_trailing() {
        let r = b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n%1\r\n+k\r\n~1\r\n#f\r\n";
        assert_eq!(reply_len(r).unwrap(), Some(r.len()));
        let mut two = r.to_vec();
        two.extend_from_slice(b"+OK\r\n");
        assert_eq!(reply_len(&two).unwrap(), Some(r.len()));
        let attr = b"|1\r\n+a\r\n:1\r\n$2\r\nhi\r\n";
        assert_eq!(reply_len(attr).unwrap(), Some(attr.len()));
    }

    #[test]
    fn invalid() {
        assert!(reply_len(b"?\r\n").is_err());
        assert!(reply_len(b"$3\r\nfooXX").is_err());
        assert!(reply_len(b"*-2\r\n").is_err());
    }

    #[test]
    fn elements() {
        let r = b"*2\r\n$1\r\na\r\n$-1\r\n";
        let e = array_elements(r).unwrap();
        assert_eq!(&r[e[0].clone()], b"$1\r\na\r\n");
        assert_eq!(&r[e[1].clone()], b"$-1\r\n");
        assert_eq!(integer(b":-7\r\n"), Some(-7));
    }
}
