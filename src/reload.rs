//! Hot reload of the topology: triggers (file change, SIGHUP, `POST /reload`) and
//! the apply step.
//!
//! A reload parses and validates the whole file first; a bad file changes nothing
//! (the running topology stays, the error is logged with its line and counted). A
//! good one is applied pool by pool: timeouts, health policy and limits change in
//! place; a new topology is built that reuses every unchanged node (same
//! connections, same health) and is swapped in with one store; nodes it adds get
//! the pool's scripts and functions replayed first ([`crate::backend::replay`]), so
//! EVALSHA and FCALL work on their keys from the first request. Settings that cannot
//! change live (listen addresses, admin, workers, logging, the set of pools) are
//! reported as needing a restart while the rest still applies.

use crate::app::Proxy;
use crate::backend::Node;
use crate::backend::replay::replay_on_nodes;
use crate::config::{self, Config, PoolConfig};
use crate::metrics::ReloadResult;
use crate::topology::Topology;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the config file is checked for a change.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// A changed file must stay unchanged this long before it is read (editors and
/// ConfigMap updates write in several steps).
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// Hash of a config file's text (shown in logs, metrics and /topology).
pub fn text_hash(text: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(text.as_bytes());
    h.finish()
}

/// Starts the reload triggers: SIGHUP and the file watcher (when there is a file).
pub fn spawn_triggers(proxy: &Arc<Proxy>, shutdown: &CancellationToken) {
    let Some(path) = proxy.config_path.clone() else {
        return;
    };
    tokio::spawn(sighup_loop(Arc::downgrade(proxy), shutdown.clone()));
    tokio::spawn(watch_loop(path, Arc::downgrade(proxy), shutdown.clone()));
}

async fn sighup_loop(proxy: std::sync::Weak<Proxy>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup.recv() => {}
        }
        let Some(p) = proxy.upgrade() else { return };
        let _ = p.reload("SIGHUP").await;
    }
}

/// What identifies a version of the file: through symlinks (a Kubernetes ConfigMap
/// swaps a symlink), so a rename or a new target is seen as well as an edit.
fn stamp(path: &Path) -> Option<(u64, u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

async fn watch_loop(path: PathBuf, proxy: std::sync::Weak<Proxy>, shutdown: CancellationToken) {
    let mut seen = stamp(&path);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        let now = stamp(&path);
        if now == seen || now.is_none() {
            continue;
        }
        // Debounce: wait until the file stops changing.
        let mut settled = now;
        loop {
            tokio::time::sleep(WATCH_DEBOUNCE).await;
            let again = stamp(&path);
            if again == settled {
                break;
            }
            settled = again;
        }
        seen = settled;
        let Some(p) = proxy.upgrade() else { return };
        let _ = p.reload("file change").await;
    }
}

impl Proxy {
    /// Reloads the config file. `Ok` tells what happened (applied or unchanged,
    /// with any setting that needs a restart); `Err` tells why nothing changed.
    pub async fn reload(&self, trigger: &str) -> Result<String, String> {
        let Some(path) = &self.config_path else {
            return Err("the proxy was started without a config file".into());
        };
        let mut applied = self.applied.lock().await;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return self.failed(trigger, format!("cannot read {}: {e}", path.display())),
        };
        let hash = text_hash(&text);
        // Parsed even when the text is unchanged: password files it names are read
        // again, and a rotated secret is a change.
        let mut new = match config::check(&text) {
            Ok((c, _notes)) => c,
            Err(problems) => {
                let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return self.failed(trigger, format!("{}: {}", path.display(), lines.join("; ")));
            }
        };
        if let Some(a) = &self.admin_override {
            new.admin = a.clone();
        }
        if hash == applied.1 && new == applied.0 {
            self.metrics.reloaded(ReloadResult::Unchanged);
            tracing::info!(trigger, hash = format!("{hash:016x}"), "config unchanged");
            return Ok("config unchanged".into());
        }
        let restart = needs_restart(&applied.0, &new);
        let mut versions = Vec::new();
        for pool in &self.pools {
            if let Some(cfg) = new.pools.iter().find(|p| p.name == pool.ctx.name) {
                versions.push(self.apply_pool(pool, cfg).await);
            }
        }
        self.metrics.reloaded(ReloadResult::Ok);
        self.metrics.set_config_hash(&format!("{hash:016x}"));
        *applied = (new, hash);
        self.config_hash.store(hash, Ordering::Relaxed);
        let msg = applied_message(hash, &versions, &restart);
        tracing::info!(trigger, hash = format!("{hash:016x}"), versions = ?versions, restart_needed = ?restart, "config applied");
        Ok(msg)
    }

    fn failed(&self, trigger: &str, why: String) -> Result<String, String> {
        self.metrics.reloaded(ReloadResult::Failed);
        tracing::error!(trigger, error = %why, "config reload rejected; the running topology stays");
        Err(why)
    }

    /// Applies what the sentinels now say of pool `pool`'s nodes to its running
    /// config (see [`crate::sentinel`]).
    pub async fn rediscovered(&self, pool: usize) {
        let applied = self.applied.lock().await;
        let p = &self.pools[pool];
        if let Some(cfg) = applied.0.pools.iter().find(|c| c.name == p.ctx.name) {
            let version = self.apply_pool(p, cfg).await;
            tracing::info!(pool = %p.ctx.name, version, "topology follows the sentinels");
        }
    }

    /// Applies one pool's new config (with what the sentinels say of its sentinel
    /// nodes); returns its new topology version.
    async fn apply_pool(&self, pool: &crate::app::RunningPool, cfg: &PoolConfig) -> u64 {
        if pool.discovery.configure(cfg) {
            // New sentinels or masters: asked now, so their nodes start with a primary.
            let t = &pool.shared.timeouts;
            crate::sentinel::first_answers(&pool.discovery, t.connect(), t.request()).await;
        }
        let cfg = &pool.discovery.effective(cfg);
        pool.shared.policy.set_replica_lag(cfg.max_replica_lag);
        let ctx = &pool.ctx;
        pool.shared
            .timeouts
            .set(cfg.connect_timeout, cfg.request_timeout);
        pool.shared.policy.set(&cfg.health);
        ctx.max_clients.store(cfg.max_clients, Ordering::Relaxed);
        let _writer = ctx.writer.lock().await;
        let old = ctx.router.load_full();
        if ctx.cluster.is_some() != cfg.cluster.is_some() {
            // Reported by needs_restart; the running mode and topology stay.
            return old.version;
        }
        let topo = match &ctx.cluster {
            Some(c) => c.topology(cfg, &pool.shared, &old.nodes, old.version + 1),
            None => {
                let mut t = Topology::build(cfg, &pool.shared, &old.all_nodes(), old.version + 1);
                t.warm = Arc::new(crate::warmup::Chain::after(&old, &t));
                t
            }
        };
        let version = topo.version;
        install(ctx, &self.metrics, &old, topo, "reload").await;
        ctx.metrics.topology_version.set(version as i64);
        version
    }
}

