//! Shared harness for the integration tests: real `redis-server`, `ringproxy` and
//! `nutcracker` processes on free loopback ports, plus a tiny synchronous RESP client.
//! `sentinel` adds shards of a primary and replicas, watched by three real sentinels.
//!
//! Use it from a test file with `mod common;` and `use common::*;` (every module's items
//! are re-exported here; `admin` and `load` are reached as `common::admin::...`).
//!
//! Rules it follows:
//! - 127.0.0.1 only, ports picked by the OS ([`free_port`]), never fixed ports;
//! - readiness is polled with a bounded deadline ([`wait_until`]), never "sleep and hope";
//! - every process is killed and reaped on `Drop`, every temp dir removed;
//! - when a test panics, the proxy prints the tail of its log on drop.
//!
//! Quick tour:
//! ```ignore
//! let nodes = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
//! let proxy = Proxy::with_nodes(&[&nodes[0], &nodes[1], &nodes[2]], "");
//! let mut c = proxy.conn();
//! assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
//! assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
//! let placement = route(proxy.config_path(), &["k"]); // [("k", "node1")]
//! ```

#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod cluster;
pub mod conn;
pub mod diff;
pub mod load;
pub mod nutcracker;
pub mod proxy;
pub mod redis_cluster;
pub mod redis_server;
pub mod resp;
pub mod route;
pub mod sentinel;
pub mod tls;
pub mod topo;
pub mod util;

pub use cluster::*;
pub use conn::*;
pub use nutcracker::*;
pub use proxy::*;
pub use redis_server::*;
pub use resp::*;
pub use route::*;
pub use util::*;
