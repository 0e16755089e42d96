//! Shared harness for the integration tests: real `redis-server`, `ringproxy` and
//! `nutcracker` processes on free loopback ports, plus a tiny synchronous RESP client.
//!
//! Use it from a test file with `mod common;` and `use common::*;`.
//!
//! Rules it follows (see DESIGN.md, Testing):
//! - 127.0.0.1 only, ports picked by the OS ([`free_port`]), never fixed ports;
//! - readiness is polled with a bounded deadline ([`wait_until`]), never "sleep and hope";
//! - every process is killed and reaped on `Drop`, every temp dir removed;
//! - when a test panics, the proxy prints the tail of its log on drop.
//!
//! Quick tour:
//! ```ignore
//! let nodes = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
//! let proxy = Proxy::with_nodes(&[&nodes[0], &nodes[1], &nodes[2]], "");
//! let mut c = proxy.conn();
//! assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
//! assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
//! let placement = route(proxy.config_path(), &["k"]); // [("k", "node1")]
//! ```

#![allow(dead_code)]

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a process may take to become ready (answer PING / accept connections).
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default read/write timeout of a [`Conn`]: a test never hangs forever on a socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1: binds port 0, reads the port the OS chose, releases it.
/// Another process may take it before we use it; starters retry on collision.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Polls `check` every 10 ms until it returns true; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A directory under `std::env::temp_dir()` with a unique name, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/ringproxy-test-<prefix>-<pid>-<n>-<nanos>`.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ringproxy-test-{prefix}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {path:?}: {e}"));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `dir/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Sends a signal (`"STOP"`, `"CONT"`, `"TERM"`, `"KILL"`, `"HUP"`) with the `kill` command.
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .expect("run kill");
    assert!(
        st.success() || sig == "KILL" || sig == "TERM",
        "kill -{sig} {pid} failed"
    );
}

/// Resident memory of a process in KiB (VmRSS from /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Kills (SIGKILL) and reaps a child, ignoring errors (it may already be gone).
fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM, waits up to `grace` for exit, then SIGKILL. Returns the exit status.
fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    signal(child.id(), "CONT"); // a paused process cannot handle SIGTERM
    signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Last `n` lines of a text file ("" if unreadable), without terminal color codes.
