//! Accepting clients on TCP (plain or TLS) or a unix socket.

use super::PoolContext;
use super::clients::ClientEntry;
use super::session::Session;
use crate::client_io::{ClientIo, ClientStream};
use crate::errors;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

/// A bound client listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket (the path is removed at shutdown).
    Unix(UnixListener, std::path::PathBuf),
}

/// A listening socket not yet registered with a runtime, to be shared by workers.
#[derive(Debug)]
pub enum StdListener {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// Unix socket.
    Unix(std::os::unix::net::UnixListener, std::path::PathBuf),
}

impl Listener {
    /// A copy of the socket for another worker's runtime.
    pub fn try_clone(&self) -> std::io::Result<StdListener> {
        match self {
            Listener::Tcp(l) => {
                let fd = socket2::SockRef::from(l).try_clone()?;
                Ok(StdListener::Tcp(fd.into()))
            }
            Listener::Unix(l, p) => {
                let fd = socket2::SockRef::from(l).try_clone()?;
                Ok(StdListener::Unix(
                    std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(fd)),
                    p.clone(),
                ))
            }
        }
    }
}

impl StdListener {
    /// Registers the socket with the current runtime.
    pub fn register(self) -> std::io::Result<Listener> {
        match self {
            StdListener::Tcp(l) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Tcp(TcpListener::from_std(l)?))
            }
            StdListener::Unix(l, p) => {
                l.set_nonblocking(true)?;
                Ok(Listener::Unix(UnixListener::from_std(l)?, p))
            }
        }
    }
}

/// Holds a client's place in the `max_clients` count and in the pool's list of open
/// client sockets for the life of its session, however the session ends.
pub struct ClientSlot(Arc<PoolContext>, u64);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.registry.remove(self.1);
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.client_connections.dec();
    }
}

/// Accepts clients until `shutdown` fires; each gets its own session task.
pub async fn accept_loop(listener: Listener, ctx: Arc<PoolContext>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = accept(&listener, &ctx) => if let Err(e) = r {
                tracing::warn!(pool = %ctx.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            },
        }
    }
}

async fn accept(listener: &Listener, ctx: &Arc<PoolContext>) -> std::io::Result<()> {
    let stream = match listener {
        Listener::Tcp(l) => {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            if let Some(tls) = &ctx.tls {
                if let Some(pending) = Handshaking::start(ctx) {
                    tokio::spawn(handshake(s, tls.acceptor(), pending));
                }
                return Ok(());
            }
            ClientStream::Tcp(s)
        }
        Listener::Unix(l, _) => ClientStream::Unix(l.accept().await?.0),
    };
    match admit(ctx, stream) {
        Ok(session) => {
            tokio::spawn(session.run());
        }
        Err(io) => refuse(&io).await,
    }
    Ok(())
}

/// Runs the TLS handshake (within [`crate::tls::HANDSHAKE_TIMEOUT`]) in the
/// client's own task, then its session. A failed or slow handshake closes the socket.
async fn handshake(
    s: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    pending: Handshaking,
) {
    let ctx = pending.0.clone();
    let peer = s.peer_addr().ok();
    let tls = match tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            ctx.metrics.tls_handshake_failures.inc();
            tracing::debug!(pool = %ctx.name, ?peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            ctx.metrics.tls_handshake_failures.inc();
            tracing::debug!(pool = %ctx.name, ?peer, "TLS handshake timed out");
            return;
        }
    };
    drop(pending);
    let stream = match crate::tls::stream::TlsClient::new(tls) {
        Ok(t) => ClientStream::Tls(Box::new(t)),
        Err(e) => {
            tracing::debug!(pool = %ctx.name, ?peer, error = %e, "TLS client setup failed");
            return;
        }
    };
    match admit(&ctx, stream) {
        Ok(session) => session.run().await,
        Err(io) => refuse(&io).await,
    }
}

/// A TLS handshake under way, counted in [`PoolContext::handshakes`] until dropped.
struct Handshaking(Arc<PoolContext>);

impl Handshaking {
    /// Counts a handshake in, or refuses it (the socket is closed at once, counted
    /// as rejected) when clients and handshakes already reach `max_clients`.
    fn start(ctx: &Arc<PoolContext>) -> Option<Handshaking> {
        let pending = ctx.handshakes.fetch_add(1, Ordering::Relaxed);
        let busy = pending + ctx.clients.load(Ordering::Relaxed);
        let guard = Handshaking(ctx.clone());
        if busy >= ctx.max_clients.load(Ordering::Relaxed) {
            ctx.metrics.client_connections_rejected.inc();
            tracing::debug!(pool = %ctx.name, "TLS client refused: max_clients reached");
            return None;
        }
        Some(guard)
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.handshakes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Tells a client over `max_clients` why it is closed.
async fn refuse(io: &ClientIo) {
    let _ = io.stream.write(errors::MAX_CLIENTS).await;
    if io.stream.wants_flush() {
        let _ = io.stream.flush().await;
    }
    io.stream.close().await;
}

/// Counts a new client in, or refuses it when `max_clients` is reached.
fn admit(ctx: &Arc<PoolContext>, stream: ClientStream) -> Result<Session, Arc<ClientIo>> {
    let io = &Arc::new(ClientIo::new(stream));
    let now = ctx.clients.fetch_add(1, Ordering::Relaxed);
    if now >= ctx.max_clients.load(Ordering::Relaxed) {
        ctx.clients.fetch_sub(1, Ordering::Relaxed);
        ctx.metrics.client_connections_rejected.inc();
        tracing::debug!(pool = %ctx.name, "client refused: max_clients reached");
        return Err(io.clone());
    }
    ctx.clients_total.fetch_add(1, Ordering::Relaxed);
    ctx.metrics.client_connections_total.inc();
    ctx.metrics.client_connections.inc();
    let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
    let entry = Arc::new(ClientEntry::new(id, io));
    ctx.registry.add(entry.clone());
    Ok(Session::new(
        ctx.clone(),
        entry,
        ClientSlot(ctx.clone(), id),
        io.clone(),
    ))
}
