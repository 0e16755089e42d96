use super::*;

/// A fake node: its identity and how many SCAN pages it answers (cursor 1..pages,
/// then 0).
#[derive(Clone)]
struct Fake {
    id: String,
    pages: u64,
}

fn fakes(names: &[&str]) -> Vec<Fake> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Fake {
            id: n.to_string(),
            pages: 1 + (i as u64 * 7) % 5,
        })
        .collect()
}

fn order_of(nodes: &[Fake]) -> Vec<(u16, usize)> {
    let ids: Vec<&[u8]> = nodes.iter().map(|n| n.id.as_bytes()).collect();
    walk_order(&assign_tags(&ids))
}

/// One SCAN step against `nodes`: (node identity, page) visited and the new cursor.
fn step(nodes: &[Fake], cursor: u64) -> Option<((String, u64), u64)> {
    let (tag, c) = decode_cursor(cursor.to_string().as_bytes()).expect("valid cursor");
    let s = resolve(&order_of(nodes), |_| true, tag, c)?;
    let node = &nodes[s.node];
    let reply = (s.node_cursor + 1) % node.pages.max(1);
    let next = next_cursor(s.tag, reply, s.next_tag).expect("fits");
    Some(((node.id.clone(), s.node_cursor), next))
}

#[test]
fn tags_are_unique_nonzero_and_stable() {
    let names: Vec<String> = (0..2000).map(|i| format!("node-{i}")).collect();
    let ids: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let tags = assign_tags(&ids);
    assert!(tags.iter().all(|&t| t != 0));
    let set: std::collections::HashSet<u16> = tags.iter().copied().collect();
    assert_eq!(set.len(), tags.len(), "unique despite collisions");
    // Without a collision, a node's tag is its own hash, whatever the others are.
    let few = assign_tags(&ids[..3]);
    let rev = assign_tags(&[ids[2], ids[0]]);
    assert_eq!((few[0], few[2]), (rev[1], rev[0]));
    assert_eq!(few[1], tag_of(ids[1]));
    // A colliding pair: the smaller identity keeps its tag.
    let (a, b) = (0..names.len())
        .flat_map(|i| (i + 1..names.len()).map(move |j| (i, j)))
        .find(|&(i, j)| tag_of(ids[i]) == tag_of(ids[j]))
        .expect("2000 names have a colliding pair");
    let pair = assign_tags(&[ids[b], ids[a]]);
    let (lo, hi) = if ids[a] < ids[b] { (1, 0) } else { (0, 1) };
    assert_eq!(pair[lo], tag_of(ids[a]));
    assert_ne!(pair[hi], pair[lo]);
}

#[test]
fn stable_walk_visits_every_page_once() {
    for n in [1, 2, 3, 5, 40] {
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let nodes = fakes(&refs);
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            let (page, next) = step(&nodes, cursor).expect("nodes left");
            seen.push(page);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let want: u64 = nodes.iter().map(|n| n.pages).sum();
        assert_eq!(seen.len() as u64, want, "{n} nodes");
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len(), "no page twice");
    }
}

/// Walks while the node set changes at every step (`change(step, nodes)`); every
/// page of every node present throughout must be visited.
fn walk_with_changes(start: &[&str], mut change: impl FnMut(usize, &mut Vec<Fake>)) {
    let mut nodes = fakes(start);
    let all: Vec<Fake> = nodes.clone();
    let mut present: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    for i in 0..10_000 {
        let Some((page, next)) = step(&nodes, cursor) else {
            break;
        };
        seen.insert(page);
        cursor = next;
        if cursor == 0 {
            break;
        }
        change(i, &mut nodes);
        present.retain(|id| nodes.iter().any(|n| &n.id == id));
    }
    assert_eq!(cursor, 0, "walk ends");
    for id in present {
        let n = all.iter().find(|n| n.id == id).expect("original node");
        for p in 0..n.pages {
            assert!(seen.contains(&(id.clone(), p)), "{id} page {p} skipped");
        }
    }
}

