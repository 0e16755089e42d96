//! The proxy's admin HTTP port: one small HTTP/1.1 client ([`http`], [`get`]), the
//! `/topology` reader ([`topology`], [`wait_topology`]) and the `/metrics` reader
//! ([`scrape`], [`Scrape`], [`metric`]).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::util::{IO_TIMEOUT, poll};

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// One HTTP response: status code, headers (lower-cased names) and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Panics unless the status is 200 and the content type starts with `content_type`.
    fn expect(&self, what: &str, content_type: &str) {
        assert_eq!(self.status, 200, "{what}: {self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with(content_type)),
            "content type of {what}: {:?}",
            self.header("content-type")
        );
    }
}

/// Sends one request (`Connection: close`, empty body) to 127.0.0.1:`port` and reads
/// the response to EOF. Panics on IO errors, a malformed head, or a `Content-Length`
/// that does not match the body.
pub fn http(port: u16, method: &str, path: &str) -> HttpResponse {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to admin port {port}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("write HTTP request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read HTTP response to {method} {path}: {e}"));
    let text = String::from_utf8(raw).expect("HTTP response is UTF-8");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in response to {method} {path}: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    assert!(
        parts.next().unwrap_or_default().starts_with("HTTP/1."),
        "bad status line {status_line:?}"
    );
    let status = parts
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let resp = HttpResponse {
        status,
        headers,
        body: body.to_string(),
    };
    if let Some(len) = resp.header("content-length") {
        assert_eq!(
            len.parse::<usize>().ok(),
            Some(resp.body.len()),
            "Content-Length of {method} {path} does not match the body"
        );
    }
    resp
}

/// `GET path`: the body of a 200 response (panics on any other status).
pub fn get(port: u16, path: &str) -> String {
    let r = http(port, "GET", path);
    assert_eq!(r.status, 200, "GET {path}: {r:?}");
    r.body
}

// ---------------------------------------------------------------------------
// /topology
// ---------------------------------------------------------------------------

/// One node of the (first) pool as `/topology` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub addr: String,
    pub weight: u64,
    /// `up` or `down`.
    pub health: String,
    pub on_ring: bool,
}

impl NodeView {
    /// True when healthy; panics on a health that is neither `up` nor `down`.
    pub fn up(&self) -> bool {
        match self.health.as_str() {
            "up" => true,
            "down" => false,
            other => panic!("/topology health of {} is {other:?}", self.name),
        }
    }
}

/// `/topology`, with the first pool's fields read out (the JSON stays in `json`).
#[derive(Debug, Clone)]
pub struct Topology {
    pub json: serde_json::Value,
    /// `pools[0].name`.
    pub pool: String,
    /// `pools[0].version`.
    pub version: u64,
    /// `config_hash`.
    pub config_hash: Option<String>,
    /// `pools[0].nodes`, in config order.
    pub nodes: Vec<NodeView>,
}

impl Topology {
    /// Reads `/topology` JSON text; panics with the text on anything missing.
    pub fn parse(body: &str) -> Topology {
        let json: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("/topology is not JSON ({e}): {body}"));
        let pool = &json["pools"][0];
        let nodes = pool["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("/topology has no pools[0].nodes: {body}"))
            .iter()
            .map(|n| NodeView {
                name: n["name"].as_str().unwrap_or_default().to_string(),
                addr: n["addr"].as_str().unwrap_or_default().to_string(),
                weight: n["weight"].as_u64().unwrap_or_default(),
                health: n["health"]
                    .as_str()
                    .unwrap_or_else(|| panic!("/topology node without health: {body}"))
                    .to_string(),
                on_ring: n["on_ring"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("/topology on_ring missing: {body}")),
            })
            .collect();
        Topology {
            pool: pool["name"].as_str().unwrap_or_default().to_string(),
            version: pool["version"]
                .as_u64()
                .unwrap_or_else(|| panic!("/topology has no pools[0].version: {body}")),
            config_hash: json["config_hash"].as_str().map(str::to_string),
            nodes,
            json,
        }
    }

    /// The node named `name` (panics when absent).
    pub fn node(&self, name: &str) -> &NodeView {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("node {name} not in /topology: {self}"))
    }

    /// The node names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pretty = serde_json::to_string_pretty(&self.json).unwrap_or_default();
        f.write_str(&pretty)
    }
}

