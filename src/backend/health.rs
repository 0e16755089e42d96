//! Node health: shared state, the pure up/down state machine, passive failure
//! counting on live traffic, and the active PING checker.
//!
//! A node goes down after `failures` consecutive failed checks, or as soon as live
//! traffic sees `failures` consecutive failures (failed connects, timeouts, invalid
//! replies, -LOADING/-BUSY/-MASTERDOWN; a closed connection counts only if the
//! reconnect then fails). Only the active checker brings
//! it back, after `successes` consecutive good PINGs. Every transition is logged once
//! and wakes the pool's ejection task.

use super::handshake;
use super::probe::Probe;
use super::stream::{BackendStream, connect};
use crate::config::NodeAddr;
use crate::metrics::NodeMetrics;
use crate::resp::reply::reply_len;
use crate::tls::client::BackendTls;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Thresholds and timings of the health policy (changeable by reload).
#[derive(Debug)]
pub struct HealthPolicy {
    interval_ms: AtomicU64,
    timeout_ms: AtomicU64,
    failures: AtomicU32,
    successes: AtomicU32,
    retry_ms: AtomicU64,
    replica_lag_secs: AtomicU64,
}

impl HealthPolicy {
    /// A policy from config values.
    pub fn new(cfg: &crate::config::HealthConfig) -> HealthPolicy {
        let p = HealthPolicy {
            interval_ms: AtomicU64::new(0),
            timeout_ms: AtomicU64::new(0),
            failures: AtomicU32::new(1),
            successes: AtomicU32::new(1),
            retry_ms: AtomicU64::new(0),
            replica_lag_secs: AtomicU64::new(
                crate::config::replicas::DEFAULT_MAX_REPLICA_LAG.as_secs(),
            ),
        };
        p.set(cfg);
        p
    }

    /// Sets the largest replication lag of a readable replica.
    pub fn set_replica_lag(&self, lag: Duration) {
        self.replica_lag_secs
            .store(lag.as_secs(), Ordering::Relaxed);
    }

    /// The largest replication lag of a readable replica, in whole seconds.
    pub fn replica_lag_secs(&self) -> u64 {
        self.replica_lag_secs.load(Ordering::Relaxed)
    }

    /// Applies new config values.
    pub fn set(&self, cfg: &crate::config::HealthConfig) {
        self.interval_ms
            .store(cfg.interval.as_millis() as u64, Ordering::Relaxed);
        self.timeout_ms
            .store(cfg.timeout.as_millis() as u64, Ordering::Relaxed);
        self.failures.store(cfg.failures.max(1), Ordering::Relaxed);
        self.successes
            .store(cfg.successes.max(1), Ordering::Relaxed);
        let retry = cfg.retry_timeout.map_or(0, |d| d.as_millis().max(1) as u64);
        self.retry_ms.store(retry, Ordering::Relaxed);
    }

    /// nutcracker's `server_retry_timeout`: a down node is put back after this long
    /// even if checks have not passed (live traffic ejects it again if still dead).
    fn retry(&self) -> Option<Duration> {
        match self.retry_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed).max(1))
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed).max(1))
    }

    fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    fn successes(&self) -> u32 {
        self.successes.load(Ordering::Relaxed)
    }
}

/// Health of one node, read on the hot path with one relaxed load.
#[derive(Debug)]
pub struct NodeHealth {
    name: Arc<str>,
    down: AtomicBool,
    passive_failures: AtomicU32,
    transitions: AtomicU64,
    policy: Arc<HealthPolicy>,
    changed: Arc<Notify>,
    metrics: Option<NodeMetrics>,
}

impl NodeHealth {
    /// Health for node `name`; `changed` is notified on every transition.
    /// `metrics` (if any) get the node's up gauge and transition count.
    pub fn new(
        name: Arc<str>,
        policy: Arc<HealthPolicy>,
        changed: Arc<Notify>,
        metrics: Option<NodeMetrics>,
    ) -> NodeHealth {
        NodeHealth {
            name,
            down: AtomicBool::new(false),
            passive_failures: AtomicU32::new(0),
            transitions: AtomicU64::new(0),
            policy,
            changed,
            metrics,
        }
    }

