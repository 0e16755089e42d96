//! The hand-written RESP scanners (`resp::reply`, `resp::request`) checked against
//! `redis-protocol` (wrapped in the `reference` module, `resp_reference/reference.rs`),
//! property style with a fixed-seed PRNG so every run tests the same cases and a
//! failure names its seed.
//!
//! Valid input is made by ENCODING random frames with `redis-protocol`'s encoders
//! (RESP2 and RESP3: nested arrays, maps, sets, pushes, attributes, nulls, big
//! numbers, doubles incl. inf/nan, verbatim strings, blob errors, binary payloads
//! with CR/LF inside). On those the scanners must agree exactly with the reference:
//! whole buffer, every truncated prefix (`Ok(None)`), trailing bytes, pipelines.
//!
//! Invalid input (random garbage, byte flips, insertions and deletions of valid
//! encodings) must never panic the scanners, and wherever the reference accepts a
//! complete frame the scanner must agree on its length, except in the cases the
//! proxy refuses on purpose. Those are listed in `reference`'s module docs:
//! RESP3 streamed strings and aggregates (`$?`, `;`, `.`), the `HELLO` pseudo-frame,
//! `+`-signed or over-19-digit length headers, and lines with a bare LF. They are
//! pinned by `deliberate_differences` below.

#[path = "resp_reference/reference.rs"]
mod reference;

use bytes::BytesMut;
use redis_protocol::resp2::encode as enc2;
use redis_protocol::resp2::types::{OwnedFrame as F2, Resp2Frame};
use redis_protocol::resp3::encode::complete as enc3;
use redis_protocol::resp3::types::{
    FrameMap, FrameSet, OwnedFrame as F3, Resp3Frame, VerbatimStringFormat,
};
use reference::{
    check_reply, check_request, proxy_may_reject, reference_elements, reference_inline_args,
    reference_integer, reference_reply_len, reference_request_args,
};
use ringproxy::resp::reply::{array_elements, integer, reply_len};
use ringproxy::resp::request::{DecodeError, decode};

/// splitmix64: small, good enough, no crate.
struct Rng(u64);

/// A test's fixed seed; `RESP_REF_SEED=n` mixes `n` in, to explore other cases by hand.
fn rng(fixed: u64) -> Rng {
    let extra = std::env::var("RESP_REF_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    Rng(fixed ^ extra.wrapping_mul(0x2545_f491_4f6c_dd1d))
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    /// Binary payload: often short, sometimes long; CR, LF and CRLF salted in.
    fn payload(&mut self) -> Vec<u8> {
        let len = match self.below(10) {
            0 => 0,
            1..=6 => self.below(12),
            7 | 8 => self.below(100),
            _ => self.below(600),
        };
        let mut v: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        if len > 0 && self.chance(40) {
            let at = self.below(len);
            v[at] = b'\r';
            if at + 1 < len {
                v[at + 1] = b'\n';
            }
        }
        v
    }
    /// A line-safe string (no CR or LF) for simple strings and errors.
    fn line(&mut self) -> Vec<u8> {
        let len = self.below(16);
        (0..len)
            .map(|_| match self.next() as u8 {
                b'\r' | b'\n' => b'x',
                b => b,
            })
            .collect()
    }
    fn ascii_line(&mut self) -> String {
        let len = self.below(16);
        (0..len)
            .map(|_| (b' ' + self.below(95) as u8) as char)
            .collect()
    }
    fn int(&mut self) -> i64 {
        match self.below(6) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => 0,
            3 => -(self.below(1000) as i64),
            _ => self.next() as i64 >> self.below(64),
        }
    }
    fn double(&mut self) -> f64 {
        match self.below(8) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => f64::NAN,
            3 => 0.0,
            4 => f64::MAX,
            5 => f64::MIN_POSITIVE,
            _ => f64::from_bits(self.next() & !(0x7ff << 52)) * (self.below(2000) as f64 - 1000.0),
        }
    }
    fn big_number(&mut self) -> Vec<u8> {
        let mut v = if self.chance(30) {
            b"-".to_vec()
        } else {
            vec![]
        };
        v.push(b'1' + self.below(9) as u8);
        for _ in 0..self.below(60) {
            v.push(b'0' + self.below(10) as u8);
        }
        v
    }
}

