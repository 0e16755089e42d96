//! Which arguments of a request are keys, by Redis 7 key specs.
//!
//! A key spec is a begin search (a fixed index, or a keyword searched forwards or,
//! with a negative `startfrom`, backwards from the end) followed by a find-keys rule
//! (a range, possibly split into `limit` parts, or a `numkeys` argument). As Redis
//! does, two commands whose specs are marked `unknown`/`incomplete` use a
//! hand-written procedure instead: SORT (the STORE destination) and MIGRATE (KEYS).
//! Specs flagged `not_key` (shard channels of SPUBLISH/SSUBSCRIBE) yield no keys.
//!
//! Everything here works on untrusted requests: no panic, no allocation.

use crate::resp::Request;

/// Most key specs one command may have (Redis 7.0 uses at most 3).
pub const MAX_SPECS: usize = 3;

/// Why the keys of a request cannot be found. `Display` is the full error line
/// without the leading `-` (Redis texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A `numkeys` argument is not an integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// A `numkeys` argument is negative.
    #[error("ERR Number of keys can't be negative")]
    Negative,
    /// A `numkeys` argument is larger than the arguments that follow it.
    #[error("ERR Number of keys can't be greater than number of args")]
    TooMany,
    /// `numkeys` is 0 for a command that needs at least one key.
    #[error("ERR numkeys should be greater than 0")]
    ZeroKeys,
    /// A key argument is missing (also: a mandatory key cannot be found).
    #[error("ERR syntax error")]
    Syntax,
}

/// Where a key spec starts looking for keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// At this argument index.
    Index(usize),
    /// After this keyword (any case), searched from `startfrom` (< 0: backwards from the end).
    Keyword(Box<str>, i32),
    /// Not describable (SORT BY/GET/STORE).
    Unknown,
}

/// How a key spec finds keys from where it begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Find {
    /// (lastkey, keystep, limit): keys up to `lastkey` (relative to the begin; < 0: from
    /// the end), every `keystep`; with `limit` > 0, the first 1/limit of the rest.
    Range(i32, usize, usize),
    /// (keynumidx, firstkey, keystep): numkeys at begin+keynumidx, keys from
    /// begin+firstkey, every keystep.
    Keynum(usize, usize, usize),
    /// Not describable.
    Unknown,
}

/// One Redis 7 key spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeySpec {
    begin: Begin,
    find: Find,
    not_key: bool,
}

/// Commands whose keys Redis itself finds with a procedure (their specs are
/// `unknown` or `incomplete`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyProc {
    /// Use the key specs.
    Specs,
    /// SORT key ... [STORE dst]
    Sort,
    /// MIGRATE host port key|"" db timeout ... [KEYS k ...]
    Migrate,
}

impl KeyProc {
    /// The procedure for a command name.
    pub(crate) fn for_name(name: &str) -> KeyProc {
        match name {
            "sort" => KeyProc::Sort,
            "migrate" => KeyProc::Migrate,
            _ => KeyProc::Specs,
        }
    }
}

impl KeySpec {
    /// A spec from its parts (`not_key`: the spec names shard channels, not keys).
    pub(crate) fn new(begin: Begin, find: Find, not_key: bool) -> KeySpec {
        KeySpec {
            begin,
            find,
            not_key,
        }
    }

    /// The spec Redis derives from legacy first/last/step (none when first <= 0).
    pub(crate) fn legacy(first: i32, last: i32, step: i32) -> Option<KeySpec> {
        let begin = Begin::Index(usize::try_from(first).ok().filter(|&f| f > 0)?);
        let last = if last >= 0 {
            last.max(first) - first
        } else {
            last
        };
        let find = Find::Range(last, step.max(1) as usize, 0);
        Some(KeySpec::new(begin, find, false))
    }

    /// True unless the spec is flagged `not_key`.
    pub(crate) fn is_key(&self) -> bool {
        !self.not_key
    }

