//! Unit tests of `command/keys`.

use super::*;
use crate::command::CommandTable;

fn req(line: &str) -> Request {
    Request::from_args(
        &line
            .split(' ')
            .map(|a| if a == "''" { "" } else { a })
            .collect::<Vec<_>>(),
    )
}

fn keys(t: &CommandTable, line: &str) -> Result<Vec<usize>, KeyError> {
    let r = req(line);
    let spec = t.get(&r).unwrap_or_else(|| panic!("unknown: {line}"));
    let it = spec.keys(&r)?;
    let n = it.len();
    let v: Vec<usize> = it.collect();
    assert_eq!(n, v.len(), "exact size for {line}");
    Ok(v)
}

/// Expectations checked against redis-server 7.0 COMMAND GETKEYS.
#[test]
fn key_positions_match_redis() {
    let t = CommandTable::new(&[]);
    let cases: &[(&str, &[usize])] = &[
        ("GET k", &[1]),
        ("MSET a 1 b 2", &[1, 3]),
        ("EVAL s 2 a b c", &[3, 4]),
        ("EVAL s 0", &[]),
        ("evalsha_ro s 0 x", &[]),
        ("FCALL f 1 a b", &[3]),
        ("ZUNIONSTORE d 2 a b WEIGHTS 1 2", &[1, 3, 4]),
        ("ZINTERSTORE d 1 a", &[1, 3]),
        ("ZDIFFSTORE d 0 a", &[1]),
        ("PFMERGE d", &[1]),
        ("ZUNION 2 a b", &[2, 3]),
        ("SINTERCARD 2 a b LIMIT 1", &[2, 3]),
        ("ZINTERCARD 1 a", &[2]),
        ("LMPOP 2 a b LEFT", &[2, 3]),
        ("ZMPOP 1 a MIN", &[2]),
        ("BLMPOP 0 2 a b LEFT", &[3, 4]),
        ("BZMPOP 0 1 a MIN", &[3]),
        ("XREAD COUNT 2 STREAMS a b 0 0", &[4, 5]),
        ("xread block 0 streams a 0", &[4]),
        ("XREAD STREAMS a b 0", &[2]),
        ("XREADGROUP GROUP g c COUNT 1 STREAMS a b > >", &[7, 8]),
        ("SORT a BY w_* GET # STORE d", &[1, 7]),
        ("SORT a STORE d LIMIT 0 1 STORE e", &[1, 8]),
        ("SORT a LIMIT 0 store STORE x", &[1, 6]),
        ("SORT_RO a BY x", &[1]),
        ("GEORADIUS a 0 0 1 km STORE d", &[1, 7]),
        ("GEORADIUS a 0 0 1 km STOREDIST d STORE e", &[1, 9, 7]),
        ("GEORADIUSBYMEMBER a m 1 km STORE d", &[1, 6]),
        ("MIGRATE h 1 k 0 100", &[3]),
        ("MIGRATE h 1 '' 0 100 KEYS a b", &[7, 8]),
        ("MIGRATE h 1 '' 0 100 AUTH KEYS KEYS a b", &[9, 10]),
        ("MIGRATE h 1 '' 0 100 COPY AUTH2 u p KEYS a", &[11]),
        ("MIGRATE h 1 '' 0 100 KEYS", &[3]),
        ("OBJECT ENCODING k", &[2]),
        ("MEMORY USAGE k SAMPLES 5", &[2]),
        ("LMOVE a b LEFT RIGHT", &[1, 2]),
        ("RENAME a b", &[1, 2]),
        ("SMOVE a b m", &[1, 2]),
        ("BITOP AND d a b", &[2, 3, 4]),
        ("XINFO STREAM s", &[2]),
        ("XGROUP CREATE s g 0", &[2]),
        ("WATCH a b", &[1, 2]),
        ("SPUBLISH ch m", &[]),
        ("SSUBSCRIBE a b", &[]),
        ("PING", &[]),
    ];
    for (line, want) in cases {
        assert_eq!(keys(&t, line).as_deref(), Ok(*want), "{line}");
    }
}

