//! ROLE, CONFIG, SLOWLOG and LATENCY through the proxy.
//!
//! - ROLE: the proxy is a master without replicas (`master`, offset 0, no replicas).
//! - CONFIG GET: asked of every node, one value per parameter (the first node's
//!   where they disagree, see [`crate::command::merge::introspect`]); the proxy's
//!   own view for `databases` (1: it serves database 0 only), `maxclients`
//!   (`limits.max_clients`), `requirepass` (its own `auth`, never a node's) and
//!   `masterauth` / `masteruser` (empty: it has no master, and a node's secret
//!   stays on the node).
//! - CONFIG SET, CONFIG RESETSTAT, SLOWLOG RESET, LATENCY RESET: sent to every node
//!   only with `allow_admin: true`, refused otherwise. CONFIG REWRITE and the other
//!   LATENCY subcommands are refused by the command table.
//! - SLOWLOG GET `[count]`, SLOWLOG LEN, LATENCY LATEST: merged over the nodes.

use super::super::context::{Ctx, Outcome};
use super::super::forward;
use crate::command::MergeKind;
use crate::command::merge::Plan;
use crate::errors;
use crate::resp::Request;
use crate::resp::number::parse_i64;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// ROLE's reply (the same in RESP2 and RESP3, as Redis).
pub const ROLE: &[u8] = b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n";

/// SLOWLOG GET's count when none is given (Redis's).
const SLOWLOG_DEFAULT_COUNT: usize = 10;

/// Answers ROLE, CONFIG GET/SET/RESETSTAT, SLOWLOG GET/LEN/RESET, LATENCY
/// LATEST/RESET (the command table sends no other subcommand here).
pub fn answer(cx: &mut Ctx, req: &Request) -> Outcome {
    let lower = |i: usize| req.get(i).unwrap_or_default().to_ascii_lowercase();
    match (lower(0).as_slice(), lower(1).as_slice()) {
        (b"role", _) => cx.ready_static(ROLE),
        (b"config", b"get") => {
            let own = own_config(cx);
            to_nodes(cx, req, Plan::ConfigGet(own))
        }
        (b"config", b"set") => admin(cx, req, "CONFIG SET", MergeKind::AllOk),
        (b"config", b"resetstat") => admin(cx, req, "CONFIG RESETSTAT", MergeKind::AllOk),
        (b"slowlog", b"get") => slowlog_get(cx, req),
        (b"slowlog", b"len") => to_nodes(cx, req, Plan::Broadcast(MergeKind::SumInt)),
        (b"slowlog", b"reset") => admin(cx, req, "SLOWLOG RESET", MergeKind::AllOk),
        (b"latency", b"latest") => {
            let names = node_names(cx);
            to_nodes(cx, req, Plan::LatencyLatest(names))
        }
        (b"latency", b"reset") => admin(cx, req, "LATENCY RESET", MergeKind::SumInt),
        _ => any_node(cx, req),
    }
}

/// Sends `req` to the first live node on the shared lane.
fn any_node(cx: &mut Ctx, req: &Request) -> Outcome {
    if !cx.enter_lane(cx.shared_lane()) {
        return Outcome::Wait(req.clone());
    }
    forward::any_node(cx, req)
}

/// Sends `req` to every node on the shared lane, merged per `plan`.
fn to_nodes(cx: &mut Ctx, req: &Request, plan: Plan) -> Outcome {
    if !cx.enter_lane(cx.shared_lane()) {
        return Outcome::Wait(req.clone());
    }
    forward::to_every_node(cx, req.frame(), plan)
}

/// A command that changes the nodes: broadcast with `allow_admin`, else refused.
fn admin(cx: &mut Ctx, req: &Request, what: &'static str, merge: MergeKind) -> Outcome {
    if !cx.topo.config.allow_admin {
        let mut b = BytesMut::new();
        errors::admin_refused(&mut b, what);
        return cx.ready(b.freeze());
    }
    to_nodes(cx, req, Plan::Broadcast(merge))
}

/// The parameters CONFIG GET answers with the proxy's own values.
fn own_config(cx: &Ctx) -> Vec<(&'static str, Bytes)> {
    let max_clients = cx.pool.max_clients.load(Ordering::Relaxed).to_string();
    let auth = cx.topo.limits.auth.as_deref().unwrap_or_default();
    vec![
        ("databases", Bytes::from_static(b"1")),
        ("maxclients", Bytes::from(max_clients)),
        ("requirepass", Bytes::copy_from_slice(auth.as_bytes())),
        ("masterauth", Bytes::new()),
        ("masteruser", Bytes::new()),
    ]
}

fn node_names(cx: &Ctx) -> Vec<Arc<str>> {
    cx.topo.nodes.iter().map(|n| n.name.clone()).collect()
}

/// SLOWLOG GET [count]: each node sends its newest `count` (all with -1), merged and
/// cut to `count`. Extra arguments get the node's own error.
fn slowlog_get(cx: &mut Ctx, req: &Request) -> Outcome {
    let count = match req.argc() {
        2 => SLOWLOG_DEFAULT_COUNT,
        3 => match parse_i64(req.arg(2)) {
            Some(-1) => usize::MAX,
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return cx.ready_static(errors::SLOWLOG_COUNT),
        },
        _ => return any_node(cx, req),
    };
    let names = node_names(cx);
    to_nodes(cx, req, Plan::Slowlog(names, count))
}