    /// True when this spec's only key is argument 1 (GET, SET, HSET, LPUSH, ...).
    pub(crate) fn is_first_arg_only(&self) -> bool {
        !self.not_key && self.begin == Begin::Index(1) && self.find == Find::Range(0, 1, 0)
    }

    /// The keys of this spec in `req`, as one span (None: no keys here).
    fn span(&self, req: &Request) -> Result<Option<Span>, KeyError> {
        match self.begin.locate(req) {
            Some(first) => self.find.span(first, req),
            None => Ok(None),
        }
    }
}

impl Begin {
    /// The index where keys start, if the spec applies to `req`.
    fn locate(&self, req: &Request) -> Option<usize> {
        match self {
            Begin::Index(i) => Some(*i),
            Begin::Keyword(kw, from) => find_keyword(req, kw.as_bytes(), *from).map(|i| i + 1),
            Begin::Unknown => None,
        }
    }
}

/// The index of `kw` searched from `from` forwards (or, when negative, from
/// argc+from backwards); it must be followed by at least one argument.
fn find_keyword(req: &Request, kw: &[u8], from: i32) -> Option<usize> {
    let argc = req.argc();
    let hit = |i: &usize| *i + 1 < argc && req.get(*i).is_some_and(|a| a.eq_ignore_ascii_case(kw));
    if from >= 0 {
        (from.max(1) as usize..argc).find(hit)
    } else {
        (1..=argc.checked_sub(from.unsigned_abs() as usize)?)
            .rev()
            .find(hit)
    }
}

impl Find {
    /// The span of keys starting at `first`.
    fn span(&self, first: usize, req: &Request) -> Result<Option<Span>, KeyError> {
        let argc = req.argc();
        if first >= argc {
            return Ok(None); // PFMERGE dst: no sources (a missing mandatory key is caught later)
        }
        match *self {
            Find::Range(last, step, limit) => Ok(range_span(first, argc, last, step, limit)),
            Find::Keynum(idx, from, step) => {
                let n = parse_numkeys(req.get(first + idx).ok_or(KeyError::Syntax)?)?;
                let start = first + from;
                if n > argc.saturating_sub(start) {
                    return Err(KeyError::TooMany);
                }
                Ok((n > 0).then(|| Span::new(start, (start + (n - 1) * step).min(argc - 1), step)))
            }
            Find::Unknown => Ok(None),
        }
    }
}

/// A range spec's span; `first < argc`.
fn range_span(first: usize, argc: usize, last: i32, step: usize, limit: usize) -> Option<Span> {
    let (first, argc, last) = (first as i64, argc as i64, i64::from(last));
    let last = match limit {
        _ if last >= 0 => first + last,
        0 => argc + last,
        lim => first + (argc - first) / lim as i64 + last,
    };
    (last >= first).then(|| Span::new(first as usize, last.min(argc - 1) as usize, step))
}