/// `GET /topology` (200, JSON), read.
pub fn topology(port: u16) -> Topology {
    let r = http(port, "GET", "/topology");
    r.expect("GET /topology", "application/json");
    Topology::parse(&r.body)
}

/// Polls `/topology` every 5 ms until `pred` holds; returns that topology and when it
/// was seen. Panics with the last one after `timeout`.
pub fn wait_topology(
    port: u16,
    what: &str,
    timeout: Duration,
    mut pred: impl FnMut(&Topology) -> bool,
) -> (Topology, Instant) {
    poll(what, timeout, Duration::from_millis(5), || {
        let t = topology(port);
        if pred(&t) {
            Ok((t, Instant::now()))
        } else {
            Err(format!("last /topology:\n{t}"))
        }
    })
}

// ---------------------------------------------------------------------------
// /metrics (Prometheus text format)
// ---------------------------------------------------------------------------

/// One sample line: `name{label="value",...} value`.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape, with its text (for messages).
#[derive(Clone, Debug)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub text: String,
}

/// Parses the label block after `{`; returns the labels and the rest after `}`.
fn parse_labels<'a>(mut s: &'a str, line: &str) -> (BTreeMap<String, String>, &'a str) {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return (labels, rest);
        }
        let (name, rest) = s
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in metrics line {line:?}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated escape in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        labels.insert(name.trim().to_string(), value);
        s = &rest[end + 1..];
    }
}

/// `name{labels}` or `name` at the start of `s`: the name, labels, and the rest.
fn parse_series<'a>(s: &'a str, line: &str) -> (String, BTreeMap<String, String>, &'a str) {
    match s.find(['{', ' ']) {
        Some(i) if s.as_bytes()[i] == b'{' => {
            let (labels, rest) = parse_labels(&s[i + 1..], line);
            (s[..i].to_string(), labels, rest)
        }
        Some(i) => (s[..i].to_string(), BTreeMap::new(), &s[i..]),
        None => (s.to_string(), BTreeMap::new(), ""),
    }
}

impl Scrape {
    /// Parses Prometheus text; panics on a malformed sample line.
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, labels, rest) = parse_series(line, line);
            let value_text = rest.split_whitespace().next().unwrap_or_else(|| {
                panic!("metrics line without a value: {line:?}");
            });
            let value = match value_text {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value {v:?} in metrics line {line:?}")),
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Scrape {
            samples,
            text: text.to_string(),
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        want: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Sum of every sample named `name` whose labels include all of `want`.
    pub fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.matching(name, want).map(|s| s.value).sum()
    }

    /// The value of the one sample `name` with labels including `want`; panics when
    /// there is not exactly one.
    pub fn one(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let hits: Vec<&Sample> = self.matching(name, want).collect();
        assert_eq!(
            hits.len(),
            1,
            "expected exactly one series {name}{want:?}, found {hits:?}\n--- scrape ---\n{}",
            self.text
        );
        hits[0].value
    }

    /// The value of the first sample written `series`: `name` (no labels),
    /// `name{k="v",...}` (exactly those labels), or `name{` (any labels); 0 when absent.
    pub fn series(&self, series: &str) -> f64 {
        let any = series.ends_with('{');
        let (name, labels, _) = match series.strip_suffix('{') {
            Some(name) => (name.to_string(), BTreeMap::new(), ""),
            None => parse_series(series, series),
        };
        self.samples
            .iter()
            .find(|s| s.name == name && (any || s.labels == labels))
            .map_or(0.0, |s| s.value)
    }
}

/// [`Scrape::series`] of metrics text.
pub fn metric(text: &str, series: &str) -> f64 {
    Scrape::parse(text).series(series)
}

/// `GET /metrics` (200, text/plain), parsed.
pub fn scrape(port: u16) -> Scrape {
    let r = http(port, "GET", "/metrics");
    r.expect("GET /metrics", "text/plain");
    Scrape::parse(&r.body)
}

/// Polls `/metrics` every 20 ms until `check` holds; returns that scrape. Panics with
/// the last one after `timeout`.
pub fn scrape_until(
    port: u16,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut(&Scrape) -> bool,
) -> Scrape {
    poll(what, timeout, Duration::from_millis(20), || {
        let s = scrape(port);
        if check(&s) {
            Ok(s)
        } else {
            Err(format!("--- last scrape ---\n{}", s.text))
        }
    })
}
