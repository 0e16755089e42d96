//! What the admin port shows: readiness and the topology view, for [`Proxy`].

use crate::admin::AdminHooks;
use crate::app::Proxy;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;

impl AdminHooks for Proxy {
    fn metrics(&self) -> String {
        self.metrics.render()
    }

    fn live(&self) -> bool {
        true
    }

    /// Ready when every pool has a topology with at least one node up.
    fn ready(&self) -> bool {
        self.pools.iter().all(|p| {
            let t = p.ctx.router.load();
            t.nodes.iter().any(|n| !n.health.is_down())
        })
    }

    fn topology(&self) -> Value {
        let hash = self
            .applied
            .try_lock()
            .map(|a| format!("{:016x}", a.1))
            .ok();
        let pools: Vec<Value> = self.pools.iter().map(|p| pool_view(&p.ctx)).collect();
        json!({ "config_hash": hash, "pools": pools })
    }

    fn hotkeys(&self) -> Value {
        let pools: Vec<Value> = self
            .pools
            .iter()
            .map(|p| crate::hotkeys::report::json(&p.ctx))
            .collect();
        json!({ "pools": pools })
    }

    fn reload(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        Box::pin(Proxy::reload(self, "POST /reload"))
    }

    /// Read from its file on every request: a rotated token applies at once.
    fn reload_token(&self) -> Result<Option<String>, String> {
        match &self.admin_token_file {
            Some(path) => crate::admin::read_token(path).map(Some),
            None => Ok(None),
        }
    }
}

fn pool_view(ctx: &crate::server::PoolContext) -> Value {
    use std::sync::atomic::Ordering;
    let t = ctx.router.load();
    let nodes: Vec<Value> = t
        .nodes
        .iter()
        .zip(&t.on_ring)
        .zip(&t.config.nodes)
        .zip(&t.replicas)
        .map(|(((n, on_ring), cfg), replicas)| {
            let replicas: Vec<Value> = replicas.iter().map(|r| replica_view(r)).collect();
            json!({
                "name": &*n.name,
                "addr": crate::config::checks::addr_text(&n.addr),
                "weight": cfg.weight,
                "health": if n.health.is_down() { "down" } else { "up" },
                "on_ring": on_ring,
                "connections": n.metrics.backend_connections.get(),
                "inflight": n.metrics.inflight.get(),
                "role": "primary",
                "sentinel": cfg.sentinel,
                "replicas": replicas,
            })
        })
        .collect();
    let mut view = json!({
        "name": ctx.name,
        "version": t.version,
        "read_from": t.config.read_from,
        "eject": t.eject(),
        "clients": ctx.clients.load(Ordering::Relaxed),
        "nodes": nodes,
        "warmup": crate::warmup::view(&t),
    });
    if let Some(c) = &ctx.cluster {
        view["cluster"] = c.view();
    }
    view
}

fn replica_view(r: &crate::backend::Node) -> Value {
    json!({
        "name": &*r.name,
        "addr": crate::config::checks::addr_text(&r.addr),
        "health": if r.health.is_down() { "down" } else { "up" },
        "role": "replica",
        "readable": r.readable(),
        "connections": r.metrics.backend_connections.get(),
    })
}
