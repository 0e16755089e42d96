//! Random request sequences for tests/differential.rs.
//!
//! A [`Gen`] makes one [`Seq`]: requests (RESP multibulk or inline) on keys of one
//! hash tag, so every multi-key command lands on one node and the proxy must answer
//! exactly what one redis-server answers. It keeps a rough model of the connection
//! (protocol, subscribed, in MULTI) only to make *mostly* valid requests for the
//! state; the model may be wrong (e.g. a SUBSCRIBE inside MULTI) without harm, since
//! the test compares two real reply streams, never the model.
//!
//! Never generated (their answers legitimately differ between one Redis and a proxy
//! over three): CLIENT ID/LIST/INFO, INFO, DEBUG, CONFIG, ACL, KEYS (order), SCAN
//! cursors, RANDOMKEY, TIME, OBJECT, MEMORY, SPOP/SRANDMEMBER/HRANDFIELD/ZRANDMEMBER
//! (random), PUBSUB NUMPAT (counts patterns of all clients, including ones of
//! earlier sequences still being closed), SELECT n>0 and the other commands the
//! README lists as refused, and QUIT outside the half-closed profile's end.
//! Set members are canonical integers (an intset, sorted) and hash values at most
//! 64 bytes (a listpack, insertion order): a hashtable's iteration order depends on
//! each process's random hash seed, so SMEMBERS/HGETALL of one would differ.

use super::common::{Rng, encode, escape};
use std::collections::BTreeSet;

/// One request as sent, and how to show it.
pub struct Item {
    /// Exact bytes on the wire.
    pub bytes: Vec<u8>,
    /// Escaped, one line, long arguments cut.
    pub show: String,
    /// A malformed request after which both sides close the connection: nothing follows.
    pub terminal: bool,
    /// The arguments (None for raw bytes: blank lines, protocol errors).
    pub args: Option<Vec<Vec<u8>>>,
}

impl Item {
    /// The command name in upper case ("" for raw bytes).
    pub fn name(&self) -> String {
        self.args
            .as_ref()
            .and_then(|a| a.first())
            .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
            .unwrap_or_default()
    }
}

/// A sequence of requests sent as one pipeline.
pub struct Seq {
    /// The requests.
    pub items: Vec<Item>,
    /// Send, then shutdown(SHUT_WR), read until the peer closes.
    pub half_close: bool,
}

impl Seq {
    /// The pipeline's bytes: the items, then (unless the last item is terminal)
    /// `RESET` (leaves MULTI and subscribe mode, back to RESP2) and `ECHO <marker>`.
    pub fn bytes(&self, marker: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for it in &self.items {
            out.extend_from_slice(&it.bytes);
        }
        if !self.terminal() {
            out.extend_from_slice(&encode(&["RESET"]));
            out.extend_from_slice(&encode(&["ECHO", marker]));
        }
        out
    }

    /// True when the last item is a protocol error (no marker follows).
    pub fn terminal(&self) -> bool {
        self.items.last().is_some_and(|i| i.terminal)
    }

    /// The requests, numbered, one a line.
    pub fn show(&self) -> String {
        let mut s = String::new();
        for (i, it) in self.items.iter().enumerate() {
            s.push_str(&format!("  {i:>3} {}\n", it.show));
        }
        if !self.terminal() {
            s.push_str("      RESET\n      ECHO <marker>\n");
        }
        s
    }
}

/// What kind of sequences to make.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Profile {
    /// Everything: data, HELLO, MULTI, pub/sub, blocking pops, inline, errors.
    Diff,
    /// For a half-closed connection: no blocking pops (Redis drops a blocked client
    /// when it reads EOF, before the timeout) and no large values (Redis drops what
    /// it has not written yet when it reads EOF).
    HalfClose,
    /// Exactly one reply per request (for counting): no pub/sub, no blank inline
    /// lines, no protocol errors.
    OneReply,
}

/// The generator of one sequence.
pub struct Gen {
    rng: Rng,
    tag: String,
    profile: Profile,
    resp3: bool,
    subs: BTreeSet<String>,
    multi: bool,
    /// Bytes of large values still allowed in this sequence.
    big_budget: usize,
    /// Blocking pops still allowed in this sequence.
    blocking_left: usize,
}

