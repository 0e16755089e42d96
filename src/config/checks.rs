//! Value checks shared by both file formats, and [`Report`], which collects problems
//! and notes with their lines. Checks return `Err(message)`; the message never repeats
//! the setting's path (the [`Report`] adds it).

use super::duration;
use super::locate::{Locator, Seg, path_text};
use super::{Listen, NodeAddr, Problem};
use crate::route::{Distribution, HashFunction, HashMode};
use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

/// Every nutcracker hash function name, in nutcracker's documentation order.
pub const HASH_NAMES: [&str; 12] = [
    "one_at_a_time",
    "md5",
    "crc16",
    "crc32",
    "crc32a",
    "fnv1_64",
    "fnv1a_64",
    "fnv1_32",
    "fnv1a_32",
    "hsieh",
    "murmur",
    "jenkins",
];

/// Collects problems (the file is refused) and notes (accepted, worth telling).
pub struct Report<'a> {
    loc: Locator<'a>,
    /// Problems found so far.
    pub problems: Vec<Problem>,
    /// Notes found so far.
    pub notes: Vec<Problem>,
}

impl<'a> Report<'a> {
    /// A report over `text`.
    pub fn new(text: &'a str) -> Report<'a> {
        Report {
            loc: Locator::new(text),
            problems: vec![],
            notes: vec![],
        }
    }

    fn at(&self, path: &[Seg<'_>], msg: impl Display) -> Problem {
        Problem {
            line: self.loc.line(path),
            message: format!("{}: {msg}", path_text(path)),
        }
    }

    /// Records a problem about the setting at `path`.
    pub fn problem(&mut self, path: &[Seg<'_>], msg: impl Display) {
        let p = self.at(path, msg);
        self.problems.push(p);
    }

    /// Records a note about the setting at `path`.
    pub fn note(&mut self, path: &[Seg<'_>], msg: impl Display) {
        let p = self.at(path, msg);
        self.notes.push(p);
    }

    /// Records `r`'s error at `path`; returns its value.
    pub fn check<T>(&mut self, path: &[Seg<'_>], r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.problem(path, m)).ok()
    }

    /// Problems and notes, each sorted by line (unknown lines last).
    pub fn finish(mut self) -> (Vec<Problem>, Vec<Problem>) {
        let key = |p: &Problem| p.line.unwrap_or(usize::MAX);
        self.problems.sort_by_key(key);
        self.notes.sort_by_key(key);
        (self.problems, self.notes)
    }
}

/// `v` within `lo..=hi`.
pub fn range<T: PartialOrd + Display>(v: T, lo: T, hi: T) -> Result<T, String> {
    if v < lo || v > hi {
        return Err(format!("{v} is out of range {lo}..={hi}"));
    }
    Ok(v)
}

/// `d` more than zero, at least `min` and at most `max`.
pub fn duration_in(d: Duration, min: Duration, max: Duration) -> Result<Duration, String> {
    let f = duration::format;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    if d < min {
        return Err(format!("{} is less than the minimum {}", f(d), f(min)));
    }
    if d > max {
        return Err(format!("{} is more than the maximum {}", f(d), f(max)));
    }
    Ok(d)
}

/// Pairs `(later, first)` of indices whose values are equal, one per repeat.
pub fn duplicates(values: &[String]) -> Vec<(usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    let mut out = vec![];
    for (i, v) in values.iter().enumerate() {
        if let Some(first) = seen.get(v.as_str()) {
            out.push((i, *first));
        } else {
            seen.insert(v.as_str(), i);
        }
    }
    out
}

/// Checks `host:port` (port 1..=65535; IPv6 hosts in brackets).
pub fn host_port(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{s:?} {why}; write host:port"));
    let Some((host, port)) = s.rsplit_once(':') else {
        return bad("has no port");
    };
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed) || host.contains(char::is_whitespace) {
        return bad("has no valid host");
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        _ => Err(format!("{s:?}: port {port:?} is not a number in 1..=65535")),
    }
}

fn unix_path(path: &str, whole: &str) -> Result<PathBuf, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{whole:?}: a unix socket path must be absolute (unix:/path/to.sock)"
        ));
    }
    Ok(PathBuf::from(path))
}

/// A listener: `host:port` or `unix:/abs/path`.
pub fn listen(s: &str) -> Result<Listen, String> {
    match s.strip_prefix("unix:") {
        Some(path) => unix_path(path, s).map(Listen::Unix),
        None => host_port(s).map(|()| Listen::Tcp(s.to_string())),
    }
}

/// A node address: `host:port` or `unix:/abs/path`.
pub fn node_addr(s: &str) -> Result<NodeAddr, String> {
    match s.strip_prefix("unix:") {
        Some(path) => unix_path(path, s).map(NodeAddr::Unix),
        None => host_port(s).map(|()| NodeAddr::Tcp(s.to_string())),
    }
}

