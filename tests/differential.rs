//! Differential fuzzing: the same random pipelines go to one redis-server and to a
//! ringproxy over three redis-servers, and the two reply streams must be identical
//! byte for byte (see [`same_reply`] for the one mask).
//!
//! - `differential_random`: seeded random sequences (tests/differential/generate.rs),
//!   each on a fresh connection to both sides, all keys of one hash tag, ended by
//!   `RESET` and `ECHO <marker>`; each side is read until the marker's reply (or, for
//!   half-closed writes and protocol errors, until the peer closes), with a deadline.
//!   A difference is minimised (requests removed while it persists) and printed with
//!   the seed, the requests and both reply streams.
//! - `concurrent_clients_get_every_reply`: 20 clients at once against the proxy only,
//!   each request must get exactly one reply.
//! - `regression_cases`: [`KNOWN`], differences found by the fuzzer, as fixed cases.
//!
//! Reproduce: `RINGPROXY_FUZZ_SEED=<seed> [RINGPROXY_FUZZ_SEQ=<n>] cargo test --locked
//! --test differential differential_random -- --nocapture` (the seed and sequence
//! number are printed with every difference). `RINGPROXY_FUZZ_SECS` changes the
//! time budget of the random tests.

mod common;
#[path = "differential/generate.rs"]
mod generate;

