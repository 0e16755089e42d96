//! Client request decoding: RESP arrays of bulk strings, and inline commands.
//!
//! [`decode`] checks that a whole request is buffered before taking it: an incomplete
//! request is `Ok(None)` and leaves the buffer untouched. Declared sizes are checked
//! against the limit as soon as their header is read, so a client announcing a
//! 4 GB string is refused before anything is buffered.

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

/// Longest inline command line (as Redis: 64 KiB).
pub const MAX_INLINE: usize = 64 * 1024;
/// Most arguments in one request (as Redis: 1024*1024*1024 is its cap; ours is lower).
pub const MAX_ARGS: usize = 1 << 20;

/// Why a request stream cannot be decoded. The texts are Redis's own; the lines
/// sent to the client are in [`crate::errors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `*` header is not a valid count.
    #[error("Protocol error: invalid multibulk length")]
    MultibulkLength,
    /// `$` header is not a valid length.
    #[error("Protocol error: invalid bulk length")]
    BulkLength,
    /// An array element is not a bulk string: it starts with this byte.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// A `*` header without its line end within [`MAX_INLINE`] bytes.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    /// A `$` header without its line end within [`MAX_INLINE`] bytes.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    /// A bulk string is not followed by CRLF.
    #[error("Protocol error: bulk string not terminated by CRLF")]
    BulkTerminator,
    /// An inline line longer than [`MAX_INLINE`].
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    /// Quotes in an inline command are not closed.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// The request is larger than `limits.max_request_size`.
    #[error("Protocol error: request larger than the proxy's max_request_size")]
    TooLarge,
}

/// One decoded request: its raw bytes (forwarded as they are) and argument offsets.
#[derive(Clone, Debug)]
pub struct Request {
    frame: Bytes,
    args: SmallVec<[(u32, u32); 6]>,
}

impl Request {
    /// Number of arguments, the command name included.
    pub fn argc(&self) -> usize {
        self.args.len()
    }

    /// Argument `i` (0 = command name). Panics if `i >= argc()`: callers check argc.
    pub fn arg(&self, i: usize) -> &[u8] {
        let (s, e) = self.args[i];
        &self.frame[s as usize..e as usize]
    }

    /// Argument `i` if present.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        (i < self.args.len()).then(|| self.arg(i))
    }

    /// Argument `i` as it is encoded in the frame, `$n` header and final CRLF
    /// included: ready to be copied into another request.
    pub fn raw_arg(&self, i: usize) -> &[u8] {
        let (s, e) = self.args[i];
        // The header `$<digits>\r\n` ends right before the argument; every frame is
        // a RESP array of bulk strings (inline requests are re-encoded as one).
        let head = &self.frame[..(s as usize).saturating_sub(2)];
        let dollar = head.iter().rposition(|&b| b == b'$').unwrap_or(0);
        &self.frame[dollar..e as usize + 2]
    }

    /// Argument `i` as a zero-copy slice of the frame.
    pub fn arg_bytes(&self, i: usize) -> Bytes {
        let (s, e) = self.args[i];
        self.frame.slice(s as usize..e as usize)
    }

    /// The request as RESP bytes, exactly as the client sent it (inline requests are
    /// re-encoded as arrays).
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Builds a request from arguments (encodes a RESP array).
    pub fn from_args<A: AsRef<[u8]>>(args: &[A]) -> Request {
        let mut buf =
            BytesMut::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
        super::encode::array_header(&mut buf, args.len());
        let mut spans = SmallVec::new();
        for a in args {
            let a = a.as_ref();
            super::encode::bulk_header(&mut buf, a.len());
            spans.push((buf.len() as u32, (buf.len() + a.len()) as u32));
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        Request {
            frame: buf.freeze(),
            args: spans,
        }
    }
}

