//! The one place YAML is parsed (serde_norway, the maintained fork of serde_yaml).

use super::Problem;
use super::locate::{Locator, Seg};
use serde::de::DeserializeOwned;

/// A parsed YAML document, for walks over what the file holds (unknown fields).
pub use serde_norway::Value;

/// Parses `text` into `T`, mapping a syntax or schema error to a [`Problem`] with its
/// line (the message loses serde's own ` at line N column M` suffix: the line is in
/// [`Problem::line`]).
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    serde_norway::from_str(text).map_err(|e| {
        let message = e.to_string();
        let message = match message.rfind(" at line ") {
            Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
            _ => message,
        };
        Problem {
            line: e.location().map(|l| l.line()),
            message,
        }
    })
}

/// Parses `text` into a YAML [`Value`] (syntax only).
pub fn parse_value(text: &str) -> Result<Value, Problem> {
    parse_yaml(text)
}

/// Deserializes `T` from `value`, a document parsed from `text` and then edited
/// (unknown fields removed). The value is written back to YAML and read again so that
/// a schema error keeps serde's path (`nodes[1].weight: invalid type ...`); its line
/// is then found from that path in the original `text`.
pub fn from_edited<T: DeserializeOwned>(text: &str, value: &Value) -> Result<T, Problem> {
    let rewritten = serde_norway::to_string(value).map_err(|e| Problem {
        line: None,
        message: e.to_string(),
    })?;
    parse_yaml(&rewritten).map_err(|mut p| {
        p.line = error_path(&p.message).and_then(|path| {
            let segs: Vec<Seg<'_>> = path
                .iter()
                .map(|s| match s {
                    PathPart::Key(k) => Seg::Key(k),
                    PathPart::Item(i) => Seg::Item(*i),
                })
                .collect();
            Locator::new(text).line(&segs)
        });
        p
    })
}

enum PathPart<'a> {
    Key(&'a str),
    Item(usize),
}

/// The `nodes[1].weight` path serde_norway puts in front of a nested error message.
fn error_path(message: &str) -> Option<Vec<PathPart<'_>>> {
    let (path, _) = message.split_once(": ")?;
    let mut out = vec![];
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        out.push(PathPart::Key(key));
        while !rest.is_empty() {
            let (n, after) = rest.split_once(']')?;
            out.push(PathPart::Item(n.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(out)
}

/// A non-string mapping key as the file wrote it (`1`, `true`, `null`, ...).
pub fn scalar_text(value: &Value) -> String {
    serde_norway::to_string(value)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_paths_are_read_from_messages() {
        let p = error_path("nodes[1].weight: invalid type").unwrap();
        assert!(matches!(
            p[..],
            [
                PathPart::Key("nodes"),
                PathPart::Item(1),
                PathPart::Key("weight")
            ]
        ));
        assert!(error_path("invalid type: string").is_none());
        assert!(error_path("missing field `listen`").is_none());
    }
}
