//! The unix-socket listener of a sidecar: its file gets the permissions the config
//! asks for (`listen_mode`, or nutcracker's `listen: /path 0666`), so an
//! application running as another user can connect.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;

fn pings(path: &std::path::Path) -> bool {
    let Ok(mut s) = UnixStream::connect(path) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let mut got = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut got).is_ok() && &got == b"+PONG\r\n"
}

/// Runs ringproxy on `text` (written to `file` in `dir`) until its socket answers.
fn serve(dir: &TempDir, file: &str, text: &str, sock: &std::path::Path) -> std::process::Child {
    let config = dir.join(file);
    std::fs::write(&config, text).unwrap();
    let mut cmd = Command::new(ringproxy_bin());
    cmd.arg("--config").arg(&config);
    let child = spawn_logged(&mut cmd, &dir.join(&format!("{file}.log"))).unwrap();
    wait_until("the socket answers PING", READY_TIMEOUT, || pings(sock));
    child
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn listen_mode_sets_the_socket_file_permissions() {
    let node = RedisServer::start();
    let dir = TempDir::new("unixsock");
    let sock = dir.join("p.sock");
    let text = format!(
        "listen: unix:{}\nlisten_mode: \"0666\"\nadmin: null\nnodes:\n  - addr: \"{}\"\n",
        sock.display(),
        node.addr()
    );
    let mut child = serve(&dir, "ringproxy.yaml", &text, &sock);
    assert_eq!(mode(&sock), 0o666);
    let out = Command::new("redis-cli")
        .args(["-s", &sock.display().to_string(), "SET", "k", "v"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    kill_and_reap(&mut child);
}

#[test]
fn a_nutcracker_listen_permission_suffix_is_applied() {
    let node = RedisServer::start();
    let dir = TempDir::new("unixsock-nc");
    let sock = dir.join("nc.sock");
    let text = format!(
        "alpha:\n  listen: {} 0600\n  redis: true\n  servers:\n   - {}:1\n",
        sock.display(),
        node.addr()
    );
    let mut child = serve(&dir, "nutcracker.yml", &text, &sock);
    assert_eq!(mode(&sock), 0o600);
    kill_and_reap(&mut child);
}

#[test]
fn listen_mode_on_a_tcp_listener_is_refused_by_check() {
    let dir = TempDir::new("unixsock-check");
    let config = dir.join("bad.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:1\nlisten_mode: \"0666\"\nnodes:\n  - addr: 127.0.0.1:2\n",
    )
    .unwrap();
    let out = Command::new(ringproxy_bin())
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("listen_mode: applies to a unix: listener only")
    );
}
