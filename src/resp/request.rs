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

/// Decodes one request from the front of `buf` (see [`Decoder::decode`]), with no
/// state kept: for a buffer that already holds whole requests.
pub fn decode(buf: &mut BytesMut, max_size: usize) -> Result<Option<Request>, DecodeError> {
    Decoder::default().decode(buf, max_size)
}

/// Decodes a client's requests one after another, remembering what it framed of
/// an incomplete request at the front of the buffer (its arguments so far), so a
/// large request arriving over many reads is scanned once, not once per read; and
/// how many bytes that request needs for the argument being read (see
/// [`Decoder::wanted`]). Only appending to the buffer between calls is allowed.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Arguments of the partial request framed so far.
    args: SmallVec<[(u32, u32); 6]>,
    /// Its argument count; 0 while no partial request is held.
    count: usize,
    /// Where its next argument's header starts.
    pos: usize,
    /// Bytes the buffer must hold to complete the argument being read; 0 if unknown.
    want: usize,
}

impl Decoder {
    /// Decodes one request from the front of `buf`.
    ///
    /// `Ok(None)`: more bytes are needed (nothing consumed; what was framed is
    /// kept). Empty requests (`*0`, a blank inline line) are consumed and skipped.
    /// On `Err` the stream is unusable.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        max_size: usize,
    ) -> Result<Option<Request>, DecodeError> {
        loop {
            // Framed in locals; the state is stored only when the request is partial.
            let (mut args, mut pos, count) = if self.count == 0 {
                match start(buf, max_size)? {
                    Start::Incomplete => return Ok(None),
                    Start::Skip(n) => {
                        let _ = buf.split_to(n);
                        continue;
                    }
                    Start::Inline(len, req) => {
                        let _ = buf.split_to(len);
                        return Ok(Some(req));
                    }
                    Start::Multibulk(count, pos) => {
                        (SmallVec::with_capacity(count.min(1024)), pos, count)
                    }
                }
            } else {
                (std::mem::take(&mut self.args), self.pos, self.count)
            };
            return match frame_args(buf, max_size, &mut args, &mut pos, count) {
                Ok(None) => {
                    (self.count, self.want) = (0, 0);
                    let frame = buf.split_to(pos).freeze();
                    Ok(Some(Request { frame, args }))
                }
                Ok(Some(want)) => {
                    (self.args, self.pos, self.count, self.want) = (args, pos, count, want);
                    Ok(None)
                }
                Err(e) => {
                    (self.count, self.want) = (0, 0);
                    Err(e)
                }
            };
        }
    }

    /// The size the buffer must reach for the argument being read to be complete,
    /// as its header announced (0 when no such header was read): the read side
    /// reserves it at once instead of growing step by step.
    pub fn wanted(&self) -> usize {
        self.want
    }
}

/// Reads the header of the request at the front of `buf`.
#[inline(always)]
fn start(buf: &[u8], max_size: usize) -> Result<Start, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(Start::Incomplete);
    };
    if first != b'*' {
        return Ok(match super::inline::scan_inline(buf)? {
            Scan::Incomplete => Start::Incomplete,
            Scan::Skip(n) => Start::Skip(n),
            Scan::Inline(len, req) => Start::Inline(len, req),
        });
    }
    let Some(eol) = find_crlf(buf, 1) else {
        return if buf.len() > MAX_INLINE {
            Err(DecodeError::MultibulkCountTooBig)
        } else {
            Ok(Start::Incomplete)
        };
    };
    let count = parse_len(buf, 1, eol).ok_or(DecodeError::MultibulkLength)?;
    if count <= 0 {
        return Ok(Start::Skip(eol + 2));
    }
    if count as usize > MAX_ARGS || count as usize > max_size / 4 {
        return Err(DecodeError::MultibulkLength);
    }
    Ok(Start::Multibulk(count as usize, eol + 2))
}

/// Frames the arguments of the request in `buf` from `pos` on until `args` holds
/// `count`: `Ok(None)` when they are all there (`pos` is then the request's end),
/// `Ok(Some(want))` when one is incomplete (the buffer must reach `want` bytes for
/// it; 0: not known yet).
#[inline(always)]
fn frame_args(
    buf: &[u8],
    max_size: usize,
    args: &mut SmallVec<[(u32, u32); 6]>,
    pos: &mut usize,
    count: usize,
) -> Result<Option<usize>, DecodeError> {
    while args.len() < count {
        let at = *pos;
        match buf.get(at) {
            None => return Ok(Some(0)),
            Some(b'$') => {}
            Some(&b) => return Err(DecodeError::ExpectedBulk(b)),
        }
        let Some(eol) = find_crlf(buf, at + 1) else {
            return if buf.len() - at > MAX_INLINE {
                Err(DecodeError::BulkCountTooBig)
            } else {
                Ok(Some(0))
            };
        };
        let len = parse_len(buf, at + 1, eol).ok_or(DecodeError::BulkLength)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::BulkLength)?;
        let start = eol + 2;
        let end = start.saturating_add(len);
        if end.saturating_add(2) > max_size {
            return Err(DecodeError::TooLarge);
        }
        if buf.len() < end + 2 {
            return Ok(Some(end + 2));
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(DecodeError::BulkTerminator);
        }
        args.push((start as u32, end as u32));
        *pos = end + 2;
    }
    Ok(None)
}

/// What the front of the buffer starts.
enum Start {
    Incomplete,
    /// An empty request of this many bytes.
    Skip(usize),
    /// A whole inline request of this many bytes.
    Inline(usize, Request),
    /// A multibulk request of this many arguments, the first at this offset.
    Multibulk(usize, usize),
}

/// What an inline line gives.
pub(super) enum Scan {
    Incomplete,
    Skip(usize),
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

    /// Fed a byte at a time into one buffer, a decoder gives the same requests as
    /// a fresh decode of the whole stream, and says how large the buffer must get
    /// once a bulk header announced it.
    #[test]
    fn resumes_a_partial_request_and_announces_its_size() {
        let big = vec![b'v'; 5000];
        let set = Request::from_args(&[&b"SET"[..], b"k", &big]);
        let mut stream = set.frame().to_vec();
        stream.extend_from_slice(b"*0\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
        let (mut d, mut buf, mut got) = (Decoder::default(), BytesMut::new(), Vec::new());
        let mut announced = 0;
        for &b in &stream {
            buf.extend_from_slice(&[b]);
            while let Some(r) = d.decode(&mut buf, 1 << 20).unwrap() {
                got.push(r.frame().to_vec());
            }
            announced = announced.max(d.wanted());
        }
        assert_eq!(
            announced,
            set.frame().len(),
            "the value's end, CRLF included"
        );
        assert_eq!(d.wanted(), 0);
        assert!(buf.is_empty());
        let ping = b"*1\r\n$4\r\nPING\r\n".to_vec();
        assert_eq!(got, vec![set.frame().to_vec(), ping.clone(), ping]);
    }

    #[test]
    fn skips_empty_multibulk() {
        let mut b = BytesMut::from(&b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n"[..]);
        let r = decode(&mut b, 1 << 20).unwrap().unwrap();
        assert_eq!(r.arg(0), b"PING");
    }
}
