//! Checks of the `cluster:` section (Redis Cluster mode, see [`crate::cluster`]): it
//! replaces `nodes`, names at least one seed, and leaves the hash settings alone
//! (keys are placed by Redis Cluster's own rule).

use super::checks::{self as ck, Report};
use super::locate::Seg::{Item, Key};
use super::*;
use std::time::Duration;

/// Shortest `cluster.refresh_interval`.
const MIN_REFRESH: Duration = Duration::from_millis(100);
/// Longest `cluster.refresh_interval`.
const MAX_REFRESH: Duration = Duration::from_secs(3600);

/// With `cluster:` set, `nodes` must be empty: the nodes come from the cluster.
pub(super) fn no_nodes(r: &mut Report, f: &FileConfig) -> Vec<NodeConfig> {
    if !f.nodes.is_empty() {
        r.problem(
            &[Key("nodes")],
            "must be empty with cluster: the nodes are the cluster's primaries (list seeds under cluster.seeds)",
        );
    }
    Vec::new()
}

/// The validated `cluster:` section, if any.
pub(super) fn cluster(r: &mut Report, f: &FileConfig) -> Option<ClusterConfig> {
    let c = f.cluster.as_ref()?;
    if c.seeds.is_empty() {
        r.problem(
            &[Key("cluster"), Key("seeds")],
            "at least one seed is required",
        );
    }
    let seeds = c
        .seeds
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = [Key("cluster"), Key("seeds"), Item(i)];
            r.check(&at, ck::host_port(s));
            NodeAddr::Tcp(s.clone())
        })
        .collect();
    let interval = [Key("cluster"), Key("refresh_interval")];
    let refresh_interval = r
        .check(
            &interval,
            ck::duration_in(c.refresh_interval, MIN_REFRESH, MAX_REFRESH),
        )
        .unwrap_or(c.refresh_interval);
    hash_unused(r, &f.hash);
    Some(ClusterConfig {
        seeds,
        refresh_interval,
    })
}

/// Keys of a cluster pool go by Redis Cluster's slot rule; other hash settings are
/// refused rather than silently ignored.
fn hash_unused(r: &mut Report, h: &HashFile) {
    let d = HashFile::default();
    let why = "is not used with cluster: keys go to the slot Redis Cluster computes (CRC16 of the {} hash tag); remove it";
    if h.mode != d.mode {
        r.problem(&[Key("hash"), Key("mode")], why);
    }
    if h.function.is_some() {
        r.problem(&[Key("hash"), Key("function")], why);
    }
    if h.distribution != d.distribution {
        r.problem(&[Key("hash"), Key("distribution")], why);
    }
    if h.tag != d.tag {
        r.problem(&[Key("hash"), Key("tag")], why);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => vec![],
            Err(p) => p.into_iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn cluster_replaces_nodes() {
        let ok = "listen: 127.0.0.1:7000\ncluster:\n  seeds: [127.0.0.1:30001]\n";
        let c = parse(ok).unwrap();
        let cl = c.pools[0].cluster.as_ref().unwrap();
        assert_eq!(
            cl.refresh_interval,
            crate::cluster::DEFAULT_REFRESH_INTERVAL
        );
        assert!(c.pools[0].nodes.is_empty());
        let both = format!("{ok}nodes:\n  - addr: 127.0.0.1:6379\n");
        assert!(problems(&both)[0].contains("nodes: must be empty with cluster"));
        let neither = "listen: 127.0.0.1:7000\n";
        assert!(problems(neither)[0].contains("at least one node"));
    }

    #[test]
    fn bad_seeds_interval_and_hash_settings_are_reported_with_lines() {
        let text = "listen: 127.0.0.1:7000\nhash:\n  tag: \"[]\"\ncluster:\n  seeds: [nohost]\n  refresh_interval: 10ms\n";
        let p = problems(text);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p.iter().any(|m| m.starts_with("line 5: cluster.seeds[0]")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("line 6: cluster.refresh_interval")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("line 3: hash.tag: is not used with cluster")),
            "{p:?}"
        );
        let empty = "listen: 127.0.0.1:7000\ncluster:\n  seeds: []\n";
        assert!(problems(empty)[0].contains("at least one seed"));
    }
}
