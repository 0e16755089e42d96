use super::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::io::AsyncReadExt;

struct Fake {
    ready: AtomicBool,
    reloads: AtomicUsize,
    token: Option<&'static str>,
}

impl AdminHooks for Fake {
    fn metrics(&self) -> String {
        "ringproxy_up 1\n".into()
    }
    fn live(&self) -> bool {
        true
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
    fn topology(&self) -> serde_json::Value {
        serde_json::json!({"pools": [{"name": "main", "version": 3}]})
    }
    fn reload_token(&self) -> Result<Option<String>, String> {
        Ok(self.token.map(String::from))
    }
    fn reload(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        Box::pin(async move {
            match self.reloads.fetch_add(1, Ordering::Relaxed) {
                0 => Ok("reloaded: version 4".into()),
                1 => Err("invalid config: pools[0].nodes is empty".into()),
                _ => panic!("hook bug"),
            }
        })
    }
}

struct Server {
    addr: SocketAddr,
    hooks: Arc<Fake>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: AdminLimits) -> Server {
    start_with_token(limits, None).await
}

async fn start_with_token(limits: AdminLimits, token: Option<&'static str>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hooks = Arc::new(Fake {
        ready: AtomicBool::new(true),
        reloads: AtomicUsize::new(0),
        token,
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve_with(listener, hooks.clone(), stop.clone(), limits));
    Server {
        addr,
        hooks,
        stop,
        task,
    }
}