/// A random RESP2 frame (nulls, integers, errors, binary bulk strings, nested arrays).
fn gen2(r: &mut Rng, depth: usize) -> F2 {
    let kinds = if depth == 0 { 5 } else { 6 };
    match r.below(kinds) {
        0 => F2::SimpleString(r.line()),
        1 => F2::Error(r.ascii_line()),
        2 => F2::Integer(r.int()),
        3 => F2::BulkString(r.payload()),
        4 => F2::Null,
        _ => {
            let n = r.below(6);
            F2::Array((0..n).map(|_| gen2(r, depth - 1)).collect())
        }
    }
}

fn encode2(f: &F2) -> Vec<u8> {
    let mut buf = vec![0; f.encode_len(false)];
    let n = enc2::encode(&mut buf, f, false).expect("encode RESP2");
    assert_eq!(n, buf.len());
    buf
}

fn encode3(f: &F3) -> Vec<u8> {
    let mut buf = vec![0; f.encode_len(false)];
    let n = enc3::encode(&mut buf, f, false).expect("encode RESP3");
    assert_eq!(n, buf.len());
    buf
}

/// A hashable RESP3 frame (a map key or set member: no aggregate, no NaN).
fn key3(r: &mut Rng) -> F3 {
    let attributes = None;
    match r.below(6) {
        0 => F3::BlobString {
            data: r.payload(),
            attributes,
        },
        1 => F3::SimpleString {
            data: r.line(),
            attributes,
        },
        2 => F3::Number {
            data: r.int(),
            attributes,
        },
        3 => F3::Boolean {
            data: r.chance(50),
            attributes,
        },
        4 => F3::Double {
            data: r.below(1000) as f64 / 8.0,
            attributes,
        },
        _ => F3::BlobError {
            data: r.payload(),
            attributes,
        },
    }
}

fn attributes3(r: &mut Rng, depth: usize) -> Option<FrameMap<F3, F3>> {
    if !r.chance(12) {
        return None;
    }
    let mut m = FrameMap::default();
    for _ in 0..r.below(3) + 1 {
        m.insert(key3(r), gen3(r, depth.saturating_sub(1)));
    }
    Some(m)
}

/// A random RESP3 frame of every type, attributes on some, nested up to `depth`.
fn gen3(r: &mut Rng, depth: usize) -> F3 {
    let kinds = if depth == 0 { 12 } else { 16 };
    let k = r.below(kinds);
    let attributes = attributes3(r, depth);
    let width = |r: &mut Rng| r.below(5);
    match k {
        0 => F3::BlobString {
            data: r.payload(),
            attributes,
        },
        1 => F3::BlobError {
            data: r.payload(),
            attributes,
        },
        2 => F3::SimpleString {
            data: r.line(),
            attributes,
        },
        3 => F3::SimpleError {
            data: r.ascii_line(),
            attributes,
        },
        4 => F3::Boolean {
            data: r.chance(50),
            attributes,
        },
        5 => F3::Null,
        6 => F3::Number {
            data: r.int(),
            attributes,
        },
        7 => F3::Double {
            data: r.double(),
            attributes,
        },
        8 => F3::BigNumber {
            data: r.big_number(),
            attributes,
        },
        9 | 10 => F3::VerbatimString {
            data: r.payload(),
            format: if r.chance(50) {
                VerbatimStringFormat::Text
            } else {
                VerbatimStringFormat::Markdown
            },
            attributes,
        },
        11 => F3::Number {
            data: r.below(100) as i64,
            attributes,
        },
        12 => F3::Array {
            data: (0..width(r)).map(|_| gen3(r, depth - 1)).collect(),
            attributes,
        },
        13 => {
            let mut data = FrameMap::default();
            for _ in 0..width(r) {
                data.insert(key3(r), gen3(r, depth - 1));
            }
            F3::Map { data, attributes }
        }
        14 => {
            let mut data = FrameSet::default();
            for _ in 0..width(r) {
                data.insert(key3(r));
            }
            F3::Set { data, attributes }
        }
        _ => F3::Push {
            data: (0..width(r)).map(|_| gen3(r, depth - 1)).collect(),
            attributes,
        },
    }
}