pub fn tail(path: &Path, n: usize) -> String {
    let text = read_log(path);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A log file as text ("" if unreadable), with ANSI escape sequences removed.
pub fn read_log(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip `ESC [ ... final-letter`.
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Finds an executable by name in `$PATH` (and the sbin dirs, where Debian puts daemons).
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// True when a PING on `port` gets `+PONG` within a short timeout.
pub fn answers_ping(port: u16) -> bool {
    let Ok(mut c) = Conn::try_connect(port, Duration::from_millis(300)) else {
        return false;
    };
    matches!(c.try_cmd(&["PING"]), Ok(Reply::Status(s)) if s == "PONG")
}

/// True when something accepts TCP connections on `port`.
pub fn accepts(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

// ---------------------------------------------------------------------------
// RESP replies
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Conn: a tiny synchronous RESP client
// ---------------------------------------------------------------------------

/// A blocking RESP connection for tests. Every read and write has a timeout
/// ([`IO_TIMEOUT`] by default) so a broken proxy fails the test instead of hanging it.
pub struct Conn {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`, panicking with a clear message on failure.
    pub fn connect(port: u16) -> Conn {
        Conn::try_connect(port, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    /// Connects with the given connect and IO timeout.
    pub fn try_connect(port: u16, timeout: Duration) -> io::Result<Conn> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::with_capacity(64 * 1024, s),
            port,
        })
    }

    /// The port this connection talks to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket, e.g. to `try_clone` it for a writer thread or to shut it down.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Changes the read timeout.
    pub fn set_timeout(&self, t: Duration) {
        self.stream()
            .set_read_timeout(Some(t))
            .expect("set_read_timeout");
    }

    /// Sends one command and reads its reply; panics on IO errors (not on `-ERR`).
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("{} on 127.0.0.1:{}: {e}", describe(args), self.port))
    }

    /// Sends one command and reads its reply.
    pub fn try_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Reply> {
        self.send(args)?;
        self.read()
    }

    /// Splits `line` on whitespace and runs it: `c.line("SET k v")`.
    pub fn line(&mut self, line: &str) -> Reply {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.cmd(&args)
    }

    /// Writes one command without reading the reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send_raw(&encode(args))
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let s = self.reader.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// Reads one reply.
    pub fn read(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// Reads one reply and returns its exact bytes as received (to compare encodings).
    pub fn read_raw(&mut self) -> io::Result<Vec<u8>> {
        let mut tee = Tee {
            inner: &mut self.reader,
            seen: Vec::new(),
        };
        read_reply(&mut tee)?;
        Ok(tee.seen)
    }

    /// Sends one command and returns the exact bytes of its reply; panics on IO errors.
    pub fn cmd_raw<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(args)
            .and_then(|_| self.read_raw())
            .unwrap_or_else(|e| panic!("{} on 127.0.0.1:{}: {e}", describe(args), self.port))
    }

    /// Reads one reply, panicking on IO errors.
    pub fn read_ok(&mut self) -> Reply {
        self.read()
            .unwrap_or_else(|e| panic!("read reply from 127.0.0.1:{}: {e}", self.port))
    }

    /// Sends all commands as one buffer (from a writer thread, so a deep pipeline cannot
    /// deadlock on full socket buffers) while reading all replies, in order.
    pub fn pipeline<A: AsRef<[u8]>>(&mut self, cmds: &[Vec<A>]) -> Vec<Reply> {
        let mut buf = Vec::new();
        for c in cmds {
            buf.extend_from_slice(&encode(c));
        }
        let mut w = self.stream().try_clone().expect("clone socket");
        std::thread::scope(|s| {
            let writer = s.spawn(move || w.write_all(&buf));
            let replies = (0..cmds.len()).map(|_| self.read_ok()).collect();
            writer
                .join()
                .expect("writer thread")
                .expect("write pipeline");
            replies
        })
    }

    /// Waits (up to `timeout`) for the peer to close: true on EOF or reset,
    /// false if it stays open. Any bytes received meanwhile are returned in `Err`.
    pub fn closed_within(&mut self, timeout: Duration) -> Result<bool, Vec<u8>> {
        match self.read_to_close(timeout) {
            (got, closed) if got.is_empty() => Ok(closed),
            (got, _) => Err(got),
        }
    }

    /// Reads everything until the peer closes (or `timeout` passes between reads).
    /// Returns the bytes and whether the peer closed.
    pub fn read_to_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        self.set_timeout(timeout);
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return (got, true),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return (got, false);
                }
                Err(_) => return (got, true),
            }
        }
    }

    /// Half-closes the write side (the peer sees EOF).
    pub fn shutdown_write(&self) {
        let _ = self.stream().shutdown(Shutdown::Write);
    }
}

/// A `BufRead` that records every byte its user consumes.
struct Tee<'a, R: BufRead> {
    inner: &'a mut R,
    seen: Vec<u8>,
}

impl<R: BufRead> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tee<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            self.seen.extend_from_slice(&buf[..n.min(buf.len())]);
        }
        self.inner.consume(n);
    }
}

/// `SET k v` style text for panic messages (bytes escaped, long args shortened).
pub fn describe<A: AsRef<[u8]>>(args: &[A]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| {
            let a = a.as_ref();
            if a.len() > 40 {
                format!("{}...({} bytes)", escape(&a[..40]), a.len())
            } else {
                escape(a)
            }
        })
        .collect();
    parts.join(" ")
}

// ---------------------------------------------------------------------------
// RedisServer
// ---------------------------------------------------------------------------

/// A `redis-server` child process on a free port with its own temp dir.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a fresh server (no persistence) and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Same, with extra command-line options, e.g. `&["--requirepass", "s3cret"]`.
    /// (With `requirepass`, readiness is judged by the `-NOAUTH` answer.)
    pub fn start_with(extra: &[&str]) -> RedisServer {
        assert!(
            find_in_path("redis-server").is_some(),
            "redis-server not installed: run .ci/run or apt-get install redis-server"
        );
        let mut s = RedisServer {
            child: None,
            port: 0,
            dir: TempDir::new("redis"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            s.port = free_port();
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => last_err = e, // most likely the port was taken meanwhile
            }
        }
        panic!("redis-server did not start after 5 attempts: {last_err}");
    }

    /// Spawns on `self.port` and waits until this very process answers.
    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // DEBUG SLEEP from the tests' direct connections (loopback only).
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        let pid = child.id();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited with {st}; log:\n{}",
                    self.port,
                    tail(&log, 20)
                ));
            }
            if self.answers_as(pid) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                panic!(
                    "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    tail(&log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True when the server on our port answers and is process `pid` (not an intruder).
    fn answers_as(&self, pid: u32) -> bool {
        let Ok(mut c) = Conn::try_connect(self.port, Duration::from_millis(300)) else {
            return false;
        };
        match c.try_cmd(&["INFO", "server"]) {
            Ok(Reply::Bulk(b)) => String::from_utf8_lossy(&b)
                .lines()
                .any(|l| l.trim() == format!("process_id:{pid}")),
            Ok(Reply::Verbatim(_, b)) => {
                String::from_utf8_lossy(&b).contains(&format!("process_id:{pid}"))
            }
            // requirepass set: it answers, and it is ours since we spawned it on this port
            Ok(Reply::Error(e)) => e.starts_with("NOAUTH"),
            _ => false,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:<port>"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The process id (panics if stopped).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("redis-server is not running")
            .id()
    }

    /// A new direct connection (bypassing the proxy).
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// Runs one command on a new direct connection.
    pub fn cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> Reply {
        self.conn().cmd(args)
    }

    /// Runs `redis-cli -p <port> ARGS...` and returns its stdout (trimmed).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// All keys on this server (`KEYS *`), as bytes.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        match self.cmd(&["KEYS", "*"]) {
            Reply::Array(v) => v.into_iter().map(|r| r.bytes().to_vec()).collect(),
            other => panic!("KEYS * on {}: {other}", self.addr()),
        }
    }

    /// `DBSIZE`.
    pub fn dbsize(&self) -> i64 {
        self.cmd(&["DBSIZE"]).int()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills it with SIGKILL and reaps it (data is lost: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
    }

    /// Stops it gracefully (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Unfreezes it (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Kills it if running, then starts a fresh (empty) server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        // The port may linger briefly; redis-server sets SO_REUSEADDR, but retry anyway.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("restart on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Proxy (ringproxy) and Nutcracker
// ---------------------------------------------------------------------------

/// The `ringproxy` binary: the one cargo built for this test run, or the path in the
/// `RINGPROXY_BIN` environment variable (e.g. to run the suite against a release build).
pub fn ringproxy_bin() -> PathBuf {
    std::env::var_os("RINGPROXY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ringproxy")))
}

/// Extracts the port of a `key: host:port` line (first match, top-level or nested).
fn port_of(yaml: &str, key: &str) -> Option<u16> {
    yaml.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key)?.trim().strip_prefix(':'))
        .and_then(|v| {
            v.trim()
                .trim_matches(['"', '\''])
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
}

/// A running `ringproxy --config <file>`; killed on drop (SIGTERM, then SIGKILL).
/// When the test is panicking, the tail of its log is printed on drop.
pub struct Proxy {
    child: Option<Child>,
    port: u16,
    admin_port: Option<u16>,
    config: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Proxy {
    /// Writes `yaml` to a temp file, starts the proxy on it and waits until its
    /// `listen:` port answers PING. The port is read from the `listen:` line.
    pub fn start(yaml: &str) -> Proxy {
        Proxy::try_start(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Proxy::start`], returning the failure (with the log tail) instead of panicking.
    pub fn try_start(yaml: &str) -> Result<Proxy, String> {
        let port = port_of(yaml, "listen").ok_or("config has no `listen: host:port` line")?;
        let admin_port = port_of(yaml, "admin");
        let dir = TempDir::new("proxy");
        let config = dir.join("ringproxy.yaml");
        std::fs::write(&config, yaml).map_err(|e| format!("write config: {e}"))?;
        let log = dir.join("ringproxy.log");
        let child = spawn_logged(
            Command::new(ringproxy_bin()).arg("--config").arg(&config),
            &log,
        )?;
        let mut p = Proxy {
            child: Some(child),
            port,
            admin_port,
            config,
            log,
            dir,
        };
        p.wait_ready()?;
        Ok(p)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "ringproxy exited with {st} before answering PING on port {}.\nconfig:\n{}\nlog tail:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.config).unwrap_or_default(),
                    tail(&self.log, 40)
                ));
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ringproxy did not answer PING on port {} within {READY_TIMEOUT:?}.\nlog tail:\n{}",
                    self.port,
                    tail(&self.log, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The config text for `nodes` (named `node0`, `node1`, ... in order) on fresh free
    /// ports, plus `extra_yaml` appended verbatim (top-level sections such as
    /// `"health:\n  eject: true\n"`). Returns (yaml, listen port, admin port).
    pub fn config_for(nodes: &[&RedisServer], extra_yaml: &str) -> (String, u16, u16) {
        let (port, admin) = (free_port(), free_port());
        let mut y = format!("listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin}\nnodes:\n");
        for (i, n) in nodes.iter().enumerate() {
            y.push_str(&format!("  - {{name: node{i}, addr: \"{}\"}}\n", n.addr()));
        }
        y.push_str(extra_yaml);
        if !y.ends_with('\n') {
            y.push('\n');
        }
        (y, port, admin)
    }

    /// Starts a proxy over `nodes` (see [`Proxy::config_for`]), retrying with new ports
    /// if one was taken meanwhile.
    pub fn with_nodes(nodes: &[&RedisServer], extra_yaml: &str) -> Proxy {
        let mut last = String::new();
        for _ in 0..3 {
            let (yaml, _, _) = Proxy::config_for(nodes, extra_yaml);
            match Proxy::try_start(&yaml) {
                Ok(p) => return p,
                Err(e) => last = e,
            }
        }
        panic!("ringproxy did not start (3 attempts). Last failure:\n{last}");
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Admin HTTP port (panics when the config has none).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
            .expect("this proxy config has no admin listener")
    }

    /// The config file (rewrite it to trigger a reload).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Replaces the config file atomically (write a sibling, rename over it).
    pub fn write_config(&self, yaml: &str) {
        let tmp = self.dir.join("ringproxy.yaml.tmp");
        std::fs::write(&tmp, yaml).expect("write config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    /// Everything the proxy printed so far (stdout and stderr), color codes removed.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The process id (panics if it exited).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("ringproxy is not running").id()
    }

    /// Its resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Sends a signal, e.g. `"HUP"` to reload.
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// A new client connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.child.take().and_then(|mut c| terminate(&mut c, grace))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!(
                "---- ringproxy log tail (port {}) ----\n{}\n----",
                self.port,
                tail(&self.log, 40)
            );
        }
    }
}