/// How an address is written in a ringproxy file (`host:port` or `unix:/path`).
pub fn addr_text(addr: &NodeAddr) -> String {
    match addr {
        NodeAddr::Tcp(s) => s.clone(),
        NodeAddr::Unix(p) => format!("unix:{}", p.display()),
        NodeAddr::Sentinel(m) => format!("sentinel:{m}"),
    }
}

/// How a listener is written in a ringproxy file.
pub fn listen_text(listen: &Listen) -> String {
    match listen {
        Listen::Tcp(s) => s.clone(),
        Listen::Unix(p) => format!("unix:{}", p.display()),
    }
}

/// `ringproxy` or `twemproxy`.
pub fn mode(s: &str) -> Result<HashMode, String> {
    match s {
        "ringproxy" => Ok(HashMode::Ringproxy),
        "twemproxy" => Ok(HashMode::Twemproxy),
        _ => Err(format!("{s:?} is not one of ringproxy, twemproxy")),
    }
}

/// `ketama`, or `modula` / `random` in twemproxy mode.
pub fn distribution(s: &str, mode: HashMode) -> Result<Distribution, String> {
    let d = match s {
        "ketama" => Distribution::Ketama,
        "modula" => Distribution::Modula,
        "random" => Distribution::Random,
        _ => return Err(format!("{s:?} is not one of ketama, modula, random")),
    };
    if d != Distribution::Ketama && mode != HashMode::Twemproxy {
        return Err(format!(
            "{s} needs hash.mode: twemproxy (ringproxy mode is ketama only)"
        ));
    }
    Ok(d)
}

/// A nutcracker hash function name.
pub fn function(name: &str) -> Result<HashFunction, String> {
    HashFunction::from_name(name).ok_or_else(|| {
        format!(
            "{name:?} is not a known hash function; use one of {}",
            HASH_NAMES.join(", ")
        )
    })
}

/// The nutcracker name of `f`, if it has one.
pub fn function_name(f: HashFunction) -> Option<&'static str> {
    HASH_NAMES
        .into_iter()
        .find(|n| HashFunction::from_name(n) == Some(f))
}

/// A hash tag: two ASCII characters, or `""` for none.
pub fn tag(s: &str) -> Result<Option<[u8; 2]>, String> {
    match s.as_bytes() {
        [] => Ok(None),
        [a, b] if s.is_ascii() => Ok(Some([*a, *b])),
        _ => Err(format!(
            "{s:?} must be two ASCII characters (like \"{{}}\") or \"\" for none"
        )),
    }
}

/// The string hashed onto the ring for a node.
/// ringproxy mode: the name (which defaults to the address).
/// twemproxy mode: nutcracker 0.5.0's rule.
pub fn identity(mode: HashMode, addr: &NodeAddr, name: Option<&str>) -> String {
    match mode {
        HashMode::Ringproxy => name.map_or_else(|| addr_text(addr), str::to_string),
        HashMode::Twemproxy => {
            let text = match addr {
                NodeAddr::Unix(path) => path.display().to_string(),
                NodeAddr::Tcp(hp) => hp.clone(),
                NodeAddr::Sentinel(m) => m.clone(),
            };
            crate::route::twemproxy_identity(&text, name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_rules() {
        assert!(host_port("127.0.0.1:6379").is_ok());
        assert!(host_port("[::1]:6379").is_ok());
        assert!(host_port("cache.local:1").is_ok());
        assert_eq!(
            host_port("a:0").unwrap_err(),
            "\"a:0\": port \"0\" is not a number in 1..=65535"
        );
        assert_eq!(
            host_port("a").unwrap_err(),
            "\"a\" has no port; write host:port"
        );
        assert_eq!(
            host_port(":1").unwrap_err(),
            "\":1\" has no valid host; write host:port"
        );
        assert!(host_port("::1:6379").is_err());
    }

    #[test]
    fn twemproxy_identity_rule() {
        let tcp = |s: &str| NodeAddr::Tcp(s.into());
        let tw = HashMode::Twemproxy;
        assert_eq!(identity(tw, &tcp("10.0.0.1:6379"), None), "10.0.0.1:6379");
        assert_eq!(identity(tw, &tcp("10.0.0.1:11211"), None), "10.0.0.1");
        assert_eq!(identity(tw, &tcp("10.0.0.1:6379"), Some("s1")), "s1");
        assert_eq!(
            identity(tw, &NodeAddr::Unix("/tmp/r.sock".into()), None),
            "/tmp/r.sock:"
        );
        assert_eq!(
            identity(HashMode::Ringproxy, &tcp("10.0.0.1:11211"), None),
            "10.0.0.1:11211"
        );
    }

    #[test]
    fn tags_and_names() {
        assert_eq!(tag("{}"), Ok(Some(*b"{}")));
        assert_eq!(tag(""), Ok(None));
        assert!(tag("{").is_err() && tag("é").is_err());
        assert_eq!(
            function_name(function("fnv1a_64").unwrap()),
            Some("fnv1a_64")
        );
    }
}
