//! Encoding helpers for replies the proxy writes itself.

use super::Proto;
use bytes::{BufMut, BytesMut};

fn put_decimal(buf: &mut BytesMut, n: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        buf.put_u8(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn header(buf: &mut BytesMut, ty: u8, n: i64) {
    buf.put_u8(ty);
    put_decimal(buf, n);
    buf.extend_from_slice(b"\r\n");
}

/// `*n\r\n`
pub fn array_header(buf: &mut BytesMut, n: usize) {
    header(buf, b'*', n as i64);
}

/// Length of `*n\r\n`: with it a buffer can be sized exactly, and a buffer filled
/// to its capacity freezes into `Bytes` without a second allocation.
pub fn array_header_len(n: usize) -> usize {
    let mut digits = 1;
    let mut v = n / 10;
    while v > 0 {
        digits += 1;
        v /= 10;
    }
    digits + 3
}

/// `%n\r\n` in RESP3, `*2n\r\n` in RESP2.
pub fn map_header(buf: &mut BytesMut, proto: Proto, n: usize) {
    match proto {
        Proto::Resp3 => header(buf, b'%', n as i64),
        Proto::Resp2 => header(buf, b'*', 2 * n as i64),
    }
}

/// `$n\r\n`
pub fn bulk_header(buf: &mut BytesMut, n: usize) {
    header(buf, b'$', n as i64);
}

/// A bulk string.
pub fn bulk(buf: &mut BytesMut, data: &[u8]) {
    bulk_header(buf, data.len());
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
}

/// Text as Redis sends CLIENT LIST, CLIENT INFO and INFO: a verbatim string
/// (`=len\r\ntxt:...`) to a RESP3 client, a bulk string to a RESP2 one.
pub fn verbatim(buf: &mut BytesMut, proto: Proto, text: &[u8]) {
    if proto == Proto::Resp2 {
        return bulk(buf, text);
    }
    header(buf, b'=', text.len() as i64 + 4);
    buf.extend_from_slice(b"txt:");
    buf.extend_from_slice(text);
    buf.extend_from_slice(b"\r\n");
}

/// A null array: `*-1` in RESP2, `_` in RESP3 (EXEC after a failed WATCH).
pub fn null_array(buf: &mut BytesMut, proto: Proto) {
    buf.extend_from_slice(match proto {
        Proto::Resp2 => b"*-1\r\n",
        Proto::Resp3 => b"_\r\n",
    });
}

/// `:n\r\n`
pub fn integer(buf: &mut BytesMut, n: i64) {
    header(buf, b':', n);
}

/// A null: `$-1` in RESP2, `_` in RESP3.
pub fn null(buf: &mut BytesMut, proto: Proto) {
    match proto {
        Proto::Resp3 => buf.extend_from_slice(b"_\r\n"),
        Proto::Resp2 => buf.extend_from_slice(b"$-1\r\n"),
    }
}

/// `+text\r\n`
pub fn simple(buf: &mut BytesMut, text: &str) {
    buf.put_u8(b'+');
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// `-text\r\n`; `text` must hold no CR or LF.
pub fn error(buf: &mut BytesMut, text: &[u8]) {
    buf.put_u8(b'-');
    for &b in text {
        buf.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    buf.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_header_len_matches_the_encoding() {
        for n in [0, 1, 9, 10, 99, 100, 12345, 1 << 40] {
            let mut b = BytesMut::new();
            array_header(&mut b, n);
            assert_eq!(array_header_len(n), b.len(), "{n}");
        }
    }

    #[test]
    fn encodes() {
        let mut b = BytesMut::new();
        integer(&mut b, -12);
        bulk(&mut b, b"hi");
        null(&mut b, Proto::Resp2);
        null(&mut b, Proto::Resp3);
        map_header(&mut b, Proto::Resp2, 2);
        error(&mut b, b"ERR a\r\nb");
        assert_eq!(
            &b[..],
            b":-12\r\n$2\r\nhi\r\n$-1\r\n_\r\n*4\r\n-ERR a  b\r\n"
        );
    }
}
