//! One shared, pipelined backend connection, run as a task.
//!
//! Requests of many sessions arrive on one channel; the task drains whatever is
//! queued into a single write, remembers who waits for each reply in FIFO order,
//! frames replies with [`reply_len`] and hands each one back, as raw bytes, to the
//! session that asked. A request that is not answered within the request timeout
//! fails with `-TIMEOUT`, and the connection is closed and replaced, since later
//! replies could no longer be matched: only its own in-flight requests fail.

use super::backoff::Backoff;
use super::health::NodeHealth;
use super::stream::{BackendStream, connect};
use crate::config::NodeAddr;
use crate::errors::BackendError;
use crate::resp::reply::{is_error, reply_len};
use crate::resp::{Proto, encode};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most requests taken from the channel per batch.
const BATCH: usize = 256;
/// Stop taking requests while this many bytes wait to be written.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Initial read buffer size.
const READ_BUF: usize = 16 * 1024;

/// A finished backend reply (or failure) for one part of one session request.
#[derive(Debug)]
pub struct Completion {
    /// Session-local sequence number of the client request.
    pub seq: u64,
    /// Part index for split requests (0 otherwise).
    pub part: u32,
    /// The raw reply bytes, or why there is none.
    pub reply: Result<Bytes, BackendError>,
}

/// Where a reply goes.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    /// The session's completion channel.
    pub tx: mpsc::UnboundedSender<Completion>,
    /// Sequence number.
    pub seq: u64,
    /// Part index.
    pub part: u32,
}

impl ReplyTo {
    /// Delivers the reply; a session that is gone is ignored.
    pub fn send(self, reply: Result<Bytes, BackendError>) {
        let _ = self.tx.send(Completion {
            seq: self.seq,
            part: self.part,
            reply,
        });
    }
}

/// A request for a backend: the bytes to write and who waits for the reply.
#[derive(Debug)]
pub struct BackendRequest {
    /// One complete RESP request.
    pub frame: Bytes,
    /// Reply destination.
    pub reply: ReplyTo,
}

/// Timeouts shared by a pool's connections; changeable at runtime (reload).
#[derive(Debug)]
pub struct Timeouts {
    connect_ms: AtomicU64,
    request_ms: AtomicU64,
}

impl Timeouts {
    /// New timeouts.
    pub fn new(connect: Duration, request: Duration) -> Timeouts {
        let t = Timeouts {
            connect_ms: AtomicU64::new(0),
            request_ms: AtomicU64::new(0),
        };
        t.set(connect, request);
        t
    }

    /// Replaces both timeouts.
    pub fn set(&self, connect: Duration, request: Duration) {
        self.connect_ms
            .store(connect.as_millis() as u64, Ordering::Relaxed);
        self.request_ms
            .store(request.as_millis() as u64, Ordering::Relaxed);
    }

    /// Connect timeout.
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms.load(Ordering::Relaxed))
    }

    /// Request timeout.
    pub fn request(&self) -> Duration {
        Duration::from_millis(self.request_ms.load(Ordering::Relaxed))
    }
}

/// How a connection logs in and where it goes.
#[derive(Debug, Clone)]
pub struct ConnSpec {
    /// Node name (for logs).
    pub node: Arc<str>,
    /// Address.
    pub addr: NodeAddr,
    /// RESP version spoken on this connection.
    pub proto: Proto,
    /// AUTH password.
    pub password: Option<String>,
    /// SELECTed database.
    pub db: u32,
}

/// Handle to a connection task. Dropping every handle ends the task once its
/// in-flight requests are answered.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    tx: mpsc::UnboundedSender<BackendRequest>,
}

impl ConnHandle {
    /// Queues a request. If the task is gone the request fails at once.
    pub fn send(&self, req: BackendRequest) {
        if let Err(e) = self.tx.send(req) {
            e.0.reply.send(Err(BackendError::ConnectionLost));
        }
    }
}

/// Spawns a connection task. It connects on the first request (or at once with `preconnect`).
pub fn spawn(
    spec: ConnSpec,
    timeouts: Arc<Timeouts>,
    health: Arc<NodeHealth>,
    preconnect: bool,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = ConnTask {
        spec,
        timeouts,
        health,
        rx,
        backoff: Backoff::new(seed_of(&tx)),
    };
    tokio::spawn(task.run(preconnect));
    ConnHandle { tx }
}

