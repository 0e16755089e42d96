//! Composition root: bind listeners (all before serving), build topologies, spawn
//! the side tasks (health, ejection, reload triggers, admin), drain on SIGTERM.

use crate::backend::Node;
use crate::backend::conn::Timeouts;
use crate::backend::health::HealthPolicy;
use crate::backend::pool::PoolShared;
use crate::backend::replay::replay_on_nodes;
use crate::config::{Config, Listen, PoolConfig};
use crate::metrics::Metrics;
use crate::sentinel::Discovery;
use crate::server::PoolContext;
use crate::server::listener::{Listener, accept_loop};
use crate::tls::server::ServerTls;
use crate::topology::{Router, Topology};
use crate::workers::Workers;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Longest time in-flight requests get to finish after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors that stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A listener's TLS files could not be loaded.
    #[error("pool {pool}: TLS: {source}")]
    Tls {
        /// The pool.
        pool: String,
        /// Why.
        source: crate::tls::TlsError,
    },
}

/// Loads every pool's listener TLS (before anything is bound).
fn load_tls(config: &Config) -> Result<Vec<Option<Arc<ServerTls>>>, AppError> {
    let load = |p: &PoolConfig| {
        let Some(f) = &p.tls else { return Ok(None) };
        ServerTls::new(f)
            .map(|t| Some(Arc::new(t)))
            .map_err(|source| AppError::Tls {
                pool: p.name.clone(),
                source,
            })
    };
    config.pools.iter().map(load).collect()
}

/// One running pool.
#[derive(Debug)]
pub struct RunningPool {
    /// Shared by its sessions.
    pub ctx: Arc<PoolContext>,
    /// Timeouts, health policy, metrics (changed in place by reload).
    pub shared: PoolShared,
    /// What the sentinels say of its `sentinel:` nodes.
    pub discovery: Arc<Discovery>,
}

/// The running proxy: its pools, metrics and the config applied last.
#[derive(Debug)]
pub struct Proxy {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// One per listener.
    pub pools: Vec<RunningPool>,
    /// The config file, for reloads.
    pub config_path: Option<PathBuf>,
    /// The config applied last and the hash of its text; held during a reload.
    pub applied: tokio::sync::Mutex<(Config, u64)>,
    /// Hash of the config text applied last (readable without waiting for a reload).
    pub config_hash: std::sync::atomic::AtomicU64,
    /// `--admin` from the command line, applied to every reloaded config too.
    pub admin_override: Option<Option<String>>,
    /// The file of the token `POST /reload` must carry (set at start).
    pub admin_token_file: Option<PathBuf>,
}

async fn bind(listen: &Listen, mode: Option<u32>) -> Result<Listener, AppError> {
    match listen {
        Listen::Tcp(addr) => tokio::net::TcpListener::bind(addr.as_str())
            .await
            .map(Listener::Tcp)
            .map_err(|source| AppError::Bind {
                addr: addr.clone(),
                source,
            }),
        Listen::Unix(path) => {
            let _ = std::fs::remove_file(path);
            let bound = tokio::net::UnixListener::bind(path).and_then(|l| {
                if let Some(m) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))?;
                }
                Ok(l)
            });
            bound
                .map(|l| Listener::Unix(l, path.clone()))
                .map_err(|source| AppError::Bind {
                    addr: path.display().to_string(),
                    source,
                })
        }
    }
}