use common::*;
use generate::{Gen, Profile, Seq};
use std::io::{self, Cursor, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Seeds CI runs (one after the other within the time budget) when no
/// `RINGPROXY_FUZZ_SEED` is set.
const CI_SEEDS: &[u64] = &[0x5eed_0001, 0xdead_beef, 42, 7_777_777];
/// Wall-time budget of each random test (whole file well under 60 s).
const BUDGET: Duration = Duration::from_secs(20);
/// At most this many sequences per random test run.
const MAX_SEQUENCES: usize = 3000;
/// A side that has not answered everything within this long has failed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Below this many sequences / requests compared, the run proves nothing: fail.
const MIN_SEQUENCES: usize = 100;
const MIN_REQUESTS: usize = 1000;

// ---------------------------------------------------------------------------
// Known differences: the filter below keeps still-open ones out of the random
// generator. Each is a fixed case in KNOWN.
// ---------------------------------------------------------------------------

/// One minimised difference, replayed by `regression_cases`.
struct Case {
    /// What it is about.
    name: &'static str,
    /// The requests (the marker is appended unless `terminal`).
    bytes: &'static [u8],
    /// The last request is a protocol error: read until close, no marker.
    terminal: bool,
    /// Half-close the connection after writing.
    half_close: bool,
    /// Still differs today (strict: an open case that matches fails the test, so the
    /// generator filter is removed when it is fixed). Fixed cases stay as
    /// regression cases with `open: false`.
    open: bool,
}

const KNOWN: &[Case] = &[
    Case {
        // Redis queues HELLO, AUTH, CLIENT ..., SELECT n inside MULTI and applies them
        // at EXEC. The proxy keeps that state itself and refuses them inside MULTI
        // (the transaction fails at EXEC): a documented difference, kept open.
        name: "client-state-in-multi",
        bytes: b"MULTI\r\nHELLO 3\r\nCLIENT SETNAME x\r\n",
        terminal: false,
        half_close: false,
        open: true,
    },
    Case {
        // Redis queues it (+QUEUED). The proxy refuses it on purpose (a subscription
        // inside a transaction would subscribe the transaction's connection), and the
        // transaction fails at EXEC: a documented difference, kept open.
        name: "pubsub-in-multi",
        bytes: b"MULTI\r\nPUNSUBSCRIBE {r}:ch*\r\n",
        terminal: false,
        half_close: false,
        open: true,
    },
    Case {
        // Redis: the confirmation, then the protocol error, then it closes. The proxy
        // sends nothing at all and keeps the connection open ("no reply within 5 s").
        name: "subscribed-then-protocol-error",
        bytes: b"SUBSCRIBE {r}:ch\r\n*abc\r\n",
        terminal: true,
        half_close: false,
        open: false,
    },
    Case {
        // Redis 7.0 answers NUMSUB with an array in RESP3 too; the proxy with a map.
        name: "resp3-numsub-array",
        bytes: b"HELLO 3\r\nPUBSUB NUMSUB {r}:a {r}:b\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // Redis: `-ERR Protocol error: expected '$', got 'x'`; the proxy leaves out
        // ", got 'x'".
        name: "protocol-error-expected-dollar-got",
        bytes: b"*1\r\nx\r\n",
        terminal: true,
        half_close: false,
        open: false,
    },
    Case {
        // The client's dedicated backend connection keeps the protocol it was opened
        // with: after HELLO 3 a timed-out BLPOP answers `*-1` (Redis: `_`), and after
        // HELLO 3, WATCH, HELLO 2 it answers `_` (Redis: `*-1`).
        name: "dedicated-connection-ignores-hello",
        bytes: b"BLPOP {r}:l 0.01\r\nHELLO 3\r\nBLPOP {r}:l 0.01\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // Redis answers a repeated channel twice ([a, 0, a, 0]); the proxy once.
        name: "numsub-repeated-channel",
        bytes: b"PUBSUB NUMSUB {r}:a {r}:a\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // RESP2 subscribe mode, EXEC: Redis `-EXECABORT Transaction discarded because
        // of: Can't execute 'exec': ...`; the proxy `-ERR Can't execute 'exec': ...`.
        name: "exec-in-subscribe-mode-execabort",
        bytes: b"SUBSCRIBE {r}:a\r\nEXEC\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // Redis formats "with args beginning with: 'a' " with %s, which stops at a
        // NUL byte; the proxy quotes the whole argument ('a\0b').
        name: "unknown-command-args-cut-at-nul",
        bytes: b"*2\r\n$4\r\nGETT\r\n$3\r\na\x00b\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // Redis queues UNWATCH inside MULTI (+QUEUED); the proxy answers +OK at once.
        name: "unwatch-in-multi",
        bytes: b"MULTI\r\nUNWATCH\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // A rejected EXEC: Redis `-EXECABORT Transaction discarded because of: wrong
        // number of arguments for 'exec' command`; the proxy `-ERR wrong number ...`.
        name: "exec-wrong-arity-execabort",
        bytes: b"EXEC x\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
    Case {
        // RESP3, subscribed, PUBLISH to that channel: Redis pushes the message before
        // PUBLISH's :1 (it delivers while executing); the proxy answers :1 first and the
        // message after it (it comes through the subscriber connection). A race on the
        // proxy side: it may match by chance, so `open` is not checked strictly.
        name: "resp3-publish-to-own-channel",
        bytes: b"HELLO 3\r\nSUBSCRIBE {r}:a\r\nPUBLISH {r}:a m\r\n",
        terminal: false,
        half_close: false,
        open: true,
    },
    Case {
        // An empty transaction (MULTI then EXEC, or only keyless commands such as
        // SELECT 0 between them), pipelined with
        // other requests: the proxy often answers +OK to MULTI and then nothing more
        // (no reply to EXEC and what follows within 5 s; here about one run in two,
        // with 20 clients at once nearly every client hits it within seconds). Redis:
        // +OK, [], nil, +RESET, marker.
        name: "empty-multi-exec-hang",
        bytes: b"MULTI\r\nEXEC\r\nBRPOPLPUSH {r}:l1 {r}:l2 0.1\r\n",
        terminal: false,
        half_close: false,
        open: false,
    },
];

/// Open cases whose proxy answer is a race (may match by chance): not strict.
const RACY: &[&str] = &["resp3-publish-to-own-channel"];

/// True when `s` hits a known, still-open difference (see KNOWN): such sequences are
/// skipped by the random test until the proxy is fixed. Remove a clause with its fix.
/// (The connection model here is rough: it errs on the side of skipping.)
fn known_open_difference(s: &Seq) -> bool {
    const SUBSCRIBES: &[&str] = &["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"];
    const PUBSUB: &[&str] = &[
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
    ];
    let (mut multi, mut subscribed, mut resp3) = (false, false, false);
    for it in &s.items {
        let name = it.name();
        let args = it.args.as_deref().unwrap_or_default();
        let arg = |i: usize| {
            args.get(i)
                .map(|a| a.to_ascii_uppercase())
                .unwrap_or_default()
        };
        // KNOWN "pubsub-in-multi"
        if multi && PUBSUB.contains(&name.as_str()) {
            return true;
        }
        // KNOWN "client-state-in-multi"
        const CLIENT_STATE: &[&str] = &["HELLO", "AUTH", "CLIENT", "SELECT", "INFO", "CONFIG"];
        if multi && CLIENT_STATE.contains(&name.as_str()) && !(name == "SELECT" && arg(1) == b"0") {
            return true;
        }
        // KNOWN "resp3-publish-to-own-channel"
        if name == "PUBLISH" && subscribed && resp3 {
            return true;
        }
        // (MULTI, EXEC, DISCARD, RESET with arguments are errors: no state change.)
        match name.as_str() {
            "MULTI" => multi = true,
            "EXEC" | "DISCARD" if args.len() == 1 => multi = false,
            "RESET" if args.len() == 1 => (multi, subscribed, resp3) = (false, false, false),
            "HELLO" if arg(1) == b"3" => resp3 = true,
            "HELLO" if arg(1) == b"2" => resp3 = false,
            n if SUBSCRIBES.contains(&n) => subscribed = true,
            _ => {}
        }
    }
    false
}

// ---------------------------------------------------------------------------
// Running one pipeline against one side.
// ---------------------------------------------------------------------------

/// How a side's reply stream ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    /// The marker's reply arrived.
    Marker,
    /// The peer closed the connection.
    Closed,
    /// Nothing more within the deadline.
    Timeout(Duration),
    /// The bytes are not RESP.
    Garbage(String),
}

/// The replies (each with its exact bytes) one side sent, and how it ended.
#[derive(Clone)]
struct Outcome {
    replies: Vec<(Reply, Vec<u8>)>,
    /// Bytes of an incomplete trailing reply.
    leftover: usize,
    end: End,
}

/// Splits `buf[*pos..]` into complete replies, advancing `pos`.
fn take_replies(
    buf: &[u8],
    pos: &mut usize,
    out: &mut Vec<(Reply, Vec<u8>)>,
) -> Result<(), String> {
    loop {
        if *pos == buf.len() {
            return Ok(());
        }
        let mut cur = Cursor::new(&buf[*pos..]);
        match read_reply(&mut cur) {
            Ok(r) => {
                let n = cur.position() as usize;
                out.push((r, buf[*pos..*pos + n].to_vec()));
                *pos += n;
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("{e} at byte {}", *pos)),
        }
    }
}

/// Sends `bytes` to 127.0.0.1:`port` on a new connection (from a writer thread) and
/// reads replies until `marker`'s reply (unless `to_close`: then until the peer
/// closes), the peer closes, or `timeout`.
fn run_side(
    port: u16,
    bytes: &[u8],
    marker: &[u8],
    to_close: bool,
    half_close: bool,
    timeout: Duration,
) -> Outcome {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let mut w = s.try_clone().expect("clone socket");
    let marker_reply = Reply::Bulk(marker.to_vec());
    std::thread::scope(|sc| {
        sc.spawn(move || {
            // The peer may close early (protocol error): a failed write is not ours to judge.
            let _ = w.write_all(bytes);
            if half_close {
                let _ = w.shutdown(Shutdown::Write);
            }
        });
        let deadline = Instant::now() + timeout;
        let (mut buf, mut pos, mut replies) = (Vec::new(), 0, Vec::new());
        let mut chunk = vec![0u8; 256 * 1024];
        let end = loop {
            match s.read(&mut chunk) {
                Ok(0) => break End::Closed,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    let before = replies.len();
                    if let Err(e) = take_replies(&buf, &mut pos, &mut replies) {
                        break End::Garbage(e);
                    }
                    if !to_close && replies[before..].iter().any(|(r, _)| *r == marker_reply) {
                        break End::Marker;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        break End::Timeout(timeout);
                    }
                }
                Err(_) => break End::Closed, // reset
            }
        };
        // Stop a writer still blocked on a peer that stopped reading.
        let _ = s.shutdown(Shutdown::Both);
        Outcome {
            leftover: buf.len() - pos,
            replies,
            end,
        }
    })
}

