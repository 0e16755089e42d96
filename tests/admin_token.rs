//! `admin_token_file`: POST /reload needs the bearer token the file holds (read on
//! every request, so a rotated token applies at once); probes stay open.

mod common;

use common::*;
use std::io::{Read, Write};

fn post_reload(port: u16, token: Option<&str>) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /reload HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn reload_needs_the_token_and_a_rotated_token_applies_at_once() {
    let node = RedisServer::start();
    let dir = TempDir::new("token");
    let token = dir.join("token");
    std::fs::write(&token, "first-secret\n").unwrap();
    let extra = format!("admin_token_file: \"{}\"\n", token.display());
    let proxy = Proxy::with_nodes(&[&node], &extra);
    let admin = proxy.admin_port();
    assert_eq!(post_reload(admin, None), 401);
    assert_eq!(post_reload(admin, Some("wrong")), 401);
    assert_eq!(post_reload(admin, Some("first-secret")), 200);
    std::fs::write(&token, "second-secret\n").unwrap();
    assert_eq!(post_reload(admin, Some("first-secret")), 401);
    assert_eq!(post_reload(admin, Some("second-secret")), 200);
    assert_eq!(common::admin::http(admin, "GET", "/ready").status, 200);
    assert!(
        !proxy.log().contains("second-secret"),
        "the token is in the log"
    );
    // A token file that cannot be read: the reload is refused, probes still answer.
    std::fs::remove_file(&token).unwrap();
    assert_eq!(post_reload(admin, Some("second-secret")), 503);
    assert_eq!(common::admin::http(admin, "GET", "/live").status, 200);
}

#[test]
fn check_refuses_a_missing_token_file() {
    let dir = TempDir::new("token-check");
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:1\nadmin_token_file: /nonexistent/token\nnodes:\n  - addr: 127.0.0.1:2\n",
    )
    .unwrap();
    let out = std::process::Command::new(ringproxy_bin())
        .args(["--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_token_file: cannot read"));
}
