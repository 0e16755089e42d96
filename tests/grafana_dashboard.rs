//! The Grafana dashboard only plots metrics the proxy exports.

use ringproxy::metrics::Metrics;
use serde_json::Value;
use std::collections::BTreeSet;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/ringproxy-dashboard.json"
);

/// Every query string of the dashboard: panel `expr`s and template variable queries.
fn queries(v: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        Value::String(s) if matches!(key, Some("expr" | "definition" | "query")) => {
            out.push(s.clone())
        }
        Value::Array(items) => items.iter().for_each(|i| queries(i, key, out)),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| queries(v, Some(k.as_str()), out)),
        _ => {}
    }
}

/// Tokens starting with `ringproxy_` at an identifier boundary.
fn metric_tokens(expr: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ringproxy_") {
        let boundary = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let tail = &rest[at..];
        let len = tail.find(|c| !is_ident(c)).unwrap_or(tail.len());
        if boundary {
            out.push(tail[..len].to_owned());
        }
        rest = &tail[len..];
    }
    out
}

/// Metric family names in a text exposition (`# TYPE name kind`).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

fn family_of<'a>(token: &'a str, names: &BTreeSet<String>) -> Option<&'a str> {
    if names.contains(token) {
        return Some(token);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| token.strip_suffix(s))
        .find(|base| names.contains(*base))
}

#[test]
fn dashboard_references_only_exported_metrics() {
    let text = std::fs::read_to_string(DASHBOARD).expect("dashboard file");
    let dash: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let metrics = Metrics::new();
    let _pool = metrics.pool("main");
    let _node = metrics.node("main", "redis-1");
    metrics.set_config_hash("0123abcd");
    let names = exported(&metrics.render());

    let mut exprs = Vec::new();
    queries(&dash, None, &mut exprs);
    let tokens: BTreeSet<String> = exprs.iter().flat_map(|e| metric_tokens(e)).collect();
    assert!(tokens.len() >= 10, "too few metrics plotted: {tokens:?}");
    let unknown: Vec<&String> = tokens
        .iter()
        .filter(|t| family_of(t, &names).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "not exported: {unknown:?}; exported: {names:?}"
    );
}

#[test]
fn dashboard_shape() {
    let text = std::fs::read_to_string(DASHBOARD).expect("dashboard file");
    let dash: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let vars = dash["templating"]["list"].as_array().expect("variables");
    assert!(
        vars.iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus")
    );
    let panels = dash["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        assert!(p["targets"].as_array().is_some_and(|t| !t.is_empty()));
    }
    for wanted in [
        "histogram_quantile(0.99",
        "ringproxy_node_up",
        "ringproxy_reloads_total",
    ] {
        assert!(text.contains(wanted), "dashboard lacks {wanted}");
    }
}

#[test]
fn token_scan() {
    let e = r#"histogram_quantile(0.5, sum by (le) (rate(ringproxy_x_bucket{a="b"}[5m]))) / xringproxy_no"#;
    assert_eq!(metric_tokens(e), vec!["ringproxy_x_bucket"]);
}
