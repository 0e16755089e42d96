//! Sentinel failover through the proxy (issue 16).

mod common;

use common::sentinel::*;
use std::time::Instant;

/// The fixture alone, no proxy: a group of one shard (a primary and two replicas)
/// under three sentinels; `SENTINEL FAILOVER` moves the primary to a replica and the
/// old primary becomes a replica; `kill -9` of the new primary makes the sentinels
/// agree on another server; the killed one, restarted as an empty primary, is
/// turned into a replica by the sentinels.
#[test]
fn fixture_failover_direct() {
    let t = Instant::now();
    let mut g = SentinelGroup::start(1, 2);
    eprintln!("SENTINEL: 1 shard x 3 servers + 3 sentinels ready in {:?}", t.elapsed());
    let first = g.primary(0).addr();
    assert_eq!(first, g.shards[0].servers[0].addr());

    let asked = g.failover(0);
    let (second, agreed) = g.wait_new_master(0, &first);
    eprintln!("SENTINEL: SENTINEL FAILOVER agreed on after {:?}", agreed - asked);
    g.wait_demoted(0, 0);
    assert_eq!(try_role(g.shards[0].servers[0].port()).as_deref(), Ok("slave"));
    g.wait_settled(0);

    let (killed, at) = g.kill_primary(0);
    assert_eq!(g.shards[0].servers[killed].addr(), second);
    let (_, agreed) = g.wait_new_master(0, &second);
    eprintln!("SENTINEL: kill -9: new primary agreed on after {:?}", agreed - at);
    g.shards[0].servers[killed].restart();
    let demoted = g.wait_demoted(0, killed);
    eprintln!("SENTINEL: restarted old primary demoted after {:?}", demoted - agreed);
}