/// Every check on one valid encoded reply; returns the number of buffers scanned.
fn check_valid_reply(wire: &[u8], r: &mut Rng, what: &str) -> usize {
    let len = wire.len();
    assert_eq!(
        reference_reply_len(wire),
        Ok(Some(len)),
        "{what}: reference"
    );
    assert_eq!(reply_len(wire), Ok(Some(len)), "{what}: {wire:?}");
    let mut scanned = 1;
    // Every truncated prefix is incomplete, for both (the reference on a sample:
    // it is the slow one).
    for cut in 0..len {
        assert_eq!(
            reply_len(&wire[..cut]),
            Ok(None),
            "{what}: cut {cut} of {wire:?}"
        );
        if cut % 7 == 0 {
            assert_eq!(
                reference_reply_len(&wire[..cut]),
                Ok(None),
                "{what}: cut {cut}"
            );
        }
        scanned += 1;
    }
    // Trailing bytes (another reply, or anything) do not change the length.
    let mut more = wire.to_vec();
    let tail: Vec<u8> = (0..r.below(20) + 1).map(|_| r.next() as u8).collect();
    more.extend_from_slice(&tail);
    assert_eq!(
        reply_len(&more),
        Ok(Some(len)),
        "{what}: with trailing bytes"
    );
    assert_eq!(
        reference_reply_len(&more),
        Ok(Some(len)),
        "{what}: reference, trailing"
    );
    // Element ranges of aggregates, and integers, agree with the reference.
    if let Some(theirs) = reference_elements(wire) {
        assert_eq!(
            array_elements(wire),
            Some(theirs),
            "{what}: elements of {wire:?}"
        );
    }
    if let Some(i) = reference_integer(wire) {
        assert_eq!(integer(wire), Some(i), "{what}: integer");
    }
    check_reply(wire).unwrap_or_else(|e| panic!("{what}: {e}: {wire:?}"));
    scanned + 1
}

/// Frames a pipeline of concatenated replies one by one, as a backend reader does.
fn check_pipeline(frames: &[Vec<u8>], what: &str) {
    let stream: Vec<u8> = frames.concat();
    let mut pos = 0;
    for (i, f) in frames.iter().enumerate() {
        let n = reply_len(&stream[pos..])
            .unwrap_or_else(|e| panic!("{what}: frame {i}: {e}"))
            .unwrap_or_else(|| panic!("{what}: frame {i} incomplete"));
        assert_eq!(n, f.len(), "{what}: frame {i}");
        pos += n;
    }
    assert_eq!(reply_len(&stream[pos..]), Ok(None));
}

#[test]
fn resp2_replies_agree_with_the_reference() {
    let mut r = rng(0x5eed_0002);
    let (mut frames, mut scanned) = (0, 0);
    for case in 0..3000 {
        let f = gen2(&mut r, 4);
        let wire = encode2(&f);
        scanned += check_valid_reply(&wire, &mut r, &format!("resp2 case {case}"));
        frames += 1;
    }
    // RESP2 null array (the encoder writes nulls as `$-1`).
    for wire in [&b"*-1\r\n"[..], b"*2\r\n*-1\r\n$-1\r\n", b"*0\r\n"] {
        scanned += check_valid_reply(wire, &mut r, "resp2 null array");
        frames += 1;
    }
    let pipeline: Vec<Vec<u8>> = (0..200).map(|_| encode2(&gen2(&mut r, 3))).collect();
    check_pipeline(&pipeline, "resp2 pipeline");
    eprintln!("resp2: {frames} replies, {scanned} buffers scanned");
    assert!(frames >= 3000);
}

