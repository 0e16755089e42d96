//! The trusted, slow path: `redis-protocol`'s decoders, wrapped to answer the same
//! questions as the hand-written hot-path scanners ([`reply::reply_len`],
//! [`reply::array_elements`], [`reply::integer`], [`request::decode`]).
//!
//! Test code only, not part of the ringproxy crate (`redis-protocol` is a
//! dev-dependency). It is the reference the scanners are checked against by
//! `tests/resp_reference.rs`, whose module this is (generated frames, truncations,
//! garbage), and by the fuzz targets under `tests/fuzz/`, which include this file by
//! path and call [`check_reply`] and [`check_request`] on arbitrary bytes.
//!
//! # Where the proxy is allowed to differ
//!
//! The scanners are strict where Redis itself never sends or accepts something,
//! and lenient where checking would cost time on the hot path:
//!
//! - Stricter (the scanner answers `Err` where `redis-protocol` accepts a frame):
//!   RESP3 streamed strings and aggregates (`$?`, `*?`, `;` chunks, `.` end),
//!   the `HELLO ...` pseudo-frame `redis-protocol` decodes from a line starting with
//!   `H`, length headers and integers written with a `+` sign or more than 19 digits, and lines
//!   holding a bare LF (no CR before it). Redis never sends any of these to a
//!   client that did not ask for them (the proxy never asks for streaming).
//! - More lenient (the scanner accepts what `redis-protocol` refuses): it does not
//!   look inside `:`, `,`, `#`, `(`, `_` lines, verbatim-string formats, map keys,
//!   or attributes followed by attributes, and takes `-1` as a null length for
//!   every length-prefixed type. It only has to find where a reply ends.
//!
//! [`proxy_may_reject`] is the byte-level test for the first list.

use bytes::BytesMut;
use redis_protocol::resp2::decode as resp2;
use redis_protocol::resp2::types::{OwnedFrame as Resp2Frame, RangeFrame as Range2};
use redis_protocol::resp3::decode::complete as resp3;
use redis_protocol::resp3::types::RangeFrame as Range3;

use ringproxy::resp::reply::{self, FrameError};
use ringproxy::resp::request;

/// The reference refused the bytes: they are not a valid frame (of the kind asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

/// Length of the complete reply at the front of `buf` according to `redis-protocol`
/// (RESP2 or RESP3), `Ok(None)` if it needs more bytes, `Err(Rejected)` if it is invalid.
///
/// RESP2 is tried first (RESP3 has no `$-1` / `*-1` nulls: `redis-protocol`'s RESP3
/// decoder reads `-1` as "streamed"), then RESP3. Frames are only ranged, not built,
/// so no UTF-8 or number check beyond the parser's own is involved.
///
/// One check is added on top of `redis-protocol` 6: its decoders take the two bytes
/// after a blob's payload without looking at them (`$3\r\nabcXY` is a complete
/// frame to it). Here a blob must end in CRLF, as the RESP spec says, or the frame
/// is invalid.
pub fn reference_reply_len(buf: &[u8]) -> Result<Option<usize>, Rejected> {
    let r2 = resp2::decode_range(buf);
    if let Ok(Some((f, n))) = &r2 {
        return if blobs_end_in_crlf2(buf, f) {
            Ok(Some(*n))
        } else {
            Err(Rejected)
        };
    }
    let r3 = resp3::decode_range(buf);
    if let Ok(Some((f, n))) = &r3 {
        return if blobs_end_in_crlf3(buf, f) {
            Ok(Some(*n))
        } else {
            Err(Rejected)
        };
    }
    if matches!(r2, Ok(None)) || matches!(r3, Ok(None)) {
        return Ok(None);
    }
    Err(Rejected)
}

fn crlf_at(buf: &[u8], end: usize) -> bool {
    buf.get(end..end + 2) == Some(&b"\r\n"[..])
}

fn blobs_end_in_crlf2(buf: &[u8], f: &Range2) -> bool {
    match f {
        Range2::BulkString((_, end)) => crlf_at(buf, *end),
        Range2::Array(items) => items.iter().all(|i| blobs_end_in_crlf2(buf, i)),
        _ => true,
    }
}

