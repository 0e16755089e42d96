//! Processes and a tiny RESP client for the nutcracker differential test.
//!
//! Rules: 127.0.0.1 or unix sockets in a private temp dir only; ports come from
//! binding port 0; readiness means the port answers PING (bounded wait, clear
//! panic); every process started here is killed and reaped by a Drop guard.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a process may take to answer PING.
const READY_WAIT: Duration = Duration::from_secs(15);
/// Attempts at starting a process whose port was taken by someone else meanwhile.
const START_ATTEMPTS: usize = 5;
/// Commands written before their replies are read.
const BATCH: usize = 256;

/// A private temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, short-named directory (unix socket paths must stay short).
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rpnc-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed and reaped on drop (or earlier, by [`Guard::kill`]).
struct Guard(Mutex<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Guard {
    fn new(child: Child) -> Guard {
        Guard(Mutex::new(child))
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn exited(&self) -> bool {
        !matches!(self.child().try_wait(), Ok(None))
    }

    fn kill(&self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A free TCP port on 127.0.0.1, never the same twice in this test process (free
/// when asked; a process that then fails to bind it is restarted on another).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Where a server listens.
#[derive(Clone, Debug)]
pub enum Addr {
    /// 127.0.0.1 and this port.
    Tcp(u16),
    /// A unix socket path.
    Unix(PathBuf),
}

impl Addr {
    /// The address as a nutcracker server entry writes it (without weight).
    pub fn entry(&self) -> String {
        match self {
            Addr::Tcp(port) => format!("127.0.0.1:{port}"),
            Addr::Unix(path) => path.display().to_string(),
        }
    }

    /// A new client connection.
    pub fn connect(&self) -> std::io::Result<Client> {
        match self {
            Addr::Tcp(port) => {
                let s = TcpStream::connect(("127.0.0.1", *port))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(20)))?;
                Ok(Client::new(Box::new(s.try_clone()?), Box::new(s)))
            }
            Addr::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_read_timeout(Some(Duration::from_secs(20)))?;
                Ok(Client::new(Box::new(s.try_clone()?), Box::new(s)))
            }
        }
    }

    /// True when a PING on a fresh connection gets PONG.
    fn answers_ping(&self) -> bool {
        let Ok(mut client) = self.connect() else {
            return false;
        };
        matches!(client.call(&[b"PING"]), Ok(Reply::Status(s)) if s == b"PONG")
    }
}

/// A running process with the address it serves.
pub struct Server {
    guard: Guard,
    /// Where it listens.
    pub addr: Addr,
    what: &'static str,
    log: Option<PathBuf>,
    /// redis-server: INFO must report this child's pid before it counts as ready.
    check_pid: bool,
}

impl Server {
    /// Polls until the address answers PING; `Err` if the process exited first or
    /// another process answers there.
    fn wait_ready(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if self.addr.answers_ping() {
                return if self.guard.exited() || !self.answers_as_itself() {
                    Err(())
                } else {
                    Ok(())
                };
            }
            if self.guard.exited() {
                return Err(());
            }
            assert!(
                Instant::now() < deadline,
                "{} at {:?} did not answer PING within {READY_WAIT:?}{}",
                self.what,
                self.addr,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// For redis-server: INFO names this child's pid (the port was not someone else's).
    fn answers_as_itself(&self) -> bool {
        if !self.check_pid {
            return true;
        }
        let want = format!("process_id:{}\r\n", self.guard.child().id());
        let info = self
            .addr
            .connect()
            .and_then(|mut c| c.call(&[b"INFO", b"server"]));
        matches!(info, Ok(Reply::Bulk(Some(text))) if text.windows(want.len()).any(|w| w == want.as_bytes()))
    }

    fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        format!("\n--- log tail ---\n{}", text.get(start..).unwrap_or(""))
    }

    /// Kills the process now and reaps it.
    pub fn kill(&self) {
        self.guard.kill();
    }
}

fn spawn_redis(dir: &Path, unix: Option<PathBuf>) -> Server {
    let mut cmd = Command::new("redis-server");
    let addr = match unix {
        Some(path) => {
            cmd.args(["--port", "0", "--unixsocket"])
                .arg(&path)
                .args(["--unixsocketperm", "700"]);
            Addr::Unix(path)
        }
        None => {
            let port = free_port();
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
            Addr::Tcp(port)
        }
    };
    cmd.args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server (is it installed?)");
    Server {
        guard: Guard::new(child),
        addr,
        what: "redis-server",
        log: None,
        check_pid: true,
    }
}

/// Starts `n` redis-servers in parallel (TCP, or unix sockets in `dir`), each ready.
pub fn start_redis(dir: &Path, n: usize, unix: bool) -> Vec<Server> {
    let socket = |i: usize| unix.then(|| dir.join(format!("r{i}.sock")));
    let mut servers: Vec<Server> = (0..n).map(|i| spawn_redis(dir, socket(i))).collect();
    for (i, server) in servers.iter_mut().enumerate() {
        let mut attempt = 1;
        while server.wait_ready().is_err() {
            assert!(
                attempt < START_ATTEMPTS,
                "redis-server {i} kept exiting at start"
            );
            *server = spawn_redis(dir, socket(i));
            attempt += 1;
        }
    }
    servers
}

/// Starts nutcracker with one pool `p` whose settings (all but `listen`) are
/// `pool_body`, ready when its listen port answers PING.
pub fn start_nutcracker(dir: &Path, tag: &str, pool_body: &str) -> Server {
    for _ in 0..START_ATTEMPTS {
        let (port, stats) = (free_port(), free_port());
        let conf = dir.join(format!("{tag}.yml"));
        let log = dir.join(format!("{tag}.log"));
        let text = format!("p:\n  listen: 127.0.0.1:{port}\n{pool_body}");
        std::fs::write(&conf, text).expect("write nutcracker config");
        let child = Command::new("nutcracker")
            .arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-s", &stats.to_string()])
            .arg("-o")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nutcracker (is it installed?)");
        let mut server = Server {
            guard: Guard::new(child),
            addr: Addr::Tcp(port),
            what: "nutcracker",
            log: Some(log),
            check_pid: false,
        };
        if server.wait_ready().is_ok() {
            return server;
        }
    }
    panic!("nutcracker kept exiting at start (see {})", dir.display());
}

/// A RESP2 reply.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// `+...`
    Status(Vec<u8>),
    /// `-...`
    Error(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$n` (None for `$-1`)
    Bulk(Option<Vec<u8>>),
    /// `*n` (None for `*-1`)
    Array(Option<Vec<Reply>>),
}

/// A blocking RESP client over TCP or a unix socket.
pub struct Client {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: BufWriter<Box<dyn Write + Send>>,
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

impl Client {
    fn new(read: Box<dyn Read + Send>, write: Box<dyn Write + Send>) -> Client {
        Client {
            reader: BufReader::new(read),
            writer: BufWriter::new(write),
        }
    }

    fn encode(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        write!(self.writer, "*{}\r\n", args.len())?;
        for arg in args {
            write!(self.writer, "${}\r\n", arg.len())?;
            self.writer.write_all(arg)?;
            self.writer.write_all(b"\r\n")?;
        }
        Ok(())
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.encode(args)?;
        self.writer.flush()?;
        self.read_reply()
    }

    /// Sends commands pipelined in batches; one reply per command, in order.
    pub fn pipeline(&mut self, commands: &[Vec<&[u8]>]) -> std::io::Result<Vec<Reply>> {
        let mut replies = Vec::with_capacity(commands.len());
        for batch in commands.chunks(BATCH) {
            for args in batch {
                self.encode(args)?;
            }
            self.writer.flush()?;
            for _ in batch {
                replies.push(self.read_reply()?);
            }
        }
        Ok(replies)
    }

    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(bad("connection closed or line without CRLF"));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn number(text: &[u8]) -> std::io::Result<i64> {
        std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad number"))
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let line = self.line()?;
        let (kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
        match kind {
            b'+' => Ok(Reply::Status(rest.to_vec())),
            b'-' => Ok(Reply::Error(rest.to_vec())),
            b':' => Ok(Reply::Int(Self::number(rest)?)),
            b'$' => {
                let Ok(len) = usize::try_from(Self::number(rest)?) else {
                    return Ok(Reply::Bulk(None));
                };
                let mut data = vec![0; len + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(len);
                Ok(Reply::Bulk(Some(data)))
            }
            b'*' => {
                let Ok(len) = usize::try_from(Self::number(rest)?) else {
                    return Ok(Reply::Array(None));
                };
                let items = (0..len)
                    .map(|_| self.read_reply())
                    .collect::<std::io::Result<_>>()?;
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(bad("unknown reply type")),
        }
    }
}
