//! CLIENT subcommands, answered by the proxy about its own clients: names and ids,
//! LIST / INFO / KILL over the pool's [`super::clients::Registry`], REPLY
//! ON|OFF|SKIP (per-client state the proxy keeps), NO-EVICT / NO-TOUCH (accepted:
//! the proxy evicts nobody and touches no key itself).

use super::clients::ClientEntry;
use super::context::{ClientState, Ctx, Outcome, ReplyMode};
use crate::errors;
use crate::resp::{Request, encode};
use bytes::BytesMut;
use std::sync::Arc;

/// Answers `CLIENT <sub> ...`.
pub fn answer(cx: &mut Ctx, req: &Request) -> Outcome {
    let sub = req.get(1).unwrap_or_default().to_ascii_lowercase();
    let argc = req.argc();
    let mut b = BytesMut::new();
    match sub.as_slice() {
        b"setname" if argc == 3 => setname(cx.client, req, &mut b),
        b"getname" => match &cx.client.name {
            Some(n) => encode::bulk(&mut b, n),
            None => encode::null(&mut b, cx.client.proto),
        },
        b"id" => encode::integer(&mut b, cx.client.id as i64),
        b"setinfo" if argc == 4 => encode::simple(&mut b, "OK"),
        b"no-evict" | b"no-touch" if argc == 3 => on_off(req.arg(2), &mut b),
        b"info" => {
            let mut line = Vec::new();
            if let Some(me) = cx.pool.registry.get(cx.client.id) {
                me.line(&cx.topo.commands, cx.pool.precise_ms(), &mut line);
            }
            encode::verbatim(&mut b, cx.client.proto, &line);
        }
        b"list" => list(cx, req, &mut b),
        b"kill" => return kill(cx, req),
        b"reply" if argc == 3 => return reply(cx, req.arg(2)),
        _ => b.extend_from_slice(errors::SYNTAX),
    }
    cx.ready(b.freeze())
}

fn setname(c: &mut ClientState, req: &Request, b: &mut BytesMut) {
    if !super::local::valid_name(req.arg(2)) {
        return b.extend_from_slice(errors::CLIENT_NAME);
    }
    c.name = (!req.arg(2).is_empty()).then(|| Box::new(req.arg_bytes(2)));
    encode::simple(b, "OK");
}

fn on_off(arg: &[u8], b: &mut BytesMut) {
    match arg.to_ascii_lowercase().as_slice() {
        b"on" | b"off" => encode::simple(b, "OK"),
        _ => b.extend_from_slice(errors::SYNTAX),
    }
}

/// CLIENT REPLY ON|OFF|SKIP: OFF and SKIP are not answered themselves.
fn reply(cx: &mut Ctx, mode: &[u8]) -> Outcome {
    match mode.to_ascii_lowercase().as_slice() {
        b"on" => {
            cx.client.reply = ReplyMode::On;
            cx.quiet = false;
            cx.ready_static(b"+OK\r\n")
        }
        b"off" => {
            cx.client.reply = ReplyMode::Off;
            Outcome::Queued
        }
        b"skip" => {
            if cx.client.reply == ReplyMode::On {
                cx.client.reply = ReplyMode::SkipNext;
            }
            Outcome::Queued
        }
        _ => cx.ready_static(errors::SYNTAX),
    }
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...].
fn list(cx: &Ctx, req: &Request, b: &mut BytesMut) {
    let mut keep: Box<dyn Fn(&ClientEntry) -> bool> = Box::new(|_| true);
    match req.get(2).map(|a| a.to_ascii_lowercase()).as_deref() {
        None => {}
        Some(b"type") if req.argc() == 4 => match client_type(req.arg(3)) {
            Some(pubsub) => keep = Box::new(move |e| e.is_pubsub() == pubsub),
            None => return errors::unknown_client_type(b, req.arg(3)),
        },
        Some(b"type") => return b.extend_from_slice(errors::SYNTAX),
        Some(b"id") if req.argc() > 3 => {
            let mut ids = Vec::new();
            for i in 3..req.argc() {
                match crate::resp::number::parse_i64(req.arg(i)) {
                    Some(n) => ids.push(n as u64),
                    None => return b.extend_from_slice(errors::INVALID_CLIENT_ID),
                }
            }
            keep = Box::new(move |e| ids.contains(&e.id));
        }
        Some(_) => return b.extend_from_slice(errors::SYNTAX),
    }
    let mut text = Vec::new();
    for e in cx.pool.registry.all().iter().filter(|e| keep(e)) {
        e.line(&cx.topo.commands, cx.pool.precise_ms(), &mut text);
    }
    encode::verbatim(b, cx.client.proto, &text);
}

