use super::*;
use crate::route::hash::HashFunction;

fn spec(mode: HashMode, function: HashFunction, distribution: Distribution) -> PlacementSpec {
    PlacementSpec {
        mode,
        function,
        distribution,
        tag: None,
    }
}

fn ringproxy() -> PlacementSpec {
    spec(
        HashMode::Ringproxy,
        HashFunction::Ringproxy,
        Distribution::Ketama,
    )
}

fn twemproxy(distribution: Distribution) -> PlacementSpec {
    spec(HashMode::Twemproxy, HashFunction::Fnv1a64, distribution)
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.0.{}:6379", i + 1)).collect()
}

fn nodes<'a>(names: &'a [String], weights: &[u32]) -> Vec<NodeSpec<'a>> {
    names
        .iter()
        .zip(weights.iter().chain(std::iter::repeat(&1)))
        .map(|(n, &weight)| NodeSpec {
            identity: n.as_bytes(),
            weight,
            live: true,
        })
        .collect()
}

fn keys(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("key:{i}").into_bytes())
        .collect()
}

fn owners(spec: &PlacementSpec, nodes: &[NodeSpec<'_>], keys: &[Vec<u8>]) -> Vec<usize> {
    let ring = Ring::build(spec, nodes);
    keys.iter()
        .map(|k| ring.lookup_key(spec, k).expect("a live node"))
        .collect()
}

#[test]
fn twemproxy_float_rounding_gives_156_points_for_some_pool_sizes() {
    for n in [25u32, 47, 50, 55, 61, 71, 94, 100] {
        assert_eq!(twemproxy_points_per_server(1, n, n), 156, "pool of {n}");
    }
    for n in [1u32, 2, 3, 4, 5, 10, 20, 24, 26, 48] {
        assert_eq!(twemproxy_points_per_server(1, n, n), 160, "pool of {n}");
    }
    // Weighted: 1 and 3 out of 4 over two servers.
    assert_eq!(twemproxy_points_per_server(1, 4, 2), 80);
    assert_eq!(twemproxy_points_per_server(3, 4, 2), 240);
}

#[test]
fn twemproxy_point_values_from_md5_of_name_dash_index() {
    let name = ["127.0.0.1:17001".to_string()];
    let ring = Ring::build(&twemproxy(Distribution::Ketama), &nodes(&name, &[1]));
    let points: Vec<u32> = ring.points().iter().map(|p| p.0).collect();
    assert_eq!(points.len(), 160);
    for want in [0xa42f_71c8u32, 0x79d5_4154, 0x5b53_de97, 0x1c8b_5bd5] {
        assert!(points.contains(&want), "{want:#x}");
    }
    assert!(points.windows(2).all(|w| w[0] <= w[1]));
    // nutcracker's own unit test: ketama_hash("server1-8", 0) and (.., 3).
    let digest = md5_digest(b"server1-8");
    assert_eq!(le32(&digest, 0), 3_853_726_576);
    assert_eq!(le32(&digest, 12), 2_667_054_752);
}

#[test]
fn twemproxy_cuts_point_names_at_272_bytes() {
    let long = ["L".repeat(300)];
    let ring = Ring::build(&twemproxy(Distribution::Ketama), &nodes(&long, &[1]));
    let digest = md5_digest("L".repeat(272).as_bytes());
    let mut want: Vec<u32> = (0..4).map(|w| le32(&digest, w * 4)).collect();
    want.sort_unstable();
    let mut got: Vec<u32> = ring.points().iter().map(|p| p.0).collect();
    got.dedup();
    assert_eq!(got, want);
    // ringproxy mode hashes the whole name.
    let ring = Ring::build(&ringproxy(), &nodes(&long, &[1]));
    assert_eq!(ring.points().len(), 640);
    assert!(ring.points().windows(2).all(|w| w[0].0 != w[1].0));
}

#[test]
fn ringproxy_gives_640_points_per_weight() {
    let names = names(3);
    let ring = Ring::build(&ringproxy(), &nodes(&names, &[1, 2, 3]));
    let count = |n: u32| ring.points().iter().filter(|p| p.1 == n).count();
    assert_eq!((count(0), count(1), count(2)), (640, 1280, 1920));
}

#[test]
fn no_live_node_gives_none() {
    let names = names(3);
    let mut list = nodes(&names, &[]);
    list.iter_mut().for_each(|n| n.live = false);
    for distribution in [
        Distribution::Ketama,
        Distribution::Modula,
        Distribution::Random,
    ] {
        for s in [ringproxy(), twemproxy(distribution)] {
            let s = PlacementSpec { distribution, ..s };
            assert_eq!(Ring::build(&s, &list).lookup_key(&s, b"k"), None);
            assert_eq!(Ring::build(&s, &[]).lookup_key(&s, b"k"), None);
        }
    }
    let one = [NodeSpec {
        identity: b"a:1",
        weight: 1,
        live: false,
    }];
    let s = twemproxy(Distribution::Ketama);
    assert_eq!(Ring::build(&s, &one).lookup_key(&s, b"k"), None);
}

#[test]
fn single_node_takes_every_key() {
    let one = [NodeSpec {
        identity: b"a:1",
        weight: 1,
        live: true,
    }];
    for distribution in [
        Distribution::Ketama,
        Distribution::Modula,
        Distribution::Random,
    ] {
        let s = twemproxy(distribution);
        let ring = Ring::build(&s, &one);
        for key in [&b""[..], b"x", b"\xff\xfe"] {
            assert_eq!(ring.lookup_key(&s, key), Some(0));
        }
    }
}

#[test]
fn input_order_does_not_change_owners() {
    let forward = names(7);
    let mut backward = forward.clone();
    backward.reverse();
    let keys = keys(2000);
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        let s = twemproxy(distribution);
        let weights = [1, 2, 3, 1, 2, 3, 1];
        let mut rweights = weights;
        rweights.reverse();
        let a = owners(&s, &nodes(&forward, &weights), &keys);
        let b = owners(&s, &nodes(&backward, &rweights), &keys);
        let by_name = |o: &[usize], n: &[String]| -> Vec<String> {
            o.iter().map(|&i| n[i].clone()).collect()
        };
        assert_eq!(by_name(&a, &forward), by_name(&b, &backward));
    }
}

