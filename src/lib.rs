//! ringproxy: a Redis sharding proxy over a consistent-hash ring.
//!
//! Clients speak RESP2 or RESP3 to the proxy as if it were one Redis; every key is
//! routed over a ketama ring to one of many backend Redis nodes.
//!
//! # Layout
//!
//! ```text
//! acl/             users and permissions: ACL rules, glob patterns, the user table
//! main.rs          CLI: serve, --check, route, convert (anyhow only here)
//! app.rs           composition root: bind, build topologies, spawn tasks, drain
//! reload.rs        reload triggers (file watch, SIGHUP) and the apply step
//! status.rs        what the admin port shows (ready, /topology)
//! admin.rs         small HTTP/1.1 server: /metrics /live /ready /topology /reload
//! metrics/         every metric in one registry; hot-path counters sharded by thread
//! config/          YAML schema, defaults, validation with lines, nutcracker files
//! resp/            request decoder, reply framer, encoders (no IO)
//! command/         command table (data), key specs, classes, split, merge, scan
//! route/           hashes, hash tags, ketama ring, placement (pure, golden-tested)
//! topology.rs      one immutable snapshot of a pool, behind arc-swap: each node a
//!                  shard (its primary, its replicas), the placement, the read policy
//! ttl_jitter.rs    TTL jitter: relative TTLs of matching keys lowered at random
//! warmup/          warm topology changes: misses of moved keys asked of their previous owner
//! cluster/         Redis Cluster mode: slot map (CLUSTER SHARDS/SLOTS), CRC16 slots,
//!                  refresh task, MOVED/ASK/TRYAGAIN followed for the client
//! backend/         pipelined shared connection, node pool, health (probes by role:
//!                  primary, replica), subscriber
//! sentinel/        Redis Sentinel discovery: ask the sentinels, follow their
//!                  announcements, rebuild the topology on a failover
//! server/          listener; session (socket, buffers, reply queue, client state);
//!                  dispatch → pieces (forward, dedicated, pubsub, local, info), each
//!                  given a narrow Ctx and returning an Outcome; output (writes, accounting);
//!                  clients registry; parking (idle sessions free their serving
//!                  state); subscriptions, blocked commands and transactions
//!                  that follow topology changes
//! tls/             TLS: config → rustls, certificate loading, rotation, client stream
//! errors.rs        every error reply text
//! poll.rs          poll a future once (write in the turn that produced the bytes)
//! io_buf.rs        read buffers sized to announced frames, write queues of shared
//!                  segments (vectored writes: large values are never copied)
//! workers.rs       thread-per-core: one single-threaded runtime per worker thread
//! client_io.rs     the client stream (TCP or unix socket), the completion queue and
//!                  the direct-reply hand-off
//! hotkeys/         hot-key detector: sampled space-saving sketch per worker, merged on demand
//! coalesce/        identical reads in flight answered from one backend reply
//! nearcache/       replies of configured key prefixes kept in memory, invalidated by
//!                  CLIENT TRACKING BCAST PREFIX pushes on one tracking connection per node
//! ```
//!
//! # Data flow
//!
//! ```text
//! client ─► session: read into BytesMut, decode (raw frame + arg offsets)
//!        ─► classify (command table), then dispatch with one topology snapshot (arc-swap
//!           guard, not held across .await) to the piece for its class:
//!           Keyed | Split | Broadcast | AnyNode | Channel → forward (shared connections)
//!           Dedicated → dedicated (MULTI, WATCH, blocking) or pubsub; Local → local
//!        ─► placement: hash(tag(key)) → node
//!        ─► node connection task: many sessions' requests, one write; replies FIFO
//!        ─► completion (seq, part, raw reply) into the client's completion queue
//!           (ClientIo: one lock and a waker, no channel)
//!        ─► reply queue: merged if split, written in request order as soon as the
//!           socket takes it (a client's only in-flight reply is written by the
//!           connection task itself, on plain sockets)
//! Each worker thread runs its own event loop: it accepts clients and owns its own
//! connections to every node, so a request never crosses cores.
//! side tasks (on worker 0): health checker per node and replica, ejection (ring rebuilt
//!             on health change), Sentinel discovery (topology rebuilt on a failover),
//!             reload (file watch, SIGHUP, POST /reload), admin HTTP, drain on SIGTERM
//! ```

pub mod acl;
pub mod admin;
pub mod app;
pub mod backend;
pub mod client_io;
pub mod cluster;
pub mod coalesce;
pub mod command;
pub mod config;
pub mod errors;
pub mod hotkeys;
pub mod io_buf;
pub mod metrics;
pub mod nearcache;
pub mod poll;
pub mod reload;
pub mod resp;
pub mod route;
pub mod sentinel;
pub mod server;
pub mod status;
pub mod tls;
pub mod topology;
pub mod ttl_jitter;
pub mod warmup;
pub mod workers;
