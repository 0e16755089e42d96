//! Inline commands (a line of blank-separated words, as `redis-cli` and `telnet`
//! send them), re-encoded as the RESP array the rest of the proxy forwards.

use super::request::{DecodeError, MAX_INLINE, Request, Scan};
use smallvec::SmallVec;

pub(super) fn scan_inline(buf: &[u8]) -> Result<Scan, DecodeError> {
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