/// Sends the sequence to both sides at once and returns (redis, proxy).
fn run_both(redis: u16, proxy: u16, seq: &Seq, marker: &str) -> (Outcome, Outcome) {
    let bytes = seq.bytes(marker);
    let to_close = seq.half_close || seq.terminal();
    std::thread::scope(|sc| {
        let r = sc.spawn(|| {
            run_side(
                redis,
                &bytes,
                marker.as_bytes(),
                to_close,
                seq.half_close,
                REPLY_TIMEOUT,
            )
        });
        let p = run_side(
            proxy,
            &bytes,
            marker.as_bytes(),
            to_close,
            seq.half_close,
            REPLY_TIMEOUT,
        );
        (r.join().expect("redis side"), p)
    })
}

// ---------------------------------------------------------------------------
// Comparing.
// ---------------------------------------------------------------------------

/// A reply to HELLO: an array or map whose first key is "server".
fn is_hello_reply(r: &Reply) -> bool {
    match r {
        Reply::Map(kv) => kv.first().is_some_and(|(k, _)| *k == Reply::bulk("server")),
        Reply::Array(v) => v.first().is_some_and(|k| *k == Reply::bulk("server")),
        _ => false,
    }
}

/// HELLO's reply with the values of `id` (a connection number: the proxy's own) and
/// `version` (the proxy may report its own) blanked.
fn mask_hello(r: &Reply) -> Reply {
    let masked = |k: &Reply| *k == Reply::bulk("id") || *k == Reply::bulk("version");
    match r {
        Reply::Map(kv) => Reply::Map(
            kv.iter()
                .map(|(k, v)| (k.clone(), if masked(k) { Reply::Nil } else { v.clone() }))
                .collect(),
        ),
        Reply::Array(v) => {
            let mut out = v.clone();
            for i in (0..out.len().saturating_sub(1)).step_by(2) {
                if masked(&v[i]) {
                    out[i + 1] = Reply::Nil;
                }
            }
            Reply::Array(out)
        }
        other => other.clone(),
    }
}

