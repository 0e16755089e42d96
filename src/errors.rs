//! Every error reply the proxy writes itself, as fixed texts in one place.
//!
//! Internal errors are never formatted onto the wire: each failure maps to one of
//! these lines. The few replies that name something (a command, a node) only ever
//! interpolate names from the command table or the config, never raw client bytes,
//! except the unknown-command reply, which quotes a sanitised, truncated name as Redis does.

use crate::command::KeyError;
use crate::resp::{DecodeError, Request};
use bytes::{Bytes, BytesMut};

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

/// A SCAN cursor the proxy did not hand out.
pub const INVALID_CURSOR: &[u8] = b"-ERR invalid cursor\r\n";
/// WATCH between MULTI and EXEC.
pub const WATCH_IN_MULTI: &[u8] = b"-ERR WATCH inside MULTI is not allowed\r\n";
/// MULTI between MULTI and EXEC.
pub const MULTI_NESTED: &[u8] = b"-ERR MULTI calls can not be nested\r\n";
/// EXEC without MULTI.
pub const EXEC_WITHOUT_MULTI: &[u8] = b"-ERR EXEC without MULTI\r\n";
/// DISCARD without MULTI.
pub const DISCARD_WITHOUT_MULTI: &[u8] = b"-ERR DISCARD without MULTI\r\n";
/// EXEC after a command of the transaction was rejected.
pub const EXECABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";
/// HELLO with a version that is not an integer.
pub const HELLO_PROTO_NOT_INTEGER: &[u8] =
    b"-ERR Protocol version is not an integer or out of range\r\n";
/// HELLO from a client that is not authenticated, without AUTH.
pub const HELLO_NOAUTH: &[u8] = b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n";

