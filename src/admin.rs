//! The admin HTTP port: metrics, probes, topology and reload.
//!
//! | route | method | answer |
//! |---|---|---|
//! | `/metrics` | GET | Prometheus text exposition (`text/plain; version=0.0.4`) |
//! | `/live` | GET | 200 `ok` |
//! | `/ready` | GET | 200 `ready`, or 503 `not ready` |
//! | `/topology` | GET | the current topology as pretty JSON |
//! | `/hotkeys` | GET | the hottest keys of each pool as pretty JSON ([`crate::hotkeys`]) |
//! | `/reload` | POST | 200 with the hook's message; 422 with its error (the new config was rejected, the old one keeps running); 500 if the hook panicked |
//!
//! Other paths get 404, other methods 405 (HEAD is accepted wherever GET is).
//! Each connection carries one request and is closed after the response. The head
//! is limited to 8 KiB and must arrive within the read timeout (1 s by default,
//! against slow clients); at most [`AdminLimits::max_connections`] connections are
//! served at once. When they are all taken, the oldest connection still sending its
//! request is closed to make room: a flood of slow or idle connections cannot lock
//! probes and scrapers out (they send their request at once).

pub mod http;

use http::{Head, Response};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Content type of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the admin port asks of the running proxy.
pub trait AdminHooks: Send + Sync {
    /// The Prometheus text exposition.
    fn metrics(&self) -> String;
    /// Whether the process is alive (it answers at all).
    fn live(&self) -> bool;
    /// Whether the proxy is ready to take clients.
    fn ready(&self) -> bool;
    /// The current topology, as JSON.
    fn topology(&self) -> serde_json::Value;
    /// The hottest keys of each pool, as JSON.
    fn hotkeys(&self) -> serde_json::Value {
        serde_json::json!({ "pools": [] })
    }
    /// Reloads the config: `Ok(message)` when applied or unchanged, `Err(reason)`
    /// when the new config was rejected.
    fn reload(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>>;
    /// The bearer token `POST /reload` must carry, if one is configured
    /// (`Err`: it is configured but cannot be read now; the reload is refused).
    fn reload_token(&self) -> Result<Option<String>, String> {
        Ok(None)
    }
}

/// The token in `path`: its first line, trimmed; an error (without the file's
/// text) when it cannot be read or is empty.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(format!("{} holds no token", path.display()));
    }
    Ok(token.to_string())
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Resource bounds of the admin server.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time allowed to receive a whole request (default 1 s).
    pub read_timeout: Duration,
    /// Time allowed to send a whole response.
    pub write_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            max_connections: 64,
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Longest wait for the client to close after the response.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// Most bytes read and dropped after the response.
const LINGER_BYTES: usize = 256 * 1024;

/// How long a new connection waits for the slot of a connection closed for it.
const EVICT_WAIT: Duration = Duration::from_millis(200);

/// What every admin connection shares.
struct Ctx {
    hooks: Arc<dyn AdminHooks>,
    limits: AdminLimits,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// Connections still sending their request, oldest first.
    readers: Readers,
}

/// Connections still sending their request, oldest first, each with the token
/// that closes it.
#[derive(Default)]
struct Readers(std::sync::Mutex<(u64, std::collections::VecDeque<(u64, CancellationToken)>)>);

impl Readers {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, (u64, std::collections::VecDeque<(u64, CancellationToken)>)>
    {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new reader; its id and the token that evicts it.
    fn add(&self) -> (u64, CancellationToken) {
        let mut g = self.lock();
        g.0 += 1;
        let (id, token) = (g.0, CancellationToken::new());
        g.1.push_back((id, token.clone()));
        (id, token)
    }

    /// The reader `id` has its request (or is gone).
    fn remove(&self, id: u64) {
        self.lock().1.retain(|(i, _)| *i != id);
    }

    /// Closes the oldest reader; false when there is none.
    fn evict_oldest(&self) -> bool {
        let oldest = self.lock().1.pop_front();
        oldest.map(|(_, t)| t.cancel()).is_some()
    }
}

/// Serves the admin port with the default limits until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, hooks: Arc<dyn AdminHooks>, shutdown: CancellationToken) {
    serve_with(listener, hooks, shutdown, AdminLimits::default()).await
}

/// Serves the admin port with explicit limits until `shutdown` is cancelled.
/// Connections already accepted finish on their own (bounded by the timeouts).
pub async fn serve_with(
    listener: TcpListener,
    hooks: Arc<dyn AdminHooks>,
    shutdown: CancellationToken,
    limits: AdminLimits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let ctx = Arc::new(Ctx {
        hooks,
        limits,
        reloading: Mutex::new(()),
        readers: Readers::default(),
    });
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(permit) = slot(&slots, &ctx).await else {
            tracing::debug!("admin: too many connections busy answering, closing the new one");
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            handle(stream, &ctx).await;
            drop(permit);
        });
    }
}

