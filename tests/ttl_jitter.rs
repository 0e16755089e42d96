//! TTL jitter (issue 19): for keys matching `ttl_jitter`, the relative TTL of SET
//! (EX/PX), SETEX, PSETEX, GETEX (EX/PX), EXPIRE and PEXPIRE is lowered by up to
//! the rule's percent; everything else about the request keeps its meaning.
//!
//! - 1,000 `SET k v EX 1000` through the proxy: every TTL in [900, 1000], spread over
//!   the whole band (each tenth of it holds keys), not piled at one end;
//! - keys not matching keep their TTL exactly, and the metric does not count them;
//! - differential: every option combination sent in one pipeline to a redis-server
//!   without jitter and to the proxy: the same replies, byte for byte, and each
//!   key's TTL the same (absolute forms, refused TTLs, KEEPTTL) or within the band;
//! - MSET and other commands without a TTL are untouched.

mod common;

use common::admin::scrape;
use common::*;

/// Rule of every proxy in this file.
const JITTER: &str = "ttl_jitter:\n  - {keys: [\"session:*\", \"other-prefix:*\"], percent: 10}\n";
const REWRITTEN: &str = "ringproxy_ttl_jitter_rewritten_total";

fn rewritten(c: &Cluster) -> f64 {
    scrape(c.proxy.admin_port()).sum(REWRITTEN, &[])
}

#[test]
fn a_thousand_keys_with_one_ttl_expire_spread_over_the_band() {
    let c = Cluster::start(3, JITTER);
    let mut conn = c.conn();
    let sets: Vec<Vec<String>> = (0..1000)
        .map(|i| {
            vec![
                "SET".into(),
                format!("session:{i}"),
                "v".into(),
                "EX".into(),
                "1000".into(),
            ]
        })
        .collect();
    assert!(conn.pipeline(&sets).iter().all(|r| *r == Reply::ok()));
    let ttls: Vec<Vec<String>> = (0..1000)
        .map(|i| vec!["TTL".into(), format!("session:{i}")])
        .collect();
    let got: Vec<i64> = conn.pipeline(&ttls).iter().map(Reply::int).collect();
    // One second of slack below: TTL rounds the remaining milliseconds.
    let outside: Vec<&i64> = got.iter().filter(|t| !(899..=1000).contains(*t)).collect();
    assert!(outside.is_empty(), "TTLs outside [900, 1000]: {outside:?}");
    let mut tenths = [0usize; 10];
    for t in &got {
        tenths[((t - 900).clamp(0, 99) / 10) as usize] += 1;
    }
    // Uniform: about 100 per tenth; 40 is more than 6 standard deviations below.
    assert!(
        tenths.iter().all(|&n| n >= 40),
        "TTLs per tenth of the band: {tenths:?}"
    );
    let mean = got.iter().sum::<i64>() as f64 / got.len() as f64;
    assert!((940.0..960.0).contains(&mean), "mean TTL {mean}");
    let n = rewritten(&c);
    // A draw of 0 leaves the request as it is (1 chance in 101).
    assert!((960.0..=1000.0).contains(&n), "{REWRITTEN} = {n}");
    eprintln!(
        "ttl jitter: 1000 SET EX 1000 -> TTLs per tenth of [900,1000]: {tenths:?}, mean {mean:.1}, rewritten {n}"
    );
}

#[test]
fn keys_not_matching_keep_their_ttl_exactly() {
    let c = Cluster::start(3, JITTER);
    let mut conn = c.conn();
    let keys: Vec<String> = (0..300).map(|i| format!("plain:{i}")).collect();
    let cmds: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                "SET".into(),
                k.clone(),
                "v".into(),
                "PX".into(),
                "1000000".into(),
            ]
        })
        .collect();
    let started = std::time::Instant::now();
    conn.pipeline(&cmds);
    let pttls: Vec<Vec<String>> = keys
        .iter()
        .map(|k| vec!["PTTL".into(), k.clone()])
        .collect();
    let got: Vec<i64> = conn.pipeline(&pttls).iter().map(Reply::int).collect();
    let slack = started.elapsed().as_millis() as i64 + 5;
    // Jitter would put about 95% of them more than 5 s (0.5%) lower.
    let lowered: Vec<&i64> = got
        .iter()
        .filter(|&&t| t < 1_000_000 - slack || t > 1_000_000)
        .collect();
    assert!(lowered.is_empty(), "PTTLs changed: {lowered:?}");
    assert_eq!(rewritten(&c), 0.0);
}

