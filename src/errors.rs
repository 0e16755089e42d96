//! Every error reply the proxy writes itself, as fixed texts in one place.
//!
//! Internal errors are never formatted onto the wire: each failure maps to one of
//! these lines. The few replies that name something (a command, a node) only ever
//! interpolate names from the command table or the config, never raw client bytes,
//! except the unknown-command reply, which quotes a sanitised, truncated name as Redis does.

use bytes::BytesMut;

/// A backend failure as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The node is marked down (or its connection is backing off after a failure).
    #[error("node down")]
    Down,
    /// The request was written but no reply came within the request timeout.
    #[error("timeout")]
    Timeout,
    /// The connection broke while the request was in flight.
    #[error("connection lost")]
    ConnectionLost,
    /// The backend sent bytes that are not RESP.
    #[error("invalid reply")]
    Protocol,
    /// No node is live for this key.
    #[error("no node")]
    NoNode,
}

impl BackendError {
    /// The full error line.
    pub fn wire(self) -> &'static [u8] {
        match self {
            BackendError::Down => b"-ERR ringproxy: backend node is down\r\n",
            BackendError::Timeout => b"-TIMEOUT ringproxy: backend did not reply in time\r\n",
            BackendError::ConnectionLost => b"-ERR ringproxy: backend connection lost\r\n",
            BackendError::Protocol => b"-ERR ringproxy: invalid reply from backend\r\n",
            BackendError::NoNode => b"-ERR ringproxy: no backend node is available\r\n",
        }
    }
}

/// Keys of one request live on different nodes.
pub const CROSSSLOT: &[u8] = b"-CROSSSLOT Keys in request don't hash to the same node\r\n";
/// Client limit reached (Redis's own text).
pub const MAX_CLIENTS: &[u8] = b"-ERR max number of clients reached\r\n";
/// AUTH required (Redis's own text).
pub const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
/// Wrong password (Redis's own text).
pub const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
/// AUTH sent while no password is configured (Redis's own text).
pub const AUTH_NOT_SET: &[u8] =
    b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n";
/// SELECT of a database other than 0.
pub const SELECT_NONZERO: &[u8] = b"-ERR ringproxy: SELECT is only supported for database 0\r\n";
/// SELECT argument not a number (Redis's own text).
pub const NOT_INTEGER: &[u8] = b"-ERR value is not an integer or out of range\r\n";
/// HELLO with an unsupported protocol version (Redis's own text).
pub const NOPROTO: &[u8] = b"-NOPROTO unsupported protocol version\r\n";
/// Generic syntax error (Redis's own text).
pub const SYNTAX: &[u8] = b"-ERR syntax error\r\n";
/// FLUSHALL/FLUSHDB while `allow_flush` is false.
pub const FLUSH_REFUSED: &[u8] =
    b"-ERR ringproxy: FLUSHALL/FLUSHDB are disabled (set allow_flush: true to send them to every node)\r\n";
/// Dedicated connection cap reached.
pub const DEDICATED_LIMIT: &[u8] =
    b"-ERR ringproxy: too many dedicated connections (limits.max_dedicated reached)\r\n";

/// `-ERR wrong number of arguments for 'NAME' command` (NAME from the table).
pub fn wrong_arity(buf: &mut BytesMut, name: &str) {
    buf.extend_from_slice(b"-ERR wrong number of arguments for '");
    buf.extend_from_slice(display_name(name).as_bytes());
    buf.extend_from_slice(b"' command\r\n");
}

/// `-ERR ringproxy: 'NAME' is not supported: REASON` (both from the table).
pub fn refused(buf: &mut BytesMut, name: &str, reason: &str) {
    buf.extend_from_slice(b"-ERR ringproxy: '");
    buf.extend_from_slice(display_name(name).as_bytes());
    buf.extend_from_slice(b"' is not supported: ");
    buf.extend_from_slice(reason.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// A key-position error for `name` with a fixed `text` (from the key layer).
pub fn key_error(buf: &mut BytesMut, text: &str) {
    buf.extend_from_slice(b"-");
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' ` (Redis 7 text):
/// client bytes are truncated to 128 bytes each and CR/LF replaced.
pub fn unknown_command(buf: &mut BytesMut, args: &[&[u8]]) {
    buf.extend_from_slice(b"-ERR unknown command '");
    put_sanitised(buf, args.first().copied().unwrap_or_default());
    buf.extend_from_slice(b"', with args beginning with: ");
    for a in args.iter().skip(1).take(8) {
        buf.extend_from_slice(b"'");
        put_sanitised(buf, a);
        buf.extend_from_slice(b"' ");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Table names are `get` or `client|setname`; Redis shows `client|setname` too.
fn display_name(name: &str) -> &str {
    name
}

fn put_sanitised(buf: &mut BytesMut, bytes: &[u8]) {
    for &b in bytes.iter().take(128) {
        buf.extend_from_slice(&[if b == b'\r' || b == b'\n' { b' ' } else { b }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_single_lines() {
        for e in [
            BackendError::Down,
            BackendError::Timeout,
            BackendError::ConnectionLost,
            BackendError::Protocol,
            BackendError::NoNode,
        ] {
            let w = e.wire();
            assert!(w.starts_with(b"-") && w.ends_with(b"\r\n"));
            assert_eq!(w.iter().filter(|&&b| b == b'\n').count(), 1);
        }
        let mut b = BytesMut::new();
        unknown_command(&mut b, &[b"fo\r\no", b"a"]);
        assert_eq!(
            &b[..],
            b"-ERR unknown command 'fo  o', with args beginning with: 'a' \r\n"
        );
    }
}