/// Mask 1 of 2: two replies are the same when their bytes are, or when both are
/// HELLO replies equal but for `id` and `version`.
fn same_reply(a: &(Reply, Vec<u8>), b: &(Reply, Vec<u8>)) -> bool {
    a.1 == b.1
        || (is_hello_reply(&a.0) && is_hello_reply(&b.0) && mask_hello(&a.0) == mask_hello(&b.0))
}

/// `(kind, channel, count)` of an unsubscribe confirmation (RESP2 array or RESP3 push).
fn unsub_parts(r: &Reply) -> Option<(&[u8], &[u8], i64)> {
    let (Reply::Array(v) | Reply::Push(v)) = r else {
        return None;
    };
    match v.as_slice() {
        [Reply::Bulk(k), Reply::Bulk(ch), Reply::Int(n)]
            if [&b"unsubscribe"[..], b"punsubscribe", b"sunsubscribe"].contains(&k.as_slice()) =>
        {
            Some((k, ch, *n))
        }
        _ => None,
    }
}

/// Mask 2 of 2: an UNSUBSCRIBE (PUNSUBSCRIBE, SUNSUBSCRIBE) without arguments
/// confirms the channels in the order Redis walks the client's hash table of them,
/// which depends on each process's random hash seed. So in each run of consecutive
/// confirmations of one kind the channel names are sorted (the counts, which must
/// go down one by one, stay where they are).
fn normalise_unsubscribes(replies: &mut [(Reply, Vec<u8>)]) {
    let mut i = 0;
    while i < replies.len() {
        let Some((kind, _, _)) = unsub_parts(&replies[i].0) else {
            i += 1;
            continue;
        };
        let kind = kind.to_vec();
        let mut j = i + 1;
        while j < replies.len() && unsub_parts(&replies[j].0).is_some_and(|(k, _, _)| k == kind) {
            j += 1;
        }
        if j - i > 1 {
            let mut names: Vec<Vec<u8>> = replies[i..j]
                .iter()
                .map(|r| unsub_parts(&r.0).unwrap().1.to_vec())
                .collect();
            names.sort();
            for (r, name) in replies[i..j].iter_mut().zip(names) {
                let push = matches!(r.0, Reply::Push(_));
                let count = unsub_parts(&r.0).unwrap().2;
                let parts = vec![
                    Reply::Bulk(kind.clone()),
                    Reply::Bulk(name.clone()),
                    Reply::Int(count),
                ];
                let mut raw = format!("{}3\r\n${}\r\n", if push { '>' } else { '*' }, kind.len())
                    .into_bytes();
                raw.extend_from_slice(&kind);
                raw.extend_from_slice(format!("\r\n${}\r\n", name.len()).as_bytes());
                raw.extend_from_slice(&name);
                raw.extend_from_slice(format!("\r\n:{count}\r\n").as_bytes());
                *r = (
                    if push {
                        Reply::Push(parts)
                    } else {
                        Reply::Array(parts)
                    },
                    raw,
                );
            }
        }
        i = j;
    }
}

