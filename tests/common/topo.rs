//! A proxy over some of a set of redis-servers, reloaded onto other subsets.

use super::admin;
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
}

impl Rig {
    /// `total` servers, the proxy over the first `first`.
    pub fn start(total: usize, first: usize) -> Rig {
        let servers: Vec<RedisServer> = (0..total).map(|_| RedisServer::start()).collect();
        let refs: Vec<&RedisServer> = servers[..first].iter().collect();
        let proxy = Proxy::with_nodes(&refs, "");
        Rig { servers, proxy }
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
        self.proxy.write_config(&y);
        admin::wait_topology(
            admin_port,
            "the reload applied",
            Duration::from_secs(10),
            |t| t.version > before,
        );
    }

    /// The node name each key routes to now.
    pub fn owners(&self, names: &[String]) -> BTreeMap<String, String> {
        route(self.proxy.config_path(), names).into_iter().collect()
    }
}
