//! Redis Sentinel discovery: the primaries and replicas of the pool's `sentinel:`
//! nodes, followed through failovers.
//!
//! ```text
//! watch.rs   one subscription per sentinel (+switch-master, +sdown/-sdown, ...) ─┐
//! run.rs     the loop: ask the sentinels in turn (the first that answers goes     │ events
//!            first next time), every `sentinel.refresh` and on every event  ◄─────┘
//!               │ Discovery::update (a changed primary is a failover: logged once, counted)
//!               ▼
//! Discovery  what the sentinels said, per master; `effective()` fills a pool config's
//!            sentinel nodes with it; `changed()` wakes the applier, which builds and
//!            swaps in a topology the way a reload does (unchanged nodes keep their
//!            connections; a new primary is a new node; the old one's connections close)
//! ```
//!
//! A primary is trusted only as far as it says so: the connections and checks of
//! a replicated shard's primary require `ROLE` master (see [`crate::backend::probe`]).

pub mod client;
pub mod query;
mod run;
mod watch;

pub use run::{first_answers, run};

use crate::config::replicas::SentinelConfig;
use crate::config::{NodeAddr, PoolConfig};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// What the sentinels say of one master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shard {
    /// The primary (`None`: not known yet).
    pub primary: Option<NodeAddr>,
    /// Replicas the sentinels see healthy.
    pub replicas: Vec<NodeAddr>,
    /// The sentinels' configuration epoch of this master: every failover raises
    /// it, so an answer with a lower one (a sentinel that has not heard of the
    /// failover yet) is older than what is known, and ignored.
    pub epoch: u64,
}

/// The sentinels to ask and the masters to ask them about.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    /// The pool's `sentinel:` section.
    pub sentinel: SentinelConfig,
    /// (master name, node name) of every sentinel node.
    pub masters: Vec<(String, String)>,
}

/// One pool's discovery state, shared by the loop, the applier and reloads.
#[derive(Debug)]
pub struct Discovery {
    pool: Arc<str>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    changed: Notify,
    reconfigured: Notify,
}

#[derive(Debug, Default)]
struct State {
    watched: Option<Watched>,
    shards: HashMap<String, Shard>,
}

impl Discovery {
    /// Discovery for `cfg` (nothing is asked until [`run`] runs).
    pub fn new(cfg: &PoolConfig, metrics: Arc<Metrics>) -> Arc<Discovery> {
        let d = Discovery {
            pool: cfg.name.as_str().into(),
            metrics,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            reconfigured: Notify::new(),
        };
        d.configure(cfg);
        Arc::new(d)
    }

    /// Takes a (re)loaded pool config: the loop restarts when the sentinels or the
    /// masters changed (then true). Masters no longer named are forgotten.
    pub fn configure(&self, cfg: &PoolConfig) -> bool {
        let masters: Vec<(String, String)> = cfg
            .nodes
            .iter()
            .filter_map(|n| Some((n.sentinel.clone()?, n.name.clone())))
            .collect();
        let watched = cfg
            .sentinel
            .clone()
            .and_then(|sentinel| (!masters.is_empty()).then_some(Watched { sentinel, masters }));
        let mut st = self.lock();
        if st.watched == watched {
            return false;
        }
        if let Some(w) = &watched {
            st.shards
                .retain(|m, _| w.masters.iter().any(|(n, _)| n == m));
        }
        st.watched = watched;
        drop(st);
        self.reconfigured.notify_one();
        true
    }

    /// What to watch now.
    pub fn watched(&self) -> Option<Watched> {
        self.lock().watched.clone()
    }

    /// `cfg` with every sentinel node's primary and replicas as last discovered
    /// (a master not answered yet keeps its unresolved address: its node is down).
    pub fn effective(&self, cfg: &PoolConfig) -> PoolConfig {
        let st = self.lock();
        let mut out = cfg.clone();
        for n in &mut out.nodes {
            let Some(shard) = n.sentinel.as_ref().and_then(|m| st.shards.get(m)) else {
                continue;
            };
            if let Some(p) = &shard.primary {
                n.addr = p.clone();
            }
            n.replicas = shard.replicas.clone();
        }
        out
    }