/// Builds one pool's runtime (spawns its backend connection and health tasks).
pub fn start_pool(
    p: &PoolConfig,
    discovery: Arc<Discovery>,
    metrics: &Arc<Metrics>,
    workers: &Workers,
    tls: Option<Arc<ServerTls>>,
) -> RunningPool {
    let shared = PoolShared {
        workers: workers.clone(),
        pool: p.name.as_str().into(),
        timeouts: Arc::new(Timeouts::new(p.connect_timeout, p.request_timeout)),
        policy: Arc::new(HealthPolicy::new(&p.health)),
        changed: Arc::new(tokio::sync::Notify::new()),
        metrics: metrics.clone(),
    };
    shared.policy.set_replica_lag(p.max_replica_lag);
    let topo = match p.cluster {
        // No node until the refresh task has read the slot map.
        Some(_) => crate::cluster::topology(p, &shared, &[], 1, &Default::default()),
        None => Topology::build(&discovery.effective(p), &shared, &[], 1),
    };
    let pm = metrics.pool(&p.name);
    pm.topology_version.set(1);
    let router = Arc::new(Router::from_pointee(topo));
    let cluster = p.cluster.as_ref().map(|_| {
        let c = crate::cluster::Cluster::new(router.clone(), metrics.cluster(&p.name));
        Arc::new(c)
    });
    let ctx = PoolContext::new(p.name.clone(), router, p.max_clients, pm)
        .with_tls(tls)
        .with_cluster(cluster.clone());
    let ctx = Arc::new(ctx);
    if let Some(c) = cluster {
        let refresh = crate::cluster::refresh::run(Arc::downgrade(&ctx), shared.clone(), c);
        tokio::spawn(refresh);
    }
    tokio::spawn(ejection_loop(ctx.clone(), shared.changed.clone()));
    tokio::spawn(crate::server::memory::budget_loop(Arc::downgrade(&ctx)));
    tokio::spawn(crate::hotkeys::report::watch(
        Arc::downgrade(&ctx),
        metrics.clone(),
    ));
    RunningPool {
        ctx,
        shared,
        discovery,
    }
}

/// How the proxy was started, beyond its config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file, watched for reloads.
    pub config_path: Option<PathBuf>,
    /// Hash of the config file's text.
    pub config_hash: u64,
    /// `--admin` from the command line: replaces the file's `admin` (also on reload).
    pub admin_override: Option<Option<String>>,
    /// The worker runtimes; `None`: the current runtime is the only worker.
    pub workers: Option<Workers>,
}

