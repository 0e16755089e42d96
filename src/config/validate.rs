//! Validation of a [`FileConfig`] into a [`Config`]. SKELETON: the config helper
//! replaces this file with full checks and line numbers.

use super::*;
use crate::route::{Distribution, HashFunction, HashMode};

/// Validates `file` (parsed from `text`), returning every problem found.
pub fn validate(text: &str, file: FileConfig) -> Result<Config, Vec<Problem>> {
    let _ = text;
    let nodes = file
        .nodes
        .iter()
        .map(|n| {
            let name = n.name.clone().unwrap_or_else(|| n.addr.clone());
            NodeConfig {
                identity: name.clone(),
                name,
                addr: NodeAddr::Tcp(n.addr.clone()),
                weight: n.weight,
            }
        })
        .collect();
    let tag = file.hash.tag.as_bytes();
    let pool = PoolConfig {
        name: "default".into(),
        listen: Listen::Tcp(file.listen.clone()),
        nodes,
        mode: HashMode::Ringproxy,
        function: HashFunction::Ringproxy,
        distribution: Distribution::Ketama,
        tag: (tag.len() == 2).then(|| [tag[0], tag[1]]),
        connections: file.pool.connections,
        connect_timeout: file.timeouts.connect,
        request_timeout: file.timeouts.request,
        max_clients: file.limits.max_clients,
        max_pipeline: file.limits.max_pipeline,
        max_request_size: file.limits.max_request_size,
        max_dedicated: file.limits.max_dedicated,
        health: HealthConfig {
            interval: file.health.interval,
            timeout: file.health.timeout,
            failures: file.health.failures,
            successes: file.health.successes,
            eject: file.health.eject,
            max_ejected_percent: file.health.max_ejected_percent,
            retry_timeout: None,
        },
        auth: file.auth.clone(),
        backend_password: file.backend.password.clone(),
        backend_db: file.backend.db,
        commands: vec![],
        allow_flush: file.allow_flush,
        preconnect: false,
    };
    Ok(Config {
        pools: vec![pool],
        admin: file.admin.clone(),
        workers: file.workers,
        log_json: file.log.format == "json",
        log_level: file.log.level.clone(),
    })
}
