//! A client socket shared by its session and the backend connection tasks of the
//! same worker, and the "direct reply" hand-off between them.
//!
//! When a client has exactly one request in flight and nothing waiting to be
//! written (the common unpipelined case), its session *arms* the hand-off for that
//! request and sleeps until the next request. The backend connection task that gets
//! the reply writes it straight to the client socket, without waking the session;
//! the session learns of it on its next turn and drops the slot. If the socket does
//! not take the whole reply, what is left goes to the session the usual way (it is
//! the next bytes of the stream, since nothing else was written in between), with
//! a [`Head`] saying what was written already, so the session accounts for every
//! reply in one place whichever path wrote it.
//!
//! Direct writes need a socket that two tasks can write to without shared state:
//! plain TCP and unix sockets. A stream with state of its own (TLS keeps its
//! encryption state) reports [`ClientStream::direct_writes`] false, and the session
//! then never arms the hand-off: every reply goes through the completion queue.
//!
//! Every other backend reply reaches the session through the same lock: a queue of
//! completions and the session's waker (one lock, no channel, per reply).

use crate::command::merge::PartReply;
use crate::tls::stream::TlsClient;
use bytes::BytesMut;
use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// A backend reply (or failure) for one part of one session request.
#[derive(Debug)]
pub struct Completion {
    /// Session-local sequence number of the client request.
    pub seq: u64,
    /// Part index for split requests (0 otherwise).
    pub part: u32,
    /// The raw reply bytes (what is left of them, after a `head`), or why there are none.
    pub reply: PartReply,
    /// What a backend connection already wrote of this reply to the client.
    pub head: Option<Head>,
}

/// The part of a reply that a backend connection task wrote to the client itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes written.
    pub len: usize,
    /// The whole reply is an error reply.
    pub error: bool,
}

/// A client connection over TCP, a unix socket, or TLS over TCP.
#[derive(Debug)]
pub enum ClientStream {
    /// TCP.
    Tcp(TcpStream),
    /// Unix socket.
    Unix(UnixStream),
    /// TLS over TCP (handshake done).
    Tls(Box<TlsClient>),
}