/// A connection slot: a free one, or the slot of the oldest connection still
/// sending its request, closed for it. `None` when every slot is answering.
async fn slot(slots: &Arc<Semaphore>, ctx: &Ctx) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(p) = slots.clone().try_acquire_owned() {
        return Some(p);
    }
    if !ctx.readers.evict_oldest() {
        return None;
    }
    timeout(EVICT_WAIT, slots.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Reads one request, answers it, closes.
async fn handle(mut stream: TcpStream, ctx: &Arc<Ctx>) {
    let (id, evicted) = ctx.readers.add();
    let read = tokio::select! {
        r = timeout(ctx.limits.read_timeout, http::read_request(&mut stream)) => r,
        _ = evicted.cancelled() => return,
    };
    ctx.readers.remove(id);
    let (response, head_only) = match read {
        Err(_) => (Response::text(408, "request timeout\n"), false),
        Ok(Err(e)) => match e.response() {
            Some(r) => (r, false),
            None => return,
        },
        Ok(Ok(head)) => (route(ctx, &head).await, head.method == "HEAD"),
    };
    let bytes = response.encode(head_only);
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    match timeout(ctx.limits.write_timeout, write).await {
        Ok(Ok(())) => linger(&mut stream).await,
        Ok(Err(e)) => tracing::debug!(error = %e, "admin response not delivered"),
        Err(_) => tracing::debug!("admin response write timed out"),
    }
}

/// After the response, reads what the client still sends (briefly, boundedly)
/// before closing: closing with unread input would reset the connection and could
/// destroy the response before the client reads it.
async fn linger(stream: &mut TcpStream) {
    let drain = async {
        let mut chunk = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(LINGER_TIME, drain).await;
}

/// Paths and the methods they accept.
const ROUTES: &[(&str, &str)] = &[
    ("/metrics", "GET, HEAD"),
    ("/live", "GET, HEAD"),
    ("/ready", "GET, HEAD"),
    ("/topology", "GET, HEAD"),
    ("/hotkeys", "GET, HEAD"),
    ("/reload", "POST"),
];

/// The response to a well-formed request.
async fn route(ctx: &Arc<Ctx>, head: &Head) -> Response {
    let Some(&(path, allow)) = ROUTES.iter().find(|(p, _)| *p == head.path) else {
        return Response::text(404, "not found\n");
    };
    if !allow.split(", ").any(|m| m == head.method) {
        let mut r = Response::text(405, "method not allowed\n");
        r.allow = Some(allow);
        return r;
    }
    let hooks = &ctx.hooks;
    match path {
        "/metrics" => guarded(|| Response {
            content_type: METRICS_CONTENT_TYPE,
            ..Response::text(200, hooks.metrics())
        }),
        "/live" => guarded(|| match hooks.live() {
            true => Response::text(200, "ok\n"),
            false => Response::text(503, "not live\n"),
        }),
        "/ready" => guarded(|| match hooks.ready() {
            true => Response::text(200, "ready\n"),
            false => Response::text(503, "not ready\n"),
        }),
        "/topology" => guarded(|| topology(hooks.topology())),
        "/hotkeys" => guarded(|| topology(hooks.hotkeys())),
        _ => match authorize(hooks.as_ref(), head) {
            Some(denied) => denied,
            None => reload(ctx).await,
        },
    }
}

/// `None` when the request may reload; else the response that refuses it.
fn authorize(hooks: &dyn AdminHooks, head: &Head) -> Option<Response> {
    let token = match hooks.reload_token() {
        Ok(None) => return None,
        Ok(Some(t)) => t,
        Err(e) => {
            tracing::warn!(error = %e, "admin token unreadable: reload refused");
            return Some(Response::text(503, "reload token unavailable\n"));
        }
    };
    let given = head
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_secret(g.trim().as_bytes(), token.as_bytes())) {
        return None;
    }
    tracing::warn!("POST /reload without a valid bearer token refused");
    let mut r = Response::text(401, "unauthorized\n");
    r.www_authenticate = true;
    Some(r)
}

/// Runs a synchronous hook; a panic becomes a 500.
fn guarded(f: impl FnOnce() -> Response) -> Response {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Response::text(500, "internal error\n"))
}

fn topology(value: serde_json::Value) -> Response {
    match serde_json::to_string_pretty(&value) {
        Ok(mut body) => {
            body.push('\n');
            Response {
                content_type: "application/json",
                ..Response::text(200, body)
            }
        }
        Err(e) => Response::text(500, format!("cannot encode topology: {e}\n")),
    }
}

/// Runs the reload hook in its own task: it completes even if the client leaves,
/// reloads never overlap, and a panic becomes a 500.
async fn reload(ctx: &Arc<Ctx>) -> Response {
    let ctx = ctx.clone();
    let task = tokio::spawn(async move {
        let _one = ctx.reloading.lock().await;
        ctx.hooks.reload().await
    });
    match task.await {
        Ok(Ok(msg)) => Response::text(200, with_newline(msg)),
        Ok(Err(err)) => Response::text(422, with_newline(err)),
        Err(_) => Response::text(500, "reload failed unexpectedly\n"),
    }
}

fn with_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests;
