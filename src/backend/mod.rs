//! Backend side: pipelined connections to Redis nodes, per-node pools, health.
//!
//! - [`queue`]: the queue from sessions to one connection task.
//! - [`pipeline`]: the in-flight state of one connected socket.
//! - [`conn`]: one shared connection task: batches many clients' requests into one
//!   write, matches replies FIFO, enforces the request timeout, reconnects with backoff.
//! - [`pool`]: a node's connections (per RESP version) and its health state.
//! - [`health`]: node health state machine and the active checker.
//! - [`probe`]: what a health check asks a node by its role (primary, replica).
//! - [`stream`]: TCP or unix-socket connect with a timeout.
//! - [`replay`]: the pool's script/function log, replayed on nodes that join.

pub mod backoff;
pub mod conn;
pub mod handshake;
pub mod health;
pub mod pipeline;
pub mod pool;
pub mod probe;
pub mod queue;
pub mod replay;
pub mod stream;
pub mod subscriber;

pub use conn::{BackendRequest, ConnHandle, ReplyTap, ReplyTo, Then};
pub use pool::Node;