/// Parses `numkeys` strictly, as Redis does (no plus sign, spaces or leading zeros;
/// fits an i64).
fn parse_numkeys(arg: &[u8]) -> Result<usize, KeyError> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match digits {
        [b'0'] => digits.len() == arg.len(),
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    let text = std::str::from_utf8(arg).ok().filter(|_| canonical);
    let n: i64 = text
        .and_then(|t| t.parse().ok())
        .ok_or(KeyError::NotInteger)?;
    if n < 0 {
        return Err(KeyError::Negative);
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Keys of `req` by `proc` or `specs`. `mandatory`: an empty result is an error.
pub(crate) fn find(
    proc: KeyProc,
    specs: &[KeySpec],
    req: &Request,
    mandatory: bool,
) -> Result<KeyIter, KeyError> {
    let mut it = KeyIter::empty();
    match proc {
        KeyProc::Sort => sort_keys(req, &mut it),
        KeyProc::Migrate => migrate_keys(req, &mut it),
        KeyProc::Specs => {
            for spec in specs.iter().filter(|s| s.is_key()) {
                if let Some(span) = spec.span(req)? {
                    it.push(span);
                }
            }
        }
    }
    if mandatory && it.len() == 0 {
        return Err(numkeys_zero(specs, req).unwrap_or(KeyError::Syntax));
    }
    Ok(it)
}

/// ZeroKeys when the only reason for no keys is a `numkeys` of 0.
fn numkeys_zero(specs: &[KeySpec], req: &Request) -> Option<KeyError> {
    specs.iter().find_map(|s| match (&s.begin, &s.find) {
        (Begin::Index(b), Find::Keynum(idx, ..)) if req.get(b + idx) == Some(&b"0"[..]) => {
            Some(KeyError::ZeroKeys)
        }
        _ => None,
    })
}

/// Width (option word + its arguments) of `arg` if it is one of `opts`.
fn option_width(arg: &[u8], opts: &[(&str, usize)]) -> Option<usize> {
    opts.iter()
        .find(|(w, _)| arg.eq_ignore_ascii_case(w.as_bytes()))
        .map(|&(_, n)| n)
}

/// SORT: the sorted key, and the last STORE destination.
fn sort_keys(req: &Request, it: &mut KeyIter) {
    const OPTS: [(&str, usize); 4] = [("limit", 3), ("by", 2), ("get", 2), ("store", 2)];
    if req.argc() < 2 {
        return;
    }
    it.push(Span::new(1, 1, 1));
    let (mut i, mut store) = (2, None);
    while let Some(arg) = req.get(i) {
        if arg.eq_ignore_ascii_case(b"store") && i + 1 < req.argc() {
            store = Some(i + 1);
        }
        i += option_width(arg, &OPTS).unwrap_or(1);
    }
    if let Some(s) = store {
        it.push(Span::new(s, s, 1));
    }
}

/// MIGRATE: argument 3, or (when it is empty) every argument after the KEYS option.
fn migrate_keys(req: &Request, it: &mut KeyIter) {
    const OPTS: [(&str, usize); 2] = [("auth", 2), ("auth2", 3)];
    let argc = req.argc();
    let mut i = 6;
    while let Some(arg) = req.get(i).filter(|_| i + 1 < argc) {
        if arg.eq_ignore_ascii_case(b"keys") {
            if req.get(3).is_some_and(<[u8]>::is_empty) {
                it.push(Span::new(i + 1, argc - 1, 1));
            }
            return; // a key with KEYS is an error: no keys
        }
        i += option_width(arg, &OPTS).unwrap_or(1);
    }
    if argc > 3 {
        it.push(Span::new(3, 3, 1));
    }
}

/// Inclusive run of argument indices.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    next: usize,
    last: usize,
    step: usize,
}

impl Span {
    fn new(next: usize, last: usize, step: usize) -> Span {
        Span {
            next,
            last,
            step: step.max(1),
        }
    }

    fn remaining(&self) -> usize {
        if self.next > self.last {
            0
        } else {
            (self.last - self.next) / self.step + 1
        }
    }
}

/// Iterator over the argument indices of a request's keys, in key-spec order
/// (for ZUNIONSTORE: destination first). Allocation-free; exact length.
#[derive(Clone, Debug)]
pub struct KeyIter {
    spans: [Span; MAX_SPECS],
    len: usize,
    at: usize,
}

impl KeyIter {
    /// No keys.
    pub fn empty() -> KeyIter {
        KeyIter {
            spans: [Span::default(); MAX_SPECS],
            len: 0,
            at: 0,
        }
    }

    fn push(&mut self, span: Span) {
        if let Some(slot) = self.spans.get_mut(self.len) {
            *slot = span;
            self.len += 1;
        }
    }
}

impl Iterator for KeyIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.at < self.len {
            let span = &mut self.spans[self.at];
            if span.next <= span.last {
                let i = span.next;
                span.next += span.step;
                return Some(i);
            }
            self.at += 1;
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.spans[self.at..self.len]
            .iter()
            .map(Span::remaining)
            .sum();
        (n, Some(n))
    }
}

impl ExactSizeIterator for KeyIter {}

#[cfg(test)]
mod tests {
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
}
