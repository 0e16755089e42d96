//! A proxy over some of a set of redis-servers, reloaded onto other subsets.

use super::admin;
use super::load::{Client, Load, Options};
use super::proxy::Proxy;
use super::redis_server::RedisServer;
use super::route::route;
use std::collections::BTreeMap;
use std::time::Duration;

/// A proxy over the first servers of a set.
pub struct Rig {
    /// Every server; `servers[i]` is named `node<i>` whenever it is a member.
    pub servers: Vec<RedisServer>,
    /// The proxy.
    pub proxy: Proxy,
    /// YAML appended to every config of the proxy (top-level sections).
    pub extra: String,
}

impl Rig {
    /// `total` servers, the proxy over the first `first`.
    pub fn start(total: usize, first: usize) -> Rig {
        Rig::start_with(total, first, "")
    }

    /// Like [`Rig::start`], with `extra` YAML in every config (see [`Proxy::config_for`]).
    pub fn start_with(total: usize, first: usize, extra: &str) -> Rig {
        let servers: Vec<RedisServer> = (0..total).map(|_| RedisServer::start()).collect();
        let refs: Vec<&RedisServer> = servers[..first].iter().collect();
        let proxy = Proxy::with_nodes(&refs, extra);
        let extra = extra.to_string();
        Rig {
            servers,
            proxy,
            extra,
        }
    }

    /// Reloads with the servers in `members` (named node<i> by server index).
    pub fn reload(&self, members: &[usize]) {
        let admin_port = self.proxy.admin_port();
        let before = admin::topology(admin_port).version;
        let mut y = format!(
            "listen: 127.0.0.1:{}\nadmin: 127.0.0.1:{admin_port}\nnodes:\n",
            self.proxy.port()
        );
        for &i in members {
            y.push_str(&format!(
                "  - {{name: node{i}, addr: \"{}\"}}\n",
                self.servers[i].addr()
            ));
        }
        y.push_str(&self.extra);
        self.proxy.write_config(&y);
        admin::wait_topology(
            admin_port,
            "the reload applied",
            Duration::from_secs(10),
            |t| t.version > before,
        );
    }

    /// A steady, bounded load through the proxy while the test changes the
    /// topology (two clients, SET/GET on keys of their own); see
    /// [`Rig::assert_load_unhurt`].
    pub fn steady_load(&self) -> Load {
        let keys: Vec<(std::sync::Arc<str>, usize)> =
            (0..64).map(|i| (format!("steady:{i}").into(), 0)).collect();
        let clients = (0..2)
            .map(|i| Client {
                name: format!("steady{i}"),
                keys: keys.clone(),
                offset: i * 7,
            })
            .collect();
        let opts = Options {
            max_time: Duration::from_secs(60),
            ..Options::default()
        };
        Load::start(self.proxy.port(), clients, &opts)
    }

    /// Stops `load`: every request got its reply, none failed.
    pub fn assert_load_unhurt(load: Load) {
        let report = load.finish();
        report.assert_complete();
        let failed: usize = report.logs.iter().map(|l| l.failed()).sum();
        assert_eq!(
            failed,
            0,
            "load requests failed across the change: {}",
            report.notes()
        );
    }

    /// The node name each key routes to now.
    pub fn owners(&self, names: &[String]) -> BTreeMap<String, String> {
        route(self.proxy.config_path(), names).into_iter().collect()
    }
}