/// Decodes one request from the front of `buf`.
///
/// `Ok(None)`: more bytes are needed (nothing consumed). Empty requests (`*0`, a blank
/// inline line) are consumed and skipped. On `Err` the stream is unusable.
pub fn decode(buf: &mut BytesMut, max_size: usize) -> Result<Option<Request>, DecodeError> {
    loop {
        if buf.is_empty() {
            return Ok(None);
        }
        let parsed = if buf[0] == b'*' {
            scan_multibulk(buf, max_size)?
        } else {
            scan_inline(buf)?
        };
        match parsed {
            Scan::Incomplete => return Ok(None),
            Scan::Skip(n) => {
                let _ = buf.split_to(n);
            }
            Scan::Multibulk(len, args) => {
                let frame = buf.split_to(len).freeze();
                return Ok(Some(Request { frame, args }));
            }
            Scan::Inline(len, req) => {
                let _ = buf.split_to(len);
                return Ok(Some(req));
            }
        }
    }
}

enum Scan {
    Incomplete,
    Skip(usize),
    Multibulk(usize, SmallVec<[(u32, u32); 6]>),
    Inline(usize, Request),
}

/// Finds CRLF at or after `from`; returns the index of '\r'.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let pos = buf.get(from..)?.iter().position(|&b| b == b'\n')? + from;
    Some(pos.saturating_sub(1).max(from))
}

/// Parses a decimal header number between `start` and the CRLF at `end`, as
/// strictly as Redis (no `+`, no leading zero).
fn parse_len(buf: &[u8], start: usize, end: usize) -> Option<i64> {
    if buf.get(end) != Some(&b'\r') {
        return None;
    }
    super::number::parse_i64(&buf[start..end])
}

fn scan_multibulk(buf: &[u8], max_size: usize) -> Result<Scan, DecodeError> {
    let Some(eol) = find_crlf(buf, 1) else {
        return if buf.len() > MAX_INLINE {
            Err(DecodeError::MultibulkCountTooBig)
        } else {
            Ok(Scan::Incomplete)
        };
    };
    let count = parse_len(buf, 1, eol).ok_or(DecodeError::MultibulkLength)?;
    let mut pos = eol + 2;
    if count <= 0 {
        return Ok(Scan::Skip(pos));
    }
    if count as usize > MAX_ARGS || count as usize > max_size / 4 {
        return Err(DecodeError::MultibulkLength);
    }
    let mut args = SmallVec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(Scan::Incomplete),
            Some(b'$') => {}
            Some(&b) => return Err(DecodeError::ExpectedBulk(b)),
        }
        let Some(eol) = find_crlf(buf, pos + 1) else {
            return if buf.len() - pos > MAX_INLINE {
                Err(DecodeError::BulkCountTooBig)
            } else {
                Ok(Scan::Incomplete)
            };
        };
        let len = parse_len(buf, pos + 1, eol).ok_or(DecodeError::BulkLength)?;
        if len < 0 {
            return Err(DecodeError::BulkLength);
        }
        let start = eol + 2;
        let end = start + len as usize;
        if end + 2 > max_size {
            return Err(DecodeError::TooLarge);
        }
        if buf.len() < end + 2 {
            return Ok(Scan::Incomplete);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(DecodeError::BulkTerminator);
        }
        args.push((start as u32, end as u32));
        pos = end + 2;
    }
    Ok(Scan::Multibulk(pos, args))
}

fn scan_inline(buf: &[u8]) -> Result<Scan, DecodeError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > MAX_INLINE {
            Err(DecodeError::InlineTooBig)
        } else {
            Ok(Scan::Incomplete)
        };
    };
    if nl > MAX_INLINE {
        return Err(DecodeError::InlineTooBig);
    }
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    let (args, ends) = split_inline(&buf[..line_end])?;
    if ends.is_empty() {
        return Ok(Scan::Skip(nl + 1));
    }
    let mut start = 0;
    let owned: SmallVec<[&[u8]; 6]> = ends
        .iter()
        .map(|&end| {
            let a = &args[start..end];
            start = end;
            a
        })
        .collect();
    Ok(Scan::Inline(nl + 1, Request::from_args(&owned)))
}

