//! [`Conn`]: a tiny synchronous RESP client with timeouts on every read and write.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use super::resp::{Reply, encode, escape, read_reply};
use super::util::IO_TIMEOUT;

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

    /// Asserts the connection still answers PING with PONG; `context` says after what.
    pub fn assert_alive(&mut self, context: &str) {
        assert_eq!(
            self.cmd(&["PING"]),
            Reply::Status("PONG".into()),
            "{context}"
        );
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