impl ClientStream {
    /// Waits until the socket may have something to read. Only the session reads, so
    /// this uses the socket's single reader slot (`poll_read_ready`), cheaper than
    /// the list of waiters behind `readable()`.
    pub async fn readable(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_readable(cx)).await
    }

    /// Ready once the client sent something (or closed, or the socket failed): on
    /// TCP a one-byte peek makes sure, so that a readiness with nothing behind it
    /// (seen when many clients send at once) waits on instead of waking the
    /// session; elsewhere [`ClientStream::poll_readable`]. A poll function, so that
    /// a future over it is one reference: what a parked client's task holds.
    pub fn poll_input(&self, cx: &mut Context<'_>) -> Poll<()> {
        let ClientStream::Tcp(s) = self else {
            return self.poll_readable(cx).map(|_| ());
        };
        let mut byte = [0u8; 1];
        let mut buf = tokio::io::ReadBuf::new(&mut byte);
        s.poll_peek(cx, &mut buf).map(|_| ())
    }

    /// [`ClientStream::readable`] as a poll function.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            ClientStream::Tcp(s) => s.poll_read_ready(cx),
            ClientStream::Unix(s) => s.poll_read_ready(cx),
            ClientStream::Tls(t) => t.poll_readable(cx),
        }
    }

    /// One read, `WouldBlock` when nothing was there. A short read means the socket
    /// was drained, so the readiness is cleared with it (as tokio's own `poll_read`
    /// does): the next wait goes straight to the reactor instead of costing a read
    /// that fails with EAGAIN.
    pub fn try_read_draining(&self, buf: &mut BytesMut) -> io::Result<usize> {
        if let ClientStream::Tls(t) = self {
            return t.try_read(buf);
        }
        let free = buf.capacity() - buf.len();
        let mut got = 0;
        let read = || {
            got = match self {
                ClientStream::Tcp(s) => s.try_read_buf(buf)?,
                ClientStream::Unix(s) => s.try_read_buf(buf)?,
                ClientStream::Tls(_) => 0,
            };
            if got > 0 && got < free {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            Ok(())
        };
        let r = match self {
            ClientStream::Tcp(s) => s.try_io(Interest::READABLE, read),
            ClientStream::Unix(s) => s.try_io(Interest::READABLE, read),
            ClientStream::Tls(_) => Ok(()),
        };
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
            Err(e) => Err(e),
            Ok(()) => Ok(got),
        }
    }

    /// Writes some of `data`, waiting until the socket takes something.
    pub async fn write(&self, data: &[u8]) -> io::Result<usize> {
        loop {
            let r = match self {
                ClientStream::Tcp(s) => {
                    s.writable().await?;
                    s.try_write(data)
                }
                ClientStream::Unix(s) => {
                    s.writable().await?;
                    s.try_write(data)
                }
                ClientStream::Tls(t) => std::future::poll_fn(|cx| t.poll_write(cx, data)).await,
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// Shuts the socket down in `how` (shutdown: reading, so the session sees end
    /// of input; CLIENT KILL: both).
    pub fn shutdown(&self, how: std::net::Shutdown) {
        let _ = match self {
            ClientStream::Tcp(s) => socket2::SockRef::from(s).shutdown(how),
            ClientStream::Unix(s) => socket2::SockRef::from(s).shutdown(how),
            ClientStream::Tls(t) => {
                t.shutdown(how);
                Ok(())
            }
        };
    }

    /// Whether written bytes still wait inside the stream (TLS records the socket
    /// did not take yet): the session then waits on [`ClientStream::flush`].
    pub fn wants_flush(&self) -> bool {
        match self {
            ClientStream::Tcp(_) | ClientStream::Unix(_) => false,
            ClientStream::Tls(t) => t.wants_flush(),
        }
    }

    /// Pushes out what [`ClientStream::wants_flush`] says is waiting.
    pub async fn flush(&self) -> io::Result<()> {
        match self {
            ClientStream::Tcp(_) | ClientStream::Unix(_) => Ok(()),
            ClientStream::Tls(t) => std::future::poll_fn(|cx| t.poll_flush(cx)).await,
        }
    }

    /// When the session ends: a TLS stream flushes and sends close_notify (bounded).
    pub async fn close(&self) {
        if let ClientStream::Tls(t) = self {
            t.close().await;
        }
    }

    /// The peer's and the local address as CLIENT LIST shows them (`ip:port`;
    /// `path:0` on a unix socket).
    pub fn addrs(&self) -> (String, String) {
        match self {
            ClientStream::Tcp(s) => (
                s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
                s.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            ),
            ClientStream::Unix(s) => {
                let path = s
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_default();
                (format!("{path}:0"), format!("{path}:0"))
            }
            ClientStream::Tls(t) => t.addrs(),
        }
    }

    /// The socket's descriptor number (shown by CLIENT LIST).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            ClientStream::Tcp(s) => s.as_raw_fd(),
            ClientStream::Unix(s) => s.as_raw_fd(),
            ClientStream::Tls(t) => t.fd(),
        }
    }

    /// Whether backend connection tasks may write replies to this stream directly
    /// (see the module doc): true for plain sockets.
    pub fn direct_writes(&self) -> bool {
        match self {
            ClientStream::Tcp(_) | ClientStream::Unix(_) => true,
            ClientStream::Tls(_) => false,
        }
    }

    /// Writes what the socket takes now, without waiting.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Tcp(s) => s.try_write(data),
            ClientStream::Unix(s) => s.try_write(data),
            ClientStream::Tls(t) => t.try_write(data),
        }
    }
}

/// A whole reply written by a backend connection task on the session's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Sequence number of the request.
    pub seq: u64,
    /// What was written: all of the reply.
    pub head: Head,
}