/// None when both sides answered the same; else where and how they differ.
fn difference(r: &Outcome, p: &Outcome) -> Option<String> {
    let (mut r, mut p) = (r.clone(), p.clone());
    normalise_unsubscribes(&mut r.replies);
    normalise_unsubscribes(&mut p.replies);
    let (r, p) = (&r, &p);
    let n = r.replies.len().min(p.replies.len());
    if let Some(i) = (0..n).find(|&i| !same_reply(&r.replies[i], &p.replies[i])) {
        let (a, b) = (&r.replies[i], &p.replies[i]);
        let (mut sa, mut sb) = (a.0.to_string(), b.0.to_string());
        if sa == sb {
            // Same value, other encoding (e.g. `*-1` and `_`): show the bytes.
            let cut = |v: &[u8]| escape(&v[..v.len().min(200)]);
            (sa, sb) = (cut(&a.1), cut(&b.1));
        }
        return Some(format!("reply {i} differs:\n  redis: {sa}\n  proxy: {sb}"));
    }
    if r.replies.len() != p.replies.len() {
        return Some(format!(
            "redis sent {} replies, the proxy {}",
            r.replies.len(),
            p.replies.len()
        ));
    }
    if r.end != p.end {
        let say = |e: &End| match e {
            End::Timeout(t) => format!("no reply within {} s", t.as_secs_f32()),
            other => format!("{other:?}"),
        };
        return Some(format!(
            "ends differ: redis {}, proxy {}",
            say(&r.end),
            say(&p.end)
        ));
    }
    if let End::Timeout(t) = r.end {
        return Some(format!(
            "no reply within {} s from either side",
            t.as_secs_f32()
        ));
    }
    if r.leftover != p.leftover {
        return Some(format!(
            "incomplete trailing bytes: redis {}, proxy {}",
            r.leftover, p.leftover
        ));
    }
    None
}

/// Both streams, one reply a line, long values cut.
fn show_streams(r: &Outcome, p: &Outcome) -> String {
    let mut s = String::new();
    for (name, o) in [("redis", r), ("proxy", p)] {
        s.push_str(&format!(
            "  {name} ({} replies, end {:?}):\n",
            o.replies.len(),
            o.end
        ));
        for (i, (rep, _)) in o.replies.iter().enumerate() {
            s.push_str(&format!("    {i:>3} {rep}\n"));
        }
    }
    s
}

// ---------------------------------------------------------------------------
// The fixture: one redis-server, and a proxy over three.
// ---------------------------------------------------------------------------

struct Sides {
    redis: RedisServer,
    cluster: Cluster,
}

impl Sides {
    fn start() -> Sides {
        Sides {
            redis: RedisServer::start(),
            cluster: Cluster::start(3, ""),
        }
    }

    /// FLUSHALL everywhere, directly (the proxy refuses it by default).
    fn flush(&self) {
        assert_eq!(self.redis.cmd(&["FLUSHALL"]), Reply::ok());
        for n in &self.cluster.nodes {
            assert_eq!(n.cmd(&["FLUSHALL"]), Reply::ok());
        }
    }

    fn run(&self, seq: &Seq, marker: &str) -> (Outcome, Outcome) {
        self.flush();
        run_both(self.redis.port(), self.cluster.proxy.port(), seq, marker)
    }

    /// Some difference, or None.
    fn check(&self, seq: &Seq, marker: &str) -> Option<String> {
        let (r, p) = self.run(seq, marker);
        difference(&r, &p)
    }