#[test]
fn resp3_replies_agree_with_the_reference() {
    let mut r = rng(0x5eed_0003);
    let (mut frames, mut scanned) = (0, 0);
    let mut kinds = [0usize; 256];
    for case in 0..4000 {
        let f = gen3(&mut r, 4);
        let wire = encode3(&f);
        kinds[wire[0] as usize] += 1;
        scanned += check_valid_reply(&wire, &mut r, &format!("resp3 case {case}"));
        frames += 1;
    }
    let pipeline: Vec<Vec<u8>> = (0..200).map(|_| encode3(&gen3(&mut r, 3))).collect();
    check_pipeline(&pipeline, "resp3 pipeline");
    // Every RESP3 type byte was generated at the top level, attributes included.
    for k in b"$!+-#_:,(=*%~>|" {
        assert!(kinds[*k as usize] > 0, "no {} frame generated", *k as char);
    }
    eprintln!("resp3: {frames} replies, {scanned} buffers scanned");
}

/// Random arrays of random binary arguments, encoded by redis-protocol.
fn gen_request(r: &mut Rng) -> (Vec<Vec<u8>>, Vec<u8>) {
    let n = r.below(8) + 1;
    let args: Vec<Vec<u8>> = (0..n).map(|_| r.payload()).collect();
    let frame = F2::Array(args.iter().cloned().map(F2::BulkString).collect());
    (args, encode2(&frame))
}

fn args_of(req: &ringproxy::resp::Request) -> Vec<Vec<u8>> {
    (0..req.argc()).map(|i| req.arg(i).to_vec()).collect()
}

#[test]
fn multibulk_requests_agree_with_the_reference() {
    let mut r = rng(0x5eed_0004);
    let mut count = 0;
    for case in 0..3000 {
        let (args, wire) = gen_request(&mut r);
        let (theirs, n) = reference_request_args(&wire).unwrap().unwrap();
        assert_eq!((&theirs, n), (&args, wire.len()), "case {case}: reference");
        // Whole, then with trailing bytes: same args, same frame, tail left in place.
        let mut tail: Vec<u8> = (0..r.below(10)).map(|_| r.next() as u8).collect();
        tail.insert(0, b'*');
        for extra in [&[][..], &tail[..]] {
            let mut buf = BytesMut::from(&wire[..]);
            buf.extend_from_slice(extra);
            let req = decode(&mut buf, 1 << 30).unwrap().expect("complete");
            assert_eq!(args_of(&req), args, "case {case}");
            assert_eq!(&req.frame()[..], &wire[..], "case {case}");
            assert_eq!(&buf[..], extra, "case {case}");
        }
        // Every truncated prefix: incomplete, nothing consumed.
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(
                decode(&mut buf, 1 << 30).unwrap().map(|_| ()),
                None,
                "case {case} cut {cut}"
            );
            assert_eq!(buf.len(), cut, "case {case} cut {cut}: consumed");
        }
        check_request(&wire).unwrap_or_else(|e| panic!("case {case}: {e}"));
        count += 1;
    }
    // A pipeline of requests, with empty ones (`*0`, blank lines) between them.
    let mut stream = BytesMut::new();
    let mut want = vec![];
    for _ in 0..300 {
        let (args, wire) = gen_request(&mut r);
        if r.chance(10) {
            stream.extend_from_slice(if r.chance(50) { b"*0\r\n" } else { b"\r\n" });
        }
        stream.extend_from_slice(&wire);
        want.push(args);
    }
    for (i, args) in want.iter().enumerate() {
        let req = decode(&mut stream, 1 << 30)
            .unwrap()
            .unwrap_or_else(|| panic!("{i}"));
        assert_eq!(&args_of(&req), args, "pipelined request {i}");
    }
    assert!(stream.is_empty());
    eprintln!("requests: {count} multibulk requests and every prefix, 300 pipelined");
}

