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
    ReplyFramer::default().next_len(buf)
}

/// Frames replies one after another from the front of a buffer, resuming an
/// incomplete one where the last call stopped (a large aggregate reply arriving
/// over many reads is walked once, not once per read), and telling how many bytes
/// the value being read needs ([`ReplyFramer::wanted`]). Between calls the buffer
/// may only grow at its end; a complete reply resets it for the next one.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplyFramer {
    /// Where the next value of the partial reply starts.
    pos: usize,
    /// Values still to read to complete it; 0 while no partial reply is held.
    pending: u64,
    /// Bytes the buffer must hold to complete the value being read; 0 if unknown.
    want: usize,
}

impl ReplyFramer {
    /// Length of the complete reply at the front of `buf`, or `None` if more bytes
    /// are needed (what was walked is kept for the next call).
    pub fn next_len(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        // Walked in locals; the state is stored only when the reply is incomplete.
        let (mut pos, mut pending) = match self.pending {
            0 => (0, 1),
            p => (self.pos, p),
        };
        while pending > 0 {
            match value(buf, pos, pending) {
                Ok(Walk::Next(next, left)) => (pos, pending) = (next, left),
                Ok(Walk::Short(want)) => {
                    (self.pos, self.pending, self.want) = (pos, pending, want);
                    return Ok(None);
                }
                Err(e) => {
                    self.pending = 0;
                    return Err(e);
                }
            }
        }
        (self.pending, self.want) = (0, 0);
        Ok(Some(pos))
    }

    /// The size the buffer must reach for the value being read to be complete, as
    /// its header announced (0 when none was read): the read side reserves it at
    /// once.
    pub fn wanted(&self) -> usize {
        self.want
    }
}

/// One step of a walk over a reply.
enum Walk {
    /// The value ended: where the next starts, and how many values are left.
    Next(usize, u64),
    /// The value is incomplete (the buffer must reach `.0` bytes; 0: not known).
    Short(usize),
}

/// Walks the value at `pos`, `pending` values (this one included) being left.
#[inline(always)]
fn value(buf: &[u8], pos: usize, pending: u64) -> Result<Walk, FrameError> {
    let Some(&ty) = buf.get(pos) else {
        return Ok(Walk::Short(0));
    };
    let Some(eol) = line_end(buf, pos + 1)? else {
        return Ok(Walk::Short(0));
    };
    let line = &buf[pos + 1..eol];
    let mut next = eol + 2;
    let mut pending = pending - 1;
    match ty {
        b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => {}
        b'$' | b'!' | b'=' => {
            let n = parse_int(line)?;
            if n >= 0 {
                let Some(end) = usize::try_from(n).ok().and_then(|n| next.checked_add(n)) else {
                    return Err(FrameError::Invalid);
                };
                if buf.len().saturating_sub(2) < end {
                    return Ok(Walk::Short(end.saturating_add(2)));
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(FrameError::Invalid);
                }
                next = end + 2;
            } else if n != -1 {
                return Err(FrameError::Invalid);
            }
        }
        b'*' | b'~' | b'>' => {
            let n = parse_int(line)?;
            if n > 0 {
                pending = add(pending, n as u64, 0)?;
            } else if n < -1 {
                return Err(FrameError::Invalid);
            }
        }
        b'%' => pending = add(pending, 2 * non_negative(parse_int(line)?)?, 0)?,
        // An attribute is a map that precedes the value it describes.
        b'|' => pending = add(pending, 2 * non_negative(parse_int(line)?)?, 1)?,
        _ => return Err(FrameError::Invalid),
    }
    Ok(Walk::Next(next, pending))
}

/// `pending + more + extra`; a count that does not fit is invalid (no buffer holds
/// that many values anyway).
fn add(pending: u64, more: u64, extra: u64) -> Result<u64, FrameError> {
    pending
        .checked_add(more)
        .and_then(|p| p.checked_add(extra))
        .ok_or(FrameError::Invalid)
}

fn non_negative(n: i64) -> Result<u64, FrameError> {
    u64::try_from(n).map_err(|_| FrameError::Invalid)
}

/// Index of the '\r' of the CRLF ending the line that starts at `from`, `Ok(None)`
/// while no LF is buffered. A LF without a CR before it is invalid: no RESP line
/// holds a bare LF (taking it as the line end would frame `+\n` as 3 bytes).
fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, FrameError> {
    let Some(rest) = buf.get(from..) else {
        return Ok(None);
    };
    match rest.iter().position(|&b| b == b'\n') {
        None => Ok(None),
        Some(nl) if nl > 0 && rest[nl - 1] == b'\r' => Ok(Some(from + nl - 1)),
        Some(_) => Err(FrameError::Invalid),
    }
}

/// Parses a RESP integer (a header or a `:` line): the whole `i64` range, at most
/// 19 digits after an optional `-`.
pub fn parse_int(line: &[u8]) -> Result<i64, FrameError> {
    let (neg, digits) = match line.first() {
        Some(b'-') => (true, &line[1..]),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(FrameError::Invalid);
    }
    // Accumulated as a negative number: i64::MIN has no positive counterpart.
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(FrameError::Invalid);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_sub(i64::from(d - b'0')))
            .ok_or(FrameError::Invalid)?;
    }
    if neg {
        Ok(n)
    } else {
        n.checked_neg().ok_or(FrameError::Invalid)
    }
}

