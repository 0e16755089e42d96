//! An accepted client TLS stream, shaped for the session: poll-based reads and
//! writes through one std mutex that only the session task takes (backend tasks
//! never write to a TLS client: [`crate::client_io::ClientStream::direct_writes`]
//! is false).
//!
//! Reads go through rustls, which may hold decrypted bytes the socket no longer
//! signals: [`TlsClient::poll_readable`] reads ahead into its own buffer, so it is
//! ready whenever plaintext is buffered, and never waits on the socket then.
//! Writes hand plaintext to rustls and push the records out; records the socket did
//! not take are pushed by [`TlsClient::poll_flush`] (the session waits on it while
//! [`TlsClient::wants_flush`]).

use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Plaintext read ahead by [`TlsClient::poll_readable`], in bytes.
const READ_AHEAD: usize = 16 * 1024;
/// Longest time the final flush and close_notify may take when a session ends.
pub const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

struct Inner {
    tls: TlsStream<TcpStream>,
    /// Plaintext read ahead, not yet taken by the session.
    plain: BytesMut,
    /// The client finished sending (close_notify, or the socket closed).
    eof: bool,
}

/// A client connection over TLS (a finished handshake).
pub struct TlsClient {
    inner: Mutex<Inner>,
    /// A second handle on the socket, for shutdowns asked by other tasks.
    sock: socket2::Socket,
    fd: i32,
    addrs: (String, String),
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// A read result with a TCP close without close_notify taken as end of input.
fn eof_ok(r: io::Result<usize>) -> io::Result<usize> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        r => r,
    }
}

impl TlsClient {
    /// Wraps an accepted TLS stream.
    pub fn new(tls: TlsStream<TcpStream>) -> io::Result<TlsClient> {
        use std::os::fd::AsRawFd;
        let tcp = tls.get_ref().0;
        let sock = socket2::SockRef::from(tcp).try_clone()?;
        let addrs = (
            tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            tcp.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        );
        let fd = tcp.as_raw_fd();
        Ok(TlsClient {
            inner: Mutex::new(Inner {
                tls,
                plain: BytesMut::new(),
                eof: false,
            }),
            sock,
            fd,
            addrs,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ready when plaintext is buffered or the client finished; otherwise reads
    /// ahead (waiting on the socket only when rustls holds nothing).
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = self.lock();
        let inner = &mut *g;
        if inner.eof || !inner.plain.is_empty() {
            return Poll::Ready(Ok(()));
        }
        inner.plain.reserve(READ_AHEAD);
        let r = tokio_util::io::poll_read_buf(Pin::new(&mut inner.tls), cx, &mut inner.plain);
        match r.map(eof_ok) {
            Poll::Ready(Ok(0)) => {
                inner.eof = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(r) => Poll::Ready(r.map(|_| ())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Moves buffered plaintext into `buf`, then reads what rustls and the socket
    /// have now, up to `buf`'s free capacity. `Ok(0)`: end of input; `WouldBlock`:
    /// nothing there.
    pub fn try_read(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut g = self.lock();
        let inner = &mut *g;
        let free = buf.capacity() - buf.len();
        let take = inner.plain.len().min(free);
        buf.extend_from_slice(&inner.plain.split_to(take));
        let mut got = take;
        let mut cx = noop_cx();
        while got < free && !inner.eof && inner.plain.is_empty() {
            let r = tokio_util::io::poll_read_buf(Pin::new(&mut inner.tls), &mut cx, buf);
            match r.map(eof_ok) {
                Poll::Ready(Ok(0)) => inner.eof = true,
                Poll::Ready(Ok(n)) => got += n,
                Poll::Ready(Err(e)) if got == 0 => return Err(e),
                Poll::Ready(Err(_)) | Poll::Pending => break,
            }
        }
        if got == 0 && !inner.eof {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(got)
    }

    /// Hands some of `data` to rustls once earlier records are out, and pushes
    /// what the socket takes.
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut g = self.lock();
        let tls = Pin::new(&mut g.tls);
        if let Poll::Ready(Err(e)) = tls.poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        if g.tls.get_ref().1.wants_write() {
            return Poll::Pending;
        }
        let n = std::task::ready!(Pin::new(&mut g.tls).poll_write(cx, data))?;
        if let Poll::Ready(Err(e)) = Pin::new(&mut g.tls).poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    /// [`TlsClient::poll_write`] without waiting: `WouldBlock` when nothing was taken.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self.poll_write(&mut noop_cx(), data) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Whether encrypted bytes are waiting for the socket.
    pub fn wants_flush(&self) -> bool {
        self.lock().tls.get_ref().1.wants_write()
    }

    /// Pushes waiting encrypted bytes out.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().tls).poll_flush(cx)
    }

    /// At the end of a session: flushes, sends close_notify, within [`CLOSE_TIMEOUT`].
    pub async fn close(&self) {
        let fut = async {
            std::future::poll_fn(|cx| self.poll_flush(cx)).await?;
            self.lock().tls.get_mut().1.send_close_notify();
            std::future::poll_fn(|cx| self.poll_flush(cx)).await
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, fut).await;
    }

    /// Shuts the socket down in `how` (from any task).
    pub fn shutdown(&self, how: std::net::Shutdown) {
        let _ = self.sock.shutdown(how);
    }

    /// The peer's and the local address (`ip:port`).
    pub fn addrs(&self) -> (String, String) {
        self.addrs.clone()
    }

    /// The socket's descriptor number.
    pub fn fd(&self) -> i32 {
        self.fd
    }
}