/// Sends raw bytes, returns everything the server wrote before closing.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn req(addr: SocketAddr, method: &str, path: &str) -> String {
    let text = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    raw(addr, text.as_bytes()).await
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[tokio::test]
async fn get_routes() {
    let s = start(AdminLimits::default()).await;
    let m = req(s.addr, "GET", "/metrics").await;
    assert_eq!(status(&m), 200);
    assert!(m.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(m.contains("Connection: close"));
    assert_eq!(body(&m), "ringproxy_up 1\n");
    let l = req(s.addr, "GET", "/live").await;
    assert_eq!((status(&l), body(&l)), (200, "ok\n"));
    let r = req(s.addr, "GET", "/ready?verbose=1").await;
    assert_eq!((status(&r), body(&r)), (200, "ready\n"));
    s.hooks.ready.store(false, Ordering::Relaxed);
    let r = req(s.addr, "GET", "/ready").await;
    assert_eq!((status(&r), body(&r)), (503, "not ready\n"));
    let t = req(s.addr, "GET", "/topology").await;
    assert_eq!(status(&t), 200);
    assert!(t.contains("Content-Type: application/json"));
    let v: serde_json::Value = serde_json::from_str(body(&t)).unwrap();
    assert_eq!(v["pools"][0]["version"], 3);
    let h = req(s.addr, "HEAD", "/live").await;
    assert_eq!((status(&h), body(&h)), (200, ""));
    assert!(h.contains("Content-Length: 3"));
}

#[tokio::test]
async fn reload_ok_invalid_and_panic() {
    let s = start(AdminLimits::default()).await;
    let ok = req(s.addr, "POST", "/reload").await;
    assert_eq!((status(&ok), body(&ok)), (200, "reloaded: version 4\n"));
    let with_body = b"POST /reload HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    let bad = raw(s.addr, with_body).await;
    assert_eq!(status(&bad), 422);
    assert!(body(&bad).contains("nodes is empty"));
    let boom = req(s.addr, "POST", "/reload").await;
    assert_eq!(status(&boom), 500);
    assert_eq!(status(&req(s.addr, "GET", "/live").await), 200);
}

#[tokio::test]
async fn not_found_and_wrong_method() {
    let s = start(AdminLimits::default()).await;
    assert_eq!(status(&req(s.addr, "GET", "/nope").await), 404);
    assert_eq!(status(&req(s.addr, "GET", "/metrics/").await), 404);
    let r = req(s.addr, "GET", "/reload").await;
    assert_eq!(status(&r), 405);
    assert!(r.contains("Allow: POST"));
    let r = req(s.addr, "DELETE", "/metrics").await;
    assert_eq!(status(&r), 405);
    assert!(r.contains("Allow: GET, HEAD"));
    assert_eq!(s.hooks.reloads.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn oversized_head_is_refused() {
    let s = start(AdminLimits::default()).await;
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'a', 9 * 1024));
    assert_eq!(status(&raw(s.addr, &big).await), 431);
    let body = b"POST /reload HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n";
    assert_eq!(status(&raw(s.addr, body).await), 413);
    let chunked = b"POST /reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status(&raw(s.addr, chunked).await), 411);
}

#[tokio::test]
async fn garbage_never_breaks_the_server() {
    let s = start(AdminLimits::default()).await;
    let inputs: [&[u8]; 7] = [
        b"\x00\xff\xfe garbage \x01\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /live HTTP/1.1 extra\r\n\r\n",
        b"GET /live SPDY/3\r\n\r\n",
        b"GET live HTTP/1.1\r\n\r\n",
        b"GET /live HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /reload HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ];
    for bytes in inputs {
        assert_eq!(status(&raw(s.addr, bytes).await), 400, "{bytes:?}");
    }
    assert_eq!(raw(s.addr, b"").await, "");
    assert_eq!(status(&raw(s.addr, b"GET /li").await), 400);
    let lf_only = raw(s.addr, b"GET http://h:1/live HTTP/1.0\n\n").await;
    assert_eq!(status(&lf_only), 200);
    assert_eq!(status(&req(s.addr, "GET", "/live").await), 200);
}

#[tokio::test]
async fn slow_client_times_out_and_limit_holds() {
    let limits = AdminLimits {
        max_connections: 1,
        read_timeout: Duration::from_millis(200),
        ..AdminLimits::default()
    };
    let s = start(limits).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /live HTTP/1.1\r\n").await.unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out).await;
    assert_eq!(status(&out), 408);
    drop(slow);
    // The slot frees once the server sees the close; wait for it, boundedly.
    let mut freed = false;
    for _ in 0..100 {
        if status(&req(s.addr, "GET", "/live").await) == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the connection slot was never released");
}

#[tokio::test]
async fn idle_and_partial_connections_never_lock_out_probes() {
    let limits = AdminLimits {
        max_connections: 8,
        ..AdminLimits::default()
    };
    let s = start(limits).await;
    // Far more idle and half-sent requests than slots, all held open.
    let mut flood = Vec::new();
    for i in 0..200 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        if i % 2 == 0 {
            c.write_all(b"GET /live HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        flood.push(c);
    }
    for _ in 0..20 {
        assert_eq!(status(&req(s.addr, "GET", "/live").await), 200);
        assert_eq!(status(&req(s.addr, "GET", "/ready").await), 200);
        flood.push(TcpStream::connect(s.addr).await.unwrap());
    }
    drop(flood);
}

#[tokio::test]
async fn reload_needs_the_bearer_token_when_one_is_set() {
    let s = start_with_token(AdminLimits::default(), Some("s3cret")).await;
    let post = |auth: &'static str| {
        let addr = s.addr;
        async move {
            let head =
                format!("POST /reload HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n");
            raw(addr, head.as_bytes()).await
        }
    };
    let none = post("").await;
    assert_eq!(status(&none), 401);
    assert!(none.contains("WWW-Authenticate: Bearer"));
    assert_eq!(status(&post("Authorization: Bearer wrong\r\n").await), 401);
    assert_eq!(status(&post("Authorization: Bearer s3cre\r\n").await), 401);
    assert_eq!(s.hooks.reloads.load(Ordering::Relaxed), 0, "no reload ran");
    assert_eq!(status(&post("Authorization: Bearer s3cret\r\n").await), 200);
    // Probes and scrapes stay open.
    assert_eq!(status(&req(s.addr, "GET", "/live").await), 200);
    assert_eq!(status(&req(s.addr, "GET", "/metrics").await), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let s = start(AdminLimits::default()).await;
    s.stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), s.task)
        .await
        .expect("serve returns on shutdown")
        .unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err());
}
