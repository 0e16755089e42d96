//! What `/topology` shows of a cluster pool: the slot map version, each shard's
//! primary, replicas and slot ranges, and the redirect and refresh counts.

use super::Cluster;
use serde_json::{Value, json};

impl Cluster {
    /// The `cluster` object of the pool's `/topology` entry.
    pub fn view(&self) -> Value {
        let map = self.map();
        let shards: Vec<Value> = map
            .shards
            .iter()
            .map(|s| {
                let ranges: Vec<[u16; 2]> = s.ranges.iter().map(|&(a, b)| [a, b]).collect();
                json!({
                    "primary": s.primary,
                    "id": s.id,
                    "replicas": s.replicas,
                    "slots": ranges,
                })
            })
            .collect();
        let m = &self.metrics;
        json!({
            "slot_map_version": self.version(),
            "slots_covered": map.covered(),
            "shards": shards,
            "moved": m.moved.get(),
            "ask": m.ask.get(),
            "tryagain": m.tryagain.get(),
            "refreshes": {
                "changed": m.changed.get(),
                "unchanged": m.unchanged.get(),
                "failed": m.failed.get(),
            },
        })
    }
}
