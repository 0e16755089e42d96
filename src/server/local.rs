//! Commands the proxy answers itself. Client state they change (protocol, name,
//! auth) lives in the session and never reaches a shared backend connection.

use super::context::{ClientState, Ctx, Outcome};
use crate::acl::{DEFAULT_USER, Secret};
use crate::command::{CommandSpec, LocalKind};
use crate::errors;
use crate::resp::{Proto, Request, encode};
use crate::topology::Topology;
use bytes::BytesMut;

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

/// Answers a local command (RESET is the session's: [`super::dispatch`]);
/// `subscribed`: the client has subscriptions.
pub fn answer(cx: &mut Ctx, req: &Request, kind: LocalKind, subscribed: bool) -> Outcome {
    let mut b = BytesMut::new();
    match kind {
        LocalKind::Ping => ping(cx.client, req, subscribed, &mut b),
        LocalKind::Echo => encode::bulk(&mut b, req.arg(1)),
        LocalKind::Quit => return cx.ready_then_close(b"+OK\r\n"),
        LocalKind::Hello => hello(cx, req, &mut b),
        LocalKind::Auth => auth(cx, req, &mut b),
        LocalKind::Acl => whoami(cx.client, &mut b),
        LocalKind::Select => select(req, &mut b),
        LocalKind::Client => return super::client_cmd::answer(cx, req),
        LocalKind::Command => encode::integer(&mut b, cx.topo.commands.len() as i64),
        LocalKind::Reset => reset(cx.client, cx.topo, &mut b),
        LocalKind::Info => return super::info::answer(cx, req),
    }
    cx.ready(b.freeze())
}

/// RESET of the client state the proxy keeps (the session resets the rest).
fn reset(c: &mut ClientState, topo: &Topology, b: &mut BytesMut) {
    c.proto = Proto::Resp2;
    c.name = None;
    c.user = topo.users.initial();
    c.users_generation = topo.users.generation();
    encode::simple(b, "RESET");
}

/// PING; a RESP2 client in subscribe mode gets `["pong", msg]` as from Redis.
fn ping(c: &ClientState, req: &Request, subscribed: bool, b: &mut BytesMut) {
    if req.argc() > 2 {
        return crate::errors::wrong_arity(b, "ping");
    }
    if subscribed && c.proto == Proto::Resp2 {
        encode::array_header(b, 2);
        encode::bulk(b, b"pong");
        return encode::bulk(b, req.get(1).unwrap_or_default());
    }
    match req.get(1) {
        Some(msg) => encode::bulk(b, msg),
        None => encode::simple(b, "PONG"),
    }
}

/// Logs the client in as `user` (the default user when `None`) if `pass` is its
/// password. A failure is counted and logged, without the password (and without the
/// name when no such user exists: it may be a password typed in the wrong place).
fn log_in(cx: &mut Ctx, user: Option<&[u8]>, pass: &[u8]) -> bool {
    let users = &cx.topo.users;
    if let Some(u) = users.login(user, pass) {
        cx.client.log_in(u, users);
        return true;
    }
    cx.pool.metrics.auth_failures.inc();
    let name = user.unwrap_or(DEFAULT_USER.as_bytes());
    let known = users
        .get(name)
        .map_or("<unknown user>", |u| u.name.as_str());
    tracing::warn!(pool = %cx.pool.name, client = cx.client.id, user = known, "authentication failed");
    false
}

fn auth(cx: &mut Ctx, req: &Request, b: &mut BytesMut) {
    let nopass = cx
        .topo
        .users
        .default_user()
        .is_none_or(|u| u.secret == Secret::NoPass);
    if nopass && req.argc() == 2 {
        return b.extend_from_slice(errors::AUTH_NOT_SET);
    }
    let (user, pass) = match req.argc() {
        2 => (None, req.arg(1)),
        3 => (Some(req.arg(1)), req.arg(2)),
        _ => return b.extend_from_slice(errors::SYNTAX),
    };
    if log_in(cx, user, pass) {
        encode::simple(b, "OK");
    } else {
        b.extend_from_slice(errors::WRONGPASS);
    }
}

/// ACL WHOAMI: the user's name.
fn whoami(c: &ClientState, b: &mut BytesMut) {
    let name = c.user.as_ref().map_or(DEFAULT_USER, |u| u.name.as_str());
    encode::bulk(b, name.as_bytes());
}

/// HELLO [protover [AUTH user pass] [SETNAME name]], checked in Redis's order:
/// version, options, credentials, authenticated, name; nothing changes on error.
fn hello(cx: &mut Ctx, req: &Request, b: &mut BytesMut) {
    let proto = match req.get(1).map(crate::resp::number::parse_i64) {
        None => cx.client.proto,
        Some(Some(2)) => Proto::Resp2,
        Some(Some(3)) => Proto::Resp3,
        Some(Some(_)) => return b.extend_from_slice(errors::NOPROTO),
        Some(None) => return b.extend_from_slice(errors::HELLO_PROTO_NOT_INTEGER),
    };
    let (mut i, mut auth, mut name) = (2, None, None);
    while i < req.argc() {
        let (opt, more) = (req.arg(i), req.argc() - 1 - i);
        if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            auth = Some((req.arg(i + 1), req.arg(i + 2)));
            i += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            name = Some(i + 1);
            i += 2;
        } else {
            return errors::hello_syntax(b, opt);
        }
    }
    if let Some((user, pass)) = auth
        && !log_in(cx, Some(user), pass)
    {
        return b.extend_from_slice(errors::WRONGPASS);
    }
    let s = &mut *cx.client;
    if !s.authed() {
        return b.extend_from_slice(errors::HELLO_NOAUTH);
    }
    if let Some(i) = name {
        if !valid_name(req.arg(i)) {
            return b.extend_from_slice(errors::CLIENT_NAME);
        }
        s.name = (!req.arg(i).is_empty()).then(|| Box::new(req.arg_bytes(i)));
    }
    s.proto = proto;
    hello_reply(b, proto, s.id);
}

/// Whether Redis accepts `name` as a client name (no blanks or special characters).
pub(super) fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|c| (b'!'..=b'~').contains(c))
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
    match crate::resp::number::parse_i64(req.arg(1)) {
        Some(0) => encode::simple(b, "OK"),
        Some(_) => b.extend_from_slice(errors::SELECT_NONZERO),
        None => b.extend_from_slice(errors::NOT_INTEGER),
    }
}