/// Runs the proxy until SIGTERM/SIGINT or `shutdown`, then drains.
pub async fn run(
    mut config: Config,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let RunOptions {
        config_path,
        config_hash,
        admin_override,
        workers,
    } = opts;
    let workers = workers.unwrap_or_else(Workers::current_runtime);
    if let Some(a) = &admin_override {
        config.admin = a.clone();
    }
    let tls = load_tls(&config)?;
    let mut listeners = Vec::new();
    for pool in &config.pools {
        listeners.push(bind(&pool.listen, pool.listen_mode).await?);
    }
    // Unix socket files this process created, removed after the drain.
    let unix_paths: Vec<PathBuf> = config
        .pools
        .iter()
        .filter_map(|p| match &p.listen {
            Listen::Unix(path) => Some(path.clone()),
            Listen::Tcp(_) => None,
        })
        .collect();
    let admin = match &config.admin {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a.as_str())
                .await
                .map_err(|source| AppError::Bind {
                    addr: a.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let metrics = Metrics::new();
    metrics.set_config_hash(&format!("{config_hash:016x}"));
    let mut pools = Vec::new();
    for (p, tls) in config.pools.iter().zip(tls) {
        let discovery = Discovery::new(p, metrics.clone());
        crate::sentinel::first_answers(&discovery, p.connect_timeout, p.request_timeout).await;
        pools.push(start_pool(p, discovery, &metrics, &workers, tls));
    }
    for p in &pools {
        if let Some(tls) = &p.ctx.tls {
            let watch = crate::tls::rotate::watch_loop(
                p.ctx.name.clone(),
                tls.clone(),
                metrics.clone(),
                crate::reload::WATCH_INTERVAL,
                shutdown.clone(),
            );
            tokio::spawn(watch);
        }
    }
    for (l, p) in listeners.into_iter().zip(&pools) {
        serve_on_workers(l, &p.ctx, &workers, &shutdown).map_err(|source| AppError::Bind {
            addr: format!("{:?}", p.ctx.name),
            source,
        })?;
    }
    for p in &config.pools {
        tracing::info!(pool = %p.name, listen = ?p.listen, nodes = p.nodes.len(), "serving");
    }
    let admin_addr = config.admin.clone();
    let admin_token_file = config.admin_token_file.clone();
    let proxy = Arc::new(Proxy {
        metrics,
        pools,
        admin_token_file,
        config_path,
        applied: tokio::sync::Mutex::new((config, config_hash)),
        config_hash: std::sync::atomic::AtomicU64::new(config_hash),
        admin_override,
    });
    if let Some(l) = admin {
        tracing::info!(admin = ?admin_addr, "admin listening");
        tokio::spawn(crate::admin::serve(l, proxy.clone(), shutdown.clone()));
    }
    crate::reload::spawn_triggers(&proxy, &shutdown);
    for (i, p) in proxy.pools.iter().enumerate() {
        let timeouts = p.shared.timeouts.clone();
        tokio::spawn(crate::sentinel::run(
            p.discovery.clone(),
            timeouts,
            shutdown.clone(),
        ));
        tokio::spawn(follow_discovery(Arc::downgrade(&proxy), i));
    }
    wait_for_signal(&shutdown).await;
    shutdown.cancel();
    for p in &proxy.pools {
        p.ctx.stop_reading();
    }
    drain(&proxy.pools).await;
    for path in unix_paths {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Every worker accepts clients on its own copy of the listening socket.
fn serve_on_workers(
    l: Listener,
    ctx: &Arc<PoolContext>,
    workers: &Workers,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    for rt in workers.handles() {
        let copy = l.try_clone()?;
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        rt.spawn(async move {
            match copy.register() {
                Ok(l) => accept_loop(l, ctx, shutdown).await,
                Err(e) => tracing::error!(error = %e, "worker cannot listen"),
            }
        });
    }
    Ok(())
}

/// Applies what the sentinels say (a failover, replicas coming and going) the way
/// a reload applies a file: a new topology, unchanged nodes kept.
async fn follow_discovery(proxy: std::sync::Weak<Proxy>, pool: usize) {
    let Some(d) = proxy.upgrade().map(|p| p.pools[pool].discovery.clone()) else {
        return;
    };
    loop {
        d.changed().await;
        let Some(p) = proxy.upgrade() else { return };
        p.rediscovered(pool).await;
    }
}

/// Rebuilds the ring when node health changes (only moves keys with `eject: true`).
/// A node that comes back gets the pool's scripts and functions replayed first
/// (best effort, within a timeout), so it takes traffic only once it has them.
async fn ejection_loop(ctx: Arc<PoolContext>, changed: Arc<tokio::sync::Notify>) {
    loop {
        changed.notified().await;
        let _writer = ctx.writer.lock().await;
        let old = ctx.router.load_full();
        let Some(t) = old.ejection_update() else {
            continue;
        };
        let back: Vec<Arc<Node>> = (0..t.nodes.len())
            .filter(|&i| t.on_ring[i] && !old.on_ring[i])
            .map(|i| t.nodes[i].clone())
            .collect();
        if !back.is_empty() {
            let frames = ctx.replay.snapshot().1;
            replay_on_nodes(frames, &back, "node back on the ring").await;
        }
        // Health may have changed during the replay: build from what it is now.
        if let Some(t) = ctx.router.load().ejection_update() {
            log_ejected(&ctx.name, &t);
            ctx.switch(t).await;
        }
    }
}

fn log_ejected(pool: &str, t: &Topology) {
    let off: Vec<&str> = t
        .nodes
        .iter()
        .zip(&t.on_ring)
        .filter(|(_, r)| !**r)
        .map(|(n, _)| &*n.name)
        .collect();
    tracing::warn!(pool = %pool, ejected = ?off, "ring rebuilt over live nodes");
}

async fn wait_for_signal(shutdown: &CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return shutdown.cancelled().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
        _ = shutdown.cancelled() => {}
    }
}

async fn drain(pools: &[RunningPool]) {
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if pools
            .iter()
            .all(|p| p.ctx.clients.load(Ordering::Relaxed) == 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!("drain timeout: closing remaining clients");
}
