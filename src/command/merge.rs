//! Merging the replies of split and broadcast commands into one reply.
//!
//! Every part is a raw reply; the first error among the parts (in part order) is the
//! answer when any part failed, as a client talking to one Redis would see one error.

use super::class::{MergeKind, SplitKind};
use crate::backend::replay::{Entry, ReplayLog};
use crate::errors::BackendError;
use crate::resp::reply::{
    array_elements, array_header, integer, is_error, map_elements, reply_len,
};
use crate::resp::{Proto, encode};
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;
use std::sync::Arc;

pub mod info;
pub mod introspect;

/// How to merge, with what the split recorded.
#[derive(Debug)]
pub enum Plan {
    /// A split command.
    Split(SplitKind, Vec<(u32, u32)>),
    /// A broadcast command.
    Broadcast(MergeKind),
    /// One SCAN step on the node of scan tag `.0`; `.1` is the tag of the next node
    /// of the walk (0: none). The reply gets the proxy cursor.
    Scan(u16, u16),
    /// A broadcast that changes the pool's scripts or functions: merged as
    /// [`Plan::Broadcast`], and recorded in the pool's replay log when it succeeded.
    Record(MergeKind, Arc<ReplayLog>, Entry),
    /// INFO: the proxy's own sections and the nodes' merged (see [`info`]).
    Info(Box<info::InfoPlan>),
    /// CONFIG GET: one value per parameter; the proxy's own parameters with the
    /// proxy's values (see [`introspect`]).
    ConfigGet(Vec<(&'static str, Bytes)>),
    /// SLOWLOG GET: at most `.1` entries, newest first, marked with the node names `.0`.
    Slowlog(Vec<Arc<str>>, usize),
    /// LATENCY LATEST: every node's events, prefixed with the node names.
    LatencyLatest(Vec<Arc<str>>),
    /// A reply the proxy built already, sent once every part has answered
    /// (pub/sub confirmations).
    Fixed(Bytes),
}

/// One part's outcome.
pub type PartReply = Result<Bytes, BackendError>;

/// Merges `parts` (all present) per `plan`.
pub fn merge(plan: &Plan, parts: &[PartReply], proto: Proto) -> Bytes {
    match plan {
        Plan::Fixed(reply) => return reply.clone(),
        Plan::Info(plan) => return info::merge_info(plan, parts, proto),
        Plan::Record(kind, log, entry) => {
            let reply = merge(&Plan::Broadcast(*kind), parts, proto);
            if !is_error(&reply) {
                log.record(entry.clone());
            }
            return reply;
        }
        _ => {}
    }
    if let Some(err) = first_error(parts) {
        return err;
    }
    let ok: SmallVec<[&Bytes; 8]> = parts.iter().filter_map(|p| p.as_ref().ok()).collect();
    if let Plan::Scan(tag, next) = plan {
        return match super::scan::rewrite_reply(ok[0], *tag, *next) {
            Ok(reply) => reply,
            Err(super::scan::ScanReplyError::TooBig) => {
                Bytes::from_static(crate::errors::SCAN_CURSOR_TOO_BIG)
            }
            Err(super::scan::ScanReplyError::Invalid) => invalid(),
        };
    }
    match plan {
        Plan::Split(SplitKind::Mget, pos) => mget(&ok, pos),
        Plan::Split(SplitKind::Mset, _) | Plan::Broadcast(MergeKind::AllOk) => all_same(&ok),
        Plan::Split(SplitKind::SumInt, _) | Plan::Broadcast(MergeKind::SumInt) => sum(&ok),
        Plan::Broadcast(MergeKind::Concat) => concat(&ok),
        Plan::Broadcast(MergeKind::First) => ok[0].clone(),
        Plan::Broadcast(MergeKind::AndArrays) => and_arrays(&ok),
        Plan::Broadcast(MergeKind::FirstNonNull) => first_non_null(&ok, proto),
        Plan::Broadcast(MergeKind::Union) => union(&ok),
        Plan::Broadcast(MergeKind::SumPairs) => sum_pairs(&ok),
        Plan::Broadcast(MergeKind::MaxInt) => max_int(&ok),
        Plan::ConfigGet(own) => introspect::config_get(&ok, own, proto),
        Plan::Slowlog(names, count) => introspect::slowlog(&ok, names, *count),
        Plan::LatencyLatest(names) => introspect::latency_latest(&ok, names),
        Plan::Broadcast(MergeKind::Scan)
        | Plan::Fixed(_)
        | Plan::Scan(..)
        | Plan::Info(_)
        | Plan::Record(..) => ok[0].clone(),
    }
}

fn first_error(parts: &[PartReply]) -> Option<Bytes> {
    parts.iter().find_map(|p| match p {
        Err(e) => Some(Bytes::from_static(e.wire())),
        Ok(b) if is_error(b) => Some(b.clone()),
        Ok(_) => None,
    })
}

fn invalid() -> Bytes {
    Bytes::from_static(BackendError::Protocol.wire())
}

/// Each part answers its keys in request order, so the values are read off each
/// part front to back, with one cursor per part: (next element's offset, elements
/// taken, element count).
fn mget(parts: &[&Bytes], positions: &[(u32, u32)]) -> Bytes {
    let mut cursors: SmallVec<[(usize, u32, usize); 8]> = SmallVec::new();
    for p in parts {
        match array_header(p) {
            Some((n, first)) => cursors.push((first, 0, n)),
            None => return invalid(),
        }
    }
    // Parts that answer as asked have each element copied once: the size is exact
    // (see encode::array_header_len).
    let body: usize = parts.iter().zip(&cursors).map(|(p, c)| p.len() - c.0).sum();
    let mut out = BytesMut::with_capacity(encode::array_header_len(positions.len()) + body);
    encode::array_header(&mut out, positions.len());
    for &(part, idx) in positions {
        let (Some(p), Some((pos, taken, n))) =
            (parts.get(part as usize), cursors.get_mut(part as usize))
        else {
            return invalid();
        };
        if idx != *taken || idx as usize >= *n {
            return invalid();
        }
        let Some(len) = p
            .get(*pos..)
            .and_then(|rest| reply_len(rest).ok().flatten())
        else {
            return invalid();
        };
        out.extend_from_slice(&p[*pos..*pos + len]);
        *pos += len;
        *taken += 1;
    }
    out.freeze()
}

fn all_same(parts: &[&Bytes]) -> Bytes {
    parts[0].clone()
}

fn sum(parts: &[&Bytes]) -> Bytes {
    let mut total: i64 = 0;
    for p in parts {
        match integer(p) {
            Some(n) => total = total.saturating_add(n),
            None => return invalid(),
        }
    }
    let mut out = BytesMut::with_capacity(24);
    encode::integer(&mut out, total);
    out.freeze()
}

fn concat(parts: &[&Bytes]) -> Bytes {
    let mut all = Vec::new();
    for p in parts {
        match array_elements(p) {
            Some(e) => all.extend(e.into_iter().map(|r| p.slice(r))),
            None => return invalid(),
        }
    }
    let mut out = BytesMut::with_capacity(all.iter().map(|b| b.len()).sum::<usize>() + 16);
    encode::array_header(&mut out, all.len());
    for b in all {
        out.extend_from_slice(&b);
    }
    out.freeze()
}

fn and_arrays(parts: &[&Bytes]) -> Bytes {
    let mut acc: Option<Vec<i64>> = None;
    for p in parts {
        let Some(elems) = array_elements(p) else {
            return invalid();
        };
        let vals: Option<Vec<i64>> = elems.into_iter().map(|r| integer(&p[r])).collect();
        let Some(vals) = vals else { return invalid() };
        acc = Some(match acc {
            None => vals,
            Some(a) => a
                .iter()
                .zip(&vals)
                .map(|(x, y)| i64::from(*x != 0 && *y != 0))
                .collect(),
        });
    }
    let acc = acc.unwrap_or_default();
    let mut out = BytesMut::new();
    encode::array_header(&mut out, acc.len());
    for v in acc {
        encode::integer(&mut out, v);
    }
    out.freeze()
}

/// Elements of every array, each distinct element once, in first-seen order.
fn union(parts: &[&Bytes]) -> Bytes {
    let mut seen: Vec<Bytes> = Vec::new();
    for p in parts {
        let Some(elems) = array_elements(p) else {
            return invalid();
        };
        for r in elems {
            let e = p.slice(r);
            if !seen.contains(&e) {
                seen.push(e);
            }
        }
    }
    let mut out = BytesMut::new();
    encode::array_header(&mut out, seen.len());
    seen.iter().for_each(|e| out.extend_from_slice(e));
    out.freeze()
}

/// `[name, count, ...]` arrays (or RESP3 maps) summed per name; a map for RESP3.
/// PUBSUB NUMSUB / SHARDNUMSUB: every node answers the same channels in the
/// request's order (duplicates repeated), so counts are summed position by
/// position. An array of pairs, as Redis 7.0 sends it even to RESP3 clients.
fn sum_pairs(parts: &[&Bytes]) -> Bytes {
    let mut pairs: Vec<(Bytes, i64)> = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        let Some(elems) = array_elements(p).or_else(|| map_elements(p)) else {
            return invalid();
        };
        for (i, kv) in elems.chunks(2).enumerate() {
            let [k, v] = kv else { return invalid() };
            let (name, n) = (p.slice(k.clone()), integer(&p[v.clone()]).unwrap_or(0));
            match pairs.get_mut(i) {
                Some((_, total)) if j > 0 => *total += n,
                _ => pairs.push((name, n)),
            }
        }
    }
    let mut out = BytesMut::new();
    encode::array_header(&mut out, pairs.len() * 2);
    for (name, n) in pairs {
        out.extend_from_slice(&name);
        encode::integer(&mut out, n);
    }
    out.freeze()
}

fn max_int(parts: &[&Bytes]) -> Bytes {
    let max = parts.iter().filter_map(|p| integer(p)).max().unwrap_or(0);
    let mut out = BytesMut::new();
    encode::integer(&mut out, max);
    out.freeze()
}

/// RANDOMKEY: a random one of the nodes' non-null answers, so keys of every node
/// come back (not always the first node's).
fn first_non_null(parts: &[&Bytes], proto: Proto) -> Bytes {
    let is_null = |b: &Bytes| b.starts_with(b"$-1") || b.starts_with(b"_");
    let found: Vec<&Bytes> = parts.iter().copied().filter(|b| !is_null(b)).collect();
    if found.is_empty() {
        let mut out = BytesMut::new();
        encode::null(&mut out, proto);
        return out.freeze();
    }
    found[crate::route::ring::next_random() as usize % found.len()].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(b: &'static [u8]) -> PartReply {
        Ok(Bytes::from_static(b))
    }

    #[test]
    fn mget_reassembles_in_key_order() {
        let parts = [ok(b"*2\r\n$1\r\na\r\n$-1\r\n"), ok(b"*1\r\n$1\r\nb\r\n")];
        let plan = Plan::Split(SplitKind::Mget, vec![(0, 0), (1, 0), (0, 1)]);
        assert_eq!(
            &merge(&plan, &parts, Proto::Resp2)[..],
            b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n"
        );
    }

    #[test]
    fn sums_and_errors() {
        let plan = Plan::Split(SplitKind::SumInt, vec![]);
        assert_eq!(
            &merge(&plan, &[ok(b":2\r\n"), ok(b":3\r\n")], Proto::Resp2)[..],
            b":5\r\n"
        );
        let err = merge(
            &plan,
            &[ok(b":2\r\n"), Err(BackendError::Timeout)],
            Proto::Resp2,
        );
        assert!(err.starts_with(b"-TIMEOUT"));
        let e2 = merge(
            &plan,
            &[ok(b"-WRONGTYPE x\r\n"), ok(b":1\r\n")],
            Proto::Resp2,
        );
        assert_eq!(&e2[..], b"-WRONGTYPE x\r\n");
    }

    #[test]
    fn broadcast_merges() {
        let keys = Plan::Broadcast(MergeKind::Concat);
        assert_eq!(
            &merge(
                &keys,
                &[ok(b"*1\r\n$1\r\na\r\n"), ok(b"*0\r\n")],
                Proto::Resp2
            )[..],
            b"*1\r\n$1\r\na\r\n"
        );
        let ex = Plan::Broadcast(MergeKind::AndArrays);
        assert_eq!(
            &merge(
                &ex,
                &[ok(b"*2\r\n:1\r\n:1\r\n"), ok(b"*2\r\n:0\r\n:1\r\n")],
                Proto::Resp2
            )[..],
            b"*2\r\n:0\r\n:1\r\n"
        );
        let u = Plan::Broadcast(MergeKind::Union);
        let got = merge(
            &u,
            &[
                ok(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
                ok(b"*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
            ],
            Proto::Resp2,
        );
        assert_eq!(&got[..], b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
        let sp = Plan::Broadcast(MergeKind::SumPairs);
        let got = merge(
            &sp,
            &[
                ok(b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:0\r\n"),
                ok(b"*4\r\n$1\r\na\r\n:0\r\n$1\r\nb\r\n:2\r\n"),
            ],
            Proto::Resp2,
        );
        assert_eq!(&got[..], b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:2\r\n");
        let got3 = merge(
            &sp,
            &[
                ok(b"%1\r\n$1\r\na\r\n:1\r\n"),
                ok(b"%1\r\n$1\r\na\r\n:2\r\n"),
            ],
            Proto::Resp3,
        );
        // An array even for RESP3, as Redis 7.0 answers NUMSUB.
        assert_eq!(&got3[..], b"*2\r\n$1\r\na\r\n:3\r\n");
        let dup = merge(
            &sp,
            &[
                ok(b"*4\r\n$1\r\na\r\n:1\r\n$1\r\na\r\n:1\r\n"),
                ok(b"*4\r\n$1\r\na\r\n:2\r\n$1\r\na\r\n:2\r\n"),
            ],
            Proto::Resp2,
        );
        assert_eq!(&dup[..], b"*4\r\n$1\r\na\r\n:3\r\n$1\r\na\r\n:3\r\n");
        let mx = Plan::Broadcast(MergeKind::MaxInt);
        assert_eq!(
            &merge(&mx, &[ok(b":2\r\n"), ok(b":5\r\n")], Proto::Resp2)[..],
            b":5\r\n"
        );
        let rk = Plan::Broadcast(MergeKind::FirstNonNull);
        assert_eq!(
            &merge(&rk, &[ok(b"$-1\r\n"), ok(b"$1\r\nk\r\n")], Proto::Resp2)[..],
            b"$1\r\nk\r\n"
        );
    }
}