#[test]
fn walk_survives_added_removed_and_reordered_nodes() {
    let start = ["a", "b", "c", "d", "e", "f"];
    // Add a node at each of the first 20 steps.
    walk_with_changes(&start, |i, nodes| {
        if i < 20 {
            nodes.push(Fake {
                id: format!("new{i}"),
                pages: 2,
            })
        }
    });
    // Remove the first node (config order) at some steps.
    walk_with_changes(&start, |i, nodes| {
        if i % 3 == 0 && nodes.len() > 1 {
            nodes.remove(0);
        }
    });
    // Config order reversed (the walk order does not depend on it).
    walk_with_changes(&start, |_, nodes| nodes.reverse());
    // Remove the node being walked, whichever it is.
    for victim in start {
        walk_with_changes(&start, |i, nodes| {
            if i == 2 {
                nodes.retain(|n| n.id != victim);
            }
        });
    }
}

#[test]
fn skips_nodes_not_walked() {
    let nodes = fakes(&["a", "b", "c"]);
    let order = order_of(&nodes);
    let (first_tag, first) = order[0];
    let s = resolve(&order, |i| i != first, 0, 0).expect("two left");
    assert_ne!(s.node, first);
    // A cursor on a node now off the walk goes on with the next node from its start.
    let s = resolve(&order, |i| i != first, first_tag, 99).expect("next");
    assert_eq!((s.node, s.node_cursor, s.tag), (order[1].1, 0, order[1].0));
    assert_eq!(resolve(&order, |_| false, 0, 0), None);
    let last = order[2];
    let s = resolve(&order, |_| true, last.0, 5).expect("last");
    assert_eq!((s.node, s.node_cursor, s.next_tag), (last.1, 5, 0));
}

#[test]
fn cursor_bounds() {
    assert_eq!(decode_cursor(b"0"), Some((0, 0)));
    assert_eq!(decode_cursor(b"x"), None);
    assert_eq!(decode_cursor(b"-1"), None);
    assert_eq!(decode_cursor(b"65536"), None, "a node cursor without a tag");
    assert_eq!(
        decode_cursor(b"18446744073709551615"),
        Some((65535, (1 << 48) - 1))
    );
    assert_eq!(decode_cursor(b"18446744073709551616"), None);
    let max = (1u64 << NODE_CURSOR_BITS) - 1;
    assert_eq!(next_cursor(7, max, 9), Ok((max << 16) | 7));
    assert_eq!(next_cursor(7, max + 1, 9), Err(ScanReplyError::TooBig));
    assert_eq!(next_cursor(7, 0, 9), Ok(9));
    assert_eq!(next_cursor(7, 0, 0), Ok(0));
}

#[test]
fn rewrites_reply() {
    let r = Bytes::from_static(b"*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n");
    let out = rewrite_reply(&r, 3, 9).unwrap();
    let want = (17u64 << 16 | 3).to_string();
    let expect = format!("*2\r\n${}\r\n{want}\r\n*1\r\n$1\r\nk\r\n", want.len());
    assert_eq!(&out[..], expect.as_bytes());
    let end = rewrite_reply(&Bytes::from_static(b"*2\r\n$1\r\n0\r\n*0\r\n"), 2, 0).unwrap();
    assert_eq!(&end[..], EMPTY_REPLY);
    let next = rewrite_reply(&Bytes::from_static(b"*2\r\n$1\r\n0\r\n*0\r\n"), 2, 5).unwrap();
    assert_eq!(&next[..], b"*2\r\n$1\r\n5\r\n*0\r\n");
    let big = format!("{}", 1u64 << 50);
    let too_big = format!("*2\r\n${}\r\n{big}\r\n*0\r\n", big.len());
    assert_eq!(
        rewrite_reply(&Bytes::from(too_big), 2, 0),
        Err(ScanReplyError::TooBig)
    );
    assert_eq!(
        rewrite_reply(&Bytes::from_static(b"+OK\r\n"), 2, 0),
        Err(ScanReplyError::Invalid)
    );
}