    /// True when the node is marked down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Number of up/down transitions so far.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// Marks the node down (true) or up (false); logs and notifies on a change.
    pub fn set_down(&self, down: bool, why: &'static str) -> bool {
        let changed = self.down.swap(down, Ordering::AcqRel) != down;
        if changed {
            self.transitions.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                m.health_changed(!down);
            }
            self.passive_failures.store(0, Ordering::Relaxed);
            if down {
                tracing::warn!(node = %self.name, reason = why, "node marked DOWN");
            } else {
                tracing::info!(node = %self.name, reason = why, "node marked UP");
            }
            self.changed.notify_one();
        }
        changed
    }

    /// Live traffic got a good reply.
    pub fn report_ok(&self) {
        if self.passive_failures.load(Ordering::Relaxed) != 0 {
            self.passive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Live traffic saw a failure; enough in a row mark the node down.
    pub fn report_failure(&self) {
        let n = self.passive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.policy.failures() && !self.is_down() {
            self.set_down(true, "consecutive failures on live traffic");
        }
    }
}

/// True for replies that say the node cannot serve right now.
pub fn is_unavailable_reply(reply: &[u8]) -> bool {
    reply.starts_with(b"-LOADING")
        || reply.starts_with(b"-BUSY ")
        || reply.starts_with(b"-MASTERDOWN")
}

/// The pure up/down state machine of the active checker.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Machine {
    fails: u32,
    oks: u32,
}

/// A decision of the [`Machine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Mark the node down.
    Down,
    /// Mark the node up.
    Up,
    /// No change.
    Stay,
}

impl Machine {
    /// Records one check result for a node currently `down`.
    pub fn observe(&mut self, ok: bool, down: bool, failures: u32, successes: u32) -> Verdict {
        if ok {
            self.fails = 0;
            self.oks = self.oks.saturating_add(1);
            if down && self.oks >= successes {
                return Verdict::Up;
            }
        } else {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            if !down && self.fails >= failures {
                return Verdict::Down;
            }
        }
        Verdict::Stay
    }
}

/// PINGs `addr` every interval until `health`'s owner is dropped; a new checker
/// connection first sends `login` (the pool's AUTH, see [`super::handshake`]).
pub async fn check_loop(
    addr: NodeAddr,
    login: Vec<Bytes>,
    health: Weak<NodeHealth>,
    policy: Arc<HealthPolicy>,
    tls: Option<Arc<BackendTls>>,
    probe: Probe,
) {
    let tls = tls.as_deref();
    let mut machine = Machine::default();
    let mut conn: Option<BackendStream> = None;
    let mut down_since: Option<tokio::time::Instant> = None;
    // A replica is checked at once: it is read from only once a check found it in sync.
    let mut first = matches!(probe, Probe::Replica(_));
    loop {
        if !std::mem::take(&mut first) {
            tokio::time::sleep(policy.interval()).await;
        }
        let Some(h) = health.upgrade() else { return };
        down_since = h
            .is_down()
            .then(|| down_since.unwrap_or_else(tokio::time::Instant::now));
        let retry_due = match (down_since, policy.retry()) {
            (Some(since), Some(retry)) => since.elapsed() >= retry,
            _ => false,
        };
        if retry_due {
            machine = Machine::default();
            h.set_down(false, "retry timeout elapsed");
            continue;
        }
        let check = Check {
            addr: &addr,
            login: &login,
            timeout: policy.timeout(),
            tls,
            probe: &probe,
            lag: policy.replica_lag_secs(),
        };
        let ok = check.run(&mut conn).await;
        if !ok {
            conn = None;
            probe.failed();
        }
        match machine.observe(ok, h.is_down(), policy.failures(), policy.successes()) {
            Verdict::Down => {
                h.set_down(true, "health check failed");
            }
            Verdict::Up => {
                h.set_down(false, "health check passed");
            }
            Verdict::Stay => {}
        }
    }
}

/// One health check: what to ask, where, how long it may take.
struct Check<'a> {
    addr: &'a NodeAddr,
    login: &'a [Bytes],
    timeout: Duration,
    tls: Option<&'a BackendTls>,
    probe: &'a Probe,
    lag: u64,
}