#[test]
fn key_errors() {
    let t = CommandTable::new(&[]);
    let cases = [
        ("EVAL s 3 a b", KeyError::TooMany),
        ("EVAL s -1 a", KeyError::Negative),
        ("EVAL s x a", KeyError::NotInteger),
        ("EVAL s 01 a", KeyError::NotInteger),
        ("EVAL s -0 a", KeyError::NotInteger),
        ("FCALL f 99999999999999999999 a", KeyError::NotInteger),
        ("FCALL f 9223372036854775807 a", KeyError::TooMany),
        ("FCALL f +1 a", KeyError::NotInteger),
        ("ZUNION 0 a", KeyError::ZeroKeys),
        ("LMPOP 4 a b LEFT", KeyError::TooMany),
        ("XREAD COUNT 1 STREAMS", KeyError::Syntax),
        ("GET", KeyError::Syntax),
        ("MIGRATE h 1 k 0 100 KEYS a b", KeyError::Syntax),
    ];
    for (line, want) in cases {
        assert_eq!(keys(&t, line), Err(want), "{line}");
    }
    assert_eq!(
        KeyError::TooMany.to_string(),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        KeyError::Negative.to_string(),
        "ERR Number of keys can't be negative"
    );
}

fn span_of(spec: &KeySpec, line: &str) -> Vec<usize> {
    let mut it = KeyIter::empty();
    spec.span(&req(line))
        .unwrap()
        .into_iter()
        .for_each(|s| it.push(s));
    it.collect()
}

#[test]
fn synthetic_specs() {
    let kw = |from| Begin::Keyword("KEYS".into(), from);
    let back = KeySpec::new(kw(-2), Find::Range(-1, 1, 0), false);
    assert_eq!(span_of(&back, "C KEYS x KEYS a b"), [4, 5]);
    assert_eq!(span_of(&back, "C a b KEYS"), Vec::<usize>::new());
    assert_eq!(span_of(&back, "C KEYS a"), [2]);
    let fwd = KeySpec::new(kw(2), Find::Range(0, 1, 0), false);
    assert_eq!(span_of(&fwd, "C KEYS x keys a"), [4]);
    let thirds = KeySpec::new(Begin::Index(1), Find::Range(-1, 1, 3), false);
    assert_eq!(span_of(&thirds, "C a b c d e f"), [1, 2]);
    let pairs = KeySpec::new(Begin::Index(1), Find::Range(-1, 2, 0), false);
    assert_eq!(span_of(&pairs, "C a 1 b 2 c"), [1, 3, 5]);
    let legacy = KeySpec::legacy(2, -2, 1).unwrap();
    assert_eq!(span_of(&legacy, "C x a b y"), [2, 3]);
    assert_eq!(KeySpec::legacy(0, 0, 0), None);
    assert_eq!(
        span_of(&KeySpec::legacy(1, 3, 2).unwrap(), "C a x b y"),
        [1, 3]
    );
}

/// Random argument vectors for every command: no panic, indices in range.
#[test]
fn no_panic_on_any_request() {
    let t = CommandTable::new(&[]);
    let vocabulary =
        "0 1 2 -1 3 01 -0 x STREAMS STORE KEYS BLOCK COUNT GROUP LIMIT BY GET AUTH AUTH2 9";
    let mut words: Vec<&str> = vocabulary.split(' ').collect();
    words.extend(["", "99999999999999999999"]);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for spec in t.iter() {
        for _ in 0..300 {
            let mut args: Vec<&str> = spec.name.split('|').collect();
            let argc = rnd(12);
            args.truncate(argc.max(1));
            while args.len() < argc {
                args.push(words[rnd(words.len())]);
            }
            let r = Request::from_args(&args);
            let got = t.get(&r).expect("known name");
            let _ = (got.arity_ok(r.argc()), super::super::class_for(got, &r));
            if let Ok(it) = got.keys(&r) {
                assert!(it.clone().all(|i| i >= 1 && i < r.argc()), "{args:?}");
            }
        }
    }
}
