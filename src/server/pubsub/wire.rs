//! The wire side of pub/sub: the six commands by family, the confirmations the
//! proxy writes, and telling a confirmation from a message.

use crate::resp::reply::array_elements;
use crate::resp::{Proto, encode};
use bytes::{Bytes, BytesMut};

/// The six commands, by family.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Channel,
    Shard,
    Pattern,
}

impl Family {
    /// The family of the channel map `f` (0: channels, 1: shard channels).
    pub(crate) fn of_map(f: usize) -> Family {
        if f == 1 {
            Family::Shard
        } else {
            Family::Channel
        }
    }

    /// The command sent to the nodes.
    pub(crate) fn command(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Family::Channel, true) => b"SUBSCRIBE",
            (Family::Shard, true) => b"SSUBSCRIBE",
            (Family::Pattern, true) => b"PSUBSCRIBE",
            (Family::Channel, false) => b"UNSUBSCRIBE",
            (Family::Shard, false) => b"SUNSUBSCRIBE",
            (Family::Pattern, false) => b"PUNSUBSCRIBE",
        }
    }

    /// The confirmation's kind.
    pub(super) fn kind(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Family::Channel, true) => b"subscribe",
            (Family::Shard, true) => b"ssubscribe",
            (Family::Pattern, true) => b"psubscribe",
            (Family::Channel, false) => b"unsubscribe",
            (Family::Shard, false) => b"sunsubscribe",
            (Family::Pattern, false) => b"punsubscribe",
        }
    }
}

/// Commands a RESP2 client may send while subscribed.
pub fn allowed_in_subscribe_mode(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "ssubscribe"
            | "psubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

pub(super) fn confirmation(
    b: &mut BytesMut,
    proto: Proto,
    kind: &[u8],
    name: Option<&[u8]>,
    count: usize,
) {
    match proto {
        Proto::Resp3 => b.extend_from_slice(b">3\r\n"),
        Proto::Resp2 => encode::array_header(b, 3),
    }
    encode::bulk(b, kind);
    match name {
        Some(n) => encode::bulk(b, n),
        None => encode::null(b, proto),
    }
    encode::integer(b, count as i64);
}

/// Whether `frame` confirms a (un)subscription rather than carrying a message.
pub(super) fn is_confirmation(frame: &Bytes) -> bool {
    let kind = array_elements(frame)
        .and_then(|e| e.first().cloned())
        .map(|r| frame.slice(r))
        .unwrap_or_default();
    let body = kind
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&kind[..0], |p| &kind[p + 1..]);
    [
        &b"subscribe"[..],
        b"psubscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"punsubscribe",
        b"sunsubscribe",
    ]
    .iter()
    .any(|k| body.starts_with(k) && body.get(k.len()) == Some(&b'\r'))
}