#[test]
fn inline_requests_match_their_words() {
    let mut r = rng(0x5eed_0005);
    for case in 0..2000 {
        // Words of printable bytes (no blank, no quote; no backslash inside quotes,
        // where it escapes); some quoted, with blanks inside.
        let n = r.below(6) + 1;
        let mut words = vec![];
        let mut line = vec![];
        for i in 0..n {
            let quoted = i > 0 && r.chance(30);
            let len = r.below(10) + usize::from(!quoted);
            // A line starting with `*` is a multibulk request, for Redis too.
            let word: Vec<u8> = (0..len)
                .map(|j| {
                    loop {
                        let b = b'!' + r.below(94) as u8;
                        let escape = quoted && b == b'\\';
                        if b != b'"' && b != b'\'' && !escape && (i, j, b) != (0, 0, b'*') {
                            break if quoted && r.chance(20) { b' ' } else { b };
                        }
                    }
                })
                .collect();
            for _ in 0..r.below(3) + usize::from(i > 0) {
                line.push(if r.chance(80) { b' ' } else { b'\t' });
            }
            let q = if r.chance(50) { b'"' } else { b'\'' };
            if quoted {
                line.push(q);
            }
            line.extend_from_slice(&word);
            if quoted {
                line.push(q);
            }
            words.push(word);
        }
        assert_eq!(
            reference_inline_args(&line).as_ref(),
            Some(&words),
            "case {case}: model"
        );
        let ending: &[u8] = if r.chance(70) { b"\r\n" } else { b"\n" };
        let mut wire = line.clone();
        wire.extend_from_slice(ending);
        let mut buf = BytesMut::from(&wire[..]);
        let req = decode(&mut buf, 1 << 30).unwrap().expect("complete inline");
        assert_eq!(
            args_of(&req),
            words,
            "case {case}: {:?}",
            String::from_utf8_lossy(&line)
        );
        assert!(buf.is_empty());
        // The proxy re-encodes an inline command as an array the reference reads back.
        let (theirs, n) = reference_request_args(req.frame()).unwrap().unwrap();
        assert_eq!(
            (theirs, n),
            (words.clone(), req.frame().len()),
            "case {case}: frame"
        );
        for cut in 0..line.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert!(
                decode(&mut buf, 1 << 30).unwrap().is_none(),
                "case {case} cut {cut}"
            );
        }
        check_request(&wire).unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
}

/// Bytes that look like RESP more often than uniform noise does.
fn garbage(r: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"*$+-:_,#(!=%~>|?;.H\r\n\r\n0123456789-1";
    let len = r.below(48);
    (0..len)
        .map(|_| {
            if r.chance(85) {
                ALPHABET[r.below(ALPHABET.len())]
            } else {
                r.next() as u8
            }
        })
        .collect()
}

/// A valid encoding with 1-3 random edits: flip, insert, delete, truncate.
fn mutate(r: &mut Rng, wire: &[u8]) -> Vec<u8> {
    let mut v = wire.to_vec();
    for _ in 0..r.below(3) + 1 {
        if v.is_empty() {
            break;
        }
        let at = r.below(v.len());
        match r.below(5) {
            0 => v[at] ^= 1 << r.below(8),
            1 => v[at] = b"\r\n*$:-+01?"[r.below(10)],
            2 => v.insert(at, r.next() as u8),
            3 => {
                v.remove(at);
            }
            _ => v.truncate(at),
        }
    }
    v
}

#[test]
fn garbage_and_mutations_never_panic_and_agree_when_valid() {
    let mut r = rng(0x5eed_0006);
    let (mut total, mut accepted, mut agreed) = (0, 0, 0);
    for case in 0..100_000 {
        let valid = match case % 4 {
            0 => None,
            1 => Some(encode2(&gen2(&mut r, 2))),
            2 => Some(encode3(&gen3(&mut r, 2))),
            _ => Some(gen_request(&mut r).1),
        };
        let buf = match valid {
            None => garbage(&mut r),
            Some(wire) => mutate(&mut r, &wire),
        };
        check_reply(&buf).unwrap_or_else(|e| panic!("case {case}: {e}: {buf:?}"));
        check_request(&buf).unwrap_or_else(|e| panic!("case {case}: {e}: {buf:?}"));
        if let Ok(Some(m)) = reference_reply_len(&buf) {
            accepted += 1;
            if reply_len(&buf) == Ok(Some(m)) {
                agreed += 1;
            }
        }
        total += 1;
    }
    eprintln!(
        "garbage: {total} buffers; the reference took {accepted} as complete replies, \
         the scanner agreed on {agreed} (the rest are deliberate refusals)"
    );
    assert!(accepted > 1000, "too few valid mutants to mean anything");
}

