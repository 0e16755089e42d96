//! TTL jitter: keys written together with the same TTL (a batch job, a deploy that
//! refills the cache) would expire in the same second and send their refill to the
//! database at once. For keys matching a `ttl_jitter` rule, the relative TTL
//! argument of SET (EX, PX), SETEX, PSETEX, GETEX (EX, PX), EXPIRE and PEXPIRE is
//! lowered by a random amount of up to the rule's percent, so they expire spread
//! over that share of their TTL.
//!
//! Only the TTL argument changes; every other argument (NX, XX, GT, LT, GET,
//! KEEPTTL, the value) is copied as sent. Absolute forms (EXAT, PXAT, EXPIREAT,
//! PEXPIREAT) are never touched, nor is a TTL Redis would refuse (not an integer
//! as Redis spells one, 0 or less, or above [`MAX_JITTER_TTL`]): Redis gives its
//! own answer to it. GT and LT compare the lowered TTL with the key's.
//!
//! Applies to requests on the shared connections (not to commands queued inside
//! MULTI, nor to scripts).

use crate::command::CommandSpec;
use crate::config::cache::JitterRule;
use crate::resp::Request;
use crate::resp::encode;
use crate::resp::number::parse_i64;
use crate::route::ring::next_random;
use crate::server::context::Ctx;
use bytes::{Bytes, BytesMut};

/// Largest TTL (seconds or milliseconds) that is lowered: far below where Redis
/// refuses a TTL as overflowing (`EX` above `i64::MAX / 1000`), so lowering never
/// turns a refused request into an accepted one.
pub const MAX_JITTER_TTL: i64 = 1_000_000_000_000_000;

/// The request to send for `req`: its own frame, or a copy with the TTL lowered
/// when a rule of the pool matches its key (counted in
/// `ringproxy_ttl_jitter_rewritten_total`).
pub fn frame(cx: &Ctx, req: &Request, spec: &CommandSpec, key: &[u8]) -> Bytes {
    let rules = &cx.topo.config.cache.ttl_jitter;
    if rules.is_empty() {
        return req.frame().clone();
    }
    match rewrite(rules, req, &spec.name, key) {
        Some(frame) => {
            cx.pool.metrics.ttl_jitter_rewritten.inc();
            frame
        }
        None => req.frame().clone(),
    }
}

/// `req` with its TTL lowered per the first rule matching `key`; `None` when no
/// rule matches, the command has no relative TTL, or the draw left it unchanged.
pub fn rewrite(rules: &[JitterRule], req: &Request, name: &str, key: &[u8]) -> Option<Bytes> {
    let at = ttl_position(name, req)?;
    let rule = rules
        .iter()
        .find(|r| r.keys.iter().any(|p| crate::acl::glob::matches(p, key)))?;
    let ttl = parse_i64(req.arg(at)).filter(|t| (1..=MAX_JITTER_TTL).contains(t))?;
    let lowered = lower(ttl, rule.percent, draw());
    (lowered != ttl).then(|| with_arg(req, at, lowered))
}

/// The argument index of the relative TTL of a request of command `name`.
pub fn ttl_position(name: &str, req: &Request) -> Option<usize> {
    match name {
        "setex" | "psetex" | "expire" | "pexpire" => req.get(2).map(|_| 2),
        "set" => option_value(req, 3),
        "getex" => option_value(req, 2),
        _ => None,
    }
}

/// The index of the value after the first `EX` or `PX` option from argument `from`.
fn option_value(req: &Request, from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(a) = req.get(i) {
        if a.eq_ignore_ascii_case(b"ex") || a.eq_ignore_ascii_case(b"px") {
            return req.get(i + 1).map(|_| i + 1);
        }
        i += 1;
    }
    None
}

/// `ttl` lowered by `draw` modulo (`percent` % of `ttl`, plus one): uniform over
/// `[ttl - ttl * percent / 100, ttl]`, never below 1.
pub fn lower(ttl: i64, percent: u32, draw: u64) -> i64 {
    let most = (ttl as u128 * u128::from(percent) / 100) as u64;
    let cut = draw % (most + 1);
    (ttl - cut as i64).max(1)
}

/// A random 64-bit draw from the worker's generator.
fn draw() -> u64 {
    (u64::from(next_random()) << 32) | u64::from(next_random())
}

/// `req` re-encoded with argument `at` replaced by the decimal `value`.
fn with_arg(req: &Request, at: usize, value: i64) -> Bytes {
    let mut digits = BytesMut::with_capacity(20);
    encode::integer(&mut digits, value);
    // `:<digits>\r\n` → the digits.
    let text = &digits[1..digits.len() - 2];
    let mut out = BytesMut::with_capacity(req.frame().len() + 8);
    encode::array_header(&mut out, req.argc());
    for i in 0..req.argc() {
        if i == at {
            encode::bulk(&mut out, text);
        } else {
            out.extend_from_slice(req.raw_arg(i));
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Request {
        Request::from_args(args)
    }

    fn rules() -> Vec<JitterRule> {
        vec![JitterRule {
            keys: vec![b"s:*".to_vec()],
            percent: 10,
        }]
    }

    #[test]
    fn finds_only_relative_ttls() {
        let cases: &[(&[&str], Option<usize>)] = &[
            (&["set", "k", "v", "EX", "10"], Some(4)),
            (&["set", "k", "v", "nx", "get", "px", "10"], Some(6)),
            (&["set", "k", "v", "EXAT", "10"], None),
            (&["set", "k", "ex", "KEEPTTL"], None),
            (&["set", "k", "v", "EX"], None),
            (&["getex", "k", "PX", "5"], Some(3)),
            (&["getex", "k", "PXAT", "5"], None),
            (&["getex", "k", "PERSIST"], None),
            (&["expire", "k", "5", "GT"], Some(2)),
            (&["setex", "k", "5", "v"], Some(2)),
        ];
        for (args, want) in cases {
            let r = req(args);
            assert_eq!(ttl_position(args[0], &r), *want, "{args:?}");
        }
        assert_eq!(
            ttl_position("expireat", &req(&["expireat", "k", "5"])),
            None
        );
    }

    #[test]
    fn lowers_within_the_band_and_never_to_zero() {
        assert_eq!(lower(1000, 10, 0), 1000);
        assert_eq!(lower(1000, 10, 100), 900);
        assert_eq!(lower(1000, 10, 101), 1000);
        assert_eq!(lower(1, 100, 1), 1);
        assert_eq!(lower(9, 10, 7), 9, "10% of 9 rounds down to nothing");
        for d in 0..500 {
            assert!((900..=1000).contains(&lower(1000, 10, d * 7919)));
        }
    }

    #[test]
    fn rewrites_only_the_ttl_of_matching_keys() {
        let r = req(&["SET", "s:1", "EX", "EX", "100000", "NX"]);
        let out = (0..50)
            .find_map(|_| rewrite(&rules(), &r, "set", b"s:1"))
            .expect("a draw that changes the TTL");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("*6\r\n$3\r\nSET\r\n$3\r\ns:1\r\n$2\r\nEX\r\n$2\r\nEX\r\n$5\r\n"));
        assert!(text.ends_with("\r\n$2\r\nNX\r\n"), "{text}");
        assert!(rewrite(&rules(), &r, "set", b"t:1").is_none());
        for bad in ["0", "-5", "010", "+5", "1e3", "9000000000000000000"] {
            let r = req(&["SETEX", "s:1", bad, "v"]);
            assert!(rewrite(&rules(), &r, "setex", b"s:1").is_none(), "{bad}");
        }
    }
}
