//! Composition root: bind listeners, build topologies, spawn tasks, drain on SIGTERM.

use crate::backend::conn::Timeouts;
use crate::config::{Config, Listen, PoolConfig};
use crate::server::PoolContext;
use crate::server::listener::{Listener, accept_loop};
use crate::topology::{Router, Topology};
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
}

/// One running pool.
#[derive(Debug)]
pub struct RunningPool {
    /// Shared by its sessions.
    pub ctx: Arc<PoolContext>,
    /// Its timeouts (changed in place by reload).
    pub timeouts: Arc<Timeouts>,
    /// The config it was built from.
    pub config: PoolConfig,
}

/// Binds every listener of `config` before anything is served.
pub async fn bind_all(config: &Config) -> Result<Vec<Listener>, AppError> {
    let mut out = Vec::new();
    for pool in &config.pools {
        out.push(bind(&pool.listen).await?);
    }
    Ok(out)
}

async fn bind(listen: &Listen) -> Result<Listener, AppError> {
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
            tokio::net::UnixListener::bind(path)
                .map(|l| Listener::Unix(l, path.clone()))
                .map_err(|source| AppError::Bind {
                    addr: path.display().to_string(),
                    source,
                })
        }
    }
}

/// Builds the pool runtimes (spawns backend connection tasks).
pub fn start_pools(config: &Config) -> Vec<RunningPool> {
    config
        .pools
        .iter()
        .map(|p| {
            let timeouts = Arc::new(Timeouts::new(p.connect_timeout, p.request_timeout));
            let topo = Topology::build(p, &timeouts);
            let router = Arc::new(Router::from_pointee(topo));
            let ctx = Arc::new(PoolContext::new(p.name.clone(), router, p.max_clients));
            RunningPool {
                ctx,
                timeouts,
                config: p.clone(),
            }
        })
        .collect()
}

/// Runs the proxy until SIGTERM/SIGINT or `shutdown`, then drains.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), AppError> {
    let listeners = bind_all(&config).await?;
    let pools = start_pools(&config);
    for (l, p) in listeners.into_iter().zip(&pools) {
        tracing::info!(pool = %p.config.name, listen = ?p.config.listen, nodes = p.config.nodes.len(), "serving");
        tokio::spawn(accept_loop(l, p.ctx.clone(), shutdown.clone()));
    }
    wait_for_signal(&shutdown).await;
    shutdown.cancel();
    drain(&pools).await;
    Ok(())
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