/// The cases where the proxy deliberately refuses what redis-protocol accepts (or
/// accepts what it refuses), pinned so a change in either shows up here.
#[test]
fn deliberate_differences() {
    // Streamed RESP3 (`$?`, `*?`) is refused by both as a complete frame.
    for wire in [&b"$?\r\n;3\r\nabc\r\n;0\r\n"[..], b"*?\r\n:1\r\n.\r\n"] {
        assert!(reply_len(wire).is_err() && reference_reply_len(wire).is_err());
    }
    // Refused by the proxy, accepted by redis-protocol.
    for (what, wire) in [
        ("a stream chunk frame", &b";3\r\nabc\r\n"[..]),
        ("a stream end frame", b".\r\n"),
        ("a chunk inside an array", b"*1\r\n;1\r\na\r\n"),
        ("HELLO pseudo-frame", b"HELLO 3\r\n"),
        ("HELLO inside an array", b"*1\r\nHELLO 3\r\n"),
        ("+-signed length", b"$+3\r\nabc\r\n"),
        ("20-digit length", b"$00000000000000000003\r\nabc\r\n"),
        ("bare LF inside a simple string", b"+a\nb\r\n"),
    ] {
        let theirs = reference_reply_len(wire);
        assert!(
            matches!(theirs, Ok(Some(_))),
            "{what}: reference {theirs:?}"
        );
        assert!(reply_len(wire).is_err(), "{what}: proxy");
        assert!(proxy_may_reject(wire), "{what}");
    }
    assert_eq!(
        decode(&mut BytesMut::from(&b"*1\r\n$+4\r\nPING\r\n"[..]), 1 << 20).unwrap_err(),
        DecodeError::BulkLength
    );
    assert!(
        reference_request_args(b"*1\r\n$+4\r\nPING\r\n")
            .unwrap()
            .is_some()
    );
    // Accepted by the proxy, refused by redis-protocol: content the proxy never
    // needs to read (it forwards replies byte for byte).
    for wire in [
        &b":not a number\r\n"[..],
        b"#maybe\r\n",
        b",x\r\n",
        b"!-1\r\n",
        b"~-1\r\n",
        b"=2\r\nab\r\n",
        b"%1\r\n*0\r\n:1\r\n",
        b"|0\r\n|0\r\n+x\r\n",
    ] {
        assert_eq!(reply_len(wire), Ok(Some(wire.len())), "{wire:?}");
        assert!(reference_reply_len(wire).is_err(), "{wire:?}");
    }
    // Inline commands: escapes inside double quotes are rewritten, as Redis does.
    let req = decode(&mut BytesMut::from(&b"set k \"a\\nb\"\r\n"[..]), 1 << 20)
        .unwrap()
        .unwrap();
    assert_eq!(req.arg(2), b"a\nb");
}

#[test]
fn inline_quotes_and_escapes_split_as_redis_does() {
    let mut r = rng(0x5eed_0007);
    const ALPHABET: &[u8] = b"ab\\\\\"\"''  \txX0f9\x0b\x0c\0n";
    let mut agreed = 0;
    for case in 0..50_000 {
        let len = r.below(16) + 1;
        let line: Vec<u8> = (0..len)
            .map(|_| ALPHABET[r.below(ALPHABET.len())])
            .collect();
        if line.first() == Some(&b'*') {
            continue;
        }
        let mut wire = line.clone();
        wire.extend_from_slice(b"\r\n");
        let ours = decode(&mut BytesMut::from(&wire[..]), 1 << 20);
        let model = reference_inline_args(&line);
        match (ours, model) {
            (Ok(Some(req)), Some(words)) => {
                assert_eq!(args_of(&req), words, "case {case}: {line:?}")
            }
            (Ok(None), Some(words)) => assert!(words.is_empty(), "case {case}: {line:?}"),
            (Err(DecodeError::UnbalancedQuotes), None) => {}
            (ours, model) => panic!("case {case}: {line:?}: proxy {ours:?}, model {model:?}"),
        }
        agreed += 1;
    }
    assert!(agreed > 40_000);
}
