//! What a node's health check asks, by the node's role, and what the answer means.
//!
//! - A node without replicas answers `PING` with `+PONG`.
//! - The primary of a replicated shard answers `ROLE` with `master`: a demoted one
//!   (failed over, back after a partition) fails its checks and takes no writes.
//! - A replica answers `INFO replication`; it is up when it answers and readable
//!   while its link to the primary is up, not syncing, and not silent longer than
//!   `max_replica_lag`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A health check by role.
#[derive(Debug, Clone)]
pub enum Probe {
    /// `PING`.
    Ping,
    /// `ROLE`, which must say `master`.
    Master,
    /// `INFO replication`, which also sets the replica's readability.
    Replica(Arc<ReplicaLink>),
}

/// Whether a replica may be read from, as its last check found.
#[derive(Debug, Default)]
pub struct ReplicaLink {
    readable: AtomicBool,
}

impl ReplicaLink {
    /// The last check found the replica in sync with its primary.
    pub fn readable(&self) -> bool {
        self.readable.load(Ordering::Relaxed)
    }

    fn set(&self, readable: bool) {
        self.readable.store(readable, Ordering::Relaxed);
    }
}

impl Probe {
    /// The request, encoded.
    pub fn request(&self) -> &'static [u8] {
        match self {
            Probe::Ping => b"*1\r\n$4\r\nPING\r\n",
            Probe::Master => super::handshake::ROLE,
            Probe::Replica(_) => b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n",
        }
    }

    /// Whether `reply` is a passed check; a replica's readability is recorded.
    pub fn judge(&self, reply: &[u8], max_lag_secs: u64) -> bool {
        match self {
            Probe::Ping => reply == b"+PONG\r\n",
            Probe::Master => super::handshake::is_master_role(reply),
            Probe::Replica(link) => match crate::command::merge::info::bulk_text(reply) {
                Some(text) => {
                    link.set(in_sync(&text, max_lag_secs));
                    true
                }
                None => {
                    link.set(false);
                    false
                }
            },
        }
    }

    /// A failed check: a replica that cannot be reached is not readable.
    pub fn failed(&self) {
        if let Probe::Replica(link) = self {
            link.set(false);
        }
    }
}

/// Whether an `INFO replication` text is a replica in sync within `max_lag_secs`.
pub fn in_sync(info: &str, max_lag_secs: u64) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let silent = field("master_last_io_seconds_ago").and_then(|s| s.parse::<i64>().ok());
    field("role") == Some("slave")
        && field("master_link_status") == Some("up")
        && field("master_sync_in_progress") != Some("1")
        && silent.is_some_and(|s| (0..=max_lag_secs as i64).contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYNCED: &str = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_link_status:up\r\nmaster_last_io_seconds_ago:2\r\nmaster_sync_in_progress:0\r\n";

    #[test]
    fn replica_in_sync_only_with_an_up_recent_link() {
        assert!(in_sync(SYNCED, 10));
        assert!(!in_sync(SYNCED, 1), "silent longer than the lag");
        assert!(!in_sync(
            &SYNCED.replace("link_status:up", "link_status:down"),
            10
        ));
        assert!(!in_sync(&SYNCED.replace("progress:0", "progress:1"), 10));
        assert!(!in_sync(&SYNCED.replace("role:slave", "role:master"), 10));
        assert!(!in_sync(&SYNCED.replace("ago:2", "ago:-1"), 10));
    }

    #[test]
    fn master_role_and_replica_reply() {
        let master = b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";
        let slave = b"*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:1\r\n";
        assert!(Probe::Master.judge(master, 10));
        assert!(!Probe::Master.judge(slave, 10));
        assert!(!Probe::Master.judge(b"-ERR x\r\n", 10));
        let link = Arc::new(ReplicaLink::default());
        let p = Probe::Replica(link.clone());
        let bulk = format!("${}\r\n{SYNCED}\r\n", SYNCED.len());
        assert!(p.judge(bulk.as_bytes(), 10) && link.readable());
        assert!(!p.judge(b"-LOADING x\r\n", 10) && !link.readable());
    }
}