/// Redis's line for an unknown HELLO option: `Syntax error in HELLO option 'x'`
/// (the option's CR/LF become spaces, as Redis does for error texts).
pub fn hello_syntax(buf: &mut BytesMut, opt: &[u8]) {
    buf.extend_from_slice(b"-ERR Syntax error in HELLO option '");
    buf.extend(
        opt.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    buf.extend_from_slice(b"'\r\n");
}

/// Redis's reply to a rejected EXEC: `-EXECABORT Transaction discarded because
/// of: <the error, without its code>`.
pub fn exec_abort(err: &[u8]) -> Bytes {
    let text = err.strip_prefix(b"-").unwrap_or(err);
    let text = text.strip_prefix(b"ERR ").unwrap_or(text);
    let text = text.strip_suffix(b"\r\n").unwrap_or(text);
    let mut b = BytesMut::from(&b"-EXECABORT Transaction discarded because of: "[..]);
    b.extend_from_slice(text);
    b.extend_from_slice(b"\r\n");
    b.freeze()
}

/// The reply to a blocking command the proxy unblocked because its key moved to
/// another node (a topology change); the client may send it again.
pub const BLOCKED_KEY_MOVED: &[u8] =
    b"-TRYAGAIN ringproxy: the key moved to another node while the command was blocked; retry it\r\n";
/// EXEC of a transaction whose keys moved to another node (a topology change).
pub const EXECABORT_MOVED: &[u8] = b"-EXECABORT Transaction discarded because of: the keys moved to another node (topology change); retry the transaction\r\n";

/// A request that did not arrive whole within `timeouts.client_request`.
pub const REQUEST_TOO_SLOW: &[u8] =
    b"-ERR ringproxy: the request did not arrive in time (timeouts.client_request)\r\n";

/// Why a command for every node is refused inside MULTI.
pub const MULTI_WHOLE_POOL: &str =
    "it runs on every node, and a transaction runs on one; send it outside MULTI";
/// Why a subscription is refused inside MULTI.
pub const MULTI_SUBSCRIBE: &str = "a subscription inside a transaction would subscribe the transaction's connection; subscribe outside MULTI";
/// Why a command the proxy answers itself is refused inside MULTI.
pub const MULTI_LOCAL: &str = "the proxy answers it itself (client state, or every node merged) and cannot run it inside a node's transaction; send it outside MULTI";

/// CLIENT KILL of an address no client has.
pub const NO_SUCH_CLIENT: &[u8] = b"-ERR No such client\r\n";
/// CLIENT LIST ID with an id that is not a positive integer.
pub const INVALID_CLIENT_ID: &[u8] = b"-ERR Invalid client ID\r\n";
/// CLIENT KILL ID with an id that is not a positive integer.
pub const CLIENT_ID_NOT_POSITIVE: &[u8] = b"-ERR client-id should be greater than 0\r\n";

/// `Unknown client type 'x'` (CLIENT LIST / KILL TYPE).
pub fn unknown_client_type(buf: &mut BytesMut, t: &[u8]) {
    quoted_error(buf, b"-ERR Unknown client type '", t);
}

/// `No such user 'x'` (CLIENT KILL USER).
pub fn no_such_user(buf: &mut BytesMut, user: &[u8]) {
    quoted_error(buf, b"-ERR No such user '", user);
}

/// `prefix` + `arg` (CR/LF made spaces, as Redis does in error texts) + `'`.
fn quoted_error(buf: &mut BytesMut, prefix: &[u8], arg: &[u8]) {
    buf.extend_from_slice(prefix);
    buf.extend(
        arg.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    buf.extend_from_slice(b"'\r\n");
}

/// CLIENT SETNAME with a name Redis refuses.
pub const CLIENT_NAME: &[u8] =
    b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n";

/// A read-only request under `read_from: replica` when no replica of the key's
/// shard is up and in sync.
pub const NO_READABLE_REPLICA: &[u8] =
    b"-ERR ringproxy: no replica of this shard is readable (read_from: replica)\r\n";

/// Keys of one request live on different nodes.
pub const CROSSSLOT: &[u8] = b"-CROSSSLOT Keys in request don't hash to the same node\r\n";
/// Keys of one request are in different slots of a Redis Cluster (Redis Cluster's
/// own text).
pub const CROSSSLOT_SLOTS: &[u8] = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n";
/// A cluster pool's request was redirected more often than the proxy follows.
pub const TOO_MANY_REDIRECTS: &[u8] =
    b"-TRYAGAIN ringproxy: the cluster redirected this request too many times; retry\r\n";
/// A cluster pool's request was redirected to a node the slot map does not know,
/// even after reading the map again.
pub const REDIRECT_UNKNOWN_NODE: &[u8] =
    b"-TRYAGAIN ringproxy: the cluster redirected this request to a node it does not list yet; retry\r\n";
/// Client limit reached (Redis's own text).
pub const MAX_CLIENTS: &[u8] = b"-ERR max number of clients reached\r\n";
/// AUTH required (Redis's own text).
pub const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
/// Wrong password (Redis's own text).
pub const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
/// A key the user may not touch (Redis 7.0's own text).
pub const NOPERM_KEY: &[u8] =
    b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";
/// A channel the user may not use (Redis 7.0's own text).
pub const NOPERM_CHANNEL: &[u8] =
    b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n";

/// Redis 7.0's NOPERM reply for `denied` (`command`: the table name, `config|set`).
pub fn noperm(buf: &mut BytesMut, denied: crate::acl::Denied, command: &str) {
    use crate::acl::Denied;
    match denied {
        Denied::Command => {
            buf.extend_from_slice(b"-NOPERM this user has no permissions to run the '");
            buf.extend_from_slice(command.as_bytes());
            buf.extend_from_slice(b"' command\r\n");
        }
        Denied::Key => buf.extend_from_slice(NOPERM_KEY),
        Denied::Channel => buf.extend_from_slice(NOPERM_CHANNEL),
    }
}

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

/// `-ERR wrong number of arguments for 'NAME' command` (NAME from the table, as
/// Redis 7 writes it: `client|setname`).
pub fn wrong_arity(buf: &mut BytesMut, name: &str) {
    buf.extend_from_slice(b"-ERR wrong number of arguments for '");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"' command\r\n");
}

/// `-ERR 'CONFIG SET' is not supported by the proxy: REASON` (both from the table).
pub fn refused(buf: &mut BytesMut, name: &str, reason: &str) {
    buf.extend_from_slice(b"-ERR '");
    for part in name.split('|').enumerate() {
        if part.0 > 0 {
            buf.extend_from_slice(b" ");
        }
        buf.extend_from_slice(part.1.to_ascii_uppercase().as_bytes());
    }
    buf.extend_from_slice(b"' is not supported by the proxy: ");
    buf.extend_from_slice(reason.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// A RESP2 client in subscribe mode sent another command (Redis 7's text).
pub fn subscribe_mode(buf: &mut BytesMut, name: &str) {
    buf.extend_from_slice(b"-ERR Can't execute '");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(
        b"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
}

/// The line for a request whose keys cannot be found (Redis's texts).
pub fn key_error(e: KeyError) -> &'static [u8] {
    match e {
        KeyError::NotInteger => NOT_INTEGER,
        KeyError::Negative => b"-ERR Number of keys can't be negative\r\n",
        KeyError::TooMany => b"-ERR Number of keys can't be greater than number of args\r\n",
        KeyError::ZeroKeys => b"-ERR numkeys should be greater than 0\r\n",
        KeyError::Syntax => SYNTAX,
    }
}

/// The line sent for a protocol error before the connection is closed (Redis's
/// texts; the request-size limit is the proxy's own).
pub fn protocol_error(e: DecodeError) -> Bytes {
    let text: &'static [u8] = match e {
        DecodeError::MultibulkLength => b"-ERR Protocol error: invalid multibulk length\r\n",
        DecodeError::BulkLength => b"-ERR Protocol error: invalid bulk length\r\n",
        DecodeError::ExpectedBulk(got) => {
            let mut b = BytesMut::from(&b"-ERR Protocol error: expected '$', got '"[..]);
            let got = if got == b'\r' || got == b'\n' {
                b' '
            } else {
                got
            };
            b.extend_from_slice(&[got, b'\'', b'\r', b'\n']);
            return b.freeze();
        }
        DecodeError::MultibulkCountTooBig => b"-ERR Protocol error: too big mbulk count string\r\n",
        DecodeError::BulkCountTooBig => b"-ERR Protocol error: too big bulk count string\r\n",
        DecodeError::BulkTerminator => {
            b"-ERR Protocol error: bulk string not terminated by CRLF\r\n"
        }
        DecodeError::InlineTooBig => b"-ERR Protocol error: too big inline request\r\n",
        DecodeError::UnbalancedQuotes => b"-ERR Protocol error: unbalanced quotes in request\r\n",
        DecodeError::TooLarge => {
            b"-ERR Protocol error: request larger than the proxy's max_request_size\r\n"
        }
    };
    Bytes::from_static(text)
}

/// Redis 7's unknown-command line: `-ERR unknown command 'foo', with args beginning
/// with: 'a' 'b' `. The name is cut at 128 bytes, the arguments at 128 bytes in
/// all, and CR/LF become spaces.
pub fn unknown_command(buf: &mut BytesMut, req: &Request) {
    // Redis formats with `%s`: each text ends at its first NUL byte.
    let c_str = |a: &'_ [u8]| -> usize { a.iter().position(|&b| b == 0).unwrap_or(a.len()) };
    buf.extend_from_slice(b"-ERR unknown command '");
    let name = req.get(0).unwrap_or_default();
    put_sanitised(buf, &name[..c_str(name)], 128);
    buf.extend_from_slice(b"', with args beginning with: ");
    let mut used = 0;
    for arg in (1..req.argc()).map_while(|i| req.get(i)) {
        let arg = &arg[..c_str(arg)];
        if used >= 128 {
            break;
        }
        let take = arg.len().min(128 - used);
        buf.extend_from_slice(b"'");
        put_sanitised(buf, arg, take);
        buf.extend_from_slice(b"' ");
        used += take + 3;
    }
    buf.extend_from_slice(b"\r\n");
}

/// Redis 7's unknown-subcommand line: `-ERR unknown subcommand 'foo'. Try CLIENT HELP.`
pub fn unknown_subcommand(buf: &mut BytesMut, req: &Request) {
    buf.extend_from_slice(b"-ERR unknown subcommand '");
    put_sanitised(buf, req.get(1).unwrap_or_default(), 128);
    buf.extend_from_slice(b"'. Try ");
    put_sanitised(
        buf,
        &req.get(0).unwrap_or_default().to_ascii_uppercase(),
        128,
    );
    buf.extend_from_slice(b" HELP.\r\n");
}

fn put_sanitised(buf: &mut BytesMut, bytes: &[u8], max: usize) {
    for &b in bytes.iter().take(max) {
        buf.extend_from_slice(&[if b == b'\r' || b == b'\n' { b' ' } else { b }]);
    }
}

/// An admin command (`CONFIG SET`, `CONFIG RESETSTAT`, `SLOWLOG RESET`, `LATENCY
/// RESET`) while `allow_admin` is false; `what` is the command, from the proxy's code.
pub fn admin_refused(buf: &mut BytesMut, what: &'static str) {
    buf.extend_from_slice(b"-ERR ringproxy: ");
    buf.extend_from_slice(what.as_bytes());
    buf.extend_from_slice(b" is disabled (set allow_admin: true to send it to every node)\r\n");
}

/// SLOWLOG GET with a count that is not an integer >= -1 (Redis's own text).
pub const SLOWLOG_COUNT: &[u8] = b"-ERR count should be greater than or equal to -1\r\n";

/// A node answered SCAN with a cursor wider than the proxy cursor has room for
/// (see [`crate::command::scan::NODE_CURSOR_BITS`]).
pub const SCAN_CURSOR_TOO_BIG: &[u8] =
    b"-ERR ringproxy: a node's SCAN cursor does not fit in the proxy cursor (more than 48 bits)\r\n";
/// A command over every node (SCAN, DBSIZE, KEYS, ...) while a node on the ring is
/// down: its keys cannot be reached, so the answer would be wrong.
pub const POOL_NODE_DOWN: &[u8] =
    b"-ERR ringproxy: backend node is down; its keys are unreachable until it is back, so a command over every node cannot answer (with health.eject: true, ejected nodes are skipped)\r\n";

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
        let req = |a: &[&str]| Request::from_args(a);
        let text = |f: fn(&mut BytesMut, &Request), r: &Request| {
            let mut b = BytesMut::new();
            f(&mut b, r);
            String::from_utf8(b.to_vec()).unwrap()
        };
        assert_eq!(
            text(unknown_command, &req(&["foo", "a", "b\r\nc"])),
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b  c' \r\n"
        );
        let long = "x".repeat(300);
        let t = text(unknown_command, &req(&["f", &long, "y"]));
        assert_eq!(
            t.len(),
            "-ERR unknown command 'f', with args beginning with: ''\r\n".len() + 128 + 1
        );
        assert_eq!(
            text(unknown_subcommand, &req(&["client", "nope"])),
            "-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n"
        );
        let mut b = BytesMut::new();
        refused(&mut b, "config|set", "no");
        assert_eq!(
            &b[..],
            b"-ERR 'CONFIG SET' is not supported by the proxy: no\r\n"
        );
    }
}