/// What the TTL of a case's key must be, compared with Redis's without jitter.
#[derive(Clone, Copy, Debug)]
enum Ttl {
    /// The same.
    Same,
    /// Lowered by at most 10% (and at least Redis's minus 10% minus one second).
    Band,
}

/// (setup, request under test, TTL expectation). `K` is replaced by the case's key,
/// `T+n` by the Unix time `n` seconds from now (setups use absolute TTLs, which the
/// proxy does not lower, so both sides start from the same TTL).
/// One case: setup commands, the request under test, the TTL expected.
type Case = (
    &'static [&'static [&'static str]],
    &'static [&'static str],
    Ttl,
);

const CASES: &[Case] = &[
    (&[], &["SET", "K", "v", "EX", "1000"], Ttl::Band),
    (&[], &["set", "K", "v", "px", "1000000"], Ttl::Band),
    (&[], &["SET", "K", "v", "NX", "EX", "1000"], Ttl::Band),
    (
        &[&["SET", "K", "old"]],
        &["SET", "K", "v", "NX", "EX", "1000"],
        Ttl::Same,
    ),
    (&[], &["SET", "K", "v", "XX", "EX", "1000"], Ttl::Same),
    (
        &[&["SET", "K", "old"]],
        &["SET", "K", "v", "XX", "PX", "1000000"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "old"]],
        &["SET", "K", "v", "GET", "EX", "1000"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "old"]],
        &["SET", "K", "v", "EX", "1000", "GET", "XX"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "old", "EXAT", "T+500"]],
        &["SET", "K", "v", "KEEPTTL"],
        Ttl::Same,
    ),
    (&[], &["SET", "K", "v", "EX", "1000", "KEEPTTL"], Ttl::Same),
    (
        &[],
        &["SET", "K", "v", "EX", "1000", "PX", "1000"],
        Ttl::Same,
    ),
    (&[], &["SET", "K", "v", "EXAT", "4102444800"], Ttl::Same),
    (&[], &["SET", "K", "v", "PXAT", "4102444800000"], Ttl::Same),
    (&[], &["SET", "K", "v", "EX", "0"], Ttl::Same),
    (&[], &["SET", "K", "v", "EX", "-5"], Ttl::Same),
    (&[], &["SET", "K", "v", "EX", "010"], Ttl::Same),
    (&[], &["SET", "K", "v", "EX", "ten"], Ttl::Same),
    (&[], &["SET", "K", "v", "EX"], Ttl::Same),
    (
        &[],
        &["SET", "K", "v", "EX", "9223372036854775807"],
        Ttl::Same,
    ),
    (&[], &["SETEX", "K", "1000", "v"], Ttl::Band),
    (&[], &["SETEX", "K", "0", "v"], Ttl::Same),
    (&[], &["PSETEX", "K", "1000000", "v"], Ttl::Band),
    (
        &[&["SET", "K", "v"]],
        &["GETEX", "K", "EX", "1000"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "v"]],
        &["GETEX", "K", "PX", "1000000"],
        Ttl::Band,
    ),
    (&[], &["GETEX", "K", "EX", "1000"], Ttl::Same),
    (
        &[&["SET", "K", "v", "EXAT", "T+50"]],
        &["GETEX", "K", "PERSIST"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v"]],
        &["GETEX", "K", "EXAT", "4102444800"],
        Ttl::Same,
    ),
    (&[&["SET", "K", "v"]], &["EXPIRE", "K", "1000"], Ttl::Band),
    (
        &[&["SET", "K", "v"]],
        &["EXPIRE", "K", "1000", "NX"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "v", "EXAT", "T+50"]],
        &["EXPIRE", "K", "1000", "NX"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v"]],
        &["EXPIRE", "K", "1000", "XX"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v", "EXAT", "T+50"]],
        &["EXPIRE", "K", "1000", "XX"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "v", "EXAT", "T+50"]],
        &["EXPIRE", "K", "1000", "GT"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "v", "EXAT", "T+5000"]],
        &["EXPIRE", "K", "1000", "GT"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v", "EXAT", "T+5000"]],
        &["EXPIRE", "K", "1000", "LT"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "v", "EXAT", "T+50"]],
        &["EXPIRE", "K", "1000", "LT"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v"]],
        &["EXPIRE", "K", "1000", "NX", "XX"],
        Ttl::Same,
    ),
    (&[&["SET", "K", "v"]], &["EXPIRE", "K", "0"], Ttl::Same),
    (&[&["SET", "K", "v"]], &["EXPIRE", "K", "-1"], Ttl::Same),
    (&[], &["EXPIRE", "K", "1000"], Ttl::Same),
    (
        &[&["SET", "K", "v"]],
        &["PEXPIRE", "K", "1000000", "GT"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v"]],
        &["PEXPIRE", "K", "1000000"],
        Ttl::Band,
    ),
    (
        &[&["SET", "K", "v"]],
        &["EXPIREAT", "K", "4102444800"],
        Ttl::Same,
    ),
    (
        &[&["SET", "K", "v"]],
        &["PEXPIREAT", "K", "4102444800000"],
        Ttl::Same,
    ),
    (
        &[],
        &["MSET", "K", "v", "other-prefix:mset", "w"],
        Ttl::Same,
    ),
];

/// The case's commands with `K` replaced by `key` and `T+n` by a Unix time.
fn with_key(cmds: &[&[&str]], key: &str) -> Vec<Vec<Vec<u8>>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let arg = |a: &str| match (a, a.strip_prefix("T+")) {
        ("K", _) => key.as_bytes().to_vec(),
        (_, Some(n)) => (now + n.parse::<u64>().expect("T+seconds"))
            .to_string()
            .into_bytes(),
        _ => a.as_bytes().to_vec(),
    };
    cmds.iter()
        .map(|c| c.iter().map(|a| arg(a)).collect())
        .collect()
}

