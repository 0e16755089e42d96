//! [`Cluster`]: backends and a proxy over them, the fixture most tests start from.

#![allow(dead_code)]

use super::conn::Conn;
use super::proxy::Proxy;
use super::redis_server::RedisServer;
use super::resp::{Reply, escape};

/// Three backends and a proxy over them (default config plus `extra_yaml`).
/// Field order matters: the proxy is dropped before the backends.
pub struct Cluster {
    /// The proxy.
    pub proxy: Proxy,
    /// The backends; `nodes[i]` is named `node{i}` in the config.
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    /// `n` fresh backends and a proxy over them.
    pub fn start(n: usize, extra_yaml: &str) -> Cluster {
        let nodes: Vec<RedisServer> = (0..n).map(|_| RedisServer::start()).collect();
        let refs: Vec<&RedisServer> = nodes.iter().collect();
        let proxy = Proxy::with_nodes(&refs, extra_yaml);
        Cluster { proxy, nodes }
    }

    /// A client connection to the proxy.
    pub fn conn(&self) -> Conn {
        self.proxy.conn()
    }

    /// Indexes of the backends that hold `key` (checked directly with EXISTS).
    pub fn holders(&self, key: &[u8]) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].cmd(&[b"EXISTS".as_slice(), key]) == Reply::Int(1))
            .collect()
    }

    /// The one backend holding `key`; panics if none or several hold it.
    pub fn node_of(&self, key: &[u8]) -> usize {
        let h = self.holders(key);
        assert_eq!(
            h.len(),
            1,
            "key {} is on backends {h:?}, expected exactly one",
            escape(key)
        );
        h[0]
    }
}