#[derive(Debug, Default)]
struct Handoff {
    armed: Option<u64>,
    delivered: Option<Delivered>,
    /// Backend replies for the session, in arrival order.
    completions: VecDeque<Completion>,
    /// The session's waker while it waits for a completion.
    waker: Option<Waker>,
    /// The session is gone: replies are dropped.
    closed: bool,
    /// The session is asked to park once it is idle (see [`ClientIo::ask_to_park`]).
    park: bool,
}

/// The client socket, the direct-reply hand-off and the queue of backend replies.
#[derive(Debug)]
pub struct ClientIo {
    /// The socket.
    pub stream: ClientStream,
    handoff: Mutex<Handoff>,
}

impl ClientIo {
    /// Wraps a client socket.
    pub fn new(stream: ClientStream) -> ClientIo {
        ClientIo {
            stream,
            handoff: Mutex::new(Handoff::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Handoff> {
        self.handoff.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Session side: the reply of `seq` may be written directly (a no-op on a
    /// stream that does not allow direct writes).
    pub fn arm(&self, seq: u64) {
        if self.stream.direct_writes() {
            self.lock().armed = Some(seq);
        }
    }

    /// Session side: stops direct writes and returns what was written meanwhile.
    pub fn disarm(&self) -> Option<Delivered> {
        let mut h = self.lock();
        h.armed = None;
        h.delivered.take()
    }

    /// Connection side: the backend reply for (`seq`, `part`). With `direct`, and if
    /// the session armed `seq`, it is written straight to the client; whatever is not
    /// written goes to the session's completion queue.
    pub fn complete(&self, seq: u64, part: u32, reply: PartReply, direct: bool) {
        let mut h = self.lock();
        if h.closed {
            return;
        }
        let mut c = Completion {
            seq,
            part,
            reply,
            head: None,
        };
        if let Ok(bytes) = &c.reply
            && direct
            && h.armed == Some(seq)
        {
            h.armed = None;
            let len = self.stream.try_write(bytes).unwrap_or(0);
            let head = Head {
                len,
                error: crate::resp::reply::is_error(bytes),
            };
            if len == bytes.len() {
                h.delivered = Some(Delivered { seq, head });
                return;
            }
            if len > 0 {
                c.reply = Ok(bytes.slice(len..));
                c.head = Some(head);
            }
        }
        h.completions.push_back(c);
        let waker = h.waker.take();
        drop(h);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Session side: the next completion, registering to be woken when none is
    /// queued; `None` when the session was asked to park (once per asking).
    pub fn poll_completion(&self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let mut h = self.lock();
        if let Some(c) = h.completions.pop_front() {
            return Poll::Ready(Some(c));
        }
        if std::mem::take(&mut h.park) {
            return Poll::Ready(None);
        }
        if !h.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            h.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Asks the session to free its serving state if it is idle (the client sent
    /// nothing for a while): wakes it with `None` from [`ClientIo::poll_completion`].
    pub fn ask_to_park(&self) {
        let mut h = self.lock();
        if h.closed {
            return;
        }
        h.park = true;
        let waker = h.waker.take();
        drop(h);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Session side: the next completion if one is queued.
    pub fn try_completion(&self) -> Option<Completion> {
        self.lock().completions.pop_front()
    }

    /// Session side, when it ends: later replies are dropped.
    pub fn close(&self) {
        let mut h = self.lock();
        h.closed = true;
        h.armed = None;
        h.completions.clear();
        h.waker = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::BackendError;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    /// A readiness left set with nothing behind it (here: a read that did not
    /// drain the readiness) does not count as input; a byte sent does, and stays
    /// to be read.
    #[tokio::test]
    async fn input_means_bytes_not_a_stale_readiness() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        let stream = ClientStream::Tcp(ours);
        peer.write_all(b"x").await.unwrap();
        stream.readable().await.unwrap();
        let ClientStream::Tcp(t) = &stream else {
            unreachable!()
        };
        assert_eq!(t.try_read(&mut [0u8; 16]).unwrap(), 1);
        let stale = std::future::poll_fn(|cx| Poll::Ready(stream.poll_readable(cx))).await;
        assert!(stale.is_ready(), "the readiness is still set");
        let once = std::future::poll_fn(|cx| Poll::Ready(stream.poll_input(cx))).await;
        assert!(once.is_pending());
        peer.write_all(b"y").await.unwrap();
        std::future::poll_fn(|cx| stream.poll_input(cx)).await;
        assert_eq!(t.try_read(&mut [0u8; 16]).unwrap(), 1);
    }

    #[tokio::test]
    async fn a_partly_written_reply_says_what_was_written() {
        let (ours, _peer) = UnixStream::pair().unwrap();
        let io = ClientIo::new(ClientStream::Unix(ours));
        // Larger than any socket buffer: the peer reads nothing.
        let mut big = vec![b'x'; 16 << 20];
        big[0] = b'-';
        io.arm(1);
        io.complete(1, 0, Ok(Bytes::from(big)), true);
        assert_eq!(io.disarm(), None);
        let c = io.try_completion().unwrap();
        let head = c.head.unwrap();
        let rest = c.reply.unwrap();
        assert!(head.error && head.len > 0);
        assert_eq!(head.len + rest.len(), 16 << 20);
        assert_eq!(rest[0], b'x');
    }

    #[tokio::test]
    async fn armed_reply_goes_straight_to_the_socket_once() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let io = ClientIo::new(ClientStream::Unix(ours));
        let ok = |b: &'static [u8]| Ok(Bytes::from_static(b));
        // Not armed: the reply is queued for the session.
        io.complete(7, 0, ok(b"+A\r\n"), true);
        let c = io.try_completion().unwrap();
        assert_eq!(
            (c.seq, c.reply.unwrap()),
            (7, Bytes::from_static(b"+A\r\n"))
        );
        io.arm(8);
        // Armed for another request: queued.
        io.complete(7, 0, ok(b"+B\r\n"), true);
        assert_eq!(io.try_completion().unwrap().seq, 7);
        // Not a direct reply (part of a merged one): queued even when armed.
        io.complete(8, 1, ok(b"+P\r\n"), false);
        assert_eq!(io.try_completion().unwrap().part, 1);
        io.complete(8, 0, ok(b"-ERR x\r\n"), true);
        assert!(io.try_completion().is_none());
        // Taken once: a second reply for the same number is queued, not written.
        io.complete(8, 0, ok(b"+C\r\n"), true);
        assert!(io.try_completion().is_some());
        let mut got = [0u8; 8];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"-ERR x\r\n");
        let head = Head {
            len: 8,
            error: true,
        };
        assert_eq!(io.disarm(), Some(Delivered { seq: 8, head }));
        assert_eq!(io.disarm(), None);
        // Once the session is gone, replies are dropped.
        io.close();
        io.complete(9, 0, ok(b"+D\r\n"), false);
        assert!(io.try_completion().is_none());
    }

    #[tokio::test]
    async fn a_queued_completion_wakes_the_waiting_session() {
        let (ours, _peer) = UnixStream::pair().unwrap();
        let io = std::sync::Arc::new(ClientIo::new(ClientStream::Unix(ours)));
        let waiter = {
            let io = io.clone();
            tokio::spawn(async move { std::future::poll_fn(|cx| io.poll_completion(cx)).await })
        };
        tokio::task::yield_now().await;
        io.complete(3, 0, Err(BackendError::Timeout), true);
        let c = waiter.await.unwrap().unwrap();
        assert_eq!((c.seq, c.reply), (3, Err(BackendError::Timeout)));
    }

    #[tokio::test]
    async fn asking_to_park_wakes_the_session_once() {
        let (ours, _peer) = UnixStream::pair().unwrap();
        let io = std::sync::Arc::new(ClientIo::new(ClientStream::Unix(ours)));
        let waiter = {
            let io = io.clone();
            tokio::spawn(async move { std::future::poll_fn(|cx| io.poll_completion(cx)).await })
        };
        tokio::task::yield_now().await;
        io.ask_to_park();
        assert!(waiter.await.unwrap().is_none());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(io.poll_completion(&mut cx).is_pending());
    }
}
