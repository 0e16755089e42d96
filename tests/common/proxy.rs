//! [`Proxy`]: a `ringproxy` child process on a config file written by the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::redis_server::RedisServer;
use super::util::*;

/// The `ringproxy` binary: the one cargo built for this test run, or the path in the
/// `RINGPROXY_BIN` environment variable (e.g. to run the suite against a release build).
pub fn ringproxy_bin() -> PathBuf {
    std::env::var_os("RINGPROXY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ringproxy")))
}

/// Extracts the port of a `key: host:port` line (first match, top-level or nested).
pub fn port_of(yaml: &str, key: &str) -> Option<u16> {
    yaml.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key)?.trim().strip_prefix(':'))
        .and_then(|v| {
            v.trim()
                .trim_matches(['"', '\''])
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
}

/// A running `ringproxy --config <file>`; killed on drop (SIGTERM, then SIGKILL).
/// When the test is panicking, the tail of its log is printed on drop.
pub struct Proxy {
    child: Option<Child>,
    port: u16,
    admin_port: Option<u16>,
    config: PathBuf,
    log: PathBuf,
    dir: TempDir,
}

impl Proxy {
    /// Writes `yaml` to a temp file, starts the proxy on it and waits until its
    /// `listen:` port answers PING. The port is read from the `listen:` line.
    pub fn start(yaml: &str) -> Proxy {
        Proxy::try_start(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Proxy::start`], returning the failure (with the log tail) instead of panicking.
    pub fn try_start(yaml: &str) -> Result<Proxy, String> {
        Proxy::try_start_with(yaml, &[])
    }

    /// Like [`Proxy::try_start`], with extra command-line arguments, e.g.
    /// `["--admin", "127.0.0.1:<port>"]` (then that is the admin port, not the file's).
    pub fn try_start_with(yaml: &str, args: &[&str]) -> Result<Proxy, String> {
        Proxy::try_start_ready(yaml, args, &answers_ping)
    }

    /// Like [`Proxy::try_start_with`], ready when `ready(port)` says so (e.g. a TLS
    /// client's PING on a TLS listener).
    pub fn try_start_ready(
        yaml: &str,
        args: &[&str],
        ready: &dyn Fn(u16) -> bool,
    ) -> Result<Proxy, String> {
        let port = port_of(yaml, "listen").ok_or("config has no `listen: host:port` line")?;
        let admin_port = match args.iter().position(|a| *a == "--admin") {
            Some(i) => args
                .get(i + 1)
                .and_then(|a| a.rsplit(':').next()?.parse().ok()),
            None => port_of(yaml, "admin"),
        };
        let dir = TempDir::new("proxy");
        let config = dir.join("ringproxy.yaml");
        std::fs::write(&config, yaml).map_err(|e| format!("write config: {e}"))?;
        let log = dir.join("ringproxy.log");
        let child = spawn_logged(
            Command::new(ringproxy_bin())
                .arg("--config")
                .arg(&config)
                .args(args),
            &log,
        )?;
        let mut p = Proxy {
            child: Some(child),
            port,
            admin_port,
            config,
            log,
            dir,
        };
        p.wait_ready(ready)?;
        Ok(p)
    }

    fn wait_ready(&mut self, ready: &dyn Fn(u16) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child");
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "ringproxy exited with {st} before answering PING on port {}.\nconfig:\n{}\nlog tail:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.config).unwrap_or_default(),
                    tail(&self.log, 40)
                ));
            }
            if ready(self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ringproxy did not answer PING on port {} within {READY_TIMEOUT:?}.\nlog tail:\n{}",
                    self.port,
                    tail(&self.log, 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The config text for `nodes` (named `node0`, `node1`, ... in order) on fresh free
    /// ports, plus `extra_yaml` appended verbatim (top-level sections such as
    /// `"health:\n  eject: true\n"`). Returns (yaml, listen port, admin port).
    pub fn config_for(nodes: &[&RedisServer], extra_yaml: &str) -> (String, u16, u16) {
        let (port, admin) = (free_port(), free_port());
        let mut y = format!("listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin}\nnodes:\n");
        for (i, n) in nodes.iter().enumerate() {
            y.push_str(&format!("  - {{name: node{i}, addr: \"{}\"}}\n", n.addr()));
        }
        y.push_str(extra_yaml);
        if !y.ends_with('\n') {
            y.push('\n');
        }
        (y, port, admin)
    }

    /// Starts a proxy over `nodes` (see [`Proxy::config_for`]), retrying with new ports
    /// if one was taken meanwhile.
    pub fn with_nodes(nodes: &[&RedisServer], extra_yaml: &str) -> Proxy {
        let mut last = String::new();
        for _ in 0..3 {
            let (yaml, _, _) = Proxy::config_for(nodes, extra_yaml);
            match Proxy::try_start(&yaml) {
                Ok(p) => return p,
                Err(e) => last = e,
            }
        }
        panic!("ringproxy did not start (3 attempts). Last failure:\n{last}");
    }

    /// Client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Admin HTTP port (panics when the config has none).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
            .expect("this proxy config has no admin listener")
    }

    /// The config file (rewrite it to trigger a reload).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Replaces the config file atomically (write a sibling, rename over it).
    pub fn write_config(&self, yaml: &str) {
        let tmp = self.dir.join("ringproxy.yaml.tmp");
        std::fs::write(&tmp, yaml).expect("write config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    /// Everything the proxy printed so far (stdout and stderr), color codes removed.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// The process id (panics if it exited).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("ringproxy is not running").id()
    }

    /// Its resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Sends a signal, e.g. `"HUP"` to reload.
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// A new client connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.child.take().and_then(|mut c| terminate(&mut c, grace))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!(
                "---- ringproxy log tail (port {}) ----\n{}\n----",
                self.port,
                tail(&self.log, 40)
            );
        }
    }
}