/// Splits an inline line into arguments as Redis does (`sdssplitargs`): blanks
/// separate (space, tab, CR, LF; vertical tab and form feed only between
/// arguments); `"..."` takes the escapes `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and
/// `\<c>` (the character itself); `'...'` takes `\'` only; a closing quote must be
/// followed by a blank or the end; a NUL byte ends the line. Returns the unescaped
/// arguments, back to back, and where each ends.
fn split_inline(line: &[u8]) -> Result<(Vec<u8>, SmallVec<[usize; 6]>), DecodeError> {
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut out = Vec::with_capacity(line.len());
    let mut ends = SmallVec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_blank(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok((out, ends));
        }
        i = split_arg(line, i, &mut out)?;
        ends.push(out.len());
    }
}

/// Redis's `isspace`.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Appends the argument starting at `i` to `out`; returns where the next starts.
fn split_arg(line: &[u8], mut i: usize, out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    #[derive(PartialEq)]
    enum Q {
        None,
        Double,
        Single,
    }
    let mut q = Q::None;
    loop {
        let Some(&c) = line.get(i) else {
            return match q {
                Q::None => Ok(i),
                _ => Err(DecodeError::UnbalancedQuotes),
            };
        };
        let next = line.get(i + 1).copied();
        match q {
            Q::None if matches!(c, b' ' | b'\n' | b'\r' | b'\t') => return Ok(i),
            Q::None if c == b'"' => q = Q::Double,
            Q::None if c == b'\'' => q = Q::Single,
            Q::None => out.push(c),
            Q::Double if c == b'\\' && next == Some(b'x') && hex_pair(line, i + 2).is_some() => {
                out.extend(hex_pair(line, i + 2));
                i += 3;
            }
            Q::Double if c == b'\\' && next.is_some() => {
                out.push(unescape(next.unwrap_or_default()));
                i += 1;
            }
            Q::Single if c == b'\\' && next == Some(b'\'') => {
                out.push(b'\'');
                i += 1;
            }
            Q::Double if c == b'"' => return closed(line, i),
            Q::Single if c == b'\'' => return closed(line, i),
            _ => out.push(c),
        }
        i += 1;
    }
}

/// After the closing quote at `i`: a blank or the end must follow.
fn closed(line: &[u8], i: usize) -> Result<usize, DecodeError> {
    match line.get(i + 1) {
        Some(&b) if !is_blank(b) => Err(DecodeError::UnbalancedQuotes),
        _ => Ok(i + 1),
    }
}