/// Swaps `topo` in for `old` (the caller holds `ctx.writer`): nodes it adds get
/// the pool's scripts and functions first, and the series of nodes it drops go.
pub async fn install(
    ctx: &crate::server::PoolContext,
    metrics: &crate::metrics::Metrics,
    old: &Topology,
    topo: Topology,
    why: &str,
) {
    let (old_all, new_all) = (old.all_nodes(), topo.all_nodes());
    let added = added_nodes(&old.nodes, &topo.nodes);
    // Scripts and functions reach the new nodes before they take traffic; what
    // is recorded meanwhile (sent with the old topology) follows right after.
    let (seq, frames) = ctx.replay.snapshot();
    replay_on_nodes(frames, &added, why).await;
    ctx.switch(topo).await;
    replay_on_nodes(ctx.replay.since(seq).1, &added, why).await;
    // A node's series go with its name (primaries and replicas alike).
    for o in &old_all {
        if !new_all.iter().any(|n| n.name == o.name) {
            metrics.remove_node(&ctx.name, &o.name);
        }
    }
}

/// The nodes of `new` that are not nodes of `old` (new connections, new health).
fn added_nodes(old: &[Arc<Node>], new: &[Arc<Node>]) -> Vec<Arc<Node>> {
    new.iter()
        .filter(|n| !old.iter().any(|o| Arc::ptr_eq(n, o)))
        .cloned()
        .collect()
}

fn applied_message(hash: u64, versions: &[u64], restart: &[String]) -> String {
    let mut msg = format!("config {hash:016x} applied (topology versions {versions:?})");
    if !restart.is_empty() {
        msg.push_str("; needs a restart to take effect: ");
        msg.push_str(&restart.join(", "));
    }
    msg
}

/// Settings that differ between `old` and `new` but cannot change live.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.admin != new.admin {
        out.push("admin".to_string());
    }
    if old.workers != new.workers {
        out.push("workers".to_string());
    }
    if old.log_json != new.log_json || old.log_level != new.log_level {
        out.push("log".to_string());
    }
    for p in &new.pools {
        match old.pools.iter().find(|o| o.name == p.name) {
            Some(o) => {
                if o.listen != p.listen {
                    out.push(format!("pool {} listen", p.name));
                }
                // New contents of the same files are picked up live (rotation); other
                // files, or TLS switched on or off, need a restart.
                if o.tls != p.tls {
                    out.push(format!("pool {} tls", p.name));
                }
                if o.cluster.is_some() != p.cluster.is_some() {
                    out.push(format!(
                        "pool {} cluster (nodes and cluster swapped)",
                        p.name
                    ));
                }
            }
            None => out.push(format!("new pool {}", p.name)),
        }
    }
    for o in &old.pools {
        if !new.pools.iter().any(|p| p.name == o.name) {
            out.push(format!("removed pool {}", o.name));
        }
    }
    out
}