/// `Some(true)` for pubsub, `Some(false)` for normal (the proxy has no master or
/// replica clients), `None` for a type Redis does not know.
fn client_type(t: &[u8]) -> Option<bool> {
    match t.to_ascii_lowercase().as_slice() {
        b"pubsub" => Some(true),
        b"normal" | b"master" | b"replica" | b"slave" => Some(false),
        _ => None,
    }
}

/// One CLIENT KILL filter.
enum Filter {
    Id(u64),
    Addr(Vec<u8>),
    Laddr(Vec<u8>),
    PubSub(bool),
}

/// CLIENT KILL addr:port (old form: +OK or an error), or CLIENT KILL with
/// filters ID, ADDR, LADDR, TYPE, USER, SKIPME (new form: the number killed).
fn kill(cx: &mut Ctx, req: &Request) -> Outcome {
    if req.argc() == 3 {
        let addr = req.arg(2);
        let found = cx
            .pool
            .registry
            .all()
            .into_iter()
            .find(|e| e.addr().as_bytes() == addr);
        return match found {
            Some(e) => kill_one(cx, &e, b"+OK\r\n"),
            None => cx.ready_static(errors::NO_SUCH_CLIENT),
        };
    }
    if req.argc() < 3 || req.argc() % 2 == 1 {
        return cx.ready_static(errors::SYNTAX);
    }
    let (mut filters, mut skipme) = (Vec::new(), true);
    for i in (2..req.argc()).step_by(2) {
        let (name, val) = (req.arg(i).to_ascii_lowercase(), req.arg(i + 1));
        let f = match name.as_slice() {
            b"id" => match crate::resp::number::parse_i64(val).filter(|&n| n > 0) {
                Some(n) => Filter::Id(n as u64),
                None => return cx.ready_static(errors::CLIENT_ID_NOT_POSITIVE),
            },
            b"addr" => Filter::Addr(val.to_vec()),
            b"laddr" => Filter::Laddr(val.to_vec()),
            b"type" => match client_type(val) {
                Some(p) => Filter::PubSub(p),
                None => {
                    let mut b = BytesMut::new();
                    errors::unknown_client_type(&mut b, val);
                    return cx.ready(b.freeze());
                }
            },
            b"user" if val == b"default" => continue,
            b"user" => {
                let mut b = BytesMut::new();
                errors::no_such_user(&mut b, val);
                return cx.ready(b.freeze());
            }
            b"skipme" => {
                match val.to_ascii_lowercase().as_slice() {
                    b"yes" => skipme = true,
                    b"no" => skipme = false,
                    _ => return cx.ready_static(errors::SYNTAX),
                }
                continue;
            }
            _ => return cx.ready_static(errors::SYNTAX),
        };
        filters.push(f);
    }
    let me = cx.client.id;
    let victims: Vec<Arc<ClientEntry>> = cx
        .pool
        .registry
        .all()
        .into_iter()
        .filter(|e| !(skipme && e.id == me) && filters.iter().all(|f| matches(f, e)))
        .collect();
    let mut b = BytesMut::new();
    encode::integer(&mut b, victims.len() as i64);
    let reply = b.freeze();
    let mut killed_me = false;
    for e in &victims {
        if e.id == me {
            killed_me = true;
        } else {
            e.kill();
        }
    }
    if killed_me {
        return cx.ready_then_close_bytes(reply);
    }
    cx.ready(reply)
}

fn matches(f: &Filter, e: &ClientEntry) -> bool {
    match f {
        Filter::Id(id) => e.id == *id,
        Filter::Addr(a) => e.addr().as_bytes() == a.as_slice(),
        Filter::Laddr(a) => e.addrs().1.as_bytes() == a.as_slice(),
        Filter::PubSub(p) => e.is_pubsub() == *p,
    }
}

/// Kills `e`; the reply is `ok`. Killing oneself closes after the reply.
fn kill_one(cx: &mut Ctx, e: &ClientEntry, ok: &'static [u8]) -> Outcome {
    if e.id == cx.client.id {
        return cx.ready_then_close(ok);
    }
    e.kill();
    cx.ready_static(ok)
}