type Args = Vec<Vec<u8>>;

fn a(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

const WORDS: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "42",
    "3.14",
    "-0",
    "007",
    "hello",
    "x y",
    "a\r\nb",
    "\"q\"",
    "it's",
    "\\",
    "é",
    "9223372036854775807",
    "-9223372036854775808",
    "1e3",
    "inf",
    "nan",
    "OK",
];

impl Gen {
    /// A generator for a sequence on hash tag `tag`.
    pub fn new(seed: u64, tag: &str, profile: Profile) -> Gen {
        Gen {
            rng: Rng::new(seed),
            tag: tag.to_string(),
            profile,
            resp3: false,
            subs: BTreeSet::new(),
            multi: false,
            big_budget: 3 << 20,
            blocking_left: 8,
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.rng.below(from.len() as u64) as usize]
    }

    /// A key of the sequence's tag: mostly of the wanted kind, sometimes any (WRONGTYPE).
    fn key(&mut self, kind: &str) -> Vec<u8> {
        let names: &[&str] = match kind {
            "s" => &["s1", "s2", "s3"],
            "l" => &["l1", "l2"],
            "h" => &["h1", "h2"],
            "t" => &["t1", "t2"],
            "z" => &["z1", "z2"],
            _ => &["s1", "l1", "h1", "t1", "z1", "none"],
        };
        let name = if self.chance(85) {
            self.pick(names)
        } else {
            self.pick(&["s1", "l1", "h1", "t1", "z1", "none"])
        };
        format!("{{{}}}:{name}", self.tag).into_bytes()
    }

    fn keys(&mut self, kind: &str, max: u64) -> Args {
        let n = 1 + self.below(max);
        (0..n).map(|_| self.key(kind)).collect()
    }

    fn channel(&mut self) -> Vec<u8> {
        let c = self.below(3);
        format!("{{{}}}:ch{c}", self.tag).into_bytes()
    }

    fn pattern(&mut self) -> Vec<u8> {
        let p = self.pick(&["ch*", "ch?", "c[h]1", "zz*"]);
        format!("{{{}}}:{p}", self.tag).into_bytes()
    }

    /// A string value: mostly small, some up to 1 MiB.
    fn value(&mut self, allow_big: bool) -> Vec<u8> {
        let r = self.below(100);
        let big_ok = allow_big && self.profile != Profile::HalfClose;
        let len = match r {
            0..=39 => return a(self.pick(WORDS)),
            40..=79 => self.below(33) as usize,
            80..=93 => 33 + self.below(4064) as usize,
            94..=97 if big_ok => 4096 + self.below(60 * 1024) as usize,
            98 | 99 if big_ok => {
                if self.chance(30) {
                    1 << 20
                } else {
                    64 * 1024 + self.below((1 << 20) - 64 * 1024) as usize
                }
            }
            _ => self.below(33) as usize,
        };
        if len > 4096 {
            if len > self.big_budget {
                return a("big-budget-spent");
            }
            self.big_budget -= len;
            // Large values: a cheap pattern with a random head (bytes, not text).
            let mut v = self.rng.bytes(16);
            v.resize(len, b'v');
            return v;
        }
        if self.chance(50) {
            self.rng.bytes(len)
        } else {
            (0..len).map(|_| b'a' + self.below(26) as u8).collect()
        }
    }

    fn small(&mut self) -> Vec<u8> {
        if self.chance(50) {
            a(self.pick(WORDS))
        } else {
            let n = self.below(65) as usize;
            self.rng.bytes(n)
        }
    }

    fn int(&mut self) -> Vec<u8> {
        match self.below(10) {
            0 => a(self.pick(&[
                "abc",
                "",
                "1.5",
                "9223372036854775807",
                "-9223372036854775808",
                " 1",
            ])),
            _ => (self.below(21) as i64 - 10).to_string().into_bytes(),
        }
    }

    fn index(&mut self) -> Vec<u8> {
        match self.below(10) {
            0 => a(self.pick(&["x", "100", "-100", "9223372036854775807"])),
            _ => (self.below(11) as i64 - 5).to_string().into_bytes(),
        }
    }