/// The byte written as two hex digits at `i`.
fn hex_pair(line: &[u8], i: usize) -> Option<u8> {
    let digits = std::str::from_utf8(line.get(i..i + 2)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(digits, 16).ok()
}

/// The byte a backslash escape stands for inside double quotes.
fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(input: &[u8]) -> Result<Option<Request>, DecodeError> {
        let mut b = BytesMut::from(input);
        decode(&mut b, 1 << 20)
    }

    #[test]
    fn multibulk_and_incomplete() {
        let full = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
        for cut in 0..full.len() {
            assert!(dec(&full[..cut]).unwrap().is_none(), "cut {cut}");
        }
        let r = dec(full).unwrap().unwrap();
        assert_eq!(r.argc(), 2);
        assert_eq!(r.arg(0), b"GET");
        assert_eq!(r.arg(1), b"foo");
        assert_eq!(&r.frame()[..], full);
    }

    #[test]
    fn binary_and_empty_args() {
        let r = Request::from_args(&[&b"SET"[..], b"", b"\r\n\x00\xff"]);
        let mut b = BytesMut::from(&r.frame()[..]);
        let d = decode(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!(d.arg(1), b"");
        assert_eq!(d.arg(2), b"\r\n\x00\xff");
        assert!(b.is_empty());
    }

    #[test]
    fn raw_args_carry_their_headers() {
        let r = dec(b"*3\r\n$4\r\nMSET\r\n$4\r\n$\r\n$\r\n$10\r\n0123456789\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.raw_arg(0), b"$4\r\nMSET\r\n");
        assert_eq!(r.raw_arg(1), b"$4\r\n$\r\n$\r\n");
        assert_eq!(r.raw_arg(2), b"$10\r\n0123456789\r\n");
        let inline = dec(b"mget a bb\r\n").unwrap().unwrap();
        assert_eq!(inline.raw_arg(2), b"$2\r\nbb\r\n");
        let empty = Request::from_args(&["DEL", ""]);
        assert_eq!(empty.raw_arg(1), b"$0\r\n\r\n");
    }

    #[test]
    fn inline_commands() {
        let r = dec(b"set  k \"hello world\"\r\n").unwrap().unwrap();
        assert_eq!(r.argc(), 3);
        assert_eq!(r.arg(2), b"hello world");
        assert_eq!(
            &r.frame()[..],
            b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$11\r\nhello world\r\n"
        );
        assert!(dec(b"PING\n").unwrap().is_some());
        assert!(dec(b"\r\n").unwrap().is_none());
        assert_eq!(
            dec(b"get \"k\r\n").unwrap_err(),
            DecodeError::UnbalancedQuotes
        );
    }

    #[test]
    fn inline_quoting_follows_redis() {
        let args = |line: &[u8]| {
            let r = dec(line).unwrap().unwrap();
            (0..r.argc()).map(|i| r.arg(i).to_vec()).collect::<Vec<_>>()
        };
        let v = |a: &[&[u8]]| a.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
        assert_eq!(
            args(b"SET \"a\\x41\" 'b c'\r\n"),
            v(&[b"SET", b"aA", b"b c"])
        );
        assert_eq!(args(b"ECHO \"\\\"\"\r\n"), v(&[b"ECHO", b"\""]));
        assert_eq!(args(b"ECHO 'it\\'s'\r\n"), v(&[b"ECHO", b"it's"]));
        assert_eq!(args(b"ECHO \"\\n\\t\\q\"\n"), v(&[b"ECHO", b"\n\tq"]));
        assert_eq!(args(b"ECHO \"\\xZZ\"\n"), v(&[b"ECHO", b"xZZ"]));
        assert_eq!(args(b"ECHO 'a\\nb'\n"), v(&[b"ECHO", b"a\\nb"]));
        assert_eq!(args(b"ECHO a\"b c\"\n"), v(&[b"ECHO", b"ab c"]));
        assert_eq!(args(b"ECHO x\0y z\n"), v(&[b"ECHO", b"x"]));
        assert_eq!(args(b"ECHO \"\"\n"), v(&[b"ECHO", b""]));
        for bad in [&b"ECHO \"a\"b\n"[..], b"ECHO 'a'b\n", b"ECHO \"a\\\"\n"] {
            assert_eq!(dec(bad).unwrap_err(), DecodeError::UnbalancedQuotes);
        }
    }

    #[test]
    fn errors_and_limits() {
        assert_eq!(dec(b"*x\r\n").unwrap_err(), DecodeError::MultibulkLength);
        assert_eq!(
            dec(b"*1\r\n:1\r\n").unwrap_err(),
            DecodeError::ExpectedBulk(b':')
        );
        assert_eq!(
            dec(b"*01\r\n$1\r\na\r\n").unwrap_err(),
            DecodeError::MultibulkLength
        );
        assert_eq!(
            dec(b"*1\r\n$+1\r\na\r\n").unwrap_err(),
            DecodeError::BulkLength
        );
        assert_eq!(dec(b"*1\r\n$-5\r\n").unwrap_err(), DecodeError::BulkLength);
        assert_eq!(
            dec(b"*1\r\n$3\r\nfooXY").unwrap_err(),
            DecodeError::BulkTerminator
        );
        assert_eq!(
            dec(b"*1\r\n$4294967296\r\n").unwrap_err(),
            DecodeError::TooLarge
        );
        assert_eq!(
            dec(b"*99999999999\r\n").unwrap_err(),
            DecodeError::MultibulkLength
        );
        let mut long = vec![b'a'; MAX_INLINE + 10];
        long.push(b'\n');
        assert_eq!(dec(&long).unwrap_err(), DecodeError::InlineTooBig);
    }

    #[test]
    fn skips_empty_multibulk() {
        let mut b = BytesMut::from(&b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"[..]);
        let r = decode(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!(r.arg(0), b"PING");
    }
}
