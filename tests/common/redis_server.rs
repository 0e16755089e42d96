//! [`RedisServer`]: a `redis-server` child process on a free loopback port.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::resp::Reply;
use super::util::*;

/// A `redis-server` child process on a free port with its own temp dir.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a fresh server (no persistence) and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Same, with extra command-line options, e.g. `&["--requirepass", "s3cret"]`.
    /// (With `requirepass`, readiness is judged by the `-NOAUTH` answer.)
    pub fn start_with(extra: &[&str]) -> RedisServer {
        assert!(
            find_in_path("redis-server").is_some(),
            "redis-server not installed: run .ci/run or apt-get install redis-server"
        );
        let mut s = RedisServer {
            child: None,
            port: 0,
            dir: TempDir::new("redis"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        let mut last_err = String::new();
        for _ in 0..5 {
            s.port = free_port();
            match s.spawn() {
                Ok(()) => return s,
                Err(e) => last_err = e, // most likely the port was taken meanwhile
            }
        }
        panic!("redis-server did not start after 5 attempts: {last_err}");
    }

    /// Spawns on `self.port` and waits until this very process answers.
    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // DEBUG SLEEP from the tests' direct connections (loopback only).
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        let pid = child.id();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited with {st}; log:\n{}",
                    self.port,
                    tail(&log, 20)
                ));
            }
            if self.answers_as(pid) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                kill_and_reap(&mut child);
                panic!(
                    "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    tail(&log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True when the server on our port answers and is process `pid` (not an intruder).
    fn answers_as(&self, pid: u32) -> bool {
        let Ok(mut c) = Conn::try_connect(self.port, Duration::from_millis(300)) else {
            return false;
        };
        match c.try_cmd(&["INFO", "server"]) {
            Ok(Reply::Bulk(b)) => String::from_utf8_lossy(&b)
                .lines()
                .any(|l| l.trim() == format!("process_id:{pid}")),
            Ok(Reply::Verbatim(_, b)) => {
                String::from_utf8_lossy(&b).contains(&format!("process_id:{pid}"))
            }
            // requirepass set: it answers, and it is ours since we spawned it on this port
            Ok(Reply::Error(e)) => e.starts_with("NOAUTH"),
            _ => false,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:<port>"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The process id (panics if stopped).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("redis-server is not running")
            .id()
    }

    /// A new direct connection (bypassing the proxy).
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// Runs one command on a new direct connection.
    pub fn cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> Reply {
        self.conn().cmd(args)
    }

    /// Runs `redis-cli -p <port> ARGS...` and returns its stdout (trimmed).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// All keys on this server (`KEYS *`), as bytes.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        match self.cmd(&["KEYS", "*"]) {
            Reply::Array(v) => v.into_iter().map(|r| r.bytes().to_vec()).collect(),
            other => panic!("KEYS * on {}: {other}", self.addr()),
        }
    }

    /// `DBSIZE`.
    pub fn dbsize(&self) -> i64 {
        self.cmd(&["DBSIZE"]).int()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills it with SIGKILL and reaps it (data is lost: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_and_reap(&mut c);
        }
    }

    /// Stops it gracefully (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Unfreezes it (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Kills it if running, then starts a fresh (empty) server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        // The port may linger briefly; redis-server sets SO_REUSEADDR, but retry anyway.
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("restart on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