/// Spawns `cmd` with stdout and stderr appended to `log`.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("create {log:?}: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("dup log: {e}"))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("spawn {:?}: {e}", cmd.get_program()))
}

/// A running `nutcracker` (twemproxy 0.5.0), for side-by-side placement tests.
pub struct Nutcracker {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Nutcracker {
    /// Writes `yaml` (a nutcracker pool file), starts `nutcracker -c file` with its stats
    /// on a free loopback port, and waits until the pool's `listen:` port accepts.
    pub fn start(yaml: &str) -> Nutcracker {
        Nutcracker::try_start(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(yaml: &str) -> Result<Nutcracker, String> {
        let bin = find_in_path("nutcracker")
            .ok_or("nutcracker not installed: run .ci/run or apt-get install nutcracker")?;
        let port = port_of(yaml, "listen").ok_or("nutcracker config has no `listen:` line")?;
        let dir = TempDir::new("nutcracker");
        let config = dir.join("nutcracker.yml");
        std::fs::write(&config, yaml).map_err(|e| format!("write config: {e}"))?;
        let log = dir.join("nutcracker.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-s", &free_port().to_string()])
            .arg("-o")
            .arg(&log)
            .arg("-p")
            .arg(dir.join("nutcracker.pid"));
        let child = spawn_logged(&mut cmd, &dir.join("nutcracker.out"))?;
        let mut n = Nutcracker {
            child: Some(child),
            port,
            config,
            log,
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(st)) = n.child.as_mut().expect("child").try_wait() {
                n.child = None;
                return Err(format!(
                    "nutcracker exited with {st}; log:\n{}\n{}",
                    tail(&n.log, 20),
                    tail(&n.dir.join("nutcracker.out"), 20)
                ));
            }
            if accepts(port) {
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nutcracker did not listen on {port} within {READY_TIMEOUT:?}; log:\n{}",
                    tail(&n.log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A nutcracker pool file named `alpha` over `nodes` (server names `node0`, ...),
    /// `hash`/`distribution` as given (e.g. `fnv1a_64`, `ketama`), on a free port.
    pub fn config_for(nodes: &[&RedisServer], hash: &str, distribution: &str) -> String {
        let mut y = format!(
            "alpha:\n  listen: 127.0.0.1:{}\n  hash: {hash}\n  distribution: {distribution}\n  redis: true\n  auto_eject_hosts: false\n  servers:\n",
            free_port()
        );
        for (i, n) in nodes.iter().enumerate() {
            y.push_str(&format!("    - {}:1 node{i}\n", n.addr()));
        }
        y
    }

    /// Starts nutcracker over `nodes` with fnv1a_64 + ketama, retrying on port collision.
    pub fn with_nodes(nodes: &[&RedisServer]) -> Nutcracker {
        let mut last = String::new();
        for _ in 0..3 {
            match Nutcracker::try_start(&Nutcracker::config_for(nodes, "fnv1a_64", "ketama")) {
                Ok(n) => return n,
                Err(e) if e.starts_with("nutcracker not installed") => panic!("{e}"),
                Err(e) => last = e,
            }
        }
        panic!("nutcracker did not start (3 attempts): {last}");
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Its log.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// A new client connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(2));
        }
    }
}

// ---------------------------------------------------------------------------
// `ringproxy route`
// ---------------------------------------------------------------------------

/// Runs `ringproxy route --config <config> KEY...` and returns `(key, node name)` per
/// key, in order. The CLI prints one line per key: `key name addr` (whitespace-separated;
/// keys must be plain ASCII without spaces). Lines that do not start with a requested key
/// (headers, blank lines) are ignored. Panics on a non-zero exit or a missing key.
pub fn route<K: AsRef<str>>(config: &Path, keys: &[K]) -> Vec<(String, String)> {
    let out = Command::new(ringproxy_bin())
        .arg("route")
        .arg("--config")
        .arg(config)
        .args(keys.iter().map(|k| k.as_ref()))
        .output()
        .expect("run ringproxy route");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ringproxy route exited with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        tail_str(&stdout, 10),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for line in stdout.lines() {
        let mut f = line.split_whitespace();
        if let (Some(k), Some(n)) = (f.next(), f.next()) {
            found.entry(k).or_insert(n);
        }
    }
    keys.iter()
        .map(|k| {
            let k = k.as_ref();
            let n = found.get(k).unwrap_or_else(|| {
                panic!(
                    "ringproxy route printed no line for key {k:?}; output:\n{}",
                    tail_str(&stdout, 10)
                )
            });
            (k.to_string(), n.to_string())
        })
        .collect()
}

fn tail_str(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Fixtures and helpers used by several test files
// ---------------------------------------------------------------------------

/// Three backends and a proxy over them (default config plus `extra_yaml`).
/// Field order matters: the proxy is dropped before the backends.
pub struct Cluster {
    /// The proxy.
    pub proxy: Proxy,
    /// The backends; `nodes[i]` is named `node{i}` in the config.
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    /// `n` fresh backends and a proxy over them.
    pub fn start(n: usize, extra_yaml: &str) -> Cluster {
        let nodes: Vec<RedisServer> = (0..n).map(|_| RedisServer::start()).collect();
        let refs: Vec<&RedisServer> = nodes.iter().collect();
        let proxy = Proxy::with_nodes(&refs, extra_yaml);
        Cluster { proxy, nodes }
    }

    /// A client connection to the proxy.
    pub fn conn(&self) -> Conn {
        self.proxy.conn()
    }

    /// Indexes of the backends that hold `key` (checked directly with EXISTS).
    pub fn holders(&self, key: &[u8]) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].cmd(&[b"EXISTS".as_slice(), key]) == Reply::Int(1))
            .collect()
    }

    /// The one backend holding `key`; panics if none or several hold it.
    pub fn node_of(&self, key: &[u8]) -> usize {
        let h = self.holders(key);
        assert_eq!(
            h.len(),
            1,
            "key {} is on backends {h:?}, expected exactly one",
            escape(key)
        );
        h[0]
    }
}

/// A small deterministic PRNG (xorshift64*), so "random" tests replay identically.
pub struct Rng(u64);

impl Rng {
    /// A generator from a fixed seed (0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