    fn float(&mut self) -> Vec<u8> {
        a(self.pick(&[
            "0", "1", "-1", "1.5", "-2.25", "1e3", "inf", "-inf", "+inf", "nan", "abc", "3.0e-2",
            "", "10", "0.1",
        ]))
    }

    fn member_int(&mut self) -> Vec<u8> {
        (self.below(30) as i64 - 5).to_string().into_bytes()
    }

    fn field(&mut self) -> Vec<u8> {
        format!("f{}", self.below(8)).into_bytes()
    }

    fn zmember(&mut self) -> Vec<u8> {
        a(self.pick(&["m0", "m1", "m2", "m3", "m4", "", "é", "m 5"]))
    }

    fn timeout(&mut self) -> Vec<u8> {
        if self.chance(5) {
            return a(self.pick(&["-1", "abc", "-0.5"]));
        }
        a(self.pick(&["0.01", "0.02", "0.05", "0.1", "0.03"]))
    }

    fn dir(&mut self) -> Vec<u8> {
        a(self.pick(&["LEFT", "RIGHT", "left", "UP"]))
    }

    fn cmd(name: &str, rest: Args) -> Args {
        let mut v = vec![a(name)];
        v.extend(rest);
        v
    }

    /// A data command (string/list/hash/set/zset/keyspace).
    fn data(&mut self) -> Args {
        let c = Gen::cmd;
        match self.below(78) {
            0..=3 => c("GET", vec![self.key("s")]),
            4..=7 => {
                let mut v = vec![self.key("s"), self.value(true)];
                match self.below(10) {
                    0 => v.extend([a("EX"), a("1000")]),
                    1 => v.push(a("NX")),
                    2 => v.push(a("XX")),
                    3 => v.push(a("GET")),
                    4 => v.extend([a("PX"), a(self.pick(&["0", "-5", "abc", "1000000"]))]),
                    5 => v.push(a("KEEPTTL")),
                    _ => {}
                }
                c("SET", v)
            }
            8 => c("SETNX", vec![self.key("s"), self.value(false)]),
            9 => c(
                "SETEX",
                vec![
                    self.key("s"),
                    a(self.pick(&["1000", "0", "-1", "x"])),
                    self.small(),
                ],
            ),
            10 => c("GETSET", vec![self.key("s"), self.value(false)]),
            11 => c("GETDEL", vec![self.key("s")]),
            12 => {
                let mut v = vec![self.key("s")];
                if self.chance(50) {
                    v.extend([a("EX"), a("1000")]);
                } else {
                    v.push(a("PERSIST"));
                }
                c("GETEX", v)
            }
            13..=14 => c("APPEND", vec![self.key("s"), self.value(true)]),
            15 => c("STRLEN", vec![self.key("s")]),
            16 => c(self.pick(&["INCR", "DECR"]), vec![self.key("s")]),
            17 => c(
                self.pick(&["INCRBY", "DECRBY"]),
                vec![self.key("s"), self.int()],
            ),
            18 => c("INCRBYFLOAT", vec![self.key("s"), self.float()]),
            19 => c("GETRANGE", vec![self.key("s"), self.index(), self.index()]),
            20 => {
                let off = if self.chance(3) && self.big_budget > 2 << 20 {
                    self.big_budget -= 1 << 20;
                    (1 << 20) - 3
                } else {
                    self.below(40)
                };
                c(
                    "SETRANGE",
                    vec![self.key("s"), off.to_string().into_bytes(), self.small()],
                )
            }
            21..=22 => c("MGET", self.keys("s", 4)),
            23..=24 => {
                let n = 1 + self.below(3);
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(self.key("s"));
                    v.push(self.value(false));
                }
                c(if self.chance(20) { "MSETNX" } else { "MSET" }, v)
            }
            25 => c(self.pick(&["DEL", "UNLINK"]), self.keys("", 3)),
            26 => c(self.pick(&["EXISTS", "TOUCH"]), self.keys("", 3)),
            27 => c("TYPE", vec![self.key("")]),
            28 => {
                let mut v = vec![
                    self.key(""),
                    a(self.pick(&["1000", "0", "-1", "abc", "2000"])),
                ];
                if self.chance(20) {
                    v.push(a(self.pick(&["NX", "XX", "GT", "LT", "ZZ"])));
                }
                c("EXPIRE", v)
            }
            29 => c(self.pick(&["TTL", "PERSIST"]), vec![self.key("")]),
            30 => c(
                self.pick(&["RENAME", "RENAMENX"]),
                vec![self.key(""), self.key("")],
            ),
            31 => {
                let mut v = vec![self.key(""), self.key("")];
                if self.chance(50) {
                    v.push(a("REPLACE"));
                }
                c("COPY", v)
            }
            32..=34 => {
                let n = 1 + self.below(4);
                let mut v = vec![self.key("l")];
                for _ in 0..n {
                    v.push(self.value(true));
                }
                c(
                    self.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]),
                    v,
                )
            }
            35..=36 => {
                let mut v = vec![self.key("l")];
                if self.chance(30) {
                    v.push(self.index());
                }
                c(self.pick(&["LPOP", "RPOP"]), v)
            }
            37..=38 => c("LRANGE", vec![self.key("l"), self.index(), self.index()]),
            39 => c("LLEN", vec![self.key("l")]),
            40 => c("LINDEX", vec![self.key("l"), self.index()]),
            41 => c("LSET", vec![self.key("l"), self.index(), self.small()]),
            42 => c("LREM", vec![self.key("l"), self.index(), self.small()]),
            43 => c("LTRIM", vec![self.key("l"), self.index(), self.index()]),
            44 => c(
                "LINSERT",
                vec![
                    self.key("l"),
                    a(self.pick(&["BEFORE", "AFTER", "X"])),
                    self.small(),
                    self.small(),
                ],
            ),
            45 => c("LPOS", vec![self.key("l"), self.small()]),
            46 => c(
                "LMOVE",
                vec![self.key("l"), self.key("l"), self.dir(), self.dir()],
            ),
            47 => c("RPOPLPUSH", vec![self.key("l"), self.key("l")]),
            48 => {
                let mut v = vec![a("2"), self.key("l"), self.key("l"), self.dir()];
                if self.chance(40) {
                    v.extend([a("COUNT"), self.index()]);
                }
                c("LMPOP", v)
            }
            49..=51 => {
                let n = 1 + self.below(3);
                let mut v = vec![self.key("h")];
                for _ in 0..n {
                    v.push(self.field());
                    v.push(self.small());
                }
                c("HSET", v)
            }
            52 => c(
                self.pick(&["HGET", "HEXISTS", "HSTRLEN"]),
                vec![self.key("h"), self.field()],
            ),
            53 => {
                let mut v = vec![self.key("h")];
                for _ in 0..1 + self.below(3) {
                    v.push(self.field());
                }
                c(self.pick(&["HMGET", "HDEL"]), v)
            }
            54..=55 => c(
                self.pick(&["HGETALL", "HKEYS", "HVALS", "HLEN"]),
                vec![self.key("h")],
            ),
            56 => c("HINCRBY", vec![self.key("h"), self.field(), self.int()]),
            57 => c(
                "HINCRBYFLOAT",
                vec![self.key("h"), self.field(), self.float()],
            ),
            58 => c("HSETNX", vec![self.key("h"), self.field(), self.small()]),
            59..=60 => {
                let mut v = vec![self.key("t")];
                for _ in 0..1 + self.below(4) {
                    v.push(self.member_int());
                }
                c(self.pick(&["SADD", "SADD", "SREM"]), v)
            }
            61 => c(self.pick(&["SMEMBERS", "SCARD"]), vec![self.key("t")]),
            62 => c(
                self.pick(&["SISMEMBER", "SMISMEMBER"]),
                vec![self.key("t"), self.member_int()],
            ),
            63 => c(self.pick(&["SINTER", "SUNION", "SDIFF"]), self.keys("t", 3)),
            64 => c(
                "SINTERSTORE",
                vec![self.key("t"), self.key("t"), self.key("t")],
            ),
            65 => c(
                "SMOVE",
                vec![self.key("t"), self.key("t"), self.member_int()],
            ),
            66..=68 => {
                let mut v = vec![self.key("z")];
                if self.chance(20) {
                    v.push(a(self.pick(&["NX", "XX", "GT", "LT", "CH", "INCR"])));
                }
                for _ in 0..1 + self.below(3) {
                    v.push(self.float());
                    v.push(self.zmember());
                }
                c("ZADD", v)
            }
            69..=70 => {
                let mut v = vec![self.key("z"), self.index(), self.index()];
                if self.chance(40) {
                    v.push(a("WITHSCORES"));
                }
                c(self.pick(&["ZRANGE", "ZREVRANGE"]), v)
            }
            71 => c(
                "ZRANGEBYSCORE",
                vec![self.key("z"), self.float(), self.float()],
            ),
            72 => c(
                self.pick(&["ZSCORE", "ZRANK", "ZREM"]),
                vec![self.key("z"), self.zmember()],
            ),
            73 => c("ZINCRBY", vec![self.key("z"), self.float(), self.zmember()]),
            74 => c(
                self.pick(&["ZCARD", "ZPOPMIN", "ZPOPMAX"]),
                vec![self.key("z")],
            ),
            75 => c("ZCOUNT", vec![self.key("z"), self.float(), self.float()]),
            76 => c(
                "ZUNIONSTORE",
                vec![self.key("z"), a("2"), self.key("z"), self.key("z")],
            ),
            _ => c(
                "ZMSCORE",
                vec![self.key("z"), self.zmember(), self.zmember()],
            ),
        }
    }

    /// Commands the proxy answers itself (or sends to any node).
    fn local(&mut self) -> Args {
        let c = Gen::cmd;
        match self.below(9) {
            0 => c("PING", vec![]),
            1 => c("PING", vec![self.small()]),
            2 => c("ECHO", vec![self.small()]),
            3 => c(
                "CLIENT",
                vec![a("SETNAME"), a(self.pick(&["fuzz", "a-b", "x y", ""]))],
            ),
            4 => c("CLIENT", vec![a("GETNAME")]),
            5 => c("SELECT", vec![a(self.pick(&["0", "x"]))]),
            6 => c("DBSIZE", vec![]),
            7 => c("EXISTS", vec![self.key("")]),
            _ => c(
                self.pick(&["FOO", "GETT", "", "MULTIX", "PINGPONG"]),
                vec![self.small()],
            ),
        }
    }

    fn hello(&mut self) -> Args {
        let c = Gen::cmd;
        let args: Args = match self.below(10) {
            0 => vec![],
            1..=3 => vec![a("2")],
            4..=7 => vec![a("3")],
            8 => vec![a("3"), a("SETNAME"), a("fuzzer")],
            _ => vec![a(self.pick(&["4", "1", "x", "0"]))],
        };
        let v = args.first().cloned();
        if !self.multi && !(self.subs_mode()) {
            match v.as_deref() {
                Some(b"2") => self.resp3 = false,
                Some(b"3") => self.resp3 = true,
                _ => {}
            }
        }
        c("HELLO", args)
    }

    /// RESP2 subscribe mode: only (P|S)(UN)SUBSCRIBE, PING, QUIT, RESET allowed.
    fn subs_mode(&self) -> bool {
        !self.resp3 && !self.subs.is_empty()
    }

    fn pubsub(&mut self) -> Args {
        let c = Gen::cmd;
        match self.below(12) {
            0..=2 => {
                let chans: Args = (0..1 + self.below(3)).map(|_| self.channel()).collect();
                for ch in &chans {
                    self.subs.insert(String::from_utf8_lossy(ch).into_owned());
                }
                c("SUBSCRIBE", chans)
            }
            3..=4 => {
                let pats: Args = (0..1 + self.below(2)).map(|_| self.pattern()).collect();
                for p in &pats {
                    self.subs
                        .insert(format!("p:{}", String::from_utf8_lossy(p)));
                }
                c("PSUBSCRIBE", pats)
            }
            5..=6 => {
                let chans: Args = (0..self.below(3)).map(|_| self.channel()).collect();
                if chans.is_empty() {
                    self.subs.retain(|s| s.starts_with("p:"));
                } else {
                    for ch in &chans {
                        self.subs.remove(&*String::from_utf8_lossy(ch));
                    }
                }
                c("UNSUBSCRIBE", chans)
            }
            7 => {
                let pats: Args = (0..self.below(2)).map(|_| self.pattern()).collect();
                if pats.is_empty() {
                    self.subs.retain(|s| !s.starts_with("p:"));
                } else {
                    for p in &pats {
                        self.subs
                            .remove(&format!("p:{}", String::from_utf8_lossy(p)));
                    }
                }
                c("PUNSUBSCRIBE", pats)
            }
            8 => {
                let msg = self.small();
                c("PUBLISH", vec![self.channel(), msg])
            }
            9 => c("PUBSUB", vec![a("NUMSUB"), self.channel(), self.channel()]),
            10 => {
                if self.chance(50) {
                    c("PING", vec![])
                } else {
                    c("PING", vec![self.small()])
                }
            }
            _ => {
                self.reset_model();
                c("RESET", vec![])
            }
        }
    }

    fn reset_model(&mut self) {
        self.resp3 = false;
        self.subs.clear();
        self.multi = false;
    }

    fn blocking(&mut self) -> Args {
        let c = Gen::cmd;
        match self.below(7) {
            0..=1 => {
                let mut v = self.keys("l", 2);
                v.push(self.timeout());
                c(self.pick(&["BLPOP", "BRPOP"]), v)
            }
            2 => c(
                "BLMOVE",
                vec![
                    self.key("l"),
                    self.key("l"),
                    self.dir(),
                    self.dir(),
                    self.timeout(),
                ],
            ),
            3 => c(
                "BRPOPLPUSH",
                vec![self.key("l"), self.key("l"), self.timeout()],
            ),
            4 => {
                let mut v = self.keys("z", 2);
                v.push(self.timeout());
                c(self.pick(&["BZPOPMIN", "BZPOPMAX"]), v)
            }
            5 => {
                let t = self.timeout();
                c("BLMPOP", vec![t, a("1"), self.key("l"), self.dir()])
            }
            _ => {
                // Blocking pop on a key pushed just before: answers at once.
                let k = self.key("l");
                c("BLPOP", vec![k, self.timeout()])
            }
        }
    }

    fn transaction(&mut self) -> Args {
        let c = Gen::cmd;
        if self.multi && self.chance(60) {
            self.multi = false;
            return c(if self.chance(75) { "EXEC" } else { "DISCARD" }, vec![]);
        }
        match self.below(10) {
            0..=4 => {
                self.multi = true;
                c("MULTI", vec![])
            }
            5..=6 => c("WATCH", self.keys("", 2)),
            7 => c("UNWATCH", vec![]),
            8 => c("EXEC", vec![]),
            _ => c("DISCARD", vec![]),
        }
    }

    /// One request's arguments, for the current model state.
    fn args(&mut self) -> Args {
        let pubsub_ok = self.profile != Profile::OneReply;
        if self.subs_mode() && self.chance(85) {
            return self.pubsub();
        }
        let r = self.below(100);
        let blocking =
            (83..=88).contains(&r) && self.profile != Profile::HalfClose && self.blocking_left > 0;
        let mut args = match r {
            0..=51 => self.data(),
            52..=59 => self.local(),
            60..=64 => self.hello(),
            65..=74 => self.transaction(),
            75..=82 if pubsub_ok => self.pubsub(),
            // At most 8 blocking pops (0.1 s each at most) per sequence.
            83..=88 if self.profile != Profile::HalfClose && self.blocking_left > 0 => {
                self.blocking_left -= 1;
                self.blocking()
            }
            _ => self.data(),
        };
        // Wrong arity: the name alone, or one argument too many.
        if self.chance(4) {
            args.truncate(1);
        } else if !blocking && self.chance(2) {
            // (Not after a blocking pop: its timeout would become a key, on another
            // node, and the proxy answers CROSSSLOT, as documented.)
            // A key of the tag: where every argument is a key it must not cross nodes.
            // (A set member is an integer: see the module comment.)
            let name = args[0].to_ascii_uppercase();
            if [&b"SADD"[..], b"SREM", b"SMOVE", b"SMISMEMBER"].contains(&name.as_slice()) {
                args.push(a("99"));
            } else {
                args.push(format!("{{{}}}:extra", self.tag).into_bytes());
            }
        }
        // Command names in any case.
        if self.chance(15) {
            args[0] = args[0].to_ascii_lowercase();
        } else if self.chance(5) {
            let mut n = args[0].clone();
            for (i, b) in n.iter_mut().enumerate() {
                if i % 2 == 1 {
                    *b = b.to_ascii_lowercase();
                }
            }
            args[0] = n;
        }
        args
    }

    /// The next request.
    pub fn item(&mut self) -> Item {
        // Rare raw items: blank inline lines and protocol errors.
        if self.profile != Profile::OneReply && self.chance(1) {
            let line = a(self.pick(&["\r\n", "   \r\n", "\n"]));
            return Item {
                show: format!("raw {}", escape(&line)),
                bytes: line,
                terminal: false,
                args: None,
            };
        }
        let args = self.args();
        let total: usize = args.iter().map(|x| x.len()).sum();
        if total < 1024
            && self.chance(15)
            && let Some(line) = self.inline(&args)
        {
            return Item {
                show: format!("inline {}", escape(&line)),
                bytes: line,
                terminal: false,
                args: Some(args),
            };
        }
        Item {
            show: describe(&args),
            bytes: encode(&args),
            terminal: false,
            args: Some(args),
        }
    }

    /// A protocol error that makes both sides answer `-ERR Protocol error: ...` and close.
    pub fn terminal_item(&mut self) -> Item {
        let raw = a(self.pick(&[
            "ECHO \"abc\r\n",
            "ECHO 'abc\r\n",
            "SET \"a\"b c\r\n",
            "*1\r\n$abc\r\n",
            "*abc\r\n",
            "*1\r\nx\r\n",
            "*2\r\n$3\r\nGET\r\n$-1\r\n",
        ]));
        Item {
            show: format!("raw {}", escape(&raw)),
            bytes: raw,
            terminal: true,
            args: None,
        }
    }

    /// An inline rendering of `args` (None when an argument cannot be written inline,
    /// e.g. the empty command name).
    fn inline(&mut self, args: &Args) -> Option<Vec<u8>> {
        if args[0].is_empty() {
            return None;
        }
        let mut line = Vec::new();
        if self.chance(10) {
            line.extend_from_slice(b"  ");
        }
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                line.extend_from_slice(self.pick(&[" ", " ", " ", "  ", "\t"]).as_bytes());
            }
            let plain = !arg.is_empty()
                && arg
                    .iter()
                    .all(|&b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\'');
            let printable = arg.iter().all(|&b| (0x20..0x7f).contains(&b));
            if plain && self.chance(85) {
                line.extend_from_slice(arg);
            } else if printable && !arg.ends_with(b"\\") && self.chance(40) {
                line.push(b'\'');
                for &b in arg {
                    if b == b'\'' {
                        line.extend_from_slice(b"\\'");
                    } else {
                        line.push(b);
                    }
                }
                line.push(b'\'');
            } else {
                line.push(b'"');
                for &b in arg {
                    match b {
                        b'\n' => line.extend_from_slice(b"\\n"),
                        b'\r' => line.extend_from_slice(b"\\r"),
                        b'\t' => line.extend_from_slice(b"\\t"),
                        b'"' => line.extend_from_slice(b"\\\""),
                        b'\\' => line.extend_from_slice(b"\\\\"),
                        0x20..=0x7e if !self.chance(10) => line.push(b),
                        _ => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                    }
                }
                line.push(b'"');
            }
        }
        line.extend_from_slice(if self.chance(85) { b"\r\n" } else { b"\n" });
        Some(line)
    }

    /// A whole sequence of 1..=25 requests (sometimes up to 80).
    pub fn seq(&mut self, half_close: bool) -> Seq {
        let n = if self.chance(10) {
            1 + self.below(80)
        } else {
            1 + self.below(25)
        };
        let mut items: Vec<Item> = (0..n).map(|_| self.item()).collect();
        if self.profile != Profile::OneReply && self.chance(3) {
            items.push(self.terminal_item());
        }
        Seq { items, half_close }
    }
}

/// Arguments escaped and joined, long ones cut.
pub fn describe(args: &Args) -> String {
    args.iter()
        .map(|x| {
            if x.is_empty() {
                "\"\"".to_string()
            } else if x.len() > 40 {
                format!("{}...({} bytes)", escape(&x[..24]), x.len())
            } else {
                escape(x)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