    /// Records what the sentinels said of `master`; wakes the applier when it
    /// changes. A new primary is a failover: logged and counted once.
    pub fn update(&self, master: &str, shard: Shard) {
        let mut st = self.lock();
        let Some(node) = st.watched.as_ref().and_then(|w| node_of(w, master)) else {
            return;
        };
        let old = st.shards.get(master);
        if old == Some(&shard) || old.is_some_and(|o| shard.epoch < o.epoch) {
            return;
        }
        let from = old.and_then(|o| o.primary.clone());
        if let (Some(from), Some(to)) = (&from, &shard.primary)
            && from != to
        {
            tracing::warn!(pool = %self.pool, node = %node, master, from = ?from, to = ?to, "failover: new primary");
            self.metrics.failover(&self.pool, &node);
        }
        st.shards.insert(master.to_string(), shard);
        drop(st);
        self.changed.notify_one();
    }

    /// A new primary announced for `master` (`+switch-master`): applied at once,
    /// the replicas kept until the next full answer. The announcement carries no
    /// epoch; a failover raises it by at least one, so answers at the old epoch
    /// (from sentinels that have not heard of it yet) are ignored from now on.
    pub fn switch(&self, master: &str, primary: NodeAddr) {
        let mut shard = self.lock().shards.get(master).cloned().unwrap_or_default();
        if shard.primary.as_ref() == Some(&primary) {
            return;
        }
        shard.replicas.retain(|r| *r != primary);
        shard.primary = Some(primary);
        shard.epoch += 1;
        self.update(master, shard);
    }

    /// Waits until what the sentinels say changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Waits until the config of what to watch changes.
    async fn reconfigured(&self) {
        self.reconfigured.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn node_of(w: &Watched, master: &str) -> Option<String> {
    w.masters
        .iter()
        .find(|(m, _)| m == master)
        .map(|(_, n)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> PoolConfig {
        let text = "listen: 127.0.0.1:6380
sentinel: {addrs: [127.0.0.1:26379]}
nodes:
  - name: a
    sentinel: m0
  - name: b
    addr: 127.0.0.1:7002
";
        crate::config::parse(text).expect("valid").pools.remove(0)
    }

    fn tcp(s: &str) -> NodeAddr {
        NodeAddr::Tcp(s.into())
    }

    #[test]
    fn effective_config_follows_the_sentinels_and_counts_failovers() {
        let metrics = Metrics::new();
        let d = Discovery::new(&pool(), metrics.clone());
        let cfg = d.effective(&pool());
        assert_eq!(
            cfg.nodes[0].addr,
            NodeAddr::Sentinel("m0".into()),
            "unknown yet"
        );
        let first = Shard {
            primary: Some(tcp("127.0.0.1:7001")),
            replicas: vec![tcp("127.0.0.1:7011")],
            epoch: 4,
        };
        d.update("m0", first);
        d.update("nobody", Shard::default());
        let cfg = d.effective(&pool());
        assert_eq!(cfg.nodes[0].addr, tcp("127.0.0.1:7001"));
        assert_eq!(cfg.nodes[0].replicas, vec![tcp("127.0.0.1:7011")]);
        assert_eq!(
            cfg.nodes[1].addr,
            tcp("127.0.0.1:7002"),
            "static nodes untouched"
        );
        assert!(!metrics.render().contains("ringproxy_failovers_total{"));
        d.switch("m0", tcp("127.0.0.1:7011"));
        d.switch("m0", tcp("127.0.0.1:7011"));
        let cfg = d.effective(&pool());
        assert_eq!(cfg.nodes[0].addr, tcp("127.0.0.1:7011"));
        assert!(
            cfg.nodes[0].replicas.is_empty(),
            "the promoted replica left the list"
        );
        let text = metrics.render();
        assert!(
            text.contains(r#"ringproxy_failovers_total{node="a",pool="default"} 1"#),
            "one failover, counted once: {text}"
        );
    }
}
