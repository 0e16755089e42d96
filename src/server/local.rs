//! Commands the proxy answers itself. Client state they change (protocol, name,
//! auth) lives in the session and never reaches a shared backend connection.

use super::replies::After;
use super::session::Session;
use crate::command::{CommandSpec, LocalKind};
use crate::errors;
use crate::resp::{Proto, Request, encode};
use crate::topology::Topology;
use bytes::{Bytes, BytesMut};

/// Redis version reported by HELLO and INFO (the command table's version).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

/// Commands a client may send before AUTH.
pub fn allowed_before_auth(spec: &CommandSpec) -> bool {
    matches!(spec.name.as_str(), "auth" | "hello" | "quit" | "reset")
}

/// True for FLUSHALL / FLUSHDB.
pub fn is_flush(req: &Request) -> bool {
    let n = req.arg(0);
    n.eq_ignore_ascii_case(b"flushall") || n.eq_ignore_ascii_case(b"flushdb")
}

/// Answers a local command.
pub fn answer(s: &mut Session, req: &Request, kind: LocalKind, topo: &Topology) {
    let mut b = BytesMut::new();
    let proto = s.state.proto;
    match kind {
        LocalKind::Ping => ping(s, req, &mut b),
        LocalKind::Echo => encode::bulk(&mut b, req.arg(1)),
        LocalKind::Quit => {
            s.queue
                .push_ready(Bytes::from_static(b"+OK\r\n"), After::Close);
            s.closing = true;
            return;
        }
        LocalKind::Hello => hello(s, req, topo, &mut b),
        LocalKind::Auth => auth(s, req, topo, &mut b),
        LocalKind::Select => select(req, &mut b),
        LocalKind::Client => client(s, req, &mut b),
        LocalKind::Command => encode::integer(&mut b, topo.commands.len() as i64),
        LocalKind::Reset => {
            s.pinned = None;
            s.pubsub = None;
            s.tx_state = Default::default();
            s.state.proto = Proto::Resp2;
            s.state.name = None;
            s.state.authed = topo.limits.auth.is_none();
            encode::simple(&mut b, "RESET");
        }
        LocalKind::Info => return super::info::answer(s, req, topo),
    }
    let _ = proto;
    s.ready(b.freeze());
}

/// PING; a RESP2 client in subscribe mode gets `["pong", msg]` as from Redis.
fn ping(s: &Session, req: &Request, b: &mut BytesMut) {
    if req.argc() > 2 {
        return crate::errors::wrong_arity(b, "ping");
    }
    let subscribed = s.pubsub.as_ref().is_some_and(|p| p.count() > 0);
    if subscribed && s.state.proto == Proto::Resp2 {
        encode::array_header(b, 2);
        encode::bulk(b, b"pong");
        return encode::bulk(b, req.get(1).unwrap_or_default());
    }
    match req.get(1) {
        Some(msg) => encode::bulk(b, msg),
        None => encode::simple(b, "PONG"),
    }
}

/// Whether `user`/`pass` log in. Without a configured password the default user
/// has none (as Redis's `nopass`): any password is accepted for it.
fn password_ok(topo: &Topology, user: Option<&[u8]>, pass: &[u8]) -> bool {
    let user_ok = user.is_none_or(|u| u == b"default");
    match topo.limits.auth.as_deref() {
        Some(p) => user_ok && p.as_bytes() == pass,
        None => user_ok,
    }
}

fn auth(s: &mut Session, req: &Request, topo: &Topology, b: &mut BytesMut) {
    if topo.limits.auth.is_none() && req.argc() == 2 {
        return b.extend_from_slice(errors::AUTH_NOT_SET);
    }
    let (user, pass) = match req.argc() {
        2 => (None, req.arg(1)),
        3 => (Some(req.arg(1)), req.arg(2)),
        _ => return b.extend_from_slice(errors::SYNTAX),
    };
    if password_ok(topo, user, pass) {
        s.state.authed = true;
        encode::simple(b, "OK");
    } else {
        b.extend_from_slice(errors::WRONGPASS);
    }
}

fn hello(s: &mut Session, req: &Request, topo: &Topology, b: &mut BytesMut) {
    let mut proto = s.state.proto;
    if let Some(v) = req.get(1) {
        proto = match v {
            b"2" => Proto::Resp2,
            b"3" => Proto::Resp3,
            _ => return b.extend_from_slice(errors::NOPROTO),
        };
    }
    let mut i = 2;
    let mut name = None;
    while i < req.argc() {
        let opt = req.arg(i);
        if opt.eq_ignore_ascii_case(b"AUTH") && i + 2 < req.argc() {
            if !password_ok(topo, Some(req.arg(i + 1)), req.arg(i + 2)) {
                return b.extend_from_slice(errors::WRONGPASS);
            }
            s.state.authed = true;
            i += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && i + 1 < req.argc() {
            name = Some(req.arg_bytes(i + 1));
            i += 2;
        } else {
            return b.extend_from_slice(errors::SYNTAX);
        }
    }
    if !s.state.authed {
        return b.extend_from_slice(errors::NOAUTH);
    }
    s.state.proto = proto;
    if name.is_some() {
        s.state.name = name;
    }
    hello_reply(b, proto, s.state.id);
}

fn hello_reply(b: &mut BytesMut, proto: Proto, id: u64) {
    encode::map_header(b, proto, 7);
    encode::bulk(b, b"server");
    encode::bulk(b, b"redis");
    encode::bulk(b, b"version");
    encode::bulk(b, REDIS_COMPAT_VERSION.as_bytes());
    encode::bulk(b, b"proto");
    encode::integer(b, if proto == Proto::Resp3 { 3 } else { 2 });
    encode::bulk(b, b"id");
    encode::integer(b, id as i64);
    encode::bulk(b, b"mode");
    encode::bulk(b, b"standalone");
    encode::bulk(b, b"role");
    encode::bulk(b, b"master");
    encode::bulk(b, b"modules");
    encode::array_header(b, 0);
}

fn select(req: &Request, b: &mut BytesMut) {
    match std::str::from_utf8(req.arg(1))
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(0) => encode::simple(b, "OK"),
        Some(_) => b.extend_from_slice(errors::SELECT_NONZERO),
        None => b.extend_from_slice(errors::NOT_INTEGER),
    }
}

fn client(s: &mut Session, req: &Request, b: &mut BytesMut) {
    let sub = req.get(1).unwrap_or_default().to_ascii_lowercase();
    match sub.as_slice() {
        b"setname" if req.argc() == 3 => {
            let name = req.arg(2);
            if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                return b.extend_from_slice(
                    b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
                );
            }
            s.state.name = (!name.is_empty()).then(|| req.arg_bytes(2));
            encode::simple(b, "OK");
        }
        b"getname" => match &s.state.name {
            Some(n) => encode::bulk(b, n),
            None => encode::null(b, s.state.proto),
        },
        b"id" => encode::integer(b, s.state.id as i64),
        b"setinfo" if req.argc() == 4 => encode::simple(b, "OK"),
        // The proxy never evicts clients.
        b"no-evict" if req.argc() == 3 => encode::simple(b, "OK"),
        b"info" => {
            let name = s.state.name.clone().unwrap_or_default();
            let mut line = format!("id={} name=", s.state.id).into_bytes();
            line.extend_from_slice(&name);
            line.extend_from_slice(
                format!(" db=0 resp={}\n", s.state.proto.index() + 2).as_bytes(),
            );
            encode::bulk(b, &line);
        }
        _ => b.extend_from_slice(errors::SYNTAX),
    }
}
