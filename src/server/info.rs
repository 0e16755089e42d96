//! INFO through the proxy, and (in [`introspect`]) the other introspection commands
//! of the `LocalKind::Info` class: ROLE, CONFIG, SLOWLOG, LATENCY.
//!
//! INFO behaves as Redis 7.0's: no argument means `default`; `all` and `everything`
//! mean every section; several sections may be asked at once, unknown ones are
//! skipped, and sections come in Redis's order whatever the order asked:
//!
//! | section | in `default` | from |
//! | --- | --- | --- |
//! | server | yes | the proxy |
//! | clients | yes | the proxy (`blocked_clients`: its clients in a blocking command) |
//! | memory | yes | the nodes (see [`crate::command::merge::info`]) |
//! | stats | yes | the proxy's counters, then the nodes' summed |
//! | replication | yes | the proxy: a master without replicas |
//! | cpu | yes | the proxy process (`/proc/self/stat`) |
//! | modules | yes | the proxy: none |
//! | commandstats | no | the nodes, summed |
//! | errorstats | yes | the nodes, summed |
//! | cluster | yes | the proxy: `cluster_enabled:0` |
//! | keyspace | yes | the nodes, summed |
//! | topology | yes | the proxy: its nodes and their state |
//! | hotkeys | no | the proxy: the hottest keys ([`crate::hotkeys`]) |
//!
//! (`persistence` and `latencystats` are per node and not given.) The reply is a
//! verbatim string for RESP3 clients and a bulk string for RESP2, as Redis.

pub mod introspect;

use super::PoolContext;
use super::context::{Ctx, Outcome};
use crate::command::merge::Plan;
use crate::command::merge::info::{InfoPlan, Section};
use crate::resp::{Request, encode};
use crate::topology::Topology;
use bytes::BytesMut;
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Every section, in Redis's order, and whether `default` includes it.
const SECTIONS: [(&str, bool); 13] = [
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("cluster", true),
    ("keyspace", true),
    ("topology", true),
    ("hotkeys", false),
];

/// Answers INFO, ROLE, CONFIG, SLOWLOG and LATENCY.
pub fn answer(cx: &mut Ctx, req: &Request) -> Outcome {
    if !req.arg(0).eq_ignore_ascii_case(b"info") {
        return introspect::answer(cx, req);
    }
    let plan = plan(cx.pool, cx.topo, req);
    if !plan.needs_nodes() {
        let mut b = BytesMut::new();
        encode::verbatim(&mut b, cx.client.proto, plan.local_text().as_bytes());
        return cx.ready(b.freeze());
    }
    let mut args = vec!["INFO"];
    args.extend(plan.sections.iter().filter_map(Section::node_section));
    let frame = Request::from_args(&args).frame().clone();
    if !cx.enter_lane(cx.shared_lane()) {
        return Outcome::Wait(req.clone());
    }
    super::forward::to_every_node(cx, &frame, Plan::Info(Box::new(plan)))
}

/// The sections `req` asks for, in order.
fn plan(ctx: &PoolContext, topo: &Topology, req: &Request) -> InfoPlan {
    let wanted: Vec<String> = (1..req.argc())
        .map(|i| String::from_utf8_lossy(req.arg(i)).to_ascii_lowercase())
        .collect();
    let is = |w: &str| wanted.iter().any(|x| x == w);
    let all = is("all") || is("everything");
    let default = wanted.is_empty() || is("default");
    let alias = |name: &str| name == "modules" && is("module_list");
    let sections = SECTIONS
        .iter()
        .filter(|(name, in_default)| all || (default && *in_default) || is(name) || alias(name))
        .map(|(name, _)| section(ctx, topo, name))
        .collect();
    InfoPlan { sections }
}

fn section(ctx: &PoolContext, topo: &Topology, name: &str) -> Section {
    let mut out = String::new();
    let _ = match name {
        "memory" => return Section::Memory,
        "stats" => return Section::Stats(stats(ctx)),
        "commandstats" => return Section::Commandstats,
        "errorstats" => return Section::Errorstats,
        "keyspace" => return Section::Keyspace,
        "server" => write!(
            out,
            "# Server\r\nredis_version:{}\r\nringproxy_version:{}\r\nredis_mode:proxy\r\nprocess_id:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\n",
            super::local::REDIS_COMPAT_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            ctx.started.elapsed().as_secs(),
            ctx.started.elapsed().as_secs() / 86400,
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\ndedicated_connections:{}\r\n",
            ctx.clients.load(Ordering::Relaxed),
            ctx.max_clients.load(Ordering::Relaxed),
            ctx.blocked.load(Ordering::Relaxed),
            ctx.dedicated.load(Ordering::Relaxed)
        ),
        "replication" => write!(
            out,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_repl_offset:0\r\n"
        ),
        "cpu" => cpu(&mut out),
        "modules" => write!(out, "# Modules\r\n"),
        "cluster" => write!(out, "# Cluster\r\ncluster_enabled:0\r\n"),
        "hotkeys" => out.write_str(&crate::hotkeys::report::info(ctx)),
        _ => topology(topo, &mut out),
    };
    Section::Local(out)
}

/// The proxy's own counters (the stats section adds the nodes').
fn stats(ctx: &PoolContext) -> String {
    let m = &ctx.metrics;
    format!(
        "total_connections_received:{}\r\nrejected_connections:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n",
        ctx.clients_total.load(Ordering::Relaxed),
        m.client_connections_rejected.get(),
        m.requests.iter().map(|c| c.get()).sum::<u64>(),
        m.bytes_received.get(),
        m.bytes_sent.get()
    )
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`: 100 on every
/// Linux architecture; reading `sysconf` would need unsafe code).
const USER_HZ: u64 = 100;

/// The proxy's CPU times from `/proc/self/stat` (zeros where it cannot be read), as
/// Redis writes them: seconds with six decimals.
fn cpu(out: &mut String) -> std::fmt::Result {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3,
    // utime 14, stime 15, cutime 16, cstime 17.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let t = |i: usize| {
        let ticks = f.get(i).copied().unwrap_or(0);
        format!(
            "{}.{:06}",
            ticks / USER_HZ,
            (ticks % USER_HZ) * (1_000_000 / USER_HZ)
        )
    };
    write!(
        out,
        "# CPU\r\nused_cpu_sys:{}\r\nused_cpu_user:{}\r\nused_cpu_sys_children:{}\r\nused_cpu_user_children:{}\r\n",
        t(1),
        t(0),
        t(3),
        t(2)
    )
}

fn topology(topo: &Topology, out: &mut String) -> std::fmt::Result {
    let up = topo.nodes.iter().filter(|n| !n.health.is_down()).count();
    write!(
        out,
        "# Topology\r\ntopology_version:{}\r\nnodes:{}\r\nnodes_up:{}\r\neject:{}\r\n",
        topo.version,
        topo.nodes.len(),
        up,
        u8::from(topo.eject())
    )?;
    for (i, (n, cfg)) in topo.nodes.iter().zip(&topo.config.nodes).enumerate() {
        let state = if n.health.is_down() { "down" } else { "up" };
        let replicas = topo.replicas.get(i).map_or(&[][..], |r| &r[..]);
        let readable = replicas.iter().filter(|r| r.readable()).count();
        writeln!(
            out,
            "node{i}:name={},weight={},state={state},primary={},replicas={},readable_replicas={readable}\r",
            n.name,
            cfg.weight,
            crate::config::checks::addr_text(&n.addr),
            replicas.len(),
        )?;
    }
    Ok(())
}