/// Splits a complete array (or set/push) reply into its elements' byte ranges.
/// Returns `None` if `reply` is not an aggregate of that kind (e.g. an error).
pub fn array_elements(reply: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let (n, first) = array_header(reply)?;
    elements(reply, n, first)
}

/// The element count of an array (or set/push) reply and the offset of its first
/// element (a null array counts 0). `None` for anything else.
pub fn array_header(reply: &[u8]) -> Option<(usize, usize)> {
    if !matches!(reply.first(), Some(b'*' | b'~' | b'>')) {
        return None;
    }
    aggregate_header(reply, 1)
}

/// Splits a complete RESP3 map reply (`%`) into its keys' and values' byte ranges,
/// alternating. `None` for anything else.
pub fn map_elements(reply: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    if reply.first() != Some(&b'%') {
        return None;
    }
    let (n, first) = aggregate_header(reply, 2)?;
    elements(reply, n, first)
}

/// `n * per_entry` and the offset after the header, for an aggregate header of
/// count `n` (0 when negative).
fn aggregate_header(reply: &[u8], per_entry: usize) -> Option<(usize, usize)> {
    let eol = line_end(reply, 1).ok()??;
    let n = usize::try_from(parse_int(&reply[1..eol]).ok()?.max(0)).ok()?;
    Some((n.checked_mul(per_entry)?, eol + 2))
}

/// The ranges of the `n` values from offset `pos`.
fn elements(reply: &[u8], n: usize, mut pos: usize) -> Option<Vec<std::ops::Range<usize>>> {
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let len = reply_len(reply.get(pos..)?).ok()??;
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
    let eol = line_end(reply, 1).ok()??;
    parse_int(&reply[1..eol]).ok()
}

/// True for an error reply (`-` or RESP3 `!`).
pub fn is_error(reply: &[u8]) -> bool {
    matches!(reply.first(), Some(b'-' | b'!'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fed a byte at a time, one framer frames the same replies as `reply_len` on
    /// the whole stream and announces the end of a bulk string once its header is in.
    #[test]
    fn a_framer_resumes_and_announces_bulk_sizes() {
        let mut stream = b"*3\r\n$5\r\nhello\r\n%1\r\n+a\r\n:1\r\n_\r\n".to_vec();
        let first = stream.len();
        stream.extend_from_slice(b"$4000\r\n");
        stream.extend_from_slice(&[b'x'; 4000]);
        stream.extend_from_slice(b"\r\n+OK\r\n");
        let (mut f, mut buf, mut lens, mut announced) =
            (ReplyFramer::default(), Vec::new(), Vec::new(), 0);
        for &b in &stream {
            buf.push(b);
            while let Some(n) = f.next_len(&buf).unwrap() {
                lens.push(n);
                buf.drain(..n);
            }
            announced = announced.max(f.wanted());
        }
        assert_eq!(lens, vec![first, 4000 + 9, 5]);
        assert_eq!(announced, 4000 + 9);
        assert!(buf.is_empty());
        assert_eq!(
            ReplyFramer::default().next_len(b"*1\r\n?\r\n"),
            Err(FrameError::Invalid)
        );
    }

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

    /// A bare LF used to end a line one byte too far: `+\n` was framed as 3 bytes
    /// of a 2-byte buffer (the caller's `split_to` would panic), and `+a\nb\r\n`
    /// (one simple string to redis-protocol) as a 3-byte reply.
    #[test]
    fn bare_lf_is_invalid_not_a_line_end() {
        for r in [
            &b"+\n"[..],
            b"_\n",
            b":1\n",
            b"+a\nb\r\n",
            b"*1\r\n+\n+x\r\n",
        ] {
            assert_eq!(reply_len(r), Err(FrameError::Invalid), "{r:?}");
        }
        assert_eq!(array_elements(b"*1\n"), None);
        assert_eq!(integer(b":1\n"), None);
    }

    /// `integer` refused 19-digit values: `:9223372036854775807` (INCRBY to the top)
    /// was not an integer to split-command merging.
    #[test]
    fn integers_cover_the_whole_i64_range() {
        assert_eq!(integer(b":9223372036854775807\r\n"), Some(i64::MAX));
        assert_eq!(integer(b":-9223372036854775808\r\n"), Some(i64::MIN));
        assert_eq!(integer(b":9223372036854775808\r\n"), None);
        assert_eq!(integer(b":-9223372036854775809\r\n"), None);
        assert_eq!(integer(b":10000000000000000000\r\n"), None);
        // Huge but valid counts wait for more bytes; counts past u64 are invalid.
        assert_eq!(reply_len(b"*9223372036854775807\r\n"), Ok(None));
        assert_eq!(reply_len(b"$9223372036854775807\r\n"), Ok(None));
        let many = b"*9223372036854775807\r\n*9223372036854775807\r\n*9223372036854775807\r\n";
        assert_eq!(reply_len(many), Err(FrameError::Invalid));
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
