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
    let n = crate::resp::number::parse_i64(arg).ok_or(KeyError::NotInteger)?;
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
#[path = "keys_tests.rs"]
mod tests;
