//! Differential checks: the same bytes to one redis-server and to a proxy over
//! three nodes, reply streams compared byte for byte.

use super::conn::Conn;
use super::proxy::Proxy;
use super::redis_server::RedisServer;
use super::resp::{encode, escape, parse_all};
use super::util::IO_TIMEOUT;

/// The end marker every sequence is followed by: its reply ends the stream read.
pub const MARKER: &[&str] = &["ECHO", "__end_of_sequence__"];

/// One redis-server, and a proxy over three others.
pub struct Pair {
    /// The reference server.
    pub redis: RedisServer,
    /// The proxy's nodes.
    pub nodes: Vec<RedisServer>,
    /// The proxy.
    pub proxy: Proxy,
}

impl Pair {
    /// One redis-server, and a proxy over three others.
    pub fn start() -> Pair {
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
        let refs: Vec<&RedisServer> = nodes.iter().collect();
        let proxy = Proxy::with_nodes(&refs, "");
        Pair {
            redis: RedisServer::start(),
            nodes,
            proxy,
        }
    }

    /// Sends `bytes` and the marker to each side; the reply streams up to the marker.
    pub fn both(&self, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let run = |port| until_marker(&mut Conn::connect(port), bytes);
        (run(self.redis.port()), run(self.proxy.port()))
    }

    /// Like [`Pair::both`], but the client half-closes after `bytes` and reads
    /// until the server closes.
    pub fn both_half_closed(&self, bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let run = |port| {
            let mut c = Conn::connect(port);
            c.send_raw(bytes).unwrap();
            c.shutdown_write();
            let (got, closed) = c.read_to_close(IO_TIMEOUT);
            assert!(closed, "port {port}: not closed after {}", show(&got));
            got
        };
        (run(self.redis.port()), run(self.proxy.port()))
    }

    /// Sends `cmds` as one pipeline to both sides and compares the reply streams.
    pub fn assert_same(&self, what: &str, cmds: &[Vec<&[u8]>]) {
        let (want, got) = self.both(&pipeline(cmds));
        assert_same(what, &want, &got);
    }
}

/// The requests encoded back to back.
pub fn pipeline(cmds: &[Vec<&[u8]>]) -> Vec<u8> {
    cmds.iter().flat_map(|c| encode(c)).collect()
}

/// Sends `bytes` and [`MARKER`]; the reply stream up to the marker's reply.
pub fn until_marker(c: &mut Conn, bytes: &[u8]) -> Vec<u8> {
    let mut all = bytes.to_vec();
    all.extend(encode(MARKER));
    c.send_raw(&all).unwrap();
    let end = b"$19\r\n__end_of_sequence__\r\n";
    let mut got = Vec::new();
    loop {
        match c.read_raw() {
            Ok(r) => {
                let done = r == end;
                got.extend(r);
                if done {
                    return got;
                }
            }
            Err(e) => panic!(
                "port {}: {e} after {} bytes: {}",
                c.port(),
                got.len(),
                show(&got)
            ),
        }
    }
}

/// A readable summary of a reply stream (long values cut).
pub fn show(b: &[u8]) -> String {
    match parse_all(b) {
        Ok((replies, _)) => replies
            .iter()
            .map(|r| {
                let s = r.compact();
                if s.len() > 80 {
                    format!("{}...", &s[..80])
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => escape(&b[..b.len().min(200)]),
    }
}

/// Panics with both streams when they differ.
pub fn assert_same(what: &str, want: &[u8], got: &[u8]) {
    assert!(
        want == got,
        "{what}: replies differ\n redis: {}\n proxy: {}",
        show(want),
        show(got)
    );
}

/// Words as arguments.
pub fn args<'a>(a: &[&'a str]) -> Vec<&'a [u8]> {
    a.iter().map(|s| s.as_bytes()).collect()
}

/// Each reply of a reply stream, raw.
pub fn split_replies(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut cur = std::io::Cursor::new(stream);
    let mut out = Vec::new();
    loop {
        let start = cur.position() as usize;
        if start >= stream.len() || super::resp::read_reply(&mut cur).is_err() {
            return out;
        }
        out.push(stream[start..cur.position() as usize].to_vec());
    }
}