fn blobs_end_in_crlf3(buf: &[u8], f: &Range3) -> bool {
    let attrs_ok = |a: &Option<redis_protocol::resp3::types::RangeAttributes>| {
        a.iter()
            .flatten()
            .all(|(k, v)| blobs_end_in_crlf3(buf, k) && blobs_end_in_crlf3(buf, v))
    };
    match f {
        Range3::BlobString { data, attributes }
        | Range3::BlobError { data, attributes }
        | Range3::VerbatimString {
            data, attributes, ..
        } => crlf_at(buf, data.1) && attrs_ok(attributes),
        Range3::ChunkedString(data) => data.0 == data.1 || crlf_at(buf, data.1),
        Range3::Array { data, attributes } | Range3::Push { data, attributes } => {
            data.iter().all(|i| blobs_end_in_crlf3(buf, i)) && attrs_ok(attributes)
        }
        Range3::Set { data, attributes } => {
            data.iter().all(|i| blobs_end_in_crlf3(buf, i)) && attrs_ok(attributes)
        }
        Range3::Map { data, attributes } => {
            data.iter()
                .all(|(k, v)| blobs_end_in_crlf3(buf, k) && blobs_end_in_crlf3(buf, v))
                && attrs_ok(attributes)
        }
        Range3::SimpleString { attributes, .. }
        | Range3::SimpleError { attributes, .. }
        | Range3::Boolean { attributes, .. }
        | Range3::Number { attributes, .. }
        | Range3::Double { attributes, .. }
        | Range3::BigNumber { attributes, .. } => attrs_ok(attributes),
        Range3::Null | Range3::Hello { .. } => true,
    }
}

/// Byte ranges of the elements of the complete array, set or push reply `reply`
/// (with no attribute in front of it), each element framed by
/// [`reference_reply_len`]. `None` if `reply` is not such an aggregate.
pub fn reference_elements(reply: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    if !matches!(reply.first(), Some(b'*' | b'~' | b'>')) {
        return None;
    }
    if reference_reply_len(reply) != Ok(Some(reply.len())) {
        return None;
    }
    let header = reply.windows(2).position(|w| w == b"\r\n")?;
    let count: i64 = std::str::from_utf8(&reply[1..header]).ok()?.parse().ok()?;
    let mut pos = header + 2;
    let mut out = Vec::new();
    for _ in 0..count.max(0) {
        let n = reference_reply_len(&reply[pos..]).ok()??;
        out.push(pos..pos + n);
        pos += n;
    }
    Some(out)
}

/// The integer of a complete `:` reply, decoded by `redis-protocol`.
pub fn reference_integer(reply: &[u8]) -> Option<i64> {
    match resp2::decode(reply) {
        Ok(Some((Resp2Frame::Integer(i), _))) => Some(i),
        _ => None,
    }
}

/// A client request as `redis-protocol` decodes it: a RESP2 array of bulk strings.
/// `Ok(Some((args, consumed)))`, `Ok(None)` if incomplete, `Err(Rejected)` if the bytes
/// are not such an array (inline commands are not RESP frames: see
/// [`reference_inline_args`]).
#[allow(clippy::type_complexity)]
pub fn reference_request_args(buf: &[u8]) -> Result<Option<(Vec<Vec<u8>>, usize)>, Rejected> {
    match resp2::decode_range(buf) {
        Ok(None) => Ok(None),
        Ok(Some((Range2::Array(items), n))) => items
            .iter()
            .map(|f| match f {
                Range2::BulkString((s, e)) if crlf_at(buf, *e) => Ok(buf[*s..*e].to_vec()),
                _ => Err(Rejected),
            })
            .collect::<Result<Vec<_>, Rejected>>()
            .map(|args| Some((args, n))),
        _ => Err(Rejected),
    }
}