    /// Removes requests while a difference persists (at most `tries` runs).
    fn minimise(&self, mut seq: Seq, marker: &str, tries: usize) -> Seq {
        let mut runs = 0;
        let until = Instant::now() + Duration::from_secs(15);
        let tries = &mut move |runs: usize| runs < tries && Instant::now() < until;
        let mut chunk = (seq.items.len() / 2).max(1);
        while chunk >= 1 && tries(runs) {
            let mut i = 0;
            let mut removed_any = false;
            while i < seq.items.len() && tries(runs) {
                let end = (i + chunk).min(seq.items.len());
                let removed: Vec<_> = seq.items.drain(i..end).collect();
                runs += 1;
                if !seq.items.is_empty() && self.check(&seq, marker).is_some() {
                    removed_any = true;
                } else {
                    for (j, it) in removed.into_iter().enumerate() {
                        seq.items.insert(i + j, it);
                    }
                    i += chunk;
                }
            }
            if chunk == 1 && !removed_any {
                break;
            }
            chunk = (chunk / 2).max(1);
        }
        seq
    }
}

// ---------------------------------------------------------------------------
// Seeds.
// ---------------------------------------------------------------------------

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn budget() -> Duration {
    env_u64("RINGPROXY_FUZZ_SECS").map_or(BUDGET, Duration::from_secs)
}

/// The sequence `n` of run `seed`: its own generator, so it replays alone.
fn sequence(seed: u64, n: usize, profile_pick: u64) -> (Seq, String) {
    let s = splitmix(seed ^ splitmix(n as u64));
    let tag = format!("t{n}");
    let half_close = profile_pick.is_multiple_of(10);
    let profile = if half_close {
        Profile::HalfClose
    } else {
        Profile::Diff
    };
    let mut g = Gen::new(s, &tag, profile);
    (g.seq(half_close), format!("marker-{seed:x}-{n}-{s:x}"))
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn differential_random() {
    let sides = Sides::start();
    let seeds: Vec<u64> = env_u64("RINGPROXY_FUZZ_SEED").map_or(CI_SEEDS.to_vec(), |s| vec![s]);
    let only = env_u64("RINGPROXY_FUZZ_SEQ").map(|n| n as usize);
    let started = Instant::now();
    let deadline = started + budget();
    let (mut sequences, mut requests, mut skipped) = (0usize, 0usize, 0usize);
    let mut failures: Vec<String> = Vec::new();
    'seeds: for (k, &seed) in seeds.iter().enumerate() {
        // Each seed gets its share of the budget, so every CI seed is exercised.
        let seed_deadline = started + budget().mul_f64((k + 1) as f64 / seeds.len() as f64);
        let range = match only {
            Some(n) => n..n + 1,
            None => 0..MAX_SEQUENCES,
        };
        for n in range {
            if Instant::now() >= deadline || sequences >= MAX_SEQUENCES || failures.len() >= 8 {
                break 'seeds;
            }
            if Instant::now() >= seed_deadline {
                continue 'seeds;
            }
            let (seq, marker) = sequence(seed, n, splitmix(seed.wrapping_add(n as u64)));
            if known_open_difference(&seq) {
                skipped += 1;
                continue;
            }
            sequences += 1;
            requests += seq.items.len();
            let (r, p) = sides.run(&seq, &marker);
            if let Some(diff) = difference(&r, &p) {
                let mut report = format!(
                    "DIFFERENCE seed={seed:#x} sequence={n} half_close={}: {diff}\n\
                     reproduce: RINGPROXY_FUZZ_SEED={seed:#x} RINGPROXY_FUZZ_SEQ={n} cargo test --locked --test differential differential_random -- --nocapture\n\
                     requests:\n{}replies:\n{}",
                    seq.half_close,
                    seq.show(),
                    show_streams(&r, &p)
                );
                let half_close = seq.half_close;
                let min = sides.minimise(seq, &marker, 150);
                let (r, p) = sides.run(&min, &marker);
                if let Some(d) = difference(&r, &p) {
                    report.push_str(&format!(
                        "minimised ({} requests, half_close={half_close}): {d}\nrequests:\n{}bytes: {}\nreplies:\n{}",
                        min.items.len(),
                        min.show(),
                        escape(&min.items.iter().flat_map(|i| i.bytes.clone()).collect::<Vec<u8>>()),
                        show_streams(&r, &p)
                    ));
                }
                eprintln!("{report}");
                failures.push(report);
            }
        }
    }
    let secs = started.elapsed().as_secs_f32();
    eprintln!(
        "differential_random: {sequences} sequences, {requests} requests compared, {skipped} skipped by known_open_difference, 1 client at a time, {secs:.1} s, seeds {seeds:x?}"
    );
    assert!(
        failures.is_empty(),
        "{} difference(s), first:\n{}",
        failures.len(),
        failures[0]
    );
    if only.is_none() {
        assert!(
            sequences >= MIN_SEQUENCES && requests >= MIN_REQUESTS,
            "only {sequences} sequences / {requests} requests compared in {secs:.1} s (need {MIN_SEQUENCES} / {MIN_REQUESTS}): the run proves too little"
        );
    }
}

