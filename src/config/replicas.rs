//! Replicated shards: the per-node `replicas:` and `sentinel:` fields, the pool's
//! `sentinel:` block, `read_from:` and `max_replica_lag:`.
//!
//! A node is a shard: its `name` (what the ring hashes) never changes, while its
//! primary and replicas may be static addresses or discovered from Redis Sentinel.

use super::checks::{self as ck, Report};
use super::locate::Seg::{Item, Key};
use super::password::Password;
use super::schema::{BackendTlsFile, FileConfig, NodeFile};
use super::validated::NodeAddr;
use serde::Deserialize;
use std::time::Duration;

/// Default interval between full re-checks of every master with the sentinels.
pub const DEFAULT_SENTINEL_REFRESH: Duration = Duration::from_secs(5);
/// Smallest sentinel refresh interval.
pub const MIN_SENTINEL_REFRESH: Duration = Duration::from_millis(100);
/// Largest sentinel refresh interval.
pub const MAX_SENTINEL_REFRESH: Duration = Duration::from_secs(3600);
/// Default largest replication lag of a replica that is read from. Above Redis's
/// default `repl-ping-replica-period` (10 s), so an idle primary does not make its
/// replicas look late.
pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(30);
/// Most sentinels per pool.
pub const MAX_SENTINELS: usize = 64;

/// `sentinel:` section: the sentinels that supervise the pool's `sentinel:` nodes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SentinelFile {
    /// Sentinel addresses (`host:port`), asked in order. Required, at least one.
    pub addrs: Vec<String>,
    /// User for AUTH on sentinel connections (needs a password). Default none.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for AUTH on sentinel connections. Default none.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding that password instead, re-read on every reload. Default none.
    #[serde(default)]
    pub password_file: Option<String>,
    /// TLS to the sentinels (same fields as `backend.tls`). Default none.
    #[serde(default)]
    pub tls: Option<BackendTlsFile>,
    /// Time between full re-checks of every master, in case an announcement was
    /// missed. 100ms..=1h. Default 5s.
    #[serde(default = "default_refresh", with = "super::duration")]
    pub refresh: Duration,
}

fn default_refresh() -> Duration {
    DEFAULT_SENTINEL_REFRESH
}

/// Where read-only commands go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// Every command to the shard's primary (default).
    #[default]
    Primary,
    /// Read-only commands to a readable replica of the shard, else the primary.
    PreferReplica,
    /// Read-only commands to a readable replica only; an error when none is.
    Replica,
}

/// The validated `sentinel:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct SentinelConfig {
    /// Sentinel addresses in file order.
    pub addrs: Vec<NodeAddr>,
    /// AUTH user.
    pub username: Option<String>,
    /// AUTH password.
    pub password: Option<Password>,
    /// TLS to the sentinels.
    pub tls: Option<BackendTlsFile>,
    /// Full re-check interval.
    pub refresh: Duration,
}

/// `sentinel:`: addresses, credentials and TLS; required when a node names a master.
pub(super) fn sentinel(r: &mut Report, f: &FileConfig) -> Option<SentinelConfig> {
    let uses = f.nodes.iter().any(|n| n.sentinel.is_some());
    let Some(s) = &f.sentinel else {
        if uses {
            r.problem(&[Key("sentinel")], "required when a node has `sentinel:`");
        }
        return None;
    };
    let at = |k| [Key("sentinel"), Key(k)];
    if s.addrs.is_empty() || s.addrs.len() > MAX_SENTINELS {
        r.problem(
            &at("addrs"),
            format!("give 1..={MAX_SENTINELS} sentinel addresses"),
        );
    }
    let addrs = s
        .addrs
        .iter()
        .enumerate()
        .filter_map(|(i, a)| r.check(&[Key("sentinel"), Key("addrs"), Item(i)], ck::node_addr(a)))
        .collect();
    let refresh = super::validate::dur(
        r,
        &at("refresh"),
        s.refresh,
        MIN_SENTINEL_REFRESH,
        MAX_SENTINEL_REFRESH,
    );
    let login = super::users::Login {
        section: "sentinel",
        username: &s.username,
        password: &s.password,
        password_file: &s.password_file,
    };
    if !uses {
        r.note(
            &[Key("sentinel")],
            "no node has `sentinel:`; the sentinels are not used",
        );
    }
    Some(SentinelConfig {
        addrs,
        username: super::users::login_username(r, &login),
        password: super::users::login_password(r, &login).map(Password::from),
        tls: super::tls_check::client(r, "sentinel", s.tls.as_ref()),
        refresh,
    })
}

/// `max_replica_lag`: more than 0, at most 1h.
pub(super) fn max_lag(r: &mut Report, f: &FileConfig) -> Duration {
    super::validate::dur(
        r,
        &[Key("max_replica_lag")],
        f.max_replica_lag,
        Duration::ZERO,
        super::validate::MAX_REQUEST,
    )
}

/// The node's static replicas; checks the node's address fields fit together.
pub(super) fn node_replicas(r: &mut Report, i: usize, n: &NodeFile) -> Vec<NodeAddr> {
    let at = |k| [Key("nodes"), Item(i), Key(k)];
    match (&n.addr, &n.sentinel) {
        (Some(_), Some(_)) => r.problem(&at("sentinel"), "give addr or sentinel, not both"),
        (None, None) => r.problem(&[Key("nodes"), Item(i)], "addr (or sentinel) is required"),
        (None, Some(m)) => {
            if m.is_empty() || m.contains(|c: char| c.is_whitespace()) {
                r.problem(
                    &at("sentinel"),
                    "must be a master name, non-empty, without spaces",
                );
            }
            if !n.replicas.is_empty() {
                r.problem(
                    &at("replicas"),
                    "the replicas of a sentinel node are discovered, not listed",
                );
            }
        }
        (Some(_), None) => {}
    }
    n.replicas
        .iter()
        .enumerate()
        .filter_map(|(j, a)| {
            let p = [Key("nodes"), Item(i), Key("replicas"), Item(j)];
            let addr = r.check(&p, ck::node_addr(a))?;
            if n.addr.as_deref() == Some(a.as_str()) {
                r.problem(&p, "is the node's own addr");
            }
            Some(addr)
        })
        .collect()
}

/// `read_from` other than primary needs a node with replicas to mean anything.
pub(super) fn read_from(r: &mut Report, f: &FileConfig) -> ReadFrom {
    let replicated = f
        .nodes
        .iter()
        .any(|n| n.sentinel.is_some() || !n.replicas.is_empty());
    if f.read_from != ReadFrom::Primary && !replicated && f.cluster.is_none() {
        r.note(
            &[Key("read_from")],
            "no node has replicas; every read goes to the primaries",
        );
    }
    f.read_from
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