/// The arguments of one inline command line (without its line ending), as Redis's
/// `sdssplitargs` splits them: a transcription of its C loop (pointer `p` walking a
/// NUL-terminated string, flags `inq`/`insq`), written independently of the
/// scanner. `None` where Redis reports unbalanced quotes.
pub fn reference_inline_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // The C string ends at the first NUL.
    let mut text: Vec<u8> = line.iter().copied().take_while(|&b| b != 0).collect();
    text.push(0);
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let hex = |c: u8| (c as char).to_digit(16);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while at(p) != 0 && space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Some(args);
        }
        let (mut inq, mut insq, mut done) = (false, false, false);
        let mut current = Vec::new();
        while !done {
            let c = at(p);
            if inq {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && hex(at(p + 2)).is_some()
                    && hex(at(p + 3)).is_some()
                {
                    current.push((hex(at(p + 2))? * 16 + hex(at(p + 3))?) as u8);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => current.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        args.push(current);
    }
}

/// True if `frame` holds one of the forms the scanners refuse on purpose although
/// `redis-protocol` accepts them (see the module docs). A byte-level test: it may
/// also be true for frames that merely carry such bytes as data, which only makes
/// the differential checks more permissive, never wrong.
pub fn proxy_may_reject(frame: &[u8]) -> bool {
    let at_frame_start = |i: usize| i == 0 || (i >= 2 && &frame[i - 2..i] == b"\r\n");
    let mut digits = 0;
    for (i, &b) in frame.iter().enumerate() {
        digits = if b.is_ascii_digit() { digits + 1 } else { 0 };
        let bare_lf = b == b'\n' && (i == 0 || frame[i - 1] != b'\r');
        let sign = b == b'+' && i > 0 && b"$*%~>|!=;:".contains(&frame[i - 1]);
        let kind = matches!(b, b'H' | b';' | b'.') && at_frame_start(i);
        if b == b'?' || bare_lf || sign || kind || digits > 19 {
            return true;
        }
    }
    false
}

/// True if a `*` or `$` header of a request in `frame` spells its number in a way
/// Redis refuses (`string2ll`: a leading zero, `-0`), though `redis-protocol` takes it.
pub fn strict_header_refused(frame: &[u8]) -> bool {
    let at_line_start = |i: usize| i == 0 || (i >= 2 && &frame[i - 2..i] == b"\r\n");
    (0..frame.len()).any(|i| {
        if !matches!(frame[i], b'*' | b'$') || !at_line_start(i) {
            return false;
        }
        let digits: Vec<u8> = frame[i + 1..]
            .iter()
            .copied()
            .take_while(|&b| b != b'\r')
            .collect();
        let digits = digits.strip_prefix(b"-").unwrap_or(&digits);
        digits.len() > 1 && digits[0] == b'0'
    })
}

/// Differential check of [`reply::reply_len`] against [`reference_reply_len`] on
/// arbitrary bytes (the fuzz target's body). `Err` describes a disagreement:
///
/// - the scanner must never claim more bytes than `buf` holds;
/// - when the reference accepts a complete reply, the scanner must find the same
///   length, unless it refuses it on purpose ([`proxy_may_reject`]);
/// - a length the scanner finds must itself be framed the same way again
///   (framing is stable), and [`reply::array_elements`] / [`reply::integer`] must
///   agree with the reference on it.
pub fn check_reply(buf: &[u8]) -> Result<(), String> {
    let got = reply::reply_len(buf);
    let want = reference_reply_len(buf);
    if let Ok(Some(n)) = got {
        if n == 0 || n > buf.len() {
            return Err(format!("reply_len = {n} for a {}-byte buffer", buf.len()));
        }
        if reply::reply_len(&buf[..n]) != Ok(Some(n)) {
            return Err(format!("the {n}-byte reply is not framed alone"));
        }
    }
    match (got, want) {
        (Ok(Some(n)), Ok(Some(m))) if n != m => {
            return Err(format!("reply_len = {n}, redis-protocol consumed {m}"));
        }
        (Ok(None), Ok(Some(m))) if !proxy_may_reject(&buf[..m]) => {
            return Err(format!(
                "reply_len wants more bytes, redis-protocol consumed {m}"
            ));
        }
        (Err(FrameError::Invalid), Ok(Some(m))) if !proxy_may_reject(&buf[..m]) => {
            return Err(format!(
                "reply_len refused a reply redis-protocol took ({m} bytes)"
            ));
        }
        _ => {}
    }
    if let (Ok(Some(n)), Ok(Some(_))) = (got, want) {
        let frame = &buf[..n];
        if frame.first() != Some(&b'|') {
            let ours = reply::array_elements(frame);
            let theirs = reference_elements(frame);
            if theirs.is_some() && ours != theirs {
                return Err(format!("array_elements {ours:?}, reference {theirs:?}"));
            }
        }
        if let Some(i) = reference_integer(frame)
            && reply::integer(frame) != Some(i)
            && !proxy_may_reject(frame)
        {
            return Err(format!(
                "integer {:?}, reference {i}",
                reply::integer(frame)
            ));
        }
    }
    Ok(())
}

/// Differential check of [`request::decode`] against [`reference_request_args`] on
/// arbitrary bytes (the fuzz target's body). `Err` describes a disagreement:
///
/// - an incomplete result leaves the buffer untouched;
/// - every decoded request re-decodes, by the reference, to the same arguments;
/// - a multibulk request is exactly the bytes it consumed from the input;
/// - when the input starts with a non-empty array of bulk strings that the reference
///   accepts, the scanner returns it with the same arguments (or refuses it on
///   purpose, [`proxy_may_reject`]), and never asks for more bytes.
pub fn check_request(buf: &[u8]) -> Result<(), String> {
    const MAX: usize = 1 << 30;
    let mut b = BytesMut::from(buf);
    let got = request::decode(&mut b, MAX);
    let consumed = buf.len() - b.len();
    match &got {
        Ok(None) if consumed > 0 && !only_empty(&buf[..consumed]) => {
            return Err(format!("incomplete but {consumed} bytes consumed"));
        }
        Ok(Some(req)) => {
            let args: Vec<Vec<u8>> = (0..req.argc()).map(|i| req.arg(i).to_vec()).collect();
            if args.is_empty() {
                return Err("a request with no argument".into());
            }
            let frame = &req.frame()[..];
            match reference_request_args(frame) {
                Ok(Some((theirs, n))) if theirs == args && n == frame.len() => {}
                other => {
                    return Err(format!(
                        "decoded {args:?}, reference on the frame: {other:?}"
                    ));
                }
            }
            let start = skip_empty(buf);
            if buf.get(start) == Some(&b'*') && buf[start..consumed] != *frame {
                return Err("the frame is not the bytes consumed".into());
            }
        }
        _ => {}
    }
    if buf.first() != Some(&b'*') {
        return Ok(());
    }
    if let Ok(Some((args, m))) = reference_request_args(buf) {
        if args.is_empty() {
            return Ok(());
        }
        match got {
            Ok(Some(req)) => {
                let ours: Vec<&[u8]> = (0..req.argc()).map(|i| req.arg(i)).collect();
                if ours != args.iter().map(Vec::as_slice).collect::<Vec<_>>() || consumed != m {
                    return Err(format!(
                        "decoded {} args from {consumed} bytes, reference {} from {m}",
                        ours.len(),
                        args.len()
                    ));
                }
            }
            Ok(None) => return Err(format!("decode wants more, reference took {m} bytes")),
            Err(e) if !proxy_may_reject(&buf[..m]) && !strict_header_refused(&buf[..m]) => {
                return Err(format!("decode refused ({e}) what the reference took"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// True if `skipped` is only empty requests (`*0`, `*-1`, blank inline lines), which
/// the decoder consumes and drops.
fn only_empty(skipped: &[u8]) -> bool {
    skip_empty(skipped) == skipped.len()
}

/// Offset of the first request in `buf` that is not an empty one.
fn skip_empty(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') {
        let line = &buf[at..at + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let empty = match line.first() {
            Some(b'*') => std::str::from_utf8(&line[1..])
                .ok()
                .filter(|s| !s.starts_with('+'))
                .and_then(|s| s.parse::<i64>().ok())
                .is_some_and(|n| n <= 0),
            _ => reference_inline_args(line).is_some_and(|a| a.is_empty()),
        };
        if !empty {
            break;
        }
        at += nl + 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_frames_replies_and_requests() {
        assert_eq!(reference_reply_len(b"$-1\r\n"), Ok(Some(5)));
        assert_eq!(reference_reply_len(b"*-1\r\n+x"), Ok(Some(5)));
        assert_eq!(reference_reply_len(b"%1\r\n+a\r\n_\r\n"), Ok(Some(11)));
        assert_eq!(reference_reply_len(b"%1\r\n+a\r\n"), Ok(None));
        assert_eq!(reference_reply_len(b"?\r\n"), Err(Rejected));
        // redis-protocol alone would take these (it does not check a blob's CRLF).
        assert_eq!(reference_reply_len(b"$3\r\nabcXY"), Err(Rejected));
        assert_eq!(reference_reply_len(b"*1\r\n!1\r\naXY"), Err(Rejected));
        assert_eq!(reference_request_args(b"*1\r\n$1\r\naXY"), Err(Rejected));
        assert_eq!(
            reference_request_args(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            Ok(Some((vec![b"GET".to_vec(), b"k".to_vec()], 20)))
        );
        assert_eq!(reference_request_args(b"*1\r\n:1\r\n"), Err(Rejected));
        assert_eq!(
            reference_inline_args(b" set 'a b'  c"),
            Some(vec![b"set".to_vec(), b"a b".to_vec(), b"c".to_vec()])
        );
        assert_eq!(reference_inline_args(b"get \"k"), None);
        assert_eq!(
            reference_elements(b"*2\r\n:1\r\n$1\r\nx\r\n"),
            Some(vec![4..8, 8..15])
        );
        assert_eq!(reference_integer(b":-3\r\n"), Some(-3));
    }

    #[test]
    fn documented_rejections_are_recognised() {
        for f in [
            &b";1\r\na\r\n"[..],
            b"HELLO 3\r\n",
            b"$+1\r\na\r\n",
            b"$00000000000000000001\r\na\r\n",
            b"+a\nb\r\n",
            b"*1\r\n;1\r\na\r\n",
        ] {
            assert!(reference_reply_len(f).is_ok(), "{f:?}");
            assert!(proxy_may_reject(f), "{f:?}");
            assert!(check_reply(f).is_ok(), "{f:?}");
        }
        assert!(!proxy_may_reject(b"*1\r\n,1.5\r\n"));
    }
}
