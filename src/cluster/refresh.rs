//! The refresh task of a cluster pool: reads the slot map (from the known
//! primaries, then their replicas, then the seeds: the first that answers), and
//! when it changed builds a new topology and swaps it in the way a reload does
//! (under the pool's writer lock, unchanged nodes reused with their connections,
//! new nodes given the pool's scripts first).
//!
//! It runs every `cluster.refresh_interval` (every 200 ms while a primary is
//! down), and soon after anyone asks
//! ([`super::Cluster::request_refresh`]: a MOVED, an unreachable node,
//! CLUSTERDOWN). Asks coalesce: however many arrive, one read follows, and reads
//! are at least [`MIN_GAP`] apart.

use super::{Cluster, fetch, map::SlotMap};
use crate::backend::conn::ConnSpec;
use crate::backend::pool::PoolShared;
use crate::config::NodeAddr;
use crate::resp::Proto;
use crate::server::PoolContext;
use crate::topology::Topology;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Shortest time between two slot map reads.
pub const MIN_GAP: Duration = Duration::from_millis(100);
/// Time between attempts while no slot map was ever read (the proxy starts
/// before the cluster is reachable).
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// Time between reads while a primary is down.
const DOWN_RETRY: Duration = Duration::from_millis(200);

/// Runs until the pool is gone.
pub async fn run(ctx: Weak<PoolContext>, shared: PoolShared, cluster: Arc<Cluster>) {
    loop {
        let Some(c) = ctx.upgrade() else { return };
        let read = once(&c, &shared, &cluster).await;
        cluster.park.drain(&cluster);
        let interval = next_read(read, &cluster, &c.router.load());
        drop(c);
        tokio::time::sleep(MIN_GAP).await;
        tokio::select! {
            _ = cluster.wake.notified() => {}
            _ = tokio::time::sleep(interval.saturating_sub(MIN_GAP)) => {}
        }
    }
}

/// How long until the next read when nobody asks sooner: [`FIRST_RETRY`] while no
/// map was ever read, [`DOWN_RETRY`] while a primary is down (its replica may be
/// promoted any moment; requests to a down node are failed without asking the
/// node, so nothing else would ask), else `cluster.refresh_interval`.
fn next_read(read: bool, cluster: &Cluster, topo: &Topology) -> Duration {
    let every = topo
        .config
        .cluster
        .as_ref()
        .map_or(super::DEFAULT_REFRESH_INTERVAL, |cc| cc.refresh_interval);
    if !read && cluster.version() == 0 {
        FIRST_RETRY
    } else if topo.nodes.iter().any(|n| n.health.is_down()) {
        DOWN_RETRY.min(every)
    } else {
        every
    }
}

/// One read of the slot map; true when some node gave one.
async fn once(ctx: &PoolContext, shared: &PoolShared, cluster: &Cluster) -> bool {
    let topo = ctx.router.load_full();
    let cfg = &topo.config;
    let Some(cc) = &cfg.cluster else { return false };
    let tls = topo
        .nodes
        .iter()
        .find_map(|n| n.tls().cloned())
        .or_else(|| {
            let file = cfg.backend_tls.as_ref()?;
            Some(Arc::new(crate::tls::client::BackendTls::new(
                &cfg.name, file,
            )))
        });
    let deadline = cfg.connect_timeout + cfg.request_timeout;
    for addr in candidates(&cluster.map(), &cc.seeds) {
        let spec = ConnSpec {
            node: addr.as_str().into(),
            addr: NodeAddr::Tcp(addr.clone()),
            proto: Proto::Resp2,
            username: cfg.backend_username.clone(),
            password: cfg.backend_password.clone(),
            db: 0,
            dedicated: true,
            tls: tls.clone(),
            master_only: false,
            readonly: false,
        };
        match fetch::slot_map(&spec, deadline).await {
            Ok(m) => {
                apply(ctx, shared, cluster, m).await;
                return true;
            }
            Err(e) => {
                tracing::debug!(pool = %ctx.name, node = %addr, error = %e, "no slot map from node")
            }
        }
    }
    cluster.metrics.failed.inc();
    tracing::warn!(pool = %ctx.name, "no node gave a slot map; keeping the one in use");
    false
}

/// Where to read the map: primaries, replicas, then seeds, each once.
fn candidates(map: &SlotMap, seeds: &[NodeAddr]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let primaries = map.shards.iter().map(|s| s.primary.clone());
    let replicas = map.shards.iter().flat_map(|s| s.replicas.iter().cloned());
    let seeds = seeds.iter().map(crate::config::checks::addr_text);
    for a in primaries.chain(replicas).chain(seeds) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Swaps in a topology over `map` if it differs from the one in use.
async fn apply(ctx: &PoolContext, shared: &PoolShared, cluster: &Cluster, map: SlotMap) {
    if cluster.version() > 0 && *cluster.map() == map {
        cluster.metrics.unchanged.inc();
        return;
    }
    let _writer = ctx.writer.lock().await;
    let old = ctx.router.load_full();
    let topo: Topology = super::topology(&old.config, shared, &old.nodes, old.version, &map);
    let covered = map.covered();
    let primaries: Vec<String> = map
        .shards
        .iter()
        .map(|s| format!("{}({})", s.primary, s.ranges.len()))
        .collect();
    crate::reload::install(ctx, &shared.metrics, &old, topo, "slot map change").await;
    cluster.set_map(Arc::new(map));
    cluster.metrics.changed.inc();
    tracing::info!(pool = %ctx.name, version = cluster.version(), ?primaries, covered, "slot map applied");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::map::Shard;

    #[test]
    fn candidates_are_primaries_then_replicas_then_seeds_once_each() {
        let shard = |p: &str, r: &str| Shard {
            primary: p.into(),
            id: String::new(),
            ranges: vec![(0, 1)],
            replicas: vec![r.into()],
        };
        let map = SlotMap {
            shards: vec![shard("a:1", "b:1"), shard("c:1", "d:1")],
        };
        let seeds = [NodeAddr::Tcp("d:1".into()), NodeAddr::Tcp("e:1".into())];
        assert_eq!(
            candidates(&map, &seeds),
            ["a:1", "c:1", "b:1", "d:1", "e:1"]
        );
    }
}