impl Check<'_> {
    /// One probe on the checker's own connection (opened if needed), within the
    /// timeout. A kept connection the server closed (idle timeout, CLIENT KILL) is
    /// not a failed check: it is replaced and the probe tried again at once, within
    /// the same timeout.
    async fn run(&self, conn: &mut Option<BackendStream>) -> bool {
        let fut = async {
            let reused = conn.is_some();
            match self.once(conn).await {
                Some(ok) => Some(ok),
                None if reused => {
                    *conn = None;
                    self.once(conn).await
                }
                None => None,
            }
        };
        matches!(
            tokio::time::timeout(self.timeout, fut).await,
            Ok(Some(true))
        )
    }

    async fn once(&self, conn: &mut Option<BackendStream>) -> Option<bool> {
        if conn.is_none() {
            let mut s = connect(self.addr, self.timeout, self.tls).await.ok()?;
            let logged_in = match &mut s {
                BackendStream::Tcp(t) => handshake::run(t, self.login, self.timeout).await,
                BackendStream::Unix(u) => handshake::run(u, self.login, self.timeout).await,
                BackendStream::Tls(t) => handshake::run(&mut **t, self.login, self.timeout).await,
            };
            logged_in.ok()?;
            *conn = Some(s);
        }
        let reply = match conn.as_mut()? {
            BackendStream::Tcp(s) => ask(s, self.probe.request()).await,
            BackendStream::Unix(s) => ask(s, self.probe.request()).await,
            BackendStream::Tls(s) => ask(s, self.probe.request()).await,
        }?;
        Some(self.probe.judge(&reply, self.lag))
    }
}

/// Largest health-check reply read (INFO replication is well under it).
const MAX_PROBE_REPLY: usize = 64 << 10;

/// Sends `request` and reads one reply (`None`: closed, or too large).
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, request: &[u8]) -> Option<BytesMut> {
    s.write_all(request).await.ok()?;
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if s.read_buf(&mut buf).await.ok()? == 0 || buf.len() > MAX_PROBE_REPLY {
            return None;
        }
        if let Ok(Some(n)) = reply_len(&buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_only_after_thresholds() {
        let mut m = Machine::default();
        assert_eq!(m.observe(false, false, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(false, false, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(true, false, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(false, false, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(false, false, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(false, false, 3, 2), Verdict::Down);
        assert_eq!(m.observe(true, true, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(false, true, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(true, true, 3, 2), Verdict::Stay);
        assert_eq!(m.observe(true, true, 3, 2), Verdict::Up);
    }

    #[test]
    fn passive_failures_mark_down_and_successes_reset() {
        let cfg = crate::config::HealthConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            failures: 3,
            successes: 1,
            eject: false,
            max_ejected_percent: 50,
            retry_timeout: None,
        };
        let notify = Arc::new(Notify::new());
        let h = NodeHealth::new("n".into(), Arc::new(HealthPolicy::new(&cfg)), notify, None);
        h.report_failure();
        h.report_failure();
        h.report_ok();
        h.report_failure();
        h.report_failure();
        assert!(!h.is_down());
        h.report_failure();
        assert!(h.is_down());
        assert_eq!(h.transitions(), 1);
        assert!(is_unavailable_reply(b"-BUSY Redis is busy\r\n"));
        assert!(!is_unavailable_reply(
            b"-BUSYKEY Target key name already exists.\r\n"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn checker_marks_unreachable_node_down() {
        let cfg = crate::config::HealthConfig {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(50),
            failures: 2,
            successes: 1,
            eject: false,
            max_ejected_percent: 50,
            retry_timeout: None,
        };
        let policy = Arc::new(HealthPolicy::new(&cfg));
        let h = Arc::new(NodeHealth::new(
            "n".into(),
            policy.clone(),
            Arc::new(Notify::new()),
            None,
        ));
        // A unix socket path that does not exist: connect fails at once.
        let addr = NodeAddr::Unix("/nonexistent/ringproxy-test.sock".into());
        tokio::spawn(check_loop(
            addr,
            Vec::new(),
            Arc::downgrade(&h),
            policy,
            None,
            Probe::Ping,
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!h.is_down());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(h.is_down());
    }
}
