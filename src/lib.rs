//! ringproxy: a Redis sharding proxy over a consistent-hash ring.
//!
//! Clients speak RESP2 or RESP3 to the proxy as if it were one Redis; every key is
//! routed over a ketama ring to one of many backend Redis nodes.
//!
//! # Layout
//!
//! ```text
//! main.rs        CLI: serve, --check, route, convert
//! app.rs         composition root: bind, build topologies, spawn tasks, drain
//! config/        YAML schema, defaults, validation, nutcracker files
//! resp/          request decoder, reply framer, encoders (no IO)
//! command/       command table (data), key specs, classes, split, merge
//! route/         hashes, hash tags, ketama ring, placement (pure)
//! topology.rs    one immutable snapshot of a pool, behind arc-swap
//! backend/       pipelined connection task, node pool, health, backoff
//! server/        listener, session loop, dispatch, local commands, reply queue
//! errors.rs      every error reply text
//! ```
//!
//! # Data flow
//!
//! ```text
//! client ─► session: read into BytesMut, decode (raw frame + arg offsets)
//!        ─► dispatch: table lookup → Keyed | Split | Broadcast | Local | ... (one snapshot)
//!        ─► placement: hash(tag(key)) → node
//!        ─► node connection task: many sessions' requests, one write; replies FIFO
//!        ─► completion (seq, part, raw reply) back to the session's channel
//!        ─► reply queue: merged if split, written in request order
//! ```

#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod backend;
pub mod command;
pub mod config;
pub mod errors;
pub mod metrics;
pub mod poll;
pub mod reload;
pub mod resp;
pub mod route;
pub mod server;
pub mod status;
pub mod topology;
