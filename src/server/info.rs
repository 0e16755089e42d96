//! INFO through the proxy: the proxy's own figures in Redis's format (server,
//! clients, stats, topology sections), and the keyspace section summed over every
//! node (one `INFO keyspace` per node, merged).

use super::PoolContext;
use super::context::{Ctx, Outcome};
use crate::command::merge::Plan;
use crate::resp::{Request, encode};
use crate::topology::Topology;
use bytes::{Bytes, BytesMut};
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// Sections the proxy writes itself, in order.
const LOCAL_SECTIONS: [&str; 4] = ["server", "clients", "stats", "topology"];

/// Answers INFO [section ...].
pub fn answer(cx: &mut Ctx, req: &Request) -> Outcome {
    let topo = cx.topo;
    let wanted: Vec<String> = (1..req.argc())
        .map(|i| String::from_utf8_lossy(req.arg(i)).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "default" | "everything"));
    let mut text = String::new();
    for sec in LOCAL_SECTIONS {
        if all || wanted.iter().any(|w| w == sec) {
            section(cx.pool, topo, sec, &mut text);
        }
    }
    if all || wanted.iter().any(|w| w == "keyspace") {
        let frame = Request::from_args(&["INFO", "keyspace"]).frame().clone();
        return super::forward::to_every_node(cx, &frame, Plan::Info(Bytes::from(text)));
    }
    let mut b = BytesMut::new();
    encode::bulk(&mut b, text.as_bytes());
    cx.ready(b.freeze())
}

fn section(ctx: &PoolContext, topo: &Topology, name: &str, out: &mut String) {
    let m = &ctx.metrics;
    let _ = match name {
        "server" => write!(
            out,
            "# Server\r\nredis_version:{}\r\nringproxy_version:{}\r\nredis_mode:proxy\r\nprocess_id:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            super::local::REDIS_COMPAT_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            ctx.started.elapsed().as_secs()
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\ndedicated_connections:{}\r\n\r\n",
            ctx.clients.load(Ordering::Relaxed),
            ctx.dedicated.load(Ordering::Relaxed)
        ),
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\r\n",
            ctx.clients_total.load(Ordering::Relaxed),
            m.client_connections_rejected.get(),
            m.requests.iter().map(|c| c.get()).sum::<u64>(),
            m.bytes_received.get(),
            m.bytes_sent.get()
        ),
        _ => topology(topo, out),
    };
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
        writeln!(
            out,
            "node{i}:name={},weight={},state={state}\r",
            n.name, cfg.weight
        )?;
    }
    out.push_str("\r\n");
    Ok(())
}
