//! What the proxy does with one request: the command table says what kind of
//! request it is ([`classify`]); [`dispatch`] checks it and hands it to the piece
//! that serves that kind (shared forwarding, the client's dedicated connection,
//! its subscriptions, or a local answer), which returns an [`Outcome`].

use super::context::{Ctx, Outcome};
use super::dedicated::Dedicated;
use super::forward;
use super::local;
use super::pubsub::{Subscriptions, allowed_in_subscribe_mode};
use crate::command::{
    Class, CommandSpec, DedicatedKind, LocalKind, MergeKind, SplitKind, class_for,
};
use crate::errors;
use crate::metrics::RequestClass;
use crate::resp::{Proto, Request};
use crate::topology::Topology;
use bytes::{Bytes, BytesMut};

/// A request's entry in the command table, and its class; `None`: unknown command.
pub type Route<'t> = Option<(&'t CommandSpec, Class)>;

/// Looks `req` up in `topo`'s command table.
pub fn classify<'t>(topo: &'t Topology, req: &Request) -> Route<'t> {
    let spec = topo.commands.get(req)?;
    Some((spec, class_for(spec, req)))
}

/// The metric class of a route.
pub fn metric_class(route: &Route) -> RequestClass {
    match route {
        Some((_, class)) => RequestClass::of(class),
        None => RequestClass::Unknown,
    }
}

/// What the client holds on backends besides the shared connections.
#[derive(Default)]
pub struct Held {
    /// Its own connection: transactions, WATCH, blocking commands.
    pub dedicated: Dedicated,
    /// Its subscriptions.
    pub subs: Subscriptions,
}

impl Held {
    /// Whether the client holds state on the nodes that a topology change can
    /// break: subscriptions, or a dedicated connection.
    pub fn on_nodes(&self) -> bool {
        self.subs.is_member() || self.dedicated.is_pinned()
    }

    /// After a topology change: subscriptions follow their channels; a blocked
    /// command whose key moved is unblocked.
    pub fn follow(&mut self, cx: &mut Ctx) {
        self.subs.follow(cx);
        self.dedicated.follow(cx);
    }
}

/// Handles one request routed as `route`.
pub fn dispatch(cx: &mut Ctx, held: &mut Held, req: Request, route: Route) -> Outcome {
    let Some((spec, class)) = route else {
        held.dedicated.reject_in_multi();
        let mut b = BytesMut::new();
        errors::unknown_command(&mut b, &req);
        return cx.ready(b.freeze());
    };
    if let Some(err) = precheck(cx, held, &req, spec, class) {
        if spec.name == "exec" {
            // As Redis: a rejected EXEC ends the transaction, and says why.
            held.dedicated.abort(cx);
            return cx.ready(errors::exec_abort(&err));
        }
        held.dedicated.reject_in_multi();
        return cx.ready(err);
    }
    cx.client.coalesce.saw(spec.flags, class);
    if class == Class::Local(LocalKind::Reset) {
        return reset(cx, held, req);
    }
    if held.dedicated.in_multi() {
        match in_multi(class, &spec.name, &req) {
            InMulti::Queue => return held.dedicated.queue_in_multi(cx, req, spec),
            InMulti::Refuse(reason) => {
                held.dedicated.reject_in_multi();
                let mut b = BytesMut::new();
                errors::refused(&mut b, &spec.name, reason);
                return cx.ready(b.freeze());
            }
            InMulti::Now => {}
        }
    }
    if on_shared_lane(class) && !cx.enter_lane(cx.shared_lane()) {
        return Outcome::Wait(req);
    }
    match class {
        Class::Keyed => forward::keyed(cx, &req, spec),
        Class::Split(kind) => forward::split_keys(cx, &req, spec, kind),
        Class::Broadcast(MergeKind::Scan) => forward::scan(cx, &req),
        Class::Broadcast(kind) => forward::broadcast(cx, &req, kind),
        Class::AnyNode => forward::any_node(cx, &req),
        Class::Channel => forward::by_channel(cx, &req),
        Class::Local(LocalKind::Hello) => {
            let before = cx.client.proto;
            let out = local::answer(cx, &req, LocalKind::Hello, held.subs.count() > 0);
            if cx.client.proto != before {
                held.dedicated.switch_proto(cx);
            }
            out
        }
        Class::Local(kind) => local::answer(cx, &req, kind, held.subs.count() > 0),
        Class::Dedicated(DedicatedKind::Subscribe) => {
            if !cx.enter_lane(super::context::Lane::Subscriber) {
                return Outcome::Wait(req);
            }
            held.subs.handle(cx, &req, spec)
        }
        Class::Dedicated(kind) => held.dedicated.handle(cx, req, spec, kind),
        Class::Refused(reason) => {
            let mut b = BytesMut::new();
            errors::refused(&mut b, &spec.name, reason);
            cx.ready(b.freeze())
        }
    }
}

