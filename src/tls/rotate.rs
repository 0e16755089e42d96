//! Rotation of the listener's certificate: the TLS files are polled on the same
//! interval as the config file ([`crate::reload::WATCH_INTERVAL`]); a changed pair
//! is loaded for new handshakes (open connections keep theirs), a bad one is
//! refused with a log line and `ringproxy_tls_reloads_total{result="error"}`.

use super::server::ServerTls;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Polls `tls`'s files every `interval` until `shutdown`.
pub async fn watch_loop(
    pool: String,
    tls: Arc<ServerTls>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        check_once(&pool, &tls, &metrics);
    }
}

/// One look at the files: reloads them if they changed; counts and logs the result.
pub fn check_once(pool: &str, tls: &ServerTls, metrics: &Metrics) {
    match tls.reload_if_changed() {
        None => {}
        Some(Ok(())) => {
            metrics.tls_reloaded(true);
            tracing::info!(pool, cert = %tls.file().cert.display(), "TLS certificate reloaded");
        }
        Some(Err(e)) => {
            metrics.tls_reloaded(false);
            tracing::error!(pool, error = %e, "TLS certificate reload refused; the previous one stays in use");
        }
    }
}