fn seed_of<T>(t: &T) -> u64 {
    t as *const T as u64
}

struct ConnTask {
    spec: ConnSpec,
    timeouts: Arc<Timeouts>,
    health: Arc<NodeHealth>,
    rx: mpsc::UnboundedReceiver<BackendRequest>,
    backoff: Backoff,
}

/// How a connected session ended.
enum End {
    /// Every handle is gone and nothing is in flight.
    Closed,
    /// The connection failed; reconnect.
    Failed,
}

impl ConnTask {
    async fn run(mut self, mut preconnect: bool) {
        let mut first: Option<BackendRequest> = None;
        loop {
            if !preconnect && first.is_none() {
                match self.rx.recv().await {
                    Some(r) => first = Some(r),
                    None => return,
                }
            }
            preconnect = false;
            if self.health.is_down() {
                self.fail_queued(first.take(), BackendError::Down);
                continue;
            }
            match self.connect().await {
                Ok(stream) => {
                    self.backoff.reset();
                    let end = match stream {
                        BackendStream::Tcp(mut s) => {
                            let (r, w) = s.split();
                            self.serve(r, w, first.take()).await
                        }
                        BackendStream::Unix(mut s) => {
                            let (r, w) = s.split();
                            self.serve(r, w, first.take()).await
                        }
                    };
                    if let End::Closed = end {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(node = %self.spec.node, error = %e, "backend connect failed");
                    self.fail_queued(first.take(), BackendError::Down);
                    if self.pause_failing().await {
                        return;
                    }
                }
            }
        }
    }

    /// Fails `first` and everything queued now.
    fn fail_queued(&mut self, first: Option<BackendRequest>, err: BackendError) {
        if let Some(r) = first {
            r.reply.send(Err(err));
        }
        while let Ok(r) = self.rx.try_recv() {
            r.reply.send(Err(err));
        }
    }

    /// Backs off after a failure; requests arriving meanwhile fail fast.
    /// Returns true when every handle is gone.
    async fn pause_failing(&mut self) -> bool {
        let until = Instant::now() + self.backoff.next_delay();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return false,
                r = self.rx.recv() => match r {
                    Some(r) => r.reply.send(Err(BackendError::Down)),
                    None => return true,
                },
            }
        }
    }

    async fn connect(&mut self) -> std::io::Result<BackendStream> {
        let mut stream = connect(&self.spec.addr, self.timeouts.connect()).await?;
        let hello = handshake(&self.spec);
        if !hello.is_empty() {
            let deadline = self.timeouts.connect().max(self.timeouts.request());
            match &mut stream {
                BackendStream::Tcp(s) => run_handshake(s, &hello, deadline).await?,
                BackendStream::Unix(s) => run_handshake(s, &hello, deadline).await?,
            }
        }
        tracing::debug!(node = %self.spec.node, proto = ?self.spec.proto, "backend connected");
        Ok(stream)
    }

    async fn serve<R, W>(&mut self, mut rd: R, mut wr: W, first: Option<BackendRequest>) -> End
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut st = Pipeline::default();
        if let Some(r) = first {
            st.push(r, self.timeouts.request());
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut open = true;
        let timer = tokio::time::sleep(self.timeouts.request());
        tokio::pin!(timer);
        let mut armed = false;
        loop {
            if let (false, Some(d)) = (armed, st.front_deadline()) {
                timer.as_mut().reset(d);
                armed = true;
            }
            tokio::select! {
                biased;
                r = rd.read_buf(&mut st.rbuf) => {
                    match r {
                        Ok(0) | Err(_) => return self.broken(&mut st, BackendError::ConnectionLost),
                        Ok(_) => if let Err(e) = st.dispatch_replies() {
                            return self.broken(&mut st, e);
                        },
                    }
                }
                r = wr.write_buf(&mut st.wbuf), if !st.wbuf.is_empty() => {
                    if r.is_err() {
                        return self.broken(&mut st, BackendError::ConnectionLost);
                    }
                }
                n = self.rx.recv_many(&mut batch, BATCH), if open && st.wbuf.len() < WRITE_HIGH_WATER => {
                    if n == 0 {
                        open = false;
                    }
                    let timeout = self.timeouts.request();
                    for r in batch.drain(..) {
                        st.push(r, timeout);
                    }
                }
                _ = &mut timer, if armed => {
                    armed = false;
                    if st.front_deadline().is_some_and(|d| d <= Instant::now()) {
                        tracing::warn!(node = %self.spec.node, "backend request timed out; replacing connection");
                        return self.broken(&mut st, BackendError::Timeout);
                    }
                }
            }
            if !open && st.inflight.is_empty() && st.wbuf.is_empty() {
                return End::Closed;
            }
        }
    }

    /// Fails every in-flight request with `err`, and what is queued with ConnectionLost.
    fn broken(&mut self, st: &mut Pipeline, err: BackendError) -> End {
        for (r, _) in st.inflight.drain(..) {
            r.send(Err(err));
        }
        self.fail_queued(None, BackendError::ConnectionLost);
        End::Failed
    }
}

