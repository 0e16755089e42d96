//! The reads a warm-up retries: read-only commands on one key whose "no such key"
//! reply cannot also mean "the key exists" (GET's nil, HGETALL's empty map, TTL's
//! -2, ...). HGET's nil, say, may be a missing field of an existing hash, so it is
//! not retried: a previous owner's older hash would answer for a newer one.

/// What a miss looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// A null (`$-1`, RESP3 `_`).
    Nil,
    /// An empty array, map or set (no empty collection exists in Redis).
    Empty,
    /// `:0` (the length of a collection that does not exist).
    Zero,
    /// `+none` (TYPE).
    NoneType,
    /// `:-2` (TTL, PTTL of a key that does not exist).
    NoKey,
}

/// The miss reply of command `name` (table name, lower case), when a warm-up
/// retries its misses.
pub fn of(name: &str) -> Option<Miss> {
    Some(match name {
        "get" | "dump" => Miss::Nil,
        "hgetall" | "hkeys" | "hvals" | "smembers" => Miss::Empty,
        "hlen" | "scard" | "zcard" | "llen" => Miss::Zero,
        "type" => Miss::NoneType,
        "ttl" | "pttl" => Miss::NoKey,
        _ => return None,
    })
}

impl Miss {
    /// Whether `reply` (RESP2 or RESP3) is this miss.
    pub fn is(self, reply: &[u8]) -> bool {
        match self {
            Miss::Nil => matches!(reply, b"$-1\r\n" | b"_\r\n"),
            Miss::Empty => matches!(reply, b"*0\r\n" | b"%0\r\n" | b"~0\r\n"),
            Miss::Zero => reply == b":0\r\n",
            Miss::NoneType => reply == b"+none\r\n",
            Miss::NoKey => reply == b":-2\r\n",
        }
    }
}
