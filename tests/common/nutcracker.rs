//! [`Nutcracker`]: a `nutcracker` (twemproxy 0.5.0) child process, for side-by-side tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::proxy::port_of;
use super::redis_server::RedisServer;
use super::util::*;

/// A running `nutcracker` (twemproxy 0.5.0), for side-by-side placement tests.
pub struct Nutcracker {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Nutcracker {
    /// Writes `yaml` (a nutcracker pool file), starts `nutcracker -c file` with its stats
    /// on a free loopback port, and waits until the pool's `listen:` port accepts.
    pub fn start(yaml: &str) -> Nutcracker {
        Nutcracker::try_start(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(yaml: &str) -> Result<Nutcracker, String> {
        let bin = find_in_path("nutcracker")
            .ok_or("nutcracker not installed: run .ci/run or apt-get install nutcracker")?;
        let port = port_of(yaml, "listen").ok_or("nutcracker config has no `listen:` line")?;
        let dir = TempDir::new("nutcracker");
        let config = dir.join("nutcracker.yml");
        std::fs::write(&config, yaml).map_err(|e| format!("write config: {e}"))?;
        let log = dir.join("nutcracker.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-s", &free_port().to_string()])
            .arg("-o")
            .arg(&log)
            .arg("-p")
            .arg(dir.join("nutcracker.pid"));
        let child = spawn_logged(&mut cmd, &dir.join("nutcracker.out"))?;
        let mut n = Nutcracker {
            child: Some(child),
            port,
            config,
            log,
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(st)) = n.child.as_mut().expect("child").try_wait() {
                n.child = None;
                return Err(format!(
                    "nutcracker exited with {st}; log:\n{}\n{}",
                    tail(&n.log, 20),
                    tail(&n.dir.join("nutcracker.out"), 20)
                ));
            }
            if accepts(port) {
                return Ok(n);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nutcracker did not listen on {port} within {READY_TIMEOUT:?}; log:\n{}",
                    tail(&n.log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A nutcracker pool file named `alpha` over `nodes` (server names `node0`, ...),
    /// `hash`/`distribution` as given (e.g. `fnv1a_64`, `ketama`), on a free port.
    pub fn config_for(nodes: &[&RedisServer], hash: &str, distribution: &str) -> String {
        let mut y = format!(
            "alpha:\n  listen: 127.0.0.1:{}\n  hash: {hash}\n  distribution: {distribution}\n  redis: true\n  auto_eject_hosts: false\n  servers:\n",
            free_port()
        );
        for (i, n) in nodes.iter().enumerate() {
            y.push_str(&format!("    - {}:1 node{i}\n", n.addr()));
        }
        y
    }

    /// Starts nutcracker over `nodes` with fnv1a_64 + ketama, retrying on port collision.
    pub fn with_nodes(nodes: &[&RedisServer]) -> Nutcracker {
        let mut last = String::new();
        for _ in 0..3 {
            match Nutcracker::try_start(&Nutcracker::config_for(nodes, "fnv1a_64", "ketama")) {
                Ok(n) => return n,
                Err(e) if e.starts_with("nutcracker not installed") => panic!("{e}"),
                Err(e) => last = e,
            }
        }
        panic!("nutcracker did not start (3 attempts): {last}");
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Its log.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// A new client connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(2));
        }
    }
}