/// In-flight state of one connected socket.
#[derive(Default)]
struct Pipeline {
    inflight: VecDeque<(ReplyTo, Instant)>,
    wbuf: BytesMut,
    rbuf: BytesMut,
}

impl Pipeline {
    fn push(&mut self, r: BackendRequest, timeout: Duration) {
        if self.rbuf.capacity() == 0 {
            self.rbuf.reserve(READ_BUF);
        }
        self.wbuf.extend_from_slice(&r.frame);
        self.inflight.push_back((r.reply, Instant::now() + timeout));
    }

    fn front_deadline(&self) -> Option<Instant> {
        self.inflight.front().map(|(_, d)| *d)
    }

    /// Hands every complete reply in `rbuf` to its waiter.
    fn dispatch_replies(&mut self) -> Result<(), BackendError> {
        while let Some(n) = reply_len(&self.rbuf).map_err(|_| BackendError::Protocol)? {
            let reply = self.rbuf.split_to(n).freeze();
            if reply.first() == Some(&b'>') {
                continue; // out-of-band push on a shared connection: not anyone's reply
            }
            let (to, _) = self.inflight.pop_front().ok_or(BackendError::Protocol)?;
            to.send(Ok(reply));
        }
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(READ_BUF);
        }
        Ok(())
    }
}

/// The login commands for `spec` (HELLO 3 / AUTH / SELECT), as one buffer.
fn handshake(spec: &ConnSpec) -> Vec<Bytes> {
    let mut cmds = Vec::new();
    let pw = spec.password.as_deref();
    match (spec.proto, pw) {
        (Proto::Resp3, Some(p)) => cmds.push(command(&[
            b"HELLO",
            b"3",
            b"AUTH",
            b"default",
            p.as_bytes(),
        ])),
        (Proto::Resp3, None) => cmds.push(command(&[b"HELLO", b"3"])),
        (Proto::Resp2, Some(p)) => cmds.push(command(&[b"AUTH", p.as_bytes()])),
        (Proto::Resp2, None) => {}
    }
    if spec.db != 0 {
        cmds.push(command(&[b"SELECT", spec.db.to_string().as_bytes()]));
    }
    cmds
}

fn command(args: &[&[u8]]) -> Bytes {
    let mut b = BytesMut::new();
    encode::array_header(&mut b, args.len());
    for a in args {
        encode::bulk(&mut b, a);
    }
    b.freeze()
}

/// Writes the login commands and checks that none failed.
async fn run_handshake<S>(s: &mut S, cmds: &[Bytes], deadline: Duration) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fut = async {
        for c in cmds {
            s.write_all(c).await?;
        }
        let mut buf = BytesMut::with_capacity(1024);
        let mut seen = 0;
        while seen < cmds.len() {
            if s.read_buf(&mut buf).await? == 0 {
                return Err(std::io::Error::other("closed during handshake"));
            }
            while let Ok(Some(n)) = reply_len(&buf) {
                let r = buf.split_to(n);
                if is_error(&r) {
                    let text = String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned();
                    return Err(std::io::Error::other(format!(
                        "backend refused login: {text}"
                    )));
                }
                seen += 1;
            }
        }
        Ok(())
    };
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "handshake timeout",
            ))
        })
}