/// Bytes written as printed in a report (`\xNN` escapes, everything else as is).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1) == Some(&b'x')
            && i + 4 <= b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// One case by hand: `RINGPROXY_FUZZ_CASE='<bytes as printed>' [RINGPROXY_FUZZ_HALF_CLOSE=1]
/// [RINGPROXY_FUZZ_TERMINAL=1] cargo test --locked --test differential probe -- --ignored --nocapture`.
#[test]
#[ignore]
fn probe() {
    let bytes = unescape(&std::env::var("RINGPROXY_FUZZ_CASE").expect("RINGPROXY_FUZZ_CASE"));
    let flag = |n: &str| std::env::var(n).is_ok_and(|v| v == "1");
    let seq = Seq {
        items: vec![generate::Item {
            show: escape(&bytes),
            bytes,
            terminal: flag("RINGPROXY_FUZZ_TERMINAL"),
            args: None,
        }],
        half_close: flag("RINGPROXY_FUZZ_HALF_CLOSE"),
    };
    let sides = Sides::start();
    let (r, p) = sides.run(&seq, "probe-marker");
    eprintln!("{:?}\n{}", difference(&r, &p), show_streams(&r, &p));
}

#[test]
fn regression_cases() {
    let sides = Sides::start();
    let mut problems = Vec::new();
    for (i, case) in KNOWN.iter().enumerate() {
        let marker = format!("regression-marker-{i}");
        let seq = Seq {
            items: vec![generate::Item {
                bytes: case.bytes.to_vec(),
                show: escape(case.bytes),
                terminal: case.terminal,
                args: None,
            }],
            half_close: case.half_close,
        };
        let (r, p) = sides.run(&seq, &marker);
        match (difference(&r, &p), case.open) {
            (None, false) => {}
            (Some(d), true) => eprintln!("regression case {:?} still differs (open): {d}", case.name),
            (Some(d), false) => problems.push(format!(
                "case {:?} differs: {d}\nbytes: {}\n{}",
                case.name,
                escape(case.bytes),
                show_streams(&r, &p)
            )),
            (None, true) if RACY.contains(&case.name) => {}
            (None, true) => problems.push(format!(
                "case {:?} now matches Redis: set `open: false` and remove its clause from known_open_difference",
                case.name
            )),
        }
    }
    eprintln!("regression_cases: {} cases", KNOWN.len());
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Reads exactly `n` replies, or says after how many it stopped.
/// Reads exactly `n` replies; else the error with the number of replies received.
fn read_n(s: &mut TcpStream, n: usize, deadline: Instant) -> Result<Vec<Reply>, (String, usize)> {
    let (mut buf, mut pos, mut replies) = (Vec::new(), 0, Vec::new());
    let mut chunk = vec![0u8; 256 * 1024];
    while replies.len() < n {
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err((
                    format!("closed after {} of {n} replies", replies.len()),
                    replies.len(),
                ));
            }
            Ok(k) => {
                buf.extend_from_slice(&chunk[..k]);
                take_replies(&buf, &mut pos, &mut replies).map_err(|e| (e, replies.len()))?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() >= deadline {
                    let msg = format!(
                        "{} of {n} replies, no reply within {} s",
                        replies.len(),
                        REPLY_TIMEOUT.as_secs()
                    );
                    return Err((msg, replies.len()));
                }
            }
            Err(e) => {
                return Err((
                    format!("{e} after {} of {n} replies", replies.len()),
                    replies.len(),
                ));
            }
        }
    }
    if replies.len() > n || pos != buf.len() {
        let msg = format!(
            "{} replies (and {} more bytes) to {n} requests",
            replies.len(),
            buf.len() - pos
        );
        return Err((msg, n));
    }
    Ok(replies.into_iter().map(|(r, _)| r).collect())
}