/// What becomes of a command between MULTI and EXEC.
enum InMulti {
    /// Queued in the transaction, on its node.
    Queue,
    /// Acts at once (EXEC, DISCARD, WATCH, subscriptions, QUIT, RESET).
    Now,
    /// Refused, and the transaction fails at EXEC (as Redis does for a command
    /// rejected while queueing).
    Refuse(&'static str),
}

fn in_multi(class: Class, name: &str, req: &Request) -> InMulti {
    match class {
        // UNWATCH is queued (Redis runs it at EXEC, where it changes nothing).
        Class::Dedicated(DedicatedKind::Watch) if name == "unwatch" => InMulti::Queue,
        Class::Dedicated(DedicatedKind::Transaction | DedicatedKind::Watch)
        | Class::Local(LocalKind::Quit | LocalKind::Reset) => InMulti::Now,
        // A subscription inside a transaction would subscribe its node's connection.
        Class::Dedicated(DedicatedKind::Subscribe) => InMulti::Refuse(errors::MULTI_SUBSCRIBE),
        Class::Refused(reason) => InMulti::Refuse(reason),
        // Writes to every node (FLUSHALL, SCRIPT LOAD, ...) would reach one node only;
        // reads (DBSIZE, KEYS, ...) run on the transaction's node and see that node.
        Class::Broadcast(MergeKind::AllOk | MergeKind::First) => {
            InMulti::Refuse(errors::MULTI_WHOLE_POOL)
        }
        // The node answers these as the proxy would.
        Class::Local(LocalKind::Ping | LocalKind::Echo | LocalKind::Command) => InMulti::Queue,
        Class::Local(LocalKind::Select) if req.arg(1) == b"0" => InMulti::Queue,
        // The proxy's own state (HELLO, AUTH, CLIENT, SELECT n), or merged over the
        // nodes (INFO, CONFIG, SLOWLOG, ...: some only with allow_admin): the
        // transaction's node must not run them on its connection.
        Class::Local(_) => InMulti::Refuse(errors::MULTI_LOCAL),
        _ => InMulti::Queue,
    }
}

/// Whether a command of `class` may change what CLIENT LIST shows of its client
/// (name, protocol, subscriptions, transaction).
pub fn changes_client_state(class: Class) -> bool {
    matches!(class, Class::Local(_) | Class::Dedicated(_))
}

/// Whether the command goes to the nodes' shared connections.
fn on_shared_lane(class: Class) -> bool {
    matches!(
        class,
        Class::Keyed | Class::Split(_) | Class::Broadcast(_) | Class::AnyNode | Class::Channel
    )
}

/// The error for a request that cannot run at all: auth, subcommand, arity,
/// permissions (before any backend IO), RESP2 subscribe mode.
fn precheck(
    cx: &mut Ctx,
    held: &Held,
    req: &Request,
    spec: &CommandSpec,
    class: Class,
) -> Option<Bytes> {
    let verdict = cx
        .client
        .user_in(&cx.topo.users)
        .map(|u| u.allows(spec, req));
    if verdict.is_none() && !local::allowed_before_auth(spec) {
        return Some(Bytes::from_static(errors::NOAUTH));
    }
    let mut b = BytesMut::new();
    if spec.is_container() && req.argc() >= 2 {
        errors::unknown_subcommand(&mut b, req);
        return Some(b.freeze());
    }
    if !spec.arity_ok(req.argc())
        || (class == Class::Split(SplitKind::Mset) && req.argc().is_multiple_of(2))
    {
        errors::wrong_arity(&mut b, &spec.name);
        return Some(b.freeze());
    }
    if let Some(Err(denied)) = verdict {
        errors::noperm(&mut b, denied, &spec.name);
        return Some(b.freeze());
    }
    let subscribe_mode = held.subs.count() > 0 && cx.client.proto == Proto::Resp2;
    if subscribe_mode && !allowed_in_subscribe_mode(&spec.name) {
        errors::subscribe_mode(&mut b, &spec.name);
        return Some(b.freeze());
    }
    None
}

/// RESET: once every earlier request is answered (confirmations of pending
/// subscriptions, a transaction's replies), drops the client's dedicated
/// connection and subscriptions and resets its state.
fn reset(cx: &mut Ctx, held: &mut Held, req: Request) -> Outcome {
    if cx.queue.waiting() > 0 {
        return Outcome::Wait(req);
    }
    held.dedicated.reset();
    held.subs.reset();
    let out = local::answer(cx, &req, LocalKind::Reset, false);
    cx.client.lane = cx.shared_lane();
    out
}
