//! RESP wire format: request decoding (client side), reply framing (backend side),
//! and encoding helpers. No IO here.
//!
//! The hot path never builds frame trees: [`request::decode`] records argument
//! offsets into the raw bytes, and [`reply::reply_len`] only finds where one reply
//! ends so it can be forwarded byte for byte; where a reply's content matters
//! (merging), [`reply::array_elements`], [`reply::integer`] and their kin read just
//! that. The scanners are checked against `redis-protocol` as a reference decoder
//! by `tests/resp_reference.rs` and the fuzz targets in `tests/fuzz/` (test code
//! only).

pub mod encode;
mod inline;
pub mod number;
pub mod reply;
pub mod request;

pub use request::{DecodeError, Request};

/// Protocol version a client speaks (set by HELLO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Proto {
    /// RESP2 (the default).
    #[default]
    Resp2,
    /// RESP3 (after `HELLO 3`).
    Resp3,
}

impl Proto {
    /// 0 for RESP2, 1 for RESP3: index into per-protocol arrays.
    pub fn index(self) -> usize {
        match self {
            Proto::Resp2 => 0,
            Proto::Resp3 => 1,
        }
    }
}