#[test]
fn every_option_keeps_its_meaning_against_redis_without_jitter() {
    let c = Cluster::start(3, JITTER);
    let reference = RedisServer::start();
    differential(&c, &reference, "2");
    differential(&c, &reference, "3");
}

/// Every case twice in one pipeline (after `HELLO proto`): setups, requests, then
/// every key's TTL; the requests' replies and the TTLs compared.
fn differential(c: &Cluster, reference: &RedisServer, proto: &str) {
    let mut setup = vec![vec![b"HELLO".to_vec(), proto.as_bytes().to_vec()]];
    let mut tested = Vec::new();
    let mut ttls = Vec::new();
    let mut keys = Vec::new();
    for round in 0..2 {
        for (i, (pre, req, _)) in CASES.iter().enumerate() {
            let key = format!("session:p{proto}:{round}:{i}");
            setup.extend(with_key(pre, &key));
            tested.extend(with_key(&[req], &key));
            ttls.push(vec![b"TTL".to_vec(), key.clone().into_bytes()]);
            keys.push(key);
        }
    }
    let run = |port: u16| {
        let mut conn = Conn::connect(port);
        let mut all: Vec<Vec<Vec<u8>>> = setup.clone();
        all.extend(tested.iter().cloned());
        all.extend(ttls.iter().cloned());
        let replies = conn.pipeline(&all);
        let tested: Vec<Reply> = replies[setup.len()..setup.len() + keys.len()].to_vec();
        let ttls: Vec<i64> = replies[setup.len() + keys.len()..]
            .iter()
            .map(Reply::int)
            .collect();
        (tested, ttls)
    };
    let (want, want_ttl) = run(reference.port());
    let (got, got_ttl) = run(c.proxy.port());
    let mut banded = 0;
    for (j, key) in keys.iter().enumerate() {
        let (_, req, ttl) = CASES[j % CASES.len()];
        assert_eq!(
            got[j], want[j],
            "{req:?} on {key}: reply differs from redis-server's (RESP{proto})"
        );
        let (w, g) = (want_ttl[j], got_ttl[j]);
        let ok = match ttl {
            Ttl::Same => (g - w).abs() <= 1,
            Ttl::Band => g <= w && g >= w - w / 10 - 1,
        };
        assert!(
            ok,
            "{req:?}: TTL {g} through the proxy, {w} on redis-server ({ttl:?})"
        );
        banded += usize::from(matches!(ttl, Ttl::Band) && g < w - 1);
    }
    // With 2 x 15 banded cases, nearly all of them are lowered.
    assert!(banded >= 20, "only {banded} TTLs were lowered");
    assert_eq!(
        c.proxy.conn().cmd(&["TTL", "other-prefix:mset"]),
        Reply::Int(-1)
    );
}
