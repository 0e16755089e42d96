//! Unit tests of `metrics/mod`.

use super::*;
use std::time::Duration;

#[test]
fn counters_render_with_names_and_labels() {
    let m = Metrics::new();
    let p = m.pool("main");
    p.request(RequestClass::Split);
    p.request_errors[RequestClass::Unknown as usize].inc();
    p.split_fanout.observe(3.0);
    let n = m.node("main", "r1");
    n.requests.inc_by(2);
    n.error(NodeErrorKind::Timeout);
    n.observe(Duration::from_micros(70));
    m.reloaded(ReloadResult::Failed);
    let out = m.render();
    for line in [
        r#"ringproxy_requests_total{class="split",pool="main"} 1"#,
        r#"ringproxy_requests_total{class="keyed",pool="main"} 0"#,
        r#"ringproxy_request_errors_total{class="unknown",pool="main"} 1"#,
        r#"ringproxy_node_requests_total{node="r1",pool="main"} 2"#,
        r#"ringproxy_node_errors_total{kind="timeout",node="r1",pool="main"} 1"#,
        r#"ringproxy_node_request_duration_seconds_bucket{node="r1",pool="main",le="0.0001"} 1"#,
        r#"ringproxy_split_fanout_bucket{pool="main",le="4"} 1"#,
        r#"ringproxy_node_up{node="r1",pool="main"} 1"#,
        r#"ringproxy_reloads_total{result="failed"} 1"#,
        r#"ringproxy_reloads_total{result="ok"} 0"#,
    ] {
        assert!(out.contains(line), "missing {line} in:\n{out}");
    }
}

#[test]
fn node_removal_removes_its_series() {
    let m = Metrics::new();
    m.node("main", "gone").error(NodeErrorKind::Down);
    let kept = m.node("main", "kept");
    m.remove_node("main", "gone");
    let out = m.render();
    assert!(!out.contains("\"gone\""), "{out}");
    assert!(out.contains(r#"ringproxy_node_up{node="kept",pool="main"} 1"#));
    kept.health_changed(false);
    let again = m.node("main", "kept");
    assert_eq!(again.up.get(), 0, "a second lookup keeps the health");
}

#[test]
fn config_hash_is_one_series() {
    let m = Metrics::new();
    m.set_config_hash("aaa");
    m.set_config_hash("bbb");
    let out = m.render();
    assert!(out.contains(r#"ringproxy_config_info{hash="bbb"} 1"#));
    assert!(!out.contains("aaa"));
}

#[test]
fn class_indexes_match_their_position() {
    for (i, c) in RequestClass::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
    }
    for (i, k) in NodeErrorKind::ALL.iter().enumerate() {
        assert_eq!(k.index(), i);
    }
}