#[test]
fn modula_repeats_each_live_server_weight_times_in_sorted_order() {
    // Sorted order: "b:1" (shorter) before "aa:1".
    let list = [
        NodeSpec {
            identity: b"aa:1",
            weight: 2,
            live: true,
        },
        NodeSpec {
            identity: b"b:1",
            weight: 1,
            live: true,
        },
    ];
    let ring = Ring::build(&twemproxy(Distribution::Modula), &list);
    assert_eq!(ring.slots, vec![1, 0, 0]);
}

#[test]
fn random_only_picks_live_nodes() {
    let names = names(4);
    let mut list = nodes(&names, &[]);
    list[2].live = false;
    let s = twemproxy(Distribution::Random);
    let ring = Ring::build(&s, &list);
    let mut seen = [0usize; 4];
    for _ in 0..4000 {
        seen[ring.lookup_key(&s, b"k").expect("live")] += 1;
    }
    assert_eq!(seen[2], 0);
    assert!(
        seen.iter().enumerate().all(|(i, &c)| i == 2 || c > 500),
        "{seen:?}"
    );
}

/// Fraction of keys whose owner (by name) differs, and whether any key moved
/// between two nodes present in both lists.
fn compare(before: (&[String], &[usize]), after: (&[String], &[usize])) -> (f64, bool) {
    let mut moved = 0;
    let mut between_old = false;
    for (&b, &a) in before.1.iter().zip(after.1) {
        let (from, to) = (&before.0[b], &after.0[a]);
        if from != to {
            moved += 1;
            between_old |= before.0.contains(to) && after.0.contains(from);
        }
    }
    (moved as f64 / before.1.len() as f64, between_old)
}

#[test]
fn ringproxy_adding_a_node_moves_its_share_only() {
    let keys = keys(100_000);
    let s = ringproxy();
    for n in [1usize, 2, 4, 9] {
        let old = names(n);
        let new = names(n + 1);
        let before = owners(&s, &nodes(&old, &[]), &keys);
        let after = owners(&s, &nodes(&new, &[]), &keys);
        let (moved, between_old) = compare((&old, &before), (&new, &after));
        let expected = 1.0 / (n + 1) as f64;
        assert!(!between_old, "a key moved between two old nodes (n={n})");
        assert!(
            (moved - expected).abs() < expected * 0.35,
            "n={n}: moved {moved}, expected ~{expected}"
        );
        // Removal is the same change backwards.
        let (moved_back, between_back) = compare((&new, &after), (&old, &before));
        assert!(!between_back);
        assert!((moved_back - moved).abs() < 1e-12);
    }
}

#[test]
fn ringproxy_removing_one_node_moves_only_its_keys() {
    let keys = keys(100_000);
    let s = ringproxy();
    let names = names(6);
    let all = nodes(&names, &[]);
    let mut less = all.clone();
    less[3].live = false;
    let before = owners(&s, &all, &keys);
    let after = owners(&s, &less, &keys);
    for (b, a) in before.iter().zip(&after) {
        assert!(b == a || *b == 3, "key moved from live node {b} to {a}");
        assert_ne!(*a, 3);
    }
}

#[test]
fn ringproxy_weights_are_roughly_proportional() {
    let keys = keys(100_000);
    let names = names(4);
    let weights = [1u32, 2, 3, 4];
    let got = owners(&ringproxy(), &nodes(&names, &weights), &keys);
    for (i, &w) in weights.iter().enumerate() {
        let share = got.iter().filter(|&&o| o == i).count() as f64 / keys.len() as f64;
        let want = f64::from(w) / 10.0;
        assert!(
            (share - want).abs() < want * 0.25,
            "node {i}: {share} vs {want}"
        );
    }
}
