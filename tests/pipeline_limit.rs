//! A client that sends far more requests than `limits.max_pipeline` in one write and
//! only then reads: the proxy must keep decoding what it already buffered as replies
//! leave, with no further byte from the client to wake it.

mod common;

use common::{Cluster, Reply};
use std::time::{Duration, Instant};

#[test]
fn requests_beyond_the_pipeline_limit_are_served_without_new_input() {
    let cl = Cluster::start(3, "limits: {max_pipeline: 8}\n");
    let mut c = cl.conn();
    let cmds: Vec<Vec<String>> = (0..3000)
        .map(|i| match i % 3 {
            0 => vec!["SET".into(), format!("pl-{i}"), format!("v{i}")],
            1 => vec!["GET".into(), format!("pl-{}", i - 1)],
            _ => vec!["ECHO".into(), format!("e{i}")],
        })
        .collect();
    let t0 = Instant::now();
    let replies = c.pipeline(&cmds);
    assert!(t0.elapsed() < Duration::from_secs(20), "pipeline stalled");
    assert_eq!(replies.len(), cmds.len());
    for (i, r) in replies.iter().enumerate() {
        let want = match i % 3 {
            0 => Reply::ok(),
            1 => Reply::bulk(format!("v{}", i - 1)),
            _ => Reply::bulk(format!("e{i}")),
        };
        assert_eq!(*r, want, "reply {i}");
    }
}