#[test]
fn concurrent_clients_get_every_reply() {
    const CLIENTS: usize = 20;
    let cl = Cluster::start(3, "");
    let port = cl.proxy.port();
    let seed = env_u64("RINGPROXY_FUZZ_SEED").unwrap_or(CI_SEEDS[0]);
    let started = Instant::now();
    let deadline = started + budget() / 2;
    let (sequences, requests, skipped) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let failures: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (sequences, requests, skipped) = (&sequences, &requests, &skipped);
                sc.spawn(move || -> Option<String> {
                    for n in 0.. {
                        if Instant::now() >= deadline {
                            return None;
                        }
                        let s = splitmix(seed ^ splitmix((c as u64) << 32 | n));
                        // A third of the sequences share keys with every other client
                        // (blocking pops woken by others' pushes), the rest are private.
                        let tag = if n % 3 == 0 { "shared".to_string() } else { format!("c{c}") };
                        let seq = Gen::new(s, &tag, Profile::OneReply).seq(false);
                        if known_open_difference(&seq) {
                            skipped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let marker = format!("marker-{c}-{n}");
                        let bytes = seq.bytes(&marker);
                        let expect = seq.items.len() + 2; // + RESET + ECHO
                        let addr = SocketAddr::from(([127, 0, 0, 1], port));
                        let mut st = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
                        st.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                        st.set_write_timeout(Some(REPLY_TIMEOUT)).unwrap();
                        let mut w = st.try_clone().unwrap();
                        let got = std::thread::scope(|s2| {
                            s2.spawn(move || {
                                let _ = w.write_all(&bytes);
                            });
                            let r = read_n(&mut st, expect, Instant::now() + REPLY_TIMEOUT);
                            let _ = st.shutdown(Shutdown::Both);
                            r
                        });
                        let bad = match got {
                            Err((e, got)) => Some((e, got)),
                            Ok(r) if r[expect - 1] != Reply::bulk(&marker) || r[expect - 2] != Reply::Status("RESET".into()) => Some((
                                format!("the last two replies are {} and {}, not +RESET and the marker", r[expect - 2], r[expect - 1]),
                                expect,
                            )),
                            Ok(_) => None,
                        };
                        if let Some((e, got)) = bad {
                            let first_missing = match seq.items.get(got) {
                                Some(it) => format!("first request without a reply: #{got} {}", it.show),
                                None => format!("first request without a reply: #{got} (RESET or ECHO)"),
                            };
                            let report = format!(
                                "client {c} sequence {n} (seed {seed:#x}): {e}; {first_missing}\nrequests:\n{}",
                                seq.show()
                            );
                            eprintln!("{report}");
                            return Some(report);
                        }
                        sequences.fetch_add(1, Ordering::Relaxed);
                        requests.fetch_add(expect, Ordering::Relaxed);
                    }
                    None
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("client thread"))
            .collect()
    });
    let (sequences, requests, skipped) = (
        sequences.into_inner(),
        requests.into_inner(),
        skipped.into_inner(),
    );
    let secs = started.elapsed().as_secs_f32();
    eprintln!(
        "concurrent_clients_get_every_reply: {sequences} sequences, {requests} requests, {skipped} skipped by known_open_difference, {CLIENTS} clients, {secs:.1} s, seed {seed:#x}"
    );
    assert!(
        failures.is_empty(),
        "{} client(s) failed:\n{}\nfirst in full:\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.lines().next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"),
        failures[0]
    );
    assert!(
        sequences >= MIN_SEQUENCES && requests >= MIN_REQUESTS,
        "only {sequences} sequences / {requests} requests in {secs:.1} s: the run proves too little"
    );
}
