//! RESP on the wire: [`Reply`], [`encode`], [`read_reply`], [`parse_all`].

#![allow(dead_code)]

use std::fmt;
use std::io::{self, BufRead};

/// One decoded RESP2/RESP3 reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+text`
    Status(String),
    /// `-text` (and RESP3 `!` blob errors)
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` bulk string
    Bulk(Vec<u8>),
    /// `$-1`, `*-1` or RESP3 `_`
    Nil,
    /// `*n`
    Array(Vec<Reply>),
    /// RESP3 `%n` map, in wire order
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n` set, in wire order
    Set(Vec<Reply>),
    /// RESP3 `,` double, as its text
    Double(String),
    /// RESP3 `#t` / `#f`
    Bool(bool),
    /// RESP3 `(` big number, as its text
    BigNumber(String),
    /// RESP3 `=` verbatim string: format (e.g. `txt`) and content
    Verbatim(String, Vec<u8>),
    /// RESP3 `>` push
    Push(Vec<Reply>),
}

impl Reply {
    /// `+OK`
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }

    /// A bulk string.
    pub fn bulk(b: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(b.as_ref().to_vec())
    }

    /// An array of bulk strings.
    pub fn bulks<B: AsRef<[u8]>>(items: &[B]) -> Reply {
        Reply::Array(items.iter().map(Reply::bulk).collect())
    }

    /// True for `-` errors.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The error text (panics with the reply otherwise).
    pub fn err_text(&self) -> &str {
        match self {
            Reply::Error(e) => e,
            other => panic!("expected an error reply, got {other}"),
        }
    }

    /// The integer (panics with the reply otherwise).
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer reply, got {other}"),
        }
    }

    /// The bytes of a bulk, status or verbatim string (panics otherwise).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Reply::Bulk(b) | Reply::Verbatim(_, b) => b,
            Reply::Status(s) => s.as_bytes(),
            other => panic!("expected a string reply, got {other}"),
        }
    }

    /// The elements of an array, set or push (panics otherwise).
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => v,
            other => panic!("expected an array reply, got {other}"),
        }
    }

    /// A compact one-line rendering used by table-driven tests:
    /// `+OK`, `-ERR x`, `:5`, `hello` (bulk), `nil`, `[a, b]`, `{k: v}`, `~[a]`,
    /// `,1.5`, `#t`, `(123`, `>[...]`. Non-printable bulk bytes show as `\xNN`.
    pub fn compact(&self) -> String {
        fn join<'a>(it: impl Iterator<Item = &'a Reply>) -> String {
            it.map(Reply::compact).collect::<Vec<_>>().join(", ")
        }
        match self {
            Reply::Status(s) => format!("+{s}"),
            Reply::Error(e) => format!("-{e}"),
            Reply::Int(n) => format!(":{n}"),
            Reply::Bulk(b) | Reply::Verbatim(_, b) => escape(b),
            Reply::Nil => "nil".into(),
            Reply::Array(v) => format!("[{}]", join(v.iter())),
            Reply::Set(v) => format!("~[{}]", join(v.iter())),
            Reply::Push(v) => format!(">[{}]", join(v.iter())),
            Reply::Map(kv) => {
                let parts: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.compact(), v.compact()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
            Reply::Double(d) => format!(",{d}"),
            Reply::Bool(b) => (if *b { "#t" } else { "#f" }).into(),
            Reply::BigNumber(n) => format!("({n}"),
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.compact();
        if s.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            write!(f, "{}... ({} chars)", &s[..cut], s.len())
        } else {
            f.write_str(&s)
        }
    }
}

/// Printable ASCII as is, other bytes as `\xNN`.
pub fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'\\' {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

/// Encodes one request as a RESP multibulk.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply from a buffered stream. `UnexpectedEof` when the peer closed
/// before a reply began or in the middle of one; `InvalidData` on malformed input.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = match line.split_first() {
        Some((k, rest)) => (*k, rest),
        None => return Err(bad("empty reply line")),
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    let len = || -> io::Result<i64> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(&format!("bad length {:?}", escape(rest))))
    };
    Ok(match kind {
        b'+' => Reply::Status(text()),
        b'-' => Reply::Error(text()),
        b':' => Reply::Int(len()?),
        b',' => Reply::Double(text()),
        b'(' => Reply::BigNumber(text()),
        b'#' => Reply::Bool(rest == b"t"),
        b'_' => Reply::Nil,
        b'$' | b'!' | b'=' => {
            let n = len()?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let body = read_exact_crlf(r, n as usize)?;
            match kind {
                b'$' => Reply::Bulk(body),
                b'!' => Reply::Error(String::from_utf8_lossy(&body).into_owned()),
                _ => {
                    let fmt = String::from_utf8_lossy(&body[..3.min(body.len())]).into_owned();
                    Reply::Verbatim(fmt, body.get(4..).unwrap_or_default().to_vec())
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let n = len()?;
            if n < 0 {
                return Ok(Reply::Nil);
            }
            let items = (0..n)
                .map(|_| read_reply(r))
                .collect::<io::Result<Vec<_>>>()?;
            match kind {
                b'*' => Reply::Array(items),
                b'~' => Reply::Set(items),
                _ => Reply::Push(items),
            }
        }
        b'%' | b'|' => {
            let n = len()?;
            let mut kv = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                kv.push((read_reply(r)?, read_reply(r)?));
            }
            if kind == b'|' {
                // An attribute precedes the real reply: skip it.
                return read_reply(r);
            }
            Reply::Map(kv)
        }
        other => return Err(bad(&format!("unknown reply type byte {:?}", other as char))),
    })
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads a line up to CRLF, returns it without the CRLF.
fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() || !line.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn read_exact_crlf(r: &mut impl BufRead, n: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0; n + 2];
    r.read_exact(&mut body)?;
    if !body.ends_with(b"\r\n") {
        return Err(bad("bulk not terminated by CRLF"));
    }
    body.truncate(n);
    Ok(body)
}

/// Parses every complete reply in `bytes`. Returns the replies and the number of bytes
/// left over (an incomplete trailing reply), or an error if the bytes are not RESP.
pub fn parse_all(bytes: &[u8]) -> io::Result<(Vec<Reply>, usize)> {
    let mut cur = io::Cursor::new(bytes);
    let mut out = Vec::new();
    loop {
        let start = cur.position() as usize;
        if start == bytes.len() {
            return Ok((out, 0));
        }
        match read_reply(&mut cur) {
            Ok(r) => out.push(r),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok((out, bytes.len() - start));
            }
            Err(e) => return Err(e),
        }
    }
}
